package store

import (
	"cmp"
	"fmt"
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

// TestACheckKeepsItsSlotCountAndTheMatchedSlots: a check row keeps how many
// slots the portal showed and, of them, the earliest
// domain.MaxSlotsPerRequest that matched a claimed request, not the whole
// list a report may carry (10,000 slots, about 900 KB of JSON a row).
func TestACheckKeepsItsSlotCountAndTheMatchedSlots(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	s := New(pgtest.NewPool(t, migrations.Set))
	now := time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)
	a, b := uuid.New(), uuid.New()
	// a wants London in July 1-10, b Paris on July 20.
	if _, err := s.pool.Exec(ctx, `INSERT INTO requests.missions (code) VALUES ('fra');
		INSERT INTO requests.appointment_requests (id, mission_code, centre, visa_category, earliest_date, latest_date, created_at, updated_at)
		VALUES ('`+a.String()+`', 'fra', 'London', 'tourism', '2030-07-01', '2030-07-10', '2030-05-01', '2030-05-01'),
		       ('`+b.String()+`', 'fra', 'Paris', 'tourism', '2030-07-20', '2030-07-20', '2030-05-01', '2030-05-01')`); err != nil {
		t.Fatal(err)
	}
	claims, err := s.ClaimDueMissions(ctx, ClaimParams{CheckerID: "c1", Max: 1, TTL: time.Minute, Walls: domain.DefaultWallRules, Now: now})
	if err != nil || len(claims) != 1 {
		t.Fatalf("claims %+v, %v", claims, err)
	}
	// 10,000 slots in August, of London, but for 30 in London in July
	// (a matches them) and one in Paris on July 20 (b matches it).
	var slots []domain.Slot
	day := func(m time.Month, d int) time.Time { return time.Date(2030, m, d, 0, 0, 0, 0, time.UTC) }
	for i := range 10000 - 31 {
		slots = append(slots, domain.Slot{Centre: "London", VisaCategory: "tourism", Date: day(time.August, 1+i%28), Time: fmt.Sprintf("%02d:%02d", i/60%24, i%60)})
	}
	for i := range 30 {
		slots = append(slots, domain.Slot{Centre: "London", VisaCategory: "tourism", Date: day(time.July, 10-i%10), Time: fmt.Sprintf("09:%02d", i)})
	}
	slots = append(slots, domain.Slot{Centre: "Paris", VisaCategory: "tourism", Date: day(time.July, 20), Time: "08:00"})
	res := domain.CheckResult{ClaimID: claims[0].ID, Outcome: domain.OutcomeSlotsFound, Slots: slots, AccountID: 1}
	rec, matched, err := s.ReportCheck(ctx, res, now, domain.DefaultWallRules, func(tz string, reqs []domain.Request) ([]domain.Request, []domain.Request) {
		return domain.ApplyCheck(reqs, res, now, domain.Zone(tz))
	})
	if err != nil || len(matched) != 2 {
		t.Fatalf("report: %+v, %d matched, %v; want both requests matched", rec, len(matched), err)
	}
	var (
		count int
		kept  []byte
		size  int
	)
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(slot_count, -1), slots, octet_length(slots::text) FROM requests.checks WHERE id = $1`, rec.ID).
		Scan(&count, &kept, &size); err != nil {
		t.Fatal(err)
	}
	got, err := slotsFromJSON(kept)
	if err != nil {
		t.Fatal(err)
	}
	// The earliest 20 of the 31 matched: July 1-10's 30 London slots
	// come first (3 a day), so July 1-6 and two of July 7.
	var want []domain.Slot
	for _, sl := range slots {
		if sl.Centre == "London" && sl.Date.Month() == time.July {
			want = append(want, sl)
		}
	}
	slices.SortFunc(want, func(x, y domain.Slot) int { return cmp.Or(x.Date.Compare(y.Date), strings.Compare(x.Time, y.Time)) })
	want = want[:domain.MaxSlotsPerRequest]
	if count != len(slots) || !slices.Equal(got, want) {
		t.Fatalf("the check keeps slot_count %d and %d slots (%d bytes of JSON); want %d and the earliest %d matched:\n got %v...\nwant %v",
			count, len(got), size, len(slots), domain.MaxSlotsPerRequest, got[:min(len(got), 3)], want)
	}
}
