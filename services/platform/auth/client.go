package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// DialOptionsFromEnv is DialOptions(AUTH_TOKEN_FILE, TLS_CA_FILE).
func DialOptionsFromEnv() ([]grpc.DialOption, error) {
	return DialOptions(os.Getenv("AUTH_TOKEN_FILE"), os.Getenv("TLS_CA_FILE"))
}

// DialOptions are the transport and per-RPC credentials of a slotwatch
// client. tokenFile holds the client's bearer token (see the package doc);
// it is read now (an error if it is missing or holds no token) and re-read
// when it changes. An empty tokenFile sends no token. caFile holds PEM CA
// certificates: set, the connection uses TLS verified against them; empty,
// it is plaintext.
func DialOptions(tokenFile, caFile string) ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	secure := caFile != ""
	if secure {
		tc, err := ClientTLS(caFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if tokenFile != "" {
		creds, err := NewTokenCredentials(tokenFile, secure)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(creds))
	}
	return opts, nil
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
// requireTLS is whether the token may only travel over TLS.
func NewTokenCredentials(tokenFile string, requireTLS bool, opts ...TokensOption) (*TokenCredentials, error) {
	var o tokensOptions
	for _, f := range opts {
		f(&o)
	}
	w, err := newWatched("auth token file", []string{tokenFile}, o.every, nil, func(c [][]byte) (string, error) {
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
		if len(tok) < MinTokenLen {
			return "", fmt.Errorf("line %d: the token is %d characters; servers refuse tokens shorter than %d", n, len(tok), MinTokenLen)
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
