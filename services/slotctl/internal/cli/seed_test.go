package cli

import (
	"context"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// TestSeed loads the demo's dataset through the real services (and a real
// portalsim), loads it again, and refuses what it cannot do.
func TestSeed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	requests := func(t *testing.T) []*rqv1.AppointmentRequest {
		t.Helper()
		resp, err := b.rq.ListAppointmentRequests(ctx, &rqv1.ListAppointmentRequestsRequest{PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetRequests()
	}
	applicants := func(t *testing.T) int {
		t.Helper()
		resp, err := b.rq.ListApplicants(ctx, &rqv1.ListApplicantsRequest{PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetApplicants())
	}
	ids := func(rs []seedRequest) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}

	// Without portalsim, as against a real cluster.
	r := b.slotctl(t, "", "-o", "json", "seed").must(t)
	first := decodeJSON[seedJSON](t, r.stdout)
	if first.Accounts != 6 || first.AccountsCreated != 6 || first.Applicants != 4 || first.ApplicantsCreated != 4 ||
		first.RequestsCreated != 4 || len(first.Requests) != 4 || first.SlotFreed {
		t.Fatalf("first load: %+v", first)
	}
	accs, err := b.ap.ListAccounts(ctx, &apv1.ListAccountsRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(accs.GetAccounts()); n != 6 {
		t.Fatalf("the pool has %d accounts, want 6", n)
	}
	got := requests(t)
	if len(got) != 4 || applicants(t) != 4 {
		t.Fatalf("Requests has %d requests, %d applicants; want 4 and 4", len(got), applicants(t))
	}
	var target *rqv1.AppointmentRequest
	for _, q := range got {
		if q.GetId() == first.Target {
			target = q
		}
	}
	s := first.Slot
	if target == nil || target.GetMissionCode() != s.MissionCode || target.GetCentre() != s.Centre || target.GetVisaCategory() != s.VisaCategory ||
		target.GetEarliestDate() > s.Date || s.Date > target.GetLatestDate() || target.GetStatus() != rqv1.RequestStatus_REQUEST_STATUS_PENDING {
		t.Fatalf("target %q is %v; the slot is %+v", first.Target, target, s)
	}
	if i := slices.IndexFunc(first.Requests, func(q seedRequest) bool { return q.ID == first.Target }); i < 0 || first.Requests[i].Applicant != "Amélie Laurent" {
		t.Fatalf("the target is not Amélie Laurent's request: %+v", first.Requests)
	}
	for _, secret := range []string{"demo-password-1", "P1234567"} {
		if strings.Contains(r.stdout, secret) {
			t.Errorf("the output holds %q", secret)
		}
	}

	// Again, with portalsim: nothing new in the services; portalsim gets
	// the accounts, the missions and the slot.
	ps, err := sim.New(sim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ps)
	t.Cleanup(srv.Close)
	r = b.slotctl(t, "", "-o", "json", "seed", "--portalsim", srv.URL, "--free-slot").must(t)
	again := decodeJSON[seedJSON](t, r.stdout)
	if again.AccountsCreated != 0 || again.ApplicantsCreated != 0 || again.RequestsCreated != 0 ||
		again.Target != first.Target || !slices.Equal(ids(again.Requests), ids(first.Requests)) || !again.SlotFreed {
		t.Fatalf("second load: %+v, first: %+v", again, first)
	}
	if n := len(requests(t)); n != 4 || applicants(t) != 4 {
		t.Fatalf("after the second load Requests has %d requests, %d applicants; want 4 and 4", n, applicants(t))
	}
	st := ps.State()
	if len(st.Accounts) != 6 || len(st.Missions) != 2 || st.Missions[0].Code != "fra" {
		t.Fatalf("portalsim: %d accounts, missions %+v", len(st.Accounts), st.Missions)
	}
	if want := (sim.Slot{Centre: s.Centre, VisaCategory: s.VisaCategory, Date: s.Date, Time: s.Time}); !slices.Equal(st.Missions[0].Slots, []sim.Slot{want}) {
		t.Fatalf("portalsim's fra slots %+v, want %+v", st.Missions[0].Slots, want)
	}

	// A cancelled request is made again; the rest stays. The table says so.
	if _, err := b.rq.CancelAppointmentRequest(ctx, &rqv1.CancelAppointmentRequestRequest{Id: first.Target}); err != nil {
		t.Fatal(err)
	}
	r = b.slotctl(t, "", "seed").must(t)
	for _, want := range []string{"6 in the pool (0 new)", "applicants: 4 (0 new), requests: 4 (1 new)", "Amélie Laurent", "free it on the portal"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, first.Target) {
		t.Errorf("the cancelled request %s is still the target:\n%s", first.Target, r.stdout)
	}
	if n := len(requests(t)); n != 5 {
		t.Fatalf("Requests has %d requests, want 5 (the cancelled one and its new copy)", n)
	}

	// What it cannot do.
	b.slotctl(t, "", "seed", "--free-slot").fails(t, 2, "--free-slot needs --portalsim")
	b.slotctl(t, "", "seed", "--portalsim", "127.0.0.1:8090").fails(t, 2, "http://HOST:PORT")
	b.slotctl(t, "", "seed", "--portalsim", "http://127.0.0.1:8090/admin").fails(t, 2, "http://HOST:PORT")
	b.slotctl(t, "", "seed", "fra").fails(t, 2, "unknown command")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	b.slotctl(t, "", "seed", "--portalsim", closed).fails(t, 1, "portalsim PUT /admin/state", "connection refused")
}
