package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestLoopbackPortsAreFreeDistinctAndBelowTheEphemeralRange(t *testing.T) {
	t.Parallel()
	lo, hi := candidates()
	addrs, err := Loopback(50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		if host != "127.0.0.1" || p < lo || p >= hi {
			t.Errorf("%s: want 127.0.0.1 with a port in %d-%d", a, lo, hi-1)
		}
		if seen[a] {
			t.Errorf("%s twice", a)
		}
		seen[a] = true
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s is not free: %v", a, err)
			continue
		}
		l.Close()
	}
	// An ephemeral port (what ":0" gives) is never a candidate.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if p := l.Addr().(*net.TCPAddr).Port; p >= lo && p < hi {
		t.Errorf("the kernel's own pick %d is in the candidates %d-%d", p, lo, hi-1)
	}
}

func TestLoopbackSkipsPortsInUse(t *testing.T) {
	t.Parallel()
	lo, hi := candidates()
	// Hold most candidates: what comes back must be among the rest.
	var held []net.Listener
	busy := map[string]bool{}
	for p := lo; p < hi && len(held) < (hi-lo)*9/10; p++ {
		a := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", a)
		if err != nil {
			continue
		}
		held = append(held, l)
		busy[a] = true
	}
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	addrs, err := Loopback(20)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if busy[a] {
			t.Errorf("%s is held by the test", a)
		}
	}
}
