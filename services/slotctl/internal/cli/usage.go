package cli

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
)

func (a *app) usageCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "usage", Short: "The pool's usage log: who leased which account, and how it ended"}

	var (
		account         int64
		result, mission string
		since           time.Duration
		limit           int
	)
	list := &cobra.Command{
		Use:   "list [--since 1h] [--account ID] [--result R] [--mission M]",
		Short: "Leases, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := parseEnum("result", result, "USAGE_RESULT_", apv1.UsageResult_value)
			if err != nil {
				return err
			}
			req := &apv1.ListUsageRequest{AccountId: account, Result: apv1.UsageResult(res), MissionCode: mission}
			if since > 0 {
				req.Since = timestamppb.New(time.Now().Add(-since))
			}
			ap, err := a.accountPool()
			if err != nil {
				return err
			}
			records, err := collect(limit, func(token string, size int32) ([]*apv1.UsageRecord, string, error) {
				ctx, cancel := a.call(cmd.Context())
				defer cancel()
				req.PageToken, req.PageSize = token, size
				resp, err := ap.ListUsage(ctx, req)
				return resp.GetRecords(), resp.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			if a.json() {
				return printJSONList(a.io.Stdout, records)
			}
			t := newTable(a.io.Stdout, "ACQUIRED", "ACCOUNT", "EMAIL", "MISSION", "HOLDER", "RESULT", "LOGGED IN", "RELEASED", "DETAIL")
			for _, r := range records {
				res := enumWord(r.GetResult().String(), "USAGE_RESULT_")
				if r.GetResult() == apv1.UsageResult_USAGE_RESULT_UNSPECIFIED {
					res = "(held)"
				}
				loggedIn := "no"
				if r.GetLoggedIn() {
					loggedIn = "yes"
				}
				t.row(when(r.GetAcquiredAt()), r.GetAccountId(), r.GetEmail(), r.GetMissionCode(), r.GetHolder(), res, loggedIn, when(r.GetReleasedAt()), r.GetDetail())
			}
			return t.flush()
		},
	}
	list.Flags().Int64Var(&account, "account", 0, "only this account id")
	list.Flags().StringVar(&result, "result", "", "only this result: success, no_slot, login_fail, banned, error, lease_expired, unused, aborted")
	list.Flags().StringVar(&mission, "mission", "", "only this mission code")
	list.Flags().DurationVar(&since, "since", 0, "only leases acquired in this last span (24h, 90m)")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many (0: all)")

	var statsSince time.Duration
	stats := &cobra.Command{
		Use:   "stats [--since 24h]",
		Short: "Per account over a window: uses, successes, no slots, login failures, bans, errors, logins",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if statsSince <= 0 {
				return usagef("--since must be positive")
			}
			ap, err := a.accountPool()
			if err != nil {
				return err
			}
			// Every page of one window: the window is fixed here, once.
			now := time.Now()
			req := &apv1.GetUsageStatsRequest{Since: timestamppb.New(now.Add(-statsSince)), Until: timestamppb.New(now)}
			resp := &apv1.GetUsageStatsResponse{Since: req.GetSince(), Until: req.GetUntil()}
			resp.Stats, err = collect(0, func(token string, size int32) ([]*apv1.AccountUsageStats, string, error) {
				ctx, cancel := a.call(cmd.Context())
				defer cancel()
				req.PageToken, req.PageSize = token, size
				page, err := ap.GetUsageStats(ctx, req)
				return page.GetStats(), page.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			// The pages go by account id; the table is most used first.
			slices.SortStableFunc(resp.Stats, func(x, y *apv1.AccountUsageStats) int { return cmp.Compare(y.GetUses(), x.GetUses()) })
			if a.json() {
				return printJSON(a.io.Stdout, resp)
			}
			t := newTable(a.io.Stdout, "ACCOUNT", "EMAIL", "USES", "SUCCESSES", "NO SLOTS", "LOGIN FAILS", "BANS", "ERRORS", "ABORTED", "EXPIRED", "LOGINS")
			for _, s := range resp.GetStats() {
				t.row(strconv.FormatInt(s.GetAccountId(), 10), s.GetEmail(), s.GetUses(), s.GetSuccesses(), s.GetNoSlots(), s.GetLoginFails(), s.GetBans(), s.GetErrors(), s.GetAborted(), s.GetLeaseExpired(), s.GetLogins())
			}
			return t.flush()
		},
	}
	stats.Flags().DurationVar(&statsSince, "since", 24*time.Hour, "window length, ending now")
	cmd.AddCommand(list, stats)
	return cmd
}
