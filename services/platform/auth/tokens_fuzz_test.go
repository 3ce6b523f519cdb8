package auth

import (
	"strings"
	"testing"
)

// FuzzParseTokens: no tokens file makes the parser panic; an error never
// holds a word of the file long enough to be a token; an accepted file has
// only known roles and valid names, and each plaintext line's token is
// found again by lookup under its own role.
func FuzzParseTokens(f *testing.F) {
	f.Add([]byte(DigestLine(RoleAdmin, "ops", adminTok) + "\n# comment\n\n" + DigestLine(RoleChecker, "checker-prod", checkerTok) + "\n"))
	f.Add([]byte("reader " + readerTok + "\n"))
	f.Add([]byte("admin CHANGE-ME-0123456789abcdefghijkl\n"))
	f.Add([]byte(readerTok + " reader\n"))
	f.Add([]byte("sha256:00 admin ops\nsha256:" + strings.Repeat("ab", 32) + " admin\n"))
	f.Add([]byte("admin " + adminTok + "\nchecker " + adminTok + "\n"))
	f.Add([]byte(strings.Repeat("x", 70000)))
	f.Fuzz(func(t *testing.T, b []byte) {
		set, plaintext, err := parseTokens(b)
		if err != nil {
			for _, w := range strings.Fields(string(b)) {
				if len(w) >= MinTokenLen && strings.Contains(err.Error(), w) {
					t.Fatalf("the error holds the file's word %q: %v", w, err)
				}
			}
			return
		}
		if len(set) == 0 {
			t.Fatal("no error and no tokens")
		}
		for _, e := range set {
			if !knownRole(e.role) || e.name == "" {
				t.Fatalf("accepted entry %+v", e)
			}
		}
		lines := strings.Split(string(b), "\n")
		for _, n := range plaintext {
			f := strings.Fields(lines[n-1])
			e, ok := set.lookup(f[1])
			if !ok || string(e.role) != f[0] {
				t.Fatalf("line %d's token is not found as %s: %+v %v", n, f[0], e, ok)
			}
		}
	})
}
