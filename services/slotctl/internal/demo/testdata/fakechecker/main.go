// Command fakechecker stands in for bin/checker in the demo's own test: it
// runs the session loop of DESIGN §1 against the real AccountPool and
// Requests, reads portalsim's slots from its admin API instead of driving a
// browser, and logs the Checker's JSON lines ("session started", "check
// finished", "no account free", "session finished"). It serves gRPC health
// only. It is test scaffolding, not a second Checker.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakechecker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	lis, err := net.Listen("tcp", os.Getenv("LISTEN_ADDR"))
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	cc, err := auth.ClientConfigFromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	apConn, err := auth.Dial(os.Getenv("ACCOUNTPOOL_ADDR"), cc)
	if err != nil {
		return err
	}
	defer apConn.Close()
	rqConn, err := auth.Dial(os.Getenv("REQUESTS_ADDR"), cc)
	if err != nil {
		return err
	}
	defer rqConn.Close()
	interval, err := time.ParseDuration(os.Getenv("CHECKER_SESSION_INTERVAL"))
	if err != nil {
		interval = 3 * time.Second
	}
	c := &checker{
		log: log, ap: apv1.NewAccountPoolServiceClient(apConn), rq: rqv1.NewRequestsServiceClient(rqConn),
		portal: os.Getenv("PORTAL_BASE_URL"), id: os.Getenv("CHECKER_ID"),
	}
	for session := 1; ctx.Err() == nil; session++ {
		if n := c.session(ctx, session); n == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	}
	return nil
}

type checker struct {
	log    *slog.Logger
	ap     apv1.AccountPoolServiceClient
	rq     rqv1.RequestsServiceClient
	portal string
	id     string
}

func (c *checker) session(ctx context.Context, n int) int {
	resp, err := c.rq.ClaimDueMissions(ctx, &rqv1.ClaimDueMissionsRequest{CheckerId: c.id, MaxMissions: 5})
	if err != nil || len(resp.GetClaims()) == 0 {
		return 0
	}
	var missions []string
	for _, cl := range resp.GetClaims() {
		missions = append(missions, cl.GetMissionCode())
	}
	c.log.Info("session started", "session", n, "missions", missions)
	var wg sync.WaitGroup
	for _, cl := range resp.GetClaims() {
		wg.Go(func() { c.check(ctx, n, cl) })
	}
	wg.Wait()
	c.log.Info("session finished", "session", n, "checks", len(resp.GetClaims()))
	return len(resp.GetClaims())
}

func (c *checker) check(ctx context.Context, n int, cl *rqv1.MissionClaim) {
	var lease *apv1.Lease
	for lease == nil {
		resp, err := c.ap.Acquire(ctx, &apv1.AcquireRequest{MissionCode: cl.GetMissionCode(), Holder: c.id})
		if err == nil {
			lease = resp.GetLease()
			break
		}
		st := status.Convert(err)
		if st.Code() != codes.ResourceExhausted {
			c.log.Error("acquire", "mission", cl.GetMissionCode(), "error", err.Error())
			return
		}
		wait := time.Second
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				wait = ri.GetRetryDelay().AsDuration()
			}
		}
		c.log.Info("no account free", "session", n, "mission", cl.GetMissionCode(), "retry_after", wait.String(), "retry_after_ms", wait.Milliseconds())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	start := time.Now()
	slots := c.slots(ctx, cl)
	outcome := rqv1.CheckOutcome_CHECK_OUTCOME_NO_SLOT
	if len(slots) > 0 {
		outcome = rqv1.CheckOutcome_CHECK_OUTCOME_SLOTS_FOUND
	}
	rep, err := c.rq.ReportCheckResult(ctx, &rqv1.ReportCheckResultRequest{ClaimId: cl.GetClaimId(), Outcome: outcome, Slots: slots, AccountId: lease.GetAccountId()})
	matched := len(rep.GetMatched())
	result, name := apv1.Outcome_OUTCOME_NO_SLOT, "no_slot"
	if matched > 0 {
		result, name = apv1.Outcome_OUTCOME_SUCCESS, "success"
	}
	if err != nil {
		result, name = apv1.Outcome_OUTCOME_ERROR, "error"
	}
	_, _ = c.ap.Release(context.WithoutCancel(ctx), &apv1.ReleaseRequest{LeaseId: lease.GetLeaseId(), FencingToken: lease.GetFencingToken(), Outcome: result})
	c.log.Info("check finished", "session", n, "mission", cl.GetMissionCode(), "account_id", lease.GetAccountId(),
		"account_email", lease.GetEmail(), "outcome", name, "slots", len(slots), "matched", matched,
		"duration_ms", time.Since(start).Milliseconds(), "detail", fmt.Sprintf("%d free slots", len(slots)))
}

// slots reads the mission's slots for the claim's centres and categories
// from portalsim's admin state.
func (c *checker) slots(ctx context.Context, cl *rqv1.MissionClaim) []*rqv1.Slot {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.portal+"/admin/state", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st struct {
		Missions []struct {
			Code  string `json:"code"`
			Slots []struct {
				Centre       string `json:"centre"`
				VisaCategory string `json:"visa_category"`
				Date         string `json:"date"`
				Time         string `json:"time"`
			} `json:"slots"`
		} `json:"missions"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	wanted := map[[2]string]bool{}
	for _, r := range cl.GetRequests() {
		wanted[[2]string{r.GetCentre(), r.GetVisaCategory()}] = true
	}
	var out []*rqv1.Slot
	for _, m := range st.Missions {
		if m.Code != cl.GetMissionCode() {
			continue
		}
		for _, s := range m.Slots {
			if wanted[[2]string{s.Centre, s.VisaCategory}] {
				out = append(out, &rqv1.Slot{Centre: s.Centre, VisaCategory: s.VisaCategory, Date: s.Date, Time: s.Time})
			}
		}
	}
	return out
}
