package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"mime"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/slotwatch/slotwatch/services/platform/freeport"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/slotctl/internal/seed"
)

// TestRun plays the demo with the real portalsim, AccountPool, Requests and
// Notifier binaries on a real Postgres. The Checker is testdata/fakechecker: it
// speaks the Checker's log contract and runs the session loop against the
// real services, but reads the slots from portalsim's admin API instead of
// driving Chromium, so this test is about the demo, not the browser.
func TestRun(t *testing.T) {
	t.Parallel()
	server := pgtest.ServerURL(t)
	root := t.TempDir()
	buildBinaries(t, filepath.Join(root, "bin"))
	db := "slotwatch_demo_test_" + randomHex(t, 6)
	t.Cleanup(func() { dropDatabase(t, server, db) })
	addrs := freeAddrs(t)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out testkit.SyncBuffer
	env := map[string]string{"POOL_COOLDOWN": "3s", "CHECKER_SESSION_INTERVAL": "200ms", "CHROME_PATH": os.Getenv("CHROME_PATH")}
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Config{
			Root: root, DatabaseURL: server, Database: db, Addrs: addrs,
			SlotAfter: 4 * time.Second, Getenv: func(k string) string { return env[k] }, Out: &out,
		})
	}()

	deadline := time.After(2 * time.Minute)
	for !strings.Contains(out.String(), "Everything stays up until Ctrl-C") {
		select {
		case err := <-errc:
			t.Fatalf("Run ended early: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("the slot was not found in time:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	// grpcurl works without proto files, as the README shows: reflection
	// is on for every service the demo starts.
	for _, addr := range []string{addrs.Pool, addrs.Requests} {
		if names := listServices(t, addr); !strings.Contains(names, "slotwatch.") {
			t.Errorf("reflection on %s lists %q", addr, names)
		}
	}
	cancel() // Ctrl-C
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	got := out.String()
	slot := seed.DemoDataset(time.Now()).Slot

	t.Run("ShowsTheSessionsTheWaitAndWhatWasFound", func(t *testing.T) {
		for _, want := range []string{
			"POOL_COOLDOWN=3s [10m]",
			"session 1   ",
			"pool: 0 available, 6 cooling down, next free in",
			"no account free: the Checker waits",
			"portalsim: a slot is free now: France (fra), London, tourism, " + slot.Date + " 09:30",
			"FOUND  Amélie Laurent: France (fra), London, tourism, " + slot.Date + " 09:30",
			// The FOUND block is the email's: to Amélie, with its subject.
			"email to amelie.laurent@example.com ",
			`after the check: "Slot found: fra London`,
			"webhook  slot_found to the operator, signature verified",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("no %q in the output:\n%s", want, got)
			}
		}
		wait, appeared, found := strings.Index(got, "no account free"), strings.Index(got, "a slot is free now"), strings.Index(got, "FOUND")
		if wait > appeared || appeared > found {
			t.Errorf("want the wait, then the slot, then FOUND:\n%s", got)
		}
	})

	t.Run("TheEmailIsAmeliesAndHoldsNoPassport", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join(root, ".data", "mail", "*.eml"))
		if err != nil || len(files) != 1 {
			t.Fatalf("saved emails: %v (%v); want Amélie's alone", files, err)
		}
		data, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		msg, err := netmail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if to := msg.Header.Get("To"); !strings.Contains(to, "amelie.laurent@example.com") {
			t.Errorf("To: %q", to)
		}
		if !strings.HasPrefix(subject, "Slot found: fra London") || !strings.Contains(got, subject) {
			t.Errorf("subject %q: want it about fra London, and in the output", subject)
		}
		// The Message-ID is the delivery's idempotency key.
		if id := msg.Header.Get("Message-ID"); !strings.HasPrefix(id, "<slotwatch-") || !strings.HasSuffix(id, "@demo.test>") {
			t.Errorf("Message-ID %q", id)
		}
		for _, a := range seed.DemoDataset(time.Now()).Applicants {
			if bytes.Contains(data, []byte(a.Passport)) {
				t.Errorf("the email holds %s's passport number", a.FullName)
			}
		}
	})

	t.Run("StopsEverythingItStarted", func(t *testing.T) {
		for _, svc := range []string{"checker", "notifier", "requests", "accountpool", "portalsim"} {
			if !strings.Contains(got, "stopping "+svc+" ... stopped") {
				t.Errorf("%s was not stopped by SIGTERM:\n%s", svc, got)
			}
		}
		if err := portsFree(addrs.all()...); err != nil {
			t.Error(err)
		}
	})

	t.Run("KeepsItsSecretsPrivate", func(t *testing.T) {
		for _, name := range []string{"tokens", "admin.token", "checker.token", "notifier.token", "keyset.json"} {
			st, err := os.Stat(filepath.Join(root, ".data", name))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", name, st.Mode().Perm())
			}
		}
		// The services' tokens file holds digests, not the tokens.
		tokens, err := os.ReadFile(filepath.Join(root, ".data", "tokens"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"admin.token", "checker.token", "notifier.token"} {
			tok, err := os.ReadFile(filepath.Join(root, ".data", name))
			if err != nil || len(strings.TrimSpace(string(tok))) < 24 {
				t.Fatalf("%s: %v", name, err)
			}
			if strings.Contains(string(tokens), strings.TrimSpace(string(tok))) {
				t.Errorf("the tokens file holds the token of %s", name)
			}
		}
		checkerLog, err := os.ReadFile(filepath.Join(root, ".data", "logs", "checker.log"))
		if err != nil || !strings.Contains(string(checkerLog), `"msg":"check finished"`) {
			t.Errorf("the Checker's log lines are not in its log file (%v)", err)
		}
	})
}

