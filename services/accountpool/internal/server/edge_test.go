package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/server"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

func TestPolicyCoversEveryRPC(t *testing.T) {
	t.Parallel()
	if err := server.Policy.Covers(&apv1.AccountPoolService_ServiceDesc); err != nil {
		t.Fatal(err)
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	admin, b := setup(t, withConfig(func(c *domain.Config) { c.Cooldown = 0 }))
	addAccounts(t, admin, 2)
	checker, reader := b.dial(t, checkerToken), b.dial(t, readerToken)

	t.Run("CheckerLeasesButCannotReadOrAdminister", func(t *testing.T) {
		l := acquire(t, checker, "fra")
		if _, err := checker.Renew(testkit.Context(t), &apv1.RenewRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken()}); err != nil {
			t.Fatal(err)
		}
		release(t, checker, l, apv1.Outcome_OUTCOME_NO_SLOT)
		_, err := checker.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{})
		testkit.WantCode(t, err, codes.PermissionDenied)
		_, err = checker.CreateAccount(testkit.Context(t), &apv1.CreateAccountRequest{Email: "x@example.com", Password: "pw"})
		testkit.WantCode(t, err, codes.PermissionDenied)
	})

	t.Run("ReaderReadsButCannotLeaseOrAdminister", func(t *testing.T) {
		if _, err := reader.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := reader.ListAccounts(testkit.Context(t), &apv1.ListAccountsRequest{}); err != nil {
			t.Fatal(err)
		}
		_, err := reader.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h"})
		testkit.WantCode(t, err, codes.PermissionDenied)
		_, err = reader.ReencryptPasswords(testkit.Context(t), &apv1.ReencryptPasswordsRequest{})
		testkit.WantCode(t, err, codes.PermissionDenied)
		stream, err := reader.ImportAccounts(testkit.Context(t))
		if err == nil {
			_, err = stream.CloseAndRecv()
		}
		testkit.WantCode(t, err, codes.PermissionDenied)
	})

	t.Run("NoOrUnknownTokenIsUnauthenticated", func(t *testing.T) {
		_, err := b.dial(t, "").GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{})
		testkit.WantCode(t, err, codes.Unauthenticated)
		_, err = b.dial(t, "not-a-known-token-0123456789abcdef").Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h"})
		testkit.WantCode(t, err, codes.Unauthenticated)
	})

	t.Run("HealthNeedsNoToken", func(t *testing.T) {
		_, b2 := setup(t)
		conn := b2.conn
		resp, err := healthpb.NewHealthClient(conn).Check(testkit.Context(t), &healthpb.HealthCheckRequest{}, grpc.PerRPCCredentials(authtest.Bearer("")))
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health: %v %v", resp, err)
		}
	})
}

func TestRateLimitPerCaller(t *testing.T) {
	t.Parallel()
	admin, b := setup(t, withRateLimit(0.5, 2))
	reader := b.dial(t, readerToken)
	for range 2 {
		if _, err := reader.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := reader.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{})
	testkit.WantCode(t, err, codes.ResourceExhausted)
	if d, ok := apierr.RetryDelay(err); !ok || d <= 0 {
		t.Fatalf("no RetryInfo: %v", err)
	}
	// The admin has a bucket of its own.
	if _, err := admin.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{}); err != nil {
		t.Fatalf("another caller was limited: %v", err)
	}
}

