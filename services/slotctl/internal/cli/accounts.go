package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
)

func (a *app) accountsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "accounts", Short: "Portal login accounts of the pool"}

	var email, phone string
	add := &cobra.Command{
		Use:   "add --email EMAIL [--phone PHONE]",
		Short: "Add an account; the password is prompted for, or read from stdin",
		Long: `Add an account to the pool. The password is never a flag (it would stay in
the shell's history): on a terminal it is prompted for without echo; otherwise
the first line of stdin is the password:

  printf '%s\n' "$PW" | slotctl accounts add --email acc1@example.com --phone +33123456789`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if email == "" {
				return usagef("accounts add: --email is required")
			}
			pw, err := a.readSecret(cmd.Context(), "password", "Password for "+email+": ")
			if err != nil {
				return err
			}
			ap, err := a.accountPool()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			resp, err := ap.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: email, Password: pw, Phone: phone})
			if err != nil {
				return err
			}
			return a.printOneAccount(resp.GetAccount())
		},
	}
	add.Flags().StringVar(&email, "email", "", "login email (required)")
	add.Flags().StringVar(&phone, "phone", "", "phone number registered with the portal")

	var batch int
	imp := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Add accounts from a CSV file (header: email,password,phone); - reads stdin",
		Long: `Add accounts from a CSV file whose header names the columns email, password
and (optionally) phone. Emails already in the pool are skipped, so an import
can be run again. "-" reads the CSV from stdin. A password is taken as
written, spaces included: no space after the comma before it, and quote it
("like ""this""") if it holds a comma or a quote.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rows, err := a.readAccountsCSV(args[0])
			if err != nil {
				return err
			}
			ap, err := a.accountPool()
			if err != nil {
				return err
			}
			res, err := importAccounts(cmd.Context(), ap, rows, batch, nil)
			for i := range res.Failed {
				res.Failed[i].Where = fmt.Sprintf("line %d", rows[res.Failed[i].index].line)
			}
			if err != nil {
				if !errors.As(err, new(usageError)) {
					// The streams before the error stay imported: say what
					// they created and which rows failed, then the error.
					_ = a.printImport(res)
				}
				return err
			}
			if err := a.printImport(res); err != nil {
				return err
			}
			if len(res.Failed) > 0 {
				return fmt.Errorf("%d of %d accounts failed", len(res.Failed), len(rows))
			}
			return nil
		},
	}
	imp.Flags().IntVar(&batch, "batch", 500, "accounts per ImportAccounts stream")

	var state string
	var limit int
	list := &cobra.Command{
		Use:   "list [--state available|leased|cooldown|quarantined|disabled]",
		Short: "List accounts (never their passwords)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := parseEnum("state", state, "ACCOUNT_STATE_", apv1.AccountState_value)
			if err != nil {
				return err
			}
			ap, err := a.accountPool()
			if err != nil {
				return err
			}
			accounts, err := a.listAccounts(cmd.Context(), ap, apv1.AccountState(st), limit)
			if err != nil {
				return err
			}
			return a.printAccounts(accounts)
		},
	}
	list.Flags().StringVar(&state, "state", "", "only accounts in this state")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (0: all)")

	byID := func(use, short string, do func(ctx context.Context, ap apv1.AccountPoolServiceClient, id int64) (*apv1.Account, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use + " ID",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := parseAccountID(use, args[0])
				if err != nil {
					return err
				}
				ap, err := a.accountPool()
				if err != nil {
					return err
				}
				ctx, cancel := a.call(cmd.Context())
				defer cancel()
				acc, err := do(ctx, ap, id)
				if err != nil {
					return err
				}
				return a.printOneAccount(acc)
			},
		}
	}
	setActive := func(active bool) func(ctx context.Context, ap apv1.AccountPoolServiceClient, id int64) (*apv1.Account, error) {
		return func(ctx context.Context, ap apv1.AccountPoolServiceClient, id int64) (*apv1.Account, error) {
			resp, err := ap.UpdateAccount(ctx, &apv1.UpdateAccountRequest{Id: id, Active: &active})
			return resp.GetAccount(), err
		}
	}
	var newPassword string
	setPassword := byID("set-password", "Change an account's password (prompted for, or read from stdin)", func(ctx context.Context, ap apv1.AccountPoolServiceClient, id int64) (*apv1.Account, error) {
		resp, err := ap.UpdateAccount(ctx, &apv1.UpdateAccountRequest{Id: id, Password: &newPassword})
		return resp.GetAccount(), err
	})
	// The password is read before the call's --timeout starts.
	setPassword.PreRunE = func(cmd *cobra.Command, args []string) error {
		id, err := parseAccountID("set-password", args[0])
		if err != nil {
			return err
		}
		newPassword, err = a.readSecret(cmd.Context(), "password", fmt.Sprintf("New password for account %d: ", id))
		return err
	}
	cmd.AddCommand(add, imp, list,
		byID("get", "Show one account", func(ctx context.Context, ap apv1.AccountPoolServiceClient, id int64) (*apv1.Account, error) {
			resp, err := ap.GetAccount(ctx, &apv1.GetAccountRequest{Id: id})
			return resp.GetAccount(), err
		}),
		byID("reset", "Clear an account's quarantine, cooldown, failure count and stored portal session", func(ctx context.Context, ap apv1.AccountPoolServiceClient, id int64) (*apv1.Account, error) {
			resp, err := ap.ResetAccount(ctx, &apv1.ResetAccountRequest{Id: id})
			return resp.GetAccount(), err
		}),
		byID("deactivate", "Switch an account off: it is never leased again until activated", setActive(false)),
		byID("activate", "Switch a deactivated account back on", setActive(true)),
		setPassword,
	)
	return cmd
}

// parseAccountID reads the ID argument of `accounts use`.
func parseAccountID(use, arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("accounts %s: %q is not an account id", use, arg)
	}
	return id, nil
}

// readSecret reads what (a password, a passport number) the one way secrets
// are read: prompted for on a terminal without echo, else stdin's first
// line. Never a flag: argv shows in ps and stays in the shell's history.
// The read ends when ctx does: Ctrl-C at the prompt (which main turns into
// ctx's end) interrupts it rather than waiting for Enter.
func (a *app) readSecret(ctx context.Context, what, prompt string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err // no prompt to turn echo off after the stop
	}
	if f, ok := a.io.Stdin.(interface{ Fd() uintptr }); ok && a.io.IsTerminal(a.io.Stdin) {
		fd := int(f.Fd())
		state, err := term.GetState(fd)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", what, err)
		}
		fmt.Fprint(a.io.Stderr, prompt)
		s, err := untilDone(ctx, func() (string, error) {
			b, err := term.ReadPassword(fd)
			return string(b), err
		})
		fmt.Fprintln(a.io.Stderr)
		if ctx.Err() != nil {
			// ReadPassword, left blocked, would turn echo back on only
			// after a line: do it now.
			_ = term.Restore(fd, state)
			return "", ctx.Err()
		}
		if err != nil {
			return "", fmt.Errorf("read %s: %w", what, err)
		}
		if s == "" {
			return "", usagef("empty %s", what)
		}
		return s, nil
	}
	line, err := untilDone(ctx, func() (string, error) { return bufio.NewReader(a.io.Stdin).ReadString('\n') })
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s from stdin: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usagef("no %s: type it at the prompt, or give it on stdin's first line", what)
	}
	return line, nil
}

// untilDone returns read's result, or ctx's error as soon as ctx ends; a
// read still blocked then is left behind (the process is about to exit).
func untilDone(ctx context.Context, read func() (string, error)) (string, error) {
	type result struct {
		s   string
		err error
	}
	got := make(chan result, 1)
	go func() {
		s, err := read()
		got <- result{s, err}
	}()
	select {
	case r := <-got:
		return r.s, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// accountRow is one account to import, with where it came from.
type accountRow struct {
	line                   int
	email, password, phone string
}

func (a *app) readAccountsCSV(path string) ([]accountRow, error) {
	var r io.Reader = a.io.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	// No TrimLeadingSpace: it would also cut a password's leading spaces.
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: read header: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	if _, ok := col["email"]; !ok {
		return nil, usagef("%s: the header must name an email column (email,password,phone)", path)
	}
	if _, ok := col["password"]; !ok {
		return nil, usagef("%s: the header must name a password column (email,password,phone)", path)
	}
	// The password is taken as written, spaces included: trimming it would
	// store another password, which the portal then refuses. Email and
	// phone have no meaningful spaces.
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	trimmed := func(rec []string, name string) string { return strings.TrimSpace(field(rec, name)) }
	var rows []accountRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		row := accountRow{line: line, email: trimmed(rec, "email"), password: field(rec, "password"), phone: trimmed(rec, "phone")}
		if row.password != strings.TrimSpace(row.password) {
			// Kept as written; but "email, password" (a space after the
			// comma) is a common way to write CSV by hand, so say so.
			fmt.Fprintf(a.io.Stderr, "slotctl: %s line %d: the password of %s starts or ends with white space, kept as written\n", path, line, row.email)
		}
		rows = append(rows, row)
	}
}

// importResult sums one or more ImportAccounts streams.
type importResult struct {
	Created int             `json:"created"`
	Skipped int             `json:"skipped_existing"`
	Failed  []importFailure `json:"failed"`
}

type importFailure struct {
	index  int
	Where  string `json:"where,omitempty"`
	Email  string `json:"email"`
	Reason string `json:"reason"`
}

// maxImportBatch is AccountPool's limit on the failures one ImportAccounts
// answer lists: a stream no longer than that has every failure listed.
const maxImportBatch = 1000

// importAccounts sends rows to ImportAccounts in streams of batch accounts,
// so that progress is real (each stream is committed when it closes) and a
// failure loses at most one batch. progress, if set, gets the count done.
func importAccounts(ctx context.Context, ap apv1.AccountPoolServiceClient, rows []accountRow, batch int, progress func(done int)) (importResult, error) {
	if batch <= 0 {
		batch = 500
	}
	if batch > maxImportBatch {
		return importResult{}, usagef("--batch %d: at most %d accounts per stream, so that AccountPool lists every failure (it lists %d per stream)", batch, maxImportBatch, maxImportBatch)
	}
	res := importResult{Failed: []importFailure{}}
	for start := 0; start < len(rows); start += batch {
		end := min(start+batch, len(rows))
		var resp *apv1.ImportAccountsResponse
		// A stream refused by the rate limit imported nothing: send it again.
		err := retryRateLimited(ctx, func() error {
			var err error
			resp, err = importStream(ctx, ap, rows[start:end])
			return err
		})
		if err != nil {
			return res, err
		}
		res.Created += int(resp.GetCreated())
		res.Skipped += int(resp.GetSkippedExisting())
		for _, f := range resp.GetFailed() {
			res.Failed = append(res.Failed, importFailure{index: start + int(f.GetIndex()), Email: f.GetEmail(), Reason: f.GetReason()})
		}
		if progress != nil {
			progress(end)
		}
	}
	return res, nil
}

// importStream sends rows on one ImportAccounts stream.
func importStream(ctx context.Context, ap apv1.AccountPoolServiceClient, rows []accountRow) (*apv1.ImportAccountsResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	stream, err := ap.ImportAccounts(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if err := stream.Send(&apv1.ImportAccountsRequest{Email: r.email, Password: r.password, Phone: r.phone}); err != nil {
			break // the real error comes from CloseAndRecv
		}
	}
	return stream.CloseAndRecv()
}

func (a *app) printImport(res importResult) error {
	if a.json() {
		return printJSONValue(a.io.Stdout, res)
	}
	fmt.Fprintf(a.io.Stdout, "created %d, skipped %d (already in the pool), failed %d\n", res.Created, res.Skipped, len(res.Failed))
	if len(res.Failed) == 0 {
		return nil
	}
	t := newTable(a.io.Stdout, "WHERE", "EMAIL", "REASON")
	for _, f := range res.Failed {
		t.row(f.Where, f.Email, f.Reason)
	}
	return t.flush()
}

// printAccounts prints a list: a table, or a JSON array (even of one).
func (a *app) printAccounts(accounts []*apv1.Account) error {
	if a.json() {
		return printJSONList(a.io.Stdout, accounts)
	}
	return a.tableAccounts(accounts)
}

// printOneAccount prints one: a one-row table, or a JSON object.
func (a *app) printOneAccount(v *apv1.Account) error {
	if a.json() {
		return printJSON(a.io.Stdout, v)
	}
	return a.tableAccounts([]*apv1.Account{v})
}

func (a *app) tableAccounts(accounts []*apv1.Account) error {
	now := time.Now()
	t := newTable(a.io.Stdout, "ID", "EMAIL", "PHONE", "STATE", "FAILURES", "UNTIL", "LAST USED", "USES", "LEASED BY")
	for _, acc := range accounts {
		var until_ string
		switch acc.GetState() {
		case apv1.AccountState_ACCOUNT_STATE_COOLDOWN:
			until_ = until(acc.GetCooldownUntil(), now)
		case apv1.AccountState_ACCOUNT_STATE_QUARANTINED:
			until_ = until(acc.GetQuarantineUntil(), now)
		case apv1.AccountState_ACCOUNT_STATE_LEASED:
			until_ = until(acc.GetLeaseExpiresAt(), now)
		}
		t.row(acc.GetId(), acc.GetEmail(), acc.GetPhone(), enumWord(acc.GetState().String(), "ACCOUNT_STATE_"),
			acc.GetConsecutiveFailures(), until_, when(acc.GetLastUsedAt()), acc.GetUseCount(), acc.GetLeasedBy())
	}
	return t.flush()
}

// listAccounts pages through the accounts in state (all when unspecified),
// at most limit of them (0: all), each page on a call timeout of its own.
func (a *app) listAccounts(ctx context.Context, ap apv1.AccountPoolServiceClient, state apv1.AccountState, limit int) ([]*apv1.Account, error) {
	return collect(limit, func(token string, size int32) ([]*apv1.Account, string, error) {
		cctx, cancel := a.call(ctx)
		defer cancel()
		resp, err := ap.ListAccounts(cctx, &apv1.ListAccountsRequest{State: state, PageSize: size, PageToken: token})
		return resp.GetAccounts(), resp.GetNextPageToken(), err
	})
}
