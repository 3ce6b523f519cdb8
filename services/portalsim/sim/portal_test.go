package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type testBundle struct {
	sim *Sim
	srv *httptest.Server
}

func setup(t *testing.T, cfg Config) (*http.Client, *testBundle) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return newClient(t), &testBundle{sim: s, srv: srv}
}

// newClient is a browser-like client: it keeps cookies but does not follow
// redirects, so tests can assert where the portal sends it.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func baseConfig() Config {
	return Config{
		Accounts: []Account{{Email: "acc1@example.com", Password: "pw1"}, {Email: "acc2@example.com", Password: "pw2"}},
		Missions: []Mission{{
			Code: "fra", Name: "France", Centres: []string{"London", "Manchester"}, VisaCategories: []string{"tourism", "business"},
			Slots: []Slot{
				{Centre: "London", VisaCategory: "tourism", Date: "2027-03-02", Time: "14:00"},
				{Centre: "London", VisaCategory: "tourism", Date: "2027-03-01", Time: "09:30"},
				{Centre: "Manchester", VisaCategory: "tourism", Date: "2027-04-01"},
			},
		}},
	}
}

type page struct {
	status   int
	location string
	body     string
}

func get(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return read(t, resp)
}

func read(t *testing.T, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b)}
}

var tokenRE = regexp.MustCompile(`name="form_token" value="([0-9a-f]+)"`)

// login loads the form (for its token and cookie) and posts it.
func login(t *testing.T, c *http.Client, base, email, password string) page {
	t.Helper()
	form := get(t, c, base+"/login")
	m := tokenRE.FindStringSubmatch(form.body)
	if m == nil {
		t.Fatalf("login page has no form token (status %d):\n%s", form.status, form.body)
	}
	resp, err := c.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}, "form_token": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func hasMarker(body, id string) bool { return strings.Contains(body, `id="`+id+`"`) }

