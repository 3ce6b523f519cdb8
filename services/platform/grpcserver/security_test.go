package grpcserver_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

const (
	adminTok   = "admin-token-0123456789abcdefghij"
	checkerTok = "checker-token-0123456789abcdefgh"
	readerTok  = "reader-token-0123456789abcdefghi"
)

// The test service: Lease (checker), Read (reader), Panic (reader) and
// Watch, a server stream (reader).
const svc = "slotwatch.test.v1.TestService"

var policy = auth.Policy{
	"/" + svc + "/Lease": {auth.RoleChecker},
	"/" + svc + "/Read":  {auth.RoleReader},
	"/" + svc + "/Panic": {auth.RoleReader},
	"/" + svc + "/Watch": {auth.RoleReader},
}

type testService interface{}

func unary(name string, h func(ctx context.Context) error) grpc.MethodDesc {
	return grpc.MethodDesc{MethodName: name, Handler: func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		in := new(emptypb.Empty)
		if err := dec(in); err != nil {
			return nil, err
		}
		call := func(ctx context.Context, _ any) (any, error) { return &emptypb.Empty{}, h(ctx) }
		if icpt == nil {
			return call(ctx, in)
		}
		return icpt(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/" + svc + "/" + name}, call)
	}}
}

var desc = grpc.ServiceDesc{
	ServiceName: svc,
	HandlerType: (*testService)(nil),
	Methods: []grpc.MethodDesc{
		unary("Lease", func(context.Context) error { return nil }),
		unary("Read", func(ctx context.Context) error {
			if id, ok := auth.CallerFrom(ctx); !ok || id.Role == "" {
				return status.Error(codes.Internal, "handler sees no caller")
			}
			return nil
		}),
		unary("Panic", func(context.Context) error { panic("boom: handler bug") }),
	},
	Streams: []grpc.StreamDesc{{StreamName: "Watch", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
		if err := ss.RecvMsg(new(emptypb.Empty)); err != nil {
			return err
		}
		return ss.SendMsg(&emptypb.Empty{})
	}}},
}

func writeTokens(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var allTokens = auth.DigestLine(auth.RoleAdmin, "ops", adminTok) + "\n" + auth.DigestLine(auth.RoleChecker, "checker-prod", checkerTok) + "\n" +
	auth.DigestLine(auth.RoleReader, "grafana", readerTok) + "\n"

type harness struct {
	conn *grpc.ClientConn
	logs *testkit.SyncBuffer
}

// start serves the test service with the real chain over bufconn.
func start(t *testing.T, sec grpcserver.Security) *harness {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	logger, err := grpcserver.NewLogger(logs, "debug")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: logger, Security: sec, Policy: policy})
	srv.GRPC.RegisterService(&desc, struct{}{})
	lis := bufconn.Listen(1 << 20)
	serveUntilCleanup(t, srv, lis)
	return &harness{conn: authtest.DialBufconn(t, lis, ""), logs: logs}
}

// serveUntilCleanup serves srv on lis until the test ends, then stops it
// and reports a failed Serve.
func serveUntilCleanup(t *testing.T, srv *grpcserver.Server, lis net.Listener) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

func withToken(tok string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_ = cancel // the test's lifetime bounds it
	return withTokenCtx(ctx, tok)
}

