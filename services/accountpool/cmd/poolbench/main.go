// Command poolbench measures AccountPool's Acquire+Release pairs per second
// (issue 16), in one run with alternating rounds, at each pool size and
// each number of concurrent clients:
//
//   - gRPC: the real AccountPool server in-process on 127.0.0.1 (interceptor
//     chain, password decryption, batching on: the service's default), one
//     connection per 64 clients;
//   - direct: the store's same Acquire and Release through pgx, no gRPC;
//   - gRPC-off, direct-off: the same two with POOL_BATCHING=false
//     (-unbatched, on by default), the figures before issue 16;
//   - bare: the pgbench-style pair, two plain statements (lease the LRU row
//     with SKIP LOCKED; clear it), no usage log, no wake-ups;
//   - River: River fetching and completing no-op jobs on a scratch database
//     of the same server, run by the riverbench binary (-river; a module of
//     its own, bench/river, so no service depends on River).
//
// It prints pairs/s and acquire and release latency per round, the medians
// and the ratios gRPC/River, gRPC/bare, gRPC/direct and gRPC/gRPC-off per
// cell, with the mean calls per Acquire and Release statement, then the
// latency of a wake-up across replicas (a release on one replica to the
// waiting Acquire of another) and of an Acquire answered RESOURCE_EXHAUSTED.
//
//	DATABASE_URL=postgres://... go run ./services/accountpool/cmd/poolbench [-clients 16,256] [-sizes 1000,100000] [-duration 3s] [-rounds 2] [-river bin/riverbench] [-unbatched=false]
//
// It works in scratch databases of its own and drops them at the end.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
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
	"github.com/slotwatch/slotwatch/services/platform/proctree"
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
	releases []time.Duration
	// batch is the mean Acquires and Releases per batch, and stmt a
	// batch's mean time.
	batch, stmt string
	// pgCPU is the CPU time of the Postgres server's processes.
	pgCPU time.Duration
	// wal is the WAL the server wrote over the run, in bytes (full-page
	// images included): unlike the rates, it does not depend on the
	// machine's load.
	wal int64
	// River's figures (riverbench's JSON): its rate, and the time from a
	// worker's return to the completion committed as "release".
	river *riverResult
}

