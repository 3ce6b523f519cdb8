package store

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// TestClaimReadsOnlyTheAnsweredMissedSlots: a claim shows a request's last
// domain.MaxSlotsPerRequest missed slots, so the claim query reads only
// that tail of the up to domain.MaxMissedSlots kept, and the tail is the
// one the request's own answer shows.
func TestClaimReadsOnlyTheAnsweredMissedSlots(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	s := New(pgtest.NewPool(t, migrations.Set))
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)
	full, short := uuid.New(), uuid.New()
	for _, stmt := range []string{
		`INSERT INTO requests.missions (code) VALUES ('fra')`,
		// full has the most missed slots a request keeps, short fewer
		// than a claim shows: each the n-th at 2030-07-01 plus n minutes.
		`INSERT INTO requests.appointment_requests (id, mission_code, centre, visa_category, earliest_date, latest_date,
		     missed_slots, created_at, updated_at)
		 SELECT u.id, 'fra', 'London', 'tourism', '2030-07-01', '2030-07-10',
		        (SELECT jsonb_agg(jsonb_build_object('centre', 'London', 'visa_category', 'tourism',
		                 'date', to_char(timestamp '2030-07-01' + k * interval '1 minute', 'YYYY-MM-DD'),
		                 'time', to_char(timestamp '2030-07-01' + k * interval '1 minute', 'HH24:MI')) ORDER BY k)
		         FROM generate_series(1, u.n) AS k),
		        $3::timestamptz - interval '1 hour', $3::timestamptz - interval '1 hour'
		 FROM (VALUES ($1::uuid, $4::int), ($2::uuid, 5)) AS u(id, n)`,
	} {
		args := []any{}
		if strings.Contains(stmt, "$") {
			args = []any{full, short, now, domain.MaxMissedSlots}
		}
		if _, err := s.pool.Exec(ctx, stmt, args...); err != nil {
			t.Fatal(err)
		}
	}
	claims, err := s.ClaimDueMissions(ctx, ClaimParams{CheckerID: "c1", Max: 1, TTL: time.Minute, Walls: domain.DefaultWallRules, Now: now})
	if err != nil || len(claims) != 1 || len(claims[0].Requests) != 2 {
		t.Fatalf("claims %+v, %v; want one of fra with both requests", claims, err)
	}
	for _, c := range claims[0].Requests {
		stored, err := s.GetRequest(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := stored.AnsweredMissedSlots()
		if len(c.MissedSlots) > domain.MaxSlotsPerRequest {
			t.Errorf("request %s: the claim read %d missed slots, want at most the %d it shows", c.ID, len(c.MissedSlots), domain.MaxSlotsPerRequest)
		}
		if got := c.AnsweredMissedSlots(); !slices.Equal(got, want) {
			t.Errorf("request %s: the claim shows missed slots %v, its answer %v", c.ID, got, want)
		}
		if c.ID == full && (len(want) != domain.MaxSlotsPerRequest || len(stored.MissedSlots) != domain.MaxMissedSlots) {
			t.Errorf("full request: %d missed slots kept, %d shown; the test wants %d and %d",
				len(stored.MissedSlots), len(want), domain.MaxMissedSlots, domain.MaxSlotsPerRequest)
		}
		if c.ID == short && len(c.MissedSlots) != 5 {
			t.Errorf("short request: the claim read %d missed slots, want its 5", len(c.MissedSlots))
		}
	}
}
