package browser

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/slotwatch/slotwatch/services/platform/proctree"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

func execPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CHROME_PATH")
	if p == "" {
		p = DefaultExecPath
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no Chromium at %s (run deploy/local/ensure-chromium.sh or set CHROME_PATH): %v", p, err)
	}
	return p
}

// Tests that neither kill, recycle nor close the browser share one, as
// the checker's checks do: each browser start costs seconds on a busy
// two-core machine.
var (
	sharedOnce sync.Once
	shared     *Manager
)

// asRoot is the opt-in out of Chromium's sandbox (CHROME_NO_SANDBOX) that
// the tests need when they run as root, where Chromium cannot be
// sandboxed; sandbox_test.go runs the browser sandboxed as another user.
var asRoot = os.Geteuid() == 0

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		_ = shared.Close()
	}
	os.Exit(code)
}

func sharedManager(t *testing.T) *Manager {
	t.Helper()
	path := execPath(t)
	sharedOnce.Do(func() { shared = New(Config{ExecPath: path, NoSandbox: asRoot, StartTimeout: startTimeout()}) })
	return shared
}

// startTimeout is the tests' Config.StartTimeout: the default, lengthened
// on a loaded machine, where Chromium took more than 30 s to start (load
// 25-44 on two cores).
func startTimeout() time.Duration { return testkit.Scale(DefaultStartTimeout) }

func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	cfg.ExecPath = execPath(t)
	cfg.NoSandbox = asRoot
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = startTimeout()
	}
	m := New(cfg)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// site serves one page on 127.0.0.1 that the tests set cookies on.
func site(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>probe</title><p>probe</p>")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func open(t *testing.T, m *Manager) *Tab {
	t.Helper()
	tab, err := m.NewTab(t.Context())
	if err != nil {
		t.Fatalf("NewTab: %v", err)
	}
	return tab
}

func cookiesOn(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	c, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		t.Fatalf("read cookies: %v", err)
	}
	return c
}

func TestTabsHaveTheirOwnCookies(t *testing.T) {
	t.Parallel()
	m := sharedManager(t)
	url := site(t)

	first := open(t, m)
	defer first.Close(nil)
	cookiesOn(t, first.Context(), url)
	if err := chromedp.Do(first.Context(), chromedp.Evaluate[chromedp.Void](`document.cookie = "session=acc1; path=/"`)); err != nil {
		t.Fatal(err)
	}

	// Control: a second tab in the same browser context sees the cookie,
	// so the check below would catch contexts that share cookies.
	sibling, cancel := chromedp.NewContext(first.Context())
	defer cancel()
	if got := cookiesOn(t, sibling, url); got != "session=acc1" {
		t.Fatalf("a tab in the same browser context sees cookies %q, want session=acc1", got)
	}

	second := open(t, m) // while the first is still open
	defer second.Close(nil)
	if got := cookiesOn(t, second.Context(), url); got != "" {
		t.Errorf("a fresh tab sees cookies %q from another tab", got)
	}
	first.Close(nil)
	third := open(t, m)
	defer third.Close(nil)
	if got := cookiesOn(t, third.Context(), url); got != "" {
		t.Errorf("a tab opened after another closed sees its cookies %q", got)
	}
	if st := m.Status(); st.Restarts != 0 {
		t.Errorf("the browser restarted between tabs: %+v", st)
	}
}

