package portal

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/checker/profiles"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// The portalsim check written as flows reads what the first shape reads.
func TestFlowsProfileChecksPortalsim(t *testing.T) {
	t.Parallel()
	d, b := setup(t, nil)
	prof, err := profile.Load(filepath.Join("..", "profile", "testdata", "portalsim-flows.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if prof, err = prof.WithBaseURL(b.url); err != nil {
		t.Fatal(err)
	}
	d, err = New(Config{Profile: prof, Browser: d.browser, ArtifactsDir: b.artifacts})
	if err != nil {
		t.Fatal(err)
	}
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism, Query{Centre: "Paris", VisaCategory: "tourism"})
	want := []Slot{
		{Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: "2027-03-01", Time: "09:30"},
		{Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: "2027-03-02", Time: "14:00"},
		{Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: "2027-03-05"},
	}
	if res.Outcome != Success || res.Step != "done" || !slices.Equal(res.Slots, want) {
		t.Fatalf("result = %+v", res)
	}
	if len(res.Queries) != 2 || res.Queries[1].Offered {
		t.Errorf("queries = %+v, want Paris not offered", res.Queries)
	}
	waitLoggedOut(t, b)

	if err := b.sim.SetBehaviour(acc2, sim.Behaviour{Kind: sim.RejectPassword}); err != nil {
		t.Fatal(err)
	}
	res = runCheck(t, d, Account{Email: acc2, Password: pw2}, "fra", londonTourism)
	if res.Outcome != LoginFail || res.Step != "login-submit" {
		t.Errorf("rejected password: %s at %s (%s)", res.Outcome, res.Step, res.Detail)
	}
}

