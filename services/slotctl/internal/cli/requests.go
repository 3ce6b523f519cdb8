package cli

import (
	"context"
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
		Use:   "list [--status pending|slot_found|cancelled|expired] [--mission M] [--applicant ID]",
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
			reqs, err := collect(limit, func(token string, size int32) ([]*rqv1.AppointmentRequest, string, error) {
				ctx, cancel := a.call(cmd.Context())
				defer cancel()
				resp, err := rq.ListAppointmentRequests(ctx, &rqv1.ListAppointmentRequestsRequest{
					Status: rqv1.RequestStatus(st), MissionCode: mission, ApplicantId: applicant, PageSize: size, PageToken: token,
				})
				return resp.GetRequests(), resp.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			return a.printRequests(reqs)
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
			return a.printOneRequest(resp.GetRequest())
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
			return a.printOneRequest(resp.GetRequest())
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
			return a.printOneRequest(resp.GetRequest())
		}),
	}
	create.Flags().StringVar(&in.ApplicantId, "applicant", "", "applicant id")
	create.Flags().StringVar(&in.MissionCode, "mission", "", "mission (destination country) code, e.g. fra")
	create.Flags().StringVar(&in.Centre, "centre", "", "visa application centre")
	create.Flags().StringVar(&in.VisaCategory, "category", "", "visa category")
	create.Flags().StringVar(&in.EarliestDate, "from", "", "first acceptable date")
	create.Flags().StringVar(&in.LatestDate, "to", "", "last acceptable date")

	cmd.AddCommand(list, get, cancelCmd, create)
	return cmd
}

// printRequests prints a list: a table, or a JSON array (even of one).
func (a *app) printRequests(reqs []*rqv1.AppointmentRequest) error {
	if a.json() {
		return printJSONList(a.io.Stdout, reqs)
	}
	return a.tableRequests(reqs)
}

// printOneRequest prints one: a one-row table, or a JSON object.
func (a *app) printOneRequest(v *rqv1.AppointmentRequest) error {
	if a.json() {
		return printJSON(a.io.Stdout, v)
	}
	return a.tableRequests([]*rqv1.AppointmentRequest{v})
}

func (a *app) tableRequests(reqs []*rqv1.AppointmentRequest) error {
	t := newTable(a.io.Stdout, "ID", "APPLICANT", "MISSION", "CENTRE", "CATEGORY", "WINDOW", "STATUS", "CHECKS", "LAST CHECKED", "SLOTS")
	for _, r := range reqs {
		var slots []string
		for _, s := range r.GetMatchedSlots() {
			slots = append(slots, strings.TrimSpace(s.GetDate()+" "+s.GetTime()))
		}
		t.row(r.GetId(), r.GetApplicantId(), r.GetMissionCode(), r.GetCentre(), r.GetVisaCategory(),
			r.GetEarliestDate()+".."+r.GetLatestDate(), enumWord(r.GetStatus().String(), "REQUEST_STATUS_"),
			r.GetCheckCount(), when(r.GetLastCheckedAt()), strings.Join(slots, ", "))
	}
	return t.flush()
}
