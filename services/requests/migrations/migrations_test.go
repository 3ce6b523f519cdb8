package migrations_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// TestLint: indexes of later migrations are built without blocking writes.
func TestLint(t *testing.T) {
	t.Parallel()
	if err := migrations.Set.Lint(); err != nil {
		t.Error(err)
	}
}

// TestMissionSettingsBackfill: missions that exist when 00003 runs get the
// defaults (UTC, no portal) and were first seen with their oldest request.
func TestMissionSettingsBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t, migrations.Set)
	for { // back to before 00003
		var out strings.Builder
		if err := migrations.Set.Command(ctx, pool, []string{"down"}, &out); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "00003_") {
			break
		}
	}
	first := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, stmt := range []string{
		`INSERT INTO requests.missions (code) VALUES ('fra'), ('bel')`,
		`INSERT INTO requests.appointment_requests (id, mission_code, centre, visa_category, earliest_date, latest_date, created_at, updated_at)
		 SELECT gen_random_uuid(), 'fra', 'paris', 'tourism', '2030-07-01', '2030-07-10', $1::timestamptz + i * interval '1 day', $1
		 FROM generate_series(0, 2) AS i`,
	} {
		var args []any
		if strings.Contains(stmt, "$1") {
			args = []any{first}
		}
		if _, err := pool.Exec(ctx, stmt, args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := migrations.Set.Command(ctx, pool, []string{"up"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	var (
		portal, zone       string
		created, updated   time.Time
		belZone, belPortal string
	)
	if err := pool.QueryRow(ctx, `SELECT portal, timezone, created_at, updated_at FROM requests.missions WHERE code = 'fra'`).
		Scan(&portal, &zone, &created, &updated); err != nil {
		t.Fatal(err)
	}
	if portal != "" || zone != "UTC" || !created.Equal(first) || !updated.Equal(first) {
		t.Fatalf("fra: portal %q, timezone %q, created %v, updated %v", portal, zone, created, updated)
	}
	// bel has no request: it keeps the migration's time, and the defaults.
	if err := pool.QueryRow(ctx, `SELECT portal, timezone FROM requests.missions WHERE code = 'bel'`).Scan(&belPortal, &belZone); err != nil {
		t.Fatal(err)
	}
	if belPortal != "" || belZone != "UTC" {
		t.Fatalf("bel: portal %q, timezone %q", belPortal, belZone)
	}
}

// TestSlotLifecycleDown: reverting 00006 leaves a booked request found,
// drops the events of the new types, and applies again.
func TestSlotLifecycleDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t, migrations.Set)
	for _, stmt := range []string{
		`INSERT INTO requests.missions (code) VALUES ('fra')`,
		`INSERT INTO requests.appointment_requests (id, mission_code, centre, visa_category, earliest_date, latest_date, status, missed_slots, created_at, updated_at)
		 VALUES ('0190f5a4-0000-7000-8000-000000000001', 'fra', 'paris', 'tourism', '2030-07-01', '2030-07-10', 'booked',
		         '[{"centre":"paris","visa_category":"tourism","date":"2030-07-02"}]', now(), now())`,
		`INSERT INTO requests.events (type, request_id, request, occurred_at)
		 VALUES ('booked', '0190f5a4-0000-7000-8000-000000000001', '{}', now()), ('created', '0190f5a4-0000-7000-8000-000000000001', '{}', now())`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	for {
		var out strings.Builder
		if err := migrations.Set.Command(ctx, pool, []string{"down"}, &out); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "00006_") {
			break
		}
	}
	var status string
	var events int
	if err := pool.QueryRow(ctx, `SELECT status, (SELECT count(*) FROM requests.events) FROM requests.appointment_requests`).Scan(&status, &events); err != nil {
		t.Fatal(err)
	}
	if status != "slot_found" || events != 1 {
		t.Fatalf("after down: status %q, %d events, want slot_found and the created one", status, events)
	}
	if err := migrations.Set.Command(ctx, pool, []string{"up"}, io.Discard); err != nil {
		t.Fatal(err)
	}
}

// TestSlotCapsCutRowsWrittenBefore: 00009 cuts a request that holds more
// than 20 matched slots to the earliest 20 (counting them all) and more
// than 1,000 missed to the last 1,000, and leaves a small one as it was.
func TestSlotCapsCutRowsWrittenBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t, migrations.Set)
	for {
		var out strings.Builder
		if err := migrations.Set.Command(ctx, pool, []string{"down"}, &out); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "00009_") {
			break
		}
	}
	// 30 matched slots, dated from the 30th of July back to the 1st; 1,030
	// missed, numbered 1 to 1,030 in list order.
	for _, stmt := range []string{
		`INSERT INTO requests.missions (code) VALUES ('fra')`,
		`INSERT INTO requests.appointment_requests (id, mission_code, centre, visa_category, earliest_date, latest_date, status,
		     matched_slots, missed_slots, created_at, updated_at)
		 SELECT '0190f5a4-0000-7000-8000-000000000001', 'fra', 'paris', 'tourism', '2030-07-01', '2030-07-31', 'slot_found',
		        (SELECT jsonb_agg(jsonb_build_object('centre', 'paris', 'visa_category', 'tourism', 'date', '2030-07-' || lpad(i::text, 2, '0')) ORDER BY i DESC)
		         FROM generate_series(1, 30) AS i),
		        (SELECT jsonb_agg(jsonb_build_object('centre', 'paris', 'visa_category', 'tourism', 'date', '2030-07-15', 'time', lpad(i::text, 4, '0')) ORDER BY i)
		         FROM generate_series(1, 1030) AS i),
		        now(), now()`,
		`INSERT INTO requests.appointment_requests (id, mission_code, centre, visa_category, earliest_date, latest_date, status,
		     matched_slots, created_at, updated_at)
		 VALUES ('0190f5a4-0000-7000-8000-000000000002', 'fra', 'paris', 'tourism', '2030-07-01', '2030-07-31', 'slot_found',
		         '[{"centre":"paris","visa_category":"tourism","date":"2030-07-02"}]', now(), now())`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := migrations.Set.Command(ctx, pool, []string{"up"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	var (
		count, matched, missed    int
		firstMatched, lastMatched string
		firstMissed, lastMissed   string
		smallCount, smallMatched  int
	)
	if err := pool.QueryRow(ctx, `SELECT matched_slot_count, jsonb_array_length(matched_slots), jsonb_array_length(missed_slots),
		matched_slots->0->>'date', matched_slots->-1->>'date', missed_slots->0->>'time', missed_slots->-1->>'time'
		FROM requests.appointment_requests WHERE id = '0190f5a4-0000-7000-8000-000000000001'`).
		Scan(&count, &matched, &missed, &firstMatched, &lastMatched, &firstMissed, &lastMissed); err != nil {
		t.Fatal(err)
	}
	if count != 30 || matched != 20 || firstMatched != "2030-07-01" || lastMatched != "2030-07-20" {
		t.Errorf("matched: count %d, %d kept, %s to %s; want 30, the 20 earliest (2030-07-01 to 2030-07-20)", count, matched, firstMatched, lastMatched)
	}
	if missed != 1000 || firstMissed != "0031" || lastMissed != "1030" {
		t.Errorf("missed: %d kept, %s to %s; want the last 1,000 (0031 to 1030)", missed, firstMissed, lastMissed)
	}
	if err := pool.QueryRow(ctx, `SELECT matched_slot_count, jsonb_array_length(matched_slots)
		FROM requests.appointment_requests WHERE id = '0190f5a4-0000-7000-8000-000000000002'`).Scan(&smallCount, &smallMatched); err != nil {
		t.Fatal(err)
	}
	if smallCount != 1 || smallMatched != 1 {
		t.Errorf("small request: count %d, %d matched, want 1 and 1", smallCount, smallMatched)
	}
}

// TestMaintenanceOutcome: 00010 lets requests.checks hold the outcome
// maintenance; reverting it records those checks as failed (what the
// Checker reported before), and it applies again.
func TestMaintenanceOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t, migrations.Set)
	for _, stmt := range []string{
		`INSERT INTO requests.missions (code) VALUES ('fra')`,
		`INSERT INTO requests.claims (id, mission_code, checker_id, request_ids, claimed_at, expires_at, reported_at)
		 VALUES ('0190f5a4-0000-7000-8000-000000000001', 'fra', 'c1', '{}', now(), now(), now()),
		        ('0190f5a4-0000-7000-8000-000000000002', 'fra', 'c1', '{}', now(), now(), now())`,
		`INSERT INTO requests.checks (claim_id, mission_code, checker_id, account_id, outcome, slots, detail, checked_at)
		 VALUES ('0190f5a4-0000-7000-8000-000000000001', 'fra', 'c1', 1, 'maintenance', '[]', '', now()),
		        ('0190f5a4-0000-7000-8000-000000000002', 'fra', 'c1', 1, 'captcha', '[]', '', now())`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	downTo(t, ctx, pool, "00010_")
	var outcomes string
	if err := pool.QueryRow(ctx, `SELECT string_agg(outcome, ',' ORDER BY claim_id) FROM requests.checks`).Scan(&outcomes); err != nil {
		t.Fatal(err)
	}
	if outcomes != "failed,captcha" {
		t.Fatalf("after down: outcomes %s, want failed,captcha", outcomes)
	}
	if _, err := pool.Exec(ctx, `UPDATE requests.checks SET outcome = 'maintenance'`); err == nil {
		t.Fatal("after down: the constraint took maintenance")
	}
	if err := migrations.Set.Command(ctx, pool, []string{"up"}, io.Discard); err != nil {
		t.Fatal(err)
	}
}

// downTo reverts migrations until the one whose file name starts with
// prefix is reverted.
func downTo(t *testing.T, ctx context.Context, pool *pgxpool.Pool, prefix string) {
	t.Helper()
	for {
		var out strings.Builder
		if err := migrations.Set.Command(ctx, pool, []string{"down"}, &out); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), prefix) {
			return
		}
		if strings.Contains(out.String(), "00001_") {
			t.Fatalf("no migration %s reverted", prefix)
		}
	}
}

