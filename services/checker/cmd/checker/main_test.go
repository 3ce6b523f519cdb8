package main

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/session"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

func loader(env map[string]string) *envconfig.Loader {
	return &envconfig.Loader{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
}

// rootOptIn is the environment a test running as root needs: Chromium
// cannot be sandboxed as root, and the checker refuses root without the
// opt-in (TestRootWithoutNoSandboxIsRefused).
func rootOptIn() map[string]string {
	if os.Geteuid() != 0 {
		return nil
	}
	return map[string]string{"CHROME_NO_SANDBOX": "true"}
}

// The defaults are the binary contract the demo and the manifests rely on.
func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(loader(rootOptIn()))
	if err != nil {
		t.Fatal(err)
	}
	s := c.session
	for _, tc := range []struct {
		name string
		got  any
		want any
	}{
		{"LISTEN_ADDR", c.listenAddr, ":50053"},
		{"METRICS_ADDR", c.metricsAddr, ":9093"},
		{"ACCOUNTPOOL_ADDR", c.accountPoolAddr, "localhost:50051"},
		{"REQUESTS_ADDR", c.requestsAddr, "localhost:50052"},
		{"CHROME_PATH", c.chromePath, "/usr/bin/chromium"},
		{"CHECKER_BROWSER_RECYCLE", c.recycle, 100},
		{"CHECKER_BROWSER_START_TIMEOUT", c.browserStart, 30 * time.Second},
		{"MAX_CONCURRENT_MISSIONS", s.MaxConcurrent, 5},
		{"CHECKER_SESSION_INTERVAL", s.Interval, 10 * time.Second},
		{"CHECKER_CLAIM_TTL", s.ClaimTTL, 5 * time.Minute},
		{"CHECKER_LEASE_TTL", s.LeaseTTL, 2 * time.Minute},
		{"CHECKER_LOOP", c.loop, true},
		{"CHROME_NO_SANDBOX", c.noSandbox, os.Geteuid() == 0}, // false but for the root opt-in
		{"CHECKER_DRAIN_TIMEOUT", c.drain, time.Minute},
		{"CHECKER_ARTIFACTS_MAX_BYTES", c.artifactsMax, int64(8 << 20)},
		{"CHECKER_ARTIFACTS_TOTAL_BYTES", c.artifactsTotal, int64(512 << 20)},
		{"CHECKER_ARTIFACTS_MAX_AGE", c.artifactsMaxAge, 72 * time.Hour},
		{"CHECKER_ARTIFACTS_PAGES", c.artifactsPages, false},
		{"PORTAL_PROFILE_FILE", c.profile.Name, "portalsim"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s default = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if s.CheckerID == "" || !strings.Contains(s.CheckerID, "-") {
		t.Errorf("CHECKER_ID default = %q, want hostname-pid", s.CheckerID)
	}
	if session.DefaultMaxConcurrent != 5 {
		t.Errorf("session default concurrency %d", session.DefaultMaxConcurrent)
	}
}

func TestBadSettingsAreNamedAllAtOnce(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(loader(map[string]string{
		"CHECKER_CLAIM_TTL": "1s", "CHECKER_LEASE_TTL": "2h", "CHECKER_LOOP": "sometimes",
		"MAX_CONCURRENT_MISSIONS": "0", "PORTAL_BASE_URL": "ftp://x", "TLS_INSECURE": "perhaps",
		"CHECKER_ARTIFACTS_MAX_BYTES": "1048576", "CHECKER_ARTIFACTS_TOTAL_BYTES": "524288",
		"CHECKER_ARTIFACTS_PAGES": "maybe", "CHECKER_ARTIFACTS_MAX_AGE": "1s",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"CHECKER_CLAIM_TTL", "CHECKER_LEASE_TTL", "CHECKER_LOOP", "MAX_CONCURRENT_MISSIONS", "PORTAL_BASE_URL", "CHECKER_ARTIFACTS_TOTAL_BYTES", "TLS_INSECURE",
		"CHECKER_ARTIFACTS_PAGES", "CHECKER_ARTIFACTS_MAX_AGE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

func TestRootWithoutNoSandboxIsRefused(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		testkit.SkipOutsideCI(t, "needs root (the rule itself is tested in package browser, TestSandboxRule)")
	}
	_, err := loadConfig(loader(nil))
	if !errors.Is(err, browser.ErrRootWithoutNoSandbox) {
		t.Fatalf("loadConfig as root without CHROME_NO_SANDBOX: %v, want %v", err, browser.ErrRootWithoutNoSandbox)
	}
	for _, want := range []string{"non-root", "CHROME_NO_SANDBOX=true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say what to do (%q): %v", want, err)
		}
	}
	if _, err := loadConfig(loader(map[string]string{"CHROME_NO_SANDBOX": "true"})); err != nil {
		t.Errorf("with CHROME_NO_SANDBOX=true: %v", err)
	}
	if _, err := loadConfig(loader(map[string]string{"CHROME_NO_SANDBOX": "yes please"})); err == nil || !strings.Contains(err.Error(), "CHROME_NO_SANDBOX") {
		t.Errorf("CHROME_NO_SANDBOX=\"yes please\": %v, want an error naming it", err)
	}
}

// TestRefusesPlaintextToARemoteService: the Checker sends its token, and
// receives portal passwords, over these connections.
func TestRefusesPlaintextToARemoteService(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{
		"LISTEN_ADDR": "127.0.0.1:0", "METRICS_ADDR": "127.0.0.1:0", "AUTH_TOKENS_FILE": "", "AUTH_TOKEN_FILE": "", "TLS_CA_FILE": "", "TLS_INSECURE": "", "CHROME_NO_SANDBOX": "true",
		"ACCOUNTPOOL_ADDR": "accountpool.slotwatch.svc:50051", "REQUESTS_ADDR": "localhost:50052",
	}, "want a refusal naming the address, TLS_CA_FILE and TLS_INSECURE", "ACCOUNTPOOL_ADDR=accountpool.slotwatch.svc:50051", "TLS_CA_FILE", "TLS_INSECURE=true")
}

func TestProfileLint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := dir + "/bad.yaml"
	if err := os.WriteFile(bad, []byte("name: x\nbase_url: https://p.example\nflows:\n  login:\n    - {hover: \"#m\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err := run(t.Context(), []string{"profile", "lint", bad}, &out)
	if err == nil || !strings.Contains(out.String(), bad+":5: flows.login[0]: unknown step kind") {
		t.Errorf("lint of a bad profile: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"profile", "lint", "../../profiles/portalsim.yaml"}, &out); err != nil || !strings.Contains(out.String(), "ok") {
		t.Errorf("lint of the shipped profile: %v\n%s", err, out.String())
	}
}

// checker profile try against a portalsim, with a real Chromium: every
// step printed, the page after each saved, the password in none of them.
func TestProfileTryPrintsEveryStepAndSavesThePages(t *testing.T) {
	const email, password = "try@example.com", "try-secret-pw-1"
	s, err := sim.New(sim.Config{
		Accounts: []sim.Account{{Email: email, Password: password}},
		Missions: []sim.Mission{{Code: "fra", Name: "France", Centres: []string{"London"}, VisaCategories: []string{"tourism"},
			Slots: []sim.Slot{{Centre: "London", VisaCategory: "tourism", Date: "2027-03-01", Time: "09:30"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	dir := t.TempDir()
	pwFile, out := filepath.Join(dir, "pw"), filepath.Join(dir, "out")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		t.Setenv("CHROME_NO_SANDBOX", "true")
	}
	var stdout strings.Builder
	err = run(t.Context(), []string{"profile", "try", "--profile", "../../profiles/portalsim.yaml", "--base-url", srv.URL,
		"--mission", "fra", "--centre", "London", "--category", "tourism", "--email", email, "--password-file", pwFile, "--out", out}, &stdout)
	got := stdout.String()
	t.Log(got)
	if err != nil {
		t.Fatalf("try: %v\n%s", err, got)
	}
	for _, want := range []string{"login_page", "login_form", "logged_in", "slot_form", "2027-03-01 09:30", "result: success: 1 free slots", "request"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	pages, _ := filepath.Glob(filepath.Join(out, "*.html"))
	shots, _ := filepath.Glob(filepath.Join(out, "*.png"))
	if len(pages) != 10 || len(shots) != 10 {
		t.Errorf("%d pages and %d screenshots saved, want one of each per step (10)", len(pages), len(shots))
	}
	for _, f := range append(pages, shots...) {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), password) {
			t.Errorf("%s holds the password", f)
		}
	}
	if strings.Contains(got, password) {
		t.Error("the output holds the password")
	}
}

// docs/examples/tls-newcomer.yaml is the profile a newcomer wrote for the
// tls family from docs/PROFILES.md alone (issue 12). It must keep linting,
// and keep reading portalsim's tls calendar: the slots (one a month link
// away), none, and the walls as what they are.
func TestNewcomerExampleProfileReadsTheTLSFamily(t *testing.T) {
	const example = "../../../../docs/examples/tls-newcomer.yaml"
	var lint strings.Builder
	if err := run(t.Context(), []string{"profile", "lint", example}, &lint); err != nil || !strings.Contains(lint.String(), "ok") {
		t.Fatalf("lint of the example: %v\n%s", err, lint.String())
	}
	const email, password = "newcomer@example.com", "newcomer-secret-pw-1"
	day := time.Now().UTC().AddDate(0, 0, 40).Format("2006-01-02") // past the calendar's first month
	s, err := sim.New(sim.Config{
		Family:   sim.TLS,
		Accounts: []sim.Account{{Email: email, Password: password}},
		Missions: []sim.Mission{{Code: "fra", Name: "France", Centres: []string{"London", "Manchester"}, VisaCategories: []string{"tourism"},
			Slots: []sim.Slot{
				{Centre: "London", VisaCategory: "tourism", Date: day, Time: "09:30"},
				{Centre: "London", VisaCategory: "tourism", Date: day, Time: "10:00"},
			}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		t.Setenv("CHROME_NO_SANDBOX", "true")
	}
	for i, tc := range []struct {
		centre    string
		behaviour sim.Behaviour
		want      []string
	}{
		{"London", sim.Behaviour{}, []string{"result: success: 2 free slots", day + " 09:30, " + day + " 10:00"}},
		{"Manchester", sim.Behaviour{}, []string{"result: no_slot: 0 free slots"}},
		{"London", sim.Behaviour{Kind: sim.RejectPassword}, []string{"result: login_fail/bad_credentials"}},
		{"London", sim.Behaviour{Kind: sim.Captcha, Only: sim.SlotAPI}, []string{"result: banned/captcha"}},
	} {
		if err := s.SetBehaviour(email, tc.behaviour); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out", string(rune('a'+i)))
		var stdout strings.Builder
		err := run(t.Context(), []string{"profile", "try", "--profile", example, "--base-url", srv.URL,
			"--mission", "fra", "--centre", tc.centre, "--category", "tourism", "--email", email, "--password-file", pwFile, "--out", out}, &stdout)
		got := stdout.String()
		for _, want := range tc.want {
			if !strings.Contains(got, want) {
				t.Errorf("%s, behaviour %+v: output lacks %q (err %v):\n%s", tc.centre, tc.behaviour, want, err, got)
			}
		}
		pages, _ := filepath.Glob(filepath.Join(out, "*.html"))
		for _, f := range pages {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), password) {
				t.Errorf("%s holds the password", f)
			}
		}
	}
}

// TestServeNamesTheEdgeSettingsWithItsOwn: the settings LoadEdge reads
// (rate limit, GRPC_*, LOG_LEVEL) were checked only after the Checker's
// own passed, so a bad CHROME_NO_SANDBOX beside a bad RATE_LIMIT_RPS took
// two restarts.
func TestServeNamesTheEdgeSettingsWithItsOwn(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{
		"LISTEN_ADDR": "127.0.0.1:0", "METRICS_ADDR": "127.0.0.1:0", "CHROME_NO_SANDBOX": "yes please",
		"RATE_LIMIT_RPS": "fifty", "GRPC_MAX_CONNS_PER_PEER": "0",
	}, "want every bad setting named", "CHROME_NO_SANDBOX", "RATE_LIMIT_RPS", "GRPC_MAX_CONNS_PER_PEER")
}

// TestProfileTryPrintsARunOfMoreThan64Steps: try read the steps' traces
// from a channel of 64 only after the check returned, and the check sends
// each trace as its step ends: the 65th send blocked the check for good
// (try never ended). A profile of 70 extra steps must print every one.
func TestProfileTryPrintsARunOfMoreThan64Steps(t *testing.T) {
	const email, password, extra = "long@example.com", "long-secret-pw-1", 70
	src, err := os.ReadFile("../../../../docs/examples/tls-newcomer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var holds strings.Builder
	for i := range extra {
		fmt.Fprintf(&holds, "    - {name: hold-%02d, wait: {selector: 'a[href=\"/logout\"]'}}\n", i)
	}
	const after = "    - {name: groups, goto: /groups, expect: logged_in}\n"
	if !strings.Contains(string(src), after) {
		t.Fatalf("the example has no %q step to add steps after", after)
	}
	long := strings.Replace(string(src), after, after+holds.String(), 1)
	day := time.Now().UTC().AddDate(0, 0, 3).Format("2006-01-02")
	s, err := sim.New(sim.Config{
		Family:   sim.TLS,
		Accounts: []sim.Account{{Email: email, Password: password}},
		Missions: []sim.Mission{{Code: "fra", Name: "France", Centres: []string{"London"}, VisaCategories: []string{"tourism"},
			Slots: []sim.Slot{{Centre: "London", VisaCategory: "tourism", Date: day, Time: "09:30"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	dir := t.TempDir()
	prof, pwFile := filepath.Join(dir, "long.yaml"), filepath.Join(dir, "pw")
	if err := os.WriteFile(prof, []byte(long), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		t.Setenv("CHROME_NO_SANDBOX", "true")
	}
	var stdout strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- run(t.Context(), []string{"profile", "try", "--profile", prof, "--base-url", srv.URL, "--mission", "fra",
			"--centre", "London", "--category", "tourism", "--email", email, "--password-file", pwFile, "--out", filepath.Join(dir, "out")}, &stdout)
	}()
	// Generous: 80 steps, each saving a screenshot, on a loaded machine.
	select {
	case err = <-done:
	case <-time.After(5 * time.Minute):
		t.Fatalf("try did not end within 5 minutes of a run of %d steps (blocked on its step traces?)", extra+10)
	}
	got := stdout.String()
	if err != nil {
		t.Fatalf("try: %v\n%s", err, got)
	}
	for i := range extra {
		if want := fmt.Sprintf("hold-%02d", i); !strings.Contains(got, want) {
			t.Errorf("output lacks step %s", want)
		}
	}
	for _, want := range []string{"result: success: 1 free slots", day + " 09:30", "logout"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(got)
	}
}
