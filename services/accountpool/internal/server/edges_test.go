package server_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestTextPostgresCannotStoreIsInvalidArgument sends NUL characters, which
// Postgres refuses in text: the caller gets INVALID_ARGUMENT naming the
// field, not INTERNAL. (Broken UTF-8 never gets this far: protobuf refuses
// to marshal it.)
func TestTextPostgresCannotStoreIsInvalidArgument(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	addAccounts(t, c, 1)
	l := acquire(t, c, "fra")
	for _, bad := range []string{"nul\x00byte", "\x00"} {
		_, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: bad})
		wantViolation(t, err, "holder")
		_, err = c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "h", RequestIds: []string{bad}})
		wantViolation(t, err, "request_ids")
		_, err = c.Release(testkit.Context(t), &apv1.ReleaseRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(), Outcome: apv1.Outcome_OUTCOME_ERROR, Detail: bad})
		wantViolation(t, err, "detail")
		_, err = c.CreateAccount(testkit.Context(t), &apv1.CreateAccountRequest{Email: "x@example.com", Password: bad})
		wantViolation(t, err, "password")
	}
}

func TestMoreBadInput(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	id := addAccounts(t, c, 1)[0]
	bad := "12"
	_, err := c.UpdateAccount(testkit.Context(t), &apv1.UpdateAccountRequest{Id: id, Phone: &bad})
	wantViolation(t, err, "phone")
	_, err = c.ListUsage(testkit.Context(t), &apv1.ListUsageRequest{AccountId: -1})
	wantViolation(t, err, "account_id")
	_, err = c.ListUsage(testkit.Context(t), &apv1.ListUsageRequest{Result: apv1.UsageResult(77)})
	wantViolation(t, err, "result")
	_, err = c.ListUsage(testkit.Context(t), &apv1.ListUsageRequest{MissionCode: "FRA!"})
	wantViolation(t, err, "mission_code")
}

// TestImportReportsBadRowsAndKeepsGoing streams rows a careless CSV could
// hold, an over-long multi-byte email among them: the summary comes back
// and the good rows are created.
func TestImportReportsBadRowsAndKeepsGoing(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	stream, err := c.ImportAccounts(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	rows := []*apv1.ImportAccountsRequest{
		{Email: strings.Repeat("é", 200) + "@example.com", Password: "p"},
		{Email: "nul\x00@example.com", Password: "p"},
		{Email: "ok@example.com", Password: "p"},
	}
	for _, r := range rows {
		if err := stream.Send(r); err != nil && err != io.EOF {
			t.Fatal(err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("import ended with %v", err)
	}
	if resp.GetCreated() != 1 || len(resp.GetFailed()) != 2 {
		t.Fatalf("import summary %v", resp)
	}
}

// TestLeaseIsTakenBackOnlyAfterTheGrace: a replica whose clock runs a
// little fast must not hand out an account whose lease is still running
// by the clock that granted it.
func TestLeaseIsTakenBackOnlyAfterTheGrace(t *testing.T) {
	t.Parallel()
	c, b := setup(t, withConfig(func(c *domain.Config) { c.Cooldown = 0 }))
	addAccounts(t, c, 1)
	l := acquire(t, c, "fra")
	b.clock.Advance(5*time.Minute + domain.ExpiryGrace/2) // past the end, inside the grace
	if n, _ := b.pool.ExpireLeases(context.Background()); n != 0 {
		t.Fatal("lease taken back inside the grace")
	}
	_, err := c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "bel", Holder: "other"})
	testkit.WantCode(t, err, codes.ResourceExhausted)
	if d, _ := apierr.RetryDelay(err); d != domain.ExpiryGrace/2 {
		t.Fatalf("retry delay %s, want the rest of the grace (%s)", d, domain.ExpiryGrace/2)
	}
	// The holder, though, may no longer use it.
	_, err = c.Renew(testkit.Context(t), &apv1.RenewRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken()})
	testkit.WantCode(t, err, codes.FailedPrecondition)
	b.clock.Advance(domain.ExpiryGrace / 2)
	if got := acquire(t, c, "bel"); got.GetFencingToken() <= l.GetFencingToken() {
		t.Fatalf("re-lease token %d after %d", got.GetFencingToken(), l.GetFencingToken())
	}
}

// TestAnswersMatchWhatIsStored runs the pool on a clock with nanoseconds:
// the times an RPC answers are the ones a later read returns.
func TestAnswersMatchWhatIsStored(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	b.clock.Advance(123456789 * time.Nanosecond)
	id := addAccounts(t, c, 1)[0]
	l := acquire(t, c, "fra")
	renewed, err := c.Renew(testkit.Context(t), &apv1.RenewRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(), ExtendBy: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if got := getAccount(t, c, id); !got.GetLeaseExpiresAt().AsTime().Equal(renewed.GetExpiresAt().AsTime()) {
		t.Fatalf("Renew answered %s, stored %s", renewed.GetExpiresAt().AsTime(), got.GetLeaseExpiresAt().AsTime())
	}
	released := release(t, c, l, apv1.Outcome_OUTCOME_NO_SLOT)
	if got := getAccount(t, c, id); !got.GetCooldownUntil().AsTime().Equal(released.GetCooldownUntil().AsTime()) {
		t.Fatalf("Release answered %s, stored %s", released.GetCooldownUntil().AsTime(), got.GetCooldownUntil().AsTime())
	}
}
