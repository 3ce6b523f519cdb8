package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/checker/internal/session"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/proctest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// binDir holds the accountpool binary the tests run.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(proctest.RunWithBinaries(m, &binDir, "checker-client-bin", false,
		"github.com/slotwatch/slotwatch/services/accountpool/cmd/accountpool"))
}

// setup runs a real AccountPool (no cooldown, a login budget of one a
// day) with one account, and returns a Pool on it as the checker.
func setup(t *testing.T) *Pool {
	t.Helper()
	_, conn := startPool(t, 1)
	return NewPool(conn)
}

// startPool runs a real AccountPool (no cooldown, a login budget of one a
// day) with n accounts acc1..accN, and returns an admin client of it and
// a connection to it as the checker.
func startPool(t *testing.T, n int) (apv1.AccountPoolServiceClient, *grpc.ClientConn) {
	t.Helper()
	tokens := authtest.TokensFile(t)
	ap := proctest.Start(t, filepath.Join(binDir, "accountpool"), proctest.Config{
		Env: []string{"DATABASE_URL=" + pgtest.NewURL(t), "LISTEN_ADDR=127.0.0.1:0", "METRICS_ADDR=127.0.0.1:0",
			"AUTH_TOKENS_FILE=" + tokens, "ENCRYPTION_KEYSET_FILE=" + grpcservertest.KeysetFile(t),
			"TLS_CERT_FILE=", "TLS_KEY_FILE=", "TLS_CA_FILE=", "RATE_LIMIT_RPS=0",
			"POOL_COOLDOWN=0s", "POOL_MAX_LOGINS_PER_DAY=1"},
		ServeTimeout: 90 * time.Second,
		StopTimeout:  time.Minute,
	})
	admin := apv1.NewAccountPoolServiceClient(authtest.Dial(t, ap.Addr, auth.ClientConfig{
		TokenFile: authtest.WriteFile(t, "admin.token", authtest.AdminToken+"\n")}))
	for i := 1; i <= n; i++ {
		if _, err := admin.CreateAccount(testkit.Context(t), &apv1.CreateAccountRequest{
			Email: fmt.Sprintf("acc%d@example.com", i), Password: fmt.Sprintf("portal-pw-%d", i), Phone: fmt.Sprintf("+44207946000%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	return admin, authtest.Dial(t, ap.Addr, auth.ClientConfig{
		TokenFile: authtest.WriteFile(t, "checker.token", authtest.CheckerToken+"\n")})
}

// A call that got no answer in time, or whose connection failed, may have
// taken effect: it is ErrNoAnswer (Acquire is tried again only with its
// acquire_id, and a mission that gives up after one gives its lease back).
// UNAVAILABLE is both a connection refused before the call was sent and a
// stream broken after the server ran it, which gRPC does not tell apart.
// One the service refused (ABORTED, RESOURCE_EXHAUSTED) is only
// ErrUnavailable.
func TestWrapTellsNoAnswerFromUnreachable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err                   error
		unavailable, noAnswer bool
	}{
		{status.Error(codes.DeadlineExceeded, "deadline"), true, true},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), true, true},
		{status.Error(codes.Unavailable, "connection refused"), true, true},
		{status.Error(codes.Unavailable, "error reading from server: EOF"), true, true},
		{status.Error(codes.ResourceExhausted, "no account free"), true, false},
		{status.Error(codes.Aborted, "serialization failure"), true, false},
		{status.Error(codes.InvalidArgument, "bad"), false, false},
	} {
		err := wrap("acquire", tc.err)
		if errors.Is(err, session.ErrUnavailable) != tc.unavailable || errors.Is(err, session.ErrNoAnswer) != tc.noAnswer {
			t.Errorf("wrap(%v) = %v; want unavailable %t, no answer %t", tc.err, err, tc.unavailable, tc.noAnswer)
		}
	}
}

