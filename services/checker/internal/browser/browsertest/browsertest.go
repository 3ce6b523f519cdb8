// Package browsertest gives a test binary one shared browser.Manager, as
// the Checker has one browser: starting Chromium per test would make the
// suites slow on two cores. ServePortal puts a portal in front of it.
package browsertest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

var (
	once    sync.Once
	manager *browser.Manager
)

// ExecPath is $CHROME_PATH, or the Checker's default; it fails the test
// when no Chromium is there.
func ExecPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv("CHROME_PATH")
	if p == "" {
		p = browser.DefaultExecPath
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no Chromium at %s (run deploy/local/ensure-chromium.sh or set CHROME_PATH): %v", p, err)
	}
	return p
}

// NoSandbox is the opt-in out of Chromium's sandbox (CHROME_NO_SANDBOX)
// that a test running as root needs: Chromium cannot be sandboxed as root.
// As any other user the tests run the browser sandboxed, as the Checker's
// image does.
func NoSandbox() bool { return os.Geteuid() == 0 }

// StartTimeout is the tests' browser.Config.StartTimeout: the default,
// lengthened on a loaded machine (testkit.Scale), where Chromium took more
// than 30 s to start.
func StartTimeout() time.Duration { return testkit.Scale(browser.DefaultStartTimeout) }

// Shared returns the test binary's one Manager; its browser starts on
// first use. Its tabs are background tabs, as the Checker opens them for
// the shipped portalsim profile (background_tabs).
func Shared(t testing.TB) *browser.Manager {
	t.Helper()
	path := ExecPath(t)
	once.Do(func() {
		manager = browser.New(browser.Config{ExecPath: path, Background: true, NoSandbox: NoSandbox(), StartTimeout: StartTimeout()})
	})
	return manager
}

// Main runs the tests, then closes the shared browser. Call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if manager != nil {
		_ = manager.Close()
	}
	os.Exit(code)
}

// ServePortal serves portal (a portalsim, or one wrapped) on 127.0.0.1:0
// until the test ends and returns its URL with the shipped profile aimed
// at it; tune, if not nil, may change the profile (timeouts, selectors).
func ServePortal(t testing.TB, portal http.Handler, tune func(*profile.Profile)) (string, *profile.Profile) {
	t.Helper()
	srv := httptest.NewServer(portal)
	t.Cleanup(srv.Close)
	prof, err := profile.Default().WithBaseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(prof)
	}
	return srv.URL, prof
}