func (r result) rate() float64 {
	if r.river != nil {
		return r.river.JobsPerS
	}
	return float64(r.pairs) / r.elapsed.Seconds()
}

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
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func ints(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s: %q is not a positive number", flagName, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run() error {
	clientsFlag := flag.String("clients", "16,256", "numbers of concurrent clients")
	duration := flag.Duration("duration", 3*time.Second, "length of each measured run")
	rounds := flag.Int("rounds", 2, "alternating rounds of every mode per cell (pool size x clients)")
	sizesFlag := flag.String("sizes", "1000,100000", "pool sizes")
	riverBin := flag.String("river", "", "the riverbench binary (make bench-pool builds it); empty: no River rounds")
	wakes := flag.Int("wakes", 50, "cross-replica wake-ups to time")
	unbatched := flag.Bool("unbatched", true, "also run gRPC and direct with POOL_BATCHING=false (modes gRPC-off, direct-off)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := flag.String("memprofile", "", "write the allocations of the whole run (pprof allocs) to this file")
	only := flag.String("only", "", "run only this mode (gRPC, gRPC-noid, direct, bare, gRPC-off, direct-off, River), to profile it")
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
	if *memProfile != "" {
		defer func() {
			if f, err := os.Create(*memProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	sizes, err := ints("sizes", *sizesFlag)
	if err != nil {
		return err
	}
	clientCounts, err := ints("clients", *clientsFlag)
	if err != nil {
		return err
	}

	ctx := context.Background()
	dbURL, cleanup, err := scratchDatabase(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer cleanup()
	var riverURL string
	if *riverBin != "" {
		var cleanupRiver func()
		if riverURL, cleanupRiver, err = scratchDatabase(ctx, os.Getenv("DATABASE_URL")); err != nil {
			return err
		}
		defer cleanupRiver()
	}
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
	st := store.New(db, store.WithBatching())
	grpcClients, stopServer, err := serve(ctx, st, keys, cfg, slices.Max(clientCounts))
	if err != nil {
		return err
	}
	defer stopServer()
	client := grpcClients[0]
	// The same without batching (POOL_BATCHING=false), for comparison.
	stOff := store.New(db)
	var offClients []apv1.AccountPoolServiceClient
	if *unbatched {
		var stopOff func()
		if offClients, stopOff, err = serve(ctx, stOff, keys, cfg, slices.Max(clientCounts)); err != nil {
			return err
		}
		defer stopOff()
	}

	gogc := cmp.Or(os.Getenv("GOGC"), "100") // riverbench inherits it
	fmt.Printf("poolbench: clients %v, pool sizes %v, %s per run, %d rounds, %s, %d CPUs, GOMAXPROCS %d, GOGC %s, %d connections\n",
		clientCounts, sizes, *duration, *rounds, runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0), gogc, db.Config().MaxConns)
	printServer(ctx, db)
	fmt.Println()
	fmt.Printf("%-8s %-7s %-5s %-10s %9s %10s %10s %10s %10s %9s %9s %9s %10s %13s\n",
		"accounts", "clients", "round", "mode", "pairs/s", "acq p50", "acq p99", "rel p50", "rel p99", "CPU/pair", "PG CPU", "WAL/pair", "batch a/r", "ms/batch")

	modes := []struct {
		name string
		pair pairFunc
	}{
		{"gRPC", func(ctx context.Context, i int) (time.Duration, time.Duration, error) {
			return grpcPair(ctx, grpcClients[i/64], holder(i), true)
		}},
		{"gRPC-noid", func(ctx context.Context, i int) (time.Duration, time.Duration, error) {
			return grpcPair(ctx, grpcClients[i/64], holder(i), false)
		}},
		{"direct", func(ctx context.Context, i int) (time.Duration, time.Duration, error) {
			return directPair(ctx, st, cfg, holder(i))
		}},
		{"bare", func(ctx context.Context, i int) (time.Duration, time.Duration, error) {
			return barePair(ctx, db, holder(i))
		}},
	}
	if *unbatched {
		modes = append(modes, []struct {
			name string
			pair pairFunc
		}{
			{"gRPC-off", func(ctx context.Context, i int) (time.Duration, time.Duration, error) {
				return grpcPair(ctx, offClients[i/64], holder(i), true)
			}},
			{"direct-off", func(ctx context.Context, i int) (time.Duration, time.Duration, error) {
				return directPair(ctx, stOff, cfg, holder(i))
			}},
		}...)
	}
	var summary []string
	for _, size := range sizes {
		if err := fill(ctx, db, keys, size); err != nil {
			return err
		}
		for _, clients := range clientCounts {
			rates := map[string][]float64{}
			ratios := map[string][]float64{}
			for r := 1; r <= *rounds; r++ {
				got := map[string]result{}
				// Even rounds run the modes in reverse, so that no mode
				// always runs first (after the fill, or River's round)
				// or always right after the same neighbour.
				order := slices.Clone(modes)
				if r%2 == 0 {
					slices.Reverse(order)
				}
				for _, m := range order {
					if *only != "" && m.name != *only {
						continue
					}
					before, pg0, wal0 := st.BatchStats(), postgresCPU(ctx, db), walLSN(ctx, db)
					res := measure(clients, *duration, m.pair)
					res.batch, res.stmt = meanBatches(before, st.BatchStats())
					res.pgCPU = cpuSince(pg0, postgresCPU(ctx, db))
					res.wal = walSince(ctx, db, wal0)
					got[m.name] = res
					row(size, clients, r, m.name, res)
				}
				if *riverBin != "" && (*only == "" || *only == "River") {
					rr, err := riverRound(ctx, *riverBin, riverURL, clients, *duration, size)
					if err != nil {
						return err
					}
					got["River"] = result{river: &rr}
					row(size, clients, r, "River", got["River"])
				}
				for name, res := range got {
					rates[name] = append(rates[name], res.rate())
				}
				for _, other := range []string{"River", "bare", "direct", "gRPC-off", "gRPC-noid"} {
					if o, ok := got[other]; ok {
						ratios[other] = append(ratios[other], got["gRPC"].rate()/o.rate())
					}
				}
			}
			line := fmt.Sprintf("%-8d %-7d median pairs/s: gRPC %.0f, gRPC-noid %.0f, direct %.0f, bare %.0f", size, clients,
				median(rates["gRPC"]), median(rates["gRPC-noid"]), median(rates["direct"]), median(rates["bare"]))
			if *unbatched {
				line += fmt.Sprintf(", gRPC-off %.0f, direct-off %.0f", median(rates["gRPC-off"]), median(rates["direct-off"]))
			}
			if *riverBin != "" {
				line += fmt.Sprintf(", River %.0f; gRPC/River %.2f", median(rates["River"]), median(ratios["River"]))
			}
			line += fmt.Sprintf(", gRPC/bare %.2f, gRPC/direct %.2f, gRPC/gRPC-noid %.2f", median(ratios["bare"]), median(ratios["direct"]), median(ratios["gRPC-noid"]))
			if *unbatched {
				line += fmt.Sprintf(", gRPC/gRPC-off %.2f", median(ratios["gRPC-off"]))
			}
			line += " (medians of the rounds' ratios)"
			fmt.Println(line)
			summary = append(summary, line)
		}
	}
	fmt.Println()
	for _, l := range summary {
		fmt.Println(l)
	}
	printHOT(ctx, db)
	for _, batched := range []bool{true, false} {
		if !batched && !*unbatched {
			continue
		}
		wake, err := wakeAcrossReplicas(ctx, db, keys, cfg, *wakes, batched)
		if err != nil {
			return err
		}
		fmt.Printf("cross-replica wake-up, batching %t (release on A to the waiting Acquire on B returning), %d samples: p50 %s, p99 %s (goal p99 < 50ms)\n",
			batched, len(wake), pct(wake, 0.5).Round(10*time.Microsecond), pct(wake, 0.99).Round(10*time.Microsecond))
	}
	if err := fill(ctx, db, keys, sizes[0]); err != nil {
		return err
	}
	exhausted, err := exhaustedAcquire(ctx, db, client, 200)
	if err != nil {
		return err
	}
	fmt.Printf("every account cooling down (%d accounts): RESOURCE_EXHAUSTED answer p50 = %s\n", sizes[0], exhausted.Round(time.Microsecond))
	return nil
}

// serve starts an in-process AccountPool server over st on 127.0.0.1 and
// returns clients of it: one connection per 64 clients, since the server
// lets one connection have 100 RPCs open (GRPC_MAX_CONCURRENT_STREAMS), as
// a fleet of Checkers would each have their own.
func serve(ctx context.Context, st *store.Store, keys *secrets.Keyset, cfg domain.Config, clients int) ([]apv1.AccountPoolServiceClient, func(), error) {
	quiet := slog.New(slog.DiscardHandler)
	pool := app.New(st, keys, cfg, app.WithLogger(quiet))
	srv := grpcserver.New(grpcserver.Config{Name: "accountpool", Logger: quiet})
	server.New(pool, quiet).Register(srv.GRPC)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, lis, nil) }()
	var (
		out   []apv1.AccountPoolServiceClient
		conns []*grpc.ClientConn
	)
	cleanup := func() {
		for _, c := range conns {
			c.Close()
		}
		stop()
		<-served
	}
	for range (clients + 63) / 64 {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		conns = append(conns, conn)
		out = append(out, apv1.NewAccountPoolServiceClient(conn))
	}
	return out, cleanup, nil
}

func row(size, clients, round int, mode string, r result) {
	acq50, acq99, rel50, rel99, cpu, pgCPU, wal := "", "", "", "", "", "-", "-"
	us := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	if r.river != nil {
		acq50, acq99 = "-", "-"
		rel50, rel99 = us(time.Duration(r.river.CompleteP50)*time.Microsecond), us(time.Duration(r.river.CompleteP99)*time.Microsecond)
		cpu = us(time.Duration(r.river.CPUPerJob) * time.Microsecond)
		if r.river.PGCPUPerJob > 0 {
			pgCPU = us(time.Duration(r.river.PGCPUPerJob) * time.Microsecond)
		}
	} else {
		acq50, acq99 = us(pct(r.acquires, 0.5)), us(pct(r.acquires, 0.99))
		rel50, rel99 = us(pct(r.releases, 0.5)), us(pct(r.releases, 0.99))
		cpu = us(r.cpu / time.Duration(max(1, r.pairs)))
		if r.pgCPU > 0 {
			pgCPU = us(r.pgCPU / time.Duration(max(1, r.pairs)))
		}
		if r.wal > 0 {
			wal = fmt.Sprintf("%.1f kB", float64(r.wal)/float64(max(1, r.pairs))/1000)
		}
	}
	fmt.Printf("%-8d %-7d %-5d %-10s %9.0f %10s %10s %10s %10s %9s %9s %9s %10s %13s\n", size, clients, round, mode, r.rate(), acq50, acq99, rel50, rel99, cpu, pgCPU, wal, r.batch, r.stmt)
}

// meanBatches is the mean Acquires and Releases per batch that had
// Acquires and Releases in it between two BatchStats, and the mean time of
// a batch (its transaction); "-" for none.
func meanBatches(a, b store.BatchStats) (calls, took string) {
	na, nr, n := b.AcquireBatches-a.AcquireBatches, b.ReleaseBatches-a.ReleaseBatches, b.Batches-a.Batches
	if na == 0 || nr == 0 || n == 0 {
		return "-", "-"
	}
	return fmt.Sprintf("%.1f/%.1f", float64(b.AcquireCalls-a.AcquireCalls)/float64(na), float64(b.ReleaseCalls-a.ReleaseCalls)/float64(nr)),
		fmt.Sprintf("%.2f", float64(b.Busy-a.Busy)/float64(n)/float64(time.Millisecond))
}

// postgresCPU is the CPU time used so far by each server process that
// pg_stat_activity lists (the backends, the WAL writer, the checkpointer
// and the like), read from /proc; nil unless the server runs on this
// machine (each pid a process named postgres).
func postgresCPU(ctx context.Context, db *pgxpool.Pool) map[int32]time.Duration {
	rows, err := db.Query(ctx, `SELECT pid FROM pg_stat_activity`)
	if err != nil {
		return nil
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil
	}
	out := map[int32]time.Duration{}
	for _, pid := range pids {
		cpu, name, ok := proctree.OwnCPU(int(pid))
		if !ok || !strings.HasPrefix(name, "postgres") {
			return nil
		}
		out[pid] = cpu
	}
	return out
}

// walLSN is the server's WAL insert position (0 if it cannot be read).
func walLSN(ctx context.Context, db *pgxpool.Pool) string {
	var lsn string
	if err := db.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		return ""
	}
	return lsn
}

// walSince is the WAL written since the position from, in bytes (0 if
// either position is unknown). It counts the whole server's: the modes run
// one at a time, and River, which runs on the same server, does not run
// beside them.
func walSince(ctx context.Context, db *pgxpool.Pool, from string) int64 {
	if from == "" {
		return 0
	}
	var n int64
	if err := db.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::bigint`, from).Scan(&n); err != nil {
		return 0
	}
	return n
}

// cpuSince is the CPU the processes of now used since then (all of it for
// a process started since; a process that ended in between is left out).
func cpuSince(then, now map[int32]time.Duration) time.Duration {
	if then == nil || now == nil {
		return 0
	}
	var d time.Duration
	for pid, t := range now {
		d += t - then[pid]
	}
	return d
}

// printHOT prints how many of the row updates of the rounds so far were
// HOT (heap-only: no new index entries), per table.
func printHOT(ctx context.Context, db *pgxpool.Pool) {
	time.Sleep(time.Second) // the backends report their counts within a second
	rows, err := db.Query(ctx, `SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
		WHERE schemaname = 'accountpool' AND relname IN ('accounts', 'usage_log') ORDER BY relname`)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var upd, hot int64
		if rows.Scan(&name, &upd, &hot) == nil {
			fmt.Printf("%s: %d row updates, %d HOT (%.0f%%)\n", name, upd, hot, 100*float64(hot)/float64(max(upd, 1)))
		}
	}
}

// printServer prints the Postgres settings that decide commit cost.
func printServer(ctx context.Context, db *pgxpool.Pool) {
	var version, fsync, syncCommit string
	if err := db.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')`).
		Scan(&version, &fsync, &syncCommit); err == nil {
		fmt.Printf("Postgres %s, fsync %s, synchronous_commit %s\n", version, fsync, syncCommit)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average at the start: %s", b)
	}
}

