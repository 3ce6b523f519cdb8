package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	checkerv1 "github.com/slotwatch/slotwatch/gen/slotwatch/checker/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// TestSIGTERMLeavesNoLeaseOrClaim stops a checker while one mission's
// check is running and another mission waits for the only account: the
// check finishes and is released and reported, the waiting mission's claim
// is reported FAILED, and the process exits cleanly, leaving nothing for
// the TTLs to clean up.
func TestSIGTERMLeavesNoLeaseOrClaim(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	accts := s.addAccounts(1)
	s.addMission("m-slow")
	s.addMission("m-wait")
	// The dates load slowly, but within the step timeout.
	if err := s.sim.SetBehaviour(accts[0].email, sim.Behaviour{DelayMS: 4000, Only: sim.SlotAPI}); err != nil {
		t.Fatal(err)
	}
	c := s.startChecker("checker-stop", "MAX_CONCURRENT_MISSIONS=2")

	eventually(t, time.Minute, "m-slow checked with the account", func() bool {
		st, err := c.reader.GetStatus(testkit.Context(t), &checkerv1.GetStatusRequest{})
		if err != nil {
			return false
		}
		for _, f := range st.GetInFlight() {
			if f.GetMissionCode() == "m-slow" && f.GetAccountId() == accts[0].id {
				return true
			}
		}
		return false
	})
	c.Stop()
	if err := c.ExitErr(); err != nil {
		t.Fatalf("the checker exited with %v after SIGTERM, want a clean exit", err)
	}

	if st := s.account(accts[0].id).GetState(); st != apv1.AccountState_ACCOUNT_STATE_COOLDOWN {
		t.Errorf("the account is %v after the stop, want cooldown (released)", st)
	}
	for _, u := range s.usage() {
		if u.GetResult() != apv1.UsageResult_USAGE_RESULT_NO_SLOT || u.GetMissionCode() != "m-slow" {
			t.Errorf("lease %v, want m-slow's, released no_slot", u)
		}
	}
	for _, cl := range s.claims() {
		if cl.reported == nil {
			t.Errorf("claim of %s left behind", cl.mission)
		}
	}
	checks := map[string]checkRow{}
	for _, ch := range s.checks() {
		checks[ch.mission] = ch
	}
	if ch := checks["m-slow"]; ch.outcome != "no_slot" || ch.account != accts[0].id {
		t.Errorf("m-slow's check = %+v, want no_slot with the account", ch)
	}
	// m-wait was waiting for the account (the pool said: when m-slow's
	// two-minute lease ends, well within half the five-minute claim) and
	// gave up when told to stop.
	if ch := checks["m-wait"]; ch.outcome != "failed" || ch.account != 0 || !strings.Contains(ch.detail, "stopping") {
		t.Errorf("m-wait's check = %+v, want failed, no account, because the checker stopped", ch)
	}
	if len(c.Log.With("no account free")) == 0 {
		t.Errorf("m-wait never waited for an account")
	}
	if len(c.Log.With("checker stopped: every lease released and every claim reported")) != 1 {
		t.Errorf("no clean stop line in the log")
	}
}

// TestSIGTERMPastTheDrainTimeoutReleasesAborted stops a checker whose check
// waits on the portal longer than CHECKER_DRAIN_TIMEOUT: the check is cut,
// and the real AccountPool gets it as aborted: the account rests its
// cooldown with no failure counted, and its login is in the usage log.
// Before, it was released error, one failure per rolling deploy.
func TestSIGTERMPastTheDrainTimeoutReleasesAborted(t *testing.T) {
	t.Parallel()
	s := newSystem(t, options{})
	accts := s.addAccounts(1)
	s.addMission("m-hang")
	if err := s.sim.SetBehaviour(accts[0].email, sim.Behaviour{DelayMS: 120000, Only: sim.SlotAPI}); err != nil {
		t.Fatal(err)
	}
	c := s.startChecker("checker-cut", "CHECKER_DRAIN_TIMEOUT=1s")
	eventually(t, time.Minute, "m-hang's check logged in", func() bool { return len(s.sim.Logins()) > 0 })
	time.Sleep(300 * time.Millisecond) // on to the slot request
	c.Stop()
	if err := c.ExitErr(); err != nil {
		t.Fatalf("the checker exited with %v after SIGTERM, want a clean exit", err)
	}

	a := s.account(accts[0].id)
	if a.GetState() != apv1.AccountState_ACCOUNT_STATE_COOLDOWN || a.GetConsecutiveFailures() != 0 {
		t.Errorf("the account after the cut check: %v; want cooldown, no failure", a)
	}
	u := s.usage()
	if len(u) != 1 || u[0].GetResult() != apv1.UsageResult_USAGE_RESULT_ABORTED || !u[0].GetLoggedIn() ||
		!strings.Contains(u[0].GetDetail(), "stopped before the check finished") {
		t.Errorf("usage log %v; want one lease released aborted, logged in, saying the checker stopped", u)
	}
	for _, ch := range s.checks() {
		if ch.outcome != "failed" || ch.account != accts[0].id {
			t.Errorf("check %+v, want failed with the account", ch)
		}
	}
}

// TestHealthIsNotServingWhileTheBrowserCannotStart starts a checker whose
// CHROME_PATH leads nowhere: it serves, says NOT_SERVING, refuses to run a
// session and shows why in its status.
func TestHealthIsNotServingWhileTheBrowserCannotStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := &system{t: t, dir: dir, tokens: authtest.TokensFile(t),
		admin: authtest.WriteFile(t, "admin.token", authtest.AdminToken+"\n"), reader: authtest.WriteFile(t, "reader.token", authtest.ReaderToken+"\n"),
		checker: authtest.WriteFile(t, "checker.token", authtest.CheckerToken+"\n"),
		apAddr:  "127.0.0.1:1", rqAddr: "127.0.0.1:1", simURL: "http://127.0.0.1:1", profile: ""}
	c := s.launchChecker("checker-nobrowser", "CHROME_PATH="+dir+"/no-chromium")

	health := healthpb.NewHealthClient(dial(t, c.Addr, s.reader))
	eventually(t, 30*time.Second, "health NOT_SERVING", func() bool {
		resp, err := health.Check(testkit.Context(t), &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.client.RunSession(ctx, &checkerv1.RunSessionRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("RunSession without a browser: %v, want Unavailable", err)
	}
	// It is NOT_SERVING from its start, while the browser starts; the
	// start's failure shows in the status once it has failed.
	var b *checkerv1.BrowserStatus
	eventually(t, 30*time.Second, "the start error in the browser status", func() bool {
		st, err := c.reader.GetStatus(testkit.Context(t), &checkerv1.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		b = st.GetBrowser()
		return b.GetLastError() != ""
	})
	if b.GetRunning() || !strings.Contains(b.GetLastError(), "no-chromium") {
		t.Errorf("browser status = %v, want not running, with the start error", b)
	}
	// And still NOT_SERVING once the start has failed: the checks above
	// could pass while the start was under way.
	if resp, err := health.Check(testkit.Context(t), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health after the browser's start failed: %v, %v; want NOT_SERVING", resp.GetStatus(), err)
	}
	if _, err := c.client.RunSession(ctx, &checkerv1.RunSessionRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("RunSession after the browser's start failed: %v, want Unavailable", err)
	}
}
