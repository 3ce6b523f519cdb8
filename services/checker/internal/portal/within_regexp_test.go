package portal

import (
	"net/http"
	"strings"
	"testing"
)

// A click's within regexp that Go compiles (profile validation) but
// JavaScript does not ("(?i)") is the profile's fault: the detail names the
// regexp, and does not say the page's script threw.
func TestAWithinRegexpJavaScriptCannotReadIsTheProfilesFault(t *testing.T) {
	t.Parallel()
	d := miniDriverVia(t, `    - {name: cards, goto: /cards, expect: cards}
    - {name: pick, click: "a", within: {css: div.card, regexp: "(?i)visa class: {visa_category}"}, expect: calendar}
    - {name: slots, extract: {list: {ready: table.cal, item: button.appt, date: {attr: value}}}}
`, func(next http.Handler) http.Handler { return next })
	res, _ := d.CheckMission(t.Context(), Account{Email: acc1, Password: pw1}, "fra", []Query{londonTourism}, nil)
	t.Logf("%s/%s at %s (%s)", res.Outcome, res.Reason, res.Step, res.Detail)
	if res.Reason != ReasonProfile || res.Step != "pick" {
		t.Fatalf("got %s/%s at %s (%s); want profile at pick", res.Outcome, res.Reason, res.Step, res.Detail)
	}
	if strings.Contains(res.Detail, "threw in the page") || !strings.Contains(res.Detail, "(?i)visa class") {
		t.Errorf("detail %q: blames the page's script and does not name the profile's regexp JavaScript cannot read", res.Detail)
	}
}
