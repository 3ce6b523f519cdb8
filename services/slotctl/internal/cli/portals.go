package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
)

func (a *app) portalsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "portals",
		Short: "Portal settings and pauses: the check rate cap, quiet hours, minimum interval per mission",
		Long: `Portal settings, in Requests. A portal's missions are claimed at most
max_checks_per_minute times in any minute, every Checker together (one
claim is one check), fewer during its quiet hours; a mission of it at most
once per min_mission_interval. When CAPTCHA, blocked, rate-limited or
maintenance answers reach the threshold (REQUESTS_WALL_THRESHOLD in
REQUESTS_WALL_WINDOW), or one comes with the portal's Retry-After,
Requests pauses the portal: no mission of it is claimed, so no account
is used on it, until the pause ends or an admin runs "portals resume".`,
	}

	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List portals by name with their settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rq, err := a.requests()
			if err != nil {
				return err
			}
			ps, err := collect(limit, func(token string, size int32) ([]*rqv1.Portal, string, error) {
				ctx, cancel := a.call(cmd.Context())
				defer cancel()
				resp, err := rq.ListPortals(ctx, &rqv1.ListPortalsRequest{PageSize: size, PageToken: token})
				return resp.GetPortals(), resp.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			if a.json() {
				return printJSONList(a.io.Stdout, ps)
			}
			return a.tablePortals(ps)
		},
	}
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (0: all)")

	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show one portal's settings",
		Args:  cobra.ExactArgs(1),
		RunE: a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, args []string) error {
			resp, err := rq.GetPortal(ctx, &rqv1.GetPortalRequest{Name: args[0]})
			if err != nil {
				return err
			}
			return a.printOnePortal(resp.GetPortal())
		}),
	}

	status := &cobra.Command{
		Use:   "status NAME",
		Short: "Show whether a portal is paused, why and until when, its recent walls and checks in the last minute",
		Args:  cobra.ExactArgs(1),
		RunE: a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, args []string) error {
			resp, err := rq.GetPortalStatus(ctx, &rqv1.GetPortalStatusRequest{Name: args[0]})
			if err != nil {
				return err
			}
			return a.printPortalStatus(resp.GetStatus())
		}),
	}

	resume := &cobra.Command{
		Use:   "resume NAME",
		Short: "Lift a portal's pause now (admin); its missions are claimed again at once",
		Args:  cobra.ExactArgs(1),
		RunE: a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, args []string) error {
			resp, err := rq.ResumePortal(ctx, &rqv1.ResumePortalRequest{Name: args[0]})
			if err != nil {
				return err
			}
			return a.printPortalStatus(resp.GetStatus())
		}),
	}

	var (
		maxPerMinute, quietMax int32
		timezone, quiet        string
		interval               time.Duration
	)
	set := &cobra.Command{
		Use:   "set NAME [--max-per-minute N] [--timezone TZ] [--quiet HH:MM-HH:MM] [--quiet-max-per-minute N] [--min-interval D]",
		Short: "Set a portal's settings (creating them); flags not given stay as they are",
		Example: `  slotctl portals set vfs --max-per-minute 6 --timezone Europe/Paris --quiet 22:00-06:00 --quiet-max-per-minute 1
  slotctl portals set vfs --min-interval 5m
  slotctl portals set vfs --quiet ""     # no quiet hours`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &rqv1.SetPortalRequest{Name: args[0]}
			f := cmd.Flags()
			if f.Changed("max-per-minute") {
				req.MaxChecksPerMinute = &maxPerMinute
			}
			if f.Changed("timezone") {
				req.Timezone = &timezone
			}
			if f.Changed("quiet") {
				s, e := "", ""
				if quiet != "" {
					if len(quiet) != 11 || quiet[5] != '-' {
						return usagef("portals set: --quiet wants HH:MM-HH:MM (or \"\" for none), got %s", strconv.Quote(quiet))
					}
					s, e = quiet[:5], quiet[6:]
				}
				req.QuietStart, req.QuietEnd = &s, &e
			}
			if f.Changed("quiet-max-per-minute") {
				req.QuietMaxChecksPerMinute = &quietMax
			}
			if f.Changed("min-interval") {
				req.MinMissionInterval = durationpb.New(interval)
			}
			if req.MaxChecksPerMinute == nil && req.Timezone == nil && req.QuietStart == nil &&
				req.QuietMaxChecksPerMinute == nil && req.MinMissionInterval == nil {
				return usagef("portals set: nothing to set: give --max-per-minute, --timezone, --quiet, --quiet-max-per-minute or --min-interval")
			}
			return a.onRequests(func(ctx context.Context, rq rqv1.RequestsServiceClient, _ []string) error {
				resp, err := rq.SetPortal(ctx, req)
				if err != nil {
					return err
				}
				return a.printOnePortal(resp.GetPortal())
			})(cmd, args)
		},
	}
	set.Flags().Int32Var(&maxPerMinute, "max-per-minute", 0, "checks (claims) per minute, every Checker together; 0: no cap")
	set.Flags().StringVar(&timezone, "timezone", "", "IANA time zone of the quiet hours, e.g. Europe/Paris")
	set.Flags().StringVar(&quiet, "quiet", "", `quiet hours HH:MM-HH:MM in that zone (may run past midnight); "" removes them`)
	set.Flags().Int32Var(&quietMax, "quiet-max-per-minute", 0, "checks per minute during the quiet hours (0 stops checks then)")
	set.Flags().DurationVar(&interval, "min-interval", 0, "least time between two checks of one mission of the portal")
	cmd.AddCommand(list, get, set, status, resume)
	return cmd
}

