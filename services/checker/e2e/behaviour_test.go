package e2e

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	checkerv1 "github.com/slotwatch/slotwatch/gen/slotwatch/checker/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// TestEachPortalBehaviourEndsInTheRightOutcome checks, on each portal
// family with its shipped profile, one mission per portalsim behaviour, in
// one session of one checker (one browser) per family: each mission's
// request is created in turn and so is each account, so mission i is
// leased account i (the checker leases in claim order, the pool hands out
// never-used accounts by id), and account i carries behaviour i. Each ends
// in the Release outcome, account state and Requests check row that
// behaviour calls for.
func TestEachPortalBehaviourEndsInTheRightOutcome(t *testing.T) {
	t.Parallel()
	for _, f := range families {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			testBehaviours(t, f)
		})
	}
}

func testBehaviours(t *testing.T, family sim.Family) {
	type tc struct {
		mission   string
		behaviour sim.Behaviour
		slot      bool
		outcome   string            // released to the pool, and the session result
		usage     apv1.UsageResult  // the usage log
		state     apv1.AccountState // the account afterwards
		failures  int32             // its consecutive failures
		check     string            // Requests' check row
		reason    string            // in the check's detail
	}
	cases := []tc{
		{"b-found", sim.Behaviour{}, true, "success", apv1.UsageResult_USAGE_RESULT_SUCCESS, apv1.AccountState_ACCOUNT_STATE_COOLDOWN, 0, "slots_found", "1 free slots"},
		{"b-none", sim.Behaviour{}, false, "no_slot", apv1.UsageResult_USAGE_RESULT_NO_SLOT, apv1.AccountState_ACCOUNT_STATE_COOLDOWN, 0, "no_slot", "0 free slots"},
		{"b-badpw", sim.Behaviour{Kind: sim.RejectPassword}, false, "login_fail", apv1.UsageResult_USAGE_RESULT_LOGIN_FAIL, apv1.AccountState_ACCOUNT_STATE_COOLDOWN, 1, "failed", "bad_credentials"},
		{"b-blocked", sim.Behaviour{Kind: sim.Blocked}, false, "banned", apv1.UsageResult_USAGE_RESULT_BANNED, apv1.AccountState_ACCOUNT_STATE_QUARANTINED, 1, "blocked", "blocked"},
		{"b-429", sim.Behaviour{Kind: sim.TooManyRequests}, false, "banned", apv1.UsageResult_USAGE_RESULT_BANNED, apv1.AccountState_ACCOUNT_STATE_QUARANTINED, 1, "rate_limited", "rate_limited"},
		{"b-captcha", sim.Behaviour{Kind: sim.Captcha}, false, "banned", apv1.UsageResult_USAGE_RESULT_BANNED, apv1.AccountState_ACCOUNT_STATE_QUARANTINED, 1, "captcha", "captcha"},
		{"b-500", sim.Behaviour{Kind: sim.ServerError}, false, "error", apv1.UsageResult_USAGE_RESULT_ERROR, apv1.AccountState_ACCOUNT_STATE_COOLDOWN, 1, "failed", "server_error"},
		{"b-slow", sim.Behaviour{DelayMS: int(slowerThanA.Milliseconds()), Only: sim.LoginArea}, false, "error", apv1.UsageResult_USAGE_RESULT_ERROR, apv1.AccountState_ACCOUNT_STATE_COOLDOWN, 1, "failed", "timeout"},
		{"b-unknown", sim.Behaviour{Kind: sim.Unknown}, false, "error", apv1.UsageResult_USAGE_RESULT_ERROR, apv1.AccountState_ACCOUNT_STATE_COOLDOWN, 1, "failed", "unknown_page"},
		{"b-maint", sim.Behaviour{Kind: sim.Maintenance}, false, "error", apv1.UsageResult_USAGE_RESULT_ERROR, apv1.AccountState_ACCOUNT_STATE_COOLDOWN, 1, "maintenance", "maintenance"},
		// Logged out mid-check: the session ends when the slots' script
		// (classic, vfs, ais) or a later calendar month (tls) is asked for;
		// the slot keeps the tls calendar from saying at once that no
		// month has one (the later months are then not asked for).
		{"b-loggedout", sim.Behaviour{Kind: sim.LoggedOut, Only: sim.SlotAPI}, true, "error", apv1.UsageResult_USAGE_RESULT_ERROR, apv1.AccountState_ACCOUNT_STATE_COOLDOWN, 1, "failed", "logged_out"},
	}
	s := newSystem(t, options{family: family})
	accts := s.addAccounts(len(cases))
	for i, c := range cases {
		s.addMission(c.mission)
		if c.slot {
			s.putSlotThroughAdminAPI(c.mission, slotDate)
		}
		if c.behaviour != (sim.Behaviour{}) {
			if err := s.sim.SetBehaviour(accts[i].email, c.behaviour); err != nil {
				t.Fatal(err)
			}
		}
	}
	ch := s.startChecker("checker-behaviours", "CHECKER_LOOP=false", "MAX_CONCURRENT_MISSIONS=3")

	sum := ch.runSessionMax(t, int32(len(cases)))
	results := map[string]*checkerv1.MissionResult{}
	for _, r := range sum.GetResults() {
		results[r.GetMissionCode()] = r
	}
	usage := map[int64]*apv1.UsageRecord{}
	for _, u := range s.usage() {
		usage[u.GetAccountId()] = u
	}
	checks := map[string]checkRow{}
	for _, c := range s.checks() {
		checks[c.mission] = c
	}
	for i, c := range cases {
		a := accts[i]
		r := results[c.mission]
		if r == nil {
			t.Errorf("%s: no result", c.mission)
			continue
		}
		if r.GetAccountId() != a.id || r.GetOutcome() != c.outcome {
			t.Errorf("%s: account %d outcome %s, want account %d outcome %s (%s)", c.mission, r.GetAccountId(), r.GetOutcome(), a.id, c.outcome, r.GetDetail())
		}
		if u := usage[a.id]; u.GetResult() != c.usage || u.GetMissionCode() != c.mission {
			t.Errorf("%s: usage log of account %d: %v for %s, want %v", c.mission, a.id, u.GetResult(), u.GetMissionCode(), c.usage)
		}
		if acct := s.account(a.id); acct.GetState() != c.state || acct.GetConsecutiveFailures() != c.failures {
			t.Errorf("%s: account %d is %v with %d failures, want %v with %d", c.mission, a.id, acct.GetState(), acct.GetConsecutiveFailures(), c.state, c.failures)
		}
		row := checks[c.mission]
		if row.outcome != c.check || row.account != a.id || !strings.Contains(row.detail, c.reason) {
			t.Errorf("%s: Requests' check row %+v, want %s by account %d, detail with %q", c.mission, row, c.check, a.id, c.reason)
		}
	}

	// What the check knew of the unknown page is saved for the operator:
	// by default its check.json alone, not the page, which may show an
	// applicant's personal data (CHECKER_ARTIFACTS_PAGES=true keeps it).
	dirs, _ := filepath.Glob(filepath.Join(s.dir, "artifacts-checker-behaviours", "*-b-unknown-*"))
	if len(dirs) != 1 {
		t.Fatalf("artifacts of the unknown page: %v, want one directory", dirs)
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "check.json")); err != nil {
		t.Errorf("artifacts: %v", err)
	}
	for _, f := range []string{"screenshot.png", "page.html"} {
		if _, err := os.Stat(filepath.Join(dirs[0], f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("artifacts: %s kept without CHECKER_ARTIFACTS_PAGES (%v)", f, err)
		}
	}
	if d := results["b-unknown"].GetDetail(); !strings.Contains(d, dirs[0]) {
		t.Errorf("the unknown page's detail %q does not say where it was saved", d)
	}

	// Metrics.
	resp, err := http.Get("http://" + ch.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range cases {
		want := fmt.Sprintf(`slotwatch_checker_checks_total{mission=%q,outcome=%q} 1`, c.mission, c.outcome)
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, name := range []string{
		fmt.Sprintf("slotwatch_checker_check_duration_seconds_count %d", len(cases)),
		fmt.Sprintf("slotwatch_checker_acquire_wait_seconds_count %d", len(cases)),
		"slotwatch_checker_browser_restarts_total 0", "slotwatch_checker_browser_up 1",
	} {
		if !strings.Contains(string(body), name) {
			t.Errorf("metrics lack %q", name)
		}
	}

	// Status, as a reader sees it; RunSession is for admins.
	st, err := ch.reader.GetStatus(testkit.Context(t), &checkerv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetCheckerId() != ch.id || len(st.GetInFlight()) != 0 || len(st.GetRecentSessions()) != 1 ||
		len(st.GetRecentSessions()[0].GetResults()) != len(cases) || !st.GetBrowser().GetRunning() {
		t.Errorf("status = %v", st)
	}
	// Tabs are torn down (and counted) after their results are in.
	eventually(t, 30*time.Second, "the browser counts every check", func() bool {
		st, err := ch.reader.GetStatus(testkit.Context(t), &checkerv1.GetStatusRequest{})
		return err == nil && st.GetBrowser().GetChecksDone() >= int64(len(cases))
	})
	if _, err := ch.reader.RunSession(testkit.Context(t), &checkerv1.RunSessionRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("RunSession as a reader: %v, want PermissionDenied", err)
	}
	for _, a := range accts {
		if strings.Contains(ch.Log.Text(), a.password) {
			t.Fatalf("the checker logged the password of %s", a.email)
		}
	}
}
