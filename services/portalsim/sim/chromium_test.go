package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// browser is a headless Chromium driven over --remote-debugging-pipe (the
// DevTools protocol as NUL-terminated JSON on fds 3 and 4), so this module
// needs no browser library: the smoke tests below only load pages and run
// a little JavaScript in them, as a person's clicks would.
type browser struct {
	cmd *exec.Cmd
	out *os.File // our end of Chromium's fd 3

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpAnswer
	dead    error
}

type cdpAnswer struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := os.Getenv("CHROME_PATH")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no Chromium at %s (set CHROME_PATH): %v", path, err)
	}
	toChrome, ours, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	theirs, fromChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--headless", "--remote-debugging-pipe", "--user-data-dir=" + t.TempDir(), "--no-first-run",
		"--disable-gpu", "--disable-extensions", "--disable-background-networking", "about:blank"}
	if os.Geteuid() == 0 { // Chromium cannot be sandboxed as root
		args = append(args, "--no-sandbox")
	}
	cmd := exec.Command(path, args...)
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fds 3 and 4
	// Its own process group, so the cleanup can reach the zygote and
	// renderers too: one left alive still writes to the profile directory
	// while t.TempDir removes it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	toChrome.Close()
	fromChrome.Close()
	b := &browser{cmd: cmd, out: ours, waiting: map[int]chan cdpAnswer{}}
	go b.read(theirs)
	t.Cleanup(func() { b.close() })
	return b
}

// close asks Chromium to quit, as a person closing the window would, so
// it flushes and stops writing its profile; then it kills whatever of the
// process group is left and waits until none of it runs.
func (b *browser) close() {
	exited := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(exited) }()
	_ = b.call("", "Browser.close", map[string]any{}, nil)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
	pgid := b.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-exited
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(-pgid, 0) == syscall.ESRCH {
			break
		}
	}
	b.out.Close()
}

func (b *browser) read(in *os.File) {
	r := bufio.NewReader(in)
	for {
		msg, err := r.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.dead = fmt.Errorf("Chromium closed the pipe: %w", err)
			for _, ch := range b.waiting {
				close(ch)
			}
			b.waiting = nil
			b.mu.Unlock()
			return
		}
		var a cdpAnswer
		if json.Unmarshal(msg[:len(msg)-1], &a) != nil || a.ID == 0 {
			continue // an event
		}
		b.mu.Lock()
		if ch, ok := b.waiting[a.ID]; ok {
			ch <- a
			delete(b.waiting, a.ID)
		}
		b.mu.Unlock()
	}
}

// call sends one command (to a page when session is set) and decodes its
// result into out.
func (b *browser) call(session, method string, params, out any) error {
	b.mu.Lock()
	if b.dead != nil {
		b.mu.Unlock()
		return b.dead
	}
	b.nextID++
	id := b.nextID
	ch := make(chan cdpAnswer, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if _, err := b.out.Write(append(data, 0)); err != nil {
		return err
	}
	select {
	case a, ok := <-ch:
		if !ok {
			return b.dead
		}
		if a.Error != nil {
			return fmt.Errorf("%s: %s", method, a.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(a.Result, out)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: no answer from Chromium", method)
	}
}

// tab is a page in its own browser context (its own cookies).
type tab struct {
	t       *testing.T
	b       *browser
	session string
}

func (b *browser) newTab(t *testing.T) *tab {
	t.Helper()
	var bc struct{ BrowserContextID string }
	if err := b.call("", "Target.createBrowserContext", map[string]any{}, &bc); err != nil {
		t.Fatal(err)
	}
	var tg struct{ TargetID string }
	if err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank", "browserContextId": bc.BrowserContextID}, &tg); err != nil {
		t.Fatal(err)
	}
	var at struct{ SessionID string }
	if err := b.call("", "Target.attachToTarget", map[string]any{"targetId": tg.TargetID, "flatten": true}, &at); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.call("", "Target.disposeBrowserContext", map[string]any{"browserContextId": bc.BrowserContextID}, nil)
	})
	return &tab{t: t, b: b, session: at.SessionID}
}

