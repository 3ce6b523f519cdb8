// Command slotwatch-demo is `make run`: the whole slotwatch system on this
// machine with demo data, showing the Checker's sessions until a slot is
// found, then up for poking until Ctrl-C. Run it through
// deploy/local/with-postgres.sh, which sets DATABASE_URL (make run does).
//
//	slotwatch-demo [-root DIR] [-slot-after 1m]
package main

import (
	"context"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"
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
	fs := flag.NewFlagSet("slotwatch-demo", flag.ContinueOnError)
	slotAfter := fs.Duration("slot-after", time.Minute, "when the demo's slot appears on the portal, after the Checker starts")
	abs, dbURL, err := demo.ParseCommand(fs, args, "the checkout: binaries in ROOT/bin, the demo's files in ROOT/.data", "make run")
	if err != nil {
		return err
	}

	// A second Ctrl-C (or SIGTERM) while stopping kills what is left at once.
	force := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		<-sigs
		close(force)
	}()

	return demo.Run(ctx, demo.Config{
		Root:        abs,
		DatabaseURL: dbURL,
		SlotAfter:   *slotAfter,
		Getenv:      os.Getenv,
		Out:         os.Stdout,
		Force:       force,
	})
}
