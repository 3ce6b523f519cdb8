package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
)

// legacySchema is the old application's 1:1 layout, as the seed describes
// it: users (login and person at once) and personal_details.
const legacySchema = `
CREATE TABLE users (
    id         serial PRIMARY KEY,
    email      text NOT NULL,
    password   text,
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE personal_details (
    id              serial PRIMARY KEY,
    user_id         integer NOT NULL REFERENCES users (id),
    first_name      text,
    last_name       text,
    mobile_number   text,
    passport_number text,
    nationality     text,
    date_of_birth   date
);`

// legacyDB creates and fills a database laid out like the old schema.
func legacyDB(t *testing.T) string {
	t.Helper()
	url := pgtest.NewURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, legacySchema); err != nil {
		t.Fatal(err)
	}
	users := []struct {
		email, password string
		active          bool
		details         []any // first, last, mobile, passport, nationality, born
	}{
		{"alice@example.com", "alice-pw", true, []any{"Alice", "Martin", "+33611111111", "FR1234567", "FR", "1985-03-01"}},
		{"bob@example.com", "bob-pw", true, []any{"Bob", "Peeters", "+32470000000", "BE7654321", "BE", "1979-11-20"}}, // account exists already
		{"carol@example.com", "carol-pw", false, []any{"Carol", "Inactive", nil, nil, nil, nil}},                      // inactive: nothing
		{"dave@example.com", "dave-pw", true, nil},                                                                    // no details: account only
		{"eve-at-example", "eve-pw", true, []any{"Eve", "Typo", nil, nil, nil, nil}},                                  // bad email: both fail
		{"ALICE@example.com", "alice-pw-2", true, nil},                                                                // same login as alice
		{"gina@example.com", "gina-pw", true, []any{"Gina", "Rossi", "+39333000000", "x!", "IT", "1990-01-01"}},       // bad passport
		{"hugo@example.com", "", true, nil},                                                                           // no password
	}
	for _, u := range users {
		var id int
		if err := conn.QueryRow(ctx, "INSERT INTO users (email, password, active) VALUES ($1, nullif($2, ''), $3) RETURNING id", u.email, u.password, u.active).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if u.details != nil {
			if _, err := conn.Exec(ctx, `INSERT INTO personal_details (user_id, first_name, last_name, mobile_number, passport_number, nationality, date_of_birth)
				VALUES ($1, $2, $3, $4, $5, $6, $7::date)`, append([]any{id}, u.details...)...); err != nil {
				t.Fatal(err)
			}
		}
	}
	return url
}

func TestImportLegacy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	from := legacyDB(t)
	b.slotctl(t, "existing-pw\n", "accounts", "add", "--email", "bob@example.com").must(t)

	t.Run("DryRunCreatesNothing", func(t *testing.T) {
		r := b.slotctl(t, "", "-o", "json", "import-legacy", "--from", from, "--dry-run")
		sum := decodeJSON[legacySummary](t, r.stdout)
		if sum.Users != 8 || sum.Accounts.Created != 4 || sum.Accounts.Skipped != 2 || sum.Applicants.Created != 4 {
			t.Errorf("dry run: %+v", sum)
		}
		if r := b.slotctl(t, "", "-o", "json", "accounts", "list").must(t); len(decodeJSON[[]jsonAccount](t, r.stdout)) != 1 {
			t.Errorf("dry run created accounts:\n%s", r.stdout)
		}
	})

	t.Run("ImportsAccountsAndApplicants", func(t *testing.T) {
		// From the environment, with the progress bar forced onto stderr.
		r := runSlotctl(context.Background(), strings.NewReader(""), map[string]string{
			"LEGACY_DATABASE_URL": from, "ACCOUNTPOOL_ADDR": b.apAddr, "REQUESTS_ADDR": b.rqAddr, "AUTH_TOKEN_FILE": b.adminToken,
		}, "import-legacy", "--progress")
		r.fails(t, 1, "import-legacy: 4 failed")
		for _, want := range []string{"accounts   [", "applicants [", "5/5", "4/4"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("progress bar lacks %q:\n%s", want, r.stderr)
			}
		}
		// accounts: alice, dave, gina created; bob skipped (exists), ALICE
		// skipped (same login); eve invalid, hugo without password.
		// applicants: alice, bob created; gina invalid passport; eve invalid email.
		for _, want := range []string{
			"accounts    3  2  2",
			"applicants  2  0  2",
			"eve-at-example", "no password", "passport_number",
		} {
			if !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), strings.Join(strings.Fields(want), " ")) {
				t.Errorf("summary lacks %q:\n%s", want, r.stdout)
			}
		}

		accounts := decodeJSON[[]jsonAccount](t, b.slotctl(t, "", "-o", "json", "accounts", "list").must(t).stdout)
		got := map[string]jsonAccount{}
		for _, a := range accounts {
			got[a.Email] = a
		}
		if len(accounts) != 4 || got["alice@example.com"].Phone != "+33611111111" || got["dave@example.com"].Email == "" || got["gina@example.com"].Email == "" {
			t.Errorf("accounts: %+v", accounts)
		}
		// The password went through AccountPool, encrypted there: a lease
		// for alice's account carries it back. (Leases go by least recently
		// used, ties by id; bob's account came first, so lease twice.)
		found := false
		for range 3 {
			lease, err := b.ap.Acquire(context.Background(), &apv1.AcquireRequest{MissionCode: "fra", Holder: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if lease.GetLease().GetEmail() == "alice@example.com" {
				found = lease.GetLease().GetPassword() == "alice-pw"
				break
			}
		}
		if !found {
			t.Errorf("alice's account did not lease with her legacy password")
		}

		applicants := decodeJSON[[]jsonApplicant](t, b.slotctl(t, "", "-o", "json", "applicants", "list").must(t).stdout)
		names := map[string]bool{}
		for _, a := range applicants {
			names[a.FullName] = true
		}
		if len(applicants) != 2 || !names["Alice Martin"] || !names["Bob Peeters"] {
			t.Errorf("applicants: %+v", applicants)
		}
	})

	t.Run("RunningAgainSkipsWhatExists", func(t *testing.T) {
		r := b.slotctl(t, "", "-o", "json", "import-legacy", "--from", from)
		sum := decodeJSON[legacySummary](t, r.stdout)
		if sum.Accounts.Created != 0 || sum.Accounts.Skipped != 5 || sum.Applicants.Created != 0 || sum.Applicants.Skipped != 2 ||
			len(sum.Accounts.Failed) != 2 || len(sum.Applicants.Failed) != 2 {
			t.Errorf("second run: %+v", sum)
		}
		if strings.Contains(r.stderr, "[") {
			t.Errorf("progress bar without a terminal or --progress:\n%s", r.stderr)
		}
	})

	t.Run("NotALegacyDatabase", func(t *testing.T) {
		b.slotctl(t, "", "import-legacy", "--from", pgtest.NewURL(t)).fails(t, 1, "no users table")
		b.slotctl(t, "", "import-legacy").fails(t, 2, "--from")
	})
}

