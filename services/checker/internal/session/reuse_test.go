package session

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// loginCounter is a Metrics that counts logins and checks.
type loginCounter struct {
	noMetrics
	mu             sync.Mutex
	logins, checks int
}

func (m *loginCounter) CheckFinished(string, Outcome, time.Duration) {
	m.mu.Lock()
	m.checks++
	m.mu.Unlock()
}

func (m *loginCounter) LoggedIn(string) {
	m.mu.Lock()
	m.logins++
	m.mu.Unlock()
}

func keepFor(age time.Duration) func(*profile.Profile) {
	return func(p *profile.Profile) {
		p.Logout = profile.Logout{Keep: true}
		p.SessionMaxAge = profile.Duration(age)
	}
}

// sameAccount makes the pool hand out account 1 for each of n leases.
func sameAccount(b *testBundle, n int) {
	a := b.pool.accounts[0]
	b.pool.accounts = nil
	for range n {
		b.pool.accounts = append(b.pool.accounts, a)
	}
}

func TestSessionReuse(t *testing.T) {
	t.Parallel()
	t0 := time.Now()

	t.Run("SecondCheckOfTheAccountReusesItsSession", func(t *testing.T) {
		t.Parallel()
		m := &loginCounter{}
		c, b := setupWith(t, Config{Metrics: m}, keepFor(6*time.Hour))
		sameAccount(b, 2)
		b.requests.claims = [][]Claim{{claim("c1", "fra", t0)}, {claim("c2", "fra", t0)}}
		first, second := runSession(t, c).Results[0], runSession(t, c).Results[0]
		if !first.LoggedIn || first.SessionReused || second.LoggedIn || !second.SessionReused || second.Outcome != NoSlot {
			t.Fatalf("results = %+v, %+v; want a login, then a reused session", first, second)
		}
		if n := len(b.sim.Logins()); n != 1 {
			t.Errorf("portal saw %d logins, want 1", n)
		}
		r1, r2 := b.pool.releases[0], b.pool.releases[1]
		if !r1.LoggedIn || len(r1.SessionState) == 0 || r1.SessionMaxAge != 6*time.Hour || r1.ClearSession {
			t.Errorf("first release = %v (max age %s); want logged in with the session for 6h", r1, r1.SessionMaxAge)
		}
		if r2.LoggedIn || len(r2.SessionState) == 0 || r2.ClearSession {
			t.Errorf("second release = %v; want not logged in, the session kept", r2)
		}
		if m.logins != 1 || m.checks != 2 {
			t.Errorf("metrics: %d logins in %d checks, want 1 in 2", m.logins, m.checks)
		}
		if st := c.Status(); len(st.Recent) != 2 || !st.Recent[0].Results[0].SessionReused || st.Recent[1].Results[0].SessionReused {
			t.Errorf("status = %+v; want the second session's check shown as reused", st.Recent)
		}
	})

	t.Run("SessionThePortalEndedLogsInWithinTheCheck", func(t *testing.T) {
		t.Parallel()
		c, b, _ := sessionThePortalEnded(t)
		second := runSession(t, c).Results[0]
		if second.Outcome != NoSlot || !second.LoggedIn || second.SessionReused {
			t.Fatalf("second result = %+v; want no_slot after a new login", second)
		}
		if r := b.pool.releases[1]; !r.LoggedIn || len(r.SessionState) == 0 || r.SessionMaxAge != 0 {
			t.Errorf("second release = %v; want logged in with the new session, the pool's default age", r)
		}
	})

	// A kept session the portal ended, and a login that then fails: the
	// dead session must not outlive the check in the pool.
	t.Run("SessionThePortalEndedIsClearedWhenTheNewLoginFails", func(t *testing.T) {
		t.Parallel()
		c, b, a := sessionThePortalEnded(t)
		if err := b.sim.SetBehaviour(a.email, sim.Behaviour{Kind: sim.Maintenance, Only: sim.LoginArea}); err != nil {
			t.Fatal(err)
		}
		second := runSession(t, c).Results[0]
		if second.Outcome != Error || second.SessionReused || !strings.Contains(second.Detail, "maintenance") {
			t.Fatalf("second result = %+v; want an error at the login's maintenance page", second)
		}
		if r := b.pool.releases[1]; !r.ClearSession || r.SessionState != nil {
			t.Errorf("second release = %v; want the dead session cleared", r)
		}
		if _, kept := b.pool.sessions[a.id]; kept {
			t.Error("the pool still keeps the dead session")
		}
	})

	// Issue 13's benchmark runs portalsim with a session lifetime of 30
	// minutes: a kept session older than that is logged out by the portal,
	// and the check logs in again within itself.
	t.Run("SessionPastThePortalsLifetimeLogsInWithinTheCheck", func(t *testing.T) {
		t.Parallel()
		c, b := setupWith(t, Config{}, keepFor(0))
		sameAccount(b, 2)
		b.requests.claims = [][]Claim{{claim("c1", "fra", t0)}, {claim("c2", "fra", t0)}}
		var mu sync.Mutex
		now := time.Now()
		b.sim.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
		if err := b.sim.SetSessionLifetime(30 * time.Minute); err != nil {
			t.Fatal(err)
		}
		first := runSession(t, c).Results[0]
		mu.Lock()
		now = now.Add(30 * time.Minute)
		mu.Unlock()
		second := runSession(t, c).Results[0]
		if !first.LoggedIn || second.Outcome != NoSlot || !second.LoggedIn || second.SessionReused {
			t.Fatalf("results = %+v, %+v; want a login, then no_slot after a new login in the same check", first, second)
		}
		if n := len(b.sim.Logins()); n != 2 {
			t.Errorf("portal saw %d logins, want 2", n)
		}
		if r := b.pool.releases[1]; !r.LoggedIn || len(r.SessionState) == 0 {
			t.Errorf("second release = %v; want logged in, with the new session", r)
		}
	})

	t.Run("DeadSessionWithSpentBudgetReleasesWithoutLogin", func(t *testing.T) {
		t.Parallel()
		c, b := setupWith(t, Config{}, keepFor(0))
		sameAccount(b, 2)
		b.requests.claims = [][]Claim{{claim("c1", "fra", t0)}, {claim("c2", "fra", t0)}}
		runSession(t, c)
		b.pool.noLogin = map[int64]bool{1: true}
		if err := b.sim.SetBehaviour(b.pool.accounts[0].email, sim.Behaviour{Kind: sim.LoggedOut}); err != nil {
			t.Fatal(err)
		}
		second := runSession(t, c).Results[0]
		if second.Outcome != Unused || second.LoggedIn {
			t.Fatalf("second result = %+v; want unused (no failure of the account) without a login", second)
		}
		if r := b.pool.releases[1]; r.Outcome != Unused || r.LoggedIn || !r.ClearSession || r.SessionState != nil {
			t.Errorf("second release = %v; want unused, not logged in, session cleared", r)
		}
		if n := len(b.sim.Logins()); n != 1 {
			t.Errorf("portal saw %d logins, want only the first check's", n)
		}
		if rep := b.requests.report("c2"); rep.Outcome != ReportFailed {
			t.Errorf("report = %+v; want failed", rep)
		}
	})

	t.Run("ProfileThatLogsOutClearsTheSession", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, Config{})
		b.requests.claims = [][]Claim{{claim("c1", "fra", t0)}}
		res := runSession(t, c).Results[0]
		if !res.LoggedIn || res.SessionReused {
			t.Fatalf("result = %+v", res)
		}
		if r := b.pool.releases[0]; !r.LoggedIn || r.SessionState != nil || !r.ClearSession {
			t.Errorf("release = %v; want logged in, session cleared", r)
		}
	})
}

// sessionThePortalEnded runs a session that keeps its account's portal
// session, then ends that session at the portal (the account is deleted
// and added again): the next session finds it logged out.
func sessionThePortalEnded(t *testing.T) (*Checker, *testBundle, account) {
	t.Helper()
	c, b := setupWith(t, Config{}, keepFor(0))
	sameAccount(b, 2)
	t0 := time.Now()
	b.requests.claims = [][]Claim{{claim("c1", "fra", t0)}, {claim("c2", "fra", t0)}}
	runSession(t, c)
	a := b.pool.accounts[0]
	if !b.sim.DeleteAccount(a.email) { // ends its portal sessions
		t.Fatal("delete account")
	}
	if err := b.sim.PutAccount(sim.Account{Email: a.email, Password: a.password}); err != nil {
		t.Fatal(err)
	}
	return c, b, a
}