func (a *app) printOnePortal(p *rqv1.Portal) error {
	if a.json() {
		return printJSON(a.io.Stdout, p)
	}
	return a.tablePortals([]*rqv1.Portal{p})
}

func (a *app) tablePortals(ps []*rqv1.Portal) error {
	t := newTable(a.io.Stdout, "PORTAL", "MAX/MIN", "TIMEZONE", "QUIET", "QUIET MAX/MIN", "MIN INTERVAL", "UPDATED")
	for _, p := range ps {
		quiet, quietMax := "-", "-"
		if p.GetQuietStart() != "" {
			quiet, quietMax = p.GetQuietStart()+"-"+p.GetQuietEnd(), strconv.Itoa(int(p.GetQuietMaxChecksPerMinute()))
		}
		limit := "no cap"
		if p.GetMaxChecksPerMinute() > 0 {
			limit = strconv.Itoa(int(p.GetMaxChecksPerMinute()))
		}
		t.row(p.GetName(), limit, p.GetTimezone(), quiet, quietMax, p.GetMinMissionInterval().AsDuration().String(), when(p.GetUpdatedAt()))
	}
	return t.flush()
}

func (a *app) printPortalStatus(st *rqv1.PortalStatus) error {
	if a.json() {
		return printJSON(a.io.Stdout, st)
	}
	t := newTable(a.io.Stdout, "PORTAL", "PAUSED", "UNTIL", "REASON", "WALLS", "CHECKS/MIN", "CAP", "LEVEL")
	limit := "no cap"
	if st.GetMaxChecksPerMinute() > 0 || st.GetPaused() {
		limit = strconv.Itoa(int(st.GetMaxChecksPerMinute()))
	}
	until := "-"
	if st.GetPausedUntil() != nil {
		until = when(st.GetPausedUntil())
	}
	t.row(st.GetName(), strconv.FormatBool(st.GetPaused()), until, oneLine(st.GetPauseReason()), fmt.Sprint(st.GetRecentWalls()),
		fmt.Sprint(st.GetChecksLastMinute()), limit, fmt.Sprint(st.GetPauseLevel()))
	return t.flush()
}
