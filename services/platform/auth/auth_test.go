package auth

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	adminTok   = "admin-token-0123456789abcdefghij"
	checkerTok = "checker-token-0123456789abcdefgh"
	readerTok  = "reader-token-0123456789abcdefghi"
)

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tokensFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, "# dev tokens\n\nadmin "+adminTok+"\n  checker\t"+checkerTok+"  \nreader "+readerTok+"\n")
	return path
}

func TestTokensFile(t *testing.T) {
	t.Parallel()

	t.Run("LooksUpEachRole", func(t *testing.T) {
		t.Parallel()
		tokens, err := OpenTokens(tokensFile(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		for tok, want := range map[string]Role{adminTok: RoleAdmin, checkerTok: RoleChecker, readerTok: RoleReader} {
			if id, ok := tokens.Lookup(tok); !ok || id.Role != want {
				t.Fatalf("lookup: %v %v, want %s", id.Role, ok, want)
			}
		}
		for _, bad := range []string{"", adminTok[:len(adminTok)-1], adminTok + "x", strings.ToUpper(adminTok), strings.Repeat("a", 5000)} {
			if _, ok := tokens.Lookup(bad); ok {
				t.Fatalf("a wrong token was accepted (len %d)", len(bad))
			}
		}
	})

	t.Run("ShortTokenRefusedNamingTheLineNotTheToken", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "tokens")
		writeFile(t, path, "admin "+adminTok+"\n# a comment\nchecker short-secret-xyz\n")
		_, err := OpenTokens(path, nil)
		if err == nil || !strings.Contains(err.Error(), "line 3") || strings.Contains(err.Error(), "short-secret") {
			t.Fatalf("want an error naming line 3 and not the token, got %v", err)
		}
	})

	t.Run("MalformedFilesRefusedWithoutEchoingTokens", func(t *testing.T) {
		t.Parallel()
		for name, content := range map[string]string{
			"UnknownRole":   "root " + adminTok + "\n",
			"TokenFirst":    adminTok + " admin\n",
			"ThreeFields":   "admin " + adminTok + " extra\n",
			"OneField":      adminTok + "\n",
			"DuplicateLine": "admin " + adminTok + "\nreader " + adminTok + "\n",
			"Empty":         "# nothing\n\n",
		} {
			path := filepath.Join(t.TempDir(), "tokens")
			writeFile(t, path, content)
			_, err := OpenTokens(path, nil)
			if err == nil {
				t.Fatalf("%s: accepted", name)
			}
			if strings.Contains(err.Error(), adminTok[:10]) {
				t.Fatalf("%s: error shows the token: %v", name, err)
			}
		}
	})

	t.Run("ReloadsWhenTheFileChanges", func(t *testing.T) {
		t.Parallel()
		var logs logBuffer
		path := tokensFile(t)
		tokens, err := OpenTokens(path, slog.New(slog.NewTextHandler(&logs, nil)), ReloadEvery(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		newTok := "rotated-reader-token-0123456789abc"
		writeFile(t, path, "admin "+adminTok+"\nreader "+newTok+"\n")
		waitFor(t, func() bool { _, ok := tokens.Lookup(newTok); return ok })
		if _, ok := tokens.Lookup(readerTok); ok {
			t.Fatal("a removed token still works")
		}

		// A broken file keeps the tokens in force, says why once, and never
		// shows a token.
		writeFile(t, path, "admin "+adminTok+"\nreader too-short-token\n")
		time.Sleep(5 * time.Millisecond)
		for range 3 {
			if _, ok := tokens.Lookup(newTok); !ok {
				t.Fatal("a bad reload dropped the tokens in force")
			}
			time.Sleep(2 * time.Millisecond)
		}
		out := logs.String()
		if strings.Count(out, "cannot reload") != 1 || !strings.Contains(out, "line 2") {
			t.Fatalf("want one warning naming line 2, got %q", out)
		}
		for _, tok := range []string{adminTok, newTok, "too-short-token", readerTok} {
			if strings.Contains(out, tok) {
				t.Fatalf("a token is in the log: %q", out)
			}
		}
		os.Remove(path)
		time.Sleep(5 * time.Millisecond)
		if _, ok := tokens.Lookup(adminTok); !ok {
			t.Fatal("a deleted file dropped the tokens in force")
		}
	})

	t.Run("ReloadsAcrossASecretSymlinkSwap", func(t *testing.T) {
		t.Parallel()
		// The layout of a mounted Kubernetes Secret: tokens -> ..data/tokens,
		// ..data -> ..2026_01_01; an update makes a new directory and swaps
		// ..data atomically.
		dir := t.TempDir()
		v1, v2 := filepath.Join(dir, "..v1"), filepath.Join(dir, "..v2")
		for _, d := range []string{v1, v2} {
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		writeFile(t, filepath.Join(v1, "tokens"), "admin "+adminTok+"\n")
		newTok := "swapped-admin-token-0123456789abc"
		writeFile(t, filepath.Join(v2, "tokens"), "admin "+newTok+"\n")
		if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("..data/tokens", filepath.Join(dir, "tokens")); err != nil {
			t.Fatal(err)
		}
		tokens, err := OpenTokens(filepath.Join(dir, "tokens"), nil, ReloadEvery(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tokens.Lookup(adminTok); !ok {
			t.Fatal("first token not loaded")
		}
		if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { _, ok := tokens.Lookup(newTok); return ok })
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	tokens, err := OpenTokens(tokensFile(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := Policy{
		"/svc/Lease":  {RoleChecker},
		"/svc/Read":   {RoleReader},
		"/svc/Delete": {RoleAdmin},
	}
	call := func(authz ...string) func(method string) (Identity, error) {
		ctx := context.Background()
		if len(authz) > 0 {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs(append([]string{}, flatten(authz)...)...))
		}
		return func(method string) (Identity, error) { return Authorize(ctx, tokens, policy, method) }
	}
	cases := []struct {
		name   string
		do     func(string) (Identity, error)
		method string
		want   codes.Code
	}{
		{"NoToken", call(), "/svc/Read", codes.Unauthenticated},
		{"NotBearer", call("Basic " + readerTok), "/svc/Read", codes.Unauthenticated},
		{"UnknownToken", call("Bearer nobody-knows-this-token-at-all"), "/svc/Read", codes.Unauthenticated},
		{"TwoTokens", call("Bearer "+readerTok, "Bearer "+adminTok), "/svc/Read", codes.Unauthenticated},
		{"WrongRole", call("Bearer " + readerTok), "/svc/Lease", codes.PermissionDenied},
		{"CheckerCannotRead", call("Bearer " + checkerTok), "/svc/Read", codes.PermissionDenied},
		{"RightRole", call("Bearer " + checkerTok), "/svc/Lease", codes.OK},
		{"SchemeIsCaseInsensitive", call("bearer " + readerTok), "/svc/Read", codes.OK},
		{"AdminCallsEverythingListed", call("Bearer " + adminTok), "/svc/Lease", codes.OK},
		{"AdminOnly", call("Bearer " + readerTok), "/svc/Delete", codes.PermissionDenied},
		{"UnlistedMethodDeniedEvenToAdmin", call("Bearer " + adminTok), "/svc/Unknown", codes.PermissionDenied},
	}
	for _, c := range cases {
		_, err := c.do(c.method)
		if got := status.Code(err); got != c.want {
			t.Errorf("%s: got %s (%v), want %s", c.name, got, err, c.want)
		}
		for _, tok := range []string{adminTok, checkerTok, readerTok} {
			if err != nil && strings.Contains(err.Error(), tok) {
				t.Errorf("%s: error shows a token", c.name)
			}
		}
	}
}

func flatten(vals []string) []string {
	var out []string
	for _, v := range vals {
		out = append(out, "authorization", v)
	}
	return out
}

func TestClientTokenFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "token")

	writeFile(t, path, "# the checker's token\nchecker "+checkerTok+"\n")
	creds, err := NewTokenCredentials(path, false, ReloadEvery(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	md, _ := creds.GetRequestMetadata(context.Background())
	if md["authorization"] != "Bearer "+checkerTok {
		t.Fatal("the role prefix was not dropped")
	}
	writeFile(t, path, readerTok+"\n")
	waitFor(t, func() bool {
		md, _ := creds.GetRequestMetadata(context.Background())
		return md["authorization"] == "Bearer "+readerTok
	})

	for name, content := range map[string]string{"Short": "abc\n", "Two": readerTok + "\n" + adminTok + "\n", "None": "# x\n"} {
		writeFile(t, filepath.Join(dir, name), content)
		if _, err := NewTokenCredentials(filepath.Join(dir, name), false); err == nil || strings.Contains(err.Error(), readerTok) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := DialOptions(filepath.Join(dir, "missing"), ""); err == nil {
		t.Fatal("a missing token file was accepted")
	}
	if opts, err := DialOptions("", ""); err != nil || len(opts) != 1 {
		t.Fatalf("no token, no CA: %d options, %v", len(opts), err)
	}
}

func TestGenerateTokens(t *testing.T) {
	t.Parallel()
	var a, b bytes.Buffer
	if err := GenerateTokens(&a); err != nil {
		t.Fatal(err)
	}
	if err := GenerateTokens(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() == b.String() {
		t.Fatal("two runs printed the same tokens")
	}
	set, err := parseTokens(a.Bytes())
	if err != nil || len(set) != 3 {
		t.Fatalf("generated file: %d tokens, %v", len(set), err)
	}
	for _, line := range strings.Split(strings.TrimSpace(a.String()), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) != 2 || len(f[1]) < 32 || strings.ContainsAny(f[1], "+/=") {
			t.Fatalf("line %q: want role and a base64url token of 32+ characters", line)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:50051": true, "127.3.2.1:1": true, "[::1]:50051": true, "localhost:50051": true, "LOCALHOST:1": true,
		":50051": false, "0.0.0.0:50051": false, "[::]:1": false, "10.0.0.5:50051": false, "example.com:1": false, "": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestRateLimiterKeepsCallersApart(t *testing.T) {
	t.Parallel()
	tokens, err := OpenTokens(tokensFile(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	checker, _ := tokens.Lookup(checkerTok)
	reader, _ := tokens.Lookup(readerTok)
	l := NewRateLimiter(1, 2)
	for i := range 2 {
		if ok, _ := l.Allow(checker); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	ok, wait := l.Allow(checker)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("third request: ok=%v wait=%s", ok, wait)
	}
	if ok, _ := l.Allow(reader); !ok {
		t.Fatal("another caller was limited by the first one's bucket")
	}
	if NewRateLimiter(0, 10) != nil {
		t.Fatal("rps 0 should mean no limiter")
	}
}

func TestWatchAuthorization(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("admin "+adminTok+"\nreader "+readerTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := OpenTokens(path, slog.New(slog.DiscardHandler), ReloadEvery(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	policy := Policy{"/svc/Watch": {RoleReader}}
	id, ok := tokens.Lookup(readerTok)
	if !ok {
		t.Fatal("reader token unknown")
	}
	watch := func(ctx context.Context) chan error {
		errc := make(chan error, 1)
		go func() { errc <- WatchAuthorization(ctx, tokens, policy, id, "/svc/Watch") }()
		return errc
	}
	result := func(errc chan error) error {
		t.Helper()
		select {
		case err := <-errc:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("WatchAuthorization did not return")
			return nil
		}
	}
	holders := func() int {
		tokens.w.pollMu.Lock()
		defer tokens.w.pollMu.Unlock()
		return tokens.w.holders
	}

	// The context ending is no error, and releases the re-reader.
	ctx, cancel := context.WithCancel(context.Background())
	errc := watch(ctx)
	cancel()
	if err := result(errc); err != nil {
		t.Fatalf("ended context: %v", err)
	}
	if n := holders(); n != 0 {
		t.Fatalf("%d holders left", n)
	}

	// A reload that keeps the reader changes nothing; one that drops it ends
	// the watch with UNAUTHENTICATED, without the token in the message.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	errc = watch(ctx)
	if err := os.WriteFile(path, []byte("reader "+readerTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for tokens.Count()[RoleAdmin] != 0 {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-errc:
		t.Fatalf("a reload that keeps the reader ended the watch: %v", err)
	default:
	}
	if err := os.WriteFile(path, []byte("admin "+adminTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = result(errc)
	if status.Code(err) != codes.Unauthenticated || strings.Contains(err.Error(), readerTok[:12]) {
		t.Fatalf("revoked: %v", err)
	}
	if n := holders(); n != 0 {
		t.Fatalf("%d holders left", n)
	}
}