// TestPauseLevelUntilBackfill: 00011 gives each portal paused before it the
// end of its current pause as the end of the last pause that raised its
// level (what the level's reset was measured from until then), in batches,
// leaves a portal never paused without one, and reverts and applies again.
func TestPauseLevelUntilBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t, migrations.Set)
	downTo(t, ctx, pool, "00011_")
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	// 2,500 paused portals (more than one batch) and one never paused.
	if _, err := pool.Exec(ctx, `INSERT INTO requests.portals (name, paused_at, paused_until, pause_level, created_at, updated_at)
		SELECT 'p' || i, $1::timestamptz - interval '2 hours', $1::timestamptz + i * interval '1 second', 3, now(), now()
		FROM generate_series(1, 2500) AS i`, until); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO requests.portals (name, created_at, updated_at) VALUES ('never', now(), now())`); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Set.Command(ctx, pool, []string{"up"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	var wrong, null int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pause_level_until IS DISTINCT FROM paused_until AND name <> 'never'),
		count(*) FILTER (WHERE pause_level_until IS NULL) FROM requests.portals`).Scan(&wrong, &null); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 || null != 1 {
		t.Fatalf("%d paused portals without their pause's end, %d without one at all; want 0 and 1 (the one never paused)", wrong, null)
	}
	downTo(t, ctx, pool, "00011_")
	if _, err := pool.Exec(ctx, `SELECT pause_level_until FROM requests.portals`); err == nil {
		t.Fatal("after down: pause_level_until is still there")
	}
	if err := migrations.Set.Command(ctx, pool, []string{"up"}, io.Discard); err != nil {
		t.Fatal(err)
	}
}

