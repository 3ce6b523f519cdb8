package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/buildinfo"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

func TestPoolStatusWatchRedrawsUntilInterrupted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	r := b.slotctlCtx(t, ctx, "", "pool", "status", "--watch").must(t)
	if n := strings.Count(r.stdout, "TOTAL ACTIVE"); n < 2 {
		t.Errorf("%d tables in 2.5s, want one a second:\n%s", n, r.stdout)
	}
}

func TestAuthErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t.Run("NoToken", func(t *testing.T) {
		runSlotctl(context.Background(), strings.NewReader(""), nil, "--accountpool", b.apAddr, "pool", "status").
			fails(t, 1, "Unauthenticated", "--token-file")
	})
	t.Run("ReaderMayNotAddAccounts", func(t *testing.T) {
		runSlotctl(context.Background(), strings.NewReader("pw\n"), nil, "--accountpool", b.apAddr, "--token-file", b.readerToken,
			"accounts", "add", "--email", "x@example.com").fails(t, 1, "PermissionDenied", "admin token")
	})
	t.Run("TokenFileFromEnvironment", func(t *testing.T) {
		env := map[string]string{"AUTH_TOKEN_FILE": b.readerToken, "ACCOUNTPOOL_ADDR": b.apAddr}
		runSlotctl(context.Background(), strings.NewReader(""), env, "pool", "status").must(t)
	})
	t.Run("MissingTokenFile", func(t *testing.T) {
		runSlotctl(context.Background(), strings.NewReader(""), nil, "--accountpool", b.apAddr, "--token-file", "/nonexistent/token",
			"pool", "status").fails(t, 1, "/nonexistent/token")
	})
	t.Run("Unreachable", func(t *testing.T) {
		runSlotctl(context.Background(), strings.NewReader(""), nil, "--accountpool", "127.0.0.1:1", "--token-file", b.adminToken, "--timeout", "2s",
			"pool", "status").fails(t, 1, "AccountPool at 127.0.0.1:1")
	})
}

// TestPlaintextOnlyToLoopback: without TLS, slotctl sends its token to a
// remote address only when told the network is trusted.
func TestPlaintextOnlyToLoopback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	tok, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(token, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// 192.0.2.1 (TEST-NET-1) answers nothing: a dial that is allowed times out.
	remote := []string{"--accountpool", "192.0.2.1:50051", "--token-file", token, "--timeout", "1s", "pool", "status"}
	runSlotctl(context.Background(), strings.NewReader(""), nil, remote...).fails(t, 1, "refusing to dial 192.0.2.1:50051 in plaintext", "TLS_INSECURE=true")
	for name, r := range map[string]result{
		"--tls-insecure":    runSlotctl(context.Background(), strings.NewReader(""), nil, append([]string{"--tls-insecure"}, remote...)...),
		"TLS_INSECURE=true": runSlotctl(context.Background(), strings.NewReader(""), map[string]string{"TLS_INSECURE": "true"}, remote...),
	} {
		r.fails(t, 1, "AccountPool at 192.0.2.1:50051") // dialed, and timed out
		if strings.Contains(r.stderr, "refusing to dial") {
			t.Errorf("%s: still refused: %s", name, r.stderr)
		}
	}
	runSlotctl(context.Background(), strings.NewReader(""), map[string]string{"TLS_INSECURE": "maybe"}, remote...).fails(t, 2, "TLS_INSECURE")
}

func TestKeysets(t *testing.T) {
	t.Parallel()
	r := runSlotctl(context.Background(), strings.NewReader(""), nil, "keyset", "generate").must(t)
	if _, err := secrets.Parse([]byte(r.stdout)); err != nil {
		t.Fatalf("generated keyset does not parse: %v", err)
	}
	path := filepath.Join(t.TempDir(), "keyset.json")
	if err := os.WriteFile(path, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	rotated := runSlotctl(context.Background(), strings.NewReader(""), nil, "keyset", "rotate", path).must(t)
	var before, after struct {
		PrimaryKeyID uint32            `json:"primaryKeyId"`
		Key          []json.RawMessage `json:"key"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(rotated.stdout), &after); err != nil {
		t.Fatal(err)
	}
	if len(after.Key) != len(before.Key)+1 || after.PrimaryKeyID == before.PrimaryKeyID {
		t.Errorf("rotate: %d keys (primary %d) → %d keys (primary %d)", len(before.Key), before.PrimaryKeyID, len(after.Key), after.PrimaryKeyID)
	}
	runSlotctl(context.Background(), strings.NewReader(""), nil, "keyset", "rotate", "/nonexistent").fails(t, 1, "read keyset")

	t.Run("ReencryptAfterRotation", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.slotctl(t, "pw1\n", "accounts", "add", "--email", "k1@example.com").must(t)
		b.slotctl(t, "pw2\n", "accounts", "add", "--email", "k2@example.com").must(t)
		// The runbook: rotate the keyset file, restart, re-encrypt.
		rotated := b.slotctl(t, "", "keyset", "rotate", b.apKeyset).must(t)
		if err := os.WriteFile(b.apKeyset, []byte(rotated.stdout), 0o600); err != nil {
			t.Fatal(err)
		}
		b.restartAccountPool(t)
		r := b.slotctl(t, "", "keyset", "reencrypt").must(t)
		if !strings.Contains(r.stdout, "re-encrypted 2 passwords") {
			t.Errorf("reencrypt: %s", r.stdout)
		}
		if r := b.slotctl(t, "", "keyset", "reencrypt").must(t); !strings.Contains(r.stdout, "re-encrypted 0 passwords") {
			t.Errorf("second reencrypt: %s", r.stdout)
		}
	})
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runSlotctl(context.Background(), strings.NewReader(""), nil, "--version")
	if want := buildinfo.Get().String("slotctl") + "\n"; r.code != 0 || r.stdout != want {
		t.Errorf("slotctl --version: exit %d, printed %q, want %q", r.code, r.stdout, want)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		args  []string
		wants []string
	}{
		{"UnknownCommand", []string{"bogus"}, []string{`unknown command "bogus" for "slotctl"`}},
		{"MisspelledCommandGetsASuggestion", []string{"reqests"}, []string{`did you mean "requests"`}},
		{"UnknownSubcommand", []string{"accounts", "bogus"}, []string{`unknown command "bogus" for "slotctl accounts"`}},
		{"UnknownShell", []string{"completion", "tcsh"}, []string{`unknown command "tcsh" for "slotctl completion"`}},
		{"ExtraArgument", []string{"completion", "bash", "extra"}, []string{"extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runSlotctl(context.Background(), strings.NewReader(""), nil, tc.args...).fails(t, 2, tc.wants...)
		})
	}
	t.Run("NoCommandPrintsHelp", func(t *testing.T) {
		t.Parallel()
		r := runSlotctl(context.Background(), strings.NewReader(""), nil).must(t)
		if !strings.Contains(r.stdout, "Available Commands") {
			t.Errorf("slotctl alone:\n%s", r.stdout)
		}
	})
}

func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{
		"bash": "__start_slotctl",
		"zsh":  "#compdef slotctl",
		"fish": "complete -c slotctl",
	} {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			r := runSlotctl(context.Background(), strings.NewReader(""), nil, "completion", shell).must(t)
			if !strings.Contains(r.stdout, want) {
				t.Errorf("completion %s lacks %q:\n%.300s", shell, want, r.stdout)
			}
		})
	}
}
