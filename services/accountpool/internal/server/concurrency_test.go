package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/app"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/server"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/accountpool/migrations"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/faultproxy"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestTwoReplicasNeverLeaseOneAccountTwice runs two servers on one database
// and many clients leasing and releasing for a few seconds, then checks the
// usage log: the leases of each account never overlap in time, and each
// lease a client got has its row. It runs without batching, and with it
// (the default) at 64 clients, where each replica's statements serve
// several callers at once.
func TestTwoReplicasNeverLeaseOneAccountTwice(t *testing.T) {
	t.Parallel()
	t.Run("Unbatched", func(t *testing.T) {
		t.Parallel()
		b1, _ := twoReplicasLeasing(t, 12, 5, withoutBatching())
		if st := b1.store.BatchStats(); st.AcquireBatches != 0 {
			t.Fatalf("batches without batching: %+v", st)
		}
	})
	t.Run("Batched64Clients", func(t *testing.T) {
		t.Parallel()
		b1, b2 := twoReplicasLeasing(t, 64, 24)
		// Each replica's Acquires coalesce (64 clients on 24 accounts
		// keep them waiting together); Releases coalesce at least on one:
		// on a loaded machine one replica may get only a few leases, each
		// released alone.
		var releases, releaseBatches int64
		for i, b := range []*testBundle{b1, b2} {
			st := b.store.BatchStats()
			if st.AcquireCalls <= st.AcquireBatches {
				t.Fatalf("replica %d: %+v: no Acquire statement served more than one call", i+1, st)
			}
			releases, releaseBatches = releases+st.ReleaseCalls, releaseBatches+st.ReleaseBatches
			t.Logf("replica %d: %.1f acquires and %.1f releases per statement", i+1,
				float64(st.AcquireCalls)/float64(st.AcquireBatches), float64(st.ReleaseCalls)/float64(st.ReleaseBatches))
		}
		if releases <= releaseBatches {
			t.Fatalf("%d releases in %d statements: no Release statement served more than one call", releases, releaseBatches)
		}
	})
}

