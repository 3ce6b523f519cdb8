package portal

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// trickyPassword has every character some encoding changes.
const trickyPassword = `p&ss<w"o'rd> +/é?#=%`

// passwordForms are the ways a page or URL may carry trickyPassword.
func passwordForms() map[string]string {
	return map[string]string{
		"raw":                trickyPassword,
		"html":               html.EscapeString(trickyPassword),
		"attribute":          strings.NewReplacer("&", "&amp;", `"`, "&quot;").Replace(trickyPassword),
		"text":               strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(trickyPassword),
		"query":              url.QueryEscape(trickyPassword),
		"query, lower hex":   strings.ToLower(url.QueryEscape(trickyPassword)),
		"path":               url.PathEscape(trickyPassword),
		"encodeURIComponent": encodeURIComponent(trickyPassword),
		"json":               jsonEscape(trickyPassword, false),
		"json, html-safe":    jsonEscape(trickyPassword, true),
	}
}

func TestRedactSecretCoversEveryEncoding(t *testing.T) {
	t.Parallel()
	for name, form := range passwordForms() {
		got := redactSecret("before "+form+" after", trickyPassword)
		if got != "before [password redacted] after" {
			t.Errorf("%s form %q: redacted to %q", name, form, got)
		}
	}
	if got := redactSecret("abc", "abc"); got != "abc" {
		t.Errorf("a 3-byte secret is replaced: %q", got)
	}
}

func TestRedactURLDropsQueryFragmentAndUserInfo(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://user:pw@portal.example/login?token=abc&x=1#frag": "https://portal.example/login",
		"http://127.0.0.1:8090/missions/fra/slots?":               "http://127.0.0.1:8090/missions/fra/slots",
		"":                  "",
		"http://[::1:bad/x": "[unparseable URL]",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
	detail := `login: page load error at https://portal.example/auth?code=s3cr3t#x, then http://a.example/?q=1 failed`
	got := redactDetail(detail, "")
	if strings.ContainsAny(got, "?#") || strings.Contains(got, "s3cr3t") {
		t.Errorf("redactDetail = %q: a query string or fragment is left", got)
	}
	if !strings.Contains(got, "https://portal.example/auth") {
		t.Errorf("redactDetail = %q: the URL itself is gone", got)
	}
}

