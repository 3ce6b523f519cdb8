package portal

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/browser/browsertest"
	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// One browser serves every test of the package, in parallel tabs, as it
// serves the checker.
func TestMain(m *testing.M) { browsertest.Main(m) }

func shared(t *testing.T) *browser.Manager { return browsertest.Shared(t) }

const (
	acc1 = "acc1@example.com"
	acc2 = "acc2@example.com"
	pw1  = "secret-pw-1"
	pw2  = "secret-pw-2"
	// passport1 is acc1's applicant's passport number, which the
	// portal's dashboard shows.
	passport1 = "X98765432"
)

type testBundle struct {
	sim       *sim.Sim
	url       string
	artifacts string
	logs      *testkit.SyncBuffer
}

// portalConfig: France offers two centres and two categories; London /
// tourism has three slots, one without a time.
func portalConfig() sim.Config {
	return sim.Config{
		Accounts: []sim.Account{{Email: acc1, Password: pw1, Passport: passport1}, {Email: acc2, Password: pw2}},
		Missions: []sim.Mission{{
			Code: "fra", Name: "France", Centres: []string{"London", "Manchester"}, VisaCategories: []string{"tourism", "business"},
			Slots: []sim.Slot{
				{Centre: "London", VisaCategory: "tourism", Date: "2027-03-02", Time: "14:00"},
				{Centre: "London", VisaCategory: "tourism", Date: "2027-03-01", Time: "09:30"},
				{Centre: "London", VisaCategory: "tourism", Date: "2027-03-05"},
				{Centre: "Manchester", VisaCategory: "business", Date: "2027-06-10", Time: "11:15"},
			},
		}},
	}
}

// setup starts a portalsim on 127.0.0.1:0 and a driver for it on the
// shared browser. tune may change the profile (timeouts, selectors).
func setup(t *testing.T, tune func(*profile.Profile)) (*Driver, *testBundle) {
	t.Helper()
	return setupWith(t, tune, nil)
}