// twoReplicasLeasing runs the clients of TestTwoReplicasNeverLeaseOneAccountTwice.
func twoReplicasLeasing(t *testing.T, workers, accounts int, opts ...option) (*testBundle, *testBundle) {
	noCooldown := withConfig(func(c *domain.Config) { c.Cooldown = 0 })
	c1, b := setup(t, append([]option{withRealClock(), noCooldown}, opts...)...)
	c2, b2 := setupOn(t, b.dbURL, append([]option{withRealClock(), noCooldown, withKeyset(b.keyset)}, opts...)...)
	addAccounts(t, c1, accounts)

	var granted atomic.Int64
	end := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	// Which holder each account is leased to, as the clients see it: set
	// after Acquire answers, cleared before Release is sent.
	var holders sync.Map
	for w := range workers {
		c := c1
		if w%2 == 1 {
			c = c2
		}
		wg.Go(func() {
			holder := fmt.Sprintf("worker-%d", w)
			// Calls get contexts of their own, not one that runs out with
			// the test: a lease granted to a call the client gave up on
			// would be left for expiry, which is another test.
			for time.Now().Before(end) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				resp, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: holder, Wait: durationpb.New(time.Second)})
				if status.Code(err) == codes.ResourceExhausted {
					cancel()
					continue
				}
				if err != nil {
					cancel()
					errs <- fmt.Errorf("%s acquire: %w", holder, err)
					return
				}
				granted.Add(1)
				l := resp.GetLease()
				if prev, loaded := holders.LoadOrStore(l.GetAccountId(), holder); loaded {
					cancel()
					errs <- fmt.Errorf("account %d handed to %s while %s held it", l.GetAccountId(), holder, prev)
					return
				}
				holders.Delete(l.GetAccountId())
				_, err = c.Release(ctx, &apv1.ReleaseRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_NO_SLOT})
				cancel()
				if err != nil {
					errs <- fmt.Errorf("%s release: %w", holder, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	rows, err := b.db.Query(testkit.Context(t), `SELECT account_id, acquired_at, released_at, result, fencing_token
		FROM accountpool.usage_log ORDER BY account_id, acquired_at, fencing_token`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var (
		n               int
		lastAccount     int64
		lastEnd         time.Time
		lastToken       int64
		acquired, ended time.Time
		account, token  int64
		result          *string
		releasedAt      *time.Time
	)
	for rows.Next() {
		if err := rows.Scan(&account, &acquired, &releasedAt, &result, &token); err != nil {
			t.Fatal(err)
		}
		n++
		if result == nil || releasedAt == nil {
			t.Fatalf("lease of account %d left behind", account)
		}
		ended = *releasedAt
		if account == lastAccount {
			if acquired.Before(lastEnd) {
				t.Fatalf("account %d leased at %s while its previous lease ran until %s", account, acquired, lastEnd)
			}
			if token <= lastToken {
				t.Fatalf("account %d: fencing token %d after %d", account, token, lastToken)
			}
		}
		lastAccount, lastEnd, lastToken = account, ended, token
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("only %d leases in the run: the test exercised too little", n)
	}
	if int64(n) != granted.Load() {
		t.Fatalf("%d usage rows for %d leases granted", n, granted.Load())
	}
	var held int
	if err := b.db.QueryRow(testkit.Context(t), `SELECT count(*) FROM accountpool.accounts WHERE lease_id IS NOT NULL`).Scan(&held); err != nil || held != 0 {
		t.Fatalf("%d accounts still leased (%v)", held, err)
	}
	t.Logf("%d leases over %d accounts, no overlap", n, accounts)
	return b, b2
}

func TestWaitingAcquire(t *testing.T) {
	t.Parallel()

	t.Run("ReleaseOnAnotherReplicaWakesTheWaiter", func(t *testing.T) {
		t.Parallel()
		noCooldown := withConfig(func(c *domain.Config) { c.Cooldown = 0 })
		c1, b := setup(t, withRealClock(), noCooldown, withListener())
		c2, _ := setupOn(t, b.dbURL, withRealClock(), noCooldown, withKeyset(b.keyset))
		addAccounts(t, c1, 1)
		held := acquire(t, c2, "fra") // leased for the default 5 minutes

		got := make(chan *apv1.Lease, 1)
		go func() {
			resp, err := c1.Acquire(context.Background(), &apv1.AcquireRequest{MissionCode: "bel", Holder: "waiter", Wait: durationpb.New(2 * time.Minute)})
			if err != nil {
				t.Errorf("waiting acquire: %v", err)
			}
			got <- resp.GetLease()
		}()
		// The waiter is not served while the lease is held...
		select {
		case l := <-got:
			t.Fatalf("waiter served while the account was leased: %v", l)
		case <-time.After(300 * time.Millisecond):
		}
		// ...and is woken by the release on the other replica, long before
		// the lease would have ended.
		release(t, c2, held, apv1.Outcome_OUTCOME_NO_SLOT)
		select {
		case l := <-got:
			if l.GetHolder() != "waiter" {
				t.Fatalf("waiter got %v", l)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("waiter not woken by the release")
		}
	})

	t.Run("ReleaseWakesTheWaiterAfterItsListenerDiedSilently", func(t *testing.T) {
		t.Parallel()
		dbURL := pgtest.NewURL(t, migrations.Set)
		cfg, err := pgx.ParseConfig(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		srv := faultproxy.NewServer()
		t.Cleanup(srv.Close)
		proxy, err := srv.Start("postgres", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
		if err != nil {
			t.Fatal(err)
		}
		noCooldown := withConfig(func(c *domain.Config) { c.Cooldown = 0 })
		c1, b := setupOn(t, dbURL, withRealClock(), noCooldown, withListenerVia(proxy))
		c2, _ := setupOn(t, dbURL, withRealClock(), noCooldown, withKeyset(b.keyset))
		addAccounts(t, c1, 1)
		held := acquire(t, c2, "fra") // leased for the default 5 minutes

		got := make(chan *apv1.Lease, 1)
		go func() {
			resp, err := c1.Acquire(context.Background(), &apv1.AcquireRequest{MissionCode: "bel", Holder: "waiter", Wait: durationpb.New(2 * time.Minute)})
			if err != nil {
				t.Errorf("waiting acquire: %v", err)
			}
			got <- resp.GetLease()
		}()
		time.Sleep(300 * time.Millisecond)
		// The listener's connection goes dead without a word (new ones
		// work), so the release's notification is lost on it. A listener
		// that does not ping never learns that it missed anything, and the
		// waiter would sleep until the lease's end, minutes away.
		if err := proxy.Timeout(); err != nil {
			t.Fatal(err)
		}
		proxy.Bypass()
		release(t, c2, held, apv1.Outcome_OUTCOME_NO_SLOT)
		select {
		case l := <-got:
			if l.GetHolder() != "waiter" {
				t.Fatalf("waiter got %v", l)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("waiter not woken by the release")
		}
	})

	t.Run("CooldownEndWakesTheWaiter", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t, withRealClock(), withConfig(func(c *domain.Config) { c.Cooldown = 500 * time.Millisecond }))
		addAccounts(t, c, 1)
		release(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_NO_SLOT)
		resp, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "waiter", Wait: durationpb.New(time.Minute)})
		if err != nil {
			t.Fatalf("waiting acquire: %v", err)
		}
		if resp.GetLease().GetHolder() != "waiter" {
			t.Fatalf("lease %v", resp.GetLease())
		}
	})

	t.Run("WaitRunsOutWithRetryInfo", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t, withRealClock())
		addAccounts(t, c, 1)
		acquire(t, c, "fra")
		_, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "waiter", Wait: durationpb.New(200 * time.Millisecond)})
		testkit.WantCode(t, err, codes.ResourceExhausted)
		// The only account is leased for the default 5 minutes.
		if d, ok := apierr.RetryDelay(err); !ok || d < 4*time.Minute || d > 5*time.Minute+domain.ExpiryGrace {
			t.Fatalf("retry delay %s (%v), want the rest of the lease", d, ok)
		}
	})
}