func TestPoolCarriesTheSessionAndTheLoginBudget(t *testing.T) {
	t.Parallel()
	p := setup(t)
	ctx := testkit.Context(t)
	acquire := func() (session.Lease, error) {
		return p.Acquire(ctx, session.AcquireRequest{Mission: "fra", Holder: "checker-test", TTL: time.Minute, RequestIDs: []string{"r1"}})
	}

	first, err := acquire()
	if err != nil {
		t.Fatal(err)
	}
	if first.SessionState != nil || first.NoLogin {
		t.Fatalf("first lease has a session (%d bytes) or no login left (%v); want neither", len(first.SessionState), first.NoLogin)
	}
	state := []byte(`{"v":1,"cookies":[{"name":"psim_session","value":"s1"}]}`)
	if err := p.Release(ctx, first, session.Release{Outcome: session.NoSlot, RequestIDs: []string{"r1"},
		LoggedIn: true, SessionState: state, SessionMaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}

	// The budget (one login) is spent; the kept session still leases the
	// account, and the lease says it must not log in.
	second, err := acquire()
	if err != nil {
		t.Fatal(err)
	}
	if string(second.SessionState) != string(state) || !second.NoLogin {
		t.Fatalf("second lease: session %q, no login %v; want the kept session and no login left", second.SessionState, second.NoLogin)
	}
	if err := p.Release(ctx, second, session.Release{Outcome: session.Unused, ClearSession: true}); err != nil { // the session was dead: login_budget
		t.Fatal(err)
	}

	// Without a session and without budget, the account is not leased.
	_, err = acquire()
	var busy *session.NoAccountFreeError
	if !errors.As(err, &busy) || busy.RetryAfter <= 0 {
		t.Fatalf("third acquire: %v; want no account free until the budget returns", err)
	}
}

// olderRequests is a Requests from before CHECK_OUTCOME_MAINTENANCE: it
// refuses that outcome as it refused any it did not know.
type olderRequests struct {
	rqv1.UnimplementedRequestsServiceServer
	mu  sync.Mutex
	got []*rqv1.ReportCheckResultRequest
}

func (o *olderRequests) ReportCheckResult(_ context.Context, req *rqv1.ReportCheckResultRequest) (*rqv1.ReportCheckResultResponse, error) {
	o.mu.Lock()
	o.got = append(o.got, req)
	o.mu.Unlock()
	if req.GetOutcome() > rqv1.CheckOutcome_CHECK_OUTCOME_RATE_LIMITED {
		var v apirule.FieldErrors
		v.Add("outcome", "must be CHECK_OUTCOME_NO_SLOT, CHECK_OUTCOME_SLOTS_FOUND, CHECK_OUTCOME_FAILED, CHECK_OUTCOME_CAPTCHA, CHECK_OUTCOME_BLOCKED or CHECK_OUTCOME_RATE_LIMITED")
		return nil, apierr.Invalid(v)
	}
	return &rqv1.ReportCheckResultResponse{}, nil
}

// TestMaintenanceToAnOlderRequestsGoesInAsFailed: in a rollout, a Requests
// older than the maintenance outcome refuses it; the check is reported
// FAILED instead (as that Requests recorded maintenance before), without
// the Retry-After only walls carry, rather than left to lapse unrecorded.
func TestMaintenanceToAnOlderRequestsGoesInAsFailed(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	old := &olderRequests{}
	srv := grpc.NewServer()
	rqv1.RegisterRequestsServiceServer(srv, old)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	_, err = NewRequests(conn).ReportCheckResult(testkit.Context(t), session.Report{ClaimID: "c1", AccountID: 7,
		Outcome: session.ReportMaintenance, RetryAfter: 30 * time.Minute, Detail: "maintenance: the portal is down for maintenance"})
	if err != nil {
		t.Fatalf("report: %v; want it recorded as FAILED", err)
	}
	old.mu.Lock()
	defer old.mu.Unlock()
	if len(old.got) != 2 || old.got[1].GetOutcome() != rqv1.CheckOutcome_CHECK_OUTCOME_FAILED || old.got[1].GetRetryAfter() != nil ||
		old.got[1].GetDetail() != old.got[0].GetDetail() {
		t.Fatalf("reports sent %v; want MAINTENANCE, then FAILED with the same detail and no retry_after", old.got)
	}
}

// olderPool is an AccountPool from before OUTCOME_ABORTED: it refuses that
// outcome as it refused any it did not know.
type olderPool struct {
	apv1.UnimplementedAccountPoolServiceServer
	mu  sync.Mutex
	got []*apv1.ReleaseRequest
}

func (o *olderPool) Release(_ context.Context, req *apv1.ReleaseRequest) (*apv1.ReleaseResponse, error) {
	o.mu.Lock()
	o.got = append(o.got, req)
	o.mu.Unlock()
	if req.GetOutcome() > apv1.Outcome_OUTCOME_UNUSED {
		var v apirule.FieldErrors
		v.Add("outcome", "must be one of OUTCOME_SUCCESS, OUTCOME_NO_SLOT, OUTCOME_LOGIN_FAIL, OUTCOME_BANNED, OUTCOME_ERROR, OUTCOME_UNUSED")
		return nil, apierr.Invalid(v)
	}
	return &apv1.ReleaseResponse{}, nil
}

// TestAbortedToAnOlderPoolGoesInAsError: in a rollout, an AccountPool older
// than the aborted outcome refuses it; the lease is released again as
// ERROR (as that pool was told before), with everything else the same,
// rather than left to lapse as lease_expired (a failure too, and the
// account held for the lease's length).
func TestAbortedToAnOlderPoolGoesInAsError(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	old := &olderPool{}
	srv := grpc.NewServer()
	apv1.RegisterAccountPoolServiceServer(srv, old)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	err = NewPool(conn).Release(testkit.Context(t), session.Lease{ID: "l1", FencingToken: 3}, session.Release{
		Outcome: session.Aborted, Detail: "the checker stopped before the check finished", RequestIDs: []string{"r1"},
		LoggedIn: true, RetryAfter: time.Minute})
	if err != nil {
		t.Fatalf("release: %v; want it released as ERROR", err)
	}
	old.mu.Lock()
	defer old.mu.Unlock()
	if len(old.got) != 2 || old.got[0].GetOutcome() != apv1.Outcome_OUTCOME_ABORTED || old.got[1].GetOutcome() != apv1.Outcome_OUTCOME_ERROR {
		t.Fatalf("releases sent %v; want ABORTED, then ERROR", old.got)
	}
	again := proto.Clone(old.got[1]).(*apv1.ReleaseRequest)
	again.Outcome = apv1.Outcome_OUTCOME_ABORTED
	if !proto.Equal(again, old.got[0]) {
		t.Fatalf("the ERROR release differs from the ABORTED one in more than the outcome:\n%v\n%v", old.got[0], old.got[1])
	}
}
