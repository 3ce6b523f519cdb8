package server_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/app"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// cancelOnRelease cancels the caller's context as the lease's release
// statement starts: the caller (a Checker whose call timed out) gave up
// while grant ended the lease it could not hand out.
type cancelOnRelease struct {
	cancel context.CancelFunc
	fired  atomic.Bool
}

func (c *cancelOnRelease) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "FROM accountpool.usage_log u JOIN accountpool.accounts a") && c.fired.CompareAndSwap(false, true) {
		c.cancel()
	}
	return ctx
}
func (c *cancelOnRelease) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestAnotherKeysetsAcquireWhoseCallerGaveUpChargesNothing: on a replica
// whose keyset lacks the password's key, grant ends the lease 'unused'. It
// did so with the caller's context: a caller that gave up during that
// release (its deadline) left the lease held, to expire as lease_expired,
// a failure and a cooldown against an account that was never used.
func TestAnotherKeysetsAcquireWhoseCallerGaveUpChargesNothing(t *testing.T) {
	t.Parallel()
	c, b := setup(t, withConfig(noCooldown), withoutBatching())
	ids := addAccounts(t, c, 1)
	keys := anotherKeyset(t)
	ctx, cancel := context.WithCancel(testkit.Context(t))
	defer cancel()
	cfg, err := pgxpool.ParseConfig(b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &cancelOnRelease{cancel: cancel}
	cfg.ConnConfig.Tracer = tr
	db, err := pgxpool.NewWithConfig(testkit.Context(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	wrong := app.New(store.New(db), keys, b.pool.Config(), app.WithClock(b.clock.Now))
	if _, err := wrong.Acquire(ctx, app.AcquireRequest{MissionCode: "fra", Holder: "h"}); err == nil {
		t.Fatal("another keyset's Acquire got a lease")
	}
	if !tr.fired.Load() {
		t.Fatal("the release never ran")
	}
	b.clock.Advance(2 * b.pool.Config().LeaseTTL)
	if _, err := b.pool.ExpireLeases(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	wantUncharged(t, c, ids[0], "after another keyset's Acquire whose caller gave up")
}

// cancelOnLog cancels the caller's context when the pool logs a message
// containing msg: here, as grant finds the password sealed with a key it
// does not hold, just before it ends the lease.
type cancelOnLog struct {
	slog.Handler
	msg    string
	cancel context.CancelFunc
	fired  *atomic.Bool
}

func (h cancelOnLog) Enabled(context.Context, slog.Level) bool { return true }

func (h cancelOnLog) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) && h.fired.CompareAndSwap(false, true) {
		h.cancel()
	}
	return nil
}

// TestAnotherKeysetsAcquireWhoseCallerGaveUpBeforeTheReleaseChargesNothing:
// as TestAnotherKeysetsAcquireWhoseCallerGaveUpChargesNothing, with the
// caller gone just before grant's release, on both store paths. With
// batching, the release's batch.do returned at once on the cancelled
// context, so the release never ran.
func TestAnotherKeysetsAcquireWhoseCallerGaveUpBeforeTheReleaseChargesNothing(t *testing.T) {
	t.Parallel()
	for _, batched := range []bool{true, false} {
		t.Run(map[bool]string{true: "batched", false: "unbatched"}[batched], func(t *testing.T) {
			t.Parallel()
			c, b := setup(t, withConfig(noCooldown))
			ids := addAccounts(t, c, 1)
			keys := anotherKeyset(t)
			ctx, cancel := context.WithCancel(testkit.Context(t))
			defer cancel()
			var fired atomic.Bool
			logger := slog.New(cancelOnLog{msg: "does not hold", cancel: cancel, fired: &fired})
			var opts []store.Option
			if batched {
				opts = append(opts, store.WithBatching())
			}
			st := store.New(b.db, opts...)
			wrong := app.New(st, keys, b.pool.Config(), app.WithClock(b.clock.Now), app.WithLogger(logger))
			if _, err := wrong.Acquire(ctx, app.AcquireRequest{MissionCode: "fra", Holder: "h"}); err == nil {
				t.Fatal("another keyset's Acquire got a lease")
			}
			if !fired.Load() {
				t.Fatal("grant never found the key missing")
			}
			if err := st.Drain(testkit.Context(t)); err != nil {
				t.Fatal(err)
			}
			b.clock.Advance(2 * b.pool.Config().LeaseTTL)
			if _, err := b.pool.ExpireLeases(testkit.Context(t)); err != nil {
				t.Fatal(err)
			}
			wantUncharged(t, c, ids[0], "after another keyset's Acquire whose caller gave up")
		})
	}
}

// anotherKeyset is a new keyset, which holds none of the keys the pool's
// passwords were sealed with.
func anotherKeyset(t *testing.T) *secrets.Keyset {
	t.Helper()
	other, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.Parse(other)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
