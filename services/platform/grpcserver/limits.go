package grpcserver

import (
	"math"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/slotwatch/slotwatch/services/platform/envconfig"
)

// Limits bound what one caller can hold on the gRPC port, whether or not
// it has a token: they apply before auth has said who it is. A zero field
// takes its default.
type Limits struct {
	// MaxConcurrentStreams is how many RPCs one connection may have open
	// at once (GRPC_MAX_CONCURRENT_STREAMS). A client past it waits for one
	// to end; a stream opened past it anyway is refused (REFUSED_STREAM).
	MaxConcurrentStreams uint32
	// MaxConnsPerPeer is how many connections one remote address (an IPv4
	// address, an IPv6 /64) may hold at once (GRPC_MAX_CONNS_PER_PEER);
	// one more is closed as soon as it is accepted. Loopback peers are
	// exempt: they are this process's own gateway, a local mesh proxy that
	// carries every caller's connections, or a local run.
	MaxConnsPerPeer int
	// MaxRecvMsgBytes is the largest message the server reads
	// (GRPC_MAX_RECV_MSG_BYTES); a bigger one fails with RESOURCE_EXHAUSTED
	// before it is decoded. No RPC needs more than the default: the largest
	// requests are a check's slots and ImportAccounts, which streams one
	// account per message.
	MaxRecvMsgBytes int
	// MaxConnectionAge is how long a connection lives before the server
	// asks the client to reconnect (GRPC_MAX_CONNECTION_AGE, ±10%), so
	// that clients spread over replicas added since they connected.
	// MaxConnectionAgeGrace is how long the RPCs in flight then get to end
	// (GRPC_MAX_CONNECTION_AGE_GRACE): longer than the longest unary call
	// (Acquire waits up to 10 minutes); a watch still open after it ends
	// with UNAVAILABLE and resumes from its cursor.
	MaxConnectionAge      time.Duration
	MaxConnectionAgeGrace time.Duration
}

// Default limits.
const (
	DefaultMaxConcurrentStreams  = 100
	DefaultMaxConnsPerPeer       = 32
	DefaultMaxRecvMsgBytes       = 256 << 10
	DefaultMaxConnectionAge      = 30 * time.Minute
	DefaultMaxConnectionAgeGrace = 15 * time.Minute
)

// Keepalive settings, not configurable: a client may ping at most every
// keepaliveMinTime and only while it has an RPC open (a connection with
// none has nothing to keep alive and is closed after maxConnectionIdle);
// a faster or idle pinger is sent GOAWAY. The server pings a quiet client
// every keepaliveTime and drops it when no answer comes within
// keepaliveTimeout, so a vanished peer does not keep its streams and its
// place under MaxConnsPerPeer.
const (
	keepaliveMinTime  = 30 * time.Second
	maxConnectionIdle = 15 * time.Minute
	keepaliveTime     = 2 * time.Minute
	keepaliveTimeout  = 20 * time.Second
)

func (l Limits) withDefaults() Limits {
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if l.MaxConnsPerPeer == 0 {
		l.MaxConnsPerPeer = DefaultMaxConnsPerPeer
	}
	if l.MaxRecvMsgBytes == 0 {
		l.MaxRecvMsgBytes = DefaultMaxRecvMsgBytes
	}
	if l.MaxConnectionAge == 0 {
		l.MaxConnectionAge = DefaultMaxConnectionAge
	}
	if l.MaxConnectionAgeGrace == 0 {
		l.MaxConnectionAgeGrace = DefaultMaxConnectionAgeGrace
	}
	return l
}

// loadLimits reads the GRPC_* limits; LoadSecurity reports their errors.
func loadLimits(env *envconfig.Loader) Limits {
	return Limits{
		MaxConcurrentStreams:  uint32(min(env.Int("GRPC_MAX_CONCURRENT_STREAMS", DefaultMaxConcurrentStreams, 1), math.MaxUint32)), // a huge value means no limit
		MaxConnsPerPeer:       env.Int("GRPC_MAX_CONNS_PER_PEER", DefaultMaxConnsPerPeer, 1),
		MaxRecvMsgBytes:       env.Int("GRPC_MAX_RECV_MSG_BYTES", DefaultMaxRecvMsgBytes, 1024),
		MaxConnectionAge:      env.Duration("GRPC_MAX_CONNECTION_AGE", DefaultMaxConnectionAge),
		MaxConnectionAgeGrace: env.Duration("GRPC_MAX_CONNECTION_AGE_GRACE", DefaultMaxConnectionAgeGrace),
	}
}

func (l Limits) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
		grpc.MaxRecvMsgSize(l.MaxRecvMsgBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: false}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     maxConnectionIdle,
			MaxConnectionAge:      l.MaxConnectionAge,
			MaxConnectionAgeGrace: l.MaxConnectionAgeGrace,
			Time:                  keepaliveTime,
			Timeout:               keepaliveTimeout,
		}),
	}
}

// peerLimitListener closes a connection as soon as it is accepted when its
// peer already holds max connections, and counts it in refused.
type peerLimitListener struct {
	net.Listener
	max     int
	refused prometheus.Counter
	mu      sync.Mutex
	open    map[string]int
}

func limitPeers(l net.Listener, max int, refused prometheus.Counter) net.Listener {
	return &peerLimitListener{Listener: l, max: max, refused: refused, open: map[string]int{}}
}

func (l *peerLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer, limited := peerKey(c.RemoteAddr())
		if !limited {
			return c, nil
		}
		l.mu.Lock()
		if l.open[peer] >= l.max {
			l.mu.Unlock()
			c.Close()
			l.refused.Inc()
			continue
		}
		l.open[peer]++
		l.mu.Unlock()
		return &peerConn{Conn: c, release: sync.OnceFunc(func() { l.release(peer) })}, nil
	}
}

func (l *peerLimitListener) release(peer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[peer]--; l.open[peer] <= 0 {
		delete(l.open, peer)
	}
}

// peerKey is what MaxConnsPerPeer counts by: the IPv4 address, or the /64
// of an IPv6 one (one host commonly holds a whole /64). A loopback or
// non-TCP peer (bufconn, a unix socket) is not limited.
func peerKey(a net.Addr) (string, bool) {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() {
		return "", false
	}
	if v4 := tcp.IP.To4(); v4 != nil {
		return v4.String(), true
	}
	return tcp.IP.Mask(net.CIDRMask(64, 128)).String(), true
}

// peerConn gives its peer's place back when it closes.
type peerConn struct {
	net.Conn
	release func()
}

func (c *peerConn) Close() error {
	c.release()
	return c.Conn.Close()
}
