package grpcserver_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// inFlight counts the streams the server is running, and the most it ever
// ran at once.
type inFlight struct{ now, peak atomic.Int64 }

func (f *inFlight) interceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	n := f.now.Add(1)
	defer f.now.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return handler(srv, ss)
}

// The experiment: 5,000 health Watch streams (open to anyone, no
// token needed) on one connection. The server runs at most
// MaxConcurrentStreams of them; the rest cannot open.
func TestStreamsPerConnectionAreCapped(t *testing.T) {
	t.Parallel()
	count := &inFlight{}
	srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t), Policy: policy,
		Security: grpcserver.Security{Tokens: openTokens(t, writeTokens(t, allTokens))},
		Stream:   []grpc.StreamServerInterceptor{count.interceptor}})
	srv.GRPC.RegisterService(&desc, struct{}{})
	lis := bufconn.Listen(1 << 20)
	serveUntilCleanup(t, srv, lis)
	conn := authtest.DialBufconn(t, lis, "")

	const streams = 5000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// giveUp is closed once the cap's worth of streams are open: the
	// streams still waiting then give up. Waiting for the count, not for a
	// clock, keeps a loaded machine from failing the test: a stream
	// within the cap opens however late it is scheduled.
	giveUp := make(chan struct{})
	var opened, blocked atomic.Int64
	var decided sync.WaitGroup
	decided.Add(streams)
	for range streams {
		go func() {
			// A stream that has not opened by giveUp gives up; one that
			// opened stays open until the test ends.
			sctx, scancel := context.WithCancel(ctx)
			defer scancel()
			var open atomic.Bool
			go func() {
				select {
				case <-giveUp:
					if !open.Load() {
						scancel()
					}
				case <-sctx.Done():
				}
			}()
			w, err := healthpb.NewHealthClient(conn).Watch(sctx, &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = w.Recv()
			}
			if err != nil {
				blocked.Add(1)
				decided.Done()
				return
			}
			open.Store(true)
			opened.Add(1)
			decided.Done()
			<-sctx.Done()
		}()
	}
	// A server with a lower cap never gets there: give up after a
	// minute, and the count below says what opened.
	patience := time.After(time.Minute)
wait:
	for opened.Load() < grpcserver.DefaultMaxConcurrentStreams && blocked.Load() < streams {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-patience:
			break wait
		}
	}
	close(giveUp)
	decided.Wait()
	if got := opened.Load(); got != grpcserver.DefaultMaxConcurrentStreams {
		t.Errorf("%d streams opened on one connection, want %d (the cap)", got, grpcserver.DefaultMaxConcurrentStreams)
	}
	if peak := count.peak.Load(); peak > grpcserver.DefaultMaxConcurrentStreams {
		t.Errorf("the server ran %d streams of one connection at once, over the cap %d", peak, grpcserver.DefaultMaxConcurrentStreams)
	}
	if blocked.Load() != streams-opened.Load() {
		t.Errorf("opened %d + blocked %d != %d", opened.Load(), blocked.Load(), streams)
	}
	cancel()
	// The connection is still good for RPCs once the streams are gone.
	resp, err := healthpb.NewHealthClient(conn).Check(withToken(""), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health after the flood: %v %v", resp, err)
	}
}

// nonLoopbackIP is an address of this host that is not loopback, to be a
// peer the per-peer limit applies to.
func nonLoopbackIP(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP
		}
	}
	testkit.SkipOutsideCI(t, "this host has no non-loopback IPv4 address to connect from")
	return nil
}

// checkHealth makes a health call on a new connection to addr, which stays
// open until the test ends (or close is called).
func checkHealth(t *testing.T, addr string) (closeConn func(), err error) {
	t.Helper()
	conn := grpcservertest.Dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return func() { conn.Close() }, err
}

