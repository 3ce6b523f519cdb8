// Package cli is slotctl: the commands, their flags, and how they print.
// Run is the whole program, so tests run it in-process with their own
// streams and environment.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	ntv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/buildinfo"
)

// IO is what the program reads and writes besides the network.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment (flag fallbacks).
	Getenv func(string) string
	// IsTerminal says whether a stream is an interactive terminal (for
	// password prompts, the progress bar and --watch redraws).
	IsTerminal func(any) bool
}

// Std is the process's own streams and environment.
func Std() IO {
	return IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, IsTerminal: isTerminal}
}

func isTerminal(s any) bool {
	f, ok := s.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// Run runs slotctl with args and returns the exit status: 0 on success, 1
// on an error (printed as one line on stderr), 2 on a usage error.
func Run(ctx context.Context, args []string, io IO) int {
	if io.Getenv == nil {
		io.Getenv = func(string) string { return "" }
	}
	if io.IsTerminal == nil {
		io.IsTerminal = func(any) bool { return false }
	}
	a := &app{io: io}
	defer a.close()
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(io.Stderr, "slotctl: %v\nRun 'slotctl --help' for usage.\n", err)
		return 2
	default:
		fmt.Fprintf(io.Stderr, "slotctl: %s\n", describe(err, a))
		return 1
	}
}

// usageError is a mistake in the command line, not in the call.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// app holds the global flags and the connections, opened on first use.
type app struct {
	io IO

	accountpoolAddr, requestsAddr, notifierAddr string
	client                                      auth.ClientConfig
	envErr                                      error // a malformed TLS_INSECURE
	output                                      string
	timeout                                     time.Duration

	mu    sync.Mutex
	conns []*grpc.ClientConn
	ap    apv1.AccountPoolServiceClient
	rq    rqv1.RequestsServiceClient
	nt    ntv1.NotifierServiceClient
	// lastTarget names the service of the last dial, for error hints.
	lastTarget string
}

