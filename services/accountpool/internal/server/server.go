// Package server is AccountPoolService's gRPC edge: it reads requests
// (ids, enums, durations, timestamps, page tokens), leaves the rules of
// their fields to the domain, translates between protobuf and domain
// types, and maps errors to status codes in one place (toStatus; field
// errors become INVALID_ARGUMENT there). It decides nothing itself.
package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/app"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/platform/apierr"
	"github.com/slotwatch/slotwatch/services/platform/apirule"
	"github.com/slotwatch/slotwatch/services/platform/page"
	"github.com/slotwatch/slotwatch/services/platform/pgdb"
)

// Server implements slotwatch.accountpool.v1.AccountPoolService.
type Server struct {
	apv1.UnimplementedAccountPoolServiceServer
	pool   *app.Pool
	logger *slog.Logger
}

// New returns the gRPC server over pool.
func New(pool *app.Pool, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{pool: pool, logger: logger}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { apv1.RegisterAccountPoolServiceServer(g, s) }

// Acquire implements AccountPoolService.
func (s *Server) Acquire(ctx context.Context, req *apv1.AcquireRequest) (*apv1.AcquireResponse, error) {
	var v apirule.FieldErrors
	acquireID := domain.CheckAcquire(&v, req.GetMissionCode(), req.GetHolder(), req.GetRequestIds(), req.GetAcquireId())
	ttl := leaseLength(&v, "lease_ttl", req.GetLeaseTtl())
	wait := apierr.Duration(&v, "wait", req.GetWait(), apirule.MaxAcquireWait)
	if err := v.Err(); err != nil {
		return nil, s.toStatus(ctx, "request", err)
	}
	lease, err := s.pool.Acquire(ctx, app.AcquireRequest{
		MissionCode: req.GetMissionCode(), Holder: req.GetHolder(), TTL: ttl, Wait: wait, RequestIDs: req.GetRequestIds(),
		AcquireID: acquireID,
	})
	if err != nil {
		return nil, s.toStatus(ctx, "acquire", err)
	}
	return &apv1.AcquireResponse{Lease: &apv1.Lease{
		LeaseId: lease.LeaseID, FencingToken: lease.FencingToken, AccountId: lease.Account.ID,
		Email: lease.Account.Email, Password: lease.Password, Phone: lease.Account.Phone,
		MissionCode: lease.MissionCode, Holder: lease.Holder, ExpiresAt: timestamppb.New(lease.ExpiresAt),
		SessionState: lease.SessionState, SessionExpiresAt: ts(lease.SessionExpiresAt),
		LoginBudgetLeft: int32(lease.LoginsLeft),
	}}, nil
}

// leaseLength reads a lease's length: unset or zero (the server's
// POOL_LEASE_TTL), or between apirule.MinLeaseTTL and MaxLeaseTTL.
func leaseLength(v *apirule.FieldErrors, field string, d *durationpb.Duration) time.Duration {
	got := apierr.Duration(v, field, d, apirule.MaxLeaseTTL)
	if got > 0 && got < apirule.MinLeaseTTL {
		v.Add(field, "must be at least %s (or unset for the server's default)", apirule.MinLeaseTTL)
	}
	return got
}

// Renew implements AccountPoolService.
func (s *Server) Renew(ctx context.Context, req *apv1.RenewRequest) (*apv1.RenewResponse, error) {
	var v apirule.FieldErrors
	leaseRef(&v, req.GetLeaseId(), req.GetFencingToken())
	extend := leaseLength(&v, "extend_by", req.GetExtendBy())
	if err := v.Err(); err != nil {
		return nil, s.toStatus(ctx, "request", err)
	}
	until, err := s.pool.Renew(ctx, req.GetLeaseId(), req.GetFencingToken(), extend)
	if err != nil {
		return nil, s.toStatus(ctx, "lease", err)
	}
	return &apv1.RenewResponse{ExpiresAt: timestamppb.New(until)}, nil
}

var outcomes = map[apv1.Outcome]domain.Outcome{
	apv1.Outcome_OUTCOME_SUCCESS:    domain.OutcomeSuccess,
	apv1.Outcome_OUTCOME_NO_SLOT:    domain.OutcomeNoSlot,
	apv1.Outcome_OUTCOME_LOGIN_FAIL: domain.OutcomeLoginFail,
	apv1.Outcome_OUTCOME_BANNED:     domain.OutcomeBanned,
	apv1.Outcome_OUTCOME_ERROR:      domain.OutcomeError,
	apv1.Outcome_OUTCOME_UNUSED:     domain.OutcomeUnused,
	apv1.Outcome_OUTCOME_ABORTED:    domain.OutcomeAborted,
}

// Release implements AccountPoolService.
func (s *Server) Release(ctx context.Context, req *apv1.ReleaseRequest) (*apv1.ReleaseResponse, error) {
	var v apirule.FieldErrors
	var acquireID string
	outcome, ok := outcomes[req.GetOutcome()]
	if req.GetAcquireId() == "" {
		leaseRef(&v, req.GetLeaseId(), req.GetFencingToken())
	} else {
		acquireID = domain.CheckGiveBack(&v, req.GetAcquireId(), req.GetLeaseId(), req.GetFencingToken(), outcome,
			req.GetClearSession(), req.GetRetryAfter() != nil)
	}
	if !ok {
		v.Add("outcome", "must be one of OUTCOME_SUCCESS, OUTCOME_NO_SLOT, OUTCOME_LOGIN_FAIL, OUTCOME_BANNED, OUTCOME_ERROR, OUTCOME_UNUSED, OUTCOME_ABORTED")
	}
	retryAfter := apierr.Duration(&v, "retry_after", req.GetRetryAfter(), 0)
	domain.CheckRelease(&v, req.GetDetail(), req.GetRequestIds(), retryAfter)
	sess := domain.SessionRelease{
		State: req.GetSessionState(), Clear: req.GetClearSession(), LoggedIn: req.GetLoggedIn(),
		HasAge: req.GetSessionMaxAge() != nil,
		MaxAge: apierr.Duration(&v, "session_max_age", req.GetSessionMaxAge(), apirule.MaxSessionMaxAge),
	}
	domain.CheckSessionRelease(&v, outcome, sess)
	if err := v.Err(); err != nil {
		return nil, s.toStatus(ctx, "request", err)
	}
	a, err := s.pool.Release(ctx, app.ReleaseRequest{
		LeaseID: req.GetLeaseId(), FencingToken: req.GetFencingToken(), AcquireID: acquireID, Outcome: outcome,
		Detail: req.GetDetail(), RequestIDs: req.GetRequestIds(), Session: sess, RetryAfter: retryAfter,
	})
	if err != nil {
		return nil, s.toStatus(ctx, "lease", err)
	}
	return &apv1.ReleaseResponse{Account: s.account(a)}, nil
}

// CreateAccount implements AccountPoolService.
func (s *Server) CreateAccount(ctx context.Context, req *apv1.CreateAccountRequest) (*apv1.CreateAccountResponse, error) {
	var v apirule.FieldErrors
	domain.CheckNewAccount(&v, req.GetEmail(), req.GetPassword(), req.GetPhone())
	if err := v.Err(); err != nil {
		return nil, s.toStatus(ctx, "request", err)
	}
	a, err := s.pool.CreateAccount(ctx, app.NewAccount{Email: req.GetEmail(), Password: req.GetPassword(), Phone: req.GetPhone()})
	if err != nil {
		return nil, s.toStatus(ctx, "account", err)
	}
	return &apv1.CreateAccountResponse{Account: s.account(a)}, nil
}

// Import limits. A stream past maxImportAccounts ends with INVALID_ARGUMENT:
// the accounts before it are imported already (each stands alone), and
// since existing emails are skipped the rest can be sent in another call.
// The failures listed are bounded too, the others only counted, so the
// answer stays small whatever the caller sends.
const (
	maxImportAccounts = 100_000
	maxImportFailures = 1_000
)

// ImportAccounts implements AccountPoolService. Each account stands alone:
// a bad one is reported in failed and the others are still created.
func (s *Server) ImportAccounts(stream grpc.ClientStreamingServer[apv1.ImportAccountsRequest, apv1.ImportAccountsResponse]) error {
	ctx := stream.Context()
	resp := &apv1.ImportAccountsResponse{}
	for i := int32(0); ; i++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(resp)
		}
		if err != nil {
			return err
		}
		if i == maxImportAccounts {
			var v apirule.FieldErrors
			v.Add("stream", "at most %d accounts per ImportAccounts call; the first %d were imported (created %d, skipped %d, failed %d): send the rest in another call (emails already in the pool are skipped)",
				maxImportAccounts, maxImportAccounts, resp.GetCreated(), resp.GetSkippedExisting(), int32(len(resp.GetFailed()))+resp.GetFailedOmitted())
			return s.toStatus(ctx, "account", v.Err())
		}
		var v apirule.FieldErrors
		domain.CheckNewAccount(&v, req.GetEmail(), req.GetPassword(), req.GetPhone())
		if v.Len() > 0 {
			if len(resp.Failed) < maxImportFailures {
				resp.Failed = append(resp.Failed, &apv1.ImportFailure{Index: i, Email: truncate(req.GetEmail(), apirule.MaxEmailLen), Reason: v.Error()})
			} else {
				resp.FailedOmitted++
			}
			continue
		}
		created, err := s.pool.ImportAccount(ctx, app.NewAccount{Email: req.GetEmail(), Password: req.GetPassword(), Phone: req.GetPhone()})
		switch {
		case err != nil:
			return s.toStatus(ctx, "account", err)
		case created:
			resp.Created++
		default:
			resp.SkippedExisting++
		}
	}
}