// buildBinaries builds the services the demo starts into dir, with the
// fake Checker as bin/checker.
func buildBinaries(t *testing.T, dir string) {
	t.Helper()
	const mod = "github.com/slotwatch/slotwatch/services/"
	for out, pkg := range map[string]string{
		dir + string(filepath.Separator): "", // the four services, by their own names
		filepath.Join(dir, "checker"):    mod + "slotctl/internal/demo/testdata/fakechecker",
	} {
		args := []string{"build", "-o", out}
		if pkg == "" {
			args = append(args, mod+"portalsim/cmd/portalsim", mod+"accountpool/cmd/accountpool", mod+"requests/cmd/requests", mod+"notifier/cmd/notifier")
		} else {
			args = append(args, pkg)
		}
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
}

// requireChromium is the Chromium the Checkers start (CHROME_PATH, or
// /usr/bin/chromium); the test fails when it is missing: `make test`
// installs it, so a skip would only hide a broken setup.
func requireChromium(t *testing.T) string {
	t.Helper()
	chrome := os.Getenv("CHROME_PATH")
	if chrome == "" {
		chrome = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chrome); err != nil {
		t.Fatalf("no Chromium at %s (make chromium installs it, or set CHROME_PATH): %v", chrome, err)
	}
	return chrome
}

// freeAddrs are loopback addresses nothing listens on now.
func freeAddrs(t *testing.T) Addrs {
	t.Helper()
	p, err := freeport.Loopback(12)
	if err != nil {
		t.Fatal(err)
	}
	return Addrs{
		Portal: p[0], Pool: p[1], PoolMetrics: p[2], Requests: p[3], RequestsMetrics: p[4],
		RequestsHTTP: p[5], Checker: p[6], CheckerMetrics: p[7],
		Notifier: p[8], NotifierMetrics: p[9], Mail: p[10], Webhook: p[11],
	}
}

func dropDatabase(t *testing.T, server, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Errorf("drop %s: %v", db, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("drop %s: %v", db, err)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// listServices asks addr's reflection service, with no token, which
// services it serves.
func listServices(t *testing.T, addr string) string {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	refl, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatalf("reflection on %s: %v", addr, err)
	}
	resp, err := refl.Recv()
	if err != nil {
		t.Fatalf("reflection on %s: %v", addr, err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return strings.Join(names, ",")
}
