package seed

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

func TestDemoDataset(t *testing.T) {
	t.Parallel()
	today := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ds := DemoDataset(today)

	t.Run("SixAccountsTwoMissions", func(t *testing.T) {
		t.Parallel()
		if len(ds.Accounts) != 6 || ds.Accounts[0].Email != "acc1@demo.test" || ds.Accounts[5].Email != "acc6@demo.test" {
			t.Fatalf("accounts: %+v", ds.Accounts)
		}
		if got := ds.MissionNames(); len(got) != 2 || got["fra"] != "France" || got["bel"] != "Belgium" {
			t.Fatalf("missions: %v", got)
		}
	})

	t.Run("EveryRequestAsksForWhatThePortalOffers", func(t *testing.T) {
		t.Parallel()
		for _, a := range ds.Applicants {
			for _, r := range a.Requests {
				i := slices.IndexFunc(ds.Missions, func(m Mission) bool { return m.Code == r.Mission })
				if i < 0 || !slices.Contains(ds.Missions[i].Centres, r.Centre) || !slices.Contains(ds.Missions[i].VisaCategories, r.VisaCategory) {
					t.Errorf("%s asks for %s/%s/%s, which the portal does not offer", a.FullName, r.Mission, r.Centre, r.VisaCategory)
				}
				if r.Earliest <= today.Format(time.DateOnly) || r.Latest < r.Earliest {
					t.Errorf("%s's window %s..%s", a.FullName, r.Earliest, r.Latest)
				}
			}
		}
	})

	t.Run("OnlyAmélieWantsTheSlot", func(t *testing.T) {
		t.Parallel()
		var who []string
		for _, a := range ds.Applicants {
			for _, r := range a.Requests {
				if r.holds(ds.Slot) {
					who = append(who, a.FullName)
				}
			}
		}
		if !slices.Equal(who, []string{"Amélie Laurent"}) {
			t.Fatalf("the slot %+v is wanted by %v", ds.Slot, who)
		}
	})
}

func TestLoad(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (*Portal, *sim.Sim, *fakePool, *fakeRequests) {
		t.Helper()
		s, err := sim.New(sim.Config{})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		return &Portal{BaseURL: srv.URL}, s, &fakePool{}, &fakeRequests{}
	}
	ds := DemoDataset(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))

	t.Run("PutsTheAccountsInBothPlacesAndTheRequestsInRequests", func(t *testing.T) {
		t.Parallel()
		portal, s, pool, rq := setup(t)
		loaded, err := Load(t.Context(), ds, portal, pool, rq)
		if err != nil {
			t.Fatal(err)
		}

		st := s.State()
		if len(st.Accounts) != 6 || len(pool.imported) != 6 {
			t.Fatalf("portal has %d accounts, pool got %d", len(st.Accounts), len(pool.imported))
		}
		for i, a := range ds.Accounts {
			if st.Accounts[i].Email != a.Email || st.Accounts[i].Password != a.Password {
				t.Errorf("portal account %d: %+v", i, st.Accounts[i])
			}
			if p := pool.imported[i]; p.GetEmail() != a.Email || p.GetPassword() != a.Password || p.GetPhone() != a.Phone {
				t.Errorf("pool account %d: %v", i, p)
			}
		}
		if len(st.Missions) != 2 || st.Missions[0].Code != "fra" || len(st.Missions[0].Slots) != 0 {
			t.Fatalf("portal missions: %+v", st.Missions)
		}

		if len(rq.applicants) != 4 || len(rq.requests) != 4 || len(loaded.Requests) != 4 {
			t.Fatalf("%d applicants, %d requests, %d loaded", len(rq.applicants), len(rq.requests), len(loaded.Requests))
		}
		target := loaded.Requests[loaded.Target]
		if target.Applicant != "Amélie Laurent" || target.Mission != "fra" {
			t.Fatalf("target: %+v", target)
		}
		for _, r := range rq.requests {
			if r.GetApplicantId() == "" {
				t.Fatalf("a request without its applicant: %v", r)
			}
		}
	})

	t.Run("TheSlotAppearsOnThePortalWhenAdded", func(t *testing.T) {
		t.Parallel()
		portal, s, pool, rq := setup(t)
		if _, err := Load(t.Context(), ds, portal, pool, rq); err != nil {
			t.Fatal(err)
		}
		if err := portal.AddSlot(t.Context(), ds.Slot); err != nil {
			t.Fatal(err)
		}
		m := s.State().Missions[0]
		want := sim.Slot{Centre: "London", VisaCategory: "tourism", Date: ds.Slot.Date, Time: "09:30"}
		if len(m.Slots) != 1 || m.Slots[0] != want || len(m.Centres) != 3 {
			t.Fatalf("fra: %+v", m)
		}
	})

	t.Run("AnAccountThePoolRefusesFailsTheLoad", func(t *testing.T) {
		t.Parallel()
		portal, _, pool, rq := setup(t)
		pool.fail = "acc3@demo.test"
		if _, err := Load(t.Context(), ds, portal, pool, rq); err == nil || !strings.Contains(err.Error(), "acc3@demo.test") {
			t.Fatalf("err = %v, want one naming acc3", err)
		}
	})

	t.Run("AccountsLeftFromAnEarlierRunAreFine", func(t *testing.T) {
		t.Parallel()
		portal, _, pool, rq := setup(t)
		pool.existing = 6
		if _, err := Load(t.Context(), ds, portal, pool, rq); err != nil {
			t.Fatal(err)
		}
	})
}