// truncate cuts s to at most n runes of valid UTF-8, so that an echo of bad
// input still marshals.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "?")
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// GetAccount implements AccountPoolService.
func (s *Server) GetAccount(ctx context.Context, req *apv1.GetAccountRequest) (*apv1.GetAccountResponse, error) {
	var v apirule.FieldErrors
	if accountID(&v, req.GetId()); v.Len() > 0 {
		return nil, s.toStatus(ctx, "account", v.Err())
	}
	a, err := s.pool.GetAccount(ctx, req.GetId())
	if err != nil {
		return nil, s.toStatus(ctx, "account", err)
	}
	return &apv1.GetAccountResponse{Account: s.account(a)}, nil
}

var states = map[apv1.AccountState]domain.State{
	apv1.AccountState_ACCOUNT_STATE_UNSPECIFIED: "",
	apv1.AccountState_ACCOUNT_STATE_AVAILABLE:   domain.StateAvailable,
	apv1.AccountState_ACCOUNT_STATE_LEASED:      domain.StateLeased,
	apv1.AccountState_ACCOUNT_STATE_COOLDOWN:    domain.StateCooldown,
	apv1.AccountState_ACCOUNT_STATE_QUARANTINED: domain.StateQuarantined,
	apv1.AccountState_ACCOUNT_STATE_DISABLED:    domain.StateDisabled,
}