// pairFunc does one Acquire+Release pair as client i.
type pairFunc func(ctx context.Context, i int) (acquire, release time.Duration, err error)

func holder(i int) string { return fmt.Sprintf("bench-%d", i) }

// measure runs clients goroutines doing pairs for d and collects latencies.
func measure(clients int, d time.Duration, pair pairFunc) result {
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
			var acq, rel []time.Duration
			for ctx.Err() == nil {
				a, r, err := pair(context.Background(), i)
				if err != nil {
					fmt.Fprintln(os.Stderr, "poolbench:", holder(i), err)
					continue
				}
				acq = append(acq, a)
				rel = append(rel, r)
			}
			mu.Lock()
			res.acquires = append(res.acquires, acq...)
			res.releases = append(res.releases, rel...)
			res.pairs += len(acq)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.cpu = cpuTime() - cpu0
	return res
}

type riverResult struct {
	JobsPerS    float64 `json:"jobs_per_s"`
	CompleteP50 int64   `json:"complete_p50_us"`
	CompleteP99 int64   `json:"complete_p99_us"`
	CPUPerJob   int64   `json:"cpu_per_job_us"`
	PGCPUPerJob int64   `json:"pg_cpu_per_job_us"`
}

// riverRound runs riverbench once and reads its JSON line.
func riverRound(ctx context.Context, bin, dbURL string, clients int, d time.Duration, size int) (riverResult, error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-database-url", dbURL, "-clients", strconv.Itoa(clients),
		"-duration", d.String(), "-size", strconv.Itoa(size))
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return riverResult{}, fmt.Errorf("riverbench: %w: %s", err, strings.TrimSpace(errOut.String()))
	}
	var r riverResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("riverbench printed %q: %w", out.String(), err)
	}
	return r, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// wakeAcrossReplicas times n wake-ups across two replicas (two Pools on
