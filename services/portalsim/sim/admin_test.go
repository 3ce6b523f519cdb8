package sim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// call sends a JSON admin request and decodes the answer into out (if not
// nil); it returns the status.
func call(t *testing.T, method, u, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, u, err)
		}
	}
	return resp.StatusCode
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()

	// A batch with a bad account is refused whole: none of it is added.
	t.Run("AccountsBatchWithABadOneAddsNone", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, baseConfig())
		before := len(b.sim.State().Accounts)
		body := `[{"email": "new@example.com", "password": "pw"}, {"email": "", "password": "pw2"}]`
		if st := call(t, "POST", b.srv.URL+"/admin/accounts", body, nil); st != http.StatusBadRequest {
			t.Fatalf("POST accounts with an empty email: %d, want 400", st)
		}
		if got := b.sim.State().Accounts; len(got) != before {
			t.Errorf("after a refused batch: %d accounts (%v), want the %d there were", len(got), got, before)
		}
	})

	t.Run("StateRoundTrips", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, Config{})
		cfg := baseConfig()
		cfg.Behaviour = Behaviour{DelayMS: 5}
		cfg.Accounts[1].Behaviour = Behaviour{Kind: Captcha}
		body, _ := json.Marshal(cfg)
		if st := call(t, "PUT", b.srv.URL+"/admin/state", string(body), nil); st != http.StatusOK {
			t.Fatalf("PUT state: %d", st)
		}
		var got Config
		call(t, "GET", b.srv.URL+"/admin/state", "", &got)
		gotJSON, _ := json.Marshal(got)
		if !bytes.Equal(gotJSON, body) {
			t.Errorf("state after PUT:\n%s\nwant\n%s", gotJSON, body)
		}
	})

	t.Run("RequestLogHasPortalRequestsNotAdminOnesAndClears", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		for _, path := range []string{"/login", "/missions/fra/slots"} {
			resp, err := c.Get(b.srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		var reqs []PortalRequest
		call(t, "GET", b.srv.URL+"/admin/requests", "", &reqs)
		if len(reqs) != 2 || reqs[0].Method != "GET" || reqs[0].Path != "/login" || reqs[1].Path != "/missions/fra/slots" ||
			reqs[0].At.IsZero() || reqs[1].At.Before(reqs[0].At) {
			t.Errorf("request log = %+v, want the two portal requests in order, no admin ones", reqs)
		}
		if st := call(t, "DELETE", b.srv.URL+"/admin/requests", "", nil); st != http.StatusNoContent {
			t.Fatalf("DELETE /admin/requests: %d", st)
		}
		reqs = nil
		call(t, "GET", b.srv.URL+"/admin/requests", "", &reqs)
		if reqs == nil || len(reqs) != 0 {
			t.Errorf("after DELETE the request log = %+v, want []", reqs)
		}
	})

	t.Run("PostAccountsTakesOneOrAnArrayAndReplacesByEmail", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, Config{})
		call(t, "POST", b.srv.URL+"/admin/accounts", `{"email":"a@x.test","password":"1"}`, nil)
		var accounts []Account
		call(t, "POST", b.srv.URL+"/admin/accounts", `[{"email":"A@x.test","password":"2"},{"email":"b@x.test","password":"3"}]`, &accounts)
		if len(accounts) != 2 || accounts[0].Password != "2" || accounts[1].Email != "b@x.test" {
			t.Errorf("accounts = %+v", accounts)
		}
	})

	t.Run("PutAccountKeepsItsBehaviourUnlessGiven", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, baseConfig())
		call(t, "PUT", b.srv.URL+"/admin/accounts/acc1@example.com/behaviour", `{"kind":"blocked"}`, nil)
		var a Account
		call(t, "PUT", b.srv.URL+"/admin/accounts/acc1@example.com", `{"password":"new"}`, &a)
		if a.Password != "new" || a.Behaviour.Kind != Blocked {
			t.Errorf("account = %+v", a)
		}
		var cleared Account
		call(t, "PUT", b.srv.URL+"/admin/accounts/acc1@example.com", `{"password":"new","behaviour":{}}`, &cleared)
		if cleared.Behaviour.Kind != Normal {
			t.Errorf("explicit empty behaviour kept %q", cleared.Behaviour.Kind)
		}
	})

	t.Run("DeleteBehaviourMakesTheAccountNormal", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, baseConfig())
		call(t, "PUT", b.srv.URL+"/admin/accounts/acc1@example.com/behaviour", `{"kind":"captcha","delay_ms":20}`, nil)
		call(t, "DELETE", b.srv.URL+"/admin/accounts/acc1@example.com/behaviour", "", nil)
		if got := b.sim.behaviourFor("acc1@example.com", LoginArea); got != (Behaviour{}) {
			t.Errorf("behaviour after DELETE: %+v", got)
		}
		call(t, "PUT", b.srv.URL+"/admin/behaviour", `{"kind":"maintenance"}`, nil)
		if b.sim.State().Behaviour.Kind != Maintenance {
			t.Errorf("global behaviour not set")
		}
		call(t, "DELETE", b.srv.URL+"/admin/behaviour", "", nil)
		if b.sim.State().Behaviour.Kind != Normal {
			t.Errorf("global behaviour not cleared")
		}
	})

	t.Run("BadInputIsRejectedWithAReason", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, baseConfig())
		for _, tc := range []struct{ method, path, body string }{
			{"PUT", "/admin/behaviour", `{"kind":"sleepy"}`},
			{"PUT", "/admin/behaviour", `{"delay":"2s"}`}, // unknown field: a typo of delay_ms
			{"PUT", "/admin/behaviour", `{"delay_ms":-1}`},
			{"PUT", "/admin/behaviour", `{"kind":"blocked","only":"everywhere"}`},
			{"PUT", "/admin/slots", `{"mission":"fra","centre":"London","visa_category":"tourism","slots":[{"date":"1/2/2027"}]}`},
			{"PUT", "/admin/slots", `{"mission":"fra","centre":"London","visa_category":"tourism","slots":[{"date":"2027-01-02","time":"9am"}]}`},
			{"PUT", "/admin/state", `{"accounts":[{"email":"a@x"},{"email":"A@x"}]}`},
			{"POST", "/admin/accounts", `{"password":"no email"}`},
		} {
			if st := call(t, tc.method, b.srv.URL+tc.path, tc.body, nil); st != http.StatusBadRequest {
				t.Errorf("%s %s %s: %d, want 400", tc.method, tc.path, tc.body, st)
			}
		}
		if st := call(t, "PUT", b.srv.URL+"/admin/accounts/ghost@x/behaviour", `{"kind":"blocked"}`, nil); st != http.StatusNotFound {
			t.Errorf("behaviour of a missing account: %d, want 404", st)
		}
		if st := call(t, "DELETE", b.srv.URL+"/admin/accounts/ghost@x", "", nil); st != http.StatusNotFound {
			t.Errorf("delete of a missing account: %d, want 404", st)
		}
	})

	t.Run("SetSlotsAddsTheMissionCentreAndCategoryAndReplacesOnlyThatTriple", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, baseConfig())
		var m Mission
		call(t, "PUT", b.srv.URL+"/admin/slots", `{"mission":"bel","centre":"Leeds","visa_category":"study","slots":[{"date":"2027-05-01","time":"10:00"}]}`, &m)
		if m.Code != "bel" || len(m.Centres) != 1 || m.VisaCategories[0] != "study" || len(m.Slots) != 1 {
			t.Errorf("new mission = %+v", m)
		}
		call(t, "PUT", b.srv.URL+"/admin/slots", `{"mission":"fra","centre":"London","visa_category":"tourism","slots":[]}`, &m)
		if len(m.Slots) != 1 || m.Slots[0].Centre != "Manchester" {
			t.Errorf("fra slots after clearing London/tourism = %+v", m.Slots)
		}
		call(t, "PUT", b.srv.URL+"/admin/missions/bel", `{"name":"Belgium","centres":["Leeds","York"],"visa_categories":["study"]}`, &m)
		if m.Name != "Belgium" || len(m.Centres) != 2 || len(m.Slots) != 1 {
			t.Errorf("PUT mission must keep its slots: %+v", m)
		}
	})

	t.Run("LoginsAreListedFilteredAndCleared", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		login(t, c, b.srv.URL, "acc1@example.com", "pw1")
		login(t, newClient(t), b.srv.URL, "acc2@example.com", "bad")
		var all, one []LoginAttempt
		call(t, "GET", b.srv.URL+"/admin/logins", "", &all)
		call(t, "GET", b.srv.URL+"/admin/logins?email=ACC2@example.com", "", &one)
		if len(all) != 2 || len(one) != 1 || one[0].Result != LoginBadPassword || one[0].At.IsZero() {
			t.Errorf("all = %+v, acc2 = %+v", all, one)
		}
		call(t, "DELETE", b.srv.URL+"/admin/logins", "", nil)
		call(t, "GET", b.srv.URL+"/admin/logins", "", &all)
		if len(all) != 0 {
			t.Errorf("logins after DELETE: %+v", all)
		}
	})

	t.Run("ResetForgetsConfigSessionsLoginsAndStats", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, baseConfig())
		login(t, c, b.srv.URL, "acc1@example.com", "pw1")
		if st := call(t, "POST", b.srv.URL+"/admin/reset", "", nil); st != http.StatusNoContent {
			t.Fatalf("reset: %d", st)
		}
		_ = b.sim.PutAccount(Account{Email: "acc1@example.com", Password: "pw1"})
		if p := get(t, c, b.srv.URL+"/dashboard"); p.status != http.StatusSeeOther {
			t.Errorf("old session survived the reset")
		}
		st := b.sim.State()
		if len(st.Missions) != 0 || len(b.sim.Logins()) != 0 {
			t.Errorf("state after reset: %+v, logins %v", st, b.sim.Logins())
		}
		var stats Stats
		call(t, "GET", b.srv.URL+"/admin/stats", "", &stats)
		if stats.Requests != 1 { // the dashboard request above
			t.Errorf("stats after reset = %+v, want only the request made since", stats)
		}
	})

	t.Run("ConcurrentLoginsAndAdminWritesAreSafe", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, baseConfig())
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				c := newClient(t)
				for range 5 {
					login(t, c, b.srv.URL, "acc1@example.com", "pw1")
					_ = b.sim.SetSlots("fra", "London", "tourism", []Slot{{Date: "2027-01-0" + string(rune('1'+i))}})
				}
			})
		}
		wg.Wait()
		if n := len(b.sim.Logins()); n != 40 {
			t.Errorf("%d logins recorded, want 40", n)
		}
	})
}

func TestLoadConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	t.Run("ReadsAValidFile", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "ok.json")
		body, _ := json.Marshal(baseConfig())
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfigFile(path)
		if err != nil || len(cfg.Accounts) != 2 || len(cfg.Missions[0].Slots) != 3 {
			t.Errorf("cfg = %+v, err = %v", cfg, err)
		}
	})

	t.Run("NamesEveryProblem", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "bad.json")
		bad := `{"accounts":[{"email":""}],"missions":[{"code":"fra","slots":[{"centre":"L","visa_category":"t","date":"soon"}]}],"behaviour":{"kind":"odd"}}`
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfigFile(path)
		for _, want := range []string{"accounts[0]: email is empty", `date "soon"`, `kind "odd"`} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not mention %q", err, want)
			}
		}
	})
}
