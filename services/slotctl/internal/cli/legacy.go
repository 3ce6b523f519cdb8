package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/slotctl/internal/legacy"
)

// legacySummary is what import-legacy did (or, with --dry-run, would do).
type legacySummary struct {
	DryRun     bool        `json:"dry_run"`
	Users      int         `json:"legacy_users"`
	Accounts   legacyCount `json:"accounts"`
	Applicants legacyCount `json:"applicants"`
}

type legacyCount struct {
	Created int             `json:"created"`
	Skipped int             `json:"skipped"`
	Failed  []importFailure `json:"failed"`
}

func (a *app) importLegacyCommand() *cobra.Command {
	var (
		from             string
		dryRun, progress bool
		batch            int
	)
	cmd := &cobra.Command{
		Use:   "import-legacy --from postgres://...",
		Short: "Create pool accounts and applicants from the old 1:1 users schema",
		Long: `Read the old application's users (email, password, active) and
personal_details (user_id, mobile_number, names, passport_number, nationality,
date_of_birth) and create:

  - a pool account for each active user's distinct email, through AccountPool,
    which encrypts the password; emails already in the pool are skipped;
  - an applicant for each active user with personal details, through Requests;
    emails that already belong to an applicant are skipped.

It is safe to run again. --from falls back to LEGACY_DATABASE_URL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Read here, not as the flag's default: --help prints defaults,
			// and this URL usually carries the database password.
			if from == "" {
				from = a.io.Getenv("LEGACY_DATABASE_URL")
			}
			if from == "" {
				return usagef("import-legacy: --from (or LEGACY_DATABASE_URL) is required")
			}
			ctx := cmd.Context()
			conn, err := pgx.Connect(ctx, from)
			if err != nil {
				return fmt.Errorf("connect to the legacy database: %w", err)
			}
			users, err := legacy.Read(ctx, conn)
			conn.Close(context.Background())
			if err != nil {
				return err
			}
			ap, err := a.accountPool()
			if err != nil {
				return err
			}
			rq, err := a.requests()
			if err != nil {
				return err
			}
			showProgress := progress || a.io.IsTerminal(a.io.Stderr)
			sum, err := a.importLegacy(ctx, users, ap, rq, dryRun, showProgress, batch)
			if err != nil {
				// What was created before the error stays created: say what.
				_ = a.printLegacySummary(sum)
				return err
			}
			if err := a.printLegacySummary(sum); err != nil {
				return err
			}
			if n := len(sum.Accounts.Failed) + len(sum.Applicants.Failed); n > 0 {
				return fmt.Errorf("import-legacy: %d failed (listed above); fix them in the old database and run it again", n)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "URL of the old application's Postgres (default: $LEGACY_DATABASE_URL)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "read and compare, create nothing")
	cmd.Flags().BoolVar(&progress, "progress", false, "show the progress bar even when stderr is not a terminal")
	cmd.Flags().IntVar(&batch, "batch", 200, "accounts per ImportAccounts stream")
	return cmd
}

func (a *app) importLegacy(ctx context.Context, users []legacy.User, ap apv1.AccountPoolServiceClient, rq rqv1.RequestsServiceClient,
	dryRun, showProgress bool, batch int) (legacySummary, error) {
	sum := legacySummary{DryRun: dryRun, Users: len(users),
		Accounts: legacyCount{Failed: []importFailure{}}, Applicants: legacyCount{Failed: []importFailure{}}}

	// Accounts: each active user's distinct email, as the seed's
	// INSERT ... SELECT DISTINCT ... WHERE active ON CONFLICT DO NOTHING.
	var rows []accountRow
	var rowUser []string
	seen := map[string]bool{}
	for _, u := range users {
		key := strings.ToLower(u.Email)
		switch {
		case !u.Active:
			continue
		case u.Email == "":
			sum.Accounts.Failed = append(sum.Accounts.Failed, importFailure{Where: "user " + u.ID, Reason: "no email"})
			continue
		case seen[key]:
			sum.Accounts.Skipped++ // a second user with the same login
			continue
		case u.Password == "":
			sum.Accounts.Failed = append(sum.Accounts.Failed, importFailure{Where: "user " + u.ID, Email: u.Email, Reason: "no password"})
			continue
		}
		seen[key] = true
		rows = append(rows, accountRow{email: u.Email, password: u.Password, phone: u.Phone})
		rowUser = append(rowUser, u.ID)
	}
	var bar *progressBar
	if showProgress {
		bar = newProgressBar(a.io.Stderr, "accounts", len(rows))
	}
	if dryRun {
		existing, err := a.accountEmails(ctx, ap)
		if err != nil {
			return sum, err
		}
		for _, r := range rows {
			if existing[strings.ToLower(r.email)] {
				sum.Accounts.Skipped++
			} else {
				sum.Accounts.Created++
			}
		}
	} else {
		res, err := importAccounts(ctx, ap, rows, batch, bar.set)
		if err != nil {
			return sum, err
		}
		sum.Accounts.Created += res.Created
		sum.Accounts.Skipped += res.Skipped
		for _, f := range res.Failed {
			f.Where = "user " + rowUser[f.index]
			sum.Accounts.Failed = append(sum.Accounts.Failed, f)
		}
	}
	bar.done()

	// Applicants: each active user with personal details, unless their
	// email already belongs to an applicant (a previous run, or added by hand).
	existing := map[string]bool{}
	applicants, err := listApplicants(ctx, a, rq, 0)
	if err != nil {
		return sum, err
	}
	for _, p := range applicants {
		existing[strings.ToLower(p.GetEmail())] = true
	}
	var todo []legacy.User
	for _, u := range users {
		if u.Active && u.HasDetails {
			todo = append(todo, u)
		}
	}
	bar = nil
	if showProgress {
		bar = newProgressBar(a.io.Stderr, "applicants", len(todo))
	}
	for i, u := range todo {
		key := strings.ToLower(u.Email)
		switch {
		case u.Email != "" && existing[key]:
			sum.Applicants.Skipped++
		case u.FullName == "":
			sum.Applicants.Failed = append(sum.Applicants.Failed, importFailure{Where: "user " + u.ID, Email: u.Email, Reason: "no name in personal_details"})
		case dryRun:
			sum.Applicants.Created++
			existing[key] = true
		default:
			cctx, cancel := a.call(ctx)
			_, err := rq.CreateApplicant(cctx, &rqv1.CreateApplicantRequest{
				FullName: u.FullName, Email: u.Email, Phone: u.Phone, PassportNumber: u.PassportNumber,
				Nationality: u.Nationality, DateOfBirth: u.DateOfBirth,
			})
			cancel()
			switch status.Code(err) {
			case codes.OK:
				sum.Applicants.Created++
				existing[key] = true
			case codes.InvalidArgument, codes.AlreadyExists:
				sum.Applicants.Failed = append(sum.Applicants.Failed, importFailure{Where: "user " + u.ID, Email: u.Email, Reason: status.Convert(err).Message()})
			default:
				if bar != nil {
					fmt.Fprintln(a.io.Stderr)
				}
				return sum, err
			}
		}
		bar.set(i + 1)
	}
	bar.done()
	return sum, nil
}

// accountEmails lists every account's email (lower case), for --dry-run.
func (a *app) accountEmails(ctx context.Context, ap apv1.AccountPoolServiceClient) (map[string]bool, error) {
	accounts, err := a.listAccounts(ctx, ap, apv1.AccountState_ACCOUNT_STATE_UNSPECIFIED, 0)
	if err != nil {
		return nil, err
	}
	emails := make(map[string]bool, len(accounts))
	for _, acc := range accounts {
		emails[strings.ToLower(acc.GetEmail())] = true
	}
	return emails, nil
}

func (a *app) printLegacySummary(sum legacySummary) error {
	if a.json() {
		return printJSONValue(a.io.Stdout, sum)
	}
	w := a.io.Stdout
	verb := "created"
	if sum.DryRun {
		verb = "would create"
		fmt.Fprintln(w, "dry run: nothing was created")
	}
	fmt.Fprintf(w, "%d users in the legacy database\n", sum.Users)
	t := newTable(w, "RECORDS", strings.ToUpper(verb), "SKIPPED", "FAILED")
	t.row("accounts", sum.Accounts.Created, sum.Accounts.Skipped, len(sum.Accounts.Failed))
	t.row("applicants", sum.Applicants.Created, sum.Applicants.Skipped, len(sum.Applicants.Failed))
	if err := t.flush(); err != nil {
		return err
	}
	if len(sum.Accounts.Failed)+len(sum.Applicants.Failed) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nfailed:")
	t = newTable(w, "WHAT", "LEGACY", "EMAIL", "REASON")
	for _, f := range sum.Accounts.Failed {
		t.row("account", f.Where, f.Email, f.Reason)
	}
	for _, f := range sum.Applicants.Failed {
		t.row("applicant", f.Where, f.Email, f.Reason)
	}
	return t.flush()
}
