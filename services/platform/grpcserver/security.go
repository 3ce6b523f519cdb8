package grpcserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"

	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
)

// Security is how a server knows its callers and protects its transport.
type Security struct {
	// Tokens authenticates callers (AUTH_TOKENS_FILE). Nil turns auth off,
	// which Serve allows only when every API listener is on loopback.
	Tokens *auth.Tokens
	// TLS, when set, serves gRPC and the extra HTTP handlers over TLS
	// (TLS_CERT_FILE, TLS_KEY_FILE).
	TLS *tls.Config
	// RateLimit is the requests per second each caller may make on average
	// (RATE_LIMIT_RPS; 0 is no limit), RateBurst how many at once
	// (RATE_LIMIT_BURST). A stream counts once, when it opens.
	RateLimit float64
	RateBurst int
	// Limits bound connections, streams and message sizes (GRPC_*).
	Limits Limits
	// Reflection registers gRPC server reflection (GRPC_REFLECTION=true),
	// which grpcurl needs without proto files. Off unless asked for: it
	// tells anyone who can connect every method and message.
	Reflection bool
}

// Default rate limit per caller.
const (
	DefaultRateLimit = 50
	DefaultRateBurst = 100
)

// HowToMakeTokens is what to tell an operator who needs a tokens file.
const HowToMakeTokens = "make tokens with `accountpool tokens generate`, put the sha256: lines it prints in a file (chmod 600) and point AUTH_TOKENS_FILE at it"

// LoadSecurity reads AUTH_TOKENS_FILE, TLS_CERT_FILE, TLS_KEY_FILE,
// RATE_LIMIT_RPS, RATE_LIMIT_BURST, GRPC_REFLECTION and the GRPC_* limits,
// and opens the files. apiAddrs are
// the addresses that serve the API (LISTEN_ADDR, a gateway's HTTP_ADDR):
// without AUTH_TOKENS_FILE each must be a loopback address, and auth being
// off is logged as a warning; otherwise it is an error.
func LoadSecurity(env *envconfig.Loader, logger *slog.Logger, apiAddrs ...string) (Security, error) {
	tokensFile := env.String("AUTH_TOKENS_FILE", "")
	certFile, keyFile := env.String("TLS_CERT_FILE", ""), env.String("TLS_KEY_FILE", "")
	sec := Security{
		RateLimit:  env.Float("RATE_LIMIT_RPS", DefaultRateLimit),
		RateBurst:  env.Int("RATE_LIMIT_BURST", DefaultRateBurst, 1),
		Limits:     loadLimits(env),
		Reflection: env.Bool("GRPC_REFLECTION", false),
	}
	if err := env.Err(); err != nil {
		return sec, err
	}
	if tokensFile != "" {
		t, err := auth.OpenTokens(tokensFile, logger)
		if err != nil {
			return sec, err
		}
		sec.Tokens = t
		n := t.Count()
		logger.Info("auth on", "tokens_file", tokensFile, "admin_tokens", n[auth.RoleAdmin],
			"checker_tokens", n[auth.RoleChecker], "reader_tokens", n[auth.RoleReader])
	}
	if certFile != "" || keyFile != "" {
		tc, err := auth.ServerTLS(certFile, keyFile, logger)
		if err != nil {
			return sec, err
		}
		sec.TLS = tc
	}
	if err := CheckExposure(sec, apiAddrs...); err != nil {
		return sec, err
	}
	return sec, nil
}

// CheckExposure refuses to serve without auth on any address other than a
// loopback one.
func CheckExposure(sec Security, apiAddrs ...string) error {
	if sec.Tokens != nil {
		return nil
	}
	for _, a := range apiAddrs {
		if a != "" && !auth.IsLoopback(a) {
			return fmt.Errorf("auth is off (AUTH_TOKENS_FILE is not set) and %s is not a loopback address: "+
				"set AUTH_TOKENS_FILE (%s), or listen on 127.0.0.1 only", a, HowToMakeTokens)
		}
	}
	return nil
}

// Exempt says whether a service is open without auth or rate limit: health
// (probes) and reflection (grpcurl list).
func Exempt(service string) bool {
	return service == healthpb.Health_ServiceDesc.ServiceName ||
		strings.HasPrefix(service, "grpc.reflection.")
}