func (tb *tab) goTo(url string) {
	tb.t.Helper()
	if err := tb.b.call(tb.session, "Page.navigate", map[string]any{"url": url}, nil); err != nil {
		tb.t.Fatal(err)
	}
}

// eval runs js in the page and returns its value as JSON.
func (tb *tab) eval(js string) (string, error) {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := tb.b.call(tb.session, "Runtime.evaluate", map[string]any{"expression": js, "returnByValue": true, "awaitPromise": true}, &res); err != nil {
		return "", err
	}
	if res.ExceptionDetails != nil {
		return "", fmt.Errorf("%s: %s", js, res.ExceptionDetails.Text)
	}
	return string(res.Result.Value), nil
}

// do runs js that must not throw (a click, a fill).
func (tb *tab) do(js string) {
	tb.t.Helper()
	if _, err := tb.eval(js); err != nil {
		tb.t.Fatal(err)
	}
}

// waitFor waits until js gives a truthy value and returns it; a page
// that is still loading counts as not yet.
func (tb *tab) waitFor(js string) string {
	tb.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last string
	var lastErr error
	for time.Now().Before(deadline) {
		v, err := tb.eval(js)
		if err == nil && v != "" && v != "null" && v != "false" && v != `""` && v != "0" {
			return v
		}
		last, lastErr = v, err
		time.Sleep(50 * time.Millisecond)
	}
	page, _ := tb.eval("document.documentElement.outerHTML")
	tb.t.Fatalf("waited in vain for %s (last %s, %v); page:\n%s", js, last, lastErr, page)
	return ""
}

// The page helpers every family's script below uses.
const jsHelpers = `
window.q = s => document.querySelector(s);
window.fill = (s, v) => { const e = q(s); e.value = v; e.dispatchEvent(new Event("input", {bubbles: true})); };
window.choose = (s, v) => { const e = q(s); e.value = v; e.dispatchEvent(new Event("change", {bubbles: true})); };
window.byText = (sel, text) => [...document.querySelectorAll(sel)].find(e => e.textContent.trim() === text);
true`