// miniPortal is a small portal of its own shape: a consent banner after
// login, a centre chosen by its label, the earliest date in a sentence,
// and a JSON endpoint of days (429 with Retry-After for centre BUSY).
func miniPortal(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, body string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html><body>%s</body></html>", body)
	}
	loggedIn := func(r *http.Request) bool { c, err := r.Cookie("sid"); return err == nil && c.Value == "ok" }
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		page(w, `<form method="post" action="/login"><input id="user" name="user"><input id="pass" name="pass" type="password"><button id="go">Sign in</button></form>`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("user") != acc1 || r.FormValue("pass") != pw1 {
			page(w, `<p class="err">Those details are not right.</p>`)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "ok", Path: "/"})
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /home", func(w http.ResponseWriter, r *http.Request) {
		if !loggedIn(r) {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		banner := `<div id="consent">We use cookies <button id="accept" onclick="document.cookie='consent=1; path=/'; this.parentNode.remove()">Accept</button></div>`
		if c, err := r.Cookie("consent"); err == nil && c.Value == "1" {
			banner = ""
		}
		page(w, banner+`<h1>Welcome back</h1><a id="signout" href="/logout">Sign out</a>`)
	})
	mux.HandleFunc("GET /book", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("consent"); !loggedIn(r) || err != nil || c.Value != "1" {
			page(w, `<p>Please accept cookies first.</p>`)
			return
		}
		page(w, `<select id="where"><option value="">Choose</option><option value="c1">  London   Centre </option><option value="c2">Manchester Centre</option></select>
<p id="msg"></p><a id="signout" href="/logout">Sign out</a>
<script>
document.getElementById("where").addEventListener("change", function (e) {
  setTimeout(function () {
    document.getElementById("msg").textContent = e.target.value === "c1" ?
      "Earliest available slot for London is 21-12-2026" : "No appointment slots are currently available";
  }, 150);
});
</script>`)
	})
	mux.HandleFunc("GET /days/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !loggedIn(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.PathValue("id") == "BUSY.json" {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		// 23:30 UTC on the 5th is already the 6th in Paris.
		fmt.Fprint(w, `[{"date": "2027-01-05T23:30:00Z", "business_day": true}, {"date": "2027-01-07T08:00:00Z", "business_day": true}]`)
	})
	mux.HandleFunc("GET /cards", func(w http.ResponseWriter, r *http.Request) {
		page(w, `<div class="card"><p>Visa class: business</p><a href="/cal?m=5">Continue</a></div>
<div class="card"><p>Visa class: tourism</p><a href="/cal?m=1">Continue</a></div>`)
	})
	mux.HandleFunc("GET /cal", func(w http.ResponseWriter, r *http.Request) {
		m, _ := strconv.Atoi(r.FormValue("m"))
		page(w, fmt.Sprintf(`<a class="nav" href="/cal?m=%[1]d">‹ Previous month</a><a class="nav" href="/cal?m=%[2]d">Next month ›</a>
<table class="cal"><tr><td><button class="appt" value="2027-%02[3]d-01 09:30">09:30</button><button class="appt" value="2027-%02[3]d-02">Book</button></td></tr></table>`,
			m-1, m+1, m))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

const miniProfile = `
name: mini
base_url: http://127.0.0.1:1
timezone: Europe/Paris
missions:
  fra: {centres: {London: GBLON, Busy: BUSY}}
markers:
  logged_in: ["#signout"]
  bad_credentials: [{regexp: "details (are|were) not right"}]
  custom:
    login_form: ["#user"]
    consent_banner: ["#consent"]
    booking: ["#where"]
    cards: [div.card]
    calendar: [table.cal]
flows:
  login:
    - {name: open, goto: /login, expect: login_form}
    - {fill: {selector: "#user", value: "{account.email}"}}
    - {fill: {selector: "#pass", value: "{account.password}"}}
    - {name: submit, click: "#go", expect: logged_in}
    - {name: consent, branch: {if: consent_banner, then: [{click: "#accept"}]}}
  check:
%s
  logout:
    - {click: "#signout", expect: login_form}
`

const miniMessageCheck = `    - {name: book, goto: /book, expect: booking}
    - {select: {selector: "#where", option: "london centre"}}
    - {name: earliest, extract: {message: {css: "#msg", regexp: "earliest available slot for \\w+ is (\\d{2}-\\d{2}-\\d{4})", layout: "02-01-2006", none: "No appointment slots are currently available"}}}
`

func miniDriver(t *testing.T, check string) *Driver {
	t.Helper()
	srv := miniPortal(t)
	prof, err := profile.Parse(fmt.Appendf(nil, miniProfile, check))
	if err != nil {
		t.Fatal(err)
	}
	if prof, err = prof.WithBaseURL(srv.URL); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Profile: prof, Browser: shared(t), ArtifactsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEngineReadsOtherPortalShapes(t *testing.T) {
	t.Parallel()

	t.Run("MessageAfterABranchAndASelectByLabel", func(t *testing.T) {
		t.Parallel()
		// The booking page refuses a session that did not accept the
		// banner: the branch clicked it. The option is chosen by its
		// label, whatever its case and spaces.
		d := miniDriver(t, miniMessageCheck)
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		want := []Slot{{Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: "2026-12-21"}}
		if res.Outcome != Success || !slices.Equal(res.Slots, want) {
			t.Fatalf("result = %+v", res)
		}
	})

	t.Run("MessageSayingNoneIsNoSlot", func(t *testing.T) {
		t.Parallel()
		d := miniDriver(t, strings.Replace(miniMessageCheck, "london centre", "MANCHESTER  centre", 1))
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		if res.Outcome != NoSlot || len(res.Queries) != 1 || !res.Queries[0].Checked {
			t.Fatalf("result = %+v", res)
		}
	})

	t.Run("RegexpMarkerSaysBadCredentials", func(t *testing.T) {
		t.Parallel()
		d := miniDriver(t, miniMessageCheck)
		res := runCheck(t, d, Account{Email: acc1, Password: "wrong"}, "fra", londonTourism)
		if res.Outcome != LoginFail || res.Reason != ReasonBadCredentials || res.Step != "submit" {
			t.Fatalf("result = %+v", res)
		}
	})

	jsonCheck := `    - {name: home, goto: /home, expect: logged_in}
    - {name: days, extract: {json: {url: "/days/{centre.id}.json", path: date, layout: "2006-01-02T15:04:05Z07:00"}}}
`
	t.Run("JSONDatesInTheProfilesTimezone", func(t *testing.T) {
		t.Parallel()
		d := miniDriver(t, jsonCheck)
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism, Query{Centre: "Leeds", VisaCategory: "tourism"})
		want := []Slot{
			{Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: "2027-01-06", Time: "00:30"},
			{Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: "2027-01-07", Time: "09:00"},
		}
		if res.Outcome != Success || !slices.Equal(res.Slots, want) {
			t.Fatalf("result = %+v", res)
		}
		if len(res.Queries) != 2 || res.Queries[1].Offered {
			t.Errorf("queries = %+v, want Leeds (no centre id) not offered", res.Queries)
		}
	})

	t.Run("TooManyRequestsCarriesRetryAfter", func(t *testing.T) {
		t.Parallel()
		d := miniDriver(t, jsonCheck)
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", Query{Centre: "Busy", VisaCategory: "tourism"})
		if res.Outcome != Banned || res.Reason != ReasonRateLimited || res.Step != "days" || res.RetryAfter != 2*time.Minute {
			t.Fatalf("result = %+v", res)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"": 0, "120": 2 * time.Minute, "-5": 0, "soon": 0,
		"Fri, 01 Jan 2027 12:10:00 GMT": 10 * time.Minute, "Fri, 01 Jan 2027 11:00:00 GMT": 0,
		// Past what a pause may be, a delay is the longest one, however
		// many digits it has: never negative or wrapped round.
		"86401": apirule.MaxPortalRetryAfter, "9999999999": apirule.MaxPortalRetryAfter,
		"18446744074": apirule.MaxPortalRetryAfter, "99999999999999999999999": apirule.MaxPortalRetryAfter,
		"Fri, 01 Jan 2100 12:00:00 GMT": apirule.MaxPortalRetryAfter,
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

// A page answered 429 or 503 with Retry-After gives the delay to the
// result, the portal's own cooldown hint.
func TestPagesRetryAfterReachesTheResult(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		b      sim.Behaviour
		global bool
		reason Reason
		want   time.Duration
	}{
		{"TooManyRequests", sim.Behaviour{Kind: sim.TooManyRequests}, false, ReasonRateLimited, 10 * time.Minute},
		{"Maintenance", sim.Behaviour{Kind: sim.Maintenance}, true, ReasonMaintenance, 30 * time.Minute},
		{"TooManyRequestsFromTheSlotAPI", sim.Behaviour{Kind: sim.TooManyRequests, Only: sim.SlotAPI}, false, ReasonRateLimited, 10 * time.Minute},
		{"NoneOnASlotFound", sim.Behaviour{}, false, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, _ := checkUnder(t, tc.b, tc.global)
			if res.Reason != tc.reason || res.RetryAfter != tc.want {
				t.Errorf("%s/%s retry after %v, want %s and %v", res.Outcome, res.Reason, res.RetryAfter, tc.reason, tc.want)
			}
		})
	}
}

// pageCounts records the drift metric's calls.
type pageCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (p *pageCounts) PageClassified(profile, step, kind string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n[profile+"/"+step+"/"+kind]++
}

func (p *pageCounts) get(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[key]
}

func TestPagesAreCountedAndTheLastUnknownKept(t *testing.T) {
	t.Parallel()
	d, b := setup(t, nil)
	counts := &pageCounts{n: map[string]int{}}
	d, err := New(Config{Profile: d.prof, Browser: d.browser, ArtifactsDir: b.artifacts, Pages: counts})
	if err != nil {
		t.Fatal(err)
	}
	if st := d.Status(); st.Profile != "portalsim" || st.LastUnknown != "" {
		t.Fatalf("status before any check = %+v", st)
	}
	runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
	for _, k := range []string{"portalsim/login_page/login_form", "portalsim/login/logged_in", "portalsim/slot_page/slot_form"} {
		if counts.get(k) != 1 {
			t.Errorf("%s counted %d times, want 1 (all: %v)", k, counts.get(k), counts.n)
		}
	}
	if err := b.sim.SetBehaviour(acc2, sim.Behaviour{Kind: sim.Unknown}); err != nil {
		t.Fatal(err)
	}
	res := runCheck(t, d, Account{Email: acc2, Password: pw2}, "fra", londonTourism)
	if counts.get("portalsim/login/unknown") != 1 || res.Artifacts == nil {
		t.Fatalf("unknown page not counted: %v (result %+v)", counts.n, res)
	}
	if st := d.Status(); st.LastUnknown != res.Artifacts.Dir || st.LastUnknownStep != "login" || st.LastUnknownAt.IsZero() {
		t.Errorf("status = %+v, want the unknown page's artifacts %s", st, res.Artifacts.Dir)
	}
}

func TestWaitThatTimesOutIsAnUnknownPage(t *testing.T) {
	t.Parallel()
	d := miniDriver(t, `    - {name: home, goto: /home, expect: logged_in}
    - {name: never, wait: {selector: "#never"}, timeout: 1s}
    - {name: days, extract: {json: {url: "/days/{centre.id}.json", path: date}}}
`)
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
	if res.Outcome != Error || res.Reason != ReasonUnknownPage || res.Step != "never" || res.Artifacts == nil {
		t.Fatalf("result = %+v", res)
	}
	if st := d.Status(); st.LastUnknownStep != "never" {
		t.Errorf("status = %+v", st)
	}
}

// A click within the card that names the category, a page kept and
// opened again, a calendar read month after month, values cut out of an
// attribute by a regexp.
func TestListAcrossPagesAfterAClickWithin(t *testing.T) {
	t.Parallel()
	d := miniDriver(t, `    - {name: cards, goto: /cards, expect: cards}
    - {name: card, click: a, within: {css: div.card, text: "Visa class: {visa_category}"}, expect: calendar, as: cal}
    - {name: again, goto: "{page.cal}", expect: calendar}
    - name: slots
      extract:
        list:
          ready: {css: table.cal}
          item: button.appt
          date: {attr: value, regexp: '^(\d{4}-\d{2}-\d{2})'}
          time: {attr: value, regexp: ' (\d{2}:\d{2})$'}
          next: {css: a.nav, text: "Next month"}
          pages: 2
`)
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
	var got []string
	for _, s := range res.Slots {
		got = append(got, strings.TrimSpace(s.Date+" "+s.Time))
	}
	want := []string{"2027-01-01 09:30", "2027-01-02", "2027-02-01 09:30", "2027-02-02"}
	if res.Outcome != Success || !slices.Equal(got, want) {
		t.Fatalf("slots %v, want %v (result %+v)", got, want, res)
	}
}

// vfsSPA sets the sim up as a VFS-style single-page app and returns a
// driver of the shipped vfs profile on d's browser, its login step waiting
// 2 s.
func vfsSPA(t *testing.T, d *Driver, b *testBundle) *Driver {
	t.Helper()
	if err := b.sim.SetPortal(sim.VFS, "UTC"); err != nil {
		t.Fatal(err)
	}
	data, _ := profiles.Get("vfs")
	prof, err := profile.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if prof, err = prof.WithBaseURL(b.url); err != nil {
		t.Fatal(err)
	}
	for i := range prof.Flows.Login {
		if prof.Flows.Login[i].Name == "login" {
			prof.Flows.Login[i].Timeout = profile.Duration(2 * time.Second)
		}
	}
	if d, err = New(Config{Profile: prof, Browser: d.browser, ArtifactsDir: b.artifacts}); err != nil {
		t.Fatal(err)
	}
	return d
}

// A single-page app's login that never draws the dashboard: waiting for a
// slow answer is a timeout, a 5xx answer the app drew as its own error
// view is a server error, neither an unknown page.
func TestWaitOnAScriptsAnswerEndsAsTimeoutOrServerError(t *testing.T) {
	t.Parallel()
	d, b := setup(t, nil)
	d = vfsSPA(t, d, b)
	if err := b.sim.SetBehaviour(acc1, sim.Behaviour{DelayMS: 6000, Only: sim.LoginArea}); err != nil {
		t.Fatal(err)
	}
	if err := b.sim.SetBehaviour(acc2, sim.Behaviour{Kind: sim.ServerError}); err != nil {
		t.Fatal(err)
	}
	if res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism); res.Outcome != Error || res.Reason != ReasonTimeout || res.Step != "login" {
		t.Errorf("slow login answer: %s/%s at %s (%s), want error/timeout at login", res.Outcome, res.Reason, res.Step, res.Detail)
	}
	if res := runCheck(t, d, Account{Email: acc2, Password: pw2}, "fra", londonTourism); res.Outcome != Error || res.Reason != ReasonServerError || res.Step != "login" {
		t.Errorf("login answered 500: %s/%s at %s (%s), want error/server_error at login", res.Outcome, res.Reason, res.Step, res.Detail)
	}
}

// bareTooManyRequests answers the requests only (nil: every request) with
// a CDN's own 429 page: Retry-After 600 and a body no marker of the
// profile knows.
func bareTooManyRequests(only func(*http.Request) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if only != nil && !only(r) {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Retry-After", "600")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, "<!doctype html><title>Access denied</title><h1>Error 1015</h1><p>You are being rate limited.</p>")
		})
	}
}

// A 429 page no marker matches (a CDN's or firewall's) is a rate limit
// with its Retry-After, not an unknown page: Requests must hear
// rate_limited to pause the portal.
func TestBareTooManyRequestsPageIsARateLimit(t *testing.T) {
	t.Parallel()
	d, _ := setupWith(t, nil, bareTooManyRequests(nil))
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
	if res.Outcome != Banned || res.Reason != ReasonRateLimited || res.RetryAfter != 10*time.Minute || res.Artifacts != nil {
		t.Fatalf("every page 429: %s/%s retry after %v (%s), artifacts %v; want banned/rate_limited after 10m, nothing saved",
			res.Outcome, res.Reason, res.RetryAfter, res.Detail, res.Artifacts)
	}
}

// A single-page app whose login call is answered by a CDN's bare 429,
// which the app draws as its own error view: the wait step ends on a rate
// limit, with its Retry-After.
func TestWaitOnAScriptsBareTooManyRequestsIsARateLimit(t *testing.T) {
	t.Parallel()
	d, b := setupWith(t, nil, bareTooManyRequests(func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/login")
	}))
	d = vfsSPA(t, d, b)
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
	if res.Outcome != Banned || res.Reason != ReasonRateLimited || res.Step != "login" || res.RetryAfter != 10*time.Minute {
		t.Fatalf("login answered a bare 429: %s/%s at %s retry after %v (%s); want banned/rate_limited at login after 10m",
			res.Outcome, res.Reason, res.Step, res.RetryAfter, res.Detail)
	}
}

