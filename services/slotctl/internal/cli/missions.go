package cli

import (
	"context"

	"github.com/spf13/cobra"

	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
)

func (a *app) missionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "missions",
		Short: "Mission settings: the portal a mission is checked on and its time zone",
		Long: `Mission settings, in Requests. A mission's time zone is the one its portal's
dates are in: Requests judges request windows and slot dates against today
in that zone. A mission nobody set is in UTC with no portal.`,
	}

	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List missions by code, each with its portal and time zone",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rq, err := a.requests()
			if err != nil {
				return err
			}
			ms, err := collect(limit, func(token string, size int32) ([]*rqv1.Mission, string, error) {
				ctx, cancel := a.call(cmd.Context())
				defer cancel()
				resp, err := rq.ListMissions(ctx, &rqv1.ListMissionsRequest{PageSize: size, PageToken: token})
				return resp.GetMissions(), resp.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			if a.json() {
				return printJSONList(a.io.Stdout, ms)
			}
			return a.tableMissions(ms)
		},
	}
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (0: all)")

	get := &cobra.Command{
		Use:   "get CODE",
		Short: "Show one mission's settings",
		Args:  cobra.ExactArgs(1),
		RunE: a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, args []string) error {
			resp, err := rq.GetMission(ctx, &rqv1.GetMissionRequest{MissionCode: args[0]})
			if err != nil {
				return err
			}
			return a.printOneMission(resp.GetMission())
		}),
	}

	var portal, timezone string
	set := &cobra.Command{
		Use:   "set CODE [--portal NAME] [--timezone IANA-NAME]",
		Short: "Set a mission's portal and/or time zone (creating its settings); flags not given stay as they are",
		Example: `  slotctl missions set fra --portal vfs --timezone Europe/Paris
  slotctl missions set usa --timezone America/Los_Angeles`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &rqv1.UpsertMissionRequest{MissionCode: args[0]}
			if cmd.Flags().Changed("portal") {
				req.Portal = &portal
			}
			if cmd.Flags().Changed("timezone") {
				req.Timezone = &timezone
			}
			if req.Portal == nil && req.Timezone == nil {
				return usagef("missions set: nothing to set: give --portal, --timezone or both")
			}
			return a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, _ []string) error {
				resp, err := rq.UpsertMission(ctx, req)
				if err != nil {
					return err
				}
				return a.printOneMission(resp.GetMission())
			})(cmd, args)
		},
	}
	set.Flags().StringVar(&portal, "portal", "", `portal (checker profile) name, e.g. vfs; "" clears it`)
	set.Flags().StringVar(&timezone, "timezone", "", "IANA time zone name of the portal's dates, e.g. Europe/Paris")
	cmd.AddCommand(list, get, set)
	return cmd
}

// printOneMission prints one: a one-row table, or a JSON object.
func (a *app) printOneMission(m *rqv1.Mission) error {
	if a.json() {
		return printJSON(a.io.Stdout, m)
	}
	return a.tableMissions([]*rqv1.Mission{m})
}

func (a *app) tableMissions(ms []*rqv1.Mission) error {
	t := newTable(a.io.Stdout, "MISSION", "PORTAL", "TIMEZONE", "UPDATED")
	for _, m := range ms {
		t.row(m.GetMissionCode(), m.GetPortal(), m.GetTimezone(), when(m.GetUpdatedAt()))
	}
	return t.flush()
}
