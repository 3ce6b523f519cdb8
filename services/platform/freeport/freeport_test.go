package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestLoopbackPortsAreFreeDistinctAndBelowTheEphemeralRange(t *testing.T) {
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

// TestPickSkipsPortsInUse holds two of three consecutive ports (from the
// ephemeral range, which no caller of Loopback picks from) and picks in
// those three: the free one comes back, then there is none left.
func TestPickSkipsPortsInUse(t *testing.T) {
	for range 20 {
		held, p, ok := twoOfThree(t)
		if !ok {
			continue
		}
		defer held()
		free := net.JoinHostPort("127.0.0.1", strconv.Itoa(p+2))
		got, err := pick(1, p, p+3)
		if err != nil || len(got) != 1 || got[0] != free {
			t.Fatalf("pick of one in %d-%d with two held: %v, %v; want %s", p, p+2, got, err, free)
		}
		if got, err := pick(2, p, p+3); err == nil {
			t.Errorf("two free ports in %d-%d with two of three held: %v", p, p+2, got)
		}
		return
	}
	t.Fatal("found no three consecutive ports to hold two of")
}

// twoOfThree listens on ports p and p+1 for a p the kernel picks, with p+2
// free too; ok false if one of them was taken.
func twoOfThree(t *testing.T) (release func(), p int, ok bool) {
	first, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p = first.Addr().(*net.TCPAddr).Port
	second, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
	if err != nil {
		first.Close()
		return nil, 0, false
	}
	third, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+2)))
	if err != nil {
		first.Close()
		second.Close()
		return nil, 0, false
	}
	third.Close()
	return func() { first.Close(); second.Close() }, p, true
}