// checkSecurity runs before serving: without auth every TCP listener of
// the API must be on loopback (in-process listeners such as bufconn are
// fine), and with auth every registered method must be in the policy.
func (s *Server) checkSecurity(lis net.Listener, extra map[string]http.Handler) error {
	sec := s.cfg.Security
	if sec.Tokens == nil {
		addrs := make([]string, 0, len(extra)+1)
		if tcp, ok := lis.Addr().(*net.TCPAddr); ok {
			addrs = append(addrs, tcp.String())
		}
		for a := range extra {
			addrs = append(addrs, a)
		}
		sort.Strings(addrs)
		if err := CheckExposure(sec, addrs...); err != nil {
			return err
		}
		s.cfg.Logger.Warn("AUTH IS OFF: every caller may call every method; this is only allowed on loopback. Set AUTH_TOKENS_FILE to turn it on.",
			"service", s.cfg.Name)
		return nil
	}
	return s.cfg.Policy.CoversServer(s.GRPC.GetServiceInfo(), Exempt)
}

// SelfCredentials are the transport credentials with which a client inside
// this process (a JSON gateway) dials this server: plaintext, or TLS that
// trusts exactly the certificate this server presents.
func (s *Server) SelfCredentials() credentials.TransportCredentials {
	if s.cfg.Security.TLS == nil {
		return insecure.NewCredentials()
	}
	return credentials.NewTLS(auth.PinnedTLS(s.cfg.Security.TLS))
}

func authFunc(tokens *auth.Tokens, policy auth.Policy) grpcauth.AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		method, _ := grpc.Method(ctx)
		id, err := auth.Authorize(ctx, tokens, policy, method)
		switch {
		case id.Role != "":
			setCaller(ctx, string(id.Role), id.Name)
		case err != nil:
			setCaller(ctx, "unauthenticated", "")
		}
		if err != nil {
			return nil, err
		}
		return auth.WithCaller(ctx, id), nil
	}
}

// endStreamsOnRevoke ends an authenticated stream as soon as a reload of
// the tokens file revokes its token (UNAUTHENTICATED) or gives it a role
// the policy no longer allows for the method (PERMISSION_DENIED): the
// stream's context is cancelled with that status as its cause, which the
// stream then ends with whatever the handler returns, and nothing more is
// sent. Unary calls are checked per call and need none of this. The
// watching goroutine returns when the stream's context ends, which the
// deferred cancel guarantees once the handler has returned.
func endStreamsOnRevoke(tokens *auth.Tokens, policy auth.Policy) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		id, ok := auth.CallerFrom(ss.Context())
		if !ok { // the auth interceptor runs first; nothing to watch without it
			return handler(srv, ss)
		}
		ctx, cancel := context.WithCancelCause(ss.Context())
		defer cancel(nil)
		go func() {
			if err := auth.WatchAuthorization(ctx, tokens, policy, id, info.FullMethod); err != nil {
				cancel(revokedError{err})
			}
		}()
		err := handler(srv, &revocableStream{ServerStream: ss, ctx: ctx})
		if rerr := revocation(ctx); rerr != nil {
			return rerr
		}
		return err
	}
}

// revokedError marks a stream context's cause as endStreamsOnRevoke's, as
// opposed to the client going away or the server stopping.
type revokedError struct{ status error }

func (e revokedError) Error() string { return e.status.Error() }

// revocation returns the status a stream ended by endStreamsOnRevoke ends
// with, or nil.
func revocation(ctx context.Context) error {
	var r revokedError
	if errors.As(context.Cause(ctx), &r) {
		return r.status
	}
	return nil
}

type revocableStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *revocableStream) Context() context.Context { return s.ctx }

// SendMsg sends nothing once the caller's authorization is gone, even if
// the handler has not looked at its context yet.
func (s *revocableStream) SendMsg(m any) error {
	if s.ctx.Err() != nil {
		if err := revocation(s.ctx); err != nil {
			return err
		}
	}
	return s.ServerStream.SendMsg(m)
}

func rateLimited(ctx context.Context, l *auth.RateLimiter) error {
	id, _ := auth.CallerFrom(ctx)
	if ok, wait := l.Allow(id); !ok {
		return apierr.RetryAfter("rate limit exceeded for this caller (RATE_LIMIT_RPS): retry after the delay in RetryInfo", wait)
	}
	return nil
}

func unaryRateLimit(l *auth.RateLimiter) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := rateLimited(ctx, l); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func streamRateLimit(l *auth.RateLimiter) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := rateLimited(ss.Context(), l); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}
