package profile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slotwatch/slotwatch/services/checker/profiles"
)

func TestLintNamesTheLineOfEachProblem(t *testing.T) {
	t.Parallel()
	file := `name: t
base_url: https://portal.example
timezone: Europe/London
markers:
  logged_in: ["#out"]
  bad_credentials: [{css: "#err", regexp: "wrong (password"}]
flows:
  login:
    - {goto: /login, expect: logged_in}
    - {goto: "/x?p={account.password}", expect: logged_in}
    - {fill: {selector: "#u", value: "{acount.email}"}}
  check:
    - {goto: "ftp://portal.example/m/{mission}", expect: logged_in}
    - extract: {list: {ready: "#r", item: ".s", date: {attr: d, layout: "Jan 2006"}}}
`
	got := map[int]string{}
	for _, p := range Lint([]byte(file)) {
		got[p.Line] += p.Message + "; "
	}
	for line, want := range map[int]string{
		6:  "regexp",
		10: "{account.password} may only be the value of a fill",
		11: "unknown placeholder {acount.email}",
		13: "want an http(s) URL",
		14: "does not hold a whole date",
	} {
		if !strings.Contains(got[line], want) {
			t.Errorf("line %d: %q, want a problem with %q (all: %v)", line, got[line], want, got)
		}
	}

	unknown := Lint([]byte("name: t\nflows:\n  login:\n    - {hover: \"#menu\"}\n  chek: []\n"))
	var msgs []string
	for _, p := range unknown {
		msgs = append(msgs, p.String())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{`line 4: flows.login[0]: unknown step kind or key "hover"`, `line 5: flows: unknown key "chek"`} {
		if !strings.Contains(all, want) {
			t.Errorf("lint says\n%s\nwant %q", all, want)
		}
	}
}

func TestLintAcceptsWhatParseAccepts(t *testing.T) {
	t.Parallel()
	for _, path := range []string{filepath.Join("..", "..", "profiles", "portalsim.yaml"), filepath.Join("testdata", "portalsim-flows.yaml")} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if probs := Lint(data); len(probs) > 0 {
			t.Errorf("%s: %v", path, probs)
		}
	}
}

// FuzzParse: no input makes the parser or the linter panic, and a profile
// Parse accepts survives writing out and reading back.
func FuzzParse(f *testing.F) {
	for _, name := range profiles.Names() {
		b, _ := profiles.Get(name)
		f.Add(b)
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "portalsim-flows.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(flowsProfile(`{branch: {if: logged_in, then: [{click: "#a"}], else: [{wait: {network_idle: true}}]}}`,
		`{message: {regexp: "slot on (\\d{2}-\\d{2}-\\d{4})", layout: "02-01-2006", none: "No slots"}}`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = Lint(data)
		p, err := Parse(data)
		if err != nil {
			return
		}
		_ = p.Program()
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("marshal an accepted profile: %v", err)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("an accepted profile does not read back: %v\n%s", err, out)
		}
	})
}
