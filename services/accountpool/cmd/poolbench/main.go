// Command poolbench measures Acquire+Release pairs per second through the
// real gRPC server against the same SQL issued directly through pgx by the
// same number of goroutines, on a pool of 1,000 and then 100,000 accounts
// (cooldown 0, so every account is always eligible). It prints both side by
// side with their ratio, and acquire latency per pool size.
//
//	DATABASE_URL=postgres://... go run ./services/accountpool/cmd/poolbench [-clients 16] [-duration 5s] [-rounds 3]
//
// It works in a scratch database of its own and drops it at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/app"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/server"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/accountpool/migrations"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "poolbench:", err)
		os.Exit(1)
	}
}

type result struct {
	pairs    int
	elapsed  time.Duration
	cpu      time.Duration // this process's CPU time (client and server)
	acquires []time.Duration
	pairLat  []time.Duration
}

func (r result) rate() float64 { return float64(r.pairs) / r.elapsed.Seconds() }

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func run() error {
	clients := flag.Int("clients", 16, "concurrent clients")
	duration := flag.Duration("duration", 5*time.Second, "length of each measured run")
	rounds := flag.Int("rounds", 3, "alternating gRPC/direct rounds per pool size")
	sizesFlag := flag.String("sizes", "1000,100000", "pool sizes")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-sizes: %q is not a pool size", s)
		}
		sizes = append(sizes, n)
	}

	ctx := context.Background()
	dbURL, cleanup, err := scratchDatabase(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer cleanup()
	// The pool the service itself would open (pgdb's default size).
	db, err := migrations.Set.Open(ctx, dbURL, "poolbench")
	if err != nil {
		return err
	}
	defer db.Close()
	raw, err := secrets.Generate()
	if err != nil {
		return err
	}
	keys, err := secrets.Parse(raw)
	if err != nil {
		return err
	}
	cfg := domain.DefaultConfig()
	cfg.Cooldown = 0
	st := store.New(db)
	quiet := slog.New(slog.DiscardHandler)
	pool := app.New(st, keys, cfg, app.WithLogger(quiet))

	srv := grpcserver.New(grpcserver.Config{Name: "accountpool", Logger: quiet})
	server.New(pool, quiet).Register(srv.GRPC)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, lis, nil) }()
	defer func() { stop(); <-served }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := apv1.NewAccountPoolServiceClient(conn)

	fmt.Printf("poolbench: %d clients, %s per run, %d rounds, %s, %d CPUs, GOMAXPROCS %d\n",
		*clients, *duration, *rounds, runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Println("gRPC: in-process AccountPool server on 127.0.0.1 (real interceptor chain, password decryption);")
	fmt.Println("direct: the store's same Acquire and Release SQL through pgx, no gRPC, no crypto.")
	fmt.Println()
	fmt.Printf("%-8s %-6s %-6s %12s %12s %12s %12s %14s\n", "accounts", "round", "mode", "pairs/s", "acquire p50", "acquire p99", "pair p99", "Go CPU/pair")

	p50s := map[int]float64{}
	for _, size := range sizes {
		if err := fill(ctx, db, keys, size); err != nil {
			return err
		}
		var ratios []float64
		var grpcP50 []float64
		for r := 1; r <= *rounds; r++ {
			direct := measure(*clients, *duration, func(ctx context.Context, holder string) (time.Duration, error) {
				return directPair(ctx, st, cfg, holder)
			})
			viaGRPC := measure(*clients, *duration, func(ctx context.Context, holder string) (time.Duration, error) {
				return grpcPair(ctx, client, holder)
			})
			for _, m := range []struct {
				name string
				r    result
			}{{"direct", direct}, {"gRPC", viaGRPC}} {
				fmt.Printf("%-8d %-6d %-6s %12.0f %12s %12s %12s %14s\n", size, r, m.name, m.r.rate(),
					pct(m.r.acquires, 0.50).Round(time.Microsecond), pct(m.r.acquires, 0.99).Round(time.Microsecond),
					pct(m.r.pairLat, 0.99).Round(time.Microsecond), (m.r.cpu / time.Duration(max(1, m.r.pairs))).Round(time.Microsecond))
			}
			ratios = append(ratios, viaGRPC.rate()/direct.rate())
			grpcP50 = append(grpcP50, float64(pct(viaGRPC.acquires, 0.5)))
		}
		p50s[size] = median(grpcP50)
		fmt.Printf("%-8d median ratio gRPC/direct = %.2f (goal >= 0.70); median gRPC acquire p50 = %s\n",
			size, median(ratios), time.Duration(p50s[size]).Round(time.Microsecond))
		exhausted, err := exhaustedAcquire(ctx, db, client, 200)
		if err != nil {
			return err
		}
		fmt.Printf("%-8d every account cooling down: RESOURCE_EXHAUSTED answer p50 = %s\n\n", size, exhausted.Round(time.Microsecond))
	}
	if len(sizes) >= 2 {
		small, large := sizes[0], sizes[len(sizes)-1]
		fmt.Printf("acquire p50 at %d accounts / at %d accounts = %.2f (goal <= 1.50)\n", large, small, p50s[large]/p50s[small])
	}
	return nil
}

