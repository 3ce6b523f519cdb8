// Command slotctl is the slotwatch operator's CLI: accounts, pool status,
// usage, applicants, requests, missions, events, keysets and the import
// from the old 1:1 schema, over gRPC to AccountPool and Requests.
// `slotctl --help` lists the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slotwatch/slotwatch/services/slotctl/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Std())
	stop()
	os.Exit(code)
}
