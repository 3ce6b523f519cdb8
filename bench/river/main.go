// Command riverbench measures River fetching and completing jobs, for
// poolbench to compare AccountPool with (issue 16). It lives in a module of
// its own so that no service depends on River.
//
//	riverbench -database-url postgres://.../scratch -clients 16 -duration 4s -size 1000
//
// The database must be a scratch one: riverbench migrates River's tables
// into it and empties river_job before each run. The table then holds
// -size jobs scheduled an hour ahead (a table as large as the pool it is
// compared with) and enough available jobs for the run; -clients workers
// (River's MaxWorkers) work them with a no-op worker, FetchCooldown at its
// minimum (1 ms). The rate is the jobs whose completion committed during
// the measured window (two counts in river_job), and the CPU per job is
// this process's and, for a server on this machine, that of the Postgres
// processes serving this database, over the window. It prints one JSON
// line.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/slotwatch/slotwatch/services/platform/proctree"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "riverbench:", err)
		os.Exit(1)
	}
}

// Result is what one run prints, the JSON poolbench reads.
type Result struct {
	Jobs        int     `json:"jobs"`
	Seconds     float64 `json:"seconds"`
	JobsPerS    float64 `json:"jobs_per_s"`
	CompleteP50 int64   `json:"complete_p50_us"`
	CompleteP99 int64   `json:"complete_p99_us"`
	// CPUPerJob is this process's CPU time per job in the window,
	// PGCPUPerJob the Postgres backends' (0 unless the server runs on
	// this machine), in microseconds.
	CPUPerJob   int64 `json:"cpu_per_job_us"`
	PGCPUPerJob int64 `json:"pg_cpu_per_job_us"`
}

type noopArgs struct{}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("riverbench", flag.ContinueOnError)
	dbURL := fs.String("database-url", "", "a scratch database (its river_job is emptied)")
	clients := fs.Int("clients", 16, "River workers (MaxWorkers of the one queue)")
	duration := fs.Duration("duration", 4*time.Second, "length of the measured window")
	size := fs.Int("size", 1000, "jobs scheduled an hour ahead, kept in the table during the run")
	perSecond := fs.Int("backlog-rate", 25000, "available jobs inserted per second of -duration (the run fails if they run out)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dbURL == "" {
		return errors.New("-database-url is required")
	}
	cfg, err := pgxpool.ParseConfig(*dbURL)
	if err != nil {
		return err
	}
	cfg.MaxConns = int32(max(10, *clients/4))
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	driver := riverpgxv5.New(db)
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	if _, err := db.Exec(ctx, `TRUNCATE river_job`); err != nil {
		return err
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, noopWorker{})
	client, err := river.NewClient(driver, &river.Config{
		Logger:            slog.New(slog.DiscardHandler),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: *clients}},
		Workers:           workers,
		FetchCooldown:     river.FetchCooldownMin,
		FetchPollInterval: 50 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	later := time.Now().Add(time.Hour)
	var params []river.InsertManyParams
	for range *size {
		params = append(params, river.InsertManyParams{Args: noopArgs{}, InsertOpts: &river.InsertOpts{ScheduledAt: later}})
	}
	for range int(duration.Seconds()*float64(*perSecond)) + *perSecond {
		params = append(params, river.InsertManyParams{Args: noopArgs{}})
	}
	for chunk := range slices.Chunk(params, 50000) {
		if _, err := client.InsertManyFast(ctx, chunk); err != nil {
			return fmt.Errorf("insert jobs: %w", err)
		}
	}
	if _, err := db.Exec(ctx, `VACUUM ANALYZE river_job`); err != nil {
		return err
	}

	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{Kinds: []river.EventKind{river.EventKindJobCompleted}, ChanSize: 1 << 20})
	defer cancel()
	if err := client.Start(ctx); err != nil {
		return err
	}
	defer func() {
		stopCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer stop()
		_ = client.Stop(stopCtx)
	}()
	// Warm up: the fetch loop and the completer are running once jobs
	// complete.
	time.Sleep(300 * time.Millisecond)
	completed := func() (int, error) {
		var n int
		err := db.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&n)
		return n, err
	}
	n0, err := completed()
	if err != nil {
		return err
	}
	t0, cpu0, pg0 := time.Now(), processCPU(), backendCPU(ctx, db)
	time.Sleep(*duration)
	n1, err := completed()
	if err != nil {
		return err
	}
	elapsed, cpu, pg := time.Since(t0), processCPU()-cpu0, cpuSince(pg0, backendCPU(ctx, db))
	var left int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'available'`).Scan(&left); err != nil {
		return err
	}
	if left == 0 {
		return fmt.Errorf("the backlog ran out; raise -backlog-rate above %d", *perSecond)
	}
	// CompleteDuration: from the worker's return to the completion
	// committed, River's batched counterpart of a Release.
	var complete []time.Duration
	for len(events) > 0 {
		if e := <-events; e.JobStats != nil {
			complete = append(complete, e.JobStats.CompleteDuration)
		}
	}
	r := Result{
		Jobs: n1 - n0, Seconds: elapsed.Seconds(), JobsPerS: float64(n1-n0) / elapsed.Seconds(),
		CompleteP50: pct(complete, 0.5).Microseconds(), CompleteP99: pct(complete, 0.99).Microseconds(),
	}
	jobs := int64(max(1, n1-n0))
	r.CPUPerJob, r.PGCPUPerJob = cpu.Microseconds()/jobs, pg.Microseconds()/jobs
	return json.NewEncoder(out).Encode(r)
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU is the CPU time used so far by each Postgres process serving
// this database, read from /proc (as poolbench reads its own); nil unless
// the server runs on this machine.
func backendCPU(ctx context.Context, db *pgxpool.Pool) map[int32]time.Duration {
	rows, err := db.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
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

// cpuSince is the CPU the processes of now used since then (a process that
// ended in between is left out).
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