// TestImportLegacyHelpHidesTheDatabasePassword: --help prints each flag's
// default, so LEGACY_DATABASE_URL (which holds the legacy database's
// password) must not be one.
func TestImportLegacyHelpHidesTheDatabasePassword(t *testing.T) {
	t.Parallel()
	const password = "legacy-db-s3cret"
	env := map[string]string{"LEGACY_DATABASE_URL": "postgres://legacy:" + password + "@127.0.0.1:1/legacy"}
	r := runSlotctl(context.Background(), strings.NewReader(""), env, "import-legacy", "--help").must(t)
	if strings.Contains(r.stdout+r.stderr, password) {
		t.Errorf("--help printed the legacy database's password:\n%s%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "LEGACY_DATABASE_URL") {
		t.Errorf("--help does not say --from falls back to LEGACY_DATABASE_URL:\n%s", r.stdout)
	}
}

// TestImportLegacyUnderTheRateLimit: a run cut short still says what it
// created, and Requests' rate limit slows the import down instead of
// stopping it.
func TestImportLegacyUnderTheRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	from := legacyDB(t)

	t.Run("AnErrorComesAfterTheSummarySoFar", func(t *testing.T) {
		b.stopRQ() // the accounts go in; the applicants cannot
		r := b.slotctl(t, "", "--timeout", "2s", "import-legacy", "--from", from)
		r.fails(t, 1, "Requests at "+b.rqAddr)
		if got := strings.Join(strings.Fields(r.stdout), " "); !strings.Contains(got, "accounts 4 1 2") {
			t.Errorf("no summary of the accounts created before the error:\n%s", r.stdout)
		}
	})

	t.Run("ImportsEveryApplicantAtTheRateLimit", func(t *testing.T) {
		// One call (or stream) every 250ms, none at once: each of the five
		// calls to Requests and the five one-account ImportAccounts streams
		// after the first is refused until it waits.
		b.rqEnv = append(b.rqEnv, "RATE_LIMIT_RPS=4", "RATE_LIMIT_BURST=1")
		b.restartRequests(t)
		b.apEnv = append(b.apEnv, "RATE_LIMIT_RPS=4", "RATE_LIMIT_BURST=1")
		b.restartAccountPool(t)
		r := b.slotctl(t, "", "-o", "json", "import-legacy", "--from", from, "--batch", "1")
		r.fails(t, 1, "import-legacy: 4 failed")
		sum := decodeJSON[legacySummary](t, r.stdout)
		if sum.Applicants.Created != 2 || len(sum.Applicants.Failed) != 2 || sum.Accounts.Skipped != 5 || len(sum.Accounts.Failed) != 2 {
			t.Errorf("summary: %+v", sum)
		}
		for _, f := range append(sum.Accounts.Failed, sum.Applicants.Failed...) {
			if strings.Contains(f.Reason, "rate limit") {
				t.Errorf("an applicant failed on the rate limit: %+v", f)
			}
		}
	})
}
