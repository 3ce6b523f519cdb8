package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// The plan tests check that the statements whose cost should not grow with
// the table's history stay on indexes over a table that is mostly history,
// both as a custom plan (the first executions of a prepared statement) and
// as the generic plan Postgres may switch a prepared statement to.

var planNow = time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)

// historyPool is a database holding 10,000 pending requests over 200
// missions, 600 more whose window has passed, and 50,000 of history (90%
// expired, 5% slot_found, 5% cancelled), analyzed.
func historyPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t, migrations.Set)
	for _, stmt := range []string{
		`INSERT INTO requests.applicants (id, full_name, email, created_at, updated_at)
		SELECT ('00000000-0000-7000-8000-' || lpad(i::text, 12, '0'))::uuid, 'A', 'a@example.com', $1, $1
		FROM generate_series(0, 99) AS i`,
		`INSERT INTO requests.missions (code, timezone, created_at, updated_at)
		SELECT 'm' || i, (ARRAY['UTC', 'Asia/Tokyo', 'America/Los_Angeles'])[1 + i % 3], $1, $1
		FROM generate_series(0, 199) AS i`,
		`INSERT INTO requests.appointment_requests
		    (id, applicant_id, mission_code, centre, visa_category, earliest_date, latest_date, status, created_at, updated_at)
		SELECT gen_random_uuid(), ('00000000-0000-7000-8000-' || lpad((i % 100)::text, 12, '0'))::uuid,
		       'm' || (i % 200), 'paris', 'tourism', d, d + 10, s, $1::timestamptz - (60600 - i) * interval '1 minute', $1
		FROM (SELECT i,
		             CASE WHEN i >= 50000 THEN 'pending' WHEN i % 20 = 0 THEN 'slot_found'
		                  WHEN i % 20 = 1 THEN 'cancelled' ELSE 'expired' END AS s,
		             CASE WHEN i < 50000 THEN date '2029-01-01' + i % 300
		                  WHEN i < 50600 THEN date '2030-05-01' + i % 20
		                  ELSE date '2030-07-01' END AS d
		      FROM generate_series(0, 60599) AS i) g`,
		`ANALYZE`,
	} {
		var args []any
		if strings.Contains(stmt, "$1") {
			args = []any{planNow}
		}
		if _, err := pool.Exec(context.Background(), stmt, args...); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

// explain returns the plan of sql with args, custom or generic.
func explain(t *testing.T, pool *pgxpool.Pool, generic bool, sql string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var rows pgx.Rows
	if generic {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // read-only; the rollback also drops the settings
		name := "plan_" + strings.ReplaceAll(uuid.NewString(), "-", "")
		lits := make([]string, len(args))
		for i, a := range args {
			lits[i] = literal(t, a)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "PREPARE "+name+" AS "+sql); err != nil {
			t.Fatal(err)
		}
		defer conn.Exec(ctx, "DEALLOCATE "+name) //nolint:errcheck // the connection is released either way
		rows, err = tx.Query(ctx, "EXPLAIN EXECUTE "+name+"("+strings.Join(lits, ", ")+")", pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
	} else {
		var err error
		if rows, err = conn.Query(ctx, "EXPLAIN "+sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func literal(t *testing.T, a any) string {
	t.Helper()
	switch v := a.(type) {
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case time.Time:
		return "'" + v.Format(time.RFC3339Nano) + "'"
	case uuid.UUID:
		return "'" + v.String() + "'"
	case int, int32, int64:
		return fmt.Sprint(v)
	case bool:
		return fmt.Sprint(v)
	case []string:
		lits := make([]string, len(v))
		for i, s := range v {
			lits[i] = literal(t, s)
		}
		return "ARRAY[" + strings.Join(lits, ", ") + "]"
	case []time.Time:
		lits := make([]string, len(v))
		for i, d := range v {
			lits[i] = "date '" + d.Format(domain.DateLayout) + "'"
		}
		return "ARRAY[" + strings.Join(lits, ", ") + "]"
	}
	t.Fatalf("no literal for %T", a)
	return ""
}

// wantPlan fails unless plan uses every index named and neither scans a
// table sequentially nor sorts.
func wantPlan(t *testing.T, plan string, indexes ...string) {
	t.Helper()
	if strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Sort") {
		t.Fatalf("sequential scan or sort:\n%s", plan)
	}
	for _, idx := range indexes {
		if !strings.Contains(plan, idx) {
			t.Fatalf("plan does not use %s:\n%s", idx, plan)
		}
	}
}

func TestPlansStayOnIndexesOverHistory(t *testing.T) {
	t.Parallel()
	pool := historyPool(t)
	for _, generic := range []bool{false, true} {
		t.Run(fmt.Sprintf("Expiry/generic=%v", generic), func(t *testing.T) {
			md := missionDays{zones: []string{"America/Los_Angeles", "Asia/Tokyo", "UTC"}}
			for _, z := range md.zones {
				md.days = append(md.days, domain.Today(planNow, domain.Zone(z)))
			}
			md.latest = md.days[1]
			plan := explain(t, pool, generic, expireSQL, md.latest, planNow, expireBatch, md.zones, md.days)
			wantPlan(t, plan, "appointment_requests_pending_latest_idx", "appointment_requests_pkey")
		})
		// A page after the first, under each filter: the filter and the
		// keyset are both index conditions, and the index gives the order.
		pos := &Position{CreatedAt: planNow.Add(-30 * 24 * time.Hour), ID: uuid.MustParse("01900000-0000-7000-8000-000000000000")}
		for name, c := range map[string]struct {
			f   RequestFilter
			idx string
		}{
			"None":      {RequestFilter{}, "appointment_requests_page_idx"},
			"Status":    {RequestFilter{Status: domain.StatusSlotFound}, "appointment_requests_status_page_idx"},
			"Mission":   {RequestFilter{MissionCode: "m7"}, "appointment_requests_mission_page_idx"},
			"Applicant": {RequestFilter{ApplicantID: uuid.MustParse("00000000-0000-7000-8000-000000000007")}, "appointment_requests_applicant_idx"},
		} {
			t.Run(fmt.Sprintf("ListBy%s/generic=%v", name, generic), func(t *testing.T) {
				query, args := listRequestsQuery(c.f, pos, 51)
				plan := explain(t, pool, generic, query, args...)
				if generic && c.f.Status != "" {
					// Without the value, the planner takes each status for a
					// quarter of the table, where walking the page index and
					// filtering is as good; Postgres keeps to custom plans
					// while they are cheaper, as they are for a rare status.
					wantPlan(t, plan)
				} else {
					wantPlan(t, plan, c.idx)
				}
				if !regexp.MustCompile(`Index Cond: .*ROW\(created_at, id\) >`).MatchString(plan) {
					t.Fatalf("the keyset is not an index condition:\n%s", plan)
				}
			})
		}
	}
}
