// Command portalsim serves the simulated visa portal (package sim) for the
// demo and for manual testing: the pages on PORTALSIM_ADDR (default :8090)
// and the JSON admin API under /admin/.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
	_ "time/tzdata" // the portal's timezone, in an image without zoneinfo

	"github.com/slotwatch/slotwatch/services/platform/buildinfo"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "portalsim: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("portalsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("PORTALSIM_ADDR", ":8090"), "listen address (PORTALSIM_ADDR)")
	config := fs.String("config", os.Getenv("PORTALSIM_CONFIG"), "JSON config file loaded at start (PORTALSIM_CONFIG)")
	familyName := fs.String("family", os.Getenv("PORTALSIM_FAMILY"), "portal family: classic, vfs, tls or ais; overrides the config file's (PORTALSIM_FAMILY)")
	lifetime := fs.String("session-lifetime", os.Getenv("PORTALSIM_SESSION_LIFETIME"),
		"how long a login lasts, e.g. 30m (0s: until logout); overrides the config file's session_lifetime (PORTALSIM_SESSION_LIFETIME)")
	version := fs.Bool("version", false, "print the build and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version {
		_, err := fmt.Fprintln(stdout, buildinfo.Get().String("portalsim"))
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))

	var cfg sim.Config
	if *config != "" {
		var err error
		if cfg, err = sim.LoadConfigFile(*config); err != nil {
			return err
		}
	}
	if *familyName != "" {
		f, err := sim.ParseFamily(*familyName)
		if err != nil {
			return err
		}
		cfg.Family = f
	}
	if *lifetime != "" {
		cfg.SessionLifetime = *lifetime // sim.New validates it
	}
	portal, err := sim.New(cfg)
	if err != nil {
		return err
	}

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           portal,
		ReadHeaderTimeout: 10 * time.Second,
		// Requests held by a delay behaviour end when we are asked to stop.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	log.Info("portalsim listening", "addr", lis.Addr().String(), "accounts", len(cfg.Accounts), "missions", len(cfg.Missions),
		"family", cfg.Family.String(), "session_lifetime", cmp.Or(cfg.SessionLifetime, "none"))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("portalsim stopped")
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