func TestConnectionsPerPeerAreCapped(t *testing.T) {
	t.Parallel()
	const perPeer = 3
	serveOn := func(t *testing.T, ip net.IP) (string, *grpcserver.Server) {
		t.Helper()
		srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t), Policy: policy,
			Security: grpcserver.Security{Tokens: openTokens(t, writeTokens(t, allTokens)), Limits: grpcserver.Limits{MaxConnsPerPeer: perPeer}}})
		srv.GRPC.RegisterService(&desc, struct{}{})
		lis, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			t.Fatal(err)
		}
		serveUntilCleanup(t, srv, lis)
		return lis.Addr().String(), srv
	}

	t.Run("AFloodFromOnePeerIsRefusedPastTheCap", func(t *testing.T) {
		t.Parallel()
		addr, srv := serveOn(t, nonLoopbackIP(t))
		var closers []func()
		for i := range perPeer {
			closeConn, err := checkHealth(t, addr)
			if err != nil {
				t.Fatalf("connection %d, within the cap: %v", i+1, err)
			}
			closers = append(closers, closeConn)
		}
		for range 5 {
			_, err := checkHealth(t, addr)
			testkit.WantCode(t, err, codes.Unavailable)
		}
		if n := grpcservertest.Metric(t, srv.Registry, "slotwatch_grpc_connections_refused_total"); n < 5 {
			t.Fatalf("refused connections counted: %v, want at least 5", n)
		}
		// A connection that ends gives its place back.
		closers[0]()
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := checkHealth(t, addr)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no connection accepted after one closed: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	// Loopback peers are this process's gateway, a mesh proxy that carries
	// every caller's connections, or a local run: not limited.
	t.Run("LoopbackIsExempt", func(t *testing.T) {
		t.Parallel()
		addr, srv := serveOn(t, net.IPv4(127, 0, 0, 1))
		for i := range perPeer + 3 {
			if _, err := checkHealth(t, addr); err != nil {
				t.Fatalf("loopback connection %d: %v", i+1, err)
			}
		}
		grpcservertest.WantMetric(t, srv.Registry, 0, "slotwatch_grpc_connections_refused_total")
	})
}

func TestMessagesOverTheLimitAreRefused(t *testing.T) {
	t.Parallel()
	read := func(h *harness, size int) error {
		// Read takes an Empty; the bytes ride as an unknown field, so
		// only the size matters.
		return h.conn.Invoke(withToken(readerTok), "/"+svc+"/Read",
			wrapperspb.Bytes(make([]byte, size)), &wrapperspb.BytesValue{})
	}
	tokens := func() *grpcserver.Security {
		return &grpcserver.Security{Tokens: openTokens(t, writeTokens(t, allTokens))}
	}

	h := start(t, *tokens())
	testkit.WantCode(t, read(h, grpcserver.DefaultMaxRecvMsgBytes-64), codes.OK)
	err := read(h, grpcserver.DefaultMaxRecvMsgBytes+1)
	testkit.WantCode(t, err, codes.ResourceExhausted)
	// No token either: the size is checked before anything else.
	testkit.WantCode(t, h.conn.Invoke(withToken(""), "/"+svc+"/Read", wrapperspb.Bytes(make([]byte, 2<<20)), &wrapperspb.BytesValue{}), codes.ResourceExhausted)

	// The operator raises the limit, or the service declares a method
	// that needs more.
	bigger := tokens()
	bigger.Limits.MaxRecvMsgBytes = 1 << 20
	testkit.WantCode(t, read(start(t, *bigger), grpcserver.DefaultMaxRecvMsgBytes+1), codes.OK)
	srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t), Security: *tokens(), Policy: policy, LargestRequestBytes: 1 << 20})
	srv.GRPC.RegisterService(&desc, struct{}{})
	lis := bufconn.Listen(1 << 20)
	serveUntilCleanup(t, srv, lis)
	declared := &harness{conn: authtest.DialBufconn(t, lis, "")}
	testkit.WantCode(t, read(declared, grpcserver.DefaultMaxRecvMsgBytes+1), codes.OK)
	testkit.WantCode(t, read(declared, 1<<20+1), codes.ResourceExhausted)
}

func TestReflectionOnlyWhenAskedFor(t *testing.T) {
	t.Parallel()
	listServices := func(h *harness) error {
		refl, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(withToken(""))
		if err != nil {
			return err
		}
		defer refl.CloseSend() //nolint:errcheck // the test is done with it
		// A stream the server has already ended fails Send with io.EOF;
		// Recv then says why.
		if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		resp, err := refl.Recv()
		if err != nil {
			return err
		}
		if got := resp.GetListServicesResponse().GetService(); len(got) == 0 {
			t.Fatalf("reflection lists no services: %v", resp)
		}
		return nil
	}
	testkit.WantCode(t, listServices(start(t, grpcserver.Security{})), codes.Unimplemented)
	testkit.WantCode(t, listServices(start(t, grpcserver.Security{Reflection: true})), codes.OK)
}

