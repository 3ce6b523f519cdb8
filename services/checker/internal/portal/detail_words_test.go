package portal

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A page whose own scripts make the driver's in-page script throw (here
// a Date.now replaced by one that throws a message quoting the page's
// data): the detail, the error and the logs said "page script: " and the
// exception's message, which is the page's text (V8's own messages quote
// the values they choke on too). They say what happened in our words,
// and the kind of exception.
func TestAPageScriptErrorIsToldInOurWords(t *testing.T) {
	t.Parallel()
	d, b := setupWith(t, nil, loginPageWithScript(`Date.now = function () { throw new TypeError("passport `+passport1+` of Jane Doe is not a function"); };`))
	res, err := d.CheckMission(t.Context(), Account{Email: acc1, Password: pw1}, "fra", []Query{londonTourism}, nil)
	if res.Outcome != Error || res.Step != "login_page" {
		t.Fatalf("got %s/%s at %s (%s), err %v; want an error on the login page", res.Outcome, res.Reason, res.Step, res.Detail, err)
	}
	for what, text := range map[string]string{"the detail": res.Detail, "the error": fmt.Sprint(err), "the logs": b.logs.String()} {
		if strings.Contains(text, passport1) || strings.Contains(text, "Jane Doe") {
			t.Errorf("%s quotes the page's exception: %q", what, text)
		}
	}
	if res.Artifacts != nil {
		body, _ := os.ReadFile(filepath.Join(res.Artifacts.Dir, "check.json"))
		if strings.Contains(string(body), passport1) {
			t.Errorf("check.json quotes the page's exception:\n%s", body)
		}
	}
	if !strings.Contains(res.Detail, "script") || !strings.Contains(res.Detail, "TypeError") {
		t.Errorf("detail %q: want our words for a script that threw, and the exception's kind (TypeError)", res.Detail)
	}
}

// A login whose answer sends the browser on to a page that cannot be
// reached, at a URL whose path holds the applicant's passport number:
// the detail said "the portal could not be reached at" and the URL (its
// path kept: redactDetail drops only query strings and fragments). It
// says so in our words. (The error page a click leads to tells no net
// error code; a navigation's is kept: UnreachablePortalIsError.)
func TestAnUnreachablePageIsToldInOurWords(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close() // nothing listens there now
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				next.ServeHTTP(w, r)
				return
			}
			http.Redirect(w, r, "http://"+closed+"/applicants/"+passport1+"/home", http.StatusSeeOther)
		})
	}
	d, _ := setupWith(t, nil, wrap)
	res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
	if res.Outcome != Error || res.Reason != ReasonUnreachable || res.Step != "login" {
		t.Fatalf("got %s/%s at %s (%s); want unreachable at the login", res.Outcome, res.Reason, res.Step, res.Detail)
	}
	if strings.Contains(res.Detail, passport1) {
		t.Errorf("the detail quotes the unreachable page's URL: %q", res.Detail)
	}
	if want := "login: the portal could not be reached"; res.Detail != want {
		t.Errorf("detail %q, want %q", res.Detail, want)
	}
}

// Chrome's load error text is kept only as the fixed token of its net
// error list; anything else is left out.
func TestLoadErrorDetailKeepsOnlyTheNetErrorCode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"net::ERR_CONNECTION_REFUSED": "the portal could not be reached (net::ERR_CONNECTION_REFUSED)",
		"net::ERR_NAME_NOT_RESOLVED":  "the portal could not be reached (net::ERR_NAME_NOT_RESOLVED)",
		"":                            "the portal could not be reached",
		"net::ERR_X for " + passport1: "the portal could not be reached",
		"Applicant " + passport1:      "the portal could not be reached",
	} {
		if got := loadErrorDetail(in); got != want {
			t.Errorf("loadErrorDetail(%q) = %q, want %q", in, got, want)
		}
	}
}
