// Command disciplinebench is `make bench-discipline` (issue 13): logins
// per check with portal session reuse on and off, the most checks per
// minute at the portal against its cap, time and CPU per check, and how
// fast a CAPTCHA storm pauses the portal, all read from portalsim's own
// record, with portalsim, AccountPool, Requests and two Checker replicas
// running as built in bin/ (make build). Run it through
// deploy/local/with-postgres.sh, which sets DATABASE_URL (make
// bench-discipline does); it makes its database, slotwatch_discipline_bench,
// afresh on each run.
//
//	disciplinebench [-root DIR] [-checks 200] [-cap 20] [-cap-for 90s] [-hold 15s]
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
	fs := flag.NewFlagSet("disciplinebench", flag.ContinueOnError)
	checks := fs.Int("checks", 200, "checks with session reuse off, and as many with it on")
	capN := fs.Int("cap", 20, "the portal's max_checks_per_minute in the cap phase")
	capFor := fs.Duration("cap-for", 90*time.Second, "how long the cap phase runs (0 skips it)")
	hold := fs.Duration("hold", 15*time.Second, "how long the paused portal is watched after the CAPTCHA storm")
	rootUsage := "the checkout: binaries in ROOT/bin, the portalsim profile in ROOT/services/checker/profiles"
	return demo.RunBench(fs, args, rootUsage, "make bench-discipline", func(root, dbURL, work string) error {
		chrome := os.Getenv("CHROME_PATH")
		if chrome == "" {
			chrome = "/usr/bin/chromium"
		}
		return demo.Discipline(ctx, demo.DisciplineConfig{
			BinDir: filepath.Join(root, "bin"), ProfileFile: filepath.Join(root, "services", "checker", "profiles", "portalsim.yaml"), WorkDir: work, DatabaseURL: dbURL, Database: "slotwatch_discipline_bench",
			Checks: *checks, Cap: *capN, CapFor: *capFor, Hold: *hold, ChromePath: chrome, Out: os.Stdout,
		})
	})
}
