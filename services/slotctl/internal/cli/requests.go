package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
)

func (a *app) requestsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "requests", Short: "Appointment requests"}

	var (
		status, mission, applicant string
		limit                      int
	)
	list := &cobra.Command{
		Use:   "list [--status pending|slot_found|booked|cancelled|expired] [--mission M] [--applicant ID]",
		Short: "List requests, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := parseEnum("status", status, "REQUEST_STATUS_", rqv1.RequestStatus_value)
			if err != nil {
				return err
			}
			rq, err := a.requests()
			if err != nil {
				return err
			}
			names := map[string]string{}
			reqs, err := collect(limit, func(token string, size int32) ([]*rqv1.AppointmentRequest, string, error) {
				ctx, cancel := a.call(cmd.Context())
				defer cancel()
				resp, err := rq.ListAppointmentRequests(ctx, &rqv1.ListAppointmentRequestsRequest{
					Status: rqv1.RequestStatus(st), MissionCode: mission, ApplicantId: applicant, PageSize: size, PageToken: token,
				})
				if err == nil && !a.json() {
					err = applicantNames(ctx, rq, resp.GetRequests(), names)
				}
				return resp.GetRequests(), resp.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			if a.json() {
				return printJSONList(a.io.Stdout, reqs)
			}
			return a.tableRequests(reqs, names)
		},
	}
	list.Flags().StringVar(&status, "status", "", "only requests with this status")
	list.Flags().StringVar(&mission, "mission", "", "only this mission code")
	list.Flags().StringVar(&applicant, "applicant", "", "only this applicant's")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (0: all)")

	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show one request",
		Args:  cobra.ExactArgs(1),
		RunE: a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, args []string) error {
			resp, err := rq.GetAppointmentRequest(ctx, &rqv1.GetAppointmentRequestRequest{Id: args[0]})
			if err != nil {
				return err
			}
			return a.printOneRequest(ctx, rq, resp.GetRequest())
		}),
	}

	cancelCmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a pending request",
		Args:  cobra.ExactArgs(1),
		RunE: a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, args []string) error {
			resp, err := rq.CancelAppointmentRequest(ctx, &rqv1.CancelAppointmentRequestRequest{Id: args[0]})
			if err != nil {
				return err
			}
			return a.printOneRequest(ctx, rq, resp.GetRequest())
		}),
	}

	book := &cobra.Command{
		Use:   "book ID",
		Short: "Record that the applicant booked the slot found: SLOT_FOUND becomes BOOKED (final)",
		Args:  cobra.ExactArgs(1),
		RunE: a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, args []string) error {
			resp, err := rq.ConfirmBooked(ctx, &rqv1.ConfirmBookedRequest{Id: args[0]})
			if err != nil {
				return err
			}
			return a.printOneRequest(ctx, rq, resp.GetRequest())
		}),
	}

	resume := &cobra.Command{
		Use:   "resume ID",
		Short: "Watch a SLOT_FOUND request again (the slot was missed); its slots are not announced again",
		Args:  cobra.ExactArgs(1),
		RunE: a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, args []string) error {
			resp, err := rq.ResumeWatching(ctx, &rqv1.ResumeWatchingRequest{Id: args[0]})
			if err != nil {
				return err
			}
			return a.printOneRequest(ctx, rq, resp.GetRequest())
		}),
	}

	var in rqv1.CreateAppointmentRequestRequest
	create := &cobra.Command{
		Use:   "create --applicant ID --mission M --centre C --category V --from YYYY-MM-DD --to YYYY-MM-DD",
		Short: "Open a request: check mission M for a slot in the date window",
		Args:  cobra.NoArgs,
		RunE: a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, _ []string) error {
			resp, err := rq.CreateAppointmentRequest(ctx, &in)
			if err != nil {
				return err
			}
			return a.printOneRequest(ctx, rq, resp.GetRequest())
		}),
	}
	create.Flags().StringVar(&in.ApplicantId, "applicant", "", "applicant id")
	create.Flags().StringVar(&in.MissionCode, "mission", "", "mission (destination country) code, e.g. fra")
	create.Flags().StringVar(&in.Centre, "centre", "", "visa application centre")
	create.Flags().StringVar(&in.VisaCategory, "category", "", "visa category")
	create.Flags().StringVar(&in.EarliestDate, "from", "", "first acceptable date")
	create.Flags().StringVar(&in.LatestDate, "to", "", "last acceptable date")

	cmd.AddCommand(list, get, cancelCmd, book, resume, create)
	return cmd
}

// printOneRequest prints one: a one-row table (with the applicant's
// name), or a JSON object. The name is a nicety looked up after the call
// that matters (a cancel, a booking) went through: if that lookup fails,
// the row shows the applicant's id rather than the command failing.
func (a *app) printOneRequest(ctx context.Context, rq rqv1.RequestsServiceClient, v *rqv1.AppointmentRequest) error {
	if a.json() {
		return printJSON(a.io.Stdout, v)
	}
	reqs := []*rqv1.AppointmentRequest{v}
	names := map[string]string{}
	_ = applicantNames(ctx, rq, reqs, names)
	return a.tableRequests(reqs, names)
}

// applicantNames adds to names the full names of the applicants of reqs
// it does not hold yet, in one ListApplicants call: reqs is at most a page
// (1,000), which is as many ids as the call takes. An applicant that is
// gone stays out of names.
func applicantNames(ctx context.Context, rq rqv1.RequestsServiceClient, reqs []*rqv1.AppointmentRequest, names map[string]string) error {
	var ids []string
	seen := map[string]bool{}
	for _, r := range reqs {
		id := r.GetApplicantId()
		if _, known := names[id]; !known && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	resp, err := rq.ListApplicants(ctx, &rqv1.ListApplicantsRequest{Ids: ids, PageSize: int32(len(ids))})
	if err != nil {
		return err
	}
	for _, ap := range resp.GetApplicants() {
		names[ap.GetId()] = ap.GetFullName()
	}
	return nil
}

// tableRequests prints requests as a table, each applicant by its name in
// names (by its id when names lacks it).
func (a *app) tableRequests(reqs []*rqv1.AppointmentRequest, names map[string]string) error {
	t := newTable(a.io.Stdout, "ID", "APPLICANT", "MISSION", "CENTRE", "CATEGORY", "WINDOW", "STATUS", "CHECKS", "LAST CHECKED", "SLOTS")
	for _, r := range reqs {
		var slots []string
		for _, s := range r.GetMatchedSlots() {
			slots = append(slots, strings.TrimSpace(s.GetDate()+" "+s.GetTime()))
		}
		// Requests keeps a request's earliest matched slots and counts
		// them all.
		if more := int(r.GetMatchedSlotCount()) - len(slots); more > 0 {
			slots = append(slots, fmt.Sprintf("and %d more", more))
		}
		applicant, ok := names[r.GetApplicantId()]
		if !ok {
			applicant = r.GetApplicantId()
		}
		t.row(r.GetId(), applicant, r.GetMissionCode(), r.GetCentre(), r.GetVisaCategory(),
			r.GetEarliestDate()+".."+r.GetLatestDate(), enumWord(r.GetStatus().String(), "REQUEST_STATUS_"),
			r.GetCheckCount(), when(r.GetLastCheckedAt()), strings.Join(slots, ", "))
	}
	return t.flush()
}