func TestPortal(t *testing.T) {
	t.Parallel()

	t.Run("PagesWithoutSessionRedirectToLogin", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		for _, path := range []string{"/", "/dashboard", "/missions/fra/slots"} {
			p := get(t, c, b.srv.URL+path)
			if p.status != http.StatusSeeOther || p.location != "/login" {
				t.Errorf("GET %s: got %d to %q, want 303 to /login", path, p.status, p.location)
			}
		}
	})

	t.Run("SessionOlderThanTheLifetimeIsLoggedOut", func(t *testing.T) {
		t.Parallel()
		cfg := baseConfig()
		cfg.SessionLifetime = "30m"
		c, b := setup(t, cfg)
		var mu sync.Mutex
		now := time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC)
		b.sim.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
		advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
		login(t, c, b.srv.URL, "acc1@example.com", "pw1")
		advance(30*time.Minute - time.Second)
		if p := get(t, c, b.srv.URL+"/dashboard"); p.status != http.StatusOK {
			t.Fatalf("dashboard within the lifetime: %d", p.status)
		}
		advance(time.Second)
		if p := get(t, c, b.srv.URL+"/dashboard"); p.status != http.StatusSeeOther || p.location != "/login" {
			t.Fatalf("dashboard at the lifetime: got %d to %q, want 303 to /login", p.status, p.location)
		}
		if n := len(b.sim.Sessions()); n != 0 {
			t.Errorf("%d sessions left", n)
		}
		login(t, c, b.srv.URL, "acc1@example.com", "pw1")
		if p := get(t, c, b.srv.URL+"/dashboard"); p.status != http.StatusOK {
			t.Fatalf("dashboard after a new login: %d", p.status)
		}
	})

	t.Run("SlotAPIWithoutSessionIsUnauthorized", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		p := get(t, c, b.srv.URL+"/api/missions/fra/slots?centre=London&visa_category=tourism")
		if p.status != http.StatusUnauthorized {
			t.Errorf("got %d, want 401", p.status)
		}
	})

	t.Run("LoginSetsSessionCookieAndOpensDashboard", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		p := login(t, c, b.srv.URL, "ACC1@example.com", "pw1")
		if p.status != http.StatusSeeOther || p.location != "/dashboard" {
			t.Fatalf("login: got %d to %q, want 303 to /dashboard", p.status, p.location)
		}
		u, _ := url.Parse(b.srv.URL)
		var session *http.Cookie
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name == sessionCookie {
				session = ck
			}
		}
		if session == nil || len(session.Value) < 32 {
			t.Fatalf("no session cookie after login: %v", c.Jar.Cookies(u))
		}
		if s := b.sim.Sessions(); len(s) != 1 || s[0].Email != "acc1@example.com" {
			t.Errorf("sessions = %+v, want acc1's", s)
		}
		d := get(t, c, b.srv.URL+"/dashboard")
		if d.status != http.StatusOK || !hasMarker(d.body, "dashboard") || !strings.Contains(d.body, "acc1@example.com") {
			t.Fatalf("dashboard: status %d\n%s", d.status, d.body)
		}
		if !strings.Contains(d.body, `href="/missions/fra/slots"`) {
			t.Errorf("dashboard does not link the mission's slot page")
		}
		logins := b.sim.Logins()
		if len(logins) != 1 || logins[0].Result != LoginOK || logins[0].Email != "ACC1@example.com" {
			t.Errorf("logins = %+v, want one ok attempt", logins)
		}
	})

	t.Run("LoginWithoutTheFormsTokenIsRefused", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		resp, err := c.PostForm(b.srv.URL+"/login", url.Values{"email": {"acc1@example.com"}, "password": {"pw1"}})
		if err != nil {
			t.Fatal(err)
		}
		p := read(t, resp)
		if p.status != http.StatusBadRequest || !hasMarker(p.body, "form-expired") {
			t.Errorf("got %d, want 400 with the form-expired page", p.status)
		}
		if l := b.sim.Logins(); len(l) != 1 || l[0].Result != LoginBadForm {
			t.Errorf("logins = %+v, want one bad_form attempt", l)
		}
	})

	t.Run("WrongPasswordAndUnknownAccountShowTheSameLoginError", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		for _, tc := range []struct{ email, pw string }{{"acc1@example.com", "nope"}, {"nobody@example.com", "pw1"}} {
			p := login(t, c, b.srv.URL, tc.email, tc.pw)
			if p.status != http.StatusOK || !hasMarker(p.body, "login-error") || !hasMarker(p.body, "login-form") {
				t.Errorf("%s: got %d, want the login form again with #login-error", tc.email, p.status)
			}
		}
		l := b.sim.Logins()
		if len(l) != 2 || l[0].Result != LoginBadPassword || l[1].Result != LoginUnknownAccount {
			t.Errorf("logins = %+v", l)
		}
		if p := get(t, c, b.srv.URL+"/dashboard"); p.status != http.StatusSeeOther {
			t.Errorf("dashboard after failed logins: %d, want a redirect", p.status)
		}
	})

	t.Run("SlotPageCarriesNoDatesOnlyTheScriptLoadsThem", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		login(t, c, b.srv.URL, "acc1@example.com", "pw1")
		p := get(t, c, b.srv.URL+"/missions/fra/slots")
		if p.status != http.StatusOK {
			t.Fatalf("slot page: %d", p.status)
		}
		for _, want := range []string{`id="centre"`, `<option value="Manchester">`, `id="visa-category"`, `data-state="idle"`, `/static/slots.js`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("slot page lacks %s", want)
			}
		}
		if strings.Contains(p.body, "2027-") {
			t.Errorf("slot page HTML contains dates; they must come from the JSON endpoint")
		}
		js := get(t, c, b.srv.URL+"/static/slots.js")
		if js.status != http.StatusOK || !strings.Contains(js.body, "/api/missions/") {
			t.Errorf("slots.js: %d", js.status)
		}
	})

	t.Run("SlotAPIReturnsTheSortedSlotsOfOneCentreAndCategory", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		login(t, c, b.srv.URL, "acc1@example.com", "pw1")
		p := get(t, c, b.srv.URL+"/api/missions/fra/slots?centre=London&visa_category=tourism")
		var got slotsResponse
		if err := json.Unmarshal([]byte(p.body), &got); err != nil {
			t.Fatalf("%d %s: %v", p.status, p.body, err)
		}
		want := []slotTime{{Date: "2027-03-01", Time: "09:30"}, {Date: "2027-03-02", Time: "14:00"}}
		if len(got.Slots) != 2 || got.Slots[0] != want[0] || got.Slots[1] != want[1] {
			t.Errorf("slots = %+v, want %+v", got.Slots, want)
		}
		p = get(t, c, b.srv.URL+"/api/missions/fra/slots?centre=London&visa_category=business")
		if !strings.Contains(p.body, `"slots":[]`) {
			t.Errorf("no slots: got %s, want an empty list", p.body)
		}
		if p := get(t, c, b.srv.URL+"/api/missions/fra/slots?centre=Paris&visa_category=tourism"); p.status != http.StatusBadRequest {
			t.Errorf("unknown centre: %d, want 400", p.status)
		}
	})

	t.Run("LogoutEndsTheSession", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		login(t, c, b.srv.URL, "acc1@example.com", "pw1")
		p := get(t, c, b.srv.URL+"/logout")
		if p.status != http.StatusSeeOther || p.location != "/login?bye=1" {
			t.Fatalf("logout: %d to %q", p.status, p.location)
		}
		if p := get(t, c, b.srv.URL+"/dashboard"); p.status != http.StatusSeeOther {
			t.Errorf("dashboard after logout: %d, want a redirect to login", p.status)
		}
		if s := b.sim.Sessions(); len(s) != 0 {
			t.Errorf("sessions after logout: %+v", s)
		}
		if p := get(t, c, b.srv.URL+"/login?bye=1"); !hasMarker(p.body, "logged-out") {
			t.Errorf("login page after logout does not say so")
		}
	})

	t.Run("LoginWithAnotherAccountsCookieIsRecorded", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		login(t, c, b.srv.URL, "acc1@example.com", "pw1")
		login(t, c, b.srv.URL, "acc2@example.com", "pw2")
		l := b.sim.Logins()
		if len(l) != 2 || l[0].PriorSession != "" || l[1].PriorSession != "acc1@example.com" {
			t.Errorf("logins = %+v, want the second to record acc1's session", l)
		}
	})

	t.Run("DeletedAccountLosesItsSession", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		login(t, c, b.srv.URL, "acc1@example.com", "pw1")
		b.sim.DeleteAccount("acc1@example.com")
		if p := get(t, c, b.srv.URL+"/dashboard"); p.status != http.StatusSeeOther {
			t.Errorf("dashboard of a deleted account: %d, want a redirect", p.status)
		}
	})

	t.Run("StatsCountPortalRequestsButNotAdmin", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		get(t, c, b.srv.URL+"/login")
		get(t, c, b.srv.URL+"/admin/state")
		if st := b.sim.Stats(); st.Requests != 1 || st.Busy <= 0 {
			t.Errorf("stats = %+v, want 1 request with some busy time", st)
		}
	})
}

