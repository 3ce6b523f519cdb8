package server_test

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

func TestListAccountsPagesCoverEveryAccountOnce(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	ids := addAccounts(t, c, 7)
	var got []int64
	token := ""
	for pages := 0; ; pages++ {
		resp, err := c.ListAccounts(testkit.Context(t), &apv1.ListAccountsRequest{PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range resp.GetAccounts() {
			got = append(got, a.GetId())
		}
		token = resp.GetNextPageToken()
		if token == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		// An account added between pages shows up on a later page,
		// without shifting what was already served.
		if pages == 0 {
			ids = append(ids, addAccountsFrom(t, c, 8, 1)...)
		}
	}
	if len(got) != len(ids) {
		t.Fatalf("listed %v, want %v", got, ids)
	}
	for i := range ids {
		if got[i] != ids[i] {
			t.Fatalf("listed %v, want %v", got, ids)
		}
	}
}

func addAccountsFrom(t *testing.T, c apv1.AccountPoolServiceClient, first, n int) []int64 {
	t.Helper()
	var ids []int64
	for i := first; i < first+n; i++ {
		resp, err := c.CreateAccount(testkit.Context(t), &apv1.CreateAccountRequest{Email: accEmail(i), Password: accPassword(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetAccount().GetId())
	}
	return ids
}

// TestStatesAgree puts accounts in every state and checks that the state
// filter of ListAccounts (SQL), the state in each answer (Go) and
// GetPoolStatus's counts agree.
func TestStatesAgree(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	ids := addAccounts(t, c, 6)
	release(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_NO_SLOT) // 1: cooldown
	release(t, c, acquire(t, c, "fra"), apv1.Outcome_OUTCOME_BANNED)  // 2: quarantined
	acquire(t, c, "fra")                                              // 3: leased
	off := false
	if _, err := c.UpdateAccount(testkit.Context(t), &apv1.UpdateAccountRequest{Id: ids[3], Active: &off}); err != nil { // 4: disabled
		t.Fatal(err)
	}
	// 5 and 6 stay available.
	want := map[apv1.AccountState][]int64{
		apv1.AccountState_ACCOUNT_STATE_COOLDOWN:    {ids[0]},
		apv1.AccountState_ACCOUNT_STATE_QUARANTINED: {ids[1]},
		apv1.AccountState_ACCOUNT_STATE_LEASED:      {ids[2]},
		apv1.AccountState_ACCOUNT_STATE_DISABLED:    {ids[3]},
		apv1.AccountState_ACCOUNT_STATE_AVAILABLE:   {ids[4], ids[5]},
	}
	for state, wantIDs := range want {
		resp, err := c.ListAccounts(testkit.Context(t), &apv1.ListAccountsRequest{State: state})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetAccounts()) != len(wantIDs) {
			t.Fatalf("%v: listed %v, want ids %v", state, resp.GetAccounts(), wantIDs)
		}
		for i, a := range resp.GetAccounts() {
			if a.GetId() != wantIDs[i] || a.GetState() != state {
				t.Fatalf("%v: listed %v, want ids %v", state, resp.GetAccounts(), wantIDs)
			}
		}
	}
	st, err := c.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetTotalActive() != 5 || st.GetAvailable() != 2 || st.GetLeased() != 1 || st.GetInCooldown() != 1 ||
		st.GetQuarantined() != 1 || st.GetDisabled() != 1 || st.GetNextAvailableAt() != nil {
		t.Fatalf("pool status %v", st)
	}
	// Once every cooldown and quarantine is over, all active unleased
	// accounts are available again, with nothing having run in between.
	b.clock.Advance(61 * time.Minute)
	st, err = c.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetAvailable() != 4 || st.GetLeased() != 1 {
		t.Fatalf("pool status after the rests: %v", st)
	}

	t.Run("OnATableOfRowsAcquireTakesExactlyTheAvailableOnes", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		// Rows written straight to the table, each rest ending before, at
		// or after now: the Go state (each answer's state), the SQL state
		// filter, GetPoolStatus and Acquire's candidates must agree.
		const (
			before = -time.Minute
			at     = time.Duration(0)
			later  = time.Minute
			none   = time.Duration(1 << 62) // NULL
		)
		rows := []struct {
			name                 string
			active, leased       bool
			cooldown, quarantine time.Duration
			want                 apv1.AccountState
		}{
			{"Fresh", true, false, none, none, apv1.AccountState_ACCOUNT_STATE_AVAILABLE},
			{"CooldownEndsNow", true, false, at, none, apv1.AccountState_ACCOUNT_STATE_AVAILABLE},
			{"QuarantineEndsNow", true, false, before, at, apv1.AccountState_ACCOUNT_STATE_AVAILABLE},
			{"BothRestsOver", true, false, before, before, apv1.AccountState_ACCOUNT_STATE_AVAILABLE},
			{"InCooldown", true, false, later, none, apv1.AccountState_ACCOUNT_STATE_COOLDOWN},
			{"InCooldownAfterAQuarantine", true, false, later, before, apv1.AccountState_ACCOUNT_STATE_COOLDOWN},
			{"Quarantined", true, false, none, later, apv1.AccountState_ACCOUNT_STATE_QUARANTINED},
			{"QuarantinedAndCoolingDown", true, false, later, later, apv1.AccountState_ACCOUNT_STATE_QUARANTINED},
			{"QuarantinedWhileCooldownIsOver", true, false, before, later, apv1.AccountState_ACCOUNT_STATE_QUARANTINED},
			{"Leased", true, true, none, none, apv1.AccountState_ACCOUNT_STATE_LEASED},
			{"LeasedInCooldown", true, true, later, later, apv1.AccountState_ACCOUNT_STATE_LEASED},
			{"Disabled", false, false, none, none, apv1.AccountState_ACCOUNT_STATE_DISABLED},
			{"DisabledAndLeased", false, true, before, before, apv1.AccountState_ACCOUNT_STATE_DISABLED},
		}
		now := b.clock.Now()
		ts := func(d time.Duration) *time.Time {
			if d == none {
				return nil
			}
			t := now.Add(d)
			return &t
		}
		ids := addAccounts(t, c, len(rows))
		want := map[apv1.AccountState]map[int64]bool{}
		name := map[int64]string{}
		for i, r := range rows {
			var leaseID, holder *string
			var leaseEnd *time.Time
			if r.leased {
				id, h := uuid.NewString(), "someone"
				leaseID, holder, leaseEnd = &id, &h, ts(time.Hour)
			}
			if _, err := b.db.Exec(testkit.Context(t), `UPDATE accountpool.accounts SET active = $2, cooldown_until = $3, quarantine_until = $4,
				lease_id = $5, leased_by = $6, lease_expires_at = $7 WHERE id = $1`,
				ids[i], r.active, ts(r.cooldown), ts(r.quarantine), leaseID, holder, leaseEnd); err != nil {
				t.Fatal(err)
			}
			if want[r.want] == nil {
				want[r.want] = map[int64]bool{}
			}
			want[r.want][ids[i]] = true
			name[ids[i]] = r.name
		}
		for i, id := range ids {
			a, err := c.GetAccount(testkit.Context(t), &apv1.GetAccountRequest{Id: id})
			if err != nil {
				t.Fatal(err)
			}
			if a.GetAccount().GetState() != rows[i].want {
				t.Errorf("%s: Go state %v, want %v", rows[i].name, a.GetAccount().GetState(), rows[i].want)
			}
		}
		for state, wantIDs := range want {
			resp, err := c.ListAccounts(testkit.Context(t), &apv1.ListAccountsRequest{State: state})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range resp.GetAccounts() {
				if !wantIDs[a.GetId()] {
					t.Errorf("the SQL filter for %v lists %s", state, name[a.GetId()])
				}
			}
			if len(resp.GetAccounts()) != len(wantIDs) {
				t.Errorf("the SQL filter for %v lists %d accounts, want %d", state, len(resp.GetAccounts()), len(wantIDs))
			}
		}
		st, err := c.GetPoolStatus(testkit.Context(t), &apv1.GetPoolStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		counts := map[apv1.AccountState]int32{
			apv1.AccountState_ACCOUNT_STATE_AVAILABLE: st.GetAvailable(), apv1.AccountState_ACCOUNT_STATE_LEASED: st.GetLeased(),
			apv1.AccountState_ACCOUNT_STATE_COOLDOWN: st.GetInCooldown(), apv1.AccountState_ACCOUNT_STATE_QUARANTINED: st.GetQuarantined(),
			apv1.AccountState_ACCOUNT_STATE_DISABLED: st.GetDisabled(),
		}
		for state, n := range counts {
			if int(n) != len(want[state]) {
				t.Errorf("GetPoolStatus counts %d %v, want %d", n, state, len(want[state]))
			}
		}
		// Acquire hands out every available account, then none.
		for range want[apv1.AccountState_ACCOUNT_STATE_AVAILABLE] {
			l := acquire(t, c, "fra")
			if !want[apv1.AccountState_ACCOUNT_STATE_AVAILABLE][l.GetAccountId()] {
				t.Errorf("Acquire took %s", name[l.GetAccountId()])
			}
		}
		_, err = c.Acquire(testkit.Context(t), &apv1.AcquireRequest{MissionCode: "fra", Holder: "checker-test"})
		testkit.WantCode(t, err, codes.ResourceExhausted)
	})
}

func TestUsageLogAndStats(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	ids := addAccounts(t, c, 2)
	t0 := b.clock.Now()
	outcomes := []apv1.Outcome{apv1.Outcome_OUTCOME_SUCCESS, apv1.Outcome_OUTCOME_NO_SLOT, apv1.Outcome_OUTCOME_LOGIN_FAIL, apv1.Outcome_OUTCOME_ERROR}
	for _, o := range outcomes {
		l := acquire(t, c, "fra")
		if _, err := c.Release(testkit.Context(t), &apv1.ReleaseRequest{LeaseId: l.GetLeaseId(), FencingToken: l.GetFencingToken(), Outcome: o,
			Detail: "seen " + o.String(), RequestIds: []string{"req-1", "req-2"}}); err != nil {
			t.Fatal(err)
		}
		b.clock.Advance(6 * time.Minute)
	}
	// Account usage alternates 1, 2, 1, 2 (each cools down for 10 minutes).
	resp, err := c.ListUsage(testkit.Context(t), &apv1.ListUsageRequest{AccountId: ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetRecords()) != 2 || resp.GetRecords()[0].GetResult() != apv1.UsageResult_USAGE_RESULT_LOGIN_FAIL ||
		resp.GetRecords()[1].GetResult() != apv1.UsageResult_USAGE_RESULT_SUCCESS ||
		resp.GetRecords()[0].GetDetail() != "seen OUTCOME_LOGIN_FAIL" || len(resp.GetRecords()[0].GetRequestIds()) != 2 {
		t.Fatalf("usage of account 1: %v", resp.GetRecords())
	}
	byResult, err := c.ListUsage(testkit.Context(t), &apv1.ListUsageRequest{Result: apv1.UsageResult_USAGE_RESULT_ERROR})
	if err != nil || len(byResult.GetRecords()) != 1 || byResult.GetRecords()[0].GetAccountId() != ids[1] {
		t.Fatalf("usage with result error: %v, %v", byResult.GetRecords(), err)
	}
	window, err := c.ListUsage(testkit.Context(t), &apv1.ListUsageRequest{Since: timestamppb.New(t0.Add(time.Minute)), Until: timestamppb.New(t0.Add(13 * time.Minute))})
	if err != nil || len(window.GetRecords()) != 2 {
		t.Fatalf("usage in window: %v, %v", window.GetRecords(), err)
	}
	// Newest-first pages of one row walk the whole log.
	var seen int
	token := ""
	for {
		p, err := c.ListUsage(testkit.Context(t), &apv1.ListUsageRequest{PageSize: 1, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		seen += len(p.GetRecords())
		if token = p.GetNextPageToken(); token == "" {
			break
		}
	}
	if seen != 4 {
		t.Fatalf("paged through %d usage rows, want 4", seen)
	}

	stats, err := c.GetUsageStats(testkit.Context(t), &apv1.GetUsageStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.GetStats()) != 2 {
		t.Fatalf("stats %v", stats.GetStats())
	}
	for _, s := range stats.GetStats() {
		switch s.GetAccountId() {
		case ids[0]:
			if s.GetUses() != 2 || s.GetSuccesses() != 1 || s.GetLoginFails() != 1 {
				t.Fatalf("account 1 stats %v", s)
			}
		case ids[1]:
			if s.GetUses() != 2 || s.GetNoSlots() != 1 || s.GetErrors() != 1 {
				t.Fatalf("account 2 stats %v", s)
			}
		}
	}
	// A window that ends before any use counts nothing.
	early, err := c.GetUsageStats(testkit.Context(t), &apv1.GetUsageStatsRequest{Since: timestamppb.New(t0.Add(-time.Hour)), Until: timestamppb.New(t0)})
	if err != nil || len(early.GetStats()) != 0 {
		t.Fatalf("early window: %v, %v", early.GetStats(), err)
	}
}

func TestImportAccounts(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	addAccounts(t, c, 1) // acc1 exists already
	stream, err := c.ImportAccounts(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*apv1.ImportAccountsRequest{
		{Email: "new1@example.com", Password: "p1", Phone: "+33111111111"},
		{Email: accEmail(1), Password: "other"},
		{Email: "broken", Password: "p"},
		{Email: "new2@example.com", Password: ""},
		{Email: "new3@example.com", Password: "p3"},
		{Email: "NEW1@example.com", Password: "p1 again"},
	} {
		if err := stream.Send(a); err != nil && err != io.EOF {
			t.Fatal(err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetCreated() != 2 || resp.GetSkippedExisting() != 2 || len(resp.GetFailed()) != 2 ||
		resp.GetFailed()[0].GetIndex() != 2 || resp.GetFailed()[1].GetIndex() != 3 || resp.GetFailed()[0].GetReason() == "" {
		t.Fatalf("import summary %v", resp)
	}
	list, err := c.ListAccounts(testkit.Context(t), &apv1.ListAccountsRequest{})
	if err != nil || len(list.GetAccounts()) != 3 {
		t.Fatalf("accounts after import: %v, %v", list.GetAccounts(), err)
	}
}

// TestImportAccountsCaps: one stream imports at most 100,000 accounts and
// lists at most 1,000 failures; past the list the failures are counted.
func TestImportAccountsCaps(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	send := func(t *testing.T, n int, first *apv1.ImportAccountsRequest) (*apv1.ImportAccountsResponse, error) {
		t.Helper()
		stream, err := c.ImportAccounts(testkit.Context(t))
		if err != nil {
			t.Fatal(err)
		}
		if first != nil {
			if err := stream.Send(first); err != nil {
				t.Fatal(err)
			}
			n--
		}
		// Invalid rows cost the server no database work.
		bad := &apv1.ImportAccountsRequest{Email: "broken", Password: "p"}
		for range n {
			if err := stream.Send(bad); err != nil {
				break // the server ended the stream: CloseAndRecv says why
			}
		}
		return stream.CloseAndRecv()
	}

	t.Run("FailuresPastTheFirstThousandAreCountedNotListed", func(t *testing.T) {
		t.Parallel()
		resp, err := send(t, 1500, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetFailed()) != 1000 || resp.GetFailedOmitted() != 500 || resp.GetFailed()[999].GetIndex() != 999 {
			t.Fatalf("failed listed %d (last index %d), omitted %d; want 1000 and 500",
				len(resp.GetFailed()), resp.GetFailed()[len(resp.GetFailed())-1].GetIndex(), resp.GetFailedOmitted())
		}
	})

	t.Run("StreamPastTheCapIsInvalidAndKeepsWhatCameBefore", func(t *testing.T) {
		t.Parallel()
		_, err := send(t, 100_001, &apv1.ImportAccountsRequest{Email: "first@example.com", Password: "p1"})
		testkit.WantCode(t, err, codes.InvalidArgument)
		v := apierr.FieldViolations(err)["stream"]
		if !strings.Contains(v, "at most 100000 accounts") || !strings.Contains(v, "created 1") || !strings.Contains(v, "failed 99999") {
			t.Fatalf("violation %q", v)
		}
		// Each account stands alone: the one before the cap stays.
		list, err := c.ListAccounts(testkit.Context(t), &apv1.ListAccountsRequest{})
		if err != nil || len(list.GetAccounts()) != 1 || list.GetAccounts()[0].GetEmail() != "first@example.com" {
			t.Fatalf("accounts after a refused import: %v, %v", list.GetAccounts(), err)
		}
	})
}

// GetUsageStats pages, most used first, as ListAccounts does: tens of
// thousands of accounts in one answer passed a client's 4 MB limit. Every
// page counts the first page's window.
func TestGetUsageStatsPages(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	ids := addAccounts(t, c, 5)
	now := b.clock.Now()
	for i, uses := range []int{3, 1, 2, 2, 1} {
		for k := range uses {
			if _, err := b.db.Exec(testkit.Context(t), `INSERT INTO accountpool.usage_log (lease_id, account_id, fencing_token, mission_code, holder, result, acquired_at)
				VALUES (gen_random_uuid(), $1, $2, 'fra', 'checker-1', 'no_slot', $3)`, ids[i], k+1, now.Add(-time.Duration(k+1)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var pages [][]int64
	token := ""
	var window *apv1.GetUsageStatsResponse
	for {
		p, err := c.GetUsageStats(testkit.Context(t), &apv1.GetUsageStatsRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if window == nil {
			window = p
			// Later pages count the first page's window, not one that
			// ends at their own now.
			b.clock.Advance(time.Hour)
		} else if !p.GetSince().AsTime().Equal(window.GetSince().AsTime()) || !p.GetUntil().AsTime().Equal(window.GetUntil().AsTime()) {
			t.Fatalf("page %d counts [%v, %v), the first [%v, %v)", len(pages)+1, p.GetSince().AsTime(), p.GetUntil().AsTime(),
				window.GetSince().AsTime(), window.GetUntil().AsTime())
		}
		var page []int64
		for _, s := range p.GetStats() {
			page = append(page, s.GetAccountId())
		}
		pages = append(pages, page)
		if token = p.GetNextPageToken(); token == "" {
			break
		}
		if len(pages) > 5 {
			t.Fatal("no last page")
		}
	}
	want := [][]int64{{ids[0], ids[1]}, {ids[2], ids[3]}, {ids[4]}}
	if fmt.Sprint(pages) != fmt.Sprint(want) {
		t.Fatalf("pages %v, want %v (by account id)", pages, want)
	}

	first, err := c.GetUsageStats(testkit.Context(t), &apv1.GetUsageStatsRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetUsageStats(testkit.Context(t), &apv1.GetUsageStatsRequest{PageSize: 1, PageToken: first.GetNextPageToken(),
		Since: timestamppb.New(now.Add(-2 * time.Hour))})
	wantViolation(t, err, "page_token")
}
