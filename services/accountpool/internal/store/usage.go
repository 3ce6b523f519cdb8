package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
)

// UsageFilter selects usage rows; zero fields do not filter.
type UsageFilter struct {
	AccountID   int64
	Result      domain.Outcome
	MissionCode string
	Since       *time.Time
	Until       *time.Time
}

// UsageCursor is the position after the last row of a page (newest first).
type UsageCursor struct {
	AcquiredAt time.Time `json:"t"`
	LeaseID    string    `json:"l"`
}

// ListUsage returns up to limit usage rows, newest first, after cursor.
func (s *Store) ListUsage(ctx context.Context, f UsageFilter, after *UsageCursor, limit int) ([]domain.UsageRecord, error) {
	var (
		conds = []string{"true"}
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.AccountID != 0 {
		conds = append(conds, "u.account_id = "+arg(f.AccountID))
	}
	if f.Result != "" {
		conds = append(conds, "u.result = "+arg(string(f.Result)))
	}
	if f.MissionCode != "" {
		conds = append(conds, "u.mission_code = "+arg(f.MissionCode))
	}
	if f.Since != nil {
		conds = append(conds, "u.acquired_at >= "+arg(*f.Since))
	}
	if f.Until != nil {
		conds = append(conds, "u.acquired_at < "+arg(*f.Until))
	}
	if after != nil {
		conds = append(conds, "(u.acquired_at, u.lease_id) < ("+arg(after.AcquiredAt)+", "+arg(after.LeaseID)+"::uuid)")
	}
	q := `SELECT u.lease_id::text, u.account_id, a.email, u.fencing_token, u.mission_code, u.holder,
			u.request_ids, coalesce(u.result, ''), u.detail, u.acquired_at, u.released_at, u.logged_in,
			coalesce(u.acquire_id::text, '')
		FROM accountpool.usage_log u JOIN accountpool.accounts a ON a.id = u.account_id
		WHERE ` + strings.Join(conds, " AND ") + `
		ORDER BY u.acquired_at DESC, u.lease_id DESC LIMIT ` + arg(limit)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.UsageRecord, error) {
		var u domain.UsageRecord
		var result string
		err := r.Scan(&u.LeaseID, &u.AccountID, &u.Email, &u.FencingToken, &u.MissionCode, &u.Holder,
			&u.RequestIDs, &result, &u.Detail, &u.AcquiredAt, &u.ReleasedAt, &u.LoggedIn, &u.AcquireID)
		u.Result = domain.Outcome(result)
		return u, err
	})
}

// UsageStats counts each account's leases acquired in [since, until), by
// account id: up to limit accounts after afterID (0: from the first).
// Pages go by id, which no lease moves: by count, a lease taken between
// two pages could lift an account not yet listed past the cursor and off
// every page. A caller wanting the most used sorts what it collected.
func (s *Store) UsageStats(ctx context.Context, since, until time.Time, afterID int64, limit int) ([]domain.UsageStats, error) {
	rows, err := s.db.Query(ctx, `SELECT a.id, a.email,
			count(*),
			count(*) FILTER (WHERE u.result = 'success'),
			count(*) FILTER (WHERE u.result = 'no_slot'),
			count(*) FILTER (WHERE u.result = 'login_fail'),
			count(*) FILTER (WHERE u.result = 'banned'),
			count(*) FILTER (WHERE u.result = 'error'),
			count(*) FILTER (WHERE u.result = 'lease_expired'),
			count(*) FILTER (WHERE u.logged_in),
			count(*) FILTER (WHERE u.result = 'aborted')
		FROM accountpool.usage_log u JOIN accountpool.accounts a ON a.id = u.account_id
		WHERE u.acquired_at >= $1 AND u.acquired_at < $2 AND u.account_id > $3
		GROUP BY a.id, a.email
		ORDER BY a.id
		LIMIT $4`, since, until, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("usage stats: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.UsageStats, error) {
		var st domain.UsageStats
		err := r.Scan(&st.AccountID, &st.Email, &st.Uses, &st.Successes, &st.NoSlots, &st.LoginFails, &st.Bans, &st.Errors, &st.Expired, &st.Logins, &st.Aborted)
		return st, err
	})
}
