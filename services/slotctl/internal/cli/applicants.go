package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
)

func (a *app) applicantsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "applicants", Short: "The people appointment requests are for"}

	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List applicants, oldest first (without passport numbers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rq, err := a.requests()
			if err != nil {
				return err
			}
			applicants, err := listApplicants(cmd.Context(), a, rq, limit)
			if err != nil {
				return err
			}
			return a.printApplicants(applicants)
		},
	}
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (0: all)")

	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show one applicant, passport number included",
		Args:  cobra.ExactArgs(1),
		RunE: a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, args []string) error {
			resp, err := rq.GetApplicant(ctx, &rqv1.GetApplicantRequest{Id: args[0]})
			if err != nil {
				return err
			}
			return a.printOneApplicant(resp.GetApplicant())
		}),
	}

	var (
		in           rqv1.CreateApplicantRequest
		passportArg  string
		readPassport bool
	)
	add := &cobra.Command{
		Use:   "add --name NAME --email EMAIL [--phone P] [--read-passport] [--nationality FR] [--born YYYY-MM-DD]",
		Short: "Add an applicant; with --read-passport the passport number is prompted for, or read from stdin",
		Long: `Add an applicant. The passport number is never a flag (it would show in ps
and stay in the shell's history): with --read-passport it is prompted for
without echo on a terminal; otherwise the first line of stdin is the number:

  printf '%s\n' "$PASSPORT" | slotctl applicants add --name 'Ada Lovelace' --email ada@example.com --read-passport`,
		Args: cobra.NoArgs,
		// The number is read before the call's --timeout starts.
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("passport") {
				return usagef("applicants add: --passport is refused: a passport number in argv shows in ps and stays in the shell's history; use --read-passport (prompted for without echo, or read from stdin's first line)")
			}
			if !readPassport {
				return nil
			}
			n, err := a.readSecret(cmd.Context(), "passport number", "Passport number for "+in.GetFullName()+": ")
			in.PassportNumber = n
			return err
		},
		RunE: a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, _ []string) error {
			resp, err := rq.CreateApplicant(ctx, &in)
			if err != nil {
				return err
			}
			return a.printOneApplicant(resp.GetApplicant())
		}),
	}
	add.Flags().StringVar(&in.FullName, "name", "", "full name as in the passport (required)")
	add.Flags().StringVar(&in.Email, "email", "", "contact email (required)")
	add.Flags().StringVar(&in.Phone, "phone", "", "contact phone")
	add.Flags().BoolVar(&readPassport, "read-passport", false, "read the passport number (stored encrypted): prompted for without echo, or stdin's first line")
	add.Flags().StringVar(&passportArg, "passport", "", "refused: use --read-passport")
	_ = add.Flags().MarkHidden("passport")
	add.Flags().StringVar(&in.Nationality, "nationality", "", "ISO 3166-1 code, e.g. FR or FRA")
	add.Flags().StringVar(&in.DateOfBirth, "born", "", "date of birth, YYYY-MM-DD")

	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete an applicant; their pending requests are cancelled",
		Args:  cobra.ExactArgs(1),
		RunE: a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, args []string) error {
			resp, err := rq.DeleteApplicant(ctx, &rqv1.DeleteApplicantRequest{Id: args[0]})
			if err != nil {
				return err
			}
			if a.json() {
				return printJSON(a.io.Stdout, resp)
			}
			_, err = fmt.Fprintf(a.io.Stdout, "deleted applicant %s; cancelled %d pending requests\n", args[0], resp.GetCancelledRequests())
			return err
		}),
	}
	cmd.AddCommand(list, get, add, del)
	return cmd
}

func listApplicants(ctx context.Context, a *app, rq rqv1.RequestsServiceClient, limit int) ([]*rqv1.Applicant, error) {
	return collect(limit, func(token string, size int32) ([]*rqv1.Applicant, string, error) {
		cctx, cancel := a.call(ctx)
		defer cancel()
		resp, err := rq.ListApplicants(cctx, &rqv1.ListApplicantsRequest{PageSize: size, PageToken: token})
		return resp.GetApplicants(), resp.GetNextPageToken(), err
	})
}

// printApplicants prints a list: a table, or a JSON array (even of one).
func (a *app) printApplicants(applicants []*rqv1.Applicant) error {
	if a.json() {
		return printJSONList(a.io.Stdout, applicants)
	}
	return a.tableApplicants(applicants)
}

// printOneApplicant prints one: a one-row table, or a JSON object.
func (a *app) printOneApplicant(v *rqv1.Applicant) error {
	if a.json() {
		return printJSON(a.io.Stdout, v)
	}
	return a.tableApplicants([]*rqv1.Applicant{v})
}

func (a *app) tableApplicants(applicants []*rqv1.Applicant) error {
	t := newTable(a.io.Stdout, "ID", "NAME", "EMAIL", "PHONE", "NATIONALITY", "BORN", "PASSPORT", "CREATED")
	for _, p := range applicants {
		t.row(p.GetId(), p.GetFullName(), p.GetEmail(), p.GetPhone(), p.GetNationality(), p.GetDateOfBirth(), p.GetPassportNumber(), when(p.GetCreatedAt()))
	}
	return t.flush()
}
