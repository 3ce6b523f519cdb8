package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// twinRacer plays another replica's Acquire with the same acquire_id that
// wins every race on the unique index and is gone again before the loser
// looks its lease up (its caller gave up and it was handed back): at the
// start of each Acquire statement it inserts the twin's usage row
// uncommitted, commits it once the statement waits on it, and deletes it
// when the statement has answered.
type twinRacer struct {
	t         *testing.T
	db        *pgxpool.Pool // the twin's own connections, untraced
	acquireID string
	accountID int64

	mu    sync.Mutex
	races int
}

// raceRound is one Acquire statement's race: the twin's row and the
// commit in flight. It travels in the statement's context, so that only
// that statement's end deletes the row (other queries of the pool, such
// as the previous round's hand-back, end meanwhile: taking a shared
// field, their end deleted the twin's row while the statement still
// waited on it, and the Acquire then logged its lease).
type raceRound struct {
	leaseID string
	done    chan struct{}
}

type raceRoundKey struct{}

func (r *twinRacer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if !strings.Contains(d.SQL, "WITH asked AS") {
		return ctx
	}
	bg := context.WithoutCancel(ctx)
	tx, err := r.db.Begin(bg)
	if err != nil {
		r.t.Error(err)
		return ctx
	}
	leaseID := uuid.NewString()
	if _, err := tx.Exec(bg, `INSERT INTO accountpool.usage_log (lease_id, account_id, fencing_token, mission_code, holder, acquired_at, acquire_id)
		VALUES ($1, $2, 1, 'fra', 'checker-1', now(), $3)`, leaseID, r.accountID, r.acquireID); err != nil {
		r.t.Error(err)
		_ = tx.Rollback(bg)
		return ctx
	}
	done := make(chan struct{})
	r.mu.Lock()
	r.races++
	r.mu.Unlock()
	go func() {
		defer close(done)
		// Commit once the Acquire statement waits for this row's index
		// entry (or after a generous bound: then it raced nothing).
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			var waiting bool
			if err := r.db.QueryRow(bg, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%WITH asked AS%'
				AND query NOT LIKE '%pg_stat_activity%')`).Scan(&waiting); err != nil {
				r.t.Error(err)
				break
			}
			if waiting {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := tx.Commit(bg); err != nil {
			r.t.Error(err)
		}
	}()
	return context.WithValue(ctx, raceRoundKey{}, raceRound{leaseID: leaseID, done: done})
}

func (r *twinRacer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	round, ok := ctx.Value(raceRoundKey{}).(raceRound)
	if !ok {
		return
	}
	<-round.done
	if _, err := r.db.Exec(context.WithoutCancel(ctx), `DELETE FROM accountpool.usage_log WHERE lease_id = $1`, round.leaseID); err != nil {
		r.t.Error(err)
	}
}

// TestAnAcquireThatLosesEveryRaceOfItsIDIsAborted: an Acquire whose
// acquire_id another replica's twin logs first, again and again, with that
// twin's lease gone each time before it can be looked up, stops after its
// fourth statement. It answered NOT_FOUND, which says the caller named
// something missing; the caller did nothing wrong and may retry: ABORTED,
// which the Checker retries with the same acquire_id. Nothing stays
// leased.
func TestAnAcquireThatLosesEveryRaceOfItsIDIsAborted(t *testing.T) {
	t.Parallel()
	r := &twinRacer{t: t, acquireID: uuid.NewString()}
	c, b := setup(t, withoutBatching(), withTracer(r))
	ids := addAccounts(t, c, 5)
	twinDB, err := pgxpool.New(testkit.Context(t), b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(twinDB.Close)
	r.db, r.accountID = twinDB, ids[4]

	_, err = c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-1", AcquireId: r.acquireID,
		LeaseTtl: durationpb.New(time.Minute)})
	r.mu.Lock()
	races := r.races
	r.mu.Unlock()
	t.Logf("%d Acquire statements raced; answer: %v", races, err)
	testkit.WantCode(t, err, codes.Aborted)
	if err := b.store.Drain(testkit.Context(t)); err != nil { // the losers' hand-backs
		t.Fatal(err)
	}
	if leased, logged := leasedAndLogged(t, b); leased != 0 || logged != 0 {
		t.Errorf("%d accounts leased, %d usage rows after the lost races; want none", leased, logged)
	}
}
