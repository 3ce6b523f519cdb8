package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/secretfile"
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

// A token also needs minTokenDistinct different characters from at least
// minTokenClasses of lowercase, uppercase, digits and other characters: a
// cheap guard against "aaaa…", a word repeated, or a long number, not an
// entropy estimate. Random tokens (`accountpool tokens generate`,
// `openssl rand -hex 32`) pass it by far.
const (
	minTokenDistinct = 12
	minTokenClasses  = 2
)

// HowToMakeToken is what to tell someone who needs a real token.
const HowToMakeToken = "make a real one with `accountpool tokens generate`"

// maxTokenLen bounds what a caller may present; longer is simply unknown.
const maxTokenLen = 4096

// maxNameLen bounds a caller's name in a tokens file.
const maxNameLen = 64

// checkToken refuses a token that is the example placeholder or too weak to
// be a secret. Its error never holds the token.
func checkToken(tok string) error {
	folded := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(tok))
	if strings.Contains(folded, "changeme") {
		return fmt.Errorf("the token is an example placeholder (it contains CHANGE-ME); %s", HowToMakeToken)
	}
	if len(tok) < MinTokenLen {
		return fmt.Errorf("the token is %d characters; tokens must be at least %d (%s)", len(tok), MinTokenLen, HowToMakeToken)
	}
	if len(tok) > maxTokenLen {
		return fmt.Errorf("the token is longer than %d characters", maxTokenLen)
	}
	distinct := map[rune]bool{}
	var classes [4]bool
	for _, r := range tok {
		distinct[r] = true
		switch {
		case r >= 'a' && r <= 'z':
			classes[0] = true
		case r >= 'A' && r <= 'Z':
			classes[1] = true
		case r >= '0' && r <= '9':
			classes[2] = true
		default:
			classes[3] = true
		}
	}
	nclasses := 0
	for _, c := range classes {
		if c {
			nclasses++
		}
	}
	if len(distinct) < minTokenDistinct || nclasses < minTokenClasses {
		return fmt.Errorf("the token is too easy to guess (%d distinct characters from %d of lowercase, uppercase, digits and symbols; "+
			"at least %d from %d are needed); %s", len(distinct), nclasses, minTokenDistinct, minTokenClasses, HowToMakeToken)
	}
	return nil
}

// validName says whether s may name a caller: 1 to 64 letters, digits, '.',
// '_' or '-'.
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Identity is an authenticated caller.
type Identity struct {
	Role Role
	// Name labels the caller in logs ("checker-prod"): the third field of
	// its digest line, or role-lineN for a plaintext line.
	Name string
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
	name   string
	digest [sha256.Size]byte
}

type tokenSet []tokenEntry

const digestPrefix = "sha256:"

// DigestLine is the line of a servers' tokens file for token: its SHA-256,
// the caller's role and its name. It holds nothing a caller could present.
func DigestLine(role Role, name, token string) string {
	d := sha256.Sum256([]byte(token))
	return fmt.Sprintf("%s%s %s %s", digestPrefix, hex.EncodeToString(d[:]), role, name)
}

