package store_test

import (
	"io"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/accountpool/migrations"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestAnInterruptedAcquireIDIndexBuildIsNotTakenForBuilt: migration 00006
// builds usage_log_acquire_id_key CONCURRENTLY. A build cut short (the
// migration Job's pod killed at activeDeadlineSeconds, a cancel, a lost
// connection) leaves an INVALID index and 00006 unrecorded. The next
// `migrate up` (the Job's own retry, backoffLimit 4, or any AccountPool
// starting: it migrates first) finds the name taken, skips the build (IF
// NOT EXISTS) and records 00006 applied. Every Acquire then fails: its
// ON CONFLICT (acquire_id) needs a valid unique index ("there is no unique
// or exclusion constraint matching the ON CONFLICT specification"),
// whether or not the caller sent an acquire_id.
func TestAnInterruptedAcquireIDIndexBuildIsNotTakenForBuilt(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	db := pgtest.NewPool(t)
	run := func(cmd string) error { return migrations.Set.Command(ctx, db, []string{cmd}, io.Discard) }
	if err := run("up"); err != nil {
		t.Fatal(err)
	}
	if err := run("down"); err != nil { // back to before 00006
		t.Fatal(err)
	}

	// An open transaction with a snapshot (any long read) makes the
	// concurrent build wait for it; the build is then cut short, as a
	// killed migration pod's is.
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT txid_current()`); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- run("up") }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE '%CREATE UNIQUE INDEX CONCURRENTLY%' AND query NOT LIKE '%pg_stat_activity%' AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the index build never waited")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := <-first; err == nil {
		t.Fatal("the cut build's migration succeeded")
	} else {
		t.Logf("first up (cut short): %v", err)
	}
	_ = tx.Rollback(ctx)

	// The retry, as the Job or a starting AccountPool runs it.
	if err := run("up"); err != nil {
		t.Logf("second up: %v (refusing is fine; the test goes on to what a pool would then do)", err)
		return
	}
	var valid bool
	if err := db.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'accountpool.usage_log_acquire_id_key'::regclass`).Scan(&valid); err != nil {
		t.Fatal(err)
	}
	s := store.New(db)
	seal := func(int64) ([]byte, error) { return []byte("sealed"), nil }
	now := time.Now().UTC().Truncate(time.Microsecond)
	if _, err := s.CreateAccount(ctx, "acc@example.com", "", seal, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, err = s.Acquire(ctx, store.AcquireParams{LeaseID: uuid.NewString(), MissionCode: "fra", Holder: "checker-1",
		TTL: time.Minute, Now: now, MaxLogins: domain.DefaultConfig().MaxLoginsPerDay})
	if err != nil {
		t.Fatalf("after a retried migrate up reported 00006 applied (usage_log_acquire_id_key valid: %v), Acquire fails: %v", valid, err)
	}
}
