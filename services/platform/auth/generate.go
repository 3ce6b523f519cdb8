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

// NewCaller is a new token for one caller: Token goes, alone, into the
// caller's AUTH_TOKEN_FILE, and Line() into the AUTH_TOKENS_FILE of every
// server it calls.
type NewCaller struct {
	Role  Role
	Name  string
	Token string
}

// Line is the caller's digest line for servers' tokens files.
func (c NewCaller) Line() string { return DigestLine(c.Role, c.Name, c.Token) }

// GenerateCaller makes a new token for a caller of role named name (a
// label for logs: 1 to 64 letters, digits, '.', '_' or '-').
func GenerateCaller(role Role, name string) (NewCaller, error) {
	if !knownRole(role) {
		return NewCaller{}, fmt.Errorf("unknown role %q: want admin, checker or reader", role)
	}
	if !validName(name) {
		return NewCaller{}, fmt.Errorf("caller name %q: want 1 to %d letters, digits, '.', '_' or '-'", name, maxNameLen)
	}
	tok, err := NewToken()
	if err != nil {
		return NewCaller{}, err
	}
	return NewCaller{Role: role, Name: name, Token: tok}, nil
}

// GenerateTokens makes a token for each caller ("role" or "role:name"; none
// means one admin, checker and reader, each named after its role) and
// writes, once, both what goes to the servers (digest lines) and what goes
// to each client (its token, on a "token role name TOKEN" line, which a
// server refuses, so the whole output cannot be used as a tokens file by
// mistake).
func GenerateTokens(w io.Writer, callers ...string) error {
	if len(callers) == 0 {
		for _, r := range Roles {
			callers = append(callers, string(r))
		}
	}
	made := make([]NewCaller, 0, len(callers))
	for _, spec := range callers {
		role, name, ok := strings.Cut(spec, ":")
		if !ok {
			name = role
		}
		c, err := GenerateCaller(Role(role), name)
		if err != nil {
			return err
		}
		made = append(made, c)
	}
	var b strings.Builder
	b.WriteString("# New slotwatch tokens. Each token is shown here only, once: hand it over now.\n#\n")
	b.WriteString("# 1. Servers: add these lines to AUTH_TOKENS_FILE (of every service the caller calls).\n")
	b.WriteString("#    They hold only SHA-256 digests: nobody can call anything with them.\n")
	for _, c := range made {
		b.WriteString(c.Line() + "\n")
	}
	b.WriteString("#\n# 2. Clients: put the last field of a caller's line, alone, in its AUTH_TOKEN_FILE (chmod 600).\n")
	b.WriteString("#    These lines never go into AUTH_TOKENS_FILE (a server refuses them).\n")
	for _, c := range made {
		fmt.Fprintf(&b, "token %s %s %s\n", c.Role, c.Name, c.Token)
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
