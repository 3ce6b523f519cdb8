package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/slotwatch/slotwatch/services/checker/internal/browser"
	"github.com/slotwatch/slotwatch/services/checker/internal/portal"
	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
)

// profileCommand runs checker profile SUBCOMMAND.
func profileCommand(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("checker profile: want a subcommand\n%s", usage)
	}
	switch args[0] {
	case "lint":
		if len(args) != 2 {
			return fmt.Errorf("usage: checker profile lint FILE")
		}
		return lintProfile(args[1], stdout)
	case "try":
		return tryProfile(ctx, args[1:], os.Stdin, stdout)
	}
	return fmt.Errorf("checker profile: unknown subcommand %q\n%s", args[0], usage)
}

// lintProfile prints FILE:LINE: problem for each problem of the file and
// fails when there is one.
func lintProfile(path string, stdout io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("lint: %w", err)
	}
	probs := profile.Lint(data)
	for _, p := range probs {
		fmt.Fprintf(stdout, "%s:%d: %s\n", path, p.Line, p.Message)
	}
	if len(probs) > 0 {
		return errors.New("lint: the profile has problems (above)")
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}

// tryProfile runs a profile's flows once with one account, printing every
// step and saving the page after it: how a person writes a profile for a
// portal no one has seen (docs/PROFILES.md).
func tryProfile(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("checker profile try", flag.ContinueOnError)
	fs.SetOutput(stdout)
	path := fs.String("profile", "", "profile file (required)")
	baseURL := fs.String("base-url", "", "overrides the profile's base_url")
	mission := fs.String("mission", "", "mission code (required)")
	centre := fs.String("centre", "", "centre (required)")
	category := fs.String("category", "", "visa category (required)")
	email := fs.String("email", "", "the account's email (required)")
	pwFile := fs.String("password-file", "", "file holding the account's password; default: asked on the terminal")
	out := fs.String("out", "", "folder for a screenshot and the HTML after every step (default: a new folder in $TMPDIR)")
	chrome := fs.String("chrome", envOr("CHROME_PATH", browser.DefaultExecPath), "Chromium (CHROME_PATH)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" || *mission == "" || *centre == "" || *category == "" || *email == "" {
		return errors.New("checker profile try: --profile, --mission, --centre, --category and --email are required")
	}
	prof, err := profile.Load(*path)
	if err != nil {
		return err
	}
	if *baseURL != "" {
		if prof, err = prof.WithBaseURL(*baseURL); err != nil {
			return err
		}
	}
	password, err := readPassword(*pwFile, stdin, stdout)
	if err != nil {
		return err
	}
	if *out == "" {
		if *out, err = os.MkdirTemp("", "slotwatch-try-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	noSandbox := os.Getenv("CHROME_NO_SANDBOX") == "true"
	if err := browser.CheckSandbox(noSandbox); err != nil {
		return err
	}
	// A visible tab: the page renders as it would for a person, whatever
	// background_tabs says.
	mgr := browser.New(browser.Config{ExecPath: *chrome, NoSandbox: noSandbox, NoSpare: true})
	defer mgr.Close()

	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "flow\tstep\tkind\ttook\tsaw\textracted\tended")
	// The check sends each step's trace as the step ends, and waits for
	// room: the steps are printed while it runs (below), so a run of any
	// length goes through this buffer, never more than it holds at once.
	steps := make(chan portal.StepTrace, 64)
	// The operator asked for the pages: a try exists to see them.
	drv, err := portal.New(portal.Config{Profile: prof, Browser: mgr, ArtifactsDir: filepath.Join(*out, "artifacts"), ArtifactsPages: true,
		TraceDir: *out, Trace: func(st portal.StepTrace) { steps <- st }})
	if err != nil {
		return err
	}
	printStep := func(st portal.StepTrace) {
		var got []string
		for _, s := range st.Slots {
			got = append(got, strings.TrimSpace(s.Date+" "+s.Time))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Flow, st.Step, st.Kind, st.Took.Round(time.Millisecond),
			st.Page, strings.Join(got, ", "), st.End)
	}
	type checked struct {
		res portal.Result
		err error
	}
	done := make(chan checked, 1)
	go func() {
		res, err := drv.Check(ctx, portal.Account{Email: *email, Password: password},
			portal.Target{Mission: *mission, Centre: *centre, VisaCategory: *category})
		done <- checked{res, err}
	}()
	var c checked
	for running := true; running; {
		select {
		case st := <-steps:
			printStep(st)
		case c = <-done:
			running = false
		}
	}
	res, err := c.res, c.err
	// Every trace of the check was sent before Check returned.
	for len(steps) > 0 {
		printStep(<-steps)
	}
	if res.LoggedIn && len(drv.Program().Flows.Logout) > 0 {
		// The logout runs after the result: wait for its steps.
		wait := time.After(prof.Timeouts.Logout.D() + 5*time.Second)
		for n := 0; n < len(drv.Program().Flows.Logout); n++ {
			select {
			case st := <-steps:
				printStep(st)
			case <-wait:
				n = len(drv.Program().Flows.Logout)
			}
		}
	}
	tw.Flush()
	outcome := string(res.Outcome)
	if res.Reason != "" {
		outcome += "/" + string(res.Reason)
	}
	fmt.Fprintf(stdout, "\nresult: %s: %s (%s)\n", outcome, res.Detail, res.Duration.Round(time.Millisecond))
	for _, s := range res.Slots {
		fmt.Fprintf(stdout, "slot: %s %s %s %s\n", s.Centre, s.VisaCategory, s.Date, s.Time)
	}
	if res.RetryAfter > 0 {
		fmt.Fprintf(stdout, "retry after: %s\n", res.RetryAfter)
	}
	fmt.Fprintf(stdout, "pages after each step: %s\n", *out)
	return err
}

// readPassword reads the password from a file, or asks for it on the
// terminal (without echo), or reads a line of stdin when it is no
// terminal.
func readPassword(file string, stdin io.Reader, prompt io.Writer) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		return string(b), err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}