// familyDriver sets the sim up as family and returns a driver of the
// shipped profile name on d's browser.
func familyDriver(t *testing.T, d *Driver, b *testBundle, family sim.Family, name string) *Driver {
	t.Helper()
	if err := b.sim.SetPortal(family, "UTC"); err != nil {
		t.Fatal(err)
	}
	data, _ := profiles.Get(name)
	prof, err := profile.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if prof, err = prof.WithBaseURL(b.url); err != nil {
		t.Fatal(err)
	}
	if d, err = New(Config{Profile: prof, Browser: d.browser, ArtifactsDir: b.artifacts}); err != nil {
		t.Fatal(err)
	}
	return d
}

// A JSON endpoint that answers 403 says the account is blocked (or
// challenged), as a portal's 403 page does: a wall, which Requests must
// hear to pause the portal and the pool to quarantine the account. Only a
// 401 says the session is over (log in again).
func TestJSONEndpointForbiddenIsABlock(t *testing.T) {
	t.Parallel()
	d, b := setup(t, nil)
	d = familyDriver(t, d, b, sim.AIS, "ais")
	for _, k := range []sim.Kind{sim.Blocked, sim.Captcha} {
		if err := b.sim.SetBehaviour(acc1, sim.Behaviour{Kind: k, Only: sim.SlotAPI}); err != nil {
			t.Fatal(err)
		}
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		if res.Outcome != Banned || res.Reason != ReasonBlocked || res.Step != "days" {
			t.Errorf("days endpoint answered %s (403): %s/%s at %s (%s); want banned/blocked at days", k, res.Outcome, res.Reason, res.Step, res.Detail)
		}
	}
	if err := b.sim.SetBehaviour(acc1, sim.Behaviour{Kind: sim.LoggedOut, Only: sim.SlotAPI}); err != nil {
		t.Fatal(err)
	}
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
	if res.Outcome != Error || res.Reason != ReasonLoggedOut || res.Step != "days" {
		t.Errorf("days endpoint answered 401: %s/%s at %s (%s); want error/logged_out at days", res.Outcome, res.Reason, res.Step, res.Detail)
	}
}