// setupWith is setup with the portal's handler wrapped, to hold requests.
func setupWith(t *testing.T, tune func(*profile.Profile), wrap func(http.Handler) http.Handler) (*Driver, *testBundle) {
	t.Helper()
	s, err := sim.New(portalConfig())
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = s
	if wrap != nil {
		h = wrap(s)
	}
	url, prof := browsertest.ServePortal(t, h, tune)
	b := &testBundle{sim: s, url: url, artifacts: t.TempDir(), logs: &testkit.SyncBuffer{}}
	d, err := New(Config{
		Profile: prof, Browser: shared(t), ArtifactsDir: b.artifacts,
		Logger: slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, b
}

func runCheck(t *testing.T, d *Driver, acct Account, mission string, queries ...Query) Result {
	t.Helper()
	res, err := d.CheckMission(t.Context(), acct, mission, queries, nil)
	if err != nil {
		t.Fatalf("CheckMission: %v (result %+v)", err, res)
	}
	return res
}

var londonTourism = Query{Centre: "London", VisaCategory: "tourism"}

// checkUnder runs one check of acc1 for London tourism at fra while the
// portal shows behaviour b: to acc1 alone, or to every visitor when global.
// It returns the result and the portal it ran against.
func checkUnder(t *testing.T, b sim.Behaviour, global bool) (Result, *testBundle) {
	t.Helper()
	d, tb := setup(t, nil)
	email := acc1
	if global {
		email = ""
	}
	if err := tb.sim.SetBehaviour(email, b); err != nil {
		t.Fatal(err)
	}
	return runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism), tb
}

func TestCheckReadsSlots(t *testing.T) {
	t.Parallel()

	t.Run("FindsTheSlotsTheScriptLoads", func(t *testing.T) {
		t.Parallel()
		d, b := setup(t, nil)
		res, err := d.Check(t.Context(), Account{Email: acc1, Password: pw1}, Target{Mission: "fra", Centre: "London", VisaCategory: "tourism"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != Success || res.Step != "done" || !res.LoggedIn {
			t.Fatalf("result = %+v", res)
		}
		want := []Slot{
			{Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: "2027-03-01", Time: "09:30"},
			{Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: "2027-03-02", Time: "14:00"},
			{Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: "2027-03-05"},
		}
		if !slices.Equal(res.Slots, want) {
			t.Errorf("slots = %+v\nwant %+v", res.Slots, want)
		}
		logins := b.sim.Logins()
		if len(logins) != 1 || logins[0].Email != acc1 || logins[0].Result != sim.LoginOK {
			t.Errorf("portal saw logins %+v, want one ok for %s", logins, acc1)
		}
		waitLoggedOut(t, b)
	})

	t.Run("LogsOutWithTheProfilesSelector", func(t *testing.T) {
		t.Parallel()
		// A portal whose logout is a link to click rather than a URL to
		// request: the driver clicks it after returning the result.
		d, b := setup(t, func(p *profile.Profile) { p.Logout = profile.Logout{Selector: "#logout"} })
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		if res.Outcome != Success || !res.LoggedIn {
			t.Fatalf("result = %+v", res)
		}
		waitLoggedOut(t, b)
	})

	t.Run("NoSlotWhenTheDatesAreLoadedButEmpty", func(t *testing.T) {
		t.Parallel()
		d, _ := setup(t, nil)
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", Query{Centre: "Manchester", VisaCategory: "tourism"})
		if res.Outcome != NoSlot || len(res.Slots) != 0 || len(res.Queries) != 1 || !res.Queries[0].Checked {
			t.Errorf("result = %+v", res)
		}
	})

	t.Run("SeveralCentresAndCategoriesWithOneLogin", func(t *testing.T) {
		t.Parallel()
		d, b := setup(t, nil)
		res := runCheck(t, d, Account{Email: acc2, Password: pw2}, "fra",
			londonTourism,
			Query{Centre: "Manchester", VisaCategory: "tourism"},
			Query{Centre: "Paris", VisaCategory: "tourism"},
			Query{Centre: "Manchester", VisaCategory: "business"},
		)
		if res.Outcome != Success || len(res.Slots) != 4 {
			t.Fatalf("result = %+v", res)
		}
		last := res.Slots[3]
		if last != (Slot{Mission: "fra", Centre: "Manchester", VisaCategory: "business", Date: "2027-06-10", Time: "11:15"}) {
			t.Errorf("Manchester business slot = %+v", last)
		}
		got := make([]string, len(res.Queries))
		for i, q := range res.Queries {
			got[i] = fmt.Sprintf("%s/%s offered=%v checked=%v slots=%d", q.Centre, q.VisaCategory, q.Offered, q.Checked, q.Slots)
		}
		want := []string{
			"London/tourism offered=true checked=true slots=3",
			"Manchester/tourism offered=true checked=true slots=0",
			"Paris/tourism offered=false checked=false slots=0",
			"Manchester/business offered=true checked=true slots=1",
		}
		if !slices.Equal(got, want) {
			t.Errorf("queries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if n := len(b.sim.Logins()); n != 1 {
			t.Errorf("%d logins for one mission, want 1", n)
		}
	})
}

func TestEachPortalBehaviourEndsInItsOutcome(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		behaviour sim.Behaviour
		global    bool
		outcome   Outcome
		reason    Reason
		step      string
		artifacts bool
	}{
		{"RejectedPasswordIsLoginFail", sim.Behaviour{Kind: sim.RejectPassword}, false, LoginFail, ReasonBadCredentials, "login", false},
		{"BlockedAccountIsBanned", sim.Behaviour{Kind: sim.Blocked}, false, Banned, ReasonBlocked, "login", false},
		{"TooManyRequestsIsBanned", sim.Behaviour{Kind: sim.TooManyRequests}, false, Banned, ReasonRateLimited, "login", false},
		{"CaptchaIsBanned", sim.Behaviour{Kind: sim.Captcha}, false, Banned, ReasonCaptcha, "login", false},
		{"ServerErrorIsError", sim.Behaviour{Kind: sim.ServerError}, false, Error, ReasonServerError, "login", false},
		{"MaintenanceIsError", sim.Behaviour{Kind: sim.Maintenance}, false, Error, ReasonMaintenance, "login", false},
		{"UnknownPageIsErrorWithArtifacts", sim.Behaviour{Kind: sim.Unknown}, false, Error, ReasonUnknownPage, "login", true},
		{"GlobalMaintenanceStopsAtTheLoginPage", sim.Behaviour{Kind: sim.Maintenance}, true, Error, ReasonMaintenance, "login_page", false},
		{"RateLimitOnTheSlotAPIIsBanned", sim.Behaviour{Kind: sim.TooManyRequests, Only: sim.SlotAPI}, false, Banned, ReasonRateLimited, "slots", false},
		{"CaptchaOnTheSlotPageIsBanned", sim.Behaviour{Kind: sim.Captcha, Only: sim.SlotPage}, false, Banned, ReasonCaptcha, "slot_page", false},
		{"GarbageFromTheSlotAPIIsSlotsFailed", sim.Behaviour{Kind: sim.Unknown, Only: sim.SlotAPI}, false, Error, ReasonSlotsFailed, "slots", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, b := checkUnder(t, tc.behaviour, tc.global)
			if res.Outcome != tc.outcome || res.Reason != tc.reason || res.Step != tc.step {
				t.Fatalf("got %s/%s at %s (%s), want %s/%s at %s", res.Outcome, res.Reason, res.Step, res.Detail, tc.outcome, tc.reason, tc.step)
			}
			if res.Detail == "" || res.URL == "" {
				t.Errorf("result lacks detail or URL: %+v", res)
			}
			if tc.artifacts != (res.Artifacts != nil) {
				t.Fatalf("artifacts = %+v, want saved: %v", res.Artifacts, tc.artifacts)
			}
			if tc.artifacts {
				checkArtifacts(t, b, res, false)
			}
			waitLoggedOut(t, b) // also after a failure once logged in
		})
	}

	t.Run("WrongPasswordIsLoginFail", func(t *testing.T) {
		t.Parallel()
		d, b := setup(t, nil)
		res := runCheck(t, d, Account{Email: acc1, Password: "not-the-password"}, "fra", londonTourism)
		if res.Outcome != LoginFail || res.Reason != ReasonBadCredentials || res.LoggedIn {
			t.Errorf("result = %+v", res)
		}
		if l := b.sim.Logins(); len(l) != 1 || l[0].Result != sim.LoginBadPassword {
			t.Errorf("portal saw %+v", l)
		}
	})

	t.Run("SlowerThanTheStepTimeoutIsError", func(t *testing.T) {
		t.Parallel()
		// The page timeout is short but not so short that a busy machine
		// misses it on the login page; only the dashboard is slower.
		d, b := setup(t, func(p *profile.Profile) { p.Timeouts.Page = profile.Duration(2500 * time.Millisecond) })
		// The dashboard would take a minute; the portal stops waiting as
		// soon as the browser gives up on the page.
		if err := b.sim.SetBehaviour(acc1, sim.Behaviour{DelayMS: 60000, Only: sim.Dashboard}); err != nil {
			t.Fatal(err)
		}
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		if res.Outcome != Error || res.Reason != ReasonTimeout || res.Step != "login" {
			t.Errorf("result = %+v", res)
		}
		// Not a timing test: a check that waited for the page would take
		// the full minute; anything well under it shows the timeout cut
		// the step short, however busy the machine.
		if res.Duration > 40*time.Second {
			t.Errorf("the check took %v: the step timeout did not stop it", res.Duration)
		}
	})

	t.Run("PageThatNeverFinishesLoadingIsTimeout", func(t *testing.T) {
		t.Parallel()
		// The login page arrives, but its stylesheet never does: the
		// page commits and never finishes loading.
		d, b := setupWith(t, func(p *profile.Profile) { p.Timeouts.Page = profile.Duration(2500 * time.Millisecond) },
			func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasSuffix(r.URL.Path, ".css") {
						select {
						case <-r.Context().Done():
						case <-time.After(time.Minute):
						}
						return
					}
					h.ServeHTTP(w, r)
				})
			})
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		if res.Outcome != Error || res.Reason != ReasonTimeout || res.Step != "login_page" {
			t.Errorf("result = %+v", res)
		}
		if res.Duration > 40*time.Second {
			t.Errorf("the check took %v: the page timeout did not stop it", res.Duration)
		}
		if l := b.sim.Logins(); len(l) != 0 {
			t.Errorf("portal saw logins %+v from a page that never loaded", l)
		}
	})

	t.Run("UnreachablePortalIsError", func(t *testing.T) {
		t.Parallel()
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := lis.Addr().String()
		lis.Close() // nothing listens there now
		d, _ := setup(t, func(p *profile.Profile) { p.BaseURL = "http://" + addr })
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		if res.Outcome != Error || res.Reason != ReasonUnreachable || !strings.Contains(res.Detail, "ERR_CONNECTION_REFUSED") {
			t.Errorf("result = %+v", res)
		}
	})

	t.Run("ProfileFieldMissingFromThePageIsNamed", func(t *testing.T) {
		t.Parallel()
		d, _ := setup(t, func(p *profile.Profile) { p.Login.Password = "#passphrase" })
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		if res.Outcome != Error || res.Reason != ReasonProfile || !strings.Contains(res.Detail, "#passphrase") || res.Artifacts == nil {
			t.Errorf("result = %+v", res)
		}
	})

	t.Run("InvalidProfileSelectorIsNamed", func(t *testing.T) {
		t.Parallel()
		d, _ := setup(t, func(p *profile.Profile) { p.Markers.LoggedIn = []profile.Marker{{CSS: "div[[oops"}} })
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		if res.Outcome != Error || res.Reason != ReasonProfile || !strings.Contains(res.Detail, "div[[oops") {
			t.Errorf("result = %+v", res)
		}
	})
}