// TestNoSecretInLogs drives every RPC with passwords and bearer tokens in
// it (and tokens nobody knows), over the real chain at debug level, and
// greps everything logged, and everything /metrics shows: none appears.
func TestNoSecretInLogs(t *testing.T) {
	t.Parallel()
	admin, b := setup(t, withConfig(func(c *domain.Config) { c.Cooldown = 0 }))
	checker, reader := b.dial(t, checkerToken), b.dial(t, readerToken)
	const (
		pw1       = "Pa55word-alpha-7731"
		pw2       = "Pa55word-bravo-9152"
		pw3       = "Pa55word-charlie-4460"
		passport  = "P9Z8Y7X6W"
		unknownTk = "unknown-token-never-valid-0123456789"
	)
	secrets := []string{pw1, pw2, pw3, passport, adminToken, checkerToken, readerToken, unknownTk}
	ctx := testkit.Context(t)
	ignore := func(_ any, _ error) {}

	created, err := admin.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: "s1@example.com", Password: pw1, Phone: "+33123456789"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetAccount().GetId()
	ignore(admin.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: "s1@example.com", Password: pw1}))     // duplicate
	ignore(admin.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: passport, Password: pw1 + pw1 + pw1})) // invalid
	stream, err := admin.ImportAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*apv1.ImportAccountsRequest{
		{Email: "s2@example.com", Password: pw2}, {Email: "s1@example.com", Password: pw2}, {Email: "bad", Password: pw3},
	} {
		if err := stream.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	ignore(stream.CloseAndRecv())
	ignore(admin.UpdateAccount(ctx, &apv1.UpdateAccountRequest{Id: id, Password: proto.String(pw3)}))
	ignore(admin.UpdateAccount(ctx, &apv1.UpdateAccountRequest{Id: -1, Password: proto.String(pw3)}))

	lease, err := checker.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-1", RequestIds: []string{passport}})
	if err != nil {
		t.Fatal(err)
	}
	ignore(checker.Renew(ctx, &apv1.RenewRequest{LeaseId: lease.GetLease().GetLeaseId(), FencingToken: lease.GetLease().GetFencingToken()}))
	ignore(checker.Renew(ctx, &apv1.RenewRequest{LeaseId: lease.GetLease().GetLeaseId(), FencingToken: 999}))
	ignore(checker.Release(ctx, &apv1.ReleaseRequest{LeaseId: lease.GetLease().GetLeaseId(), FencingToken: lease.GetLease().GetFencingToken(),
		Outcome: apv1.Outcome_OUTCOME_LOGIN_FAIL, Detail: "login failed", RequestIds: []string{passport}}))
	ignore(checker.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-1", Wait: durationpb.New(10 * time.Millisecond)}))
	ignore(reader.GetAccount(ctx, &apv1.GetAccountRequest{Id: id}))
	ignore(reader.ListAccounts(ctx, &apv1.ListAccountsRequest{}))
	ignore(reader.GetPoolStatus(ctx, &apv1.GetPoolStatusRequest{}))
	ignore(reader.ListUsage(ctx, &apv1.ListUsageRequest{Since: timestamppb.New(time.Unix(0, 0))}))
	ignore(reader.GetUsageStats(ctx, &apv1.GetUsageStatsRequest{}))
	ignore(admin.ResetAccount(ctx, &apv1.ResetAccountRequest{Id: id}))
	ignore(admin.ReencryptPasswords(ctx, &apv1.ReencryptPasswordsRequest{}))
	// Refused calls: wrong role, unknown token, malformed header.
	ignore(reader.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: "s3@example.com", Password: pw1}))
	ignore(b.dial(t, unknownTk).Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "h"}))
	ignore(b.dial(t, unknownTk+" "+pw1).GetPoolStatus(ctx, &apv1.GetPoolStatusRequest{}))

	logs := b.logs.String()
	grpcservertest.WantRequestLogs(t, logs, "CreateAccount", "ImportAccounts", "UpdateAccount", "Acquire", "Renew", "Release", "GetAccount",
		"ListAccounts", "GetPoolStatus", "ListUsage", "GetUsageStats", "ResetAccount", "ReencryptPasswords")
	grpcservertest.WantCallerRoles(t, logs, "checker", "unauthenticated")
	grpcservertest.WantNoSecrets(t, logs, b.registry, secrets...)
}

func TestDomainMetricsMove(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	want := func(v float64, name string, labels ...string) {
		t.Helper()
		grpcservertest.WantMetric(t, b.registry, v, name, labels...)
	}

	_, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h"})
	testkit.WantCode(t, err, codes.FailedPrecondition)
	want(1, "slotwatch_pool_acquire_total", "result", "no_active_account")

	ids := addAccounts(t, c, 3)
	if _, err := c.UpdateAccount(testkit.Context(t), &apv1.UpdateAccountRequest{Id: ids[2], Active: proto.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	want(2, "slotwatch_pool_accounts", "state", "available")
	want(1, "slotwatch_pool_accounts", "state", "disabled")

	l1 := acquire(t, c, "fra")
	l2 := acquire(t, c, "deu")
	want(2, "slotwatch_pool_acquire_total", "result", "leased")
	want(2, "slotwatch_pool_accounts", "state", "leased")
	want(0, "slotwatch_pool_accounts", "state", "available")

	_, err = c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h", Wait: durationpb.New(20 * time.Millisecond)})
	testkit.WantCode(t, err, codes.ResourceExhausted)
	want(1, "slotwatch_pool_acquire_total", "result", "exhausted")
	want(1, "slotwatch_pool_acquire_wait_seconds")

	release(t, c, l1, apv1.Outcome_OUTCOME_NO_SLOT)
	// A retry of the same release is answered again but not counted again.
	release(t, c, l1, apv1.Outcome_OUTCOME_NO_SLOT)
	want(1, "slotwatch_pool_releases_total", "outcome", "no_slot", "mission", "fra")
	want(1, "slotwatch_pool_accounts", "state", "cooldown")

	_, err = c.Release(testkit.Context(t), &apv1.ReleaseRequest{LeaseId: l2.GetLeaseId(), FencingToken: l2.GetFencingToken() + 1, Outcome: apv1.Outcome_OUTCOME_SUCCESS})
	testkit.WantCode(t, err, codes.FailedPrecondition)
	_, err = c.Renew(testkit.Context(t), &apv1.RenewRequest{LeaseId: l1.GetLeaseId(), FencingToken: l1.GetFencingToken()})
	testkit.WantCode(t, err, codes.FailedPrecondition)
	want(2, "slotwatch_pool_fencing_rejections_total")

	b.clock.Advance(6 * time.Minute) // past l2's lease
	if n, err := b.pool.ExpireLeases(context.Background()); err != nil || n != 1 {
		t.Fatalf("ExpireLeases = %d, %v", n, err)
	}
	want(1, "slotwatch_pool_lease_expired_total")
	want(0, "slotwatch_pool_releases_total", "outcome", "success", "mission", "deu")

	// Ban one account for the quarantine gauge.
	b.clock.Advance(time.Hour)
	l3 := acquire(t, c, "fra")
	release(t, c, l3, apv1.Outcome_OUTCOME_BANNED)
	want(1, "slotwatch_pool_releases_total", "outcome", "banned", "mission", "fra")
	want(1, "slotwatch_pool_accounts", "state", "quarantined")
}
