package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/proctest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// binDir holds the real accountpool, requests and notifier binaries, built once by
// TestMain: slotctl is tested against the services as they ship, not
// against fakes or another module's internals.
var binDir string

func TestMain(m *testing.M) {
	const race = false // the services are built without -race
	os.Exit(proctest.RunWithBinaries(m, &binDir, "slotctl-test-bin", race,
		"github.com/slotwatch/slotwatch/services/accountpool/cmd/accountpool",
		"github.com/slotwatch/slotwatch/services/requests/cmd/requests",
		"github.com/slotwatch/slotwatch/services/notifier/cmd/notifier"))
}

// testBundle is a running AccountPool and Requests on one fresh database,
// with auth on, and what a test needs to call them.
type testBundle struct {
	apAddr, rqAddr string
	// adminToken, readerToken: files holding one token each.
	adminToken, readerToken string
	dir                     string
	// owner is the test the services belong to: restarted services are
	// stopped when it ends, not when the subtest that restarted them does.
	owner *testing.T
	// apEnv and apKeyset restart AccountPool (restartAccountPool).
	apEnv    []string
	apKeyset string
	stopAP   func()
	// rqEnv and stopRQ restart Requests (restartRequests).
	rqEnv  []string
	stopRQ func()
	ap     apv1.AccountPoolServiceClient
	rq     rqv1.RequestsServiceClient
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	dir := t.TempDir()
	dbURL := pgtest.NewURL(t)
	b := &testBundle{dir: dir, owner: t}

	tokens := map[string]string{}
	var lines strings.Builder
	for _, role := range []string{"admin", "checker", "reader"} {
		tokens[role] = newToken(t)
		fmt.Fprintln(&lines, auth.DigestLine(auth.Role(role), role, tokens[role]))
	}
	tokensFile := authtest.WriteFile(t, "tokens", lines.String())
	b.adminToken = authtest.WriteFile(t, "admin.token", "admin "+tokens["admin"]+"\n")
	b.readerToken = authtest.WriteFile(t, "reader.token", tokens["reader"]+"\n")

	common := []string{
		"DATABASE_URL=" + dbURL,
		"LISTEN_ADDR=127.0.0.1:0",
		"METRICS_ADDR=127.0.0.1:0",
		"AUTH_TOKENS_FILE=" + tokensFile,
		"LOG_LEVEL=info",
	}
	apKeys := grpcservertest.KeysetFile(t)
	rqKeys := grpcservertest.KeysetFile(t)
	// Requests and AccountPool migrate their own schemas at start; starting
	// them one after the other keeps the two migrations off each other's toes.
	b.apEnv, b.apKeyset = append(common, "ENCRYPTION_KEYSET_FILE="+apKeys), apKeys
	b.apAddr, b.stopAP = startService(t, t, "accountpool", b.apEnv)
	b.rqEnv = append(common, "ENCRYPTION_KEYSET_FILE="+rqKeys, "HTTP_ADDR=127.0.0.1:0")
	b.rqAddr, b.stopRQ = startService(t, t, "requests", b.rqEnv)

	for addr, set := range map[string]func(*grpc.ClientConn){
		b.apAddr: func(c *grpc.ClientConn) { b.ap = apv1.NewAccountPoolServiceClient(c) },
		b.rqAddr: func(c *grpc.ClientConn) { b.rq = rqv1.NewRequestsServiceClient(c) },
	} {
		set(authtest.Dial(t, addr, auth.ClientConfig{TokenFile: b.adminToken}))
	}
	return b
}

func newToken(t *testing.T) string {
	t.Helper()
	tok, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// restartAccountPool stops AccountPool and starts it again on the same
// database and keyset file (which the test may have rotated meanwhile).
// Only slotctl runs talk to the new one (b.ap keeps the old address).
func (b *testBundle) restartAccountPool(t *testing.T) {
	t.Helper()
	b.stopAP()
	b.apAddr, b.stopAP = startService(t, b.owner, "accountpool", b.apEnv)
}

// restartRequests stops Requests and starts it again on the same address,
// as a rollout would replace a replica behind its Service.
func (b *testBundle) restartRequests(t *testing.T) {
	t.Helper()
	b.stopRQ()
	b.rqAddr, b.stopRQ = startService(t, b.owner, "requests", append(b.rqEnv, "LISTEN_ADDR="+b.rqAddr))
}

// startService runs a service binary (proctest.Start) and returns its
// gRPC address and a function that stops it with SIGTERM, which also runs
// when owner ends. Its log is shown if owner failed.
func startService(t, owner *testing.T, name string, env []string) (string, func()) {
	t.Helper()
	p := proctest.Start(t, filepath.Join(binDir, name), proctest.Config{
		// The test's own environment must not leak in a setting it did not
		// choose; env, last, may choose one (a rate limit).
		Env:          slices.Concat([]string{"TLS_CERT_FILE=", "TLS_KEY_FILE=", "RATE_LIMIT_RPS=0"}, env),
		Owner:        owner,
		ServeTimeout: time.Minute,
		StopTimeout:  30 * time.Second,
	})
	return p.Addr, p.Stop
}

// result is one slotctl run.
type result struct {
	stdout, stderr string
	code           int
}

// slotctl runs slotctl in-process against the bundle's services with the
// admin token, stdin as given.
func (b *testBundle) slotctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return b.slotctlCtx(t, context.Background(), stdin, args...)
}

func (b *testBundle) slotctlCtx(t *testing.T, ctx context.Context, stdin string, args ...string) result {
	t.Helper()
	base := []string{"--accountpool", b.apAddr, "--requests", b.rqAddr, "--token-file", b.adminToken}
	return runSlotctl(ctx, strings.NewReader(stdin), nil, append(base, args...)...)
}

// slotctlTyping runs slotctl like slotctl, its stdin a typist slower than
// --timeout: the line arrives after delay.
func (b *testBundle) slotctlTyping(t *testing.T, line string, delay time.Duration, args ...string) result {
	t.Helper()
	base := []string{"--accountpool", b.apAddr, "--requests", b.rqAddr, "--token-file", b.adminToken}
	return runSlotctl(context.Background(), &slowReader{delay: delay, r: strings.NewReader(line)}, nil, append(base, args...)...)
}

// slowReader waits delay before its first read.
type slowReader struct {
	delay time.Duration
	once  sync.Once
	r     io.Reader
}

func (s *slowReader) Read(p []byte) (int, error) {
	s.once.Do(func() { time.Sleep(s.delay) })
	return s.r.Read(p)
}

func runSlotctl(ctx context.Context, stdin io.Reader, env map[string]string, args ...string) result {
	var stdout, stderr testkit.SyncBuffer
	code := Run(ctx, args, IO{
		Stdin: stdin, Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) string { return env[k] },
	})
	return result{stdout.String(), stderr.String(), code}
}

// must fails the test unless the run succeeded.
func (r result) must(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("slotctl exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

// fails checks the run failed with code, one line on stderr containing every
// one of wants.
func (r result) fails(t *testing.T, code int, wants ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("slotctl exited %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	// The error is the last line, whole (a progress bar may come before it).
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if code == 1 && (!strings.HasPrefix(last, "slotctl: ") || strings.Count(r.stderr, "slotctl: ") != 1) {
		t.Errorf("error is not one line:\n%s", r.stderr)
	}
	for _, w := range wants {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q does not contain %q", r.stderr, w)
		}
	}
}

// decodeJSON unmarshals a -o json output.
func decodeJSON[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("output is not the JSON expected: %v\n%s", err, out)
	}
	return v
}