func TestBehaviours(t *testing.T) {
	t.Parallel()

	// At login, each behaviour answers with its own status and marker, and
	// the attempt is recorded with its result.
	for _, tc := range []struct {
		kind   Kind
		status int
		marker string
		result LoginResult
	}{
		{RejectPassword, http.StatusOK, "login-error", LoginRejected},
		{Blocked, http.StatusForbidden, "account-blocked", LoginBlocked},
		{TooManyRequests, http.StatusTooManyRequests, "rate-limited", LoginTooManyRequests},
		{Captcha, http.StatusOK, "captcha-challenge", LoginCaptcha},
		{ServerError, http.StatusInternalServerError, "", LoginServerError},
		{Maintenance, http.StatusServiceUnavailable, "maintenance", LoginMaintenance},
		{Unknown, http.StatusOK, "", LoginUnknownPage},
	} {
		t.Run("AccountBehaviourAtLogin/"+string(tc.kind), func(t *testing.T) {
			t.Parallel()
			c, b := setup(t, baseConfig())
			if err := b.sim.SetBehaviour("acc1@example.com", Behaviour{Kind: tc.kind}); err != nil {
				t.Fatal(err)
			}
			p := login(t, c, b.srv.URL, "acc1@example.com", "pw1")
			if p.status != tc.status {
				t.Errorf("status %d, want %d", p.status, tc.status)
			}
			if tc.marker != "" && !hasMarker(p.body, tc.marker) {
				t.Errorf("page lacks #%s:\n%s", tc.marker, p.body)
			}
			for _, m := range []string{"dashboard", "login-error", "account-blocked", "rate-limited", "captcha-challenge", "maintenance"} {
				if m != tc.marker && hasMarker(p.body, m) {
					t.Errorf("page has #%s too", m)
				}
			}
			if l := b.sim.Logins(); len(l) != 1 || l[0].Result != tc.result {
				t.Errorf("logins = %+v, want one %s", l, tc.result)
			}
			// The other account is unaffected.
			c2 := newClient(t)
			if p := login(t, c2, b.srv.URL, "acc2@example.com", "pw2"); p.location != "/dashboard" {
				t.Errorf("acc2 login: %d to %q, want the dashboard", p.status, p.location)
			}
		})
	}

	t.Run("GlobalBehaviourAppliesToTheLoginPage", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		if err := b.sim.SetBehaviour("", Behaviour{Kind: Maintenance}); err != nil {
			t.Fatal(err)
		}
		if p := get(t, c, b.srv.URL+"/login"); p.status != http.StatusServiceUnavailable || !hasMarker(p.body, "maintenance") {
			t.Errorf("login page: %d, want the maintenance page", p.status)
		}
	})

	t.Run("AccountBehaviourAppliesToItsSessionsPagesAndAPI", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		login(t, c, b.srv.URL, "acc1@example.com", "pw1")
		if err := b.sim.SetBehaviour("acc1@example.com", Behaviour{Kind: TooManyRequests}); err != nil {
			t.Fatal(err)
		}
		if p := get(t, c, b.srv.URL+"/missions/fra/slots"); p.status != http.StatusTooManyRequests || !hasMarker(p.body, "rate-limited") {
			t.Errorf("slot page: %d, want 429 with #rate-limited", p.status)
		}
		if p := get(t, c, b.srv.URL+"/api/missions/fra/slots?centre=London&visa_category=tourism"); p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "too_many_requests") {
			t.Errorf("slot API: %d %s, want a 429 JSON error", p.status, p.body)
		}
	})

	t.Run("DelayHoldsTheAnswer", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		if err := b.sim.SetBehaviour("", Behaviour{DelayMS: 150}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		p := get(t, c, b.srv.URL+"/login")
		if p.status != http.StatusOK || !hasMarker(p.body, "login-form") {
			t.Errorf("a delay alone must still answer normally: %d", p.status)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("answered after %v, want at least the 150ms delay", d)
		}
	})

	t.Run("AccountKindWinsAndDelaysAddUp", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, baseConfig())
		_ = b.sim.SetBehaviour("", Behaviour{Kind: Captcha, DelayMS: 10})
		_ = b.sim.SetBehaviour("acc1@example.com", Behaviour{Kind: Blocked, DelayMS: 5})
		if got := b.sim.behaviourFor("acc1@example.com", Dashboard); got != (Behaviour{Kind: Blocked, DelayMS: 15}) {
			t.Errorf("acc1: %+v", got)
		}
		if got := b.sim.behaviourFor("acc2@example.com", Dashboard); got != (Behaviour{Kind: Captcha, DelayMS: 10}) {
			t.Errorf("acc2: %+v", got)
		}
	})

	t.Run("OnlyLimitsABehaviourToOneArea", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		if err := b.sim.SetBehaviour("acc1@example.com", Behaviour{Kind: TooManyRequests, Only: SlotAPI}); err != nil {
			t.Fatal(err)
		}
		if p := login(t, c, b.srv.URL, "acc1@example.com", "pw1"); p.location != "/dashboard" {
			t.Fatalf("login: %d to %q, want the dashboard", p.status, p.location)
		}
		if p := get(t, c, b.srv.URL+"/missions/fra/slots"); p.status != http.StatusOK {
			t.Errorf("slot page: %d, want 200", p.status)
		}
		if p := get(t, c, b.srv.URL+"/api/missions/fra/slots?centre=London&visa_category=tourism"); p.status != http.StatusTooManyRequests {
			t.Errorf("slot API: %d, want 429", p.status)
		}
	})
}
