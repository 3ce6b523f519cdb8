// Package authtest makes what auth tests need: tokens files and
// self-signed TLS certificates, written to a test's temporary directory.
package authtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/slotwatch/slotwatch/services/platform/auth"
)

// Tokens a test server accepts, one per role.
const (
	AdminToken   = "admin-token-for-tests-0123456789abcdef"
	CheckerToken = "checker-token-for-tests-0123456789abcd"
	ReaderToken  = "reader-token-for-tests-0123456789abcde"
)

// TokensFile writes a servers' tokens file holding the digests of
// AdminToken, CheckerToken and ReaderToken, each caller named after its
// role, and returns its path.
func TokensFile(t testing.TB) string {
	t.Helper()
	return WriteFile(t, "tokens", auth.DigestLine(auth.RoleAdmin, "admin", AdminToken)+"\n"+
		auth.DigestLine(auth.RoleChecker, "checker", CheckerToken)+"\n"+auth.DigestLine(auth.RoleReader, "reader", ReaderToken)+"\n")
}

// WriteFile writes content to a new file, mode 600 (as token and keyset
// files must be), in a temporary directory.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// SelfSigned writes a self-signed certificate (its own CA) valid for
// localhost and 127.0.0.1, with commonName as subject, and its key, into
// dir; it returns their paths. The certificate file is also the CA file a
// client trusts.
func SelfSigned(t testing.TB, dir, commonName string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, commonName+".crt"), filepath.Join(dir, commonName+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// Tokens opens a tokens file holding AdminToken, CheckerToken and
// ReaderToken, as a server's AUTH_TOKENS_FILE would be.
func Tokens(t testing.TB) *auth.Tokens {
	t.Helper()
	tokens, err := auth.OpenTokens(TokensFile(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// Bearer sends a fixed token on every RPC, over plaintext connections too.
type Bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (Bearer) RequireTransportSecurity() bool { return false }

// Dial connects to target as every slotwatch client does (auth.Dial); the
// connection closes when the test ends.
func Dial(t testing.TB, target string, c auth.ClientConfig) *grpc.ClientConn {
	t.Helper()
	conn, err := auth.Dial(target, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// DialBufconn connects a client to a server serving on lis, sending token
// as the bearer token on every RPC (none when empty). The connection closes
// when the test ends.
func DialBufconn(t testing.TB, lis *bufconn.Listener, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(Bearer(token)))
	}
	conn, err := grpc.NewClient("passthrough:///bufnet", opts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
