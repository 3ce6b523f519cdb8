package portal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// injectScript serves next's answer to GET path with script added at the
// top of its <head>, before any of the page's own scripts.
func injectScript(path, script string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != path {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			body := rec.Body.String()
			tag := "<script>" + script + "</script>"
			if i := strings.Index(strings.ToLower(body), "<head>"); i >= 0 {
				body = body[:i+len("<head>")] + tag + body[i+len("<head>"):]
			} else {
				body = tag + body
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write([]byte(body))
		})
	}
}

// leaks fails t if the result's detail, the logs or check.json quote the
// page's exception (passport1, "Jane Doe").
func leaks(t *testing.T, res Result, b *testBundle) {
	t.Helper()
	for what, text := range map[string]string{"the detail": res.Detail, "the logs": b.logs.String()} {
		if strings.Contains(text, passport1) || strings.Contains(text, "Jane Doe") {
			t.Errorf("%s quotes the page's exception: %q", what, text)
		}
	}
	if res.Artifacts != nil {
		body, _ := os.ReadFile(filepath.Join(res.Artifacts.Dir, "check.json"))
		if bytes.Contains(body, []byte(passport1)) || bytes.Contains(body, []byte("Jane Doe")) {
			t.Errorf("check.json quotes the page's exception:\n%s", body)
		}
	}
}

// The login page's own script replaces document.querySelector with one
// that throws a message quoting the applicant (as a page's helper library
// may throw on the values it holds). The driver's fill calls it: the
// Evaluate's ExceptionError reaches failNav's jsErr case, whose detail is
// "the page does not fit the profile: %v" of the whole exception, its
// message and its stack (with the page's URL path) included. OPERATIONS.md
// now says a detail quotes no page text and names such an exception by its
// kind only.
func TestAPageExceptionInAFillIsToldInOurWords(t *testing.T) {
	t.Parallel()
	d, b := setupWith(t, nil, injectScript("/login",
		`document.querySelector = function (s) { throw new TypeError("passport `+passport1+` of Jane Doe: " + s); };`))
	res, _ := d.CheckMission(t.Context(), Account{Email: acc1, Password: pw1}, "fra", []Query{londonTourism}, nil)
	if res.Outcome != Error {
		t.Fatalf("got %s/%s at %s (%s); want an error", res.Outcome, res.Reason, res.Step, res.Detail)
	}
	t.Logf("detail: %s", res.Detail)
	leaks(t, res, b)
}

// await tells a broken profile from a page's exception by the message's
// prefix ("!selector:", "!profile:"), and the message is the page's to
// choose: a page script whose exception begins so (here Date.now, which
// the classification's __settled calls on a page no marker matches,
// replaced by one that throws it)
// must not be taken for the profile's invalid selector, with the rest of
// its message, the page's text, in the detail as the "selector".
func TestAPageExceptionDressedAsASelectorErrorIsToldInOurWords(t *testing.T) {
	t.Parallel()
	d, b := setupWith(t, nil, loginPageWithScript(`Date.now = function () { throw new Error("!selector:passport `+passport1+` of Jane Doe"); };`))
	res, _ := d.CheckMission(t.Context(), Account{Email: acc1, Password: pw1}, "fra", []Query{londonTourism}, nil)
	if res.Outcome != Error {
		t.Fatalf("got %s/%s at %s (%s); want an error", res.Outcome, res.Reason, res.Step, res.Detail)
	}
	t.Logf("reason %s, detail: %s", res.Reason, res.Detail)
	// Reason profile, as any exception of the page's code the driver's
	// script meets (the page no longer fits the profile); but told as the
	// page's exception, not as the profile's invalid selector.
	if strings.Contains(res.Detail, "invalid CSS selector") || !strings.Contains(res.Detail, "threw in the page") {
		t.Errorf("a page's exception is taken for the profile's invalid selector: %s", res.Detail)
	}
	leaks(t, res, b)
}

// A page whose own script replaced MutationObserver, setInterval or
// Promise by one that throws: __wait's promise is rejected (or never made)
// outside its try, the Evaluate fails with the exception, and await took
// that for a lost evaluation and ran the script again every 20 ms until
// its deadline, which a check reports as reason=timeout (with the
// exception's message as the "last try"). It fails at once as a page
// script's error, told by its kind. (await is called directly: in a check,
// its first look may come before the page's own script has run.)
func TestAPageExceptionOutsideTheWaitFailsAtOnce(t *testing.T) {
	t.Parallel()
	for _, what := range []string{"MutationObserver", "setInterval", "Promise"} {
		t.Run(what, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = w.Write([]byte(`<!doctype html><html><body><h1>Applicant</h1>
<script>window.` + what + ` = function () { throw new TypeError("passport ` + passport1 + ` of Jane Doe"); };</script></body></html>`))
			}))
			defer srv.Close()
			tab, err := shared(t).NewTab(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer tab.CloseAfter(nil, nil)
			if err := chromedp.Do(tab.Context(), chromedp.Navigate(srv.URL)); err != nil {
				t.Fatal(err)
			}
			const deadline = 5 * time.Second
			ctx, cancel := context.WithTimeout(tab.Context(), deadline)
			defer cancel()
			start := time.Now()
			_, err = await(ctx, `return __wait(function () { return null; }, 4000);`)
			took := time.Since(start)
			t.Logf("after %s: %v", took.Round(time.Millisecond), err)
			if !errors.Is(err, errPageScript) || !strings.Contains(err.Error(), "TypeError") {
				t.Errorf("await: %v; want a page script's error, with its kind", err)
			}
			if took >= deadline-time.Second {
				t.Errorf("await took %s: it waited out its deadline (%s)", took, deadline)
			}
			if strings.Contains(fmt.Sprint(err), passport1) {
				t.Errorf("the error quotes the page's exception: %v", err)
			}
		})
	}
}
