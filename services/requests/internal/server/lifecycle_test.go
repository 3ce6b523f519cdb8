package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// slotFound makes a new request (window 2030-07-01..10, fra/paris/tourism)
// SLOT_FOUND with the slots given.
func slotFound(t *testing.T, c requestsv1.RequestsServiceClient, slots ...*requestsv1.Slot) *requestsv1.AppointmentRequest {
	t.Helper()
	r := createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{})
	cl := claimOne(t, c, "fra")
	report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slots...)
	if got := getRequest(t, c, r.GetId()); got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_SLOT_FOUND {
		t.Fatalf("request after the check = %v, want SLOT_FOUND", got)
	}
	return r
}

func confirmBooked(c requestsv1.RequestsServiceClient, t *testing.T, id string) (*requestsv1.AppointmentRequest, error) {
	resp, err := c.ConfirmBooked(testkit.Context(t), &requestsv1.ConfirmBookedRequest{Id: id})
	return resp.GetRequest(), err
}

func resumeWatching(c requestsv1.RequestsServiceClient, t *testing.T, id string) (*requestsv1.AppointmentRequest, error) {
	resp, err := c.ResumeWatching(testkit.Context(t), &requestsv1.ResumeWatchingRequest{Id: id})
	return resp.GetRequest(), err
}

// wantPrecondition asserts FAILED_PRECONDITION with a PreconditionFailure
// about the request's status.
func wantPrecondition(t *testing.T, err error, requestID string) {
	t.Helper()
	st := testkit.WantCode(t, err, codes.FailedPrecondition)
	for _, d := range st.Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok && len(pf.GetViolations()) == 1 {
			v := pf.GetViolations()[0]
			if v.GetType() != "STATUS" || v.GetSubject() != "request/"+requestID || v.GetDescription() == "" {
				t.Fatalf("violation = %v", v)
			}
			return
		}
	}
	t.Fatalf("%v carries no PreconditionFailure", err)
}

func typesOf(t *testing.T, b *testBundle, requestID string) []string {
	t.Helper()
	var out []string
	for _, e := range eventsTable(t, b) {
		if e.requestID == requestID {
			out = append(out, e.typ)
		}
	}
	return out
}

