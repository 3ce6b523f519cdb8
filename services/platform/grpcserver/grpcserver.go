// Package grpcserver is the one way a slotwatch service serves gRPC: the
// shared interceptor chain, health (and reflection when asked for), limits
// on what one caller can hold, a metrics endpoint, and a graceful stop when
// the context ends.
package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/slotwatch/slotwatch/services/platform/auth"
)

// Config is what every service sets up the same way.
type Config struct {
	// Name labels logs ("accountpool").
	Name string
	// ListenAddr is the gRPC address (":50051").
	ListenAddr string
	// MetricsAddr serves /metrics and the probes /healthz and /readyz, in
	// plaintext whatever the gRPC port does; empty turns it off.
	MetricsAddr string
	// Logger receives request logs; slog.Default() when nil.
	Logger *slog.Logger
	// Registry collects metrics; a new registry when nil.
	Registry *prometheus.Registry
	// ShutdownTimeout bounds the graceful stop before in-flight RPCs are cut
	// (default 20s).
	ShutdownTimeout time.Duration
	// Unary and Stream are extra interceptors run after the shared chain,
	// right before the handler.
	Unary  []grpc.UnaryServerInterceptor
	Stream []grpc.StreamServerInterceptor
	// LargestRequestBytes is the largest request message a method of this
	// service legitimately receives, when that is more than the default
	// limit (Requests' ReportCheckResult with its most slots). The server
	// reads messages up to the larger of it and Security.Limits.MaxRecvMsgBytes.
	LargestRequestBytes int
	// Security is auth, TLS, the rate limit, the connection limits and
	// reflection (LoadSecurity reads them from the environment). Its zero
	// value is no auth, plaintext, no rate limit, the default Limits and
	// no reflection; Serve allows no auth on loopback and in-process
	// listeners only.
	Security Security
	// Policy says which roles may call each method of the services
	// registered on this server; with auth on, Serve refuses to start while
	// a registered method is missing from it, and an unlisted method is
	// denied. Health and reflection are exempt.
	Policy auth.Policy
}

// Server is a gRPC server with the shared chain, health and, when asked
// for, reflection.
type Server struct {
	GRPC     *grpc.Server
	Health   *health.Server
	Registry *prometheus.Registry
	cfg      Config
	metrics  *grpcprom.ServerMetrics
	// refused counts connections closed by the per-peer limit.
	refused prometheus.Counter
	// stopping closes when the graceful stop begins; streams end then.
	stopping chan struct{}
	// notServing is what SetServing last said, applied by Serve too.
	notServing atomic.Bool
	servingMu  sync.Mutex // applyServing
	// httpTimeouts apply to every HTTP server Serve starts.
	httpTimeouts httpTimeouts
}

// SetServing sets the server's health, overall (service "") and for each
// service registered on s.GRPC: SERVING when ok, NOT_SERVING otherwise,
// for a dependency the server cannot work without. Serve starts with the
// last value set (SERVING if never set), so a server that is not ready
// when it starts never briefly says it is.
func (s *Server) SetServing(ok bool) {
	s.notServing.Store(!ok)
	s.applyServing()
}

