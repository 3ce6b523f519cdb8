// Package auth is how slotwatch services know who calls them, and how their
// clients say who they are: bearer tokens mapped to roles, a method→role
// policy per service, TLS, and a per-caller rate limiter.
//
// # Tokens and roles
//
// A server reads AUTH_TOKENS_FILE: one "role token" per line, '#' starts a
// comment line, blank lines are skipped. Roles are checker, reader and
// admin. A token is at least 24 characters (`accountpool tokens generate`
// prints good ones). The file is re-read when its content changes (a
// Kubernetes Secret remounted by a symlink swap included); a file that no
// longer parses keeps the previous tokens in force and logs why, naming the
// line but never a token.
//
//	tokens, err := auth.OpenTokens(path, logger)
//
// Tokens are compared in constant time against every known token; only their
// SHA-256 digests are kept in memory.
//
// # Serving
//
// A service's main wires it through grpcserver, which runs auth (via the
// go-grpc-middleware auth and selector interceptors, health and reflection
// exempt), the rate limit and TLS in the shared chain:
//
//	env := envconfig.New()
//	sec, err := grpcserver.LoadSecurity(env, logger, listenAddr) // every API address
//	srv := grpcserver.New(grpcserver.Config{Name: "checker", ListenAddr: listenAddr,
//		MetricsAddr: metricsAddr, Logger: logger, Security: sec, Policy: server.Policy})
//
// LoadSecurity reads AUTH_TOKENS_FILE, TLS_CERT_FILE, TLS_KEY_FILE,
// RATE_LIMIT_RPS and RATE_LIMIT_BURST; without AUTH_TOKENS_FILE it accepts
// loopback addresses only, and Serve checks the real listeners again.
//
// # Policy
//
// Each service declares which roles may call each of its methods, by full
// method name. Admin may call every method that is listed; a method that is
// not listed is denied to everyone (fail closed). Health and reflection are
// exempt from auth altogether (the server skips them before the policy).
//
//	var Policy = auth.Policy{
//		checkerv1.CheckerService_GetStatus_FullMethodName:  {auth.RoleReader},
//		checkerv1.CheckerService_RunSession_FullMethodName: {auth.RoleAdmin}, // admin only
//	}
//
// Policy.Covers reports methods of a grpc.ServiceDesc the policy forgets (and
// names it lists that do not exist); grpcserver refuses to serve with auth on
// while any registered method is uncovered.
//
// A missing or unknown token is UNAUTHENTICATED; a known token whose role may
// not call the method is PERMISSION_DENIED. Handlers read the caller with
// CallerFrom(ctx). A unary call is checked once; an open stream is checked
// again on every reload of the tokens file (WatchAuthorization), and ends
// with UNAUTHENTICATED when its token is removed or PERMISSION_DENIED when
// its new role may not call the method.
//
// # Clients
//
// Services that call others (the Checker) and slotctl dial with
//
//	opts, err := auth.DialOptions(tokenFile, caFile) // or auth.DialOptionsFromEnv()
//	conn, err := grpc.NewClient(target, opts...)
//
// tokenFile (AUTH_TOKEN_FILE) holds the caller's one token, alone on its line
// or as a "role token" line; it is sent as "authorization: Bearer <token>"
// on every RPC and re-read when the file changes. An empty tokenFile sends
// no token (for a server with auth off). caFile (TLS_CA_FILE) holds the PEM
// CA certificates that sign the servers' certificates; set, the connection
// uses TLS and the token is only ever sent over it; empty, the connection is
// plaintext (inside a cluster behind NetworkPolicies, or on loopback).
//
// Package authtest has fixed test tokens, a tokens file and self-signed
// certificates for tests.
//
// # TLS on servers
//
// ServerTLS(certFile, keyFile, logger) loads TLS_CERT_FILE/TLS_KEY_FILE and
// re-reads them when they change, so a renewed certificate is served without
// a restart.
package auth