// A page that renders no frame holds a screenshot back until its timeout:
// the HTML, taken first, is saved all the same. (Chromium's headless modes
// render no frame with the compositor on the main thread.)
func TestArtifactsKeepTheHTMLWhenNoScreenshotCanBeTaken(t *testing.T) {
	t.Parallel()
	base, b := setup(t, nil)
	frameless := browser.New(browser.Config{ExecPath: browsertest.ExecPath(t), NoSandbox: browsertest.NoSandbox(), StartTimeout: browsertest.StartTimeout(), Flags: map[string]any{"disable-threaded-compositing": true}})
	t.Cleanup(func() { _ = frameless.Close() })
	d, err := New(Config{
		Profile: base.Profile(), Browser: frameless, ArtifactsDir: b.artifacts, ArtifactsPages: true,
		Logger: slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.sim.SetBehaviour(acc1, sim.Behaviour{Kind: sim.Unknown}); err != nil {
		t.Fatal(err)
	}
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
	if res.Reason != ReasonUnknownPage || res.Artifacts == nil {
		t.Fatalf("got %s/%s (%s), artifacts %+v; want an unknown page with artifacts", res.Outcome, res.Reason, res.Detail, res.Artifacts)
	}
	if res.Artifacts.Screenshot != "" {
		t.Fatal("a screenshot was taken: this Chromium renders frames with --disable-threaded-compositing; the test needs another page that renders none")
	}
	html, err := os.ReadFile(res.Artifacts.HTML)
	if err != nil || !bytes.Contains(html, []byte("<html")) {
		t.Errorf("page HTML %q: %v", res.Artifacts.HTML, err)
	}
}

// waitLoggedOut waits for the logout that follows a check's result.
func waitLoggedOut(t *testing.T, b *testBundle) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(b.sim.Sessions()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still logged in after the check: %+v", b.sim.Sessions())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkArtifacts: check.json is there; with pages (CHECKER_ARTIFACTS_PAGES)
// the screenshot is a PNG and the HTML is the page's, without them neither
// is saved; and the password is nowhere.
func checkArtifacts(t *testing.T, b *testBundle, res Result, pages bool) {
	t.Helper()
	a := res.Artifacts
	if !strings.HasPrefix(a.Dir, b.artifacts) {
		t.Errorf("artifacts in %s, want under %s", a.Dir, b.artifacts)
	}
	if _, err := os.Stat(filepath.Join(a.Dir, "check.json")); err != nil {
		t.Errorf("no check.json: %v", err)
	}
	if !pages {
		if a.Screenshot != "" || a.HTML != "" {
			t.Errorf("artifacts %+v: the page was kept without CHECKER_ARTIFACTS_PAGES", a)
		}
		checkNoPassword(t, a)
		return
	}
	png, err := os.ReadFile(a.Screenshot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("screenshot %s: not a PNG (%v)", a.Screenshot, err)
	}
	html, err := os.ReadFile(a.HTML)
	if err != nil || !bytes.Contains(html, []byte("<html")) {
		t.Errorf("page HTML %s: %v", a.HTML, err)
	}
	checkNoPassword(t, a)
}

// checkNoPassword: no file of the artifacts holds the password.
func checkNoPassword(t *testing.T, a *Artifacts) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(a.Dir, "*"))
	for _, f := range files {
		body, _ := os.ReadFile(f)
		if bytes.Contains(body, []byte(pw1)) {
			t.Errorf("%s contains the password", f)
		}
	}
}

func TestAccountsNeverShareASession(t *testing.T) {
	t.Parallel()
	// The first slot-API request (acc1's) is held until acc2's whole check
	// is done, so acc1 is logged in, in the same browser, while acc2 logs
	// in. With shared cookies the portal would see acc1's session cookie
	// on acc2's login.
	var apiCalls atomic.Int32
	held, release := make(chan struct{}), make(chan struct{})
	hold := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/api/") && apiCalls.Add(1) == 1 {
				close(held)
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	d, b := setupWith(t, func(p *profile.Profile) { p.Timeouts.Slots = profile.Duration(2 * time.Minute) }, hold)
	let := sync.OnceFunc(func() { close(release) })
	defer let() // also when the test fails early
	var wg sync.WaitGroup
	var first Result
	wg.Go(func() { first = runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism) })
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("acc1's check never reached the slot API")
	}
	second := runCheck(t, d, Account{Email: acc2, Password: pw2}, "fra", londonTourism)
	stillIn := slices.ContainsFunc(b.sim.Sessions(), func(s sim.Session) bool { return s.Email == acc1 })
	let()
	wg.Wait()
	if !stillIn {
		t.Fatalf("acc1's session ended before acc2's check did: the test proved nothing")
	}
	for i, r := range []Result{first, second} {
		if r.Outcome != Success {
			t.Errorf("check %d: %+v", i, r)
		}
	}
	for _, l := range b.sim.Logins() {
		if l.PriorSession != "" {
			t.Errorf("%s logged in carrying the session cookie of %s", l.Email, l.PriorSession)
		}
	}
}

