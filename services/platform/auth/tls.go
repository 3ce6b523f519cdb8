package auth

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
)

// ServerTLS is a TLS server configuration serving the certificate chain in
// certFile with the key in keyFile (PEM, TLS_CERT_FILE and TLS_KEY_FILE).
// Both files are read now, and again when either changes, so a renewed
// certificate (cert-manager rewriting a Secret) is served without a
// restart; a pair that does not load keeps the previous one and is logged.
func ServerTLS(certFile, keyFile string, logger *slog.Logger, opts ...TokensOption) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("set both TLS_CERT_FILE and TLS_KEY_FILE, or neither")
	}
	var o tokensOptions
	for _, f := range opts {
		f(&o)
	}
	w, err := newWatched("TLS certificate", []string{certFile, keyFile}, o.every, logger, nil, func(c [][]byte) (tls.Certificate, error) {
		cert, err := tls.X509KeyPair(c[0], c[1])
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("TLS_CERT_FILE %s / TLS_KEY_FILE %s: %w", certFile, keyFile, err)
		}
		return cert, nil
	})
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return w.get(), nil
		},
	}, nil
}

// PinnedTLS is a client configuration that trusts exactly the certificate
// server presents now, whatever names it holds: how a process dials its
// own TLS listener (the Requests JSON gateway calling its gRPC server).
func PinnedTLS(server *tls.Config) *tls.Config {
	current := func() []byte {
		if server.GetCertificate != nil {
			if c, err := server.GetCertificate(&tls.ClientHelloInfo{}); err == nil && c != nil && len(c.Certificate) > 0 {
				return c.Certificate[0]
			}
		}
		if len(server.Certificates) > 0 && len(server.Certificates[0].Certificate) > 0 {
			return server.Certificates[0].Certificate[0]
		}
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is not verified against a CA: the one certificate this
		// process serves is pinned below instead.
		InsecureSkipVerify: true, //nolint:gosec // pinned in VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], current()) {
				return errors.New("the server's certificate is not the one this process serves")
			}
			return nil
		},
	}
}