// fakePool is AccountPool's ImportAccounts: it keeps what it is sent.
type fakePool struct {
	PoolClient
	mu       sync.Mutex
	imported []*apv1.ImportAccountsRequest
	// fail is an email the import refuses; existing is how many accounts
	// it reports as already there instead of created.
	fail     string
	existing int
}

func (p *fakePool) ImportAccounts(context.Context, ...grpc.CallOption) (grpc.ClientStreamingClient[apv1.ImportAccountsRequest, apv1.ImportAccountsResponse], error) {
	return &importStream{p: p}, nil
}

type importStream struct {
	grpc.ClientStream
	p *fakePool
}

func (s *importStream) Send(r *apv1.ImportAccountsRequest) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.imported = append(s.p.imported, r)
	return nil
}

func (s *importStream) CloseAndRecv() (*apv1.ImportAccountsResponse, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	resp := &apv1.ImportAccountsResponse{SkippedExisting: int32(s.p.existing)}
	for i, r := range s.p.imported {
		if r.GetEmail() == s.p.fail {
			resp.Failed = append(resp.Failed, &apv1.ImportFailure{Index: int32(i), Email: r.GetEmail(), Reason: "refused"})
		}
	}
	resp.Created = int32(len(s.p.imported)-len(resp.Failed)) - resp.SkippedExisting
	return resp, nil
}

func (s *importStream) CloseSend() error { return nil }

// fakeRequests is Requests' create calls: it keeps what it is sent and
// gives out ids.
type fakeRequests struct {
	RequestsClient
	mu         sync.Mutex
	applicants []*rqv1.CreateApplicantRequest
	requests   []*rqv1.CreateAppointmentRequestRequest
}

func (r *fakeRequests) CreateApplicant(_ context.Context, in *rqv1.CreateApplicantRequest, _ ...grpc.CallOption) (*rqv1.CreateApplicantResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applicants = append(r.applicants, in)
	return &rqv1.CreateApplicantResponse{Applicant: &rqv1.Applicant{Id: fmt.Sprintf("applicant-%d", len(r.applicants)), FullName: in.GetFullName()}}, nil
}

func (r *fakeRequests) CreateAppointmentRequest(_ context.Context, in *rqv1.CreateAppointmentRequestRequest, _ ...grpc.CallOption) (*rqv1.CreateAppointmentRequestResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, in)
	return &rqv1.CreateAppointmentRequestResponse{Request: &rqv1.AppointmentRequest{Id: fmt.Sprintf("request-%d", len(r.requests)), ApplicantId: in.GetApplicantId()}}, nil
}

func (r *fakeRequests) ListApplicants(context.Context, *rqv1.ListApplicantsRequest, ...grpc.CallOption) (*rqv1.ListApplicantsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	resp := &rqv1.ListApplicantsResponse{}
	for i, a := range r.applicants {
		resp.Applicants = append(resp.Applicants, &rqv1.Applicant{Id: fmt.Sprintf("applicant-%d", i+1), Email: a.GetEmail()})
	}
	return resp, nil
}

func (r *fakeRequests) ListAppointmentRequests(_ context.Context, in *rqv1.ListAppointmentRequestsRequest, _ ...grpc.CallOption) (*rqv1.ListAppointmentRequestsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	resp := &rqv1.ListAppointmentRequestsResponse{}
	for i, q := range r.requests {
		if q.GetApplicantId() == in.GetApplicantId() {
			resp.Requests = append(resp.Requests, &rqv1.AppointmentRequest{Id: fmt.Sprintf("request-%d", i+1), ApplicantId: q.GetApplicantId(),
				MissionCode: q.GetMissionCode(), Centre: q.GetCentre(), VisaCategory: q.GetVisaCategory(), EarliestDate: q.GetEarliestDate(), LatestDate: q.GetLatestDate()})
		}
	}
	return resp, nil
}
