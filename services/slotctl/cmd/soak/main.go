// Command soak is `make soak` (issue 15): the `make run` system
// (portalsim, AccountPool, Requests, the Notifier with an SMTP sink and a
// webhook receiver, a Checker with Chromium, the demo's data) with short
// cooldowns and portalsim's slots changing at random, for -duration; every
// -every it samples each process's RSS, goroutines and open descriptors,
// the Postgres connections and the table sizes, then fits a line to each
// after -warm-up, prints the slopes and exits 1 on growth (RSS,
// goroutines, descriptors, a service's connections outside its pool), on
// more Postgres connections than the pools' maxima and the LISTEN
// connections, or on a run with no check, no request found or nothing the
// Notifier delivered. Run it through deploy/local/with-postgres.sh, which sets
// DATABASE_URL (make soak does); it makes its database, slotwatch_soak,
// afresh on each run.
//
//	soak [-root DIR] [-duration 30m] [-warm-up 5m] [-every 1m]
package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/slotctl/internal/demo"
)

// main is the platform's: SIGINT/SIGTERM end ctx, an error is printed and
// exits 1.
func main() {
	grpcserver.Main(func(ctx context.Context, args []string, _ io.Writer) error { return run(ctx, args) })
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	duration := fs.Duration("duration", 30*time.Minute, "how long the system runs")
	warmUp := fs.Duration("warm-up", 0, "the start of the run the fit leaves out (default: a sixth of -duration)")
	every := fs.Duration("every", time.Minute, "time between samples")
	return demo.RunBench(fs, args, "the checkout: binaries in ROOT/bin", "make soak", func(root, dbURL, work string) error {
		if *warmUp == 0 {
			*warmUp = *duration / 6
		}
		return demo.Soak(ctx, demo.SoakConfig{
			BinDir: filepath.Join(root, "bin"), WorkDir: work, DatabaseURL: dbURL, Database: "slotwatch_soak",
			Duration: *duration, WarmUp: *warmUp, Every: *every, ChromePath: os.Getenv("CHROME_PATH"), Out: os.Stdout,
		})
	})
}
