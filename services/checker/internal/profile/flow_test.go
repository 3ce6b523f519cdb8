package profile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlowsProfileLoads(t *testing.T) {
	t.Parallel()
	p, err := Load(filepath.Join("testdata", "portalsim-flows.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	loc, err := p.Location()
	if err != nil || loc.String() != "Europe/Paris" {
		t.Fatalf("location %v, %v", loc, err)
	}
	prog := p.Program()
	if len(prog.Flows.Login) != 4 || len(prog.Flows.Check) != 5 || prog.Flows.Check[4].Extract.List.Time.Layout != "15:04" {
		t.Fatalf("flows = %+v", prog.Flows)
	}
	if k := prog.Flows.Check[1].Kind(); k != "select" {
		t.Errorf("kind of the centre step = %q", k)
	}
}

// The first shape is read into the same model: the steps it stands for,
// named as the driver's steps were, with the markers each step used.
func TestFirstShapeBecomesFlows(t *testing.T) {
	t.Parallel()
	prog := Default().Program()
	var names []string
	for _, s := range append(append(prog.Flows.Login, prog.Flows.Check...), prog.Flows.Logout...) {
		names = append(names, s.Name+":"+s.Kind())
	}
	want := "login_page:goto login:fill login:fill login:click slot_page:goto slots:select slots:select slots:click slots:extract logout:request"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("steps\n%s\nwant\n%s", got, want)
	}
	if l := prog.Flows.Login[3]; l.Expect != "logged_in" || l.Click != "#login-submit" {
		t.Errorf("submit step = %+v", l)
	}
	if got := prog.Markers.LoggedOut[len(prog.Markers.LoggedOut)-1]; got != (Marker{CSS: "#email", On: "check"}) {
		t.Errorf("a login form in the check flow is not logged_out: %+v", got)
	}
	if bc := prog.Markers.BadCredentials[0]; !bc.Applies("login", "login", "") || bc.Applies("check", "slot_page", "") {
		t.Errorf("bad_credentials %+v should apply in the login flow only", bc)
	}
	if Default().Markers.BadCredentials[0].On != "" {
		t.Error("Program changed the profile's own markers")
	}
	if prog.Location.String() != "UTC" {
		t.Errorf("a profile without timezone is in %v, want UTC", prog.Location)
	}
}

func TestFlowsValidationNamesEveryProblem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"UnknownStepKind", `{hover: "#x"}`, "hover"},
		{"TwoKindsInOneStep", `{click: "#a", goto: /b, expect: logged_in}`, "exactly one of"},
		{"UndefinedPlaceholder", `{goto: "/m/{missoin}", expect: logged_in}`, "unknown placeholder {missoin}"},
		{"PasswordInAURL", `{goto: "/l?p={account.password}", expect: logged_in}`, "{account.password} may only be the value of a fill"},
		{"PasswordInASelector", `{click: "#{account.password}"}`, "{account.password} may only be the value of a fill"},
		{"CentreOutsideTheCheckFlow", `{goto: "/c/{centre}", expect: logged_in}`, "check flow only"},
		{"MissionValueNoMissionDefines", `{goto: "/c/{mission.schedule}", expect: logged_in}`, "no mission defines values.schedule"},
		{"NonHTTPURL", `{goto: "javascript:alert(1)", expect: logged_in}`, "want an http(s) URL"},
		{"ExpectOfNoMarker", `{goto: /a, expect: dashboard}`, `no marker named "dashboard"`},
		{"GotoWithoutExpect", `{goto: /a}`, "a goto needs expect"},
		{"WaitWithTwoConditions", `{wait: {selector: "#a", text: b}}`, "set one of selector, text, marker"},
		{"BranchOnNoMarker", `{branch: {if: banner, then: [{click: "#ok"}]}}`, `no marker named "banner"`},
		{"StepNameWithSpaces", `{name: "Log In", click: "#a"}`, "want lower case"},
		{"KeepFromAWait", `{wait: {selector: "#a"}, as: x}`, "a select, or a goto or click with expect, keeps a value"},
		{"PageValueNothingKeeps", `{goto: "/g/{page.groups}", expect: logged_in}`, "no select keeps a value as groups"},
		{"WithinOnAFill", `{fill: {selector: "#a", value: b}, within: {css: div, text: x}}`, "only a click looks within"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(flowsProfile(tc.yaml, "")))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, extract, want string
	}{
		{"BadDateLayout", `{list: {ready: "#r", item: ".s", date: {attr: d, layout: "2006-01"}}}`, "does not hold a whole date"},
		{"BadTimeLayout", `{list: {ready: "#r", item: ".s", date: {attr: d}, time: {attr: t, layout: "15h"}}}`, "does not hold an hour and minute"},
		{"BadRegexp", `{message: {regexp: "slot (\\d+", layout: "02-01-2006", none: "No slots"}}`, "message.regexp"},
		{"RegexpWithoutGroup", `{message: {regexp: "slot \\d+", layout: "02-01-2006", none: "No slots"}}`, "first group"},
		{"MessageWithoutNone", `{message: {regexp: "slot (.+)", layout: "02-01-2006"}}`, "message.none is required"},
		{"FieldRegexpWithoutGroup", `{list: {ready: "#r", item: ".s", date: {attr: v, regexp: "\\d+"}}}`, "first group must capture"},
		{"NextWithoutCSS", `{list: {ready: "#r", item: ".s", date: {attr: v}, next: {text: "Next"}}}`, "list.next: set css"},
		{"ListWithoutReady", `{list: {item: ".s", date: {attr: d}}}`, "list.ready is required"},
		{"TwoWaysAtOnce", `{list: {ready: "#r", item: ".s", date: {attr: d}}, json: {url: /d.json, path: date}}`, "set one of list, message, json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(flowsProfile(`{click: "#go"}`, tc.extract)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
	t.Run("CheckFlowWithoutExtract", func(t *testing.T) {
		t.Parallel()
		body := strings.Replace(flowsProfile(`{click: "#go"}`, ""), "    - extract:", "    - x_extract:", 1)
		body = strings.Replace(body, "    - x_extract: {list: {ready: \"#r\", item: \".s\", date: {attr: d}}}\n", "", 1)
		if _, err := Parse([]byte(body)); err == nil || !strings.Contains(err.Error(), "no extract step") {
			t.Errorf("error %v, want the missing extract named", err)
		}
	})
	t.Run("BadTimezone", func(t *testing.T) {
		t.Parallel()
		body := strings.Replace(flowsProfile(`{click: "#go"}`, ""), "timezone: Europe/London", "timezone: Mars/Olympus", 1)
		if _, err := Parse([]byte(body)); err == nil || !strings.Contains(err.Error(), "Mars/Olympus") {
			t.Errorf("error %v, want the timezone named", err)
		}
	})
	t.Run("MarkerOnNoStep", func(t *testing.T) {
		t.Parallel()
		body := strings.Replace(flowsProfile(`{click: "#go"}`, ""), `logged_in: ["#out"]`, `logged_in: [{css: "#out", on: nowhere}]`, 1)
		if _, err := Parse([]byte(body)); err == nil || !strings.Contains(err.Error(), `on "nowhere"`) {
			t.Errorf("error %v, want the on named", err)
		}
	})
	t.Run("TheBaseIsValid", func(t *testing.T) {
		t.Parallel()
		if _, err := Parse([]byte(flowsProfile(`{click: "#go"}`, ""))); err != nil {
			t.Fatal(err)
		}
	})
}

// flowsProfile is a valid flows profile with one more login step and,
// if set, another extract.
func flowsProfile(loginStep, extract string) string {
	if extract == "" {
		extract = `{list: {ready: "#r", item: ".s", date: {attr: d}}}`
	}
	return `name: t
base_url: https://portal.example
timezone: Europe/London
missions: {fra: {centres: {London: GBLON}, values: {facility: "94"}}}
markers:
  logged_in: ["#out"]
flows:
  login:
    - {goto: /login, expect: logged_in}
    - ` + loginStep + `
  check:
    - {goto: "/m/{mission}/{centre.id}?f={mission.facility}", expect: logged_in}
    - extract: ` + extract + `
`
}

func TestShippedProfilesParse(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(filepath.Join("..", "..", "profiles"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		if _, err := Load(filepath.Join("..", "..", "profiles", e.Name())); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
	}
}