type accountsCursor struct {
	AfterID int64 `json:"a"`
}

// ListAccounts implements AccountPoolService.
func (s *Server) ListAccounts(ctx context.Context, req *apv1.ListAccountsRequest) (*apv1.ListAccountsResponse, error) {
	var v apirule.FieldErrors
	state, ok := states[req.GetState()]
	if !ok {
		v.Add("state", "unknown account state %d", req.GetState())
	}
	size := page.Size(&v, "page_size", req.GetPageSize())
	var cur accountsCursor
	page.Decode(&v, "page_token", req.GetPageToken(), &cur)
	if err := v.Err(); err != nil {
		return nil, s.toStatus(ctx, "request", err)
	}
	list, err := s.pool.ListAccounts(ctx, state, cur.AfterID, size+1)
	if err != nil {
		return nil, s.toStatus(ctx, "account", err)
	}
	resp := &apv1.ListAccountsResponse{}
	if len(list) > size {
		list = list[:size]
		resp.NextPageToken = page.Encode(accountsCursor{AfterID: list[size-1].ID})
	}
	for _, a := range list {
		resp.Accounts = append(resp.Accounts, s.account(a))
	}
	return resp, nil
}

// UpdateAccount implements AccountPoolService.
func (s *Server) UpdateAccount(ctx context.Context, req *apv1.UpdateAccountRequest) (*apv1.UpdateAccountResponse, error) {
	var v apirule.FieldErrors
	accountID(&v, req.GetId())
	domain.CheckAccountChange(&v, req.Password, req.Phone, req.Active)
	if err := v.Err(); err != nil {
		return nil, s.toStatus(ctx, "request", err)
	}
	a, err := s.pool.UpdateAccount(ctx, req.GetId(), app.AccountChange{Password: req.Password, Phone: req.Phone, Active: req.Active})
	if err != nil {
		return nil, s.toStatus(ctx, "account", err)
	}
	return &apv1.UpdateAccountResponse{Account: s.account(a)}, nil
}