func TestPasswordNeverLeaks(t *testing.T) {
	t.Parallel()
	d, b := setup(t, nil)
	d.artifacts.pages = true // the page itself is where a password would be
	_ = b.sim.SetBehaviour(acc1, sim.Behaviour{Kind: sim.Unknown})
	acct := Account{Email: acc1, Password: pw1}
	res := runCheck(t, d, acct, "fra", londonTourism)
	if res.Artifacts == nil {
		t.Fatalf("no artifacts: %+v", res)
	}
	formatted := fmt.Sprintf("%v %+v %#v %s %v", acct, acct, acct, acct, res)
	if strings.Contains(formatted, pw1) {
		t.Errorf("formatting shows the password: %s", formatted)
	}
	slog.New(slog.NewJSONHandler(b.logs, nil)).Info("check", "account", acct)
	if strings.Contains(b.logs.String(), pw1) {
		t.Errorf("the logs show the password:\n%s", b.logs.String())
	}
	if !strings.Contains(b.logs.String(), acc1) {
		t.Errorf("the logs do not name the account:\n%s", b.logs.String())
	}
	checkArtifacts(t, b, res, true)
}

func TestCheckErrors(t *testing.T) {
	t.Parallel()

	t.Run("InvalidArgumentsAreRefusedBeforeTheBrowser", func(t *testing.T) {
		t.Parallel()
		d, b := setup(t, nil)
		_, err := d.CheckMission(t.Context(), Account{Email: acc1}, "", []Query{{Centre: "London"}}, nil)
		for _, want := range []string{"password", "mission", "query 0"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not mention %s", err, want)
			}
		}
		if len(b.sim.Logins()) != 0 {
			t.Errorf("an invalid check reached the portal")
		}
	})

	t.Run("CanceledContextEndsTheCheckWithAnError", func(t *testing.T) {
		t.Parallel()
		d, b := setup(t, nil)
		_ = b.sim.SetBehaviour(acc1, sim.Behaviour{DelayMS: 5000, Only: sim.SlotPage})
		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel()
		res, err := d.CheckMission(ctx, Account{Email: acc1, Password: pw1}, "fra", []Query{londonTourism}, nil)
		if err == nil || res.Outcome != Error || res.Reason != ReasonBrowser {
			t.Errorf("got %+v, %v; want an error result", res, err)
		}
		// The shared browser is unharmed.
		if res := runCheck(t, d, Account{Email: acc2, Password: pw2}, "fra", londonTourism); res.Outcome != Success {
			t.Errorf("next check: %+v", res)
		}
	})
}

func TestCheckAfterTheBrowserWasKilledStillWorks(t *testing.T) {
	t.Parallel()
	m := browser.New(browser.Config{ExecPath: browsertest.ExecPath(t), NoSandbox: browsertest.NoSandbox(), StartTimeout: browsertest.StartTimeout()})
	defer m.Close()
	_, b := setup(t, nil)
	prof, _ := profile.Default().WithBaseURL(b.url)
	d, err := New(Config{Profile: prof, Browser: m, ArtifactsDir: b.artifacts})
	if err != nil {
		t.Fatal(err)
	}
	if res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism); res.Outcome != Success {
		t.Fatalf("first check: %+v", res)
	}
	if err := syscall.Kill(m.Status().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if res := runCheck(t, d, Account{Email: acc2, Password: pw2}, "fra", londonTourism); res.Outcome != Success {
		t.Fatalf("check after the kill: %+v", res)
	}
	if st := m.Status(); st.Restarts != 1 || st.Crashes != 1 {
		t.Errorf("browser status = %+v, want 1 restart after 1 crash", st)
	}
}
