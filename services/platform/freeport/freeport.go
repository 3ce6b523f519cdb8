// Package freeport picks loopback addresses for a process that is started
// later, or restarted, on a fixed address: test clusters, the chaos
// suite, benchmarks.
//
// A port the kernel hands out for ":0" comes from the ephemeral range,
// which every outgoing connection draws from too: between the pick and the
// server's bind, or at a restart minutes later, a client connection (to
// Postgres, say) may hold it, and the bind fails with "address already in
// use". The ports here come from just below that range, which the kernel
// never assigns on its own.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// span is how many ports below the ephemeral range are candidates.
const span = 10000

// Loopback returns n distinct 127.0.0.1 addresses that nothing listens on
// now, with ports below the ephemeral range.
func Loopback(n int) ([]string, error) {
	lo, hi := candidates()
	return pick(n, lo, hi)
}

// pick returns n distinct free 127.0.0.1 addresses with ports in [lo, hi).
func pick(n, lo, hi int) ([]string, error) {
	out := make([]string, 0, n)
	seen := map[int]bool{}
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n+1000 || len(seen) == hi-lo {
			return nil, fmt.Errorf("freeport: no free loopback port in %d-%d", lo, hi-1)
		}
		p := lo + rand.IntN(hi-lo)
		if seen[p] {
			continue
		}
		seen[p] = true
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		out = append(out, addr)
	}
	return out, nil
}

// candidates is the range [lo, hi) ports are picked from: the span below
// the ephemeral range (Linux's ip_local_port_range; 32768 when unknown).
func candidates() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				hi = v
			}
		}
	}
	lo = max(1024, hi-span)
	if hi-lo < 1000 { // an unusual range: fall back to the usual one
		lo, hi = 22768, 32768
	}
	return lo, hi
}