func TestLoadSecurityReadsLimitsAndReflection(t *testing.T) {
	t.Parallel()
	load := func(env map[string]string) (grpcserver.Security, error) {
		l := &envconfig.Loader{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
		return grpcserver.LoadSecurity(l, discard(t), "127.0.0.1:50051")
	}
	sec, err := load(nil)
	if err != nil || sec.Reflection || sec.Limits != (grpcserver.Limits{
		MaxConcurrentStreams: grpcserver.DefaultMaxConcurrentStreams, MaxConnsPerPeer: grpcserver.DefaultMaxConnsPerPeer,
		MaxRecvMsgBytes: grpcserver.DefaultMaxRecvMsgBytes, MaxConnectionAge: grpcserver.DefaultMaxConnectionAge,
		MaxConnectionAgeGrace: grpcserver.DefaultMaxConnectionAgeGrace,
	}) {
		t.Fatalf("defaults: %+v %v", sec, err)
	}
	sec, err = load(map[string]string{"GRPC_REFLECTION": "true", "GRPC_MAX_CONCURRENT_STREAMS": "10", "GRPC_MAX_CONNS_PER_PEER": "4",
		"GRPC_MAX_RECV_MSG_BYTES": "1048576", "GRPC_MAX_CONNECTION_AGE": "5m", "GRPC_MAX_CONNECTION_AGE_GRACE": "1m"})
	if err != nil || !sec.Reflection || sec.Limits != (grpcserver.Limits{MaxConcurrentStreams: 10, MaxConnsPerPeer: 4,
		MaxRecvMsgBytes: 1 << 20, MaxConnectionAge: 5 * time.Minute, MaxConnectionAgeGrace: time.Minute}) {
		t.Fatalf("set: %+v %v", sec, err)
	}
	// Past what HTTP/2 can say (32 bits), a count means "no limit": it
	// must not wrap round to a small one.
	for _, huge := range []string{"4294967296", "4294967297", "99999999999"} {
		sec, err = load(map[string]string{"GRPC_MAX_CONCURRENT_STREAMS": huge})
		if err != nil || sec.Limits.MaxConcurrentStreams != math.MaxUint32 {
			t.Fatalf("GRPC_MAX_CONCURRENT_STREAMS=%s: %d streams (%v), want %d", huge, sec.Limits.MaxConcurrentStreams, err, uint32(math.MaxUint32))
		}
	}
	_, err = load(map[string]string{"GRPC_REFLECTION": "yes", "GRPC_MAX_CONCURRENT_STREAMS": "0", "GRPC_MAX_CONNS_PER_PEER": "-1",
		"GRPC_MAX_RECV_MSG_BYTES": "12", "GRPC_MAX_CONNECTION_AGE": "soon"})
	for _, name := range []string{"GRPC_REFLECTION", "GRPC_MAX_CONCURRENT_STREAMS", "GRPC_MAX_CONNS_PER_PEER", "GRPC_MAX_RECV_MSG_BYTES", "GRPC_MAX_CONNECTION_AGE"} {
		if err == nil || !strings.Contains(err.Error(), name+"=") {
			t.Fatalf("bad %s not named: %v", name, err)
		}
	}
}

// A connection past MaxConnectionAge is asked to reconnect (so clients
// reach replicas added since); a stream still open after the grace ends
// UNAVAILABLE, which a watcher resumes from, and the client's next call
// goes over a new connection.
func TestOldConnectionsAreRecycled(t *testing.T) {
	t.Parallel()
	tokens := openTokens(t, writeTokens(t, allTokens))
	srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t), Policy: followPolicy,
		Security: grpcserver.Security{Tokens: tokens, Limits: grpcserver.Limits{MaxConnectionAge: 200 * time.Millisecond, MaxConnectionAgeGrace: 200 * time.Millisecond}}})
	srv.GRPC.RegisterService(&followDesc, &follower{beat: make(chan struct{})})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveUntilCleanup(t, srv, lis)
	conn := grpcservertest.Dial(t, lis.Addr().String())

	s := follow(t, context.Background(), conn, readerTok)
	testkit.WantCode(t, ended(t, s), codes.Unavailable)
	s = follow(t, context.Background(), conn, readerTok)
	testkit.WantCode(t, ended(t, s), codes.Unavailable)
}