// A 403 page no marker matches (a CDN's or firewall's own "access denied"
// page) is a block, as a portal's own block page is: Requests must hear
// blocked to pause the portal, not an unknown page that rotates the next
// accounts into the same block.
func TestBareForbiddenPageIsABlock(t *testing.T) {
	t.Parallel()
	d, _ := setupWith(t, nil, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, "<!doctype html><title>Access denied</title><h1>Error 1020</h1><p>Access denied. The site owner has banned your access.</p>")
		})
	})
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
	if res.Outcome != Banned || res.Reason != ReasonBlocked || res.Step != "login_page" {
		t.Fatalf("every page 403: %s/%s at %s (%s); want banned/blocked at login_page", res.Outcome, res.Reason, res.Step, res.Detail)
	}
}

// The ais group page has a card per visa class; a check of class B1 must
// open B1's schedule, not the first card whose text holds "Visa class:
// B1" (B1/B2's): that would report B1/B2's free days as B1's.
func TestWithinFindsTheCardOfTheCategoryNotOneThatStartsLikeIt(t *testing.T) {
	t.Parallel()
	d, b := setup(t, nil)
	d = familyDriver(t, d, b, sim.AIS, "ais")
	if err := b.sim.PutMission(sim.Mission{Code: "usa", Name: "USA", Centres: []string{"London"}, VisaCategories: []string{"B1/B2", "B1"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.sim.SetSlots("usa", "London", "B1/B2", []sim.Slot{{Date: "2027-03-01", Time: "09:30"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.sim.SetSlots("usa", "London", "B1", []sim.Slot{{Date: "2027-05-10", Time: "10:00"}}); err != nil {
		t.Fatal(err)
	}
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "usa", Query{Centre: "London", VisaCategory: "B1"}, Query{Centre: "London", VisaCategory: "B1/B2"})
	got := make([]string, len(res.Slots))
	for i, s := range res.Slots {
		got[i] = s.VisaCategory + " " + s.Date
	}
	if want := []string{"B1 2027-05-10", "B1/B2 2027-03-01"}; res.Outcome != Success || !slices.Equal(got, want) {
		t.Fatalf("slots %v, want %v (result %s/%s: %s)", got, want, res.Outcome, res.Reason, res.Detail)
	}
}

// A tls calendar with no free day in any month says so in a popup on its
// first month: the check reads that page and stops, instead of paging
// through the eleven months after it (eleven more requests to a portal
// that limits them, every check).
func TestListStopsAtThePortalsNoSlotAnywhere(t *testing.T) {
	t.Parallel()
	d, b := setup(t, nil)
	d = familyDriver(t, d, b, sim.TLS, "tls")
	b.sim.ClearRequests()
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", Query{Centre: "Manchester", VisaCategory: "tourism"})
	if res.Outcome != NoSlot || len(res.Slots) != 0 {
		t.Fatalf("result %s/%s: %s, want no_slot", res.Outcome, res.Reason, res.Detail)
	}
	months := 0
	for _, r := range b.sim.Requests() {
		if r.Path == "/appointment/fra" {
			months++
		}
	}
	if months != 1 {
		t.Errorf("%d calendar pages fetched, want 1 (the popup says no month has a free day)", months)
	}
	// With a free day in a later month, every month is read.
	res = runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", Query{Centre: "Manchester", VisaCategory: "business"})
	if res.Outcome != Success || len(res.Slots) != 1 {
		t.Fatalf("result %s/%s: %s (%v), want the slot of Manchester / business", res.Outcome, res.Reason, res.Detail, res.Slots)
	}
}

// A JSON endpoint the page's fetch cannot reach (the connection drops)
// is an unreachable portal at that step. The fetch's rejection is no
// exception of the page's code: await neither retries it until the slots
// timeout (a timeout) nor takes it for a page script's error (browser).
func TestJSONEndpointThatDropsTheConnectionIsUnreachable(t *testing.T) {
	t.Parallel()
	d, b := setupWith(t, nil, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Accept") != "application/json" || !strings.Contains(r.URL.Path, "/appointment/days/") {
				next.ServeHTTP(w, r)
				return
			}
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		})
	})
	d = familyDriver(t, d, b, sim.AIS, "ais")
	// A check that waited out the slots timeout ends reason=timeout: the
	// reason tells it, without timing the check.
	res, _ := d.CheckMission(t.Context(), Account{Email: acc1, Password: pw1}, "fra", []Query{londonTourism}, nil)
	if res.Outcome != Error || res.Reason != ReasonUnreachable || res.Step != "days" {
		t.Errorf("got %s/%s at %s (%s); want error/unreachable at days", res.Outcome, res.Reason, res.Step, res.Detail)
	}
}
