package profile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsTheShippedPortalsimProfile(t *testing.T) {
	t.Parallel()
	p := Default()
	if p.Name != "portalsim" || p.Login.Email != "#email" || len(p.Markers.LoggedIn) == 0 {
		t.Fatalf("default profile = %+v", p)
	}
	if p.Slots.Ready.CSS == "" || p.Timeouts.Page.D() != 15*time.Second || p.Timeouts.Settle.D() != 2*time.Second {
		t.Errorf("slots/timeouts = %+v / %+v", p.Slots, p.Timeouts)
	}
}

func TestURLs(t *testing.T) {
	t.Parallel()
	p, err := Default().WithBaseURL("http://127.0.0.1:4321/")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.URL(p.Login.URL); got != "http://127.0.0.1:4321/login" {
		t.Errorf("login URL = %s", got)
	}
	if got := p.SlotURL("fra/x"); got != "http://127.0.0.1:4321/missions/fra%2Fx/slots" {
		t.Errorf("slot URL = %s", got)
	}
	if Default().BaseURL != "http://127.0.0.1:8090" {
		t.Errorf("WithBaseURL changed the default profile")
	}
	if _, err := Default().WithBaseURL("localhost:8090"); err == nil {
		t.Errorf("a base URL without a scheme was accepted")
	}
}

func TestLoadReadsYAMLAndJSONWithShorthandMarkers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	yamlProfile := `
name: other
base_url: https://portal.example
login: {url: /signin, email: "input[name=user]", password: "input[name=pass]", submit: "button.go"}
logout: {selector: "a.logout"}
markers:
  logged_in: ["nav .account"]
  bad_credentials: [{text: "Wrong password"}]
  captcha: [{css: ".challenge", text: "robot"}]
slots:
  url: /book/{mission}
  centre: "#c"
  visa_category: "#v"
  ready: ".loaded"
  item: ".day"
  date_attr: data-day
timeouts: {page: 30s}
`
	jsonProfile := `{"base_url":"http://x.test","login":{"url":"/l","email":"#e","password":"#p","submit":"#s"},
"logout":{"url":"/bye"},"markers":{"logged_in":["#in"],"bad_credentials":["#bad"]},
"slots":{"url":"/m/{mission}","centre":"#c","visa_category":"#v","ready":{"css":"#r"},"item":".i","date_attr":"d"}}`
	for name, body := range map[string]string{"p.yaml": yamlProfile, "p.json": jsonProfile} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := Load(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Timeouts.Slots.D() != 15*time.Second {
			t.Errorf("%s: missing timeouts are not defaulted: %+v", name, p.Timeouts)
		}
		if name == "p.yaml" {
			if p.Markers.LoggedIn[0] != (Marker{CSS: "nav .account"}) || p.Markers.Captcha[0] != (Marker{CSS: ".challenge", Text: "robot"}) {
				t.Errorf("markers = %+v", p.Markers)
			}
			if p.Timeouts.Page.D() != 30*time.Second {
				t.Errorf("page timeout = %v", p.Timeouts.Page.D())
			}
		}
	}
}

func TestValidationNamesEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(`
base_url: portal
login: {url: /login}
markers: {logged_in: [{}]}
slots: {url: /slots}
timeouts: {page: -1s}
`))
	if err == nil {
		t.Fatal("an incomplete profile was accepted")
	}
	for _, want := range []string{
		`base_url "portal"`, "login.email is required", "logout: set url or selector",
		"markers.logged_in[0] is empty", "markers.bad_credentials needs at least one marker",
		"no {mission} placeholder", "slots.ready is required", "slots.item is required", "timeouts.page must be positive",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestUnknownFieldsAreRejected(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("name: x\nlogn: {}\n"))
	if err == nil || !strings.Contains(err.Error(), "logn") {
		t.Errorf("a misspelt field was accepted: %v", err)
	}
	_, err = Parse([]byte("timeouts: {page: 15}\n"))
	if err == nil || !strings.Contains(err.Error(), "duration") {
		t.Errorf("a duration without unit was accepted: %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PORTAL_BASE_URL": "http://10.0.0.1:9000"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	p, err := FromEnv(lookup)
	if err != nil || p.Name != "portalsim" || p.BaseURL != "http://10.0.0.1:9000" {
		t.Fatalf("profile %+v, err %v", p, err)
	}
	env["PORTAL_PROFILE"] = "tls"
	if p, err := FromEnv(lookup); err != nil || p.Name != "tls" || p.BaseURL != "http://10.0.0.1:9000" {
		t.Fatalf("PORTAL_PROFILE=tls: profile %+v, err %v", p, err)
	}
	env["PORTAL_PROFILE"] = "../portalsim"
	if _, err := FromEnv(lookup); err == nil || !strings.Contains(err.Error(), "ais, portalsim, tls, vfs") {
		t.Errorf("an unknown shipped profile: %v", err)
	}
	env["PORTAL_PROFILE"] = "vfs"
	env["PORTAL_PROFILE_FILE"] = filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := FromEnv(lookup); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Errorf("both set: %v", err)
	}
	delete(env, "PORTAL_PROFILE")
	if _, err := FromEnv(lookup); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing profile file: %v", err)
	}
}

func TestEveryURLMustBeOnTheProfilesOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		tune    func(*Profile)
		wantErr string // "" for accepted
	}{
		{"RelativeURLsAreAccepted", func(*Profile) {}, ""},
		{"AbsoluteURLOnTheSameOriginIsAccepted", func(p *Profile) { p.Login.URL = "HTTP://Portal.Example:80/login" }, ""},
		{"OffOriginLoginIsRefused", func(p *Profile) { p.Login.URL = "https://evil.example/login" }, "login.url"},
		{"OffOriginLogoutIsRefused", func(p *Profile) { p.Logout.URL = "//evil.example/logout" }, "logout.url"},
		{"OtherPortIsAnotherOrigin", func(p *Profile) { p.Slots.URL = "http://portal.example:8080/m/{mission}" }, "slots.url"},
		{"OtherSchemeIsAnotherOrigin", func(p *Profile) { p.Slots.URL = "https://portal.example/m/{mission}" }, "slots.url"},
		{"NonHTTPIsRefused", func(p *Profile) { p.Logout.URL = "javascript:alert(1)" }, "want an http(s) URL"},
		{"FileIsRefused", func(p *Profile) { p.Login.URL = "file:///etc/passwd" }, "want an http(s) URL"},
		{"MissionInTheHostIsRefused", func(p *Profile) {
			p.AllowedOrigins = []string{"https://fra.portal.example"}
			p.Slots.URL = "https://{mission}.portal.example/slots"
		}, "slots.url"},
		{"AllowedOriginIsAccepted", func(p *Profile) {
			p.AllowedOrigins = []string{"https://login.portal.example"}
			p.Login.URL = "https://login.portal.example/sso?next=/"
		}, ""},
		{"AllowedOriginMustBeAnOrigin", func(p *Profile) { p.AllowedOrigins = []string{"https://login.portal.example/path"} }, "allowed_origins[0]"},
		{"AllowedOriginMustBeHTTP", func(p *Profile) { p.AllowedOrigins = []string{"ftp://login.portal.example"} }, "allowed_origins[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Default().WithBaseURL("http://portal.example")
			if err != nil {
				t.Fatal(err)
			}
			tc.tune(p)
			err = p.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadRefusesAnOffOriginURL(t *testing.T) {
	t.Parallel()
	base, err := os.ReadFile(filepath.Join("..", "..", "profiles", "portalsim.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	off := strings.Replace(string(base), "url: /logout", "url: https://collector.example/logout", 1)
	if off == string(base) {
		t.Fatal("the shipped profile has no logout url to change")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "off.yaml")
	if err := os.WriteFile(path, []byte(off), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "logout.url") || !strings.Contains(err.Error(), "allowed_origins") {
		t.Fatalf("Load: %v, want the off-origin logout.url refused", err)
	}
	allowed := off + "\nallowed_origins: [\"https://collector.example\"]\n"
	if err := os.WriteFile(path, []byte(allowed), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("Load with the origin in allowed_origins: %v", err)
	}
	// Moving the base URL (PORTAL_BASE_URL) elsewhere leaves an absolute
	// URL of the old origin behind: it is checked again.
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WithBaseURL("http://127.0.0.1:1"); err != nil {
		t.Errorf("WithBaseURL with relative login and slot URLs: %v", err)
	}
	p.Login.URL = p.BaseURL + "/login"
	if _, err := p.WithBaseURL("http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "login.url") {
		t.Errorf("WithBaseURL leaving login.url on the old origin: %v, want it refused", err)
	}
}

func TestLogoutKeepSession(t *testing.T) {
	t.Parallel()
	withLogout := func(logout string) string {
		return strings.Replace(string(mustRead(t)), "logout:\n  url: /logout\n", logout, 1)
	}

	t.Run("KeepsTheSessionAndRunsNoLogout", func(t *testing.T) {
		t.Parallel()
		p, err := Parse([]byte(withLogout("logout: keep_session\nsession_max_age: 6h\n")))
		if err != nil {
			t.Fatal(err)
		}
		prog := p.Program()
		if !prog.KeepSession || prog.SessionMaxAge != 6*time.Hour || len(prog.Flows.Logout) != 0 {
			t.Fatalf("program keeps %v for %s with logout %+v; want kept for 6h, no logout", prog.KeepSession, prog.SessionMaxAge, prog.Flows.Logout)
		}
		if prog.KeepLocalStorage {
			t.Error("local storage kept without session_local_storage")
		}
		if Default().Program().KeepSession {
			t.Error("the default profile keeps sessions; it logs out")
		}
	})

	t.Run("FlowsShapeTakesKeepSessionButNoFirstShapeLogout", func(t *testing.T) {
		t.Parallel()
		b, err := os.ReadFile(filepath.Join("testdata", "portalsim-flows.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(append(b, "\nlogout: keep_session\n"...))
		if err != nil {
			t.Fatal(err)
		}
		if !p.Program().KeepSession {
			t.Error("a flows profile with logout: keep_session does not keep the session")
		}
		if _, err := Parse(append(b, "\nlogout: {url: /logout}\n"...)); err == nil {
			t.Error("a flows profile took the first shape's logout section")
		}
	})

	t.Run("RejectsOtherWordsAndAgesOutOfRange", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct{ yaml, want string }{
			{"logout: keep\n", `logout: want "keep_session"`},
			{"session_local_storage: true\n", "session_local_storage: only with logout: keep_session"},
			{"logout: keep_session\nsession_max_age: 800h\n", "session_max_age 800h0m0s"},
			{"logout: keep_session\nsession_max_age: -1h\n", "session_max_age -1h0m0s"},
		} {
			_, err := Parse([]byte(withLogout(tc.yaml)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q: err = %v, want one saying %q", tc.yaml, err, tc.want)
			}
		}
	})
}

func mustRead(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "profiles", "portalsim.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "logout:\n  url: /logout\n") {
		t.Fatal("portalsim.yaml's logout section moved")
	}
	return b
}