// TestLeaseExpiresWithoutAnyAcquire runs the expiry loop alone: a lease
// that nobody releases ends on time even though no Acquire comes.
func TestLeaseExpiresWithoutAnyAcquire(t *testing.T) {
	t.Parallel()
	c, b := setup(t, withRealClock())
	id := addAccounts(t, c, 1)[0]
	resp, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h", LeaseTtl: durationpb.New(apirule.MinLeaseTTL)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.pool.ExpireLoop(ctx, time.Second) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		u := usage(t, c, id)
		if len(u) == 1 && u[0].GetResult() == apv1.UsageResult_USAGE_RESULT_LEASE_EXPIRED {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease %s never expired: %v", resp.GetLease().GetLeaseId(), u)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a := getAccount(t, c, id); a.GetConsecutiveFailures() != 1 || a.GetState() != apv1.AccountState_ACCOUNT_STATE_COOLDOWN {
		t.Fatalf("account after expiry: %v", a)
	}
}

// TestGracefulStopLetsInFlightRPCsFinish stops a server on a real port
// while an Acquire waits for an account: the waiter gets a real answer
// (RESOURCE_EXHAUSTED, to retry elsewhere), not a broken connection.
func TestGracefulStopLetsInFlightRPCsFinish(t *testing.T) {
	t.Parallel()
	_, b := setup(t, withRealClock())
	keys, err := secrets.Parse(b.keyset)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	pool := app.New(store.New(b.db), keys, domain.DefaultConfig(), app.WithLogger(quiet))
	srv := grpcserver.New(grpcserver.Config{Name: "accountpool", Logger: quiet})
	server.New(pool, quiet).Register(srv.GRPC)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis, nil) }()
	go func() { <-ctx.Done(); pool.Stop() }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := apv1.NewAccountPoolServiceClient(conn)
	addAccounts(t, c, 1)
	acquire(t, c, "fra")

	answered := make(chan error, 1)
	go func() {
		_, err := c.Acquire(context.Background(), &apv1.AcquireRequest{MissionCode: "fra", Holder: "waiter", Wait: durationpb.New(5 * time.Minute)})
		answered <- err
	}()
	// Stop only once the server is inside the second Acquire.
	for started(t, srv, "Acquire") < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	select {
	case err := <-answered:
		testkit.WantCode(t, err, codes.ResourceExhausted)
	case <-time.After(30 * time.Second):
		t.Fatal("in-flight Acquire not answered during the stop")
	}
	if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("serve: %v", err)
	}
}

// started reads how many calls of method the server has begun, from its
// own gRPC metrics.
func started(t *testing.T, srv *grpcserver.Server, method string) float64 {
	t.Helper()
	return grpcservertest.Metric(t, srv.Registry, "grpc_server_started_total", "grpc_method", method)
}