// TestCheckSlotsBackfill: 00012 rewrites no check written before it: each
// keeps its whole list and a NULL slot_count, and its count is
// coalesce(slot_count, jsonb_array_length(slots)), as readers take it,
// until REQUESTS_RETENTION prunes it. Down drops slot_count and nothing
// else.
func TestCheckSlotsBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t, migrations.Set)
	downTo(t, ctx, pool, "00012_")
	for _, stmt := range []string{
		`INSERT INTO requests.missions (code) VALUES ('fra')`,
		`INSERT INTO requests.claims (id, mission_code, checker_id, request_ids, claimed_at, expires_at)
		 SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'fra', 'c1', '{}', now(), now()
		 FROM generate_series(1, 3) AS i`,
		// Check 1: 2,000 slots; the others none.
		`INSERT INTO requests.checks (claim_id, mission_code, checker_id, account_id, outcome, slots, detail, checked_at)
		 SELECT c.id, 'fra', 'c1', 1, CASE WHEN c.id = '00000000-0000-0000-0000-000000000001' THEN 'slots_found' ELSE 'no_slot' END,
		        CASE WHEN c.id = '00000000-0000-0000-0000-000000000001' THEN
		            (SELECT jsonb_agg(jsonb_build_object('centre', 'London', 'visa_category', 'tourism',
		                    'date', to_char(date '2030-08-01' + k % 28, 'YYYY-MM-DD'), 'time', '10:00'))
		             FROM generate_series(1, 2000) AS k)
		        ELSE '[]' END, '', now()
		 FROM requests.claims c`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	var before string
	if err := pool.QueryRow(ctx, `SELECT string_agg(slots::text, '|' ORDER BY id) FROM requests.checks`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Set.Command(ctx, pool, []string{"up"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	var (
		after        string
		counts       []int32
		withCountSet int
	)
	if err := pool.QueryRow(ctx, `SELECT string_agg(slots::text, '|' ORDER BY id),
		array_agg(coalesce(slot_count, jsonb_array_length(slots)) ORDER BY id), count(slot_count)
		FROM requests.checks`).Scan(&after, &counts, &withCountSet); err != nil {
		t.Fatal(err)
	}
	if after != before || withCountSet != 0 || !slices.Equal(counts, []int32{2000, 0, 0}) {
		t.Fatalf("after 00012: slots changed %v, %d rows with slot_count, counts %v; want the lists as they were, none, [2000 0 0]",
			after != before, withCountSet, counts)
	}
	downTo(t, ctx, pool, "00012_")
	if _, err := pool.Exec(ctx, `SELECT slot_count FROM requests.checks`); err == nil {
		t.Fatal("after down: slot_count is still there")
	}
	if err := migrations.Set.Command(ctx, pool, []string{"up"}, io.Discard); err != nil {
		t.Fatal(err)
	}
}

// TestCheckSlotsBackfillCommitsWithinAJobsDeadline: 00012 must finish
// inside what a run is given: the requests-migrate Job's
// activeDeadlineSeconds (600 s), and far less for a Requests that migrates
// at start (migrations.Set.Open runs before the metrics port serves
// /healthz: the liveness probe kills it after ~40 s). A busy portal's rows
// are 10,000-slot reports; a backfill that matched each slot against the
// claim's requests took about a second a row, and a run was killed before
// its first COMMIT. 00012 now rewrites no row: five such rows keep their
// row versions.
func TestCheckSlotsBackfillCommitsWithinAJobsDeadline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t, migrations.Set)
	downTo(t, ctx, pool, "00012_")
	const rows = 5
	for _, stmt := range []string{
		`INSERT INTO requests.missions (code) VALUES ('fra')`,
		// A claim of 50 London requests, each for August 1-10.
		`INSERT INTO requests.appointment_requests (id, mission_code, centre, visa_category, earliest_date, latest_date, created_at, updated_at)
		 SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'fra', 'London', 'tourism', '2030-08-01', '2030-08-10', now(), now()
		 FROM generate_series(1, 50) AS i`,
		fmt.Sprintf(`INSERT INTO requests.claims (id, mission_code, checker_id, request_ids, claimed_at, expires_at)
		 SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'fra', 'c1', (SELECT array_agg(id) FROM requests.appointment_requests), now(), now()
		 FROM generate_series(1, %d) AS i`, rows),
		// Each claim's check: 10,000 London slots over August.
		`WITH s AS (SELECT jsonb_agg(jsonb_build_object('centre', 'London', 'visa_category', 'tourism',
		                 'date', to_char(date '2030-08-01' + k % 28, 'YYYY-MM-DD'), 'time', to_char(time '00:00' + k * interval '1 minute', 'HH24:MI'))) AS j
		         FROM generate_series(1, 10000) AS k)
		 INSERT INTO requests.checks (claim_id, mission_code, checker_id, account_id, outcome, slots, detail, checked_at)
		 SELECT c.id, 'fra', 'c1', 1, 'slots_found', s.j, '', now() FROM requests.claims c, s`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	// The row versions before and after: a migration that rewrites no
	// row finishes in the time it takes to change the table's catalogue,
	// whatever the rows hold (the timing itself is left to the machine).
	versions := func() string {
		var v string
		if err := pool.QueryRow(ctx, `SELECT string_agg(ctid::text || '/' || xmin::text, ',' ORDER BY id) FROM requests.checks`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := versions()
	if err := migrations.Set.Command(ctx, pool, []string{"up"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if after := versions(); after != before {
		t.Fatalf("00012 rewrote the %d check rows of 10,000 slots (row versions %s, then %s): a backfill of such rows took ~2 s a row, so a batch of 1,000 outran the Job's 600 s deadline before its first COMMIT",
			rows, before, after)
	}
}
