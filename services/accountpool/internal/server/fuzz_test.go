package server_test

import (
	"encoding/base64"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// fuzzServer is one server for a whole fuzz run: three accounts, one of
// them leased, so that ids and the lease are there to be hit.
func fuzzServer(f *testing.F) (grpcservertest.RPCFuzz, *apv1.Lease) {
	f.Helper()
	c, b := setup(f)
	addAccounts(f, c, 3)
	l := acquire(f, c, "fra")
	return grpcservertest.RPCFuzz{
		Conn:    b.conn,
		Service: apv1.File_slotwatch_accountpool_v1_accountpool_proto.Services().Get(0),
		DB:      b.db,
		Schema:  "accountpool",
		Timeout: 2 * time.Second,
	}, l
}

// FuzzRequests: no request to any RPC, however malformed, is answered
// INTERNAL or panics the server, and a refused one writes nothing.
func FuzzRequests(f *testing.F) {
	fz, l := fuzzServer(f)
	since := timestamppb.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	fz.Seed(f,
		&apv1.AcquireRequest{MissionCode: "fra", Holder: "h", LeaseTtl: durationpb.New(time.Minute), RequestIds: []string{"r1"}},
		&apv1.AcquireRequest{MissionCode: "fra", Holder: "h", Wait: durationpb.New(50 * time.Millisecond)},
		&apv1.RenewRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(), ExtendBy: durationpb.New(time.Minute)},
		&apv1.ReleaseRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken() + 1, Outcome: apv1.Outcome_OUTCOME_NO_SLOT},
		&apv1.ReleaseRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(), Outcome: apv1.Outcome(99),
			SessionState: []byte("cookies"), SessionMaxAge: durationpb.New(time.Hour), RetryAfter: durationpb.New(-time.Second)},
		&apv1.CreateAccountRequest{Email: "new@example.com", Password: "pw", Phone: "+33123456789"},
		&apv1.ImportAccountsRequest{Email: "imp@example.com", Password: "pw"},
		&apv1.GetAccountRequest{Id: 1},
		&apv1.ListAccountsRequest{State: apv1.AccountState_ACCOUNT_STATE_LEASED, PageSize: 2, PageToken: "eyJhIjoxfQ"},
		&apv1.UpdateAccountRequest{Id: 2, Password: new("pw2"), Phone: new("+4420794600"), Active: new(false)},
		&apv1.ResetAccountRequest{Id: 3},
		&apv1.ListUsageRequest{AccountId: 1, Since: since, Until: timestamppb.New(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)), PageSize: -1},
		&apv1.GetUsageStatsRequest{Since: since, Until: &timestamppb.Timestamp{Seconds: 1 << 62}},
	)
	f.Fuzz(fz.Check)
}

// FuzzPageTokens: a page token that was not made by a previous call,
// whatever its position holds, is refused as INVALID_ARGUMENT or read as a
// position; never INTERNAL. The input is the token's JSON.
func FuzzPageTokens(f *testing.F) {
	c, _ := setup(f)
	addAccounts(f, c, 3)
	for _, s := range []string{`{"a":1}`, `{"a":-9223372036854775808}`, `{"t":"2026-03-02T09:00:00Z","l":"x"}`,
		`{"t":"9999-12-31T23:59:59.999999999+14:00","l":"\u0000"}`, `{"t":"0001-01-01T00:00:00Z"}`, `null`, `{}`} {
		f.Add(uint8(0), []byte(s))
		f.Add(uint8(1), []byte(s))
	}
	f.Fuzz(func(t *testing.T, list uint8, pos []byte) {
		tok := base64.RawURLEncoding.EncodeToString(pos)
		ctx := testkit.Context(t)
		var err error
		if list%2 == 0 {
			_, err = c.ListAccounts(ctx, &apv1.ListAccountsRequest{PageSize: 2, PageToken: tok})
		} else {
			_, err = c.ListUsage(ctx, &apv1.ListUsageRequest{PageSize: 2, PageToken: tok})
		}
		grpcservertest.WantNotInternal(t, err)
	})
}
