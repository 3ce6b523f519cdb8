// Package seed is the demo's dataset (six portal accounts, two missions,
// four applicants with a request each, and the slot one of them wants) and
// its loader, which goes through the services' public RPCs and portalsim's
// admin API. make run's demo, its soak, chaos and discipline runs, and
// `slotctl seed` load it from here.
package seed

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
)

// Dataset is what the demo loads: portal accounts (into AccountPool and
// portalsim), the portal's missions, applicants with their requests, and the
// slot that appears later.
type Dataset struct {
	Accounts   []PortalAccount
	Missions   []Mission
	Applicants []Applicant
	// Slot is added to portalsim a while after the Checker starts; one
	// request's window holds it.
	Slot Slot
}

// PortalAccount is a login of the portal, shared through the pool.
type PortalAccount struct {
	Email, Password, Phone string
}

// Mission is a destination country's calendar on the portal.
type Mission struct {
	Code, Name     string
	Centres        []string
	VisaCategories []string
}

// Applicant is a person with appointment requests.
type Applicant struct {
	FullName, Email, Phone, Passport, Nationality, Born string
	Requests                                            []Request
}

// Request is an applicant's wish for a slot.
type Request struct {
	Mission, Centre, VisaCategory string
	// Earliest and Latest bound the window (YYYY-MM-DD, inclusive).
	Earliest, Latest string
}

// Slot is a free appointment on the portal.
type Slot struct {
	Mission, Centre, VisaCategory string
	Date                          string // YYYY-MM-DD
	Time                          string // HH:MM
}

// DemoDataset is the demo's data, dated from today: six accounts, France
// (fra) and Belgium (bel) with two applicants each, and a slot in France
// three weeks ahead that only Amélie Laurent's request wants.
func DemoDataset(today time.Time) Dataset {
	day := func(n int) string { return today.AddDate(0, 0, n).Format(time.DateOnly) }
	var ds Dataset
	for i := 1; i <= 6; i++ {
		ds.Accounts = append(ds.Accounts, PortalAccount{
			Email:    fmt.Sprintf("acc%d@demo.test", i),
			Password: fmt.Sprintf("demo-password-%d", i),
			Phone:    fmt.Sprintf("+44770090000%d", i),
		})
	}
	ds.Missions = []Mission{
		{Code: "fra", Name: "France", Centres: []string{"London", "Manchester", "Edinburgh"}, VisaCategories: []string{"tourism", "business", "study"}},
		{Code: "bel", Name: "Belgium", Centres: []string{"London", "Edinburgh"}, VisaCategories: []string{"tourism", "business", "study"}},
	}
	ds.Applicants = []Applicant{
		{FullName: "Amélie Laurent", Email: "amelie.laurent@example.com", Phone: "+447700900101", Passport: "P1234567", Nationality: "GB", Born: "1990-04-12",
			Requests: []Request{{Mission: "fra", Centre: "London", VisaCategory: "tourism", Earliest: day(7), Latest: day(45)}}},
		{FullName: "Karim Haddad", Email: "karim.haddad@example.com", Phone: "+447700900102", Passport: "P2345678", Nationality: "GB", Born: "1985-11-03",
			Requests: []Request{{Mission: "fra", Centre: "Manchester", VisaCategory: "business", Earliest: day(14), Latest: day(60)}}},
		{FullName: "Jan Peeters", Email: "jan.peeters@example.com", Phone: "+447700900103", Passport: "P3456789", Nationality: "GB", Born: "1978-02-27",
			Requests: []Request{{Mission: "bel", Centre: "London", VisaCategory: "tourism", Earliest: day(7), Latest: day(30)}}},
		{FullName: "Sofia Marino", Email: "sofia.marino@example.com", Phone: "+447700900104", Passport: "P4567890", Nationality: "IT", Born: "1996-07-19",
			Requests: []Request{{Mission: "bel", Centre: "Edinburgh", VisaCategory: "study", Earliest: day(10), Latest: day(90)}}},
	}
	ds.Slot = Slot{Mission: "fra", Centre: "London", VisaCategory: "tourism", Date: day(21), Time: "09:30"}
	return ds
}

