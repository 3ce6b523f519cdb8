// Package faultproxy puts a TCP fault proxy between a client and a server
// (a service and Postgres, a Checker and AccountPool) for tests and the
// chaos suite: Shopify's toxiproxy, run in-process, with the few faults
// they use named as methods.
package faultproxy

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Server holds the proxies of one test or suite run.
type Server struct {
	api *toxiproxy.ApiServer
	n   atomic.Int64
}

// NewServer returns a server whose proxies log nothing.
func NewServer() *Server {
	return &Server{api: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())}
}

// Proxy forwards one loopback address to an upstream address.
type Proxy struct {
	p        *toxiproxy.Proxy
	upstream string
	bypass   atomic.Bool
}

// Start opens a proxy on a free loopback port to upstream (host:port).
func (s *Server) Start(name, upstream string) (*Proxy, error) {
	p := toxiproxy.NewProxy(s.api, fmt.Sprintf("%s-%d", name, s.n.Add(1)), "127.0.0.1:0", upstream)
	if err := s.api.Collection.Add(p, true); err != nil {
		return nil, fmt.Errorf("fault proxy %s: %w", name, err)
	}
	return &Proxy{p: p, upstream: upstream}, nil
}

// Close stops every proxy, closing their connections.
func (s *Server) Close() { _ = s.api.Collection.Clear() }

// Addr is the proxy's listening address (127.0.0.1:port).
func (p *Proxy) Addr() string {
	p.p.Lock()
	defer p.p.Unlock()
	return p.p.Listen
}

// Timeout makes every connection, open or new, carry nothing in either
// direction, without closing: a dead network path, as a dropped NAT entry
// leaves it.
func (p *Proxy) Timeout() error {
	return p.add("timeout", `"timeout": 0`)
}

// Latency delays everything each way by ms milliseconds.
func (p *Proxy) Latency(ms int) error {
	return p.add("latency", fmt.Sprintf(`"latency": %d`, ms))
}

func (p *Proxy) add(kind, attrs string) error {
	for _, stream := range []string{"upstream", "downstream"} {
		body := fmt.Sprintf(`{"name": %q, "type": %q, "stream": %q, "attributes": {%s}}`, kind+"_"+stream, kind, stream, attrs)
		if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
			return fmt.Errorf("add %s toxic: %w", kind, err)
		}
	}
	return nil
}

// DialContext dials the proxy, or the upstream itself after Bypass; it
// ignores addr. As a pgx DialFunc it lets a test strand the connections
// open now (Timeout, then Bypass) while new ones work: a NAT that dropped
// one connection's entry. Removing a timeout toxic closes its connections,
// so Heal cannot play that.
func (p *Proxy) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	if p.bypass.Load() {
		return d.DialContext(ctx, network, p.upstream)
	}
	return d.DialContext(ctx, network, p.Addr())
}

// Bypass makes DialContext dial the upstream directly from now on.
func (p *Proxy) Bypass() { p.bypass.Store(true) }

// Heal removes every toxic. Toxiproxy closes the connections a timeout
// toxic held.
func (p *Proxy) Heal() { p.p.Toxics.ResetToxics(context.Background()) }

// Cut closes every connection and refuses new ones until Restore: a
// network partition.
func (p *Proxy) Cut() { p.p.Stop() }

// Restore accepts connections again after Cut, on the same address.
func (p *Proxy) Restore() error { return p.p.Start() }
