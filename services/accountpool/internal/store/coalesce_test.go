package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/app"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/accountpool/migrations"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// These tests line callers up into one batch: a transaction of the test's
// holds a row lock that the batch in flight waits for (a usage row it is
// to insert or to end), the next callers queue behind it
// (PendingAcquires, PendingReleases), and the lock goes when they are all
// queued.

type testBundle struct {
	db    *pgxpool.Pool
	dbURL string
	// ids are the accounts in LRU order, least recently used first (the
	// reverse of their id order).
	ids []int64
	now time.Time
	cfg domain.Config
}

func setup(t *testing.T, accounts int) (*store.Store, *testBundle) {
	t.Helper()
	dbURL := pgtest.NewURL(t, migrations.Set)
	db, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	b := &testBundle{db: db, dbURL: dbURL, ids: make([]int64, accounts),
		now: time.Now().UTC().Truncate(time.Microsecond), cfg: domain.DefaultConfig()}
	// The tests line callers up behind row locks for as long as that
	// takes on a loaded machine: a batch must not give up on the lock.
	s := store.New(db, store.WithBatching(), store.WithReleaseLockWait(time.Hour))
	seal := func(int64) ([]byte, error) { return []byte("sealed"), nil }
	for i := range accounts {
		a, err := s.CreateAccount(testkit.Context(t), fmt.Sprintf("acc%d@example.com", i), "", seal, b.now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		// Account i was used i+1 minutes ago: the last created is the
		// least recently used.
		if _, err := db.Exec(testkit.Context(t), `UPDATE accountpool.accounts SET last_used_at = $2 WHERE id = $1`,
			a.ID, b.now.Add(-time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		b.ids[accounts-1-i] = a.ID
	}
	return s, b
}

// holdRow runs q in a transaction of its own, which keeps the row locks
// it takes until the returned function rolls it back.
func holdRow(t *testing.T, b *testBundle, q string, args ...any) (release func()) {
	t.Helper()
	conn, err := pgx.Connect(testkit.Context(t), b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(testkit.Context(t), q, args...); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := tx.Rollback(context.Background()); err != nil {
				t.Error(err)
			}
			conn.Close(context.Background())
		})
	}
	t.Cleanup(release)
	return release
}

// claimLeaseID makes the insert of leaseID's usage row wait: a
// transaction of the test's inserts it first (for the account the
// batches will not reach) and holds it until released.
func claimLeaseID(t *testing.T, b *testBundle, leaseID string) (release func()) {
	t.Helper()
	return holdRow(t, b, `INSERT INTO accountpool.usage_log (lease_id, account_id, fencing_token, mission_code, holder, acquired_at)
		VALUES ($1, $2, 0, 'test', 'test', now())`, leaseID, b.ids[len(b.ids)-1])
}

// lockUsageRow makes the end of leaseID's lease wait until released.
func lockUsageRow(t *testing.T, b *testBundle, leaseID string) (release func()) {
	t.Helper()
	return holdRow(t, b, `SELECT 1 FROM accountpool.usage_log WHERE lease_id = $1 FOR UPDATE`, leaseID)
}

// waitingForLocks counts the statements of this database waiting for a
// lock.
func waitingForLocks(t *testing.T, b *testBundle) int {
	t.Helper()
	var n int
	if err := b.db.QueryRow(testkit.Context(t), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type acquireResult struct {
	leased store.Leased
	params store.AcquireParams
	err    error
}

func acquireAsync(ctx context.Context, s *store.Store, b *testBundle, holder string, ttl time.Duration) chan acquireResult {
	return acquireAsyncAs(ctx, s, b, uuid.NewString(), holder, ttl)
}

func acquireAsyncAs(ctx context.Context, s *store.Store, b *testBundle, leaseID, holder string, ttl time.Duration) chan acquireResult {
	p := store.AcquireParams{LeaseID: leaseID, MissionCode: "fra", Holder: holder, TTL: ttl, Now: b.now, MaxLogins: b.cfg.MaxLoginsPerDay}
	out := make(chan acquireResult, 1)
	go func() {
		l, err := s.Acquire(ctx, p)
		out <- acquireResult{l, p, err}
	}()
	return out
}

func mustAcquire(t *testing.T, s *store.Store, b *testBundle, holder string, ttl time.Duration) acquireResult {
	t.Helper()
	r := <-acquireAsync(testkit.Context(t), s, b, holder, ttl)
	if r.err != nil {
		t.Fatalf("acquire for %s: %v", holder, r.err)
	}
	return r
}

func TestAcquireBatchLeasesInLRUOrderToCallersInArrivalOrder(t *testing.T) {
	t.Parallel()
	s, b := setup(t, 6)
	firstID := uuid.NewString()
	unblock := claimLeaseID(t, b, firstID)
	results := []chan acquireResult{acquireAsyncAs(testkit.Context(t), s, b, firstID, "caller-0", 5*time.Minute)}
	waitFor(t, "the first batch to wait", func() bool { return waitingForLocks(t, b) == 1 })
	for k := 1; k <= 3; k++ {
		results = append(results, acquireAsync(testkit.Context(t), s, b, fmt.Sprintf("caller-%d", k), 5*time.Minute))
		waitFor(t, fmt.Sprintf("caller %d to queue", k), func() bool { return s.PendingAcquires() == k })
	}
	unblock()
	for k, ch := range results {
		r := <-ch
		if r.err != nil {
			t.Fatalf("caller %d: %v", k, r.err)
		}
		if got := r.leased.Account.ID; got != b.ids[k] {
			t.Errorf("caller %d got account %d, want %d (LRU order %v)", k, got, b.ids[k], b.ids)
		}
		var account int64
		var holder string
		if err := b.db.QueryRow(testkit.Context(t), `SELECT account_id, holder FROM accountpool.usage_log WHERE lease_id = $1`,
			r.params.LeaseID).Scan(&account, &holder); err != nil || account != r.leased.Account.ID || holder != r.params.Holder {
			t.Errorf("caller %d: usage row (%d, %q, %v), want its lease of account %d", k, account, holder, err, r.leased.Account.ID)
		}
	}
	if st := s.BatchStats(); st.AcquireBatches != 2 || st.AcquireCalls != 4 {
		t.Fatalf("batches %+v, want the first caller alone, then the other three in one", st)
	}
}

// queueAcquires queues n Acquires (queued-0...) behind the batch in
// flight, each with a context of its own to cancel; leaseIDs gives some
// of them their lease id (one claimLeaseID holds up).
func queueAcquires(t *testing.T, s *store.Store, b *testBundle, n int, leaseIDs map[int]string) ([]context.CancelFunc, []chan acquireResult) {
	t.Helper()
	var cancels []context.CancelFunc
	var queued []chan acquireResult
	for k := range n {
		ctx, cancel := context.WithCancel(testkit.Context(t))
		cancels = append(cancels, cancel)
		leaseID, ok := leaseIDs[k]
		if !ok {
			leaseID = uuid.NewString()
		}
		queued = append(queued, acquireAsyncAs(ctx, s, b, leaseID, fmt.Sprintf("queued-%d", k), 5*time.Minute))
		waitFor(t, fmt.Sprintf("caller %d to queue", k), func() bool { return s.PendingAcquires() == k+1 })
	}
	return cancels, queued
}

func TestAcquireBatchLeaksNoAccountToCallersThatGaveUp(t *testing.T) {
	t.Parallel()
	s, b := setup(t, 5)
	firstID, queued1ID := uuid.NewString(), uuid.NewString()
	unblock1 := claimLeaseID(t, b, firstID)
	// The next batch (queued-1 and queued-2) waits in its turn.
	unblock2 := claimLeaseID(t, b, queued1ID)
	first := acquireAsyncAs(testkit.Context(t), s, b, firstID, "first", 5*time.Minute)
	waitFor(t, "the first batch to wait", func() bool { return waitingForLocks(t, b) == 1 })

	cancels, queued := queueAcquires(t, s, b, 3, map[int]string{1: queued1ID})
	// queued-0 gives up before its batch starts: it is never leased.
	cancels[0]()
	if r := <-queued[0]; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("queued-0 gave up, got %v", r.err)
	}

	unblock1()
	if r := <-first; r.err != nil || r.leased.Account.ID != b.ids[0] {
		t.Fatalf("first: %v, account %d", r.err, r.leased.Account.ID)
	}
	waitFor(t, "the second batch to wait", func() bool { return waitingForLocks(t, b) == 1 })
	// queued-1 gives up while its batch runs: its lease is handed back.
	cancels[1]()
	if r := <-queued[1]; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("queued-1 gave up, got %v", r.err)
	}
	unblock2()
	r := <-queued[2]
	if r.err != nil {
		t.Fatalf("queued-2: %v", r.err)
	}
	// queued-1 was leased the second least recently used account and
	// queued-2 the third, in arrival order.
	if r.leased.Account.ID != b.ids[2] {
		t.Fatalf("queued-2 got account %d, want %d", r.leased.Account.ID, b.ids[2])
	}

	waitFor(t, "the abandoned lease to be handed back", func() bool {
		var leased int
		if err := b.db.QueryRow(testkit.Context(t), `SELECT count(*) FROM accountpool.accounts WHERE lease_id IS NOT NULL`).Scan(&leased); err != nil {
			t.Fatal(err)
		}
		return leased == 2
	})
	var usageRows int
	if err := b.db.QueryRow(testkit.Context(t), `SELECT count(*) FROM accountpool.usage_log`).Scan(&usageRows); err != nil || usageRows != 2 {
		t.Fatalf("%d usage rows (%v), want the two leases handed out", usageRows, err)
	}
	// The account handed back is as it was: free, its place in the LRU
	// order and its use count unchanged.
	a, err := s.GetAccount(testkit.Context(t), b.ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if a.State(b.now) != domain.StateAvailable || a.UseCount != 0 || a.LastUsedAt == nil || !a.LastUsedAt.Equal(b.now.Add(-4*time.Minute)) {
		t.Fatalf("account handed back: %s, use count %d, last used %v", a.State(b.now), a.UseCount, a.LastUsedAt)
	}
	next := mustAcquire(t, s, b, "next", 5*time.Minute)
	if next.leased.Account.ID != b.ids[1] {
		t.Fatalf("next acquire got account %d, want the one handed back (%d)", next.leased.Account.ID, b.ids[1])
	}
}

// statementCounter counts the statements that contain a text, and holds
// each of them back until hold closes.
type statementCounter struct {
	text string
	hold chan struct{}
	cnt  atomic.Int64
}

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, c.text) {
		c.cnt.Add(1)
		<-c.hold
	}
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Many callers who give up while their batch runs (Postgres is slow) have
// their leases handed back in one statement for the batch, not one each:
// the hand-backs take one connection, and the rest of the replica's work
// does not queue behind them for the pool. Drain waits for the batch, even
// with no caller left in it, and for the hand-back.
func TestAbandonedLeasesOfABatchGoBackInOneStatement(t *testing.T) {
	t.Parallel()
	const callers = 12
	_, b := setup(t, callers+3)
	cfg, err := pgxpool.ParseConfig(b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	handBacks := &statementCounter{text: "DELETE FROM accountpool.usage_log", hold: make(chan struct{})}
	cfg.ConnConfig.Tracer = handBacks
	db, err := pgxpool.NewWithConfig(testkit.Context(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	s := store.New(db, store.WithBatching(), store.WithReleaseLockWait(time.Hour))

	firstID, queuedID := uuid.NewString(), uuid.NewString()
	unblock1 := claimLeaseID(t, b, firstID)
	unblock2 := claimLeaseID(t, b, queuedID)
	first := acquireAsyncAs(testkit.Context(t), s, b, firstID, "first", 5*time.Minute)
	waitFor(t, "the first batch to wait", func() bool { return waitingForLocks(t, b) == 1 })
	cancels, queued := queueAcquires(t, s, b, callers, map[int]string{0: queuedID})
	unblock1()
	if r := <-first; r.err != nil {
		t.Fatalf("first: %v", r.err)
	}
	waitFor(t, "the second batch to wait", func() bool { return s.PendingAcquires() == 0 && waitingForLocks(t, b) == 1 })
	for k, cancel := range cancels {
		cancel()
		if r := <-queued[k]; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("queued-%d gave up, got %v", k, r.err)
		}
	}
	// Every caller of the second batch is gone, and the server would stop
	// now: Drain still waits for the batch, which will commit leases.
	short, cancel := context.WithTimeout(testkit.Context(t), 100*time.Millisecond)
	defer cancel()
	if err := s.Drain(short); err == nil {
		t.Error("Drain returned while a batch whose callers all gave up was in flight")
	}
	unblock2()
	// The batch commits the twelve leases, then hands them back; the
	// tracer holds the hand-back, and Drain waits for it.
	waitFor(t, "a hand-back", func() bool { return handBacks.cnt.Load() > 0 })
	short, cancel = context.WithTimeout(testkit.Context(t), 100*time.Millisecond)
	defer cancel()
	if err := s.Drain(short); err == nil {
		t.Fatal("Drain returned while a hand-back was held")
	}
	close(handBacks.hold)
	if err := s.Drain(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	var leased int
	if err := b.db.QueryRow(testkit.Context(t), `SELECT count(*) FROM accountpool.accounts WHERE lease_id IS NOT NULL`).Scan(&leased); err != nil || leased != 1 {
		t.Fatalf("%d accounts leased (%v) after Drain; want only the first caller's", leased, err)
	}
	if n := handBacks.cnt.Load(); n != 1 {
		t.Fatalf("%d hand-back statements for %d callers who gave up in one batch, want 1", n, callers)
	}
}

// The caller that leads a batch runs it in its own goroutine, so it
// cannot leave while the batch runs; if it gave up meanwhile (a 5 s
// deadline against a Postgres 2 s away each way in the chaos suite's
// pg-latency-2s), it must not be answered a lease it will not receive,
// and the lease must be handed back rather than held until its TTL.
func TestAcquireBatchLeaderThatGaveUpGetsNoLease(t *testing.T) {
	t.Parallel()
	s, b := setup(t, 3)
	leaderID := uuid.NewString()
	unblock := claimLeaseID(t, b, leaderID)
	ctx, cancel := context.WithCancel(testkit.Context(t))
	leader := acquireAsyncAs(ctx, s, b, leaderID, "leader", 5*time.Minute)
	waitFor(t, "the leader's batch to wait", func() bool { return waitingForLocks(t, b) == 1 })
	cancel()
	unblock()
	if r := <-leader; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("the leader gave up while its batch ran, got %v (account %d)", r.err, r.leased.Account.ID)
	}
	wantHandedBack(t, s, b, "the leader")
	next := mustAcquire(t, s, b, "next", 5*time.Minute)
	if next.leased.Account.ID != b.ids[0] {
		t.Fatalf("next acquire got account %d, want the one handed back (%d)", next.leased.Account.ID, b.ids[0])
	}
}

// cancelAtEnd cancels a context when a statement that contains a text
// has been read to its end: the commit is done, the caller is gone.
type cancelAtEnd struct {
	text   string
	cancel context.CancelFunc
}

func (c *cancelAtEnd) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, c.text) {
		return context.WithValue(ctx, c, true)
	}
	return ctx
}

func (c *cancelAtEnd) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if ctx.Value(c) != nil {
		c.cancel()
	}
}