func (a *app) env(name, def string) string {
	if v := a.io.Getenv(name); v != "" {
		return v
	}
	return def
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "slotctl",
		Short: "Operate slotwatch: accounts, pool, usage, applicants, requests, missions, portals, events, contacts, subscriptions, deliveries, keysets, the demo's data",
		Long: `slotctl talks gRPC to AccountPool, Requests and the Notifier.

Connection flags fall back to the environment: ACCOUNTPOOL_ADDR, REQUESTS_ADDR, NOTIFIER_ADDR,
AUTH_TOKEN_FILE (a file holding an admin token), TLS_CA_FILE and TLS_INSECURE.
Without TLS, only a loopback address is dialed unless --tls-insecure is given.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Get().String("slotctl"),
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if a.envErr != nil {
				return usageError{a.envErr}
			}
			if a.output != "table" && a.output != "json" {
				return usagef("-o %q: want table or json", a.output)
			}
			return nil
		},
	}
	root.SetIn(a.io.Stdin)
	root.SetOut(a.io.Stdout)
	root.SetErr(a.io.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := root.PersistentFlags()
	f.StringVar(&a.accountpoolAddr, "accountpool", a.env("ACCOUNTPOOL_ADDR", "localhost:50051"), "AccountPool gRPC address (ACCOUNTPOOL_ADDR)")
	f.StringVar(&a.requestsAddr, "requests", a.env("REQUESTS_ADDR", "localhost:50052"), "Requests gRPC address (REQUESTS_ADDR)")
	f.StringVar(&a.notifierAddr, "notifier", a.env("NOTIFIER_ADDR", "localhost:50054"), "Notifier gRPC address (NOTIFIER_ADDR)")
	fromEnv, err := auth.ClientConfigFromEnv(func(k string) (string, bool) { v := a.io.Getenv(k); return v, v != "" })
	a.envErr = err
	f.StringVar(&a.client.TokenFile, "token-file", fromEnv.TokenFile, "file holding the bearer token (AUTH_TOKEN_FILE)")
	f.StringVar(&a.client.CAFile, "tls-ca", fromEnv.CAFile, "PEM CA certificates: use TLS verified against them (TLS_CA_FILE)")
	f.BoolVar(&a.client.Insecure, "tls-insecure", fromEnv.Insecure, "allow plaintext to an address that is not loopback (TLS_INSECURE)")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	f.DurationVar(&a.timeout, "timeout", 30*time.Second, "time limit of each call (not of streams or --watch)")

	root.AddCommand(
		a.accountsCommand(),
		a.poolCommand(),
		a.usageCommand(),
		a.applicantsCommand(),
		a.requestsCommand(),
		a.missionsCommand(),
		a.portalsCommand(),
		a.eventsCommand(),
		a.contactsCommand(),
		a.subscriptionsCommand(),
		a.deliveriesCommand(),
		a.keysetCommand(),
		a.importLegacyCommand(),
		a.seedCommand(),
	)
	// cobra's own `completion bash|zsh|fish|powershell`, added now rather
	// than when it runs, so that wrapArgs covers it too (it writes to the
	// streams set above).
	root.InitDefaultCompletionCmd()
	wrapArgs(root)
	root.SetVersionTemplate("{{.Version}}\n")
	return root
}

// wrapArgs turns cobra's argument-count errors into usage errors, and makes
// a word that names no subcommand one too: by itself cobra calls that an
// error (exit 1) at the root and prints the help (exit 0) below it.
func wrapArgs(c *cobra.Command) {
	switch {
	case c.HasSubCommands() && !c.Runnable():
		c.SuggestionsMinimumDistance = 2 // cobra's own default when it suggests
		c.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			hint := ""
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				hint = fmt.Sprintf(" (did you mean %q?)", s[0])
			}
			return usagef("unknown command %q for %q%s", args[0], cmd.CommandPath(), hint)
		}
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	case c.Args != nil:
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// dial opens a client connection with the one set of dial options every
// slotwatch client uses (auth.DialOptions: bearer token, TLS or plaintext
// to loopback only unless --tls-insecure), and unary calls that wait out
// the service's rate limit (retryRateLimited).
func (a *app) dial(addr string) (*grpc.ClientConn, error) {
	opts, err := auth.DialOptions(addr, a.client)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, append(opts, grpc.WithChainUnaryInterceptor(retryRateLimitedUnary))...)
	if err != nil {
		return nil, err
	}
	a.conns = append(a.conns, conn)
	return conn, nil
}

func (a *app) accountPool() (apv1.AccountPoolServiceClient, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastTarget = "AccountPool at " + a.accountpoolAddr
	if a.ap == nil {
		conn, err := a.dial(a.accountpoolAddr)
		if err != nil {
			return nil, err
		}
		a.ap = apv1.NewAccountPoolServiceClient(conn)
	}
	return a.ap, nil
}

func (a *app) requests() (rqv1.RequestsServiceClient, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastTarget = "Requests at " + a.requestsAddr
	if a.rq == nil {
		conn, err := a.dial(a.requestsAddr)
		if err != nil {
			return nil, err
		}
		a.rq = rqv1.NewRequestsServiceClient(conn)
	}
	return a.rq, nil
}

func (a *app) close() {
	for _, c := range a.conns {
		c.Close()
	}
}

// onService makes a command's RunE that calls one service once: client
// dials it, and f gets the client and a context bounded by --timeout.
func onService[C any](a *app, client func() (C, error), f func(ctx context.Context, c C, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		ctx, cancel := a.call(cmd.Context())
		defer cancel()
		return f(ctx, c, args)
	}
}

// onRequests is onService for Requests.
func (a *app) onRequests(f func(ctx context.Context, rq rqv1.RequestsServiceClient, args []string) error) func(*cobra.Command, []string) error {
	return onService(a, a.requests, f)
}

// call bounds one unary call by --timeout.
func (a *app) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, a.timeout)
}

func (a *app) json() bool { return a.output == "json" }

// lower normalises an enum word from the command line ("slot_found",
// "SLOT-FOUND").
func lower(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_")
}