// ResetAccount implements AccountPoolService.
func (s *Server) ResetAccount(ctx context.Context, req *apv1.ResetAccountRequest) (*apv1.ResetAccountResponse, error) {
	var v apirule.FieldErrors
	if accountID(&v, req.GetId()); v.Len() > 0 {
		return nil, s.toStatus(ctx, "account", v.Err())
	}
	a, err := s.pool.ResetAccount(ctx, req.GetId())
	if err != nil {
		return nil, s.toStatus(ctx, "account", err)
	}
	return &apv1.ResetAccountResponse{Account: s.account(a)}, nil
}

// GetPoolStatus implements AccountPoolService.
func (s *Server) GetPoolStatus(ctx context.Context, _ *apv1.GetPoolStatusRequest) (*apv1.GetPoolStatusResponse, error) {
	st, err := s.pool.PoolStatus(ctx)
	if err != nil {
		return nil, s.toStatus(ctx, "pool", err)
	}
	return &apv1.GetPoolStatusResponse{
		TotalActive: int32(st.TotalActive), Available: int32(st.Available), Leased: int32(st.Leased),
		InCooldown: int32(st.InCooldown), Quarantined: int32(st.Quarantined), Disabled: int32(st.Disabled),
		NextAvailableAt: ts(st.NextAvailableAt), OverLoginBudget: int32(st.OverLoginBudget),
	}, nil
}

var usageResults = map[apv1.UsageResult]domain.Outcome{
	apv1.UsageResult_USAGE_RESULT_UNSPECIFIED:   "",
	apv1.UsageResult_USAGE_RESULT_SUCCESS:       domain.OutcomeSuccess,
	apv1.UsageResult_USAGE_RESULT_NO_SLOT:       domain.OutcomeNoSlot,
	apv1.UsageResult_USAGE_RESULT_LOGIN_FAIL:    domain.OutcomeLoginFail,
	apv1.UsageResult_USAGE_RESULT_BANNED:        domain.OutcomeBanned,
	apv1.UsageResult_USAGE_RESULT_ERROR:         domain.OutcomeError,
	apv1.UsageResult_USAGE_RESULT_LEASE_EXPIRED: domain.OutcomeLeaseExpired,
	apv1.UsageResult_USAGE_RESULT_UNUSED:        domain.OutcomeUnused,
	apv1.UsageResult_USAGE_RESULT_ABORTED:       domain.OutcomeAborted,
}

// ListUsage implements AccountPoolService.
func (s *Server) ListUsage(ctx context.Context, req *apv1.ListUsageRequest) (*apv1.ListUsageResponse, error) {
	var v apirule.FieldErrors
	f := store.UsageFilter{AccountID: req.GetAccountId(), MissionCode: req.GetMissionCode()}
	if req.GetAccountId() < 0 {
		v.Add("account_id", "must not be negative")
	}
	var ok bool
	if f.Result, ok = usageResults[req.GetResult()]; !ok {
		v.Add("result", "unknown usage result %d", req.GetResult())
	}
	if req.GetMissionCode() != "" {
		v.MissionCode("mission_code", req.GetMissionCode())
	}
	f.Since, f.Until = window(&v, req.GetSince(), req.GetUntil())
	size := page.Size(&v, "page_size", req.GetPageSize())
	var cur store.UsageCursor
	page.Decode(&v, "page_token", req.GetPageToken(), &cur)
	if req.GetPageToken() != "" && v.Len() == 0 {
		if _, err := uuid.Parse(cur.LeaseID); err != nil {
			v.Add("page_token", "is not a token returned by a previous call")
		}
	}
	if err := v.Err(); err != nil {
		return nil, s.toStatus(ctx, "request", err)
	}
	var after *store.UsageCursor
	if req.GetPageToken() != "" {
		after = &cur
	}
	rows, err := s.pool.ListUsage(ctx, f, after, size+1)
	if err != nil {
		return nil, s.toStatus(ctx, "usage", err)
	}
	resp := &apv1.ListUsageResponse{}
	if len(rows) > size {
		rows = rows[:size]
		last := rows[size-1]
		resp.NextPageToken = page.Encode(store.UsageCursor{AcquiredAt: last.AcquiredAt, LeaseID: last.LeaseID})
	}
	for _, u := range rows {
		resp.Records = append(resp.Records, &apv1.UsageRecord{
			LeaseId: u.LeaseID, AccountId: u.AccountID, Email: u.Email, MissionCode: u.MissionCode,
			Holder: u.Holder, RequestIds: u.RequestIDs, Result: usageResultProtos[u.Result], Detail: u.Detail,
			AcquiredAt: timestamppb.New(u.AcquiredAt), ReleasedAt: ts(u.ReleasedAt), FencingToken: u.FencingToken,
			LoggedIn: u.LoggedIn, AcquireId: u.AcquireID,
		})
	}
	return resp, nil
}