// measure runs clients goroutines doing pairs for d and collects latencies.
func measure(clients int, d time.Duration, pair func(context.Context, string) (time.Duration, error)) result {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		mu  sync.Mutex
		res result
		wg  sync.WaitGroup
	)
	start := time.Now()
	cpu0 := cpuTime()
	for i := range clients {
		wg.Go(func() {
			holder := fmt.Sprintf("bench-%d", i)
			var acq, pairs []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				a, err := pair(context.Background(), holder)
				if err != nil {
					fmt.Fprintln(os.Stderr, "poolbench:", holder, err)
					continue
				}
				acq = append(acq, a)
				pairs = append(pairs, time.Since(t0))
			}
			mu.Lock()
			res.acquires = append(res.acquires, acq...)
			res.pairLat = append(res.pairLat, pairs...)
			res.pairs += len(pairs)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.cpu = cpuTime() - cpu0
	return res
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// exhaustedAcquire puts every account in cooldown and times n Acquires
// that find none free (the answer with its RetryInfo), one at a time.
func exhaustedAcquire(ctx context.Context, db *pgxpool.Pool, c apv1.AccountPoolServiceClient, n int) (time.Duration, error) {
	if _, err := db.Exec(ctx, `UPDATE accountpool.accounts SET cooldown_until = now() + interval '1 hour'`); err != nil {
		return 0, err
	}
	if _, err := db.Exec(ctx, `VACUUM ANALYZE accountpool.accounts`); err != nil {
		return 0, err
	}
	var lat []time.Duration
	for range n {
		t0 := time.Now()
		_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "bench"})
		if status.Code(err) != codes.ResourceExhausted {
			return 0, fmt.Errorf("acquire on an exhausted pool: %v", err)
		}
		lat = append(lat, time.Since(t0))
	}
	return pct(lat, 0.5), nil
}

func grpcPair(ctx context.Context, c apv1.AccountPoolServiceClient, holder string) (time.Duration, error) {
	t0 := time.Now()
	resp, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: holder})
	if err != nil {
		return 0, err
	}
	acq := time.Since(t0)
	l := resp.GetLease()
	_, err = c.Release(ctx, &apv1.ReleaseRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_NO_SLOT})
	return acq, err
}

func directPair(ctx context.Context, st *store.Store, cfg domain.Config, holder string) (time.Duration, error) {
	t0 := time.Now()
	leaseID := uuid.NewString()
	l, err := st.Acquire(ctx, store.AcquireParams{LeaseID: leaseID, MissionCode: "fra", Holder: holder, TTL: cfg.LeaseTTL, Now: time.Now(), MaxLogins: cfg.MaxLoginsPerDay})
	if err != nil {
		return 0, err
	}
	acq := time.Since(t0)
	_, err = st.Release(ctx, cfg, store.ReleaseParams{LeaseID: leaseID, FencingToken: l.Account.FencingToken, Outcome: domain.OutcomeNoSlot, Now: time.Now()})
	return acq, err
}

// fill replaces the pool with n accounts, written with COPY.
func fill(ctx context.Context, db *pgxpool.Pool, keys *secrets.Keyset, n int) error {
	t0 := time.Now()
	if _, err := db.Exec(ctx, `TRUNCATE accountpool.usage_log, accountpool.accounts`); err != nil {
		return err
	}
	now := time.Now()
	rows := make([][]any, n)
	for i := range n {
		id := int64(i + 1)
		ct, err := keys.Encrypt([]byte("bench-password-"+strconv.Itoa(i)), app.PasswordAD(id))
		if err != nil {
			return err
		}
		rows[i] = []any{id, fmt.Sprintf("bench%d@example.com", i), ct, "", now, now}
	}
	if _, err := db.CopyFrom(ctx, pgx.Identifier{"accountpool", "accounts"},
		[]string{"id", "email", "password_ciphertext", "phone", "created_at", "updated_at"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy accounts: %w", err)
	}
	if _, err := db.Exec(ctx, `SELECT setval(pg_get_serial_sequence('accountpool.accounts', 'id'), $1)`, n); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, `VACUUM ANALYZE accountpool.accounts`); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "poolbench: %d accounts written in %s\n", n, time.Since(t0).Round(time.Millisecond))
	return nil
}

// scratchDatabase creates a database for the run next to DATABASE_URL's
// and returns its URL.
func scratchDatabase(ctx context.Context, serverURL string) (string, func(), error) {
	if serverURL == "" {
		return "", nil, errors.New("DATABASE_URL is not set (run it with `make bench-pool`)")
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, errors.New("DATABASE_URL is not a postgres:// URL")
	}
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", nil, err
	}
	b := make([]byte, 4)
	_, _ = io.ReadFull(rand.Reader, b)
	name := "poolbench_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		return "", nil, err
	}
	cleanup := func() {
		if _, err := admin.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "poolbench: drop scratch database:", err)
		}
		admin.Close(context.Background())
	}
	u.Path = "/" + name
	return u.String(), cleanup, nil
}