// the database, each with its own listener) over a pool of one account:
// A leases it, B waits for one, A releases, and the time from A's release
// returning to B's Acquire returning is one sample.
func wakeAcrossReplicas(ctx context.Context, db *pgxpool.Pool, keys *secrets.Keyset, cfg domain.Config, n int, batched bool) ([]time.Duration, error) {
	if err := fill(ctx, db, keys, 1); err != nil {
		return nil, err
	}
	quiet := app.WithLogger(slog.New(slog.DiscardHandler))
	var opts []store.Option
	if batched {
		opts = append(opts, store.WithBatching())
	}
	a := app.New(store.New(db, opts...), keys, cfg, quiet)
	b := app.New(store.New(db, opts...), keys, cfg, quiet)
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for _, p := range []*app.Pool{a, b} {
		wg.Go(func() { _ = p.Listen(lctx, db.Config().ConnConfig) })
	}
	time.Sleep(200 * time.Millisecond) // both listeners connected
	var out []time.Duration
	for range n {
		held, err := a.Acquire(ctx, app.AcquireRequest{MissionCode: "fra", Holder: "a"})
		if err != nil {
			return nil, err
		}
		got := make(chan error, 1)
		var returned time.Time
		go func() {
			l, err := b.Acquire(ctx, app.AcquireRequest{MissionCode: "fra", Holder: "b", Wait: 10 * time.Second})
			returned = time.Now()
			if err == nil {
				_, err = b.Release(ctx, app.ReleaseRequest{LeaseID: l.LeaseID, FencingToken: l.FencingToken, Outcome: domain.OutcomeNoSlot})
			}
			got <- err
		}()
		time.Sleep(30 * time.Millisecond) // B found none free and waits
		if _, err := a.Release(ctx, app.ReleaseRequest{LeaseID: held.LeaseID, FencingToken: held.FencingToken, Outcome: domain.OutcomeNoSlot}); err != nil {
			return nil, err
		}
		released := time.Now()
		if err := <-got; err != nil {
			return nil, fmt.Errorf("waiting acquire: %w", err)
		}
		out = append(out, max(0, returned.Sub(released)))
	}
	return out, nil
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

// grpcPair is one Acquire and its Release through the server. With withID
// the Acquire carries a fresh acquire_id, a time-ordered UUID as the
// Checker sends (a retry with it gets the same lease): the lease's usage
// row then goes through the partial unique index on usage_log.acquire_id.
// Mode gRPC-noid leaves it out, to show what the index and its ON CONFLICT
// cost.
func grpcPair(ctx context.Context, c apv1.AccountPoolServiceClient, holder string, withID bool) (time.Duration, time.Duration, error) {
	req := &apv1.AcquireRequest{MissionCode: "fra", Holder: holder}
	if withID {
		req.AcquireId = uuid.Must(uuid.NewV7()).String()
	}
	t0 := time.Now()
	resp, err := c.Acquire(ctx, req)
	if err != nil {
		return 0, 0, err
	}
	t1 := time.Now()
	l := resp.GetLease()
	_, err = c.Release(ctx, &apv1.ReleaseRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_NO_SLOT})
	return t1.Sub(t0), time.Since(t1), err
}