// A background tab's page is hidden, as in a tab the user is not looking
// at; Reveal shows it, for a screenshot of the page. A tab of the default
// manager is visible.
func TestBackgroundTabsAreHiddenAndStillTakeScreenshots(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<!doctype html><html><body style="margin:0;background:#ff0000"><h1>hidden</h1></body></html>`)
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name       string
		m          *Manager
		visibility string
	}{
		{"Background", newManager(t, Config{Background: true, NoSpare: true}), "hidden"},
		{"Default", sharedManager(t), "visible"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := open(t, tc.m)
			defer tab.Close(nil)
			ctx, cancel := context.WithTimeout(tab.Context(), 30*time.Second)
			defer cancel()
			if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
				t.Fatal(err)
			}
			vis, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.visibilityState`))
			if err != nil || vis != tc.visibility {
				t.Fatalf("visibilityState = %q (%v), want %q", vis, err, tc.visibility)
			}
			if err := Reveal(ctx); err != nil {
				t.Fatal(err)
			}
			if vis, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.visibilityState`)); err != nil || vis != "visible" {
				t.Fatalf("visibilityState after Reveal = %q (%v), want visible", vis, err)
			}
			shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(shot))
			if err != nil {
				t.Fatal(err)
			}
			b := img.Bounds()
			if r, g, bl, _ := img.At(b.Dx()/2, b.Dy()-5).RGBA(); r>>8 < 200 || g>>8 > 50 || bl>>8 > 50 {
				t.Errorf("the screenshot does not show the page's red background: pixel %d,%d,%d", r>>8, g>>8, bl>>8)
			}
		})
	}
}

// Closing a tab disposes of its browser context: a long-lived browser
// keeps none of the contexts of the checks it served.
func TestClosedTabsLeaveNoBrowserContext(t *testing.T) {
	t.Parallel()
	m := newManager(t, Config{NoSpare: true})
	tabs := []*Tab{open(t, m), open(t, m)}
	if n := browserContexts(t, m); n != 2 {
		t.Fatalf("%d browser contexts with 2 tabs open, want 2", n)
	}
	for _, tab := range tabs {
		tab.Close(nil)
	}
	deadline := time.Now().Add(10 * time.Second)
	for browserContexts(t, m) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d browser contexts left after the tabs closed", browserContexts(t, m))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A tab asked for with a context that has ended is not opened, and leaves
// neither a counted tab nor a browser context behind.
func TestNewTabOnAnEndedContextLeavesNothing(t *testing.T) {
	t.Parallel()
	m := newManager(t, Config{NoSpare: true})
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if tab, err := m.NewTab(ctx); err == nil {
		tab.Close(nil)
		t.Fatal("NewTab on an ended context opened a tab")
	}
	if st := m.Status(); st.ActiveTabs != 0 {
		t.Errorf("%d tabs counted after a tab that was not opened", st.ActiveTabs)
	}
	if n := browserContexts(t, m); n != 0 {
		t.Errorf("%d browser contexts left by a tab that was not opened", n)
	}
}

// browserContexts counts the browser's contexts, the default one aside.
func browserContexts(t *testing.T, m *Manager) int {
	t.Helper()
	m.mu.Lock()
	inst := m.cur
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(inst.ctx, 10*time.Second)
	defer cancel()
	res, err := cdp.Call(ctx, chromedp.FromContext(inst.ctx).Browser, target.GetBrowserContexts, cdp.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	return len(res.BrowserContextIDs)
}

// The full chromium builds an omnibox popup page (a WebUI renderer) for
// every window, and a fresh browser context gets a window: the manager
// turns that off, as it doubled the cost of a tab.
func TestTabsOpenNoBrowserUIPages(t *testing.T) {
	t.Parallel()
	m := sharedManager(t)
	tab := open(t, m)
	defer tab.Close(nil)
	targets, err := chromedp.Targets(tab.Context())
	if err != nil {
		t.Fatal(err)
	}
	pages := 0
	for _, ti := range targets {
		if ti.Type == "page" {
			pages++
		}
		if strings.Contains(ti.URL, ".top-chrome/") {
			t.Errorf("the browser runs a browser UI page: %s %s", ti.Type, ti.URL)
		}
	}
	if pages == 0 {
		t.Errorf("no page among the browser's targets %+v: the check above saw nothing", targets)
	}
}

func TestParallelTabsShareOneBrowser(t *testing.T) {
	t.Parallel()
	m := sharedManager(t)
	url := site(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			tab, err := m.NewTab(t.Context())
			if err != nil {
				errs <- err
				return
			}
			defer tab.Close(nil)
			set := fmt.Sprintf(`document.cookie = "n=%d"`, i)
			if err := chromedp.Do(tab.Context(), chromedp.Navigate(url), chromedp.Evaluate[chromedp.Void](set)); err != nil {
				errs <- err
				return
			}
			got, err := chromedp.Run(tab.Context(), chromedp.Evaluate[string](`document.cookie`))
			if err == nil && got != fmt.Sprintf("n=%d", i) {
				err = fmt.Errorf("tab %d sees cookies %q", i, got)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := m.Status()
	if !st.Running || st.Restarts != 0 || st.PID == 0 {
		t.Errorf("status = %+v, want one running browser", st)
	}
}

// With Spares: 3, three checks at once all get a tab opened ahead, and
// the pool is back to three once they are closed.
func TestSparesServeChecksAtOnce(t *testing.T) {
	t.Parallel()
	m := newManager(t, Config{Spares: 3})
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitTabs := func(want int) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for m.Status().ActiveTabs != want {
			if time.Now().After(deadline) {
				t.Fatalf("status %+v, want %d tabs open", m.Status(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitTabs(3) // the spares, opened after Start
	opened := func() int {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.cur.opened
	}
	var tabs []*Tab
	for range 3 {
		tabs = append(tabs, open(t, m))
	}
	if n := opened(); n != 3 {
		t.Errorf("%d tabs opened for 3 checks with 3 spares, want 3 (the spares, none of their own)", n)
	}
	for _, tab := range tabs {
		tab.Close(nil)
	}
	// The three torn down, three new spares opened, and no more.
	deadline := time.Now().Add(time.Minute)
	for opened() != 6 || m.Status().ActiveTabs != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d tabs opened and %+v after the refill, want 6 opened and 3 open", opened(), m.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a refill too many would show now
	if n := opened(); n != 6 {
		t.Errorf("%d tabs opened after the refill, want 6", n)
	}
}

func TestBrowserIsRecycledAfterConfiguredTabs(t *testing.T) {
	t.Parallel()
	m := newManager(t, Config{RecycleAfter: 2})
	var pids []int
	for range 3 {
		tab := open(t, m)
		pids = append(pids, tab.inst.pid)
		tab.Close(nil)
	}
	if pids[0] != pids[1] || pids[1] == pids[2] {
		t.Fatalf("browser pids per tab = %v, want the third tab on a new browser", pids)
	}
	st := m.Status()
	if st.Restarts != 1 || st.Crashes != 0 || !st.Running {
		t.Errorf("status = %+v, want 1 restart and no crash", st)
	}
	waitGone(t, pids[0])
}

// Spares opened ahead count toward recycling only once a check takes
// them: with more spares than tabs per browser, opening them used to
// recycle the browser again and again (4 checks started 17 browsers).
func TestSparesDoNotRecycleTheBrowser(t *testing.T) {
	t.Parallel()
	m := newManager(t, Config{RecycleAfter: 1, Spares: 3})
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	const checks = 4
	for range checks {
		tab := open(t, m)
		if err := chromedp.Do(tab.Context(), chromedp.Evaluate[chromedp.Void](`1`)); err != nil {
			t.Fatalf("the tab does not work: %v", err)
		}
		tab.Close(nil)
	}
	_ = m.Close() // waits for the spares' refills
	m.mu.Lock()
	started := m.started
	m.mu.Unlock()
	// One browser per check, as RecycleAfter 1 asks, and one more at
	// most for the spares opened after the last check.
	if started > checks+2 {
		t.Errorf("%d browsers started for %d checks with RecycleAfter 1 and 3 spares, want at most %d", started, checks, checks+2)
	}
	t.Logf("%d browsers started for %d checks", started, checks)
}

func TestDeadBrowserIsReplacedOnTheNextTab(t *testing.T) {
	t.Parallel()
	m := newManager(t, Config{})
	url := site(t)
	tab := open(t, m)
	tab.Close(nil)
	old := m.Status().PID
	tree := processTree(old)

	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// No wait for the manager to notice: the next tab must work anyway.
	tab = open(t, m)
	defer tab.Close(nil)
	if err := chromedp.Do(tab.Context(), chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate after the restart: %v", err)
	}
	st := m.Status()
	if st.Restarts != 1 || st.Crashes != 1 || st.PID == old || !strings.Contains(st.LastError, strconv.Itoa(old)) {
		t.Errorf("status = %+v, want 1 restart and 1 crash of pid %d", st, old)
	}
	for _, pid := range tree {
		waitGone(t, pid)
	}
}

func TestCloseLeavesNoChromiumProcess(t *testing.T) {
	t.Parallel()
	m := newManager(t, Config{})
	tab := open(t, m)
	tab2 := open(t, m) // still open at Close: Close must end it
	tab.Close(nil)
	pid := m.Status().PID
	tree := processTree(pid)
	dir := userDataDir(pid)
	if len(tree) < 2 || dir == "" {
		t.Fatalf("browser pid %d: tree %v, user data dir %q", pid, tree, dir)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range tree {
		if alive(p) {
			t.Errorf("process %d of the browser survived Close", p)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("profile directory %s survived Close: %v", dir, err)
	}
	if err := chromedp.Do(tab2.Context(), chromedp.Navigate("about:blank")); err == nil {
		t.Errorf("a tab still works after Close")
	}
	tab2.Close(nil)
	if _, err := m.NewTab(t.Context()); err != ErrClosed {
		t.Errorf("NewTab after Close: %v, want ErrClosed", err)
	}
}

func TestCanceledContextEndsTheTab(t *testing.T) {
	t.Parallel()
	m := sharedManager(t)
	ctx, cancel := context.WithCancel(t.Context())
	tab, err := m.NewTab(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close(nil)
	cancel()
	select {
	case <-tab.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the tab outlived its caller's context")
	}
	if st := m.Status(); !st.Running || st.Crashes != 0 {
		t.Errorf("ending one tab harmed the browser: %+v", st)
	}
}

func TestStartCanceledMidwayReturns(t *testing.T) {
	t.Parallel()
	m := newManager(t, Config{}) // its own: the cancel must land in a start
	for _, wait := range []time.Duration{0, 30 * time.Millisecond, 150 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		done := make(chan error, 1)
		go func() { _, err := m.NewTab(ctx); done <- err }()
		select {
		case err := <-done:
			if err == nil {
				t.Logf("a tab opened within %v", wait) // a fast machine: fine
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("NewTab hung after its context ended (%v)", wait)
		}
		cancel()
	}
	// The manager still works.
	tab := open(t, m)
	tab.Close(nil)
}

func TestStartFailureIsReported(t *testing.T) {
	t.Parallel()
	m := New(Config{ExecPath: "/nonexistent/chromium", NoSandbox: asRoot})
	defer m.Close()
	err := m.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/chromium") {
		t.Fatalf("Start: %v", err)
	}
	if st := m.Status(); st.Running || st.LastError == "" {
		t.Errorf("status = %+v, want not running with the error", st)
	}
}

// processTree is pid and its descendants.
func processTree(pid int) []int {
	var pids []int
	for _, p := range proctree.Tree(pid) {
		pids = append(pids, p.PID)
	}
	return pids
}

// alive is false for a process that is gone or a zombie nobody reaped yet.
func alive(pid int) bool {
	f := proctree.Stat(pid)
	return len(f) > 0 && f[0] != "Z"
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Errorf("process %d still alive", pid)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func userDataDir(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	for arg := range bytes.SplitSeq(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(arg, []byte("--user-data-dir=")); ok {
			return string(v)
		}
	}
	return ""
}

// A page that makes the browser download a file leaves none behind: the
// tab's browser context refuses downloads. Chromium saves downloads under
// $HOME/Downloads, so the test gives its own browser a HOME of its own
// (and runs alone: it sets the process's environment). Chromium 156's
// headless mode already refuses downloads in a new browser context; the
// explicit deny keeps it so across versions and flags. With the context's
// behaviour set to allow, this test fails.
func TestDownloadsAreRefused(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DOWNLOAD_DIR", filepath.Join(home, "Downloads"))
	var fetched atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><a id="get" href="/file" download="payload.sh">get</a>`)
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, _ *http.Request) {
		fetched.Add(1)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="payload.sh"`)
		fmt.Fprint(w, "#!/bin/sh\necho pwned\n")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	m := newManager(t, Config{NoSpare: true})
	tab := open(t, m)
	defer tab.Close(nil)
	ctx := tab.Context()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	// Both ways a page starts a download: a download link, and a
	// navigation to an attachment.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("get").click()`)); err != nil {
		t.Fatalf("click: %v", err)
	}
	_ = chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`setTimeout(() => { location.href = "/file" }, 0)`))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if files := filesUnder(home); len(files) > 0 {
			t.Fatalf("the page downloaded %v (%d requests for the file)", files, fetched.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d requests for the file, nothing saved", fetched.Load())
}

// filesUnder lists the downloaded files under dir: Chromium's partial
// downloads (.crdownload) too.
func filesUnder(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), "payload") {
			out = append(out, p)
		}
		return nil
	})
	return out
}
