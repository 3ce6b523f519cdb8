package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

func TestBadInputIsInvalidArgumentWithFieldViolations(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	id := addAccounts(t, c, 1)[0]
	l := acquire(t, c, "fra")
	validLease := l.GetLeaseId()
	long := strings.Repeat("x", 300)

	tests := []struct {
		name  string
		call  func(ctx context.Context) error
		field string
	}{
		{"CreateMalformedEmail", func(ctx context.Context) error {
			_, err := c.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: "not-an-email", Password: "pw"})
			return err
		}, "email"},
		{"CreateEmailWithDisplayName", func(ctx context.Context) error {
			_, err := c.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: "Bob <bob@example.com>", Password: "pw"})
			return err
		}, "email"},
		{"CreateOverlongEmail", func(ctx context.Context) error {
			_, err := c.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: strings.Repeat("a", 250) + "@example.com", Password: "pw"})
			return err
		}, "email"},
		{"CreateEmptyPassword", func(ctx context.Context) error {
			_, err := c.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: "a@example.com"})
			return err
		}, "password"},
		{"CreateOverlongPassword", func(ctx context.Context) error {
			_, err := c.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: "a@example.com", Password: long})
			return err
		}, "password"},
		{"CreateOverlongPhone", func(ctx context.Context) error {
			_, err := c.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: "a@example.com", Password: "pw", Phone: "+33" + strings.Repeat("1", 40)})
			return err
		}, "phone"},
		{"CreateShortCodePhone", func(ctx context.Context) error {
			_, err := c.CreateAccount(ctx, &apv1.CreateAccountRequest{Email: "a@example.com", Password: "pw", Phone: "112"})
			return err
		}, "phone"},
		{"AcquireMissingMission", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{Holder: "h"})
			return err
		}, "mission_code"},
		{"AcquireMalformedMission", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "France!", Holder: "h"})
			return err
		}, "mission_code"},
		{"AcquireMissingHolder", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra"})
			return err
		}, "holder"},
		// A holder is shown to operators one per line (slotctl, logs), as
		// Requests' checker_id, which the Checker sends as its holder.
		{"AcquireHolderWithALineBreak", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-1\nchecker-2"})
			return err
		}, "holder"},
		{"AcquireIDNotAUUID", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-1", AcquireId: "retry-1"})
			return err
		}, "acquire_id"},
		{"AcquireIDNilUUID", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-1", AcquireId: "00000000-0000-0000-0000-000000000000"})
			return err
		}, "acquire_id"},
		{"AcquireOverlongHolder", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: long})
			return err
		}, "holder"},
		{"AcquireNegativeLeaseTTL", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "h", LeaseTtl: durationpb.New(-time.Second)})
			return err
		}, "lease_ttl"},
		{"AcquireLeaseTTLAboveMaximum", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "h", LeaseTtl: durationpb.New(48 * time.Hour)})
			return err
		}, "lease_ttl"},
		{"AcquireLeaseTTLOfANanosecond", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "h", LeaseTtl: durationpb.New(time.Nanosecond)})
			return err
		}, "lease_ttl"},
		{"AcquireLeaseTTLBelowMinimum", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "h", LeaseTtl: durationpb.New(apirule.MinLeaseTTL - time.Millisecond)})
			return err
		}, "lease_ttl"},
		{"AcquireNegativeWait", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "h", Wait: durationpb.New(-time.Second)})
			return err
		}, "wait"},
		{"AcquireMalformedDuration", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "h", Wait: &durationpb.Duration{Seconds: 1, Nanos: -5}})
			return err
		}, "wait"},
		{"AcquireOverlongRequestID", func(ctx context.Context) error {
			_, err := c.Acquire(ctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "h", RequestIds: []string{long}})
			return err
		}, "request_ids"},
		{"ReleaseUnspecifiedOutcome", func(ctx context.Context) error {
			_, err := c.Release(ctx, &apv1.ReleaseRequest{LeaseId: validLease, FencingToken: l.GetFencingToken()})
			return err
		}, "outcome"},
		{"ReleaseUnknownOutcome", func(ctx context.Context) error {
			_, err := c.Release(ctx, &apv1.ReleaseRequest{LeaseId: validLease, FencingToken: l.GetFencingToken(), Outcome: apv1.Outcome(42)})
			return err
		}, "outcome"},
		{"ReleaseMalformedLeaseID", func(ctx context.Context) error {
			_, err := c.Release(ctx, &apv1.ReleaseRequest{LeaseId: "lease-1", FencingToken: 1, Outcome: apv1.Outcome_OUTCOME_SUCCESS})
			return err
		}, "lease_id"},
		{"ReleaseZeroToken", func(ctx context.Context) error {
			_, err := c.Release(ctx, &apv1.ReleaseRequest{LeaseId: validLease, Outcome: apv1.Outcome_OUTCOME_SUCCESS})
			return err
		}, "fencing_token"},
		{"ReleaseOverlongDetail", func(ctx context.Context) error {
			_, err := c.Release(ctx, &apv1.ReleaseRequest{LeaseId: validLease, FencingToken: l.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_ERROR, Detail: strings.Repeat(long, 10)})
			return err
		}, "detail"},
		{"ReleaseRetryAfterUnderASecond", func(ctx context.Context) error {
			_, err := c.Release(ctx, &apv1.ReleaseRequest{LeaseId: validLease, FencingToken: l.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_ERROR, RetryAfter: durationpb.New(time.Millisecond)})
			return err
		}, "retry_after"},
		{"ReleaseRetryAfterOverADay", func(ctx context.Context) error {
			_, err := c.Release(ctx, &apv1.ReleaseRequest{LeaseId: validLease, FencingToken: l.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_ERROR, RetryAfter: durationpb.New(25 * time.Hour)})
			return err
		}, "retry_after"},
		{"ReleaseNegativeRetryAfter", func(ctx context.Context) error {
			_, err := c.Release(ctx, &apv1.ReleaseRequest{LeaseId: validLease, FencingToken: l.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_ERROR, RetryAfter: durationpb.New(-time.Minute)})
			return err
		}, "retry_after"},
		{"RenewNegativeExtension", func(ctx context.Context) error {
			_, err := c.Renew(ctx, &apv1.RenewRequest{LeaseId: validLease, FencingToken: l.GetFencingToken(), ExtendBy: durationpb.New(-time.Minute)})
			return err
		}, "extend_by"},
		{"RenewExtensionOfANanosecond", func(ctx context.Context) error {
			_, err := c.Renew(ctx, &apv1.RenewRequest{LeaseId: validLease, FencingToken: l.GetFencingToken(), ExtendBy: durationpb.New(time.Nanosecond)})
			return err
		}, "extend_by"},
		{"RenewExtensionAboveMaximum", func(ctx context.Context) error {
			_, err := c.Renew(ctx, &apv1.RenewRequest{LeaseId: validLease, FencingToken: l.GetFencingToken(), ExtendBy: durationpb.New(7 * 24 * time.Hour)})
			return err
		}, "extend_by"},
		{"GetZeroID", func(ctx context.Context) error {
			_, err := c.GetAccount(ctx, &apv1.GetAccountRequest{})
			return err
		}, "id"},
		{"ListNegativePageSize", func(ctx context.Context) error {
			_, err := c.ListAccounts(ctx, &apv1.ListAccountsRequest{PageSize: -1})
			return err
		}, "page_size"},
		{"ListMalformedPageToken", func(ctx context.Context) error {
			_, err := c.ListAccounts(ctx, &apv1.ListAccountsRequest{PageToken: "definitely not a token"})
			return err
		}, "page_token"},
		{"ListForgedPageToken", func(ctx context.Context) error {
			_, err := c.ListAccounts(ctx, &apv1.ListAccountsRequest{PageToken: "eyJ4IjoxfQ"}) // {"x":1}
			return err
		}, "page_token"},
		{"ListUnknownState", func(ctx context.Context) error {
			_, err := c.ListAccounts(ctx, &apv1.ListAccountsRequest{State: apv1.AccountState(9)})
			return err
		}, "state"},
		{"UpdateEmptyPassword", func(ctx context.Context) error {
			empty := ""
			_, err := c.UpdateAccount(ctx, &apv1.UpdateAccountRequest{Id: id, Password: &empty})
			return err
		}, "password"},
		{"UpdateNothing", func(ctx context.Context) error {
			_, err := c.UpdateAccount(ctx, &apv1.UpdateAccountRequest{Id: id})
			return err
		}, "password"},
		{"UsageNegativePageSize", func(ctx context.Context) error {
			_, err := c.ListUsage(ctx, &apv1.ListUsageRequest{PageSize: -5})
			return err
		}, "page_size"},
		{"UsageMalformedPageToken", func(ctx context.Context) error {
			_, err := c.ListUsage(ctx, &apv1.ListUsageRequest{PageToken: "%%%"})
			return err
		}, "page_token"},
		{"UsageWindowBackwards", func(ctx context.Context) error {
			now := b.clock.Now()
			_, err := c.ListUsage(ctx, &apv1.ListUsageRequest{Since: timestamppb.New(now), Until: timestamppb.New(now.Add(-time.Hour))})
			return err
		}, "since"},
		{"StatsWindowBackwards", func(ctx context.Context) error {
			now := b.clock.Now()
			_, err := c.GetUsageStats(ctx, &apv1.GetUsageStatsRequest{Since: timestamppb.New(now), Until: timestamppb.New(now.Add(-time.Hour))})
			return err
		}, "since"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantViolation(t, tt.call(testkit.Context(t)), tt.field)
		})
	}

	// None of the refused calls wrote anything: one account, one lease.
	var accounts, leases int
	if err := b.db.QueryRow(testkit.Context(t), `SELECT (SELECT count(*) FROM accountpool.accounts), (SELECT count(*) FROM accountpool.usage_log)`).Scan(&accounts, &leases); err != nil {
		t.Fatal(err)
	}
	if accounts != 1 || leases != 1 {
		t.Fatalf("bad input wrote rows: %d accounts, %d leases", accounts, leases)
	}
}

func TestMissingAndDuplicate(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	addAccounts(t, c, 1)

	t.Run("DuplicateEmailIsAlreadyExistsWhateverTheCase", func(t *testing.T) {
		_, err := c.CreateAccount(testkit.Context(t), &apv1.CreateAccountRequest{Email: strings.ToUpper(accEmail(1)), Password: "pw"})
		testkit.WantCode(t, err, codes.AlreadyExists)
	})
	t.Run("MissingAccountIsNotFound", func(t *testing.T) {
		_, err := c.GetAccount(testkit.Context(t), &apv1.GetAccountRequest{Id: 999999})
		testkit.WantCode(t, err, codes.NotFound)
		_, err = c.ResetAccount(testkit.Context(t), &apv1.ResetAccountRequest{Id: 999999})
		testkit.WantCode(t, err, codes.NotFound)
		on := true
		_, err = c.UpdateAccount(testkit.Context(t), &apv1.UpdateAccountRequest{Id: 999999, Active: &on})
		testkit.WantCode(t, err, codes.NotFound)
	})
}
