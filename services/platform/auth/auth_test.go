package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	adminTok   = "admin-token-0123456789abcdefghij"
	checkerTok = "checker-token-0123456789abcdefgh"
	readerTok  = "reader-token-0123456789abcdefghi"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tokensFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, "# dev tokens\n\n"+DigestLine(RoleAdmin, "ops", adminTok)+"\n  "+
		strings.ReplaceAll(DigestLine(RoleChecker, "checker-prod", checkerTok), " ", "\t")+"  \n"+DigestLine(RoleReader, "grafana", readerTok)+"\n")
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
		for tok, want := range map[string]Identity{adminTok: {Role: RoleAdmin, Name: "ops"},
			checkerTok: {Role: RoleChecker, Name: "checker-prod"}, readerTok: {Role: RoleReader, Name: "grafana"}} {
			if id, ok := tokens.Lookup(tok); !ok || id.Role != want.Role || id.Name != want.Name {
				t.Fatalf("lookup: %s %s %v, want %s %s", id.Role, id.Name, ok, want.Role, want.Name)
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
			"UnknownRole":     "root " + adminTok + "\n",
			"TokenFirst":      adminTok + " admin\n",
			"ThreeFields":     "admin " + adminTok + " extra\n",
			"OneField":        adminTok + "\n",
			"DuplicateLine":   "admin " + adminTok + "\nreader " + adminTok + "\n",
			"Empty":           "# nothing\n\n",
			"DuplicateDigest": DigestLine(RoleAdmin, "a", adminTok) + "\n" + DigestLine(RoleReader, "b", adminTok) + "\n",
			"ShortHex":        "sha256:abcdef admin ops\n",
			"NotHex":          "sha256:" + strings.Repeat("zz", 32) + " admin ops\n",
			"NoName":          strings.TrimSuffix(DigestLine(RoleAdmin, "x", adminTok), " x") + "\n",
			"BadName":         strings.TrimSuffix(DigestLine(RoleAdmin, "x", adminTok), "x") + "a/b\n",
			"DigestBadRole":   strings.Replace(DigestLine(RoleAdmin, "x", adminTok), " admin ", " root ", 1) + "\n",
			"GenerateOutput":  "token admin admin " + adminTok + "\n",
			"TokenAsName":     DigestLine(RoleAdmin, adminTok, adminTok) + "\n",
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
		path := tokensFile(t)
		tokens, err := OpenTokens(path, nil, ReloadEvery(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		newTok := "rotated-reader-token-0123456789abc"
		writeFile(t, path, DigestLine(RoleAdmin, "ops", adminTok)+"\n"+DigestLine(RoleReader, "grafana", newTok)+"\n")
		waitFor(t, func() bool { _, ok := tokens.Lookup(newTok); return ok })
		if _, ok := tokens.Lookup(readerTok); ok {
			t.Fatal("a removed token still works")
		}
	})

	t.Run("ReloadFailsClosed", func(t *testing.T) {
		t.Parallel()
		var logs testkit.SyncBuffer
		path := tokensFile(t)
		tokens, err := OpenTokens(path, slog.New(slog.NewJSONHandler(&logs, nil)), ReloadEvery(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		none := func() bool { return len(tokens.Count()) == 0 }
		good := func() bool { _, ok := tokens.Lookup(adminTok); return ok }
		for _, c := range []struct {
			name    string
			break_  func()
			wantLog string
		}{
			// A file that no longer parses: no token is valid, not the old set.
			{"NoLongerParses", func() { writeFile(t, path, DigestLine(RoleAdmin, "ops", adminTok)+"\nreader too-short-token\n") }, "line 2"},
			{"Emptied", func() { writeFile(t, path, "# all gone\n") }, "no tokens"},
			{"Deleted", func() { os.Remove(path) }, "no such file"},
		} {
			c.break_()
			waitFor(t, none)
			for _, tok := range []string{adminTok, checkerTok, readerTok} {
				if _, ok := tokens.Lookup(tok); ok {
					t.Fatalf("%s: a token still works", c.name)
				}
			}
			time.Sleep(5 * time.Millisecond) // more re-reads of the same problem
			out := logs.String()
			if n := strings.Count(out, `"level":"ERROR"`); n != 1 || !strings.Contains(out, "NO TOKEN IS VALID") || !strings.Contains(out, c.wantLog) {
				t.Fatalf("%s: want one ERROR naming %q, got %d in %s", c.name, c.wantLog, n, out)
			}
			for _, tok := range []string{adminTok, checkerTok, readerTok, "too-short-token"} {
				if strings.Contains(out, tok) {
					t.Fatalf("%s: a token is in the log: %s", c.name, out)
				}
			}
			// A good file, even the very one before, restores service.
			writeFile(t, path, DigestLine(RoleAdmin, "ops", adminTok)+"\n")
			waitFor(t, good)
			logs.Reset()
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
		writeFile(t, filepath.Join(v1, "tokens"), DigestLine(RoleAdmin, "ops", adminTok)+"\n")
		newTok := "swapped-admin-token-0123456789abc"
		writeFile(t, filepath.Join(v2, "tokens"), DigestLine(RoleAdmin, "ops", newTok)+"\n")
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
	if _, err := DialOptions("127.0.0.1:1", ClientConfig{TokenFile: filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("a missing token file was accepted")
	}
	if opts, err := DialOptions("127.0.0.1:1", ClientConfig{}); err != nil || len(opts) != 3 {
		t.Fatalf("no token, no CA: %d options (want the balancer, the reconnect backoff and the transport), %v", len(opts), err)
	}
}

func TestGenerateTokens(t *testing.T) {
	t.Parallel()
	var a, b bytes.Buffer
	if err := GenerateTokens(&a); err != nil {
		t.Fatal(err)
	}
	if err := GenerateTokens(&b, "checker:checker-prod"); err != nil {
		t.Fatal(err)
	}
	// The servers' part: digest lines only, one per role, named after it.
	var server, client []string
	for _, line := range strings.Split(a.String(), "\n") {
		switch {
		case strings.HasPrefix(line, "sha256:"):
			server = append(server, line)
		case strings.HasPrefix(line, "token "):
			client = append(client, line)
		}
	}
	set, plaintext, err := parseTokens([]byte(strings.Join(server, "\n")))
	if err != nil || len(set) != 3 || len(plaintext) != 0 {
		t.Fatalf("server lines: %d tokens, plaintext lines %v, %v", len(set), plaintext, err)
	}
	if len(client) != 3 {
		t.Fatalf("want 3 client lines, got %q", client)
	}
	// Each client token is base64url, strong, and matches its digest line
	// by role and name; it appears once in the output.
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, strings.Join(server, "\n")+"\n")
	tokens, err := OpenTokens(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range client {
		f := strings.Fields(line)
		if len(f) != 4 || len(f[3]) < 32 || strings.ContainsAny(f[3], "+/=") || checkToken(f[3]) != nil {
			t.Fatalf("client line %q: want token role name and a strong base64url token", line)
		}
		if id, ok := tokens.Lookup(f[3]); !ok || string(id.Role) != f[1] || id.Name != f[2] {
			t.Fatalf("client line %s: server says %v %v", f[1], id, ok)
		}
		if strings.Count(a.String(), f[3]) != 1 {
			t.Fatal("a token is printed more than once")
		}
	}
	// The whole output is not a tokens file: a server refuses it.
	if _, _, err := parseTokens(a.Bytes()); err == nil {
		t.Fatal("the whole output parses as a tokens file")
	}
	if !strings.Contains(b.String(), " checker checker-prod\n") || strings.Count(b.String(), "sha256:") != 1 {
		t.Fatalf("a named caller: %s", b.String())
	}
	for _, bad := range []string{"root", "admin:", "admin:a b", "admin:" + strings.Repeat("x", 65)} {
		if err := GenerateTokens(io.Discard, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPlaintextTokensLinesStillWorkWithAWarningNamingTheLines(t *testing.T) {
	t.Parallel()
	var logs testkit.SyncBuffer
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, "# old format\nadmin "+adminTok+"\n"+DigestLine(RoleReader, "grafana", readerTok)+"\nchecker "+checkerTok+"\n")
	tokens, err := OpenTokens(path, slog.New(slog.NewJSONHandler(&logs, nil)), ReloadEvery(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{adminTok, readerTok, checkerTok} {
		if _, ok := tokens.Lookup(tok); !ok {
			t.Fatal("a token was not loaded")
		}
	}
	if id, _ := tokens.Lookup(checkerTok); id.Name != "checker-line4" {
		t.Fatalf("plaintext line name: %q", id.Name)
	}
	out := logs.String()
	if strings.Count(out, "DEPRECATED") != 1 || !strings.Contains(out, `"lines":[2,4]`) || !strings.Contains(out, `"level":"WARN"`) {
		t.Fatalf("want one warning naming lines 2 and 4, got %s", out)
	}
	for _, tok := range []string{adminTok, readerTok, checkerTok} {
		if strings.Contains(out, tok) {
			t.Fatalf("a token is in the log: %s", out)
		}
	}
	// One warning per load: a reload warns again; a digest-only file does not.
	writeFile(t, path, "admin "+adminTok+"\n")
	waitFor(t, func() bool { tokens.Lookup(adminTok); return strings.Count(logs.String(), "DEPRECATED") == 2 })
	writeFile(t, path, DigestLine(RoleAdmin, "ops", adminTok)+"\n")
	waitFor(t, func() bool { id, _ := tokens.Lookup(adminTok); return id.Name == "ops" })
	if n := strings.Count(logs.String(), "DEPRECATED"); n != 2 {
		t.Fatalf("%d warnings after a digest-only load", n)
	}
}

func TestExampleAndWeakTokensRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, tok := range map[string]string{
		"Placeholder":          "CHANGE-ME-checker-token-0123456789abcdef", // secret.example.yaml's
		"PlaceholderLowercase": "xyz-change_me-0123456789ABCDEFGHIJ",
		"Short":                "Ab3-short-token",
		"OneCharacter":         strings.Repeat("a", 40),
		"WordRepeated":         strings.Repeat("secret", 6),
		"DigitsOnly":           "012345678901234567890123456789",
		"LettersOnly":          "abcdefghijklmnopqrstuvwxyz",
	} {
		// In a server's tokens file (plaintext line).
		path := filepath.Join(dir, name+".tokens")
		writeFile(t, path, DigestLine(RoleAdmin, "ops", adminTok)+"\nchecker "+tok+"\n")
		_, err := OpenTokens(path, nil)
		if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "accountpool tokens generate") || strings.Contains(err.Error(), tok) {
			t.Errorf("%s in AUTH_TOKENS_FILE: want a refusal naming line 2 and how to make a token, not the token; got %v", name, err)
		}
		// In a client's AUTH_TOKEN_FILE, bare or after its role.
		for i, content := range []string{tok + "\n", "checker " + tok + "\n"} {
			path := filepath.Join(dir, name+".token"+string(rune('0'+i)))
			writeFile(t, path, content)
			_, err := DialOptions("127.0.0.1:1", ClientConfig{TokenFile: path})
			if err == nil || !strings.Contains(err.Error(), "AUTH_TOKEN_FILE") || !strings.Contains(err.Error(), "accountpool tokens generate") || strings.Contains(err.Error(), tok) {
				t.Errorf("%s in AUTH_TOKEN_FILE: got %v", name, err)
			}
		}
	}
	for _, tok := range []string{adminTok, "0123456789abcdef0123456789abcdef", "3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"} {
		if err := checkToken(tok); err != nil {
			t.Errorf("a good token (hex, UUID) refused: %v", err)
		}
	}
}

func TestSecretFilesOthersCanReadRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	writeFile(t, tokens, DigestLine(RoleAdmin, "ops", adminTok)+"\n")
	token := filepath.Join(dir, "token")
	writeFile(t, token, adminTok+"\n")
	open := map[string]func() error{
		"AUTH_TOKENS_FILE": func() error { _, err := OpenTokens(tokens, nil); return err },
		"AUTH_TOKEN_FILE":  func() error { _, err := DialOptions("127.0.0.1:1", ClientConfig{TokenFile: token}); return err },
	}
	for _, mode := range []os.FileMode{0o644, 0o660, 0o604} {
		for _, p := range []string{tokens, token} {
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
		for what, f := range open {
			if err := f(); err == nil || !strings.Contains(err.Error(), what) || !strings.Contains(err.Error(), "chmod 600") {
				t.Errorf("%s mode %04o: want a refusal saying chmod 600, got %v", what, mode, err)
			}
		}
	}
	// A Kubernetes Secret volume: defaultMode 0440 behind ..data symlinks.
	data := filepath.Join(dir, "..2026_12_06")
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tokens, token} {
		if err := os.Chmod(p, 0o440); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p, filepath.Join(data, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("..2026_12_06", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tokens, token} {
		if err := os.Symlink(filepath.Join("..data", filepath.Base(p)), p); err != nil {
			t.Fatal(err)
		}
	}
	for what, f := range open {
		if err := f(); err != nil {
			t.Errorf("%s through a 0440 Secret mount: %v", what, err)
		}
	}
}

func TestPlaintextDialToARemoteTargetRefused(t *testing.T) {
	t.Parallel()
	for target, local := range map[string]bool{
		"127.0.0.1:50051": true, "127.9.9.9:1": true, "localhost:50051": true, "[::1]:50051": true,
		"dns:///localhost:50051": true, "dns://8.8.8.8/127.0.0.1:1": true, "passthrough:///bufnet": true,
		"passthrough:///127.0.0.1:5": true, "unix:///run/x.sock": true, "unix:x.sock": true, "unix-abstract:x": true,
		"ipv4:127.0.0.1:1,127.0.0.2:1": true, "ipv6:[::1]:1": true,
		"accountpool:50051": false, "accountpool.slotwatch.svc:50051": false, "10.0.0.5:50051": false, "[2001:db8::1]:1": false,
		"dns:///requests:50052": false, "passthrough:///10.0.0.5:50051": false, "ipv4:127.0.0.1:1,10.0.0.1:1": false,
		"xds:///accountpool": false, "": false, ":50051": false,
	} {
		if got := LocalTarget(target); got != local {
			t.Errorf("LocalTarget(%q) = %v, want %v", target, got, local)
		}
	}
	_, err := DialOptions("accountpool.slotwatch.svc:50051", ClientConfig{})
	if err == nil || !strings.Contains(err.Error(), "TLS_CA_FILE") || !strings.Contains(err.Error(), "TLS_INSECURE=true") {
		t.Fatalf("plaintext to a remote target: want a refusal naming TLS_CA_FILE and TLS_INSECURE, got %v", err)
	}
	if _, err := Dial("accountpool.slotwatch.svc:50051", ClientConfig{}); err == nil || !strings.Contains(err.Error(), "TLS_CA_FILE") {
		t.Fatalf("Dial, plaintext to a remote target: want DialOptions' refusal, got %v", err)
	}
	if _, err := DialOptions("accountpool.slotwatch.svc:50051", ClientConfig{Insecure: true}); err != nil {
		t.Fatalf("TLS_INSECURE=true: %v", err)
	}
	// With TLS every target is fine.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, ca, caPEM(t))
	if _, err := DialOptions("accountpool.slotwatch.svc:50051", ClientConfig{CAFile: ca}); err != nil {
		t.Fatalf("TLS: %v", err)
	}

	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	c, err := ClientConfigFromEnv(env("AUTH_TOKEN_FILE", "/t", "TLS_CA_FILE", "/ca", "TLS_INSECURE", "true"))
	if err != nil || c != (ClientConfig{TokenFile: "/t", CAFile: "/ca", Insecure: true}) {
		t.Fatalf("from env: %+v %v", c, err)
	}
	if c, err := ClientConfigFromEnv(env()); err != nil || c.Insecure {
		t.Fatalf("unset: %+v %v", c, err)
	}
	if _, err := ClientConfigFromEnv(env("TLS_INSECURE", "yes please")); err == nil || !strings.Contains(err.Error(), "TLS_INSECURE") {
		t.Fatalf("a bad TLS_INSECURE: %v", err)
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

	// A deleted tokens file fails closed: an admin's open watch ends too.
	var admin Identity
	waitFor(t, func() bool { admin, ok = tokens.Lookup(adminTok); return ok })
	errc = make(chan error, 1)
	go func() { errc <- WatchAuthorization(ctx, tokens, policy, admin, "/svc/Watch") }()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := result(errc); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("tokens file deleted: %v", err)
	}
}

// caPEM is a self-signed CA certificate, PEM.
func caPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now(),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestReloadLooksTwiceBeforeFailingClosed(t *testing.T) {
	t.Parallel()
	var logs testkit.SyncBuffer
	path := tokensFile(t)
	tokens, err := OpenTokens(path, slog.New(slog.NewJSONHandler(&logs, nil)), ReloadEvery(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	tokens.w.now = func() time.Time { return clock } // nothing runs concurrently yet
	good := func() bool { _, ok := tokens.Lookup(adminTok); return ok }
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// Read half-written once (an in-place rewrite), whole on the next look:
	// nothing changes.
	writeFile(t, path, "")
	clock = clock.Add(time.Hour)
	if !good() {
		t.Fatal("one bad look failed closed")
	}
	writeFile(t, path, string(content))
	clock = clock.Add(settleDelay)
	if !good() || strings.Contains(logs.String(), "ERROR") {
		t.Fatalf("a file rewritten in place failed closed: %s", logs.String())
	}

	// Still empty on the second look, soon after: no token is valid.
	writeFile(t, path, "")
	clock = clock.Add(time.Hour)
	good()
	clock = clock.Add(settleDelay)
	if good() || !strings.Contains(logs.String(), "NO TOKEN IS VALID") {
		t.Fatalf("an emptied file did not fail closed: %s", logs.String())
	}
}
