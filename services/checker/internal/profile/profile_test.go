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
	env["PORTAL_PROFILE_FILE"] = filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := FromEnv(lookup); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing profile file: %v", err)
	}
}