func directPair(ctx context.Context, st *store.Store, cfg domain.Config, holder string) (time.Duration, time.Duration, error) {
	t0 := time.Now()
	leaseID := uuid.NewString()
	l, err := st.Acquire(ctx, store.AcquireParams{LeaseID: leaseID, AcquireID: uuid.Must(uuid.NewV7()).String(), MissionCode: "fra", Holder: holder, TTL: cfg.LeaseTTL, Now: time.Now(), MaxLogins: cfg.MaxLoginsPerDay})
	if err != nil {
		return 0, 0, err
	}
	t1 := time.Now()
	_, err = st.Release(ctx, cfg, store.ReleaseParams{LeaseID: leaseID, FencingToken: l.Account.FencingToken, Outcome: domain.OutcomeNoSlot, Now: time.Now()})
	return t1.Sub(t0), time.Since(t1), err
}

// barePair is the pgbench-style pair: lease the least recently used free
// row with SKIP LOCKED, then clear the lease, two plain statements on the
// same table, without the usage log, the outcome rule or wake-ups.
func barePair(ctx context.Context, db *pgxpool.Pool, holder string) (time.Duration, time.Duration, error) {
	t0 := time.Now()
	var id, token int64
	err := db.QueryRow(ctx, `UPDATE accountpool.accounts SET lease_id = gen_random_uuid(), leased_by = $1,
			lease_expires_at = now() + interval '10 minutes', fencing_token = fencing_token + 1, last_used_at = now()
		WHERE id = (SELECT id FROM accountpool.accounts WHERE active AND lease_id IS NULL
			ORDER BY last_used_at ASC NULLS FIRST, id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING id, fencing_token`, holder).Scan(&id, &token)
	if err != nil {
		return 0, 0, fmt.Errorf("bare acquire: %w", err)
	}
	t1 := time.Now()
	_, err = db.Exec(ctx, `UPDATE accountpool.accounts SET lease_id = NULL, leased_by = NULL, lease_expires_at = NULL
		WHERE id = $1 AND fencing_token = $2`, id, token)
	return t1.Sub(t0), time.Since(t1), err
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
