package session

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/browser/browsertest"
	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// The session rules run against the real browser driver and an in-process
// portalsim; only the two services are fakes (fakePool, fakeRequests),
// which record every call in one ordered log. One browser serves the
// package, as it serves the checker.
func TestMain(m *testing.M) { browsertest.Main(m) }

func shared(t *testing.T) *browser.Manager { return browsertest.Shared(t) }

// events is the ordered log of calls the fakes saw.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, fmt.Sprintf(format, args...))
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// want fails t unless the calls were exactly want, in order.
func (e *events) want(t *testing.T, want ...string) {
	t.Helper()
	if got := e.all(); !slices.Equal(got, want) {
		t.Fatalf("calls:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func (e *events) count(prefix string) int {
	n := 0
	for _, l := range e.all() {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

type account struct {
	id              int64
	email, password string
}

// fakePool hands out its accounts in order; busy errors, if any, come
// first, one per Acquire.
type fakePool struct {
	ev       *events
	mu       sync.Mutex
	accounts []account
	next     int
	busy     []error
	renewErr error
	// holdAcquire makes an Acquire for the mission wait until its channel
	// is closed.
	holdAcquire map[string]chan struct{}
	// sessions are the accounts' kept session states, stored and cleared
	// by Release as the pool does; noLogin marks accounts whose login
	// budget is spent. releases are every Release.
	sessions map[int64][]byte
	noLogin  map[int64]bool
	releases []Release
	// acquireIDs are the acquire ids of every Acquire, in order.
	acquireIDs []string
	// givenBack are the acquire ids of every GiveBack.
	givenBack []string
}

func (p *fakePool) Acquire(_ context.Context, req AcquireRequest) (Lease, error) {
	p.mu.Lock()
	hold := p.holdAcquire[req.Mission]
	p.mu.Unlock()
	if hold != nil {
		<-hold
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acquireIDs = append(p.acquireIDs, req.AcquireID)
	if len(p.busy) > 0 {
		err := p.busy[0]
		p.busy = p.busy[1:]
		p.ev.add("acquire %s: %v", req.Mission, err)
		return Lease{}, err
	}
	if p.next >= len(p.accounts) {
		p.ev.add("acquire %s: none left", req.Mission)
		return Lease{}, &NoAccountFreeError{RetryAfter: time.Hour}
	}
	a := p.accounts[p.next]
	p.next++
	p.ev.add("acquire %s: account %d", req.Mission, a.id)
	return Lease{ID: fmt.Sprintf("lease-%d", a.id), FencingToken: 1, AccountID: a.id, Email: a.email, Password: a.password,
		ExpiresAt: time.Now().Add(req.TTL), SessionState: p.sessions[a.id], NoLogin: p.noLogin[a.id]}, nil
}

func (p *fakePool) Renew(_ context.Context, l Lease, ttl time.Duration) (time.Time, error) {
	p.mu.Lock()
	err := p.renewErr
	p.mu.Unlock()
	p.ev.add("renew account %d", l.AccountID)
	return time.Now().Add(ttl), err
}

func (p *fakePool) Release(_ context.Context, l Lease, r Release) error {
	p.ev.add("release account %d %s", l.AccountID, r.Outcome)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releases = append(p.releases, r)
	switch {
	case r.ClearSession || r.Outcome == LoginFail || r.Outcome == Banned:
		delete(p.sessions, l.AccountID)
	case len(r.SessionState) > 0:
		if p.sessions == nil {
			p.sessions = map[int64][]byte{}
		}
		p.sessions[l.AccountID] = r.SessionState
	}
	return nil
}

func (p *fakePool) GiveBack(_ context.Context, acquireID, _ string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.givenBack = append(p.givenBack, acquireID)
	return ErrNoLease
}

type fakeRequests struct {
	ev      *events
	mu      sync.Mutex
	claims  [][]Claim // one batch per ClaimDueMissions
	reports []Report
	// matched answers how many requests a report made SLOT_FOUND; nil
	// answers one per slot.
	matched func(Report) int
	// paused are the claims whose portal Requests paused after the claim:
	// ConfirmClaim refuses them (and they are over). confirmed counts the
	// ConfirmClaim calls.
	paused    map[string]bool
	confirmed int
	// logConfirms adds every ConfirmClaim to the event log; holdReport
	// makes the report of a claim wait until its channel is closed.
	logConfirms bool
	holdReport  map[string]chan struct{}
}

func (r *fakeRequests) ConfirmClaim(_ context.Context, claimID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.confirmed++
	if r.logConfirms {
		r.ev.add("confirm %s", claimID)
	}
	if r.paused[claimID] {
		r.ev.add("confirm %s: refused", claimID)
		return fmt.Errorf("confirm: %w (portal paused)", ErrClaimLost)
	}
	return nil
}

func (r *fakeRequests) ClaimDueMissions(_ context.Context, checkerID string, max int, ttl time.Duration) ([]Claim, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ev.add("claim max=%d", max)
	if len(r.claims) == 0 {
		return nil, nil
	}
	batch := r.claims[0]
	r.claims = r.claims[1:]
	for i := range batch {
		batch[i].ExpiresAt = time.Now().Add(ttl)
	}
	return batch, nil
}

func (r *fakeRequests) ReportCheckResult(_ context.Context, rep Report) (int, error) {
	r.mu.Lock()
	hold := r.holdReport[rep.ClaimID]
	r.mu.Unlock()
	if hold != nil {
		r.ev.add("reporting %s %s", rep.ClaimID, rep.Outcome)
		<-hold
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ev.add("report %s %s account %d", rep.ClaimID, rep.Outcome, rep.AccountID)
	r.reports = append(r.reports, rep)
	if r.matched != nil {
		return r.matched(rep), nil
	}
	return len(rep.Slots), nil
}

func (r *fakeRequests) report(claimID string) Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rep := range r.reports {
		if rep.ClaimID == claimID {
			return rep
		}
	}
	return Report{}
}

// fakeClock records the waits asked of it. Instant, a wait ends at once
// (and moves Now on); otherwise it never ends, and waiting is signalled.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	instant bool
	waits   []time.Duration
	waiting chan time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	if c.instant {
		c.now = c.now.Add(d)
		ch <- c.now
	} else if c.waiting != nil {
		c.waiting <- d
	}
	return ch
}

func (c *fakeClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.waits)
}

type testBundle struct {
	ev       *events
	pool     *fakePool
	requests *fakeRequests
	sim      *sim.Sim
	clock    *fakeClock
}

// setup starts a portalsim with accounts 1-3 and missions fra and bel
// (London / tourism), and a checker on the real driver.
func setup(t *testing.T, cfg Config) (*Checker, *testBundle) {
	t.Helper()
	return setupWith(t, cfg, nil)
}

// setupWith is setup with the profile tuned.
func setupWith(t *testing.T, cfg Config, tune func(*profile.Profile)) (*Checker, *testBundle) {
	t.Helper()
	return setupOn(t, shared(t), cfg, tune)
}

// setupOn is setupWith on a browser of its own.
func setupOn(t *testing.T, mgr *browser.Manager, cfg Config, tune func(*profile.Profile)) (*Checker, *testBundle) {
	t.Helper()
	return setupDriver(t, mgr, cfg, tune, driverOpts{})
}

// driverOpts change what setupDriver serves and drives.
type driverOpts struct {
	// front, unless nil, answers in front of portalsim (next).
	front func(next http.Handler) http.Handler
	// trace, unless nil, is told of every step the driver runs
	// (portal.Config.Trace).
	trace func(portal.StepTrace)
}

// setupDriver is setupOn with the portal or the driver changed by o.
func setupDriver(t *testing.T, mgr *browser.Manager, cfg Config, tune func(*profile.Profile), o driverOpts) (*Checker, *testBundle) {
	t.Helper()
	var accts []account
	var simAccts []sim.Account
	for i := 1; i <= 3; i++ {
		a := account{id: int64(i), email: fmt.Sprintf("acc%d@example.com", i), password: fmt.Sprintf("pw-%d-secret", i)}
		accts = append(accts, a)
		simAccts = append(simAccts, sim.Account{Email: a.email, Password: a.password})
	}
	mission := func(code string) sim.Mission {
		return sim.Mission{Code: code, Name: code, Centres: []string{"London"}, VisaCategories: []string{"tourism"}}
	}
	s, err := sim.New(sim.Config{Accounts: simAccts, Missions: []sim.Mission{mission("fra"), mission("bel")}})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = s
	if o.front != nil {
		h = o.front(s)
	}
	_, prof := browsertest.ServePortal(t, h, tune)
	pcfg := portal.Config{Profile: prof, Browser: mgr, ArtifactsDir: t.TempDir()}
	if o.trace != nil {
		pcfg.Trace, pcfg.TraceDir = o.trace, t.TempDir()
	}
	drv, err := portal.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	b := &testBundle{ev: ev, pool: &fakePool{ev: ev, accounts: accts}, requests: &fakeRequests{ev: ev}, sim: s,
		clock: &fakeClock{now: time.Now(), instant: true}}
	if cfg.Clock == nil {
		cfg.Clock = b.clock
	}
	cfg.CheckerID = "checker-test"
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return New(cfg, b.pool, b.requests, drv), b
}

// runSession runs a session of c and fails t if it cannot.
func runSession(t *testing.T, c *Checker) Summary {
	t.Helper()
	sum, err := c.RunSession(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// march4 is a free slot of the centre and category claim's request asks for.
var march4 = sim.Slot{Centre: "London", VisaCategory: "tourism", Date: "2030-03-04", Time: "10:00"}

func claim(id, mission string, created time.Time) Claim {
	return Claim{ID: id, Mission: mission, Requests: []Request{{
		ID: "req-" + id, Centre: "London", VisaCategory: "tourism", CreatedAt: created,
	}}}
}

func TestSession(t *testing.T) {
	t.Parallel()
	t0 := time.Now()

	t.Run("LeasesChecksReportsThenReleasesInClaimOrder", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, Config{MaxConcurrent: 1})
		// bel comes first from Requests, but fra's request is older.
		b.requests.claims = [][]Claim{{claim("c-bel", "bel", t0.Add(time.Second)), claim("c-fra", "fra", t0)}}
		if err := b.sim.SetSlots("fra", "London", "tourism", []sim.Slot{march4}); err != nil {
			t.Fatal(err)
		}
		sum := runSession(t, c)
		b.ev.want(t,
			"claim max=2",
			"acquire fra: account 1", "report c-fra slots_found account 1", "release account 1 success",
			"acquire bel: account 2", "report c-bel no_slot account 2", "release account 2 no_slot",
		)
		if sum.Number != 1 || len(sum.Results) != 2 {
			t.Fatalf("summary = %+v", sum)
		}
		fra := sum.Results[0]
		if fra.Mission != "fra" || fra.Outcome != Success || fra.AccountID != 1 || fra.Slots != 1 || fra.Matched != 1 {
			t.Errorf("fra result = %+v", fra)
		}
		rep := b.requests.report("c-fra")
		if len(rep.Slots) != 1 || rep.Slots[0] != (portal.Slot{Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: "2030-03-04", Time: "10:00"}) {
			t.Errorf("fra report slots = %+v", rep.Slots)
		}
		if st := c.Status(); len(st.InFlight) != 0 || len(st.Recent) != 1 {
			t.Errorf("status after the session = %+v", st)
		}
	})

	// The pause stops claims; a mission claimed just before it must not
	// reach the portal either: the check asks Requests right before its
	// first request, and the account goes back unused.
	t.Run("ACheckWhosePortalWasPausedSinceTheClaimSendsThePortalNothing", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, Config{})
		b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0)}}
		b.requests.paused = map[string]bool{"c-fra": true}
		sum := runSession(t, c)
		b.ev.want(t, "claim max=10", "acquire fra: account 1", "confirm c-fra: refused", "release account 1 unused")
		if r := sum.Results[0]; r.Outcome != Unused || r.LoggedIn {
			t.Fatalf("result of the refused check: %+v", r)
		}
		if rel := b.pool.releases[0]; rel.LoggedIn || rel.ClearSession || len(rel.SessionState) > 0 {
			t.Fatalf("release of the refused check: %v", rel)
		}
		if got := b.sim.Requests(); len(got) != 0 {
			t.Fatalf("the portal saw %d requests of the refused check, the first %v", len(got), got[0])
		}
	})

	// A wall one check met may pause the portal: the checker's other checks
	// ask Requests only once its report is in, so that they see the pause.
	t.Run("OtherChecksAskOnlyOnceAWallIsReported", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, Config{MaxConcurrent: 2})
		b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0), claim("c-bel", "bel", t0.Add(time.Second))}}
		b.requests.logConfirms = true
		report, acquireBel := make(chan struct{}), make(chan struct{})
		b.requests.holdReport = map[string]chan struct{}{"c-fra": report}
		b.pool.holdAcquire = map[string]chan struct{}{"bel": acquireBel}
		if err := b.sim.SetBehaviour(b.pool.accounts[0].email, sim.Behaviour{Kind: sim.Captcha}); err != nil {
			t.Fatal(err)
		}
		done := make(chan Summary, 1)
		go func() { done <- runSession(t, c) }()
		waitFor := func(what string) {
			t.Helper()
			deadline := time.Now().Add(time.Minute)
			for !slices.Contains(b.ev.all(), what) {
				if time.Now().After(deadline) {
					t.Fatalf("no %q in %v", what, b.ev.all())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		waitFor("reporting c-fra captcha")
		close(acquireBel)
		// bel's check gets ready to open the portal, and waits there for
		// the report (given 3s to show that it does not).
		for range 150 {
			if slices.Contains(b.ev.all(), "confirm c-bel") {
				close(report)
				t.Fatalf("bel's check asked Requests while fra's wall was being reported: %v", b.ev.all())
			}
			time.Sleep(20 * time.Millisecond)
		}
		close(report)
		<-done
		log := b.ev.all()
		if i, j := slices.Index(log, "report c-fra captcha account 1"), slices.Index(log, "confirm c-bel"); i < 0 || j < i {
			t.Fatalf("bel's check asked Requests before fra's wall was reported:\n%s", strings.Join(log, "\n"))
		}
	})

	t.Run("EveryCheckAsksRequestsBeforeItOpensThePortal", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, Config{})
		b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0), claim("c-bel", "bel", t0)}}
		runSession(t, c)
		if b.requests.confirmed != 2 || len(b.sim.Logins()) != 2 {
			t.Fatalf("%d confirmations, %d logins; want 2 of each", b.requests.confirmed, len(b.sim.Logins()))
		}
	})

	t.Run("SuccessIsWhatRequestsMatchedNotWhatTheCheckerThinks", func(t *testing.T) {
		t.Parallel()
		// Both missions show the same slot; Requests (the fake) says it
		// matched a request of bel's and none of fra's, and the pool hears
		// exactly that.
		c, b := setup(t, Config{MaxConcurrent: 1})
		b.requests.matched = func(rep Report) int {
			if rep.ClaimID == "c-bel" {
				return 1
			}
			return 0
		}
		b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0), claim("c-bel", "bel", t0.Add(time.Second))}}
		for _, m := range []string{"fra", "bel"} {
			if err := b.sim.SetSlots(m, "London", "tourism", []sim.Slot{march4}); err != nil {
				t.Fatal(err)
			}
		}
		sum := runSession(t, c)
		b.ev.want(t,
			"claim max=2",
			"acquire fra: account 1", "report c-fra slots_found account 1", "release account 1 no_slot",
			"acquire bel: account 2", "report c-bel slots_found account 2", "release account 2 success",
		)
		if fra, bel := sum.Results[0], sum.Results[1]; fra.Outcome != NoSlot || fra.Matched != 0 || fra.Slots != 1 ||
			bel.Outcome != Success || bel.Matched != 1 {
			t.Errorf("results = %+v", sum.Results)
		}
	})

	t.Run("WaitsTheDelayThePoolGivesThenAsksAgain", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, Config{})
		b.pool.busy = []error{&NoAccountFreeError{RetryAfter: 7 * time.Second}}
		b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0)}}
		sum := runSession(t, c)
		if got := b.clock.recorded(); !slices.Equal(got, []time.Duration{7 * time.Second}) {
			t.Errorf("waits = %v, want exactly the pool's 7s", got)
		}
		r := sum.Results[0]
		if r.Outcome != NoSlot || r.AccountID != 1 || r.RetryAfter != 7*time.Second {
			t.Errorf("result = %+v", r)
		}
		if n := b.ev.count("acquire fra"); n != 2 {
			t.Errorf("%d Acquire calls, want 2", n)
		}
	})

	// An Acquire whose answer was lost may have leased an account: it is
	// asked again with the same acquire_id, which gets that lease back
	// from the pool instead of a second one. Each mission's Acquire has an
	// id of its own.
	t.Run("AsksAgainWithTheSameAcquireIDAfterAnAcquireGotNoAnswer", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, Config{})
		lost := fmt.Errorf("acquire: %w: %w: rpc error: code = DeadlineExceeded", ErrUnavailable, ErrNoAnswer)
		b.pool.busy = []error{lost}
		b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0)}, {claim("c-bel", "bel", t0)}}
		sum := runSession(t, c)
		if r := sum.Results[0]; r.Outcome != NoSlot || r.AccountID != 1 || b.ev.count("acquire fra") != 2 {
			t.Errorf("result = %+v after %d Acquire calls; want no_slot with account 1 on the second", r, b.ev.count("acquire fra"))
		}
		runSession(t, c)
		b.pool.mu.Lock()
		ids := slices.Clone(b.pool.acquireIDs)
		b.pool.mu.Unlock()
		if len(ids) != 3 || ids[0] == "" || ids[1] != ids[0] || ids[2] == ids[0] || ids[2] == "" {
			t.Errorf("acquire ids %q; want the retry with the first's id, the next mission's with another", ids)
		}
	})

	t.Run("AsksAgainWhileThePoolIsUnreachable", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, Config{})
		b.pool.busy = []error{fmt.Errorf("acquire: %w: rpc error: code = Unavailable", ErrUnavailable)}
		b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0)}}
		sum := runSession(t, c)
		if r := sum.Results[0]; r.Outcome != NoSlot || r.AccountID != 1 || b.ev.count("acquire fra") != 2 {
			t.Errorf("result = %+v after %d Acquire calls; want no_slot with account 1 on the second", r, b.ev.count("acquire fra"))
		}
	})

	t.Run("DoesNotWaitForAnAccountThatFreesAfterTheClaimsHalfLife", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, Config{ClaimTTL: time.Minute})
		b.pool.busy = []error{&NoAccountFreeError{RetryAfter: 31 * time.Second}}
		b.requests.claims = [][]Claim{{claim("c-bel", "bel", t0)}}
		pause := c.loopOnce()
		want := []string{"claim max=10", "acquire bel: " + (&NoAccountFreeError{RetryAfter: 31 * time.Second}).Error(), "report c-bel failed account 0"}
		b.ev.want(t, want...)
		if got := b.clock.recorded(); len(got) != 0 {
			t.Errorf("waited %v inside the session, want no wait", got)
		}
		if pause != 31*time.Second {
			t.Errorf("the loop pauses %s, want the pool's 31s", pause)
		}
		r := c.Status().Recent[0].Results[0]
		if r.Outcome != NoAccount || r.RetryAfter != 31*time.Second || r.AccountID != 0 {
			t.Errorf("result = %+v", r)
		}
		if rep := b.requests.report("c-bel"); !strings.Contains(rep.Detail, "no account free") {
			t.Errorf("report detail %q does not say why", rep.Detail)
		}
	})

	t.Run("RenewsTheLeaseOfALongCheck", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t, Config{LeaseTTL: 400 * time.Millisecond})
		if err := b.sim.SetBehaviour("acc1@example.com", sim.Behaviour{DelayMS: 1200, Only: sim.SlotAPI}); err != nil {
			t.Fatal(err)
		}
		b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0)}}
		sum := runSession(t, c)
		if r := sum.Results[0]; r.Outcome != NoSlot {
			t.Fatalf("result = %+v", r)
		}
		if n := b.ev.count("renew account 1"); n < 2 {
			t.Errorf("%d renewals during a check three lease lengths long, want at least 2", n)
		}
		if n := b.ev.count("release account 1 no_slot"); n != 1 {
			t.Errorf("released %d times, want once", n)
		}
	})

	// The lease lost once the check is at the portal (lost before the tab
	// opens, the account would go back unused): the pool says so, or it
	// cannot be reached past the lease's end (it lets the lease expire and
	// may lease the account to another checker). The check ends, and the
	// lease is not released.
	for _, tc := range []struct {
		name     string
		ttl      time.Duration
		delayMS  int
		renewErr error
	}{
		{"ALostLeaseEndsTheCheckWithoutARelease", 400 * time.Millisecond, 10000, fmt.Errorf("renew: %w", ErrLeaseLost)},
		{"ALeaseThatCouldNotBeRenewedEndsTheCheckWhenItExpires", time.Second, 30000, fmt.Errorf("renew: %w: connection refused", ErrUnavailable)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, b := setup(t, Config{LeaseTTL: tc.ttl})
			if err := b.sim.SetBehaviour("acc1@example.com", sim.Behaviour{DelayMS: tc.delayMS, Only: sim.SlotAPI}); err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			go func() {
				for len(b.sim.Logins()) == 0 && ctx.Err() == nil {
					time.Sleep(10 * time.Millisecond)
				}
				b.pool.mu.Lock()
				b.pool.renewErr = tc.renewErr
				b.pool.mu.Unlock()
			}()
			b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0)}}
			sum := runSession(t, c)
			if r := sum.Results[0]; r.Outcome != Error || !strings.Contains(r.Detail, ErrLeaseLost.Error()) {
				t.Errorf("result = %+v; want error, the lease lost", r)
			}
			if n := b.ev.count("release"); n != 0 {
				t.Errorf("released a lost lease (%d calls)", n)
			}
			if rep := b.requests.report("c-fra"); rep.Outcome != ReportFailed {
				t.Errorf("report = %+v", rep)
			}
		})
	}

	// A pod whose Chromium will not start must not push the accounts it
	// leases toward quarantine: they never reached the portal.
	t.Run("ABrowserThatCannotOpenATabReleasesTheAccountUnused", func(t *testing.T) {
		t.Parallel()
		broken := browser.New(browser.Config{ExecPath: "/nonexistent/chromium", NoSandbox: browsertest.NoSandbox()})
		t.Cleanup(func() { _ = broken.Close() })
		c, b := setupOn(t, broken, Config{}, nil)
		b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0)}}
		sum := runSession(t, c)
		b.ev.want(t, "claim max=10", "acquire fra: account 1", "report c-fra failed account 1", "release account 1 unused")
		if r := sum.Results[0]; r.Outcome != Unused || !strings.Contains(r.Detail, "browser") {
			t.Errorf("result = %+v", r)
		}
		if rel := b.pool.releases[0]; rel.LoggedIn || rel.ClearSession {
			t.Errorf("release = %v", rel)
		}
	})

	t.Run("DrainStopsWaitingAndReportsTheClaim", func(t *testing.T) {
		t.Parallel()
		clock := &fakeClock{now: time.Now(), waiting: make(chan time.Duration, 1)}
		c, b := setup(t, Config{Clock: clock})
		b.pool.busy = []error{&NoAccountFreeError{RetryAfter: 20 * time.Second}}
		b.requests.claims = [][]Claim{{claim("c-fra", "fra", t0)}}
		done := make(chan Summary)
		go func() {
			sum, _ := c.RunSession(context.Background(), 0)
			done <- sum
		}()
		<-clock.waiting // the mission waits for the pool's delay
		if st := c.Status(); len(st.InFlight) != 1 || st.InFlight[0].AccountID != 0 {
			t.Errorf("in flight while waiting = %+v", st.InFlight)
		}
		c.Drain(time.Minute)
		sum := <-done
		if r := sum.Results[0]; r.Outcome != NoAccount || !strings.Contains(r.Detail, "stopping") {
			t.Errorf("result = %+v", r)
		}
		if rep := b.requests.report("c-fra"); rep.Outcome != ReportFailed {
			t.Errorf("the claim was not ended: report %+v", rep)
		}
		if _, err := c.RunSession(t.Context(), 0); err != ErrStopping {
			t.Errorf("RunSession after Drain: %v, want ErrStopping", err)
		}
	})
}