// TestChromiumSmoke walks each family's happy path in a real headless
// Chromium, as a checker would: sign in through the page, find the slots
// the page's own scripts load, and read them as the page shows them.
func TestChromiumSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	b := startBrowser(t)

	run := func(t *testing.T, f Family, walk func(tb *tab, base string) []string, want []string) {
		cfg := baseConfig()
		cfg.Family = f
		_, sb := setup(t, cfg)
		sb.sim.SetClock(func() time.Time { return feb15 })
		srv := sb.srv
		tb := b.newTab(t)
		if got := walk(tb, srv.URL); !slices.Equal(got, want) {
			t.Errorf("%s shows %q, want %q", f, got, want)
		}
	}
	// str and strs read a value that JSON.stringify made, or a string.
	str := func(t *testing.T, raw string) string {
		var s string
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return s
	}
	strs := func(t *testing.T, raw string) []string {
		var out []string
		if err := json.Unmarshal([]byte(str(t, raw)), &out); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return out
	}

	t.Run("classic", func(t *testing.T) {
		run(t, Classic, func(tb *tab, base string) []string {
			tb.goTo(base + "/login")
			tb.waitFor(`document.readyState === "complete" && !!document.querySelector("#login-form")`)
			tb.do(jsHelpers)
			tb.do(`fill("#email", "acc1@example.com"); fill("#password", "pw1"); q("#login-submit").click(); true`)
			tb.waitFor(`!!document.querySelector("#dashboard")`)
			tb.goTo(base + "/missions/fra/slots")
			tb.waitFor(`document.readyState === "complete" && !!document.querySelector("#slot-form")`)
			tb.do(jsHelpers)
			tb.do(`choose("#centre", "London"); choose("#visa-category", "tourism"); q("#show-slots").click(); true`)
			tb.waitFor(`q("#slot-results").dataset.state === "loaded"`)
			return strs(t, tb.waitFor(`JSON.stringify([...document.querySelectorAll(".slot")].map(e => e.dataset.date + " " + e.dataset.time))`))
		}, []string{"2027-03-01 09:30", "2027-03-02 14:00"})
	})

	t.Run("vfs", func(t *testing.T) {
		run(t, VFS, func(tb *tab, base string) []string {
			tb.goTo(base + "/fra/login")
			tb.waitFor(`!!document.querySelector("input[formcontrolname=username]")`)
			tb.do(jsHelpers)
			tb.do(`byText("button", "Accept All Cookies").click(); true`)
			// Without the consent box ticked, the app refuses to send the form.
			tb.do(`fill("input[formcontrolname=username]", "acc1@example.com"); fill("input[formcontrolname=password]", "pw1");
				byText("button", "Sign In").click(); true`)
			tb.waitFor(`q(".alert-danger").textContent.includes("accept the terms")`)
			tb.do(`q("input[formcontrolname=consent]").click(); byText("button", "Sign In").click(); true`)
			tb.waitFor(`!!byText("button", "Start New Booking")`)
			tb.do(`byText("button", "Start New Booking").click(); true`)
			tb.waitFor(`location.pathname === "/fra/application-detail" && q("select[formcontrolname=centre]").options.length > 1`)
			tb.do(`choose("select[formcontrolname=centre]", "FRALON"); true`)
			tb.waitFor(`q("select[formcontrolname=category]").options.length > 1`)
			tb.do(`choose("select[formcontrolname=category]", "tourism"); true`)
			tb.waitFor(`q("select[formcontrolname=subcategory]").options.length > 1`)
			tb.do(`choose("select[formcontrolname=subcategory]", "tourism-std"); true`)
			msg := tb.waitFor(`q(".result .alert") && q(".result .alert").textContent`)
			return []string{str(t, msg)}
		}, []string{"Earliest available slot for London is 01-03-2027"})
	})

	t.Run("tls", func(t *testing.T) {
		run(t, TLS, func(tb *tab, base string) []string {
			tb.goTo(base + "/")
			tb.waitFor(`document.readyState === "complete" && !!document.querySelector("a.btn")`)
			tb.do(`document.querySelector("a.btn").click(); true`)
			tb.waitFor(`location.pathname === "/login" && document.readyState === "complete"`)
			tb.do(jsHelpers)
			tb.do(`fill("input[name=username]", "acc1@example.com"); fill("input[name=password]", "pw1"); q("input[type=submit]").click(); true`)
			tb.waitFor(`location.pathname === "/groups" && document.readyState === "complete"`)
			tb.do(jsHelpers)
			tb.do(`fill("select[name=location]", "FRALON"); fill("select[name=visa_type]", "tourism"); byText("button", "Book appointment").click(); true`)
			tb.waitFor(`location.pathname === "/appointment/fra" && document.readyState === "complete" && document.querySelector("h2").textContent === "February 2027"`)
			tb.do(jsHelpers)
			tb.do(`byText("a", "Next month ›").click(); true`)
			tb.waitFor(`document.readyState === "complete" && document.querySelector("h2").textContent === "March 2027"`)
			return strs(t, tb.waitFor(`JSON.stringify([...document.querySelectorAll("td.available button")].map(e => e.value))`))
		}, []string{"2027-03-01 09:30", "2027-03-02 14:00"})
	})

	t.Run("ais", func(t *testing.T) {
		run(t, AIS, func(tb *tab, base string) []string {
			tb.goTo(base + "/")
			tb.waitFor(`location.pathname === "/fra/niv/users/sign_in" && document.readyState === "complete"`)
			tb.do(jsHelpers)
			tb.do(`fill("#user_email", "acc1@example.com"); fill("#user_password", "pw1"); q("#policy_confirmed").click();
				q("input[name=commit]").click(); true`)
			tb.waitFor(`location.pathname.startsWith("/fra/niv/groups/") && document.readyState === "complete"`)
			tb.do(jsHelpers)
			tb.do(`[...document.querySelectorAll(".card")].find(c => c.textContent.includes("Visa class: tourism")).querySelector("a").click(); true`)
			tb.waitFor(`location.pathname.endsWith("/appointment") && document.readyState === "complete"`)
			tb.do(jsHelpers)
			// The page's own script, and a fetch as a profile's json step makes.
			tb.do(`choose("#appointments_consulate_appointment_facility_id", "101"); true`)
			tb.waitFor(`q("#appointments_consulate_appointment_time").options.length > 1`)
			shown := tb.waitFor(`q("#appointments_consulate_appointment_date").value + " " + q("#appointments_consulate_appointment_time").options[1].value`)
			days := tb.waitFor(`fetch("appointment/days/101.json?appointments[expedite]=false", {headers: {"X-Requested-With": "XMLHttpRequest"}}).then(r => r.json()).then(d => JSON.stringify(d.map(x => x.date)))`)
			return append([]string{str(t, shown)}, strs(t, days)...)
		}, []string{"2027-03-01 09:30", "2027-03-01", "2027-03-02"})
	})

	// A wall met by a script's call is drawn by the script, not mistaken
	// for "no slots".
	for _, tc := range []struct {
		f    Family
		kind Kind
		want string
	}{
		{VFS, TooManyRequests, "Access restricted for this user"},
		{VFS, LoggedOut, "Your session has expired or is not valid. Please sign in again."},
		{AIS, Captcha, "Please complete the security check before you continue."},
		{AIS, LoggedOut, "You need to sign in before you continue."},
	} {
		t.Run(tc.f.String()+"/ScriptShows/"+string(tc.kind), func(t *testing.T) {
			cfg := baseConfig()
			cfg.Family = tc.f
			cfg.Accounts[0].Behaviour = Behaviour{Kind: tc.kind, Only: SlotAPI}
			_, sb := setup(t, cfg)
			sb.sim.SetClock(func() time.Time { return feb15 })
			srv := sb.srv
			tb := b.newTab(t)
			var shown string
			if tc.f == VFS {
				tb.goTo(srv.URL + "/fra/login")
				tb.waitFor(`!!document.querySelector("input[formcontrolname=username]")`)
				tb.do(jsHelpers)
				tb.do(`fill("input[formcontrolname=username]", "acc1@example.com"); fill("input[formcontrolname=password]", "pw1");
					q("input[formcontrolname=consent]").click(); byText("button", "Sign In").click(); true`)
				tb.waitFor(`!!byText("button", "Start New Booking")`)
				tb.do(`byText("button", "Start New Booking").click(); true`)
				tb.waitFor(`q("select[formcontrolname=centre]") && q("select[formcontrolname=centre]").options.length > 1`)
				tb.do(`choose("select[formcontrolname=centre]", "FRALON"); true`)
				shown = tb.waitFor(`q(".error-page") && q(".error-page").textContent`)
			} else {
				tb.goTo(srv.URL + "/fra/niv/users/sign_in")
				tb.waitFor(`document.readyState === "complete" && !!document.querySelector("#user_email")`)
				tb.do(jsHelpers)
				tb.do(`fill("#user_email", "acc1@example.com"); fill("#user_password", "pw1"); q("#policy_confirmed").click(); q("input[name=commit]").click(); true`)
				tb.waitFor(`location.pathname.startsWith("/fra/niv/groups/") && document.readyState === "complete"`)
				tb.do(`document.querySelector(".card a").click(); true`)
				tb.waitFor(`location.pathname.endsWith("/appointment") && document.readyState === "complete"`)
				tb.do(jsHelpers)
				tb.do(`choose("#appointments_consulate_appointment_facility_id", "101"); true`)
				shown = tb.waitFor(`q(".flash.error") && q(".flash.error").textContent`)
			}
			if !strings.Contains(str(t, shown), tc.want) {
				t.Errorf("the page shows %s, want %q", shown, tc.want)
			}
		})
	}
}