func (s *Server) applyServing() {
	// One at a time, each reading the latest value: a SetServing racing
	// Serve's first apply is not overwritten by the value Serve read
	// before it.
	s.servingMu.Lock()
	defer s.servingMu.Unlock()
	st := healthpb.HealthCheckResponse_SERVING
	if s.notServing.Load() {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	s.Health.SetServingStatus("", st)
	for name := range s.GRPC.GetServiceInfo() {
		s.Health.SetServingStatus(name, st)
	}
}

// New builds the server. Register services on s.GRPC, then call Run.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 20 * time.Second
	}
	cfg.Security.Limits = cfg.Security.Limits.withDefaults()
	cfg.Security.Limits.MaxRecvMsgBytes = max(cfg.Security.Limits.MaxRecvMsgBytes, cfg.LargestRequestBytes)
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	refused := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "slotwatch_grpc_connections_refused_total",
		Help: "gRPC connections closed on accept because their peer already held GRPC_MAX_CONNS_PER_PEER.",
	})
	cfg.Registry.MustRegister(metrics, refused, buildInfo())

	// The chain, outermost first: metrics; request logging (requestlog.go:
	// method, code, duration, caller role and name; never payloads or
	// metadata); panic recovery; auth (for a stream, checked again on
	// every reload of the tokens file, see endStreamsOnRevoke) and the rate
	// limit, both skipped for health and reflection; then the service's own
	// interceptors.
	logger := cfg.Logger
	recoverOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})}
	guarded := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool { return !Exempt(c.Service) })
	limiter := auth.NewRateLimiter(cfg.Security.RateLimit, cfg.Security.RateBurst)

	unary := []grpc.UnaryServerInterceptor{
		metrics.UnaryServerInterceptor(),
		logUnary(logger),
		recovery.UnaryServerInterceptor(recoverOpts...),
	}
	stopping := make(chan struct{})
	stream := []grpc.StreamServerInterceptor{
		endStreamsOnStop(stopping),
		metrics.StreamServerInterceptor(),
		logStream(logger),
		recovery.StreamServerInterceptor(recoverOpts...),
	}
	if tokens := cfg.Security.Tokens; tokens != nil {
		authFn := authFunc(tokens, cfg.Policy)
		unary = append(unary, selector.UnaryServerInterceptor(grpcauth.UnaryServerInterceptor(authFn), guarded))
		stream = append(stream, selector.StreamServerInterceptor(grpcauth.StreamServerInterceptor(authFn), guarded),
			selector.StreamServerInterceptor(endStreamsOnRevoke(tokens, cfg.Policy), guarded))
	}
	if limiter != nil {
		unary = append(unary, selector.UnaryServerInterceptor(unaryRateLimit(limiter), guarded))
		stream = append(stream, selector.StreamServerInterceptor(streamRateLimit(limiter), guarded))
	}
	unary = append(unary, cfg.Unary...)
	stream = append(stream, cfg.Stream...)

	opts := append([]grpc.ServerOption{grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...)},
		cfg.Security.Limits.serverOptions()...)
	if cfg.Security.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.Security.TLS)))
	}
	gs := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	if cfg.Security.Reflection {
		reflection.Register(gs)
	}
	return &Server{GRPC: gs, Health: hs, Registry: cfg.Registry, cfg: cfg, metrics: metrics, refused: refused, stopping: stopping,
		httpTimeouts: defaultHTTPTimeouts}
}

// endStreamsOnStop cancels a stream's context when the server begins to
// stop. Unary calls run to their end, but a long-lived stream (a watch)
// would otherwise hold the graceful stop until its timeout; its client
// reconnects to another replica instead. A handler that then fails as work
// on a cancelled context does (CANCELLED) is answered UNAVAILABLE: the
// client cancelled nothing, and UNAVAILABLE tells it to try again.
func endStreamsOnStop(stopping <-chan struct{}) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		go func() {
			select {
			case <-stopping:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := handler(srv, &streamWithContext{ServerStream: ss, ctx: ctx})
		if (errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled) && ss.Context().Err() == nil && closed(stopping) {
			return errServerStopping
		}
		return err
	}
}

// errServerStopping ends a stream the graceful stop cut short.
var errServerStopping = status.Error(codes.Unavailable, "server is stopping: try again (another replica serves)")

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

type streamWithContext struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *streamWithContext) Context() context.Context { return s.ctx }

// Run listens on cfg.ListenAddr (and cfg.MetricsAddr) until ctx ends, then
// stops gracefully: health turns NOT_SERVING, in-flight RPCs finish.
func (s *Server) Run(ctx context.Context) error {
	lis, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.ListenAddr, err)
	}
	return s.Serve(ctx, lis, nil)
}