// MissionNames maps mission codes to names.
func (ds Dataset) MissionNames() map[string]string {
	out := map[string]string{}
	for _, m := range ds.Missions {
		out[m.Code] = m.Name
	}
	return out
}

// PoolClient is the part of AccountPool the loader calls (the generated
// client has it).
type PoolClient interface {
	ImportAccounts(ctx context.Context, opts ...grpc.CallOption) (grpc.ClientStreamingClient[apv1.ImportAccountsRequest, apv1.ImportAccountsResponse], error)
	GetPoolStatus(ctx context.Context, in *apv1.GetPoolStatusRequest, opts ...grpc.CallOption) (*apv1.GetPoolStatusResponse, error)
	ListAccounts(ctx context.Context, in *apv1.ListAccountsRequest, opts ...grpc.CallOption) (*apv1.ListAccountsResponse, error)
}

// RequestsClient is the part of Requests the loader calls.
type RequestsClient interface {
	CreateApplicant(ctx context.Context, in *rqv1.CreateApplicantRequest, opts ...grpc.CallOption) (*rqv1.CreateApplicantResponse, error)
	ListApplicants(ctx context.Context, in *rqv1.ListApplicantsRequest, opts ...grpc.CallOption) (*rqv1.ListApplicantsResponse, error)
	CreateAppointmentRequest(ctx context.Context, in *rqv1.CreateAppointmentRequestRequest, opts ...grpc.CallOption) (*rqv1.CreateAppointmentRequestResponse, error)
	ListAppointmentRequests(ctx context.Context, in *rqv1.ListAppointmentRequestsRequest, opts ...grpc.CallOption) (*rqv1.ListAppointmentRequestsResponse, error)
}

// LoadedRequest is a request of the dataset, by its id in Requests.
type LoadedRequest struct {
	Applicant string
	Request
}

// Loaded is what loading found or made.
type Loaded struct {
	// Requests by id.
	Requests map[string]LoadedRequest
	// Target is the id of the request whose window holds the dataset's slot.
	Target string
	// ApplicantIDs are the applicants' ids, in the dataset's order.
	ApplicantIDs []string
	// What this load added; the rest was there already.
	AccountsCreated, ApplicantsCreated, RequestsCreated int
}

// Load puts ds into portalsim when portal is not nil (the accounts and
// missions, no slots yet), AccountPool (the accounts) and Requests
// (applicants and requests). It adds only what is missing: an account
// the pool has, an applicant with the same email, and a request of that
// applicant with the same wish and window that is not cancelled are kept,
// so loading the same dataset again changes nothing. The pool's accounts
// get ids in ds's order on a fresh database (acc1 is 1).
func Load(ctx context.Context, ds Dataset, portal *Portal, pool PoolClient, rq RequestsClient) (Loaded, error) {
	if portal != nil {
		if err := portal.SetState(ctx, ds.Accounts, ds.Missions); err != nil {
			return Loaded{}, err
		}
	}
	out := Loaded{Requests: map[string]LoadedRequest{}}
	var err error
	if out.AccountsCreated, err = importAccounts(ctx, pool, ds.Accounts); err != nil {
		return Loaded{}, err
	}
	known, err := applicantsByEmail(ctx, rq)
	if err != nil {
		return Loaded{}, err
	}
	for _, a := range ds.Applicants {
		id, ok := known[a.Email]
		if !ok {
			resp, err := rq.CreateApplicant(ctx, &rqv1.CreateApplicantRequest{
				FullName: a.FullName, Email: a.Email, Phone: a.Phone,
				PassportNumber: a.Passport, Nationality: a.Nationality, DateOfBirth: a.Born,
			})
			if err != nil {
				return Loaded{}, fmt.Errorf("create applicant %s: %w", a.FullName, err)
			}
			id = resp.GetApplicant().GetId()
			out.ApplicantsCreated++
		}
		out.ApplicantIDs = append(out.ApplicantIDs, id)
		have, err := requestsOf(ctx, rq, id)
		if err != nil {
			return Loaded{}, fmt.Errorf("list %s's requests: %w", a.FullName, err)
		}
		for _, r := range a.Requests {
			rid := have[r]
			if rid == "" {
				got, err := rq.CreateAppointmentRequest(ctx, &rqv1.CreateAppointmentRequestRequest{
					ApplicantId: id, MissionCode: r.Mission, Centre: r.Centre,
					VisaCategory: r.VisaCategory, EarliestDate: r.Earliest, LatestDate: r.Latest,
				})
				if err != nil {
					return Loaded{}, fmt.Errorf("create %s's request for %s: %w", a.FullName, r.Mission, err)
				}
				rid = got.GetRequest().GetId()
				out.RequestsCreated++
			}
			out.Requests[rid] = LoadedRequest{Applicant: a.FullName, Request: r}
			if r.holds(ds.Slot) {
				out.Target = rid
			}
		}
	}
	if out.Target == "" {
		return out, fmt.Errorf("no request of the dataset wants the slot %+v", ds.Slot)
	}
	return out, nil
}

