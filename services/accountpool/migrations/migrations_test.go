package migrations_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/accountpool/migrations"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
)

func tables(t *testing.T, db *pgxpool.Pool) string {
	t.Helper()
	var names []string
	rows, err := db.Query(context.Background(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'accountpool' AND table_name <> 'goose_db_version' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// TestUpDownUp checks that down really reverses up, through the same
// command the binary and the Kubernetes Job run.
func TestUpDownUp(t *testing.T) {
	t.Parallel()
	db := pgtest.NewPool(t) // an empty database
	ctx := context.Background()
	run := func(cmd string) string {
		t.Helper()
		var out bytes.Buffer
		if err := migrations.Set.Command(ctx, db, []string{cmd}, &out); err != nil {
			t.Fatalf("migrate %s: %v", cmd, err)
		}
		return out.String()
	}
	if out := run("up"); !strings.Contains(out, "00001_accounts.sql") {
		t.Fatalf("up printed %q", out)
	}
	if got := tables(t, db); got != "accounts,usage_log" {
		t.Fatalf("after up: %q", got)
	}
	if out := run("status"); !strings.Contains(out, "applied") {
		t.Fatalf("status printed %q", out)
	}
	run("down") // 00006: the acquire id
	var acquireIDs int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'accountpool'
		AND column_name = 'acquire_id'`).Scan(&acquireIDs); err != nil || acquireIDs != 0 {
		t.Fatalf("after the acquire id's down: %d acquire_id columns left (%v)", acquireIDs, err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO accountpool.accounts (email, password_ciphertext, created_at, updated_at) VALUES ('a@example.com', '', now(), now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO accountpool.usage_log (lease_id, account_id, fencing_token, mission_code, holder, result, acquired_at)
		SELECT gen_random_uuid(), id, 1, 'fra', 'c', 'aborted', now() FROM accountpool.accounts`); err != nil {
		t.Fatalf("the usage log refuses 'aborted': %v", err)
	}
	run("down") // 00005: the aborted outcome; its rows go back to error
	var result string
	if err := db.QueryRow(ctx, `SELECT result FROM accountpool.usage_log`).Scan(&result); err != nil || result != "error" {
		t.Fatalf("after the aborted outcome's down, the aborted lease's result is %q (%v), want error", result, err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO accountpool.usage_log (lease_id, account_id, fencing_token, mission_code, holder, result, acquired_at)
		SELECT gen_random_uuid(), id, 1, 'fra', 'c', 'aborted', now() FROM accountpool.accounts`); err == nil {
		t.Fatal("after the aborted outcome's down, the usage log still takes 'aborted'")
	}
	run("down") // 00004: the unused outcome
	if _, err := db.Exec(ctx, `INSERT INTO accountpool.usage_log (lease_id, account_id, fencing_token, mission_code, holder, result, acquired_at)
		SELECT gen_random_uuid(), id, 1, 'fra', 'c', 'unused', now() FROM accountpool.accounts`); err == nil {
		t.Fatal("after the unused outcome's down, the usage log still takes 'unused'")
	}
	if _, err := db.Exec(ctx, `DELETE FROM accountpool.accounts`); err != nil {
		t.Fatal(err)
	}
	run("down") // 00003: the session state and the login flag
	var cols int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'accountpool'
		AND column_name IN ('session_ciphertext', 'session_expires_at', 'logged_in')`).Scan(&cols); err != nil || cols != 0 {
		t.Fatalf("after the session migration's down: %d of its columns left (%v)", cols, err)
	}
	run("down") // 00002: the rest-end index
	if got := tables(t, db); got != "accounts,usage_log" {
		t.Fatalf("after one down: %q", got)
	}
	run("down") // 00001: the tables
	if got := tables(t, db); got != "" {
		t.Fatalf("after down: %q", got)
	}
	if out := run("status"); !strings.Contains(out, "pending") {
		t.Fatalf("status after down printed %q", out)
	}
	run("up")
	if got := tables(t, db); got != "accounts,usage_log" {
		t.Fatalf("after up again: %q", got)
	}
	if out := run("up"); !strings.Contains(out, "no pending") {
		t.Fatalf("second up printed %q", out)
	}
	if err := migrations.Set.Command(ctx, db, []string{"sideways"}, &bytes.Buffer{}); err == nil {
		t.Fatal("unknown migrate command accepted")
	}
}

// TestLint: indexes of later migrations are built without blocking writes.
func TestLint(t *testing.T) {
	t.Parallel()
	if err := migrations.Set.Lint(); err != nil {
		t.Error(err)
	}
}