// statsCursor is GetUsageStats' page token: the window of the first page
// and the last account id it listed.
type statsCursor struct {
	Since     time.Time `json:"s"`
	Until     time.Time `json:"t"`
	AccountID int64     `json:"a"`
}

// GetUsageStats implements AccountPoolService.
func (s *Server) GetUsageStats(ctx context.Context, req *apv1.GetUsageStatsRequest) (*apv1.GetUsageStatsResponse, error) {
	var v apirule.FieldErrors
	since, until := window(&v, req.GetSince(), req.GetUntil())
	size := page.Size(&v, "page_size", req.GetPageSize())
	var cur statsCursor
	page.Decode(&v, "page_token", req.GetPageToken(), &cur)
	var afterID int64
	if req.GetPageToken() != "" && v.Len() == 0 {
		switch {
		case !cur.Since.Before(cur.Until) || cur.AccountID <= 0:
			v.Add("page_token", "is not a token returned by a previous call")
		case since != nil && !since.Equal(cur.Since), until != nil && !until.Equal(cur.Until):
			v.Add("page_token", "is for the window from %s to %s: send that window, or none", cur.Since.Format(time.RFC3339Nano), cur.Until.Format(time.RFC3339Nano))
		}
		since, until, afterID = &cur.Since, &cur.Until, cur.AccountID
	}
	if err := v.Err(); err != nil {
		return nil, s.toStatus(ctx, "request", err)
	}
	var sinceT, untilT time.Time
	if since != nil {
		sinceT = *since
	}
	if until != nil {
		untilT = *until
	}
	if !sinceT.IsZero() && untilT.IsZero() && !sinceT.Before(s.pool.Now()) {
		return nil, s.toStatus(ctx, "usage", invalid("since", "must be in the past when until is unset"))
	}
	stats, sinceT, untilT, err := s.pool.UsageStats(ctx, sinceT, untilT, afterID, size+1)
	if err != nil {
		return nil, s.toStatus(ctx, "usage", err)
	}
	resp := &apv1.GetUsageStatsResponse{Since: timestamppb.New(sinceT), Until: timestamppb.New(untilT)}
	if len(stats) > size {
		stats = stats[:size]
		last := stats[size-1]
		resp.NextPageToken = page.Encode(statsCursor{Since: sinceT, Until: untilT, AccountID: last.AccountID})
	}
	for _, st := range stats {
		resp.Stats = append(resp.Stats, &apv1.AccountUsageStats{
			AccountId: st.AccountID, Email: st.Email, Uses: int32(st.Uses), Successes: int32(st.Successes),
			NoSlots: int32(st.NoSlots), LoginFails: int32(st.LoginFails), Bans: int32(st.Bans),
			Errors: int32(st.Errors), LeaseExpired: int32(st.Expired), Logins: int32(st.Logins),
			Aborted: int32(st.Aborted),
		})
	}
	return resp, nil
}

// ReencryptPasswords implements AccountPoolService.
func (s *Server) ReencryptPasswords(ctx context.Context, _ *apv1.ReencryptPasswordsRequest) (*apv1.ReencryptPasswordsResponse, error) {
	r, err := s.pool.ReencryptPasswords(ctx)
	if err != nil {
		return nil, s.toStatus(ctx, "account", err)
	}
	s.logger.InfoContext(ctx, "re-encrypted passwords", "count", r.Count, "primary_key_id", r.PrimaryKeyID,
		"undecryptable_account_ids", r.Undecryptable)
	return &apv1.ReencryptPasswordsResponse{Reencrypted: int32(r.Count), PrimaryKeyId: r.PrimaryKeyID,
		UndecryptableAccountIds: r.Undecryptable, SessionsReencrypted: int32(r.Sessions), SessionsCleared: int32(r.SessionsCleared)}, nil
}

