package auth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
)

// NewToken returns 32 random bytes, base64url without padding: 43
// characters.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// GenerateTokens writes a tokens file with one new token per role.
func GenerateTokens(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# slotwatch AUTH_TOKENS_FILE: \"role token\" per line. Give each client the line of its role.\n")
	for _, r := range Roles {
		tok, err := NewToken()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s\n", r, tok)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// IsLoopback says whether addr ("127.0.0.1:50051", "[::1]:50051",
// "localhost:50051") listens on a loopback address only. An empty host
// (":50051") listens on every interface, so it is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