// parseTokens reads a tokens file: "sha256:<hex> role name" per line, '#'
// comment lines and blank lines; also the deprecated plaintext "role token"
// lines, whose line numbers it returns. An error names the line and never
// the token.
func parseTokens(b []byte) (set tokenSet, plaintext []int, err error) {
	seen := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		var e tokenEntry
		switch {
		case len(f) == 3 && strings.HasPrefix(f[0], digestPrefix):
			h := f[0][len(digestPrefix):]
			d, herr := hex.DecodeString(h)
			if herr != nil || len(d) != sha256.Size {
				return nil, nil, fmt.Errorf("line %d: want %s followed by 64 hex digits (the SHA-256 of the token), got %d characters", n, digestPrefix, len(h))
			}
			copy(e.digest[:], d)
			e.role, e.name = Role(f[1]), f[2]
			if !validName(e.name) {
				return nil, nil, fmt.Errorf("line %d: the caller's name must be 1 to %d letters, digits, '.', '_' or '-'", n, maxNameLen)
			}
			if sha256.Sum256([]byte(e.name)) == e.digest { // names are logged
				return nil, nil, fmt.Errorf("line %d: the caller's name is the token itself: put a label there (checker-prod), never the token", n)
			}
		case len(f) == 2 && strings.HasPrefix(f[0], digestPrefix):
			return nil, nil, fmt.Errorf("line %d: want \"sha256:<hex> role name\": the caller's name is missing", n)
		case len(f) == 2:
			// Deprecated: a usable token in the server's file.
			if !knownRole(Role(f[0])) {
				return nil, nil, fmt.Errorf("line %d: unknown role %s: want admin, checker or reader", n, quoteRole(f[0]))
			}
			if err := checkToken(f[1]); err != nil {
				return nil, nil, fmt.Errorf("line %d (%s): %w", n, f[0], err)
			}
			e.role, e.name, e.digest = Role(f[0]), fmt.Sprintf("%s-line%d", f[0], n), sha256.Sum256([]byte(f[1]))
			plaintext = append(plaintext, n)
		default:
			return nil, nil, fmt.Errorf("line %d: want \"sha256:<hex> role name\" (three fields), got %d fields", n, len(f))
		}
		if !knownRole(e.role) {
			return nil, nil, fmt.Errorf("line %d: unknown role %s: want admin, checker or reader", n, quoteRole(string(e.role)))
		}
		if prev, ok := seen[e.digest]; ok {
			return nil, nil, fmt.Errorf("line %d: the same token as line %d: each token must be unique", n, prev)
		}
		seen[e.digest] = n
		set = append(set, e)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read tokens: %w", err)
	}
	if len(set) == 0 {
		return nil, nil, fmt.Errorf("no tokens: want one \"sha256:<hex> role name\" line at least")
	}
	return set, plaintext, nil
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

// OpenTokens reads a tokens file; one that other users may read, or its
// group may write, is refused (secretfile.CheckMode). A file that does not
// parse is an error here. Later, the file is re-read when it changes, and
// fails closed: a file that is deleted, emptied or no longer parses leaves
// no token valid (every call UNAUTHENTICATED, open streams ended), logged
// as an error, until a good file comes back. Plaintext "role token" lines
// are still read, with a warning naming their lines on every load.
func OpenTokens(path string, logger *slog.Logger, opts ...TokensOption) (*Tokens, error) {
	var o tokensOptions
	for _, f := range opts {
		f(&o)
	}
	if logger == nil {
		logger = slog.Default()
	}
	if err := secretfile.CheckMode(path, "AUTH_TOKENS_FILE"); err != nil {
		return nil, err
	}
	closed := &failClosed[tokenSet]{
		value: tokenSet{},
		message: "AUTH_TOKENS_FILE CANNOT BE USED: NO TOKEN IS VALID; every call is refused (UNAUTHENTICATED) " +
			"and open streams end until the file holds good token lines again",
	}
	w, err := newWatched("auth tokens file", []string{path}, o.every, logger, closed, func(c [][]byte) (tokenSet, error) {
		set, plaintext, err := parseTokens(c[0])
		if err != nil {
			return nil, fmt.Errorf("AUTH_TOKENS_FILE %s: %w", path, err)
		}
		if len(plaintext) > 0 {
			logger.Warn("DEPRECATED: AUTH_TOKENS_FILE holds plaintext tokens, which anyone who reads the file can use; "+
				"replace each such line with \"sha256:<hex> role name\" (the hex is `printf %s TOKEN | sha256sum`, "+
				"or make new tokens with `accountpool tokens generate`)", "file", path, "lines", plaintext)
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
	return Identity{Role: e.role, Name: e.name, digest: e.digest}, true
}

// Count is how many tokens each role has now.
func (t *Tokens) Count() map[Role]int {
	out := map[Role]int{}
	for _, e := range *t.w.get() {
		out[e.role]++
	}
	return out
}