// withTokenCtx is ctx carrying tok as a bearer token; "" sends none.
func withTokenCtx(ctx context.Context, tok string) context.Context {
	if tok == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

func (h *harness) call(tok, method string) error {
	return h.conn.Invoke(withToken(tok), "/"+svc+"/"+method, &emptypb.Empty{}, &emptypb.Empty{})
}

func (h *harness) watch(tok string) error {
	_, err := openStream(withToken(tok), h.conn, &desc.Streams[0], "/"+svc+"/Watch")
	return err
}

// openStream opens a server stream, sends its one request and waits for
// the first message.
func openStream(ctx context.Context, conn *grpc.ClientConn, sd *grpc.StreamDesc, method string) (grpc.ClientStream, error) {
	s, err := conn.NewStream(ctx, sd, method)
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(&emptypb.Empty{}); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	if err := s.RecvMsg(&emptypb.Empty{}); err != nil {
		return nil, err
	}
	return s, nil
}

func openTokens(t *testing.T, path string, opts ...auth.TokensOption) *auth.Tokens {
	t.Helper()
	tokens, err := auth.OpenTokens(path, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

func TestAuth(t *testing.T) {
	t.Parallel()

	t.Run("CodesByCaller", func(t *testing.T) {
		t.Parallel()
		h := start(t, grpcserver.Security{Tokens: openTokens(t, writeTokens(t, allTokens))})
		testkit.WantCode(t, h.call("", "Read"), codes.Unauthenticated)
		testkit.WantCode(t, h.call("an-unknown-token-0123456789abcdef", "Read"), codes.Unauthenticated)
		testkit.WantCode(t, h.call(checkerTok, "Read"), codes.PermissionDenied)
		testkit.WantCode(t, h.call(readerTok, "Lease"), codes.PermissionDenied)
		testkit.WantCode(t, h.call(checkerTok, "Lease"), codes.OK)
		testkit.WantCode(t, h.call(readerTok, "Read"), codes.OK)
		testkit.WantCode(t, h.call(adminTok, "Lease"), codes.OK)
		testkit.WantCode(t, h.call(adminTok, "Read"), codes.OK)
		testkit.WantCode(t, h.watch(""), codes.Unauthenticated)
		testkit.WantCode(t, h.watch(checkerTok), codes.PermissionDenied)
		testkit.WantCode(t, h.watch(readerTok), codes.OK)

		logs := h.logs.String()
		for _, tok := range []string{adminTok, checkerTok, readerTok, "an-unknown-token"} {
			if strings.Contains(logs, tok) || strings.Contains(logs, tok[:12]) {
				t.Fatalf("a token is in the logs: %s", logs)
			}
		}
		for _, want := range []string{`"caller.role":"checker","caller.name":"checker-prod"`, `"caller.role":"reader","caller.name":"grafana"`,
			`"caller.role":"admin","caller.name":"ops"`,
			`"caller.role":"unauthenticated"`, `"grpc.code":"PermissionDenied"`, `"grpc.method":"Lease"`, `"grpc.time_ms"`} {
			if !strings.Contains(logs, want) {
				t.Fatalf("logs lack %s: %s", want, logs)
			}
		}
	})

	t.Run("HealthAndReflectionNeedNoToken", func(t *testing.T) {
		t.Parallel()
		h := start(t, grpcserver.Security{Tokens: openTokens(t, writeTokens(t, allTokens)), RateLimit: 0.001, RateBurst: 1, Reflection: true})
		for range 3 { // the rate limit does not apply either
			resp, err := healthpb.NewHealthClient(h.conn).Check(withToken(""), &healthpb.HealthCheckRequest{})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("health: %v %v", resp, err)
			}
		}
		refl, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(withToken(""))
		if err != nil {
			t.Fatal(err)
		}
		if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		if _, err := refl.Recv(); err != nil {
			t.Fatalf("reflection without a token: %v", err)
		}
		_ = refl.CloseSend()
	})

	t.Run("TokensReloadWhenTheFileChanges", func(t *testing.T) {
		t.Parallel()
		path := writeTokens(t, allTokens)
		h := start(t, grpcserver.Security{Tokens: openTokens(t, path, auth.ReloadEvery(time.Millisecond))})
		testkit.WantCode(t, h.call(readerTok, "Read"), codes.OK)
		rotated := "rotated-reader-token-0123456789abc"
		if err := os.WriteFile(path, []byte("admin "+adminTok+"\nreader "+rotated+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for status.Code(h.call(rotated, "Read")) != codes.OK {
			if time.Now().After(deadline) {
				t.Fatal("the new token never worked")
			}
			time.Sleep(5 * time.Millisecond)
		}
		testkit.WantCode(t, h.call(readerTok, "Read"), codes.Unauthenticated)
	})

	t.Run("ServeRefusesAMethodMissingFromThePolicy", func(t *testing.T) {
		t.Parallel()
		srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t),
			Security: grpcserver.Security{Tokens: openTokens(t, writeTokens(t, allTokens))},
			Policy:   auth.Policy{"/" + svc + "/Read": {auth.RoleReader}}})
		srv.GRPC.RegisterService(&desc, struct{}{})
		err := srv.Serve(context.Background(), bufconn.Listen(1<<10), nil)
		if err == nil || !strings.Contains(err.Error(), "/"+svc+"/Lease") || strings.Contains(err.Error(), "Health") {
			t.Fatalf("want an error naming the uncovered methods, got %v", err)
		}
		if err := policy.Covers(&desc); err != nil {
			t.Fatalf("the test policy: %v", err)
		}
	})
}

func discard(t *testing.T) *slog.Logger {
	t.Helper()
	l, err := grpcserver.NewLogger(&testkit.SyncBuffer{}, "error")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestRateLimitPerCaller(t *testing.T) {
	t.Parallel()
	h := start(t, grpcserver.Security{Tokens: openTokens(t, writeTokens(t, allTokens)), RateLimit: 0.5, RateBurst: 3})
	for i := range 3 {
		if err := h.call(readerTok, "Read"); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	err := h.call(readerTok, "Read")
	testkit.WantCode(t, err, codes.ResourceExhausted)
	if d, ok := apierr.RetryDelay(err); !ok || d <= 0 || d > 2*time.Second {
		t.Fatalf("RetryInfo: %s %v", d, ok)
	}
	testkit.WantCode(t, h.watch(readerTok), codes.ResourceExhausted)
	// Another caller has its own bucket.
	testkit.WantCode(t, h.call(checkerTok, "Lease"), codes.OK)
	if strings.Contains(h.logs.String(), readerTok) {
		t.Fatal("the token is in the logs")
	}
}

func TestPanicBecomesInternalAndTheServerGoesOn(t *testing.T) {
	t.Parallel()
	h := start(t, grpcserver.Security{Tokens: openTokens(t, writeTokens(t, allTokens))})
	err := h.call(readerTok, "Panic")
	testkit.WantCode(t, err, codes.Internal)
	if strings.Contains(err.Error(), "boom") {
		t.Fatalf("the panic value reached the caller: %v", err)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "panic in handler") || !strings.Contains(logs, "boom: handler bug") || !strings.Contains(logs, "goroutine") {
		t.Fatalf("want a log line with the panic and its stack, got %s", logs)
	}
	for range 3 {
		testkit.WantCode(t, h.call(readerTok, "Read"), codes.OK)
	}
}

func TestAuthOffOnlyOnLoopback(t *testing.T) {
	t.Parallel()

	t.Run("ServeRefusesAWildcardListener", func(t *testing.T) {
		t.Parallel()
		srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t)})
		lis, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		err = srv.Serve(context.Background(), lis, nil)
		if err == nil || !strings.Contains(err.Error(), "AUTH_TOKENS_FILE") {
			t.Fatalf("want a refusal naming AUTH_TOKENS_FILE, got %v", err)
		}
	})

	t.Run("ServeRefusesAnExposedGateway", func(t *testing.T) {
		t.Parallel()
		srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t)})
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		err = srv.Serve(context.Background(), lis, map[string]http.Handler{":0": http.NotFoundHandler()})
		if err == nil || !strings.Contains(err.Error(), ":0 is not a loopback address") {
			t.Fatalf("want a refusal naming the gateway address, got %v", err)
		}
	})

	t.Run("LoopbackServesAndWarns", func(t *testing.T) {
		t.Parallel()
		logs := &testkit.SyncBuffer{}
		logger, _ := grpcserver.NewLogger(logs, "info")
		srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: logger})
		srv.GRPC.RegisterService(&desc, struct{}{})
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, lis, nil) }()
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Invoke(withToken(""), "/"+svc+"/Lease", &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
			t.Fatalf("auth off on loopback: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), `"level":"WARN","msg":"AUTH IS OFF`) {
			t.Fatalf("no warning that auth is off: %s", logs)
		}
	})

	t.Run("LoadSecurity", func(t *testing.T) {
		t.Parallel()
		tokens := writeTokens(t, allTokens)
		load := func(env map[string]string, addrs ...string) (grpcserver.Security, error) {
			l := &envconfig.Loader{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
			return grpcserver.LoadSecurity(l, discard(t), addrs...)
		}
		if _, err := load(nil, ":50051"); err == nil || !strings.Contains(err.Error(), "accountpool tokens generate") {
			t.Fatalf("no tokens on :50051: %v", err)
		}
		for _, a := range []string{"127.0.0.1:50051", "[::1]:50051", "localhost:50051"} {
			if sec, err := load(nil, a, "127.0.0.1:8082"); err != nil || sec.Tokens != nil || sec.RateLimit != grpcserver.DefaultRateLimit {
				t.Fatalf("no tokens on %s: %v", a, err)
			}
		}
		if _, err := load(nil, "127.0.0.1:50051", ":8082"); err == nil {
			t.Fatal("an exposed gateway without auth was accepted")
		}
		sec, err := load(map[string]string{"AUTH_TOKENS_FILE": tokens, "RATE_LIMIT_RPS": "0"}, ":50051")
		if err != nil || sec.Tokens == nil || sec.RateLimit != 0 {
			t.Fatalf("with tokens: %+v %v", sec, err)
		}
		if _, err := load(map[string]string{"AUTH_TOKENS_FILE": tokens, "TLS_CERT_FILE": "/x"}, ":1"); err == nil || !strings.Contains(err.Error(), "both") {
			t.Fatalf("cert without key: %v", err)
		}
		if _, err := load(map[string]string{"AUTH_TOKENS_FILE": filepath.Join(t.TempDir(), "missing")}, ":1"); err == nil {
			t.Fatal("a missing tokens file was accepted")
		}
		if _, err := load(map[string]string{"RATE_LIMIT_RPS": "fast"}, "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "RATE_LIMIT_RPS") {
			t.Fatalf("bad RATE_LIMIT_RPS: %v", err)
		}
	})
}

func TestTLSRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := authtest.SelfSigned(t, dir, "server")
	tlsCfg, err := auth.ServerTLS(certFile, keyFile, nil, auth.ReloadEvery(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t), Policy: policy,
		Security: grpcserver.Security{Tokens: openTokens(t, writeTokens(t, allTokens)), TLS: tlsCfg}})
	srv.GRPC.RegisterService(&desc, struct{}{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveUntilCleanup(t, srv, lis)
	addr := lis.Addr().String()

	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("reader "+readerTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	invoke := func(opts []grpc.DialOption, method string) error {
		conn, err := grpc.NewClient(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.Invoke(withToken(""), "/"+svc+"/"+method, &emptypb.Empty{}, &emptypb.Empty{})
	}
	opts, err := auth.DialOptions(addr, auth.ClientConfig{TokenFile: tokenFile, CAFile: certFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := invoke(opts, "Read"); err != nil {
		t.Fatalf("TLS round trip: %v", err)
	}
	testkit.WantCode(t, invoke(opts, "Lease"), codes.PermissionDenied)

	// A plaintext client cannot talk to it, and a client trusting another
	// CA refuses it.
	plain, _ := auth.DialOptions(addr, auth.ClientConfig{TokenFile: tokenFile})
	if err := invoke(plain, "Read"); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext client: %v", err)
	}
	otherCA, _ := authtest.SelfSigned(t, dir, "other")
	wrong, err := auth.DialOptions(addr, auth.ClientConfig{TokenFile: tokenFile, CAFile: otherCA})
	if err != nil {
		t.Fatal(err)
	}
	if err := invoke(wrong, "Read"); status.Code(err) != codes.Unavailable {
		t.Fatalf("client trusting another CA: %v", err)
	}
	// The process's own client (a gateway) pins the served certificate.
	self := []grpc.DialOption{grpc.WithTransportCredentials(srv.SelfCredentials()), grpc.WithPerRPCCredentials(mustCreds(t, tokenFile))}
	if err := invoke(self, "Read"); err != nil {
		t.Fatalf("self dial: %v", err)
	}

	// A renewed certificate is served without a restart.
	newCert, newKey := authtest.SelfSigned(t, dir, "renewed")
	for _, p := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // reads the served certificate
		if err != nil {
			t.Fatal(err)
		}
		cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName
		c.Close()
		if cn == "renewed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %s", cn)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := invoke(self, "Read"); err != nil {
		t.Fatalf("self dial after renewal: %v", err)
	}
}

func mustCreds(t *testing.T, tokenFile string) *auth.TokenCredentials {
	t.Helper()
	c, err := auth.NewTokenCredentials(tokenFile, true)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadEdgeGivesTheLoggerAtLogLevelAndTheSecurity(t *testing.T) {
	t.Parallel()
	load := func(env map[string]string, apiAddrs ...string) (*slog.Logger, grpcserver.Security, error) {
		return grpcserver.LoadEdge(&envconfig.Loader{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}, apiAddrs...)
	}
	ctx := t.Context()
	logger, _, err := load(nil, "127.0.0.1:50051")
	if err != nil || !logger.Enabled(ctx, slog.LevelInfo) || logger.Enabled(ctx, slog.LevelDebug) {
		t.Fatalf("no LOG_LEVEL: want info, got %v", err)
	}
	logger, _, err = load(map[string]string{"LOG_LEVEL": "warn"}, "127.0.0.1:50051")
	if err != nil || logger.Enabled(ctx, slog.LevelInfo) || !logger.Enabled(ctx, slog.LevelWarn) {
		t.Fatalf("LOG_LEVEL=warn: want warn, got %v", err)
	}
	if _, _, err := load(map[string]string{"LOG_LEVEL": "loud"}, "127.0.0.1:50051"); err == nil || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Fatalf("LOG_LEVEL=loud: want an error naming LOG_LEVEL, got %v", err)
	}
	if _, _, err := load(nil, ":50051"); err == nil {
		t.Fatal("no AUTH_TOKENS_FILE on every interface: want LoadSecurity's refusal")
	}
	_, sec, err := load(map[string]string{"AUTH_TOKENS_FILE": authtest.TokensFile(t)}, ":50051")
	if err != nil || sec.Tokens == nil {
		t.Fatalf("AUTH_TOKENS_FILE: want the tokens loaded, got %v", err)
	}
}

// TestLoadEdgeNamesEveryBadSettingAtOnce: LoadEdge stopped at its first
// bad step (LOG_LEVEL, then the memory limit, then the security), and
// WithEdgeErrors joins a service's own bad settings with all of them,
// each named once.
func TestLoadEdgeNamesEveryBadSettingAtOnce(t *testing.T) {
	t.Parallel()
	env := map[string]string{"LOG_LEVEL": "loud", "GO_MEMORY_SHARE": "2", "RATE_LIMIT_RPS": "fifty", "GRPC_MAX_CONNS_PER_PEER": "0",
		"OWN_SETTING": "bad"}
	l := &envconfig.Loader{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	l.Int("OWN_SETTING", 1, 1) // the service's own, read first
	err := grpcserver.WithEdgeErrors(l.Err(), l, "127.0.0.1:50051")
	if err == nil {
		t.Fatal("want a refusal")
	}
	for _, name := range []string{"OWN_SETTING", "LOG_LEVEL", "GO_MEMORY_SHARE", "RATE_LIMIT_RPS", "GRPC_MAX_CONNS_PER_PEER"} {
		if n := strings.Count(err.Error(), name); n != 1 {
			t.Errorf("%s named %d times, want once: %v", name, n, err)
		}
	}
	if err := grpcserver.WithEdgeErrors(nil, &envconfig.Loader{Lookup: func(string) (string, bool) { return "", false }}, "127.0.0.1:50051"); err != nil {
		t.Errorf("no bad setting: %v", err)
	}
}
