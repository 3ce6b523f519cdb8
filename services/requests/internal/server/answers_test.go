package server_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

// gRPCClientLimit is what a gRPC client receives by default; the test
// clients keep that default, as the Checker and slotctl do.
const gRPCClientLimit = 4 << 20

// Names of 32 characters: a report of 10,000 slots named so is about 0.9
// MB (the server reads up to about 1 MB), and five requests holding them
// all about 4.5 MB.
const (
	longCentre   = "Paris Visa Application Centre 01"
	longCategory = "Short stay (Schengen C) tourism."
)

// manySlots is n distinct slots for longCentre/longCategory, one a minute
// from 2030-07-01 00:00 on (10,000 run into 2030-07-07).
func manySlots(n int) []*requestsv1.Slot {
	out := make([]*requestsv1.Slot, n)
	for i := range out {
		out[i] = &requestsv1.Slot{Centre: longCentre, VisaCategory: longCategory,
			Date: fmt.Sprintf("2030-07-%02d", 1+i/1440), Time: fmt.Sprintf("%02d:%02d", i%1440/60, i%60)}
	}
	return out
}

// bigRequests inserts n pending requests of mission, each with names of
// 100 characters and 20 missed slots with names as long, straight into
// the table (no applicant): about 5 KB each in an answer.
func bigRequests(t *testing.T, b *testBundle, mission string, n int) {
	t.Helper()
	name := strings.Repeat("x", domain.MaxTextLen)
	for _, stmt := range []string{
		`INSERT INTO requests.missions (code) VALUES ($1) ON CONFLICT DO NOTHING`,
		`INSERT INTO requests.appointment_requests (id, mission_code, centre, visa_category, earliest_date, latest_date,
		     missed_slots, created_at, updated_at)
		 SELECT gen_random_uuid(), $1, $2::text, $2::text, '2030-07-01', '2030-07-10',
		        (SELECT jsonb_agg(jsonb_build_object('centre', $2::text, 'visa_category', $2::text, 'date', '2030-07-02', 'time', format('%s:00', 10 + k)))
		         FROM generate_series(1, 20) AS k),
		        $4::timestamptz + i * interval '1 microsecond', $4
		 FROM generate_series(1, $3::int) AS i`,
	} {
		args := []any{mission}
		if strings.Contains(stmt, "$2") {
			args = append(args, name, n, start)
		}
		if _, err := b.pool.Exec(testkit.Context(t), stmt, args...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAnswersStayUnderTheClientLimit(t *testing.T) {
	t.Parallel()

	// The reviewer's scenario: a report of 10,000 slots that all match five
	// requests made an answer of about 4.5 MB, which the client refused although
	// the report was committed; resumed, the requests carried the 10,000
	// slots as missed into every later claim, which failed the same way, so
	// the mission was claimed for ever and never checked.
	t.Run("TenThousandMatchingSlotsThenResumeThenClaimAgain", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		a := createApplicant(t, c)
		var ids []string
		for range 5 {
			ids = append(ids, createRequest(t, c, a.GetId(), reqArgs{centre: longCentre, category: longCategory}).GetId())
		}
		slots := manySlots(apirule.MaxSlotsPerReport)

		cl := claimOne(t, c, "fra")
		resp := report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slots...)
		if size := proto.Size(resp); size > domain.MaxAnswerBytes {
			t.Fatalf("report answer is %d bytes", size)
		}
		if len(resp.GetMatched()) != 5 || resp.GetMatchedCount() != 5 {
			t.Fatalf("matched %d, matched_count %d, want 5 and 5", len(resp.GetMatched()), resp.GetMatchedCount())
		}
		for _, r := range resp.GetMatched() {
			ms := r.GetMatchedSlots()
			if len(ms) != domain.MaxSlotsPerRequest || r.GetMatchedSlotCount() != apirule.MaxSlotsPerReport {
				t.Fatalf("request %s keeps %d slots of %d, want %d of %d", r.GetId(), len(ms), r.GetMatchedSlotCount(),
					domain.MaxSlotsPerRequest, apirule.MaxSlotsPerReport)
			}
			// The earliest: 2030-07-01 from 00:00, a minute apart.
			if ms[0].GetDate() != "2030-07-01" || ms[0].GetTime() != "00:00" || ms[19].GetTime() != "00:19" {
				t.Fatalf("kept %v .. %v, want the earliest 20", ms[0], ms[19])
			}
		}

		for _, id := range ids {
			r, err := resumeWatching(c, t, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.GetMissedSlots()) != domain.MaxSlotsPerRequest || r.GetMatchedSlotCount() != 0 {
				t.Fatalf("resumed: %d missed slots, matched_slot_count %d", len(r.GetMissedSlots()), r.GetMatchedSlotCount())
			}
		}

		// The mission is claimable and its claim fits; the same slots are
		// seen again: the 20 passed up are left out, the next 20 announced.
		resp2, err := c.ClaimDueMissions(testkit.Context(t), &requestsv1.ClaimDueMissionsRequest{CheckerId: "checker-1", MaxMissions: 100})
		if err != nil {
			t.Fatalf("ClaimDueMissions after the resume: %v", err)
		}
		if len(resp2.GetClaims()) != 1 || len(resp2.GetClaims()[0].GetRequests()) != 5 {
			t.Fatalf("claims = %d, want the one of fra with its 5 requests", len(resp2.GetClaims()))
		}
		again := report(t, c, resp2.GetClaims()[0].GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slots...)
		if len(again.GetMatched()) != 5 {
			t.Fatalf("second report matched %d", len(again.GetMatched()))
		}
		if ms := again.GetMatched()[0].GetMatchedSlots(); ms[0].GetTime() != "00:20" || again.GetMatched()[0].GetMatchedSlotCount() != apirule.MaxSlotsPerReport-20 {
			t.Fatalf("second report kept %v first, count %d; want 00:20 and %d", ms[0], again.GetMatched()[0].GetMatchedSlotCount(), apirule.MaxSlotsPerReport-20)
		}
	})

	// Two missions of 1,000 requests of about 5 KB each: one claim of either
	// passes the limit. The answer stops before the budget, and the mission
	// left out is not claimed: the next call gets it.
	t.Run("ClaimStopsAtTheBudgetAndLeavesTheRestUnclaimed", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		bigRequests(t, b, "bel", apirule.MaxRequestsPerClaim)
		bigRequests(t, b, "fra", apirule.MaxRequestsPerClaim)

		first, err := c.ClaimDueMissions(testkit.Context(t), &requestsv1.ClaimDueMissionsRequest{CheckerId: "checker-1", MaxMissions: 100})
		if err != nil {
			t.Fatalf("ClaimDueMissions: %v", err)
		}
		if size := proto.Size(first); size > domain.MaxAnswerBytes {
			t.Fatalf("answer is %d bytes", size)
		}
		if len(first.GetClaims()) != 1 {
			t.Fatalf("%d claims, want 1", len(first.GetClaims()))
		}
		cl := first.GetClaims()[0]
		n := len(cl.GetRequests())
		if n == 0 || n >= apirule.MaxRequestsPerClaim {
			t.Fatalf("the claim carries %d requests, want fewer than %d", n, apirule.MaxRequestsPerClaim)
		}
		// What is answered is what is claimed, and no more.
		if got := count(t, b.pool, `SELECT count(*) FROM requests.claims`); got != 1 {
			t.Fatalf("%d claims logged, want 1", got)
		}
		if got := count(t, b.pool, `SELECT cardinality(request_ids) FROM requests.claims WHERE id = $1`, cl.GetClaimId()); got != n {
			t.Fatalf("the claim logs %d requests, answered %d", got, n)
		}
		if got := count(t, b.pool, `SELECT count(*) FROM requests.missions WHERE claim_id IS NOT NULL`); got != 1 {
			t.Fatalf("%d missions claimed, want 1", got)
		}

		second, err := c.ClaimDueMissions(testkit.Context(t), &requestsv1.ClaimDueMissionsRequest{CheckerId: "checker-2", MaxMissions: 100})
		if err != nil {
			t.Fatalf("second ClaimDueMissions: %v", err)
		}
		if len(second.GetClaims()) != 1 || second.GetClaims()[0].GetMissionCode() == cl.GetMissionCode() {
			t.Fatalf("second call claims %v, want the other mission", second.GetClaims())
		}

		// The first mission's next claim carries the requests left out
		// (fewer than fit), unchecked so far, so first.
		report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT)
		next := claimOne(t, c, cl.GetMissionCode())
		seen := map[string]bool{}
		for _, r := range append(cl.GetRequests(), next.GetRequests()...) {
			seen[r.GetId()] = true
		}
		if len(seen) != apirule.MaxRequestsPerClaim {
			t.Fatalf("the two claims carry %d requests between them, want all %d", len(seen), apirule.MaxRequestsPerClaim)
		}
	})

	t.Run("ListPageStopsAtTheBudget", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		bigRequests(t, b, "fra", 1000)
		var (
			token string
			total int
			pages int
		)
		for {
			resp, err := c.ListAppointmentRequests(testkit.Context(t), &requestsv1.ListAppointmentRequestsRequest{PageSize: 1000, PageToken: token})
			if err != nil {
				t.Fatalf("ListAppointmentRequests: %v", err)
			}
			if size := proto.Size(resp); size > domain.MaxAnswerBytes {
				t.Fatalf("page is %d bytes", size)
			}
			total += len(resp.GetRequests())
			pages++
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if total != 1000 || pages < 2 {
			t.Fatalf("%d requests in %d pages, want 1000 in more than one", total, pages)
		}
	})
}