func (r Request) holds(s Slot) bool {
	return r.Mission == s.Mission && r.Centre == s.Centre && r.VisaCategory == s.VisaCategory &&
		r.Earliest <= s.Date && s.Date <= r.Latest
}

// importAccounts imports accounts into the pool and returns how many it
// created (the others it had already).
func importAccounts(ctx context.Context, pool PoolClient, accounts []PortalAccount) (int, error) {
	stream, err := pool.ImportAccounts(ctx)
	if err != nil {
		return 0, fmt.Errorf("import accounts: %w", err)
	}
	for _, a := range accounts {
		if err := stream.Send(&apv1.ImportAccountsRequest{Email: a.Email, Password: a.Password, Phone: a.Phone}); err != nil {
			// The server ended the stream; CloseAndRecv says why.
			break
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return 0, fmt.Errorf("import accounts: %w", err)
	}
	if f := resp.GetFailed(); len(f) > 0 {
		return 0, fmt.Errorf("import accounts: %s: %s", f[0].GetEmail(), f[0].GetReason())
	}
	if int(resp.GetCreated()+resp.GetSkippedExisting()) != len(accounts) {
		return 0, fmt.Errorf("import accounts: %d created, %d existed, of %d sent", resp.GetCreated(), resp.GetSkippedExisting(), len(accounts))
	}
	return int(resp.GetCreated()), nil
}

// listPage is the largest page Requests' List calls give.
const listPage = 1000

// applicantsByEmail maps each email of Requests' applicants to the oldest
// applicant with it.
func applicantsByEmail(ctx context.Context, rq RequestsClient) (map[string]string, error) {
	out := map[string]string{}
	token := ""
	for {
		resp, err := rq.ListApplicants(ctx, &rqv1.ListApplicantsRequest{PageSize: listPage, PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list applicants: %w", err)
		}
		for _, a := range resp.GetApplicants() {
			if _, ok := out[a.GetEmail()]; !ok {
				out[a.GetEmail()] = a.GetId()
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// requestsOf maps the wishes of an applicant's requests that are not
// cancelled to their ids.
func requestsOf(ctx context.Context, rq RequestsClient, applicant string) (map[Request]string, error) {
	out := map[Request]string{}
	token := ""
	for {
		resp, err := rq.ListAppointmentRequests(ctx, &rqv1.ListAppointmentRequestsRequest{ApplicantId: applicant, PageSize: listPage, PageToken: token})
		if err != nil {
			return nil, err
		}
		for _, r := range resp.GetRequests() {
			if r.GetStatus() == rqv1.RequestStatus_REQUEST_STATUS_CANCELLED {
				continue
			}
			w := Request{Mission: r.GetMissionCode(), Centre: r.GetCentre(), VisaCategory: r.GetVisaCategory(), Earliest: r.GetEarliestDate(), Latest: r.GetLatestDate()}
			if _, ok := out[w]; !ok {
				out[w] = r.GetId()
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}
