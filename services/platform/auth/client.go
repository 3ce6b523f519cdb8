package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/slotwatch/slotwatch/services/platform/reconnect"
	"github.com/slotwatch/slotwatch/services/platform/secretfile"
)

// ClientConfig is how a slotwatch client dials: its token, the CA it
// trusts, and whether it may speak plaintext to a remote server.
type ClientConfig struct {
	// TokenFile (AUTH_TOKEN_FILE) holds the caller's bearer token; empty
	// sends no token.
	TokenFile string
	// CAFile (TLS_CA_FILE) holds PEM CA certificates; set, the connection
	// uses TLS verified against them.
	CAFile string
	// Insecure (TLS_INSECURE=true) allows plaintext to a target that is not
	// on loopback.
	Insecure bool
}

// ClientConfigFromEnv reads AUTH_TOKEN_FILE, TLS_CA_FILE and TLS_INSECURE
// through lookup (os.LookupEnv, or an envconfig.Loader's Lookup).
func ClientConfigFromEnv(lookup func(string) (string, bool)) (ClientConfig, error) {
	var c ClientConfig
	c.TokenFile, _ = lookup("AUTH_TOKEN_FILE")
	c.CAFile, _ = lookup("TLS_CA_FILE")
	if v, ok := lookup("TLS_INSECURE"); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("TLS_INSECURE=%q: want true or false", v)
		}
		c.Insecure = b
	}
	return c, nil
}

// DialOptions are the transport and per-RPC credentials with which a
// slotwatch client dials target (as given to grpc.NewClient). The token
// file is read now (an error if it is missing, open to other users, or
// holds no token or a weak one) and re-read when it changes. Without a CA
// file the connection is plaintext, which is refused unless target is on
// loopback (127.0.0.0/8, ::1, localhost), a unix socket or an in-process
// passthrough name (bufconn), or c.Insecure is set: the token, and the
// passwords and passport numbers in replies, would cross the network in
// the clear.
//
// Calls are spread over every address the target resolves to (round_robin):
// dialled as dns:///accountpool:50051, a headless Service's name gives one
// address per pod, and every replica gets its share. The servers'
// MaxConnectionAge makes clients resolve again, so new replicas do too.
//
// A server that went away is dialled again at most reconnect.MaxWait apart
// (gRPC adds its jitter of up to 20 %): gRPC's default wait grows (x1.6)
// to two minutes, so after an outage of a minute or more a client's calls
// failed at once for up to two minutes after the server was back.
func DialOptions(target string, c ClientConfig) ([]grpc.DialOption, error) {
	b := backoff.DefaultConfig
	b.MaxDelay = reconnect.MaxWait // one cap for every reconnection of ours, Postgres's LISTEN too
	opts := []grpc.DialOption{
		grpc.WithDefaultServiceConfig(roundRobin),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: b, MinConnectTimeout: minConnectTimeout}),
	}
	secure := c.CAFile != ""
	if secure {
		tc, err := ClientTLS(c.CAFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	} else {
		if !c.Insecure && !LocalTarget(target) {
			return nil, fmt.Errorf("refusing to dial %s in plaintext: it is not a loopback address, so the bearer token and the secrets in replies "+
				"would cross the network in the clear; set TLS_CA_FILE to the CA that signed the server's certificate (TLS), "+
				"or TLS_INSECURE=true to accept plaintext on a network you trust", target)
		}
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if c.TokenFile != "" {
		creds, err := NewTokenCredentials(c.TokenFile, secure)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(creds))
	}
	return opts, nil
}

// Dial is grpc.NewClient(target) with DialOptions(target, c): how every
// slotwatch client connects. Like grpc.NewClient it does not connect yet;
// the first call does.
func Dial(target string, c ClientConfig) (*grpc.ClientConn, error) {
	opts, err := DialOptions(target, c)
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(target, opts...)
}

// minConnectTimeout is gRPC's default: a connection attempt may take this
// long however short the backoff.
const minConnectTimeout = 20 * time.Second

// roundRobin is the client's default service config: one sub-connection
// per resolved address, calls taken in turn.
const roundRobin = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// LocalTarget says whether a grpc.NewClient target stays on this machine:
// a loopback host (127.0.0.0/8, ::1, localhost) with the dns, passthrough,
// ipv4 or ipv6 scheme or none, a unix socket, or a passthrough name with no
// port, which only an in-process dialer (bufconn) can reach.
func LocalTarget(target string) bool {
	scheme, rest, ok := strings.Cut(target, ":")
	if !ok {
		return IsLoopback(target)
	}
	endpoint := func() string {
		if r, found := strings.CutPrefix(rest, "//"); found {
			_, ep, _ := strings.Cut(r, "/") // drop the authority
			return ep
		}
		return rest
	}
	switch scheme {
	case "unix", "unix-abstract":
		return true
	case "passthrough":
		ep := endpoint()
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return ep != ""
		}
		return IsLoopback(ep)
	case "dns":
		return IsLoopback(endpoint())
	case "ipv4", "ipv6":
		for _, a := range strings.Split(rest, ",") {
			if !IsLoopback(a) {
				return false
			}
		}
		return true
	}
	return IsLoopback(target) // "127.0.0.1:50051", "localhost:50051", "[::1]:50051"
}

// ClientTLS is a TLS client configuration that trusts the CA certificates
// in caFile (PEM).
func ClientTLS(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("TLS_CA_FILE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS_CA_FILE %s: no PEM certificate in it", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// TokenCredentials sends the token of a file as a bearer token on every
// RPC. It implements credentials.PerRPCCredentials.
type TokenCredentials struct {
	w      *watched[string]
	secure bool
}

// NewTokenCredentials reads tokenFile now and again whenever it changes.
// A file other users may read, or holding a placeholder or weak token, is
// refused. requireTLS is whether the token may only travel over TLS.
func NewTokenCredentials(tokenFile string, requireTLS bool, opts ...TokensOption) (*TokenCredentials, error) {
	var o tokensOptions
	for _, f := range opts {
		f(&o)
	}
	if err := secretfile.CheckMode(tokenFile, "AUTH_TOKEN_FILE"); err != nil {
		return nil, err
	}
	w, err := newWatched("auth token file", []string{tokenFile}, o.every, nil, nil, func(c [][]byte) (string, error) {
		tok, err := parseToken(c[0])
		if err != nil {
			return "", fmt.Errorf("AUTH_TOKEN_FILE %s: %w", tokenFile, err)
		}
		return tok, nil
	})
	if err != nil {
		return nil, err
	}
	return &TokenCredentials{w: w, secure: requireTLS}, nil
}

// parseToken reads a client's token file: one token, alone on its line or
// after its role (a line cut from a server's tokens file); '#' comment
// lines and blank lines are skipped.
func parseToken(b []byte) (string, error) {
	var tok string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if tok != "" {
			return "", fmt.Errorf("line %d: a second token: the file must hold one", n)
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 1:
			tok = f[0]
		case len(f) == 2 && knownRole(Role(f[0])):
			tok = f[1]
		default:
			return "", fmt.Errorf("line %d: want \"token\" or \"role token\"", n)
		}
		if err := checkToken(tok); err != nil {
			return "", fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if tok == "" {
		return "", errors.New("no token in it")
	}
	return tok, nil
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c *TokenCredentials) GetRequestMetadata(_ context.Context, _ ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + *c.w.get()}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (c *TokenCredentials) RequireTransportSecurity() bool { return c.secure }