// Without batching, a caller who gives up after its Acquire committed (a
// deadline that ends as the answer is read) gets no lease either, and the
// lease goes back rather than being held until its TTL.
func TestUnbatchedAcquireThatGaveUpGetsNoLease(t *testing.T) {
	t.Parallel()
	_, b := setup(t, 2)
	ctx, cancel := context.WithCancel(testkit.Context(t))
	defer cancel()
	cfg, err := pgxpool.ParseConfig(b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = &cancelAtEnd{text: "WITH ORDINALITY AS r(lease_id", cancel: cancel}
	db, err := pgxpool.NewWithConfig(testkit.Context(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	s := store.New(db)
	if r := <-acquireAsyncAs(ctx, s, b, uuid.NewString(), "gone", 5*time.Minute); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("the caller gave up as its Acquire committed, got %v (account %d)", r.err, r.leased.Account.ID)
	}
	wantHandedBack(t, s, b, "the caller")
}

// wantHandedBack drains s and checks that no account is leased and no
// usage row is left: the lease of who, who gave up, went back.
func wantHandedBack(t *testing.T, s *store.Store, b *testBundle, who string) {
	t.Helper()
	if err := s.Drain(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	var leased, usageRows int
	if err := b.db.QueryRow(testkit.Context(t), `SELECT (SELECT count(*) FROM accountpool.accounts WHERE lease_id IS NOT NULL),
		(SELECT count(*) FROM accountpool.usage_log)`).Scan(&leased, &usageRows); err != nil {
		t.Fatal(err)
	}
	if leased != 0 || usageRows != 0 {
		t.Fatalf("%d accounts leased, %d usage rows after %s gave up; want its lease handed back", leased, usageRows, who)
	}
}

type releaseResult struct {
	rel store.Released
	err error
}

func TestReleaseBatchAnswersEachLeaseOnItsOwn(t *testing.T) {
	t.Parallel()
	s, b := setup(t, 7)
	ctx := testkit.Context(t)
	leases := make([]acquireResult, 7)
	for k := range leases {
		ttl := 10 * time.Minute
		if k == 4 {
			ttl = time.Minute
		}
		leases[k] = mustAcquire(t, s, b, fmt.Sprintf("holder-%d", k), ttl)
	}
	params := func(k int, at time.Duration) store.ReleaseParams {
		return store.ReleaseParams{LeaseID: leases[k].params.LeaseID, FencingToken: leases[k].leased.Account.FencingToken,
			Outcome: domain.OutcomeNoSlot, Now: b.now.Add(at)}
	}
	// Lease 1 is released already (its release will be replayed), lease 5
	// renewed (its row changed since it was granted), lease 4 expired by a
	// replica whose clock is ahead.
	if _, err := s.Release(ctx, b.cfg, params(1, time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Renew(ctx, leases[5].params.LeaseID, leases[5].leased.Account.FencingToken, b.now.Add(20*time.Minute), b.now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireLeases(ctx, b.cfg, b.now.Add(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("expired %d (%v), want lease 4 alone", n, err)
	}
	before := s.BatchStats()

	unblock := lockUsageRow(t, b, leases[0].params.LeaseID)
	releaseAsync := func(p store.ReleaseParams) chan releaseResult {
		out := make(chan releaseResult, 1)
		go func() {
			rel, err := s.Release(ctx, b.cfg, p)
			out <- releaseResult{rel, err}
		}()
		return out
	}
	valid0 := releaseAsync(params(0, 30*time.Second))
	waitFor(t, "the first release batch to wait", func() bool { return waitingForLocks(t, b) == 1 })
	valid3 := releaseAsync(params(3, 30*time.Second))
	twice2a := releaseAsync(params(2, 30*time.Second))
	twice2b := releaseAsync(params(2, 30*time.Second))
	renewed5 := releaseAsync(params(5, 30*time.Second))
	expired4 := releaseAsync(params(4, 30*time.Second))
	// Lease 2's second release finds its first in the batch: it goes the
	// unbatched way, so four wait in the batch.
	waitFor(t, "four releases to queue", func() bool { return s.PendingReleases() == 4 })
	replayed1, err := s.Release(ctx, b.cfg, params(1, 40*time.Second))
	if err != nil || !replayed1.Replay {
		t.Fatalf("replayed release of lease 1: %+v, %v", replayed1, err)
	}
	stale := params(6, 40*time.Second)
	stale.FencingToken--
	if _, err := s.Release(ctx, b.cfg, stale); !errors.Is(err, domain.ErrLeaseNotHeld) || !strings.Contains(err.Error(), "stale fencing token") {
		t.Fatalf("release with a stale token: %v", err)
	}
	unblock()

	for name, ch := range map[string]chan releaseResult{"lease 0": valid0, "lease 3": valid3, "renewed lease 5": renewed5} {
		if r := <-ch; r.err != nil || r.rel.Replay || r.rel.Account.LeaseID != "" || r.rel.MissionCode != "fra" {
			t.Errorf("%s: %+v, %v", name, r.rel, r.err)
		}
	}
	if r := <-expired4; !errors.Is(r.err, domain.ErrLeaseNotHeld) || !strings.Contains(r.err.Error(), "lease_expired") {
		t.Errorf("expired lease 4: %v", r.err)
	}
	a, bb := <-twice2a, <-twice2b
	if a.err != nil || bb.err != nil || a.rel.Replay == bb.rel.Replay || !a.rel.Account.UpdatedAt.Equal(bb.rel.Account.UpdatedAt) {
		t.Errorf("lease 2 released twice: %+v (%v) and %+v (%v), want one release and one replay of it", a.rel, a.err, bb.rel, bb.err)
	}
	after := s.BatchStats()
	if got := after.ReleaseBatches - before.ReleaseBatches; got != 2 || after.ReleaseCalls-before.ReleaseCalls != 5 {
		t.Errorf("release batches %+v -> %+v, want lease 0 alone, then four in one", before, after)
	}
	want := map[int]string{0: "no_slot", 1: "no_slot", 2: "no_slot", 3: "no_slot", 4: "lease_expired", 5: "no_slot", 6: ""}
	for k, res := range want {
		var got *string
		if err := b.db.QueryRow(ctx, `SELECT result FROM accountpool.usage_log WHERE lease_id = $1`, leases[k].params.LeaseID).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if (got == nil && res != "") || (got != nil && *got != res) {
			t.Errorf("lease %d ended as %v, want %q", k, got, res)
		}
	}
}

// TestBatchedReleasesWakeWaitersOnAnotherReplica: three releases on one
// replica in two batches wake three Acquires waiting on another, with one
// notification per batch.
func TestBatchedReleasesWakeWaitersOnAnotherReplica(t *testing.T) {
	t.Parallel()
	storeA, b := setup(t, 3)
	storeB := store.New(b.db, store.WithBatching(), store.WithReleaseLockWait(time.Hour))
	raw, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	// The accounts' passwords must open for the pool to hand them out.
	for _, id := range b.ids {
		ct, err := keys.Encrypt([]byte("pw"), app.PasswordAD(id))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.Exec(testkit.Context(t), `UPDATE accountpool.accounts SET password_ciphertext = $2 WHERE id = $1`, id, ct); err != nil {
			t.Fatal(err)
		}
	}
	cfg := domain.DefaultConfig()
	cfg.Cooldown = 0
	quiet := app.WithLogger(slog.New(slog.DiscardHandler))
	replicaA, replicaB := app.New(storeA, keys, cfg, quiet), app.New(storeB, keys, cfg, quiet)
	ctx, stop := context.WithCancel(testkit.Context(t))
	defer stop()
	go func() { _ = replicaB.Listen(ctx, b.db.Config().ConnConfig) }()

	// A listener of the test's own counts the notifications.
	counter, err := pgx.Connect(ctx, b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer counter.Close(context.Background())
	if _, err := counter.Exec(ctx, "LISTEN "+store.FreeChannel); err != nil {
		t.Fatal(err)
	}

	var held []domain.Lease
	for range 3 {
		l, err := replicaA.Acquire(ctx, app.AcquireRequest{MissionCode: "fra", Holder: "a"})
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
	}
	got := make(chan error, 3)
	for k := range 3 {
		go func() {
			l, err := replicaB.Acquire(ctx, app.AcquireRequest{MissionCode: "bel", Holder: fmt.Sprintf("waiter-%d", k), Wait: time.Minute})
			if err == nil && l.Holder != fmt.Sprintf("waiter-%d", k) {
				err = fmt.Errorf("waiter-%d got %+v", k, l)
			}
			got <- err
		}()
	}
	waitFor(t, "the waiters to find no account", func() bool { return storeB.BatchStats().AcquireCalls >= 3 })

	unblock := lockUsageRow(t, b, held[0].LeaseID)
	releases := make(chan error, 3)
	releaseAsync := func(l domain.Lease) {
		go func() {
			_, err := replicaA.Release(ctx, app.ReleaseRequest{LeaseID: l.LeaseID, FencingToken: l.FencingToken, Outcome: domain.OutcomeNoSlot})
			releases <- err
		}()
	}
	releaseAsync(held[0])
	waitFor(t, "the first release batch to wait", func() bool { return waitingForLocks(t, b) == 1 })
	releaseAsync(held[1])
	releaseAsync(held[2])
	waitFor(t, "two releases to queue", func() bool { return storeA.PendingReleases() == 2 })
	unblock()
	for range 3 {
		if err := <-releases; err != nil {
			t.Fatal(err)
		}
	}
	// The leases run for 5 minutes and the waiters wait up to one: only a
	// wake-up serves them.
	for range 3 {
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("waiter: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a waiter was not woken by the releases on the other replica")
		}
	}
	notifications := 0
	for {
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := counter.WaitForNotification(wctx)
		cancel()
		if err != nil {
			break
		}
		notifications++
	}
	if notifications != 2 {
		t.Fatalf("%d notifications for 3 releases in 2 batches, want one per batch", notifications)
	}
}

// TestBatchEndsAndGrantsLeasesInOneTransaction: the Releases and the
// Acquires that queue behind a batch go together in the next one, one
// transaction, releases first: an account released there is leased to an
// Acquire of the same batch when the outcome rule leaves it leasable (no
// cooldown here), and the lease's end and the new lease commit together.
func TestBatchEndsAndGrantsLeasesInOneTransaction(t *testing.T) {
	t.Parallel()
	s, b := setup(t, 2)
	b.cfg.Cooldown = 0
	ctx := testkit.Context(t)
	held := mustAcquire(t, s, b, "holder", 5*time.Minute) // the least recently used, ids[0]

	// The first batch leases ids[1], the only free account, and waits for
	// its usage row (claimed for the leased account, which the first batch
	// does not pick and the release does not wait for).
	firstID := uuid.NewString()
	unblock := holdRow(t, b, `INSERT INTO accountpool.usage_log (lease_id, account_id, fencing_token, mission_code, holder, acquired_at)
		VALUES ($1, $2, 0, 'test', 'test', now())`, firstID, b.ids[0])
	first := acquireAsyncAs(ctx, s, b, firstID, "first", 5*time.Minute)
	waitFor(t, "the first batch to wait", func() bool { return waitingForLocks(t, b) == 1 })
	before := s.BatchStats()

	released := make(chan releaseResult, 1)
	go func() {
		rel, err := s.Release(ctx, b.cfg, store.ReleaseParams{LeaseID: held.params.LeaseID,
			FencingToken: held.leased.Account.FencingToken, Outcome: domain.OutcomeNoSlot, Now: b.now})
		released <- releaseResult{rel, err}
	}()
	waitFor(t, "the release to queue", func() bool { return s.PendingReleases() == 1 })
	next := acquireAsync(ctx, s, b, "next", 5*time.Minute)
	waitFor(t, "the acquire to queue", func() bool { return s.PendingAcquires() == 1 })
	unblock()

	if r := <-first; r.err != nil || r.leased.Account.ID != b.ids[1] {
		t.Fatalf("first: account %d, %v; want %d", r.leased.Account.ID, r.err, b.ids[1])
	}
	if r := <-released; r.err != nil || r.rel.Replay {
		t.Fatalf("release: %+v, %v", r.rel, r.err)
	}
	r := <-next
	if r.err != nil || r.leased.Account.ID != b.ids[0] {
		t.Fatalf("next: account %d, %v; want the account released in its batch (%d)", r.leased.Account.ID, r.err, b.ids[0])
	}
	if r.leased.Account.FencingToken != held.leased.Account.FencingToken+1 {
		t.Errorf("next's fencing token %d, want %d", r.leased.Account.FencingToken, held.leased.Account.FencingToken+1)
	}
	after := s.BatchStats()
	if after.Batches-before.Batches != 1 || after.ReleaseCalls-before.ReleaseCalls != 1 || after.AcquireCalls-before.AcquireCalls != 1 {
		t.Errorf("batches %+v -> %+v, want the release and the acquire in one", before, after)
	}
	// One transaction wrote the end of the old lease and the new one.
	var ended, begun string
	var result *string
	if err := b.db.QueryRow(ctx, `SELECT xmin::text, result FROM accountpool.usage_log WHERE lease_id = $1`,
		held.params.LeaseID).Scan(&ended, &result); err != nil || result == nil || *result != "no_slot" {
		t.Fatalf("old lease's usage row: %v, %v", result, err)
	}
	if err := b.db.QueryRow(ctx, `SELECT xmin::text FROM accountpool.usage_log WHERE lease_id = $1`,
		r.params.LeaseID).Scan(&begun); err != nil {
		t.Fatal(err)
	}
	if ended != begun {
		t.Errorf("the old lease ended in transaction %s and the new one began in %s, want one", ended, begun)
	}
}

// TestAReleaseWaitingForALockHoldsNoAcquireBack: a Release whose row is
// locked elsewhere (a renewal, an update, an expiry of the same account
// in flight) waits for it in its own caller, not in the batch: the
// Acquires that queue behind it are answered while the lock is still held.
func TestAReleaseWaitingForALockHoldsNoAcquireBack(t *testing.T) {
	t.Parallel()
	_, b := setup(t, 3)
	s := store.New(b.db, store.WithBatching(), store.WithReleaseLockWait(100*time.Millisecond))
	ctx := testkit.Context(t)
	held := mustAcquire(t, s, b, "holder", 5*time.Minute)

	unblock := lockUsageRow(t, b, held.params.LeaseID)
	released := make(chan releaseResult, 1)
	go func() {
		rel, err := s.Release(ctx, b.cfg, store.ReleaseParams{LeaseID: held.params.LeaseID,
			FencingToken: held.leased.Account.FencingToken, Outcome: domain.OutcomeNoSlot, Now: b.now})
		released <- releaseResult{rel, err}
	}()
	waitFor(t, "the release batch to wait for the lock", func() bool { return waitingForLocks(t, b) == 1 })
	next := acquireAsync(ctx, s, b, "next", 5*time.Minute)
	select {
	case r := <-next:
		if r.err != nil || r.leased.Account.ID == held.leased.Account.ID {
			t.Fatalf("next: account %d, %v; want another free account", r.leased.Account.ID, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the acquire is still waiting behind the release's row lock")
	}
	select {
	case r := <-released:
		t.Fatalf("the release ended while its usage row was locked: %+v, %v", r.rel, r.err)
	default:
	}
	unblock()
	if r := <-released; r.err != nil || r.rel.Replay || r.rel.Account.LeaseID != "" {
		t.Fatalf("release after the lock: %+v, %v", r.rel, r.err)
	}
	var result *string
	if err := b.db.QueryRow(ctx, `SELECT result FROM accountpool.usage_log WHERE lease_id = $1`,
		held.params.LeaseID).Scan(&result); err != nil || result == nil || *result != "no_slot" {
		t.Fatalf("the lease's usage row: %v, %v", result, err)
	}
}