func TestSlotLifecycle(t *testing.T) {
	t.Parallel()

	t.Run("ConfirmBookedEndsASlotFoundRequestOnce", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		r := slotFound(t, c, slotP("paris", "tourism", "2030-07-03"))
		b.clock.Advance(time.Minute)
		booked, err := confirmBooked(c, t, r.GetId())
		if err != nil {
			t.Fatal(err)
		}
		if booked.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_BOOKED || len(booked.GetMatchedSlots()) != 1 {
			t.Fatalf("booked = %v", booked)
		}
		// A retry gets the same answer and writes no second event.
		again, err := confirmBooked(c, t, r.GetId())
		if err != nil || again.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_BOOKED ||
			!again.GetUpdatedAt().AsTime().Equal(booked.GetUpdatedAt().AsTime()) {
			t.Fatalf("second ConfirmBooked = %v, %v", again, err)
		}
		if got := typesOf(t, b, r.GetId()); len(got) != 3 || got[2] != "booked" {
			t.Fatalf("events = %v, want created, slot_found, booked", got)
		}
		// BOOKED is final: not resumed, not cancelled, not claimed.
		_, err = resumeWatching(c, t, r.GetId())
		wantPrecondition(t, err, r.GetId())
		_, err = c.CancelAppointmentRequest(testkit.Context(t), &requestsv1.CancelAppointmentRequestRequest{Id: r.GetId()})
		wantPrecondition(t, err, r.GetId())
		if got := claim(t, c, 100, 0); len(got) != 0 {
			t.Fatalf("a booked request's mission was claimed: %v", got)
		}
		list, err := c.ListAppointmentRequests(testkit.Context(t), &requestsv1.ListAppointmentRequestsRequest{Status: requestsv1.RequestStatus_REQUEST_STATUS_BOOKED})
		if err != nil || len(list.GetRequests()) != 1 || list.GetRequests()[0].GetId() != r.GetId() {
			t.Fatalf("list BOOKED = %v, %v", list, err)
		}
	})

	t.Run("ConfirmBookedNeedsASlotFoundRequest", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		pending := createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{mission: "bel"})
		_, err := confirmBooked(c, t, pending.GetId())
		wantPrecondition(t, err, pending.GetId())
		if _, err := c.CancelAppointmentRequest(testkit.Context(t), &requestsv1.CancelAppointmentRequestRequest{Id: pending.GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err = confirmBooked(c, t, pending.GetId())
		wantPrecondition(t, err, pending.GetId())
		if got := getRequest(t, c, pending.GetId()).GetStatus(); got != requestsv1.RequestStatus_REQUEST_STATUS_CANCELLED {
			t.Fatalf("status after refused calls = %v", got)
		}
		if got := typesOf(t, b, pending.GetId()); len(got) != 2 {
			t.Fatalf("events = %v, want created, cancelled", got)
		}
	})

	t.Run("UnknownOrMalformedIDs", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		for _, call := range []func(requestsv1.RequestsServiceClient, *testing.T, string) (*requestsv1.AppointmentRequest, error){confirmBooked, resumeWatching} {
			_, err := call(c, t, "0190f5a4-0000-7000-8000-000000000000")
			testkit.WantCode(t, err, codes.NotFound)
			_, err = call(c, t, "")
			wantViolation(t, err, "id")
			_, err = call(c, t, "not-a-uuid")
			wantViolation(t, err, "id")
		}
	})

	t.Run("ResumeWatchingDoesNotAnnounceTheMissedSlotAgain", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		missed := &requestsv1.Slot{Centre: "paris", VisaCategory: "tourism", Date: "2030-07-03", Time: "09:30"}
		r := slotFound(t, c, missed)
		resumed, err := resumeWatching(c, t, r.GetId())
		if err != nil {
			t.Fatal(err)
		}
		if resumed.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_PENDING || len(resumed.GetMatchedSlots()) != 0 ||
			len(resumed.GetMissedSlots()) != 1 || resumed.GetMissedSlots()[0].GetTime() != "09:30" {
			t.Fatalf("resumed = %v", resumed)
		}
		// Resuming a pending request again changes nothing.
		if again, err := resumeWatching(c, t, r.GetId()); err != nil || len(again.GetMissedSlots()) != 1 {
			t.Fatalf("second ResumeWatching = %v, %v", again, err)
		}

		// The portal still shows the same slot (spelt differently): the
		// request is checked but not SLOT_FOUND again.
		cl := claimOne(t, c, "fra")
		same := &requestsv1.Slot{Centre: " Paris", VisaCategory: "TOURISM", Date: "2030-07-03", Time: "09:30"}
		if got := report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, same).GetMatched(); len(got) != 0 {
			t.Fatalf("the missed slot was announced again: %v", got)
		}
		if got := getRequest(t, c, r.GetId()); got.GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_PENDING || got.GetCheckCount() != 2 {
			t.Fatalf("after the same slot = %v", got)
		}

		// Another time on the same day is another slot: announced, alone.
		cl = claimOne(t, c, "fra")
		other := &requestsv1.Slot{Centre: "paris", VisaCategory: "tourism", Date: "2030-07-03", Time: "11:00"}
		matched := report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, same, other).GetMatched()
		if len(matched) != 1 || len(matched[0].GetMatchedSlots()) != 1 || matched[0].GetMatchedSlots()[0].GetTime() != "11:00" {
			t.Fatalf("matched = %v, want the 11:00 slot only", matched)
		}
		want := []string{"created", "slot_found", "watching_resumed", "slot_found"}
		if got := typesOf(t, b, r.GetId()); len(got) != len(want) || got[2] != want[2] || got[3] != want[3] {
			t.Fatalf("events = %v, want %v", got, want)
		}

		// Missed again: both slots are remembered, each once.
		resumed, err = resumeWatching(c, t, r.GetId())
		if err != nil || len(resumed.GetMissedSlots()) != 2 {
			t.Fatalf("second resume = %v, %v", resumed, err)
		}
	})

	t.Run("ResumeWatchingNeedsASlotFoundRequest", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		r := createRequest(t, c, createApplicant(t, c).GetId(), reqArgs{})
		if _, err := c.CancelAppointmentRequest(testkit.Context(t), &requestsv1.CancelAppointmentRequestRequest{Id: r.GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err := resumeWatching(c, t, r.GetId())
		wantPrecondition(t, err, r.GetId())
	})

	t.Run("EventsStreamWithTheRequestAsItBecame", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		r1 := slotFound(t, c, slotP("paris", "tourism", "2030-07-03"))
		ctx, cancel := context.WithCancel(testkit.Context(t))
		defer cancel()
		s, err := c.WatchEvents(ctx, &requestsv1.WatchEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		receive(t, s, 2) // created, slot_found
		if _, err := resumeWatching(c, t, r1.GetId()); err != nil {
			t.Fatal(err)
		}
		cl := claimOne(t, c, "fra")
		report(t, c, cl.GetClaimId(), requestsv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND, slotP("paris", "tourism", "2030-07-04"))
		if _, err := confirmBooked(c, t, r1.GetId()); err != nil {
			t.Fatal(err)
		}
		var got []*requestsv1.WatchEventsResponse
		for range 3 {
			ev, err := s.Recv()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev)
		}
		if got[0].GetType() != requestsv1.EventType_EVENT_TYPE_WATCHING_RESUMED ||
			got[0].GetRequest().GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_PENDING ||
			len(got[0].GetRequest().GetMissedSlots()) != 1 || got[0].GetOccurredAt() == nil {
			t.Fatalf("resumed event = %v", got[0])
		}
		if got[1].GetType() != requestsv1.EventType_EVENT_TYPE_SLOT_FOUND || got[1].GetRequest().GetMatchedSlots()[0].GetDate() != "2030-07-04" {
			t.Fatalf("second slot_found event = %v", got[1])
		}
		if got[2].GetType() != requestsv1.EventType_EVENT_TYPE_BOOKED ||
			got[2].GetRequest().GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_BOOKED || got[2].GetRequest().GetId() != r1.GetId() {
			t.Fatalf("booked event = %v", got[2])
		}
	})

	t.Run("OnlyAdminsChangeTheLifecycle", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		r := slotFound(t, c, slotP("paris", "tourism", "2030-07-03"))
		for _, tok := range []string{readerToken, checkerToken} {
			other := requestsv1.NewRequestsServiceClient(b.server.dial(t, tok))
			_, err := confirmBooked(other, t, r.GetId())
			testkit.WantCode(t, err, codes.PermissionDenied)
			_, err = resumeWatching(other, t, r.GetId())
			testkit.WantCode(t, err, codes.PermissionDenied)
		}
	})
}
