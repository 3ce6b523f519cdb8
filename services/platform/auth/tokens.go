package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Role is what a caller may do.
type Role string

// The roles. Admin may call every method a policy lists.
const (
	RoleChecker Role = "checker"
	RoleReader  Role = "reader"
	RoleAdmin   Role = "admin"
)

// Roles lists every role, in the order a generated tokens file has them.
var Roles = []Role{RoleAdmin, RoleChecker, RoleReader}

func knownRole(r Role) bool {
	for _, k := range Roles {
		if r == k {
			return true
		}
	}
	return false
}

// MinTokenLen is the shortest token a tokens file may hold.
const MinTokenLen = 24

// maxTokenLen bounds what a caller may present; longer is simply unknown.
const maxTokenLen = 4096

// Identity is an authenticated caller.
type Identity struct {
	Role Role
	// digest is the SHA-256 of the caller's token: it tells callers apart
	// (the rate limiter's key) and is never logged.
	digest [sha256.Size]byte
}

type callerKey struct{}

// WithCaller returns ctx carrying id.
func WithCaller(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

// CallerFrom returns the caller that the server authenticated, if any.
func CallerFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(callerKey{}).(Identity)
	return id, ok
}

type tokenEntry struct {
	role   Role
	digest [sha256.Size]byte
}

type tokenSet []tokenEntry

// parseTokens reads a tokens file: "role token" per line, '#' comment lines
// and blank lines. An error names the line and never the token.
func parseTokens(b []byte) (tokenSet, error) {
	var set tokenSet
	seen := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"role token\" (two fields), got %d fields", n, len(f))
		}
		role := Role(f[0])
		if !knownRole(role) {
			return nil, fmt.Errorf("line %d: unknown role %s: want admin, checker or reader", n, quoteRole(f[0]))
		}
		if len(f[1]) < MinTokenLen {
			return nil, fmt.Errorf("line %d: the %s token is %d characters; tokens must be at least %d (make them with `accountpool tokens generate`)",
				n, role, len(f[1]), MinTokenLen)
		}
		if len(f[1]) > maxTokenLen {
			return nil, fmt.Errorf("line %d: the %s token is longer than %d characters", n, role, maxTokenLen)
		}
		d := sha256.Sum256([]byte(f[1]))
		if prev, ok := seen[d]; ok {
			return nil, fmt.Errorf("line %d: the same token as line %d: each token must be unique", n, prev)
		}
		seen[d] = n
		set = append(set, tokenEntry{role: role, digest: d})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("no tokens: want one \"role token\" line at least")
	}
	return set, nil
}

// quoteRole quotes a word found where a role belongs, unless it is long
// enough to be a token written first: that is never echoed.
func quoteRole(s string) string {
	if len(s) > 12 {
		return fmt.Sprintf("(a %d-character word: is the token before the role?)", len(s))
	}
	return fmt.Sprintf("%q", s)
}

// lookup finds the entry whose token is tok. It hashes tok and compares the
// digest with every entry, without stopping at a match, so the time it
// takes says nothing about which token matched or how much of it did.
func (s tokenSet) lookup(tok string) (tokenEntry, bool) {
	return s.lookupDigest(sha256.Sum256([]byte(tok)))
}

// lookupDigest finds the entry whose token has digest d, the same way.
func (s tokenSet) lookupDigest(d [sha256.Size]byte) (tokenEntry, bool) {
	found, idx := 0, 0
	for i := range s {
		eq := subtle.ConstantTimeCompare(d[:], s[i].digest[:])
		idx = subtle.ConstantTimeSelect(eq, i, idx)
		found |= eq
	}
	if found == 0 {
		return tokenEntry{}, false
	}
	return s[idx], true
}

// Tokens is a server's AUTH_TOKENS_FILE, re-read when it changes. It is
// safe for concurrent use.
type Tokens struct {
	w *watched[tokenSet]
}

// TokensOption changes OpenTokens.
type TokensOption func(*tokensOptions)

type tokensOptions struct{ every time.Duration }

// ReloadEvery sets how often the file is looked at again (DefaultReloadEvery).
func ReloadEvery(d time.Duration) TokensOption { return func(o *tokensOptions) { o.every = d } }

// OpenTokens reads a tokens file. A file that does not parse is an error
// here; later, a change that does not parse keeps the tokens in force.
func OpenTokens(path string, logger *slog.Logger, opts ...TokensOption) (*Tokens, error) {
	var o tokensOptions
	for _, f := range opts {
		f(&o)
	}
	w, err := newWatched("auth tokens file", []string{path}, o.every, logger, func(c [][]byte) (tokenSet, error) {
		set, err := parseTokens(c[0])
		if err != nil {
			return nil, fmt.Errorf("AUTH_TOKENS_FILE %s: %w", path, err)
		}
		return set, nil
	})
	if err != nil {
		return nil, err
	}
	return &Tokens{w: w}, nil
}

// Lookup returns the identity that tok belongs to.
func (t *Tokens) Lookup(tok string) (Identity, bool) {
	if tok == "" || len(tok) > maxTokenLen {
		return Identity{}, false
	}
	e, ok := t.w.get().lookup(tok)
	if !ok {
		return Identity{}, false
	}
	return Identity{Role: e.role, digest: e.digest}, true
}

// Count is how many tokens each role has now.
func (t *Tokens) Count() map[Role]int {
	out := map[Role]int{}
	for _, e := range *t.w.get() {
		out[e.role]++
	}
	return out
}
