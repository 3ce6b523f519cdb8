package portal

import (
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// keepSession makes the profile keep the portal session.
func keepSession(p *profile.Profile) { p.Logout = profile.Logout{Keep: true} }

func TestSessionReuse(t *testing.T) {
	t.Parallel()

	t.Run("SecondCheckReusesTheSessionWithoutLoggingIn", func(t *testing.T) {
		t.Parallel()
		d, b := setup(t, keepSession)
		first := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		if first.Outcome != Success || !first.Login || first.SessionReused || len(first.Session) == 0 || first.SessionEnded {
			t.Fatalf("first check = %+v; want a success that logged in and kept its session", first)
		}
		if strings.Contains(string(first.Session), pw1) {
			t.Fatal("the session state holds the password")
		}
		second := runCheck(t, d, Account{Email: acc1, Password: pw1, Session: first.Session}, "fra", londonTourism)
		if second.Outcome != Success || second.Login || !second.SessionReused || len(second.Session) == 0 {
			t.Fatalf("second check = %+v; want a success on the reused session", second)
		}
		if n := len(b.sim.Logins()); n != 1 {
			t.Errorf("portal saw %d logins, want 1", n)
		}
		// keep_session: no logout, the portal session lives on.
		time.Sleep(500 * time.Millisecond)
		if n := len(b.sim.Sessions()); n != 1 {
			t.Errorf("portal has %d sessions, want the kept one", n)
		}
	})

	t.Run("DeadSessionLogsInWithinTheSameCheck", func(t *testing.T) {
		t.Parallel()
		d, b := setup(t, keepSession)
		first := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		if len(first.Session) == 0 {
			t.Fatalf("first check kept no session: %+v", first)
		}
		// The portal forgets the account's sessions.
		if !b.sim.DeleteAccount(acc1) {
			t.Fatal("delete account")
		}
		if err := b.sim.PutAccount(sim.Account{Email: acc1, Password: pw1}); err != nil {
			t.Fatal(err)
		}
		second := runCheck(t, d, Account{Email: acc1, Password: pw1, Session: first.Session}, "fra", londonTourism)
		if second.Outcome != Success || !second.Login || second.SessionReused || len(second.Session) == 0 || len(second.Slots) != len(first.Slots) {
			t.Fatalf("second check = %+v; want a success that logged in again", second)
		}
		if n := len(b.sim.Logins()); n != 2 {
			t.Errorf("portal saw %d logins, want 2", n)
		}
	})

	t.Run("DeadSessionWithoutLoginBudgetDoesNotLogIn", func(t *testing.T) {
		t.Parallel()
		d, b := setup(t, keepSession)
		first := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		if err := b.sim.SetBehaviour(acc1, sim.Behaviour{Kind: sim.LoggedOut}); err != nil {
			t.Fatal(err)
		}
		second := runCheck(t, d, Account{Email: acc1, Password: pw1, Session: first.Session, NoLogin: true}, "fra", londonTourism)
		if second.Outcome != Error || second.Reason != ReasonLoginBudget || second.Login || !second.SessionEnded || second.Session != nil {
			t.Fatalf("second check = %+v; want an error for the spent login budget, session ended", second)
		}
		if n := len(b.sim.Logins()); n != 1 {
			t.Errorf("portal saw %d logins, want only the first check's", n)
		}
	})

	t.Run("WithoutKeepSessionTheCheckLogsOutAndKeepsNothing", func(t *testing.T) {
		t.Parallel()
		d, b := setup(t, nil)
		res := runCheck(t, d, Account{Email: acc1, Password: pw1}, "fra", londonTourism)
		if res.Outcome != Success || !res.Login || res.Session != nil || !res.SessionEnded {
			t.Fatalf("check = %+v; want a success that keeps no session", res)
		}
		waitLoggedOut(t, b)
	})
}

func TestSessionLocalStorage(t *testing.T) {
	t.Parallel()
	d, b := setup(t, func(p *profile.Profile) {
		keepSession(p)
		p.SessionLocalStorage = true
	})
	// A state with local storage and no cookies: the check logs in, and the
	// page it ends on still has the restored item, which it keeps.
	state := `{"v":1,"cookies":[],"local_storage":{"` + b.url + `":{"theme":"dark"}}}`
	res := runCheck(t, d, Account{Email: acc1, Password: pw1, Session: []byte(state)}, "fra", londonTourism)
	if res.Outcome != Success || !res.Login {
		t.Fatalf("check = %+v", res)
	}
	if !strings.Contains(string(res.Session), `"local_storage":{"`+b.url+`":{"theme":"dark"}}`) {
		t.Errorf("kept session %s; want the restored local storage of %s", res.Session, b.url)
	}
}
