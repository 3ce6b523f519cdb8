// Package auth is how slotwatch services know who calls them, and how their
// clients say who they are: bearer tokens mapped to roles, a method→role
// policy per service, TLS, and a per-caller rate limiter.
//
// # Tokens and roles
//
// A server reads AUTH_TOKENS_FILE: one "sha256:<64 hex> role name" line
// per token, '#' starts a comment line, blank lines are skipped. The hex is
// the SHA-256 of the token, so the file holds nothing a caller could
// present; role is checker, reader or admin; name labels the caller in
// request logs (caller.name, e.g. checker-prod). `accountpool tokens
// generate` makes tokens and prints each one once, with its line
// (GenerateTokens, DigestLine).
//
// Plaintext "role token" lines are still read, for a deprecation period:
// each load that finds any logs one warning naming their line numbers
// (never a token). Their caller's name is role-lineN.
//
// A token is at least 24 characters with at least 12 distinct characters
// from at least two of lowercase, uppercase, digits and symbols, and does
// not contain CHANGE-ME (any case, with or without '-' or '_'): the
// placeholders of secret.example.yaml are refused at start, in a server's
// plaintext lines and in a client's AUTH_TOKEN_FILE alike.
//
// Token and tokens files, like the keyset (package secrets), are refused
// at start when other users may read or write them or their group may
// write them (package secretfile; 0600, or a Secret volume's 0440 with an
// fsGroup, are fine; symlinks are followed).
//
// The file is re-read when its content changes (a Kubernetes Secret
// remounted by a symlink swap included). It fails closed: a file that is
// deleted, emptied or no longer parses, on two looks in a row (the second
// 100 ms after the first, so that a file rewritten in place is not caught
// half-written), leaves no token valid: every call is UNAUTHENTICATED and
// open streams end, logged at ERROR (naming the line, never a token),
// until a good file comes back.
//
//	tokens, err := auth.OpenTokens(path, logger)
//
// Tokens are compared in constant time against every known digest.
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
// Services that call others (the Checker, the Notifier) and slotctl dial with
//
//	cc, err := auth.ClientConfigFromEnv(os.LookupEnv) // AUTH_TOKEN_FILE, TLS_CA_FILE, TLS_INSECURE
//	conn, err := auth.Dial(target, cc) // grpc.NewClient with auth.DialOptions(target, cc)
//
// A server that went away is dialled again at most reconnect.MaxWait (10 s)
// apart, not gRPC's default of up to two minutes.
//
// TokenFile (AUTH_TOKEN_FILE) holds the caller's one token, alone on its
// line or as a "role token" line; it is sent as "authorization: Bearer
// <token>" on every RPC and re-read when the file changes. An empty
// TokenFile sends no token (for a server with auth off). CAFile
// (TLS_CA_FILE) holds the PEM CA certificates that sign the servers'
// certificates; set, the connection uses TLS and the token is only ever
// sent over it. Without it the connection is plaintext, which DialOptions
// refuses for a target that is not on loopback (127.0.0.0/8, ::1,
// localhost), a unix socket or an in-process passthrough name (bufconn),
// unless Insecure (TLS_INSECURE=true) says the network is trusted.
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
