package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/slotwatch/slotwatch/services/platform/buildinfo"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
)

// Main runs a service's run function with a context that ends on SIGINT or
// SIGTERM, prints its error and sets the exit code.
//
// `--version` (or `version`) as the only argument prints the build and
// exits, before run is called.
func Main(run func(ctx context.Context, args []string, stdout io.Writer) error) {
	if PrintVersion(os.Stdout, os.Args[1:]) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", progName(), err)
		os.Exit(1)
	}
}

func progName() string {
	name := os.Args[0]
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// NewLogger is the JSON logger every service writes to stderr. level is
// debug, info, warn or error (LOG_LEVEL).
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l, ReplaceAttr: redact})), nil
}

// LoadEdge is what every service loads before its own wiring: its logger
// (NewLogger on stderr at LOG_LEVEL, info by default), the Go runtime's
// memory limit (setMemoryLimit: MEMORY_LIMIT, GO_MEMORY_SHARE) and its
// Security (LoadSecurity with apiAddrs, the addresses that serve the API).
// Its error names every bad edge setting at once, and only those: it reads
// them apart from what env collected before (a service's own settings,
// see WithEdgeErrors).
func LoadEdge(env *envconfig.Loader, apiAddrs ...string) (*slog.Logger, Security, error) {
	var errs []error
	logger, err := NewLogger(os.Stderr, env.String("LOG_LEVEL", "info"))
	if err != nil {
		errs = append(errs, err)
		logger, _ = NewLogger(os.Stderr, "info") // to check the rest
	}
	if _, err := setMemoryLimit(&envconfig.Loader{Lookup: env.Lookup}, logger); err != nil {
		errs = append(errs, err)
	}
	sec, err := LoadSecurity(&envconfig.Loader{Lookup: env.Lookup}, logger, apiAddrs...)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, Security{}, err
	}
	return logger, sec, nil
}

// WithEdgeErrors is what a service returns when its own settings, read
// from env, are bad (settingsErr): that error joined with LoadEdge's, so
// that one refusal names every bad setting, the service's and the edge's
// (rate limit, GRPC_*, LOG_LEVEL, memory), and an operator fixes them in
// one restart. apiAddrs are those the service would pass to LoadEdge.
func WithEdgeErrors(settingsErr error, env *envconfig.Loader, apiAddrs ...string) error {
	if _, _, err := LoadEdge(env, apiAddrs...); err != nil {
		return errors.Join(settingsErr, err)
	}
	return settingsErr
}

// secretKeys are attribute keys whose values are never written, whoever
// logs them: a second line of defence behind code that does not log
// secrets in the first place.
var secretKeys = map[string]bool{
	"password": true, "passport_number": true, "passport": true,
	"authorization": true, "token": true, "bearer": true, "secret": true,
}

func redact(_ []string, a slog.Attr) slog.Attr {
	if secretKeys[strings.ToLower(a.Key)] {
		return slog.String(a.Key, "[REDACTED]")
	}
	return a
}

// PrintVersion prints "NAME VERSION (commit C, goX)" when args asks for the
// version (`--version`, `-version` or `version`, alone) and says whether it did.
func PrintVersion(w io.Writer, args []string) bool {
	if len(args) != 1 || (args[0] != "--version" && args[0] != "-version" && args[0] != "version") {
		return false
	}
	fmt.Fprintln(w, buildinfo.Get().String(progName()))
	return true
}