// Serve is Run on a given listener; extra HTTP servers (a JSON gateway) are
// run and shut down alongside.
func (s *Server) Serve(ctx context.Context, lis net.Listener, extra map[string]http.Handler) error {
	if err := s.checkSecurity(lis, extra); err != nil {
		lis.Close()
		return err
	}
	lis = limitPeers(lis, s.cfg.Security.Limits.MaxConnsPerPeer, s.refused)
	s.metrics.InitializeMetrics(s.GRPC)
	s.applyServing()
	g, ctx := errgroup.WithContext(ctx)

	// A list, not a map by address: METRICS_ADDR and an extra address
	// that are the same (":0" in tests, or a mistake) are each listened
	// on, and a real clash fails to listen instead of one server
	// silently taking the other's place.
	type httpServer struct {
		addr    string
		handler http.Handler
		api     bool
	}
	var https []httpServer
	if s.cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry}))
		mux.HandleFunc("GET /healthz", s.healthz)
		mux.HandleFunc("GET /readyz", s.readyz)
		https = append(https, httpServer{addr: s.cfg.MetricsAddr, handler: mux})
	}
	for addr, h := range extra {
		// Extra handlers (a JSON gateway) are the API too: TLS like gRPC,
		// and a caller without a token is turned away before its body is
		// read. Metrics stay plaintext for the scraper.
		https = append(https, httpServer{addr: addr, handler: h, api: true})
	}
	// Every address is listened on before any server starts, so that a
	// failure leaves nothing running.
	listeners := make([]net.Listener, len(https))
	for i, h := range https {
		hl, err := net.Listen("tcp", h.addr)
		if err != nil {
			for _, l := range append(listeners[:i], lis) {
				l.Close()
			}
			return fmt.Errorf("listen on %s: %w", h.addr, err)
		}
		listeners[i] = hl
	}
	for i, h := range https {
		addr, hl := h.addr, listeners[i]
		srv := s.httpServer(h.handler, h.api)
		useTLS := h.api && s.cfg.Security.TLS != nil
		if useTLS {
			srv.TLSConfig = s.cfg.Security.TLS.Clone()
		}
		g.Go(func() error {
			serve := func() error { return srv.Serve(hl) }
			if useTLS {
				serve = func() error { return srv.ServeTLS(hl, "", "") }
			}
			if err := serve(); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http %s: %w", addr, err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}

	g.Go(func() error {
		s.cfg.Logger.Info("serving gRPC", "service", s.cfg.Name, "addr", lis.Addr().String())
		if err := s.GRPC.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve gRPC: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		s.cfg.Logger.Info("stopping: letting in-flight RPCs finish", "service", s.cfg.Name)
		s.Health.Shutdown()
		close(s.stopping)
		done := make(chan struct{})
		go func() { s.GRPC.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(s.cfg.ShutdownTimeout):
			s.cfg.Logger.Warn("graceful stop timed out; cutting remaining RPCs", "service", s.cfg.Name)
			s.GRPC.Stop()
		}
		return nil
	})
	return g.Wait()
}

// healthz is the liveness probe: the process answers. Kubernetes probes
// it over plaintext HTTP on the metrics port, so turning TLS on for gRPC
// (which kubelet's gRPC probe cannot speak) does not fail the probes.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

// readyz is the readiness probe: 200 while the server's overall gRPC
// health ("") is SERVING, 503 otherwise (starting, a dependency down such
// as the Checker's browser, or stopping), with the status in the body.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	st := healthpb.HealthCheckResponse_UNKNOWN
	if resp, err := s.Health.Check(r.Context(), &healthpb.HealthCheckRequest{}); err == nil {
		st = resp.GetStatus()
	}
	if st != healthpb.HealthCheckResponse_SERVING {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = io.WriteString(w, st.String()+"\n")
}