func TestArtifactStoreKeepsEachCheckWithinItsBudget(t *testing.T) {
	t.Parallel()
	s := &artifactStore{dir: t.TempDir(), perCheck: 100, total: 1000}
	paths, err := s.save("20300101T000000.000Z-fra-login-000001", []artifactFile{
		{name: "check.json", body: bytes.Repeat([]byte("j"), 30)},
		{name: "page.html", body: bytes.Repeat([]byte("h"), 200)},
		{name: "screenshot.png", body: bytes.Repeat([]byte("s"), 10), optional: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := filesLength(filepath.Dir(paths["check.json"])); got > 100 {
		t.Errorf("the check's folder holds %d bytes, want at most 100", got)
	}
	if b, _ := os.ReadFile(paths["page.html"]); len(b) != 70 {
		t.Errorf("page.html has %d bytes, want the 70 left after check.json", len(b))
	}
	if _, ok := paths["screenshot.png"]; ok {
		t.Errorf("the screenshot was saved past the budget")
	}
}

func TestArtifactStoreDeletesTheOldestChecksFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The total counts disk use (dirSize): room for one folder of a
	// 100-byte file as it is on this file system and another as save
	// reckons it before writing (a directory block and a file block), not
	// for a third.
	perFolder := folderOnDisk(t, []byte("h"))
	s := &artifactStore{dir: dir, perCheck: 100, total: perFolder + 2*diskBlock + perFolder/2}
	// Not ours: never deleted, nor counted.
	if err := os.WriteFile(filepath.Join(dir, "README"), bytes.Repeat([]byte("x"), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var names []string
	for i := range 5 {
		name := fmt.Sprintf("%s-fra-login-%06d", t0.Add(time.Duration(i)*time.Second).Format("20060102T150405.000Z"), i)
		names = append(names, name)
		if _, err := s.save(name, []artifactFile{{name: "page.html", body: bytes.Repeat([]byte("h"), 100)}}); err != nil {
			t.Fatal(err)
		}
		if used := foldersSize(dir); used > s.total {
			t.Fatalf("after check %d the folders hold %d bytes, above the total of %d", i, used, s.total)
		}
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{names[3], names[4], "README"}; !slices.Equal(left, want) {
		t.Errorf("left %v, want the two newest checks and the README: %v", left, want)
	}
}

// Folders older than maxAge go at the next save, and at a check's start
// (sweep, at most once a sweepEvery) when nothing is saved; younger ones
// and what is not a check's folder stay.
func TestArtifactStoreDeletesFoldersPastTheirAge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := &artifactStore{dir: dir, perCheck: 100, total: 1 << 20, maxAge: time.Hour}
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	folder := func(at time.Time, n int) string { return fmt.Sprintf("%s-fra-login-%06d", at.Format(folderTime), n) }
	old, young := folder(now.Add(-61*time.Minute), 1), folder(now.Add(-59*time.Minute), 2)
	for _, name := range []string{old, young, "notes"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	left := func() []string {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	if err := s.sweep(now, true); err != nil {
		t.Fatal(err)
	}
	if want := []string{young, "notes"}; !slices.Equal(left(), want) {
		t.Fatalf("after the sweep: %v, want %v", left(), want)
	}
	// Another old folder waits for the next sweep a sweepEvery later, but
	// not for a save.
	older := folder(now.Add(-2*time.Hour), 3)
	if err := os.MkdirAll(filepath.Join(dir, older), 0o700); err != nil {
		t.Fatal(err)
	}
	later := now.Add(sweepEvery / 2)
	if err := s.sweep(later, true); err != nil || !slices.Contains(left(), older) {
		t.Fatalf("a sweep %v after the last deleted %s (%v): want one a %v at most", sweepEvery/2, older, err, sweepEvery)
	}
	s.mu.Lock()
	err := s.makeRoom(10, later)
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{young, "notes"}; !slices.Equal(left(), want) {
		t.Fatalf("after a save's makeRoom: %v, want %v", left(), want)
	}
}

// SweepArtifacts deletes the folders past their age with no check
// started or saved: at once, and again on its ticker for a folder that
// shows up later; younger folders stay. It returns when its context ends,
// and sweeps beside checks' sweeps (run with -race) one at a time.
func TestSweepArtifactsDeletesOldFoldersWhileNoCheckRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := &artifactStore{dir: dir, perCheck: 100, total: 1 << 20, maxAge: time.Hour, every: 20 * time.Millisecond}
	d := &Driver{artifacts: s, log: slog.New(slog.DiscardHandler)}
	folder := func(age time.Duration, n int) string {
		p := filepath.Join(dir, fmt.Sprintf("%s-fra-login-%06d", time.Now().UTC().Add(-age).Format(folderTime), n))
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gone := func(p string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(p); os.IsNotExist(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s, past its age, is still there after 30s", filepath.Base(p))
			}
		}
	}
	old, young := folder(2*time.Hour, 1), folder(time.Minute, 2)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.SweepArtifacts(ctx)
	}()
	gone(old)
	// Checks start (and sweep) meanwhile.
	var checks sync.WaitGroup
	for range 4 {
		checks.Go(func() {
			for range 50 {
				d.sweepArtifacts(time.Now(), true)
			}
		})
	}
	later := folder(3*time.Hour, 3)
	gone(later)
	checks.Wait()
	if _, err := os.Stat(young); err != nil {
		t.Errorf("the folder younger than its age is gone: %v", err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("SweepArtifacts did not return within 30s of its context's end")
	}
}

// A page that holds the password in every form, reached through a URL
// whose query string and fragment hold it too, is saved with the password
// in none of its files and no query string in check.json or the detail.
func TestArtifactsHoldThePasswordInNoFormAndNoQueryString(t *testing.T) {
	t.Parallel()
	forms := passwordForms()
	page := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body><h1>Something else</h1>
<input name="a" value="%s"><p>%s</p><a href="/x?pw=%s">q</a><a href="/y/%s">p</a>
<script>var cfg = {"pw": "%s", "safe": "%s"};</script></body></html>`,
			forms["attribute"], forms["text"], forms["query"], forms["path"], forms["json"], forms["json, html-safe"])
	}
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/login" {
				next.ServeHTTP(w, r)
				return
			}
			if r.URL.RawQuery == "" {
				http.Redirect(w, r, "/login?session="+forms["query"]+"&next=%2Fhome#"+forms["encodeURIComponent"], http.StatusFound)
				return
			}
			page(w)
		})
	}
	d, b := setupWith(t, nil, wrap)
	d.artifacts.pages = true
	res := runCheck(t, d, Account{Email: acc1, Password: trickyPassword}, "fra", londonTourism)
	if res.Reason != ReasonUnknownPage || res.Artifacts == nil || res.Artifacts.HTML == "" {
		t.Fatalf("got %s/%s (%s), artifacts %+v; want an unknown page with its HTML saved", res.Outcome, res.Reason, res.Detail, res.Artifacts)
	}
	files, _ := filepath.Glob(filepath.Join(res.Artifacts.Dir, "*"))
	for _, f := range files {
		body, _ := os.ReadFile(f)
		for name, form := range forms {
			if bytes.Contains(body, []byte(form)) {
				t.Errorf("%s holds the password in its %s form %q", filepath.Base(f), name, form)
			}
		}
	}
	html, _ := os.ReadFile(res.Artifacts.HTML)
	if !bytes.Contains(html, []byte("Something else")) || !bytes.Contains(html, []byte("[password redacted]")) {
		t.Errorf("page.html is not the page, redacted:\n%s", html)
	}
	info, _ := os.ReadFile(filepath.Join(res.Artifacts.Dir, "check.json"))
	if !bytes.Contains(info, []byte(`"url": "`+b.url+`/login"`)) {
		t.Errorf("check.json's url is not the page's without its query string:\n%s", info)
	}
	if strings.ContainsAny(res.URL, "?#") || strings.ContainsAny(res.Detail, "?#") {
		t.Errorf("the result's URL %q or detail %q keeps a query string or fragment", res.URL, res.Detail)
	}
}

// A check that saves its page when the store is full (one old folder
// fills it) deletes the oldest
// check's folder, and its own folder stays within the check's budget.
func TestArtifactsStayWithinTheirBudgets(t *testing.T) {
	t.Parallel()
	d, b := setup(t, nil)
	d.artifacts.perCheck, d.artifacts.total, d.artifacts.pages = 64<<10, 100<<10, true
	old := filepath.Join(b.artifacts, "20000101T000000.000Z-fra-login-aaaaaa")
	if err := os.MkdirAll(old, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "page.html"), bytes.Repeat([]byte("h"), 100<<10), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := b.sim.SetBehaviour(acc1, sim.Behaviour{Kind: sim.Unknown}); err != nil {
		t.Fatal(err)
	}
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
	if res.Artifacts == nil {
		t.Fatalf("no artifacts: %+v", res)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the oldest check's folder is still there (%v)", err)
	}
	if got := filesLength(res.Artifacts.Dir); got > 64<<10 {
		t.Errorf("the check saved %d bytes, above its budget of %d", got, 64<<10)
	}
	if got := foldersSize(b.artifacts); got > 100<<10 {
		t.Errorf("the artifacts hold %d bytes, above the total of %d", got, 100<<10)
	}
}

// A check that fails on a page showing the applicant's passport number
// (the dashboard after login, which the profile here does not recognise)
// leaves neither that number nor the page on disk by default: check.json
// alone, readable by the Checker's user only. The number reaches no log
// line either.
func TestArtifactsKeepNoPageContentByDefault(t *testing.T) {
	t.Parallel()
	d, b := setup(t, func(p *profile.Profile) { p.Markers.LoggedIn = []profile.Marker{{CSS: "#no-such-marker"}} })
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
	if res.Reason != ReasonUnknownPage || res.Artifacts == nil {
		t.Fatalf("got %s/%s (%s), artifacts %+v; want an unknown page with artifacts", res.Outcome, res.Reason, res.Detail, res.Artifacts)
	}
	if res.Artifacts.HTML != "" || res.Artifacts.Screenshot != "" {
		t.Errorf("artifacts %+v: the page's HTML or screenshot was saved without the operator asking", res.Artifacts)
	}
	var files int
	err := filepath.WalkDir(b.artifacts, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == b.artifacts {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, info.Mode().Perm(), want)
		}
		if e.IsDir() {
			return nil
		}
		files++
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(body, []byte(passport1)) {
			t.Errorf("%s holds the applicant's passport number", p)
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("walk the artifacts: %v (%d files)", err, files)
	}
	if _, err := os.Stat(filepath.Join(res.Artifacts.Dir, "check.json")); err != nil {
		t.Errorf("no check.json: %v", err)
	}
	if strings.Contains(b.logs.String(), passport1) {
		t.Errorf("the logs hold the passport number:\n%s", b.logs.String())
	}
}

// A slot page whose date cell shows the applicant's data instead of a
// date (a portal that moved its cells, a profile whose extract drifted)
// ends the check as unreadable slots. By default (no
// CHECKER_ARTIFACTS_PAGES) nothing of the page is to be kept: but the
// detail quotes the cell's text verbatim ("a slot has date %q"), and the
// detail goes into check.json, into the result the Checker reports to
// Requests (requests.checks.detail, kept REQUESTS_RETENTION) and
// AccountPool, and into the "check finished" log line.
func TestArtifactsKeepNoPageTextInTheDetailByDefault(t *testing.T) {
	t.Parallel()
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/api/missions/") {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"mission": "fra", "centre": "London", "visa_category": "tourism",
				"slots": [{"date": "Applicant passport %s", "time": "09:00"}]}`, passport1)
		})
	}
	d, _ := setupWith(t, nil, wrap)
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
	if res.Reason != ReasonUnreadableSlots || res.Artifacts == nil {
		t.Fatalf("got %s/%s (%s), artifacts %+v; want unreadable slots with artifacts", res.Outcome, res.Reason, res.Detail, res.Artifacts)
	}
	body, err := os.ReadFile(filepath.Join(res.Artifacts.Dir, "check.json"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte(passport1)) {
		t.Errorf("check.json holds the applicant's passport number without CHECKER_ARTIFACTS_PAGES:\n%s", body)
	}
	if strings.Contains(res.Detail, passport1) {
		t.Errorf("the detail reported to Requests and AccountPool holds the applicant's passport number: %q", res.Detail)
	}
}

// filesLength is the length of the files under dir: what a check's budget
// (CHECKER_ARTIFACTS_MAX_BYTES) counts.
func filesLength(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// foldersSize is the disk the check folders under dir take (dirSize each):
// what the total budget (CHECKER_ARTIFACTS_TOTAL_BYTES) counts.
func foldersSize(dir string) int64 {
	entries, _ := os.ReadDir(dir)
	var n int64
	for _, e := range entries {
		if e.IsDir() && folderRE.MatchString(e.Name()) {
			n += dirSize(filepath.Join(dir, e.Name()))
		}
	}
	return n
}

// folderOnDisk is the disk a folder holding one file of body takes on the
// file system of the test's temporary directories.
func folderOnDisk(t *testing.T, body []byte) int64 {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "f")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "page.html"), body, 0o600); err != nil {
		t.Fatal(err)
	}
	return dirSize(dir)
}