// toStatus is the one place where errors become status codes. what names
// the thing a NotFound is about.
func (s *Server) toStatus(ctx context.Context, what string, err error) error {
	var fieldErrs apirule.FieldErrors
	var busy *domain.NoAccountFreeError
	var notHeld *domain.LeaseNotHeldError
	var used *domain.AcquireIDUsedError
	switch {
	case errors.As(err, &fieldErrs):
		return apierr.Invalid(fieldErrs)
	case errors.As(err, &busy):
		return apierr.RetryAfter(busy.Error(), busy.RetryAfter())
	case errors.As(err, &notHeld):
		return status.Error(codes.FailedPrecondition, notHeld.Error())
	case errors.As(err, &used):
		return status.Error(codes.AlreadyExists, used.Error())
	case errors.Is(err, domain.ErrAcquireIDRaced):
		// A concurrency conflict the caller resolves by retrying the
		// same call (gRPC's ABORTED), not a missing thing.
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, domain.ErrNotFound):
		return status.Error(codes.NotFound, what+" not found")
	case errors.Is(err, domain.ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, what+" with this email already exists")
	case errors.Is(err, domain.ErrNoActiveAccount):
		return status.Error(codes.FailedPrecondition, "the pool has no active account: add one with CreateAccount or re-enable one")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case pgdb.Unavailable(err):
		s.logger.WarnContext(ctx, "database unavailable", "op", what, "error", err)
		return status.Error(codes.Unavailable, "database unavailable: retry")
	case errors.Is(err, app.ErrUndecryptable):
		s.logger.ErrorContext(ctx, "keyset does not match stored passwords", "error", err)
		return status.Error(codes.Internal, "a stored password does not decrypt with the configured keyset; see the server log")
	}
	s.logger.ErrorContext(ctx, "unexpected error", "op", what, "error", err)
	return status.Error(codes.Internal, "internal error")
}

func (s *Server) account(a domain.Account) *apv1.Account {
	return &apv1.Account{
		Id: a.ID, Email: a.Email, Phone: a.Phone, Active: a.Active, State: stateProtos[a.State(s.pool.Now())],
		ConsecutiveFailures: int32(a.ConsecutiveFailures), CooldownUntil: ts(a.CooldownUntil),
		QuarantineUntil: ts(a.QuarantineUntil), LastUsedAt: ts(a.LastUsedAt), CreatedAt: timestamppb.New(a.CreatedAt),
		UpdatedAt: timestamppb.New(a.UpdatedAt), LeasedBy: a.LeasedBy, LeaseExpiresAt: ts(a.LeaseExpiresAt), UseCount: a.UseCount,
	}
}

var (
	stateProtos       = invert(states)
	usageResultProtos = invert(usageResults)
)

func invert[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

func invalid(field, desc string) error {
	var v apirule.FieldErrors
	v.Add(field, "%s", desc)
	return v.Err()
}

func accountID(v *apirule.FieldErrors, id int64) {
	if id <= 0 {
		v.Add("id", "must be a positive account id")
	}
}

func leaseRef(v *apirule.FieldErrors, leaseID string, token int64) {
	if _, err := uuid.Parse(leaseID); err != nil || len(leaseID) != 36 {
		v.Add("lease_id", "must be a lease id returned by Acquire")
	}
	if token <= 0 {
		v.Add("fencing_token", "must be the positive token returned by Acquire")
	}
}

func window(v *apirule.FieldErrors, since, until *timestamppb.Timestamp) (*time.Time, *time.Time) {
	var s, u *time.Time
	if since != nil {
		if err := since.CheckValid(); err != nil {
			v.Add("since", "must be a valid timestamp")
		} else {
			t := since.AsTime()
			s = &t
		}
	}
	if until != nil {
		if err := until.CheckValid(); err != nil {
			v.Add("until", "must be a valid timestamp")
		} else {
			t := until.AsTime()
			u = &t
		}
	}
	if s != nil && u != nil && !s.Before(*u) {
		v.Add("since", "must be before until")
	}
	return s, u
}
