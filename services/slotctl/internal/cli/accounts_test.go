package cli

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
)

// slowTyping is longer than the --timeout the typing tests give: the
// call's time limit must start once the secret is read.
const slowTyping = 2500 * time.Millisecond

// jsonAccount is an account as `-o json` prints it (proto field names).
type jsonAccount struct {
	ID                  string `json:"id"` // int64 is a string in protojson
	Email               string `json:"email"`
	Phone               string `json:"phone"`
	Active              bool   `json:"active"`
	State               string `json:"state"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("AddReadsThePasswordFromStdin", func(t *testing.T) {
		r := b.slotctl(t, "s3cret-pass\n", "-o", "json", "accounts", "add", "--email", "acc1@example.com", "--phone", "+33123456789").must(t)
		acc := decodeJSON[jsonAccount](t, r.stdout)
		if acc.Email != "acc1@example.com" || acc.Phone != "+33123456789" || acc.State != "ACCOUNT_STATE_AVAILABLE" || !acc.Active {
			t.Errorf("created %+v", acc)
		}
		if strings.Contains(r.stdout+r.stderr, "s3cret-pass") {
			t.Errorf("the password was printed")
		}
		// The password reached AccountPool: a lease carries it back.
		lease, err := b.ap.Acquire(context.Background(), &apv1.AcquireRequest{MissionCode: "fra", Holder: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if lease.GetLease().GetPassword() != "s3cret-pass" {
			t.Errorf("leased password %q", lease.GetLease().GetPassword())
		}
		if _, err := b.ap.Release(context.Background(), &apv1.ReleaseRequest{
			LeaseId: lease.GetLease().GetLeaseId(), FencingToken: lease.GetLease().GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_LOGIN_FAIL, Detail: "bad password",
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("AddWithoutPasswordIsAUsageError", func(t *testing.T) {
		b.slotctl(t, "", "accounts", "add", "--email", "acc2@example.com").fails(t, 2, "no password")
	})

	t.Run("AddDuplicateIsOneLineAlreadyExists", func(t *testing.T) {
		b.slotctl(t, "x\n", "accounts", "add", "--email", "ACC1@example.com").fails(t, 1, "AlreadyExists")
	})

	t.Run("AddInvalidListsFieldViolations", func(t *testing.T) {
		b.slotctl(t, "x\n", "accounts", "add", "--email", "not-an-email", "--phone", "abc").fails(t, 1, "InvalidArgument", "email:", "phone:")
	})

	t.Run("ListShowsStateAndFailures", func(t *testing.T) {
		r := b.slotctl(t, "", "accounts", "list").must(t)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") {
			t.Fatalf("want a header and one row:\n%s", r.stdout)
		}
		for _, want := range []string{"acc1@example.com", "cooldown", " 1 "} {
			if !strings.Contains(lines[1], want) {
				t.Errorf("row %q lacks %q", lines[1], want)
			}
		}
		r = b.slotctl(t, "", "-o", "json", "accounts", "list", "--state", "cooldown").must(t)
		if accs := decodeJSON[[]jsonAccount](t, r.stdout); len(accs) != 1 || accs[0].ConsecutiveFailures != 1 {
			t.Errorf("cooldown accounts: %+v", accs)
		}
		r = b.slotctl(t, "", "-o", "json", "accounts", "list", "--state", "quarantined").must(t)
		if strings.TrimSpace(r.stdout) != "[]" {
			t.Errorf("quarantined accounts: %s, want []", r.stdout)
		}
		b.slotctl(t, "", "accounts", "list", "--state", "sleeping").fails(t, 2, "cooldown", "quarantined")
	})

	t.Run("ResetDeactivateActivateSetPassword", func(t *testing.T) {
		id := accountID(t, b, "acc1@example.com")
		r := b.slotctl(t, "", "-o", "json", "accounts", "reset", id).must(t)
		if acc := decodeJSON[jsonAccount](t, r.stdout); acc.State != "ACCOUNT_STATE_AVAILABLE" || acc.ConsecutiveFailures != 0 {
			t.Errorf("after reset: %+v", acc)
		}
		r = b.slotctl(t, "", "-o", "json", "accounts", "deactivate", id).must(t)
		if acc := decodeJSON[jsonAccount](t, r.stdout); acc.State != "ACCOUNT_STATE_DISABLED" || acc.Active {
			t.Errorf("after deactivate: %+v", acc)
		}
		r = b.slotctl(t, "", "-o", "json", "accounts", "activate", id).must(t)
		if acc := decodeJSON[jsonAccount](t, r.stdout); acc.State != "ACCOUNT_STATE_AVAILABLE" {
			t.Errorf("after activate: %+v", acc)
		}
		b.slotctl(t, "n3w-pass\n", "accounts", "set-password", id).must(t)
		r = b.slotctl(t, "", "accounts", "get", id).must(t)
		if !strings.Contains(r.stdout, "acc1@example.com") || strings.Contains(r.stdout, "n3w-pass") {
			t.Errorf("get:\n%s", r.stdout)
		}
		b.slotctl(t, "", "accounts", "get", "999999").fails(t, 1, "NotFound")
	})

	t.Run("SetPasswordTimeoutStartsOnceThePasswordIsTyped", func(t *testing.T) {
		id := accountID(t, b, "acc1@example.com")
		b.slotctlTyping(t, "slow-typist-pass\n", slowTyping, "--timeout", "2s", "accounts", "set-password", id).must(t)
		b.slotctl(t, "", "accounts", "set-password", "x").fails(t, 2, `"x" is not an account id`)
	})

	t.Run("ImportCSVSkipsExistingAndReportsFailures", func(t *testing.T) {
		csv := "email,password,phone\n" +
			"acc1@example.com,whatever,\n" + // exists
			"acc3@example.com,pw3,+33100000003\n" +
			"bad-email,pw4,\n" +
			"acc5@example.com,pw5,+33100000005\n"
		path := filepath.Join(t.TempDir(), "accounts.csv")
		if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
			t.Fatal(err)
		}
		r := b.slotctl(t, "", "accounts", "import", path)
		r.fails(t, 1, "1 of 4 accounts failed")
		for _, want := range []string{"created 2, skipped 1", "line 4", "bad-email"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("summary lacks %q:\n%s", want, r.stdout)
			}
		}
		// The same file from stdin, as JSON: everything exists now.
		r = b.slotctl(t, csv, "-o", "json", "accounts", "import", "-")
		res := decodeJSON[importResult](t, r.stdout)
		if res.Created != 0 || res.Skipped != 3 || len(res.Failed) != 1 {
			t.Errorf("second import: %+v", res)
		}
		// AccountPool lists 1,000 failures per stream: a longer batch
		// could leave some without their line.
		b.slotctl(t, csv, "accounts", "import", "--batch", "1001", "-").fails(t, 2, "--batch 1001", "at most 1000")
	})

	t.Run("PoolStatusAndUsage", func(t *testing.T) {
		r := b.slotctl(t, "", "pool", "status").must(t)
		if !strings.Contains(r.stdout, "TOTAL ACTIVE") || !strings.Contains(r.stdout, "AVAILABLE") {
			t.Errorf("pool status:\n%s", r.stdout)
		}
		r = b.slotctl(t, "", "-o", "json", "pool", "status").must(t)
		st := decodeJSON[map[string]any](t, r.stdout)
		if st["total_active"] != float64(3) || st["available"] != float64(3) {
			t.Errorf("pool status JSON: %v", st)
		}
		r = b.slotctl(t, "", "usage", "list", "--since", "1h", "--result", "login_fail").must(t)
		if !strings.Contains(r.stdout, "login_fail") || !strings.Contains(r.stdout, "bad password") || !strings.Contains(r.stdout, "fra") {
			t.Errorf("usage list:\n%s", r.stdout)
		}
		r = b.slotctl(t, "", "usage", "list", "--result", "success").must(t)
		if n := strings.Count(strings.TrimSpace(r.stdout), "\n"); n != 0 {
			t.Errorf("no success was recorded, got:\n%s", r.stdout)
		}
		r = b.slotctl(t, "", "usage", "stats", "--since", "24h").must(t)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 2 || !strings.Contains(lines[1], "acc1@example.com") || len(strings.Fields(lines[1])) != 11 {
			t.Errorf("usage stats:\n%s", r.stdout)
		} else if f := strings.Fields(lines[1]); f[2] != "1" || f[5] != "1" || f[8] != "0" || f[10] != "0" {
			t.Errorf("usage stats row %q: want 1 use, 1 login failure, 0 aborted, 0 logins (the release did not say it logged in)", lines[1])
		}
	})

	// A release's detail is free text, often a page's or a browser's
	// message over several lines: a table cell must stay on its row.
	t.Run("UsageListKeepsALeaseOnOneRow", func(t *testing.T) {
		lease, err := b.ap.Acquire(context.Background(), &apv1.AcquireRequest{MissionCode: "bel", Holder: "checker-1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.ap.Release(context.Background(), &apv1.ReleaseRequest{
			LeaseId: lease.GetLease().GetLeaseId(), FencingToken: lease.GetLease().GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_ERROR,
			Detail: "unknown page:\nServices will be back shortly\r\nPlease try again",
		}); err != nil {
			t.Fatal(err)
		}
		r := b.slotctl(t, "", "usage", "list", "--mission", "bel").must(t)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 2 || !strings.Contains(lines[1], "Please try again") || !strings.Contains(lines[1], "bel") {
			t.Errorf("want a header and one row for the one lease:\n%s", r.stdout)
		}
	})
}

func accountID(t *testing.T, b *testBundle, email string) string {
	t.Helper()
	r := b.slotctl(t, "", "-o", "json", "accounts", "list").must(t)
	for _, a := range decodeJSON[[]jsonAccount](t, r.stdout) {
		if a.Email == email {
			if _, err := strconv.ParseInt(a.ID, 10, 64); err != nil {
				t.Fatalf("id %q", a.ID)
			}
			return a.ID
		}
	}
	t.Fatalf("no account %s", email)
	return ""
}

// TestAccountsCSVKeepsPasswordSpaces: a password is what the portal
// checks, so the CSV's spaces around it are part of it, quoted or not;
// around an email or a phone they are layout.
func TestAccountsCSVKeepsPasswordSpaces(t *testing.T) {
	t.Parallel()
	csv := "email, password ,phone\n" +
		` acc1@example.com ," pass word ", +33100000001` + "\n" +
		`acc2@example.com,  two leading and one trailing ,+33100000002 ` + "\n"
	var stderr strings.Builder
	a := &app{io: IO{Stdin: strings.NewReader(csv + "acc3@example.com,plain,\n"), Stderr: &stderr}}
	rows, err := a.readAccountsCSV("-")
	if err != nil {
		t.Fatal(err)
	}
	// Kept, but said: "a, b" is a common way to write CSV by hand.
	for _, want := range []string{"line 2: the password of acc1@example.com starts or ends with white space", "line 3: the password of acc2@example.com"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", stderr.String(), want)
		}
	}
	if strings.Contains(stderr.String(), "acc3") || strings.Contains(stderr.String(), "pass word") {
		t.Errorf("stderr %q warns of a plain password, or shows one", stderr.String())
	}
	rows = rows[:len(rows)-1]
	want := []accountRow{
		{line: 2, email: "acc1@example.com", password: " pass word ", phone: "+33100000001"},
		{line: 3, email: "acc2@example.com", password: "  two leading and one trailing ", phone: "+33100000002"},
	}
	if len(rows) != len(want) {
		t.Fatalf("read %+v, want %+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d: read %+v, want %+v", i, rows[i], want[i])
		}
	}
}

// TestAccountsImportErrorComesAfterTheSummarySoFar: the streams an import
// sent before an error stay imported: what they created and the rows that
// failed are printed before the error, as import-legacy does.
func TestAccountsImportErrorComesAfterTheSummarySoFar(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// One stream per 100 s: the second batch's stream is refused, and its
	// wait does not fit in the run's 5 s.
	b.apEnv = append(b.apEnv, "RATE_LIMIT_RPS=0.01", "RATE_LIMIT_BURST=1")
	b.restartAccountPool(t)
	file := filepath.Join(t.TempDir(), "accounts.csv")
	csv := "email,password,phone\nok1@example.com,pw1,\nnot-an-email,pw2,\nok2@example.com,pw3,\nok3@example.com,pw4,\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := b.slotctlCtx(t, ctx, "", "accounts", "import", file, "--batch", "2")
	r.fails(t, 1, "ResourceExhausted")
	for _, want := range []string{"created 1, skipped 0 (already in the pool), failed 1", "line 3", "not-an-email"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q: no summary of the batch imported before the error:\n%s", want, r.stdout)
		}
	}
}
