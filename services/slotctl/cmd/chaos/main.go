// Command chaos is `make chaos` (issue 15): portalsim, AccountPool ×2,
// Requests ×2, Notifier ×2 and Checker ×2 as built in bin/ (make build), on
// a Postgres cluster of its own (initdb'd in a temporary directory, removed
// at the end), toxiproxy between each service and Postgres, between each
// Checker and its AccountPool and Requests and between each Notifier and
// its Requests, a webhook receiver, under a steady load; then each
// scenario's fault, and one line per scenario: the fault, the load before,
// during and after it, the time to recover, and each invariant held or
// broken. It exits 1 when an invariant broke.
//
//	chaos [-root DIR] [-scenarios a,b,...] [-kills 20] [-short]
package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/slotctl/internal/demo"
)

// main is the platform's: SIGINT/SIGTERM end ctx, an error is printed and
// exits 1.
func main() {
	grpcserver.Main(func(ctx context.Context, args []string, _ io.Writer) error { return run(ctx, args) })
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	root := fs.String("root", ".", "the checkout: binaries in ROOT/bin")
	scenarios := fs.String("scenarios", "", "comma-separated scenarios to run, in order (default all: "+strings.Join(demo.ChaosScenarios, ",")+")")
	kills := fs.Int("kills", 20, "SIGKILLs of each service in its kill scenario")
	short := fs.Bool("short", false, "a third of every wait (the make test sibling's pace)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	abs, err := filepath.Abs(*root)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "chaos-")
	if err != nil {
		return err
	}
	chrome := os.Getenv("CHROME_PATH")
	if chrome == "" {
		chrome = "/usr/bin/chromium"
	}
	var names []string
	if *scenarios != "" {
		names = strings.Split(*scenarios, ",")
	}
	err = demo.Chaos(ctx, demo.ChaosConfig{
		BinDir: filepath.Join(abs, "bin"), WorkDir: work, ChromePath: chrome,
		Scenarios: names, Kills: *kills, Short: *short, Out: os.Stdout,
	})
	if err == nil {
		// The logs of a failed run stay for reading.
		return os.RemoveAll(work)
	}
	return err
}
