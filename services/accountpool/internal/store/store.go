// Package store is the account pool's SQL, all of it. Every method takes
// the current time from its caller, so the rules can be tested with a fixed
// clock; pgx.ErrNoRows and unique violations become domain errors here and
// go no further.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
)

// FreeChannel is notified whenever an account may have become leasable
// (a release, an expiry, a reset, a new or re-enabled account).
const FreeChannel = "accountpool_free"

// Store runs the pool's queries on a pgx pool.
type Store struct {
	db *pgxpool.Pool
	// With WithBatching: the coalescer of Acquires and Releases, what it
	// served, and the leases granted here, for Release's one-round-trip
	// path.
	batch    *batcher[op, opResult]
	counts   batchCounts
	leases   *leaseCache
	lockWait time.Duration // releaseLockWait, but in tests
	// work counts the batches in flight and the hand-backs of leases no
	// caller received (Drain waits for both).
	work inFlight
}

// New returns a Store over db.
func New(db *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{db: db}
	for _, o := range opts {
		o(s)
	}
	return s
}

const accountCols = `a.id, a.email, a.phone, a.active, a.consecutive_failures, a.cooldown_until,
	a.quarantine_until, a.last_used_at, a.use_count, a.fencing_token, coalesce(a.lease_id::text, ''),
	coalesce(a.leased_by, ''), a.lease_expires_at, a.created_at, a.updated_at`

func scanAccount(row pgx.Row, extra ...any) (domain.Account, error) {
	var a domain.Account
	dest := append([]any{&a.ID, &a.Email, &a.Phone, &a.Active, &a.ConsecutiveFailures, &a.CooldownUntil,
		&a.QuarantineUntil, &a.LastUsedAt, &a.UseCount, &a.FencingToken, &a.LeaseID,
		&a.LeasedBy, &a.LeaseExpiresAt, &a.CreatedAt, &a.UpdatedAt}, extra...)
	err := row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, domain.ErrNotFound
	}
	return a, err
}

func isDuplicateEmail(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "accounts_email_key"
}

// restEnd is when an unleased account's cooldown and quarantine are both
// over; accounts_rest_end_idx indexes it.
const restEnd = `greatest(coalesce(%[1]s.cooldown_until, '-infinity'), coalesce(%[1]s.quarantine_until, '-infinity'))`

// Sealer encrypts a password bound to the account id it will be stored under.
type Sealer func(accountID int64) ([]byte, error)

// CreateAccount inserts an account. The id is drawn first so that the
// password's ciphertext can be bound to it; both land in one statement.
func (s *Store) CreateAccount(ctx context.Context, email, phone string, seal Sealer, now time.Time) (domain.Account, error) {
	a, created, err := s.insertAccount(ctx, email, phone, seal, now, false)
	if err == nil && !created {
		err = domain.ErrAlreadyExists
	}
	return a, err
}

// CreateAccountIfAbsent inserts an account unless its email exists;
// created says which happened.
func (s *Store) CreateAccountIfAbsent(ctx context.Context, email, phone string, seal Sealer, now time.Time) (bool, error) {
	_, created, err := s.insertAccount(ctx, email, phone, seal, now, true)
	return created, err
}

func (s *Store) insertAccount(ctx context.Context, email, phone string, seal Sealer, now time.Time, skipExisting bool) (domain.Account, bool, error) {
	var id int64
	if err := s.db.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('accountpool.accounts', 'id'))`).Scan(&id); err != nil {
		return domain.Account{}, false, fmt.Errorf("draw account id: %w", err)
	}
	ct, err := seal(id)
	if err != nil {
		return domain.Account{}, false, err
	}
	q := `INSERT INTO accountpool.accounts AS a (id, email, password_ciphertext, phone, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5)`
	if skipExisting {
		q += ` ON CONFLICT ((lower(email))) DO NOTHING`
	}
	q += ` RETURNING ` + accountCols
	var a domain.Account
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if a, err = scanAccount(tx.QueryRow(ctx, q, id, email, ct, phone, now)); err != nil {
			return err
		}
		return notify(ctx, tx)
	})
	switch {
	case errors.Is(err, domain.ErrNotFound) && skipExisting:
		return domain.Account{}, false, nil
	case isDuplicateEmail(err):
		return domain.Account{}, false, nil
	case err != nil:
		return domain.Account{}, false, fmt.Errorf("insert account: %w", err)
	}
	return a, true, nil
}

// GetAccount returns one account.
func (s *Store) GetAccount(ctx context.Context, id int64) (domain.Account, error) {
	a, err := scanAccount(s.db.QueryRow(ctx, `SELECT `+accountCols+` FROM accountpool.accounts a WHERE a.id = $1`, id))
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return a, fmt.Errorf("get account: %w", err)
	}
	return a, err
}

// availableSQL is the one SQL form of domain.StateAvailable: active, not
// leased, past its quarantine and its cooldown. %[1]s is the accounts
// table's alias and %[2]s the time judged at. Acquire's candidates and the
// state filter both use it (through available); a test compares it with
// domain.Account.State on a table of accounts. It names `active AND
// lease_id IS NULL` as written, so that Postgres can use the partial
// indexes built on that predicate.
const availableSQL = `%[1]s.active AND %[1]s.lease_id IS NULL
	AND coalesce(%[1]s.quarantine_until <= %[2]s, true) AND coalesce(%[1]s.cooldown_until <= %[2]s, true)`

// available is availableSQL for the table aliased alias, at the time now
// (a placeholder such as $1 or @now).
func available(alias, now string) string { return fmt.Sprintf(availableSQL, alias, now) }

// statePredicate selects accounts in a state at @now; it matches
// domain.Account.State, which a test checks.
var statePredicate = map[domain.State]string{
	domain.StateDisabled:    `NOT a.active`,
	domain.StateLeased:      `a.active AND a.lease_id IS NOT NULL`,
	domain.StateQuarantined: `a.active AND a.lease_id IS NULL AND a.quarantine_until > @now`,
	domain.StateCooldown: `a.active AND a.lease_id IS NULL AND coalesce(a.quarantine_until <= @now, true)
		AND a.cooldown_until > @now`,
	domain.StateAvailable: available("a", "@now"),
}

// ListAccounts returns up to limit accounts with id > afterID, in id order,
// optionally only those in state.
func (s *Store) ListAccounts(ctx context.Context, state domain.State, afterID int64, limit int, now time.Time) ([]domain.Account, error) {
	where := "true"
	if state != "" {
		where = statePredicate[state]
	}
	rows, err := s.db.Query(ctx, `SELECT `+accountCols+` FROM accountpool.accounts a
		WHERE `+where+` AND a.id > @after ORDER BY a.id LIMIT @limit`,
		pgx.NamedArgs{"now": now, "after": afterID, "limit": limit})
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []domain.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AccountUpdate holds the fields UpdateAccount changes; nil leaves a field.
type AccountUpdate struct {
	Phone    *string
	Active   *bool
	Password Sealer
}

// UpdateAccount changes an account in one statement. A new password or a
// switch-off also forgets the account's session state.
func (s *Store) UpdateAccount(ctx context.Context, id int64, u AccountUpdate, now time.Time) (domain.Account, error) {
	var ct []byte
	if u.Password != nil {
		var err error
		if ct, err = u.Password(id); err != nil {
			return domain.Account{}, err
		}
	}
	return s.changeAndNotify(ctx, "update account", `UPDATE accountpool.accounts a SET
			phone = coalesce($2, a.phone),
			active = coalesce($3, a.active),
			password_ciphertext = coalesce($4, a.password_ciphertext),
			-- Strictly after the row's last change (a lease's start, say),
			-- so that endLease can tell a lease begun before it.
			password_changed_at = CASE WHEN $4::bytea IS NOT NULL THEN greatest($5, a.updated_at + interval '1 microsecond')
				ELSE a.password_changed_at END,
			session_ciphertext = CASE WHEN $4::bytea IS NOT NULL OR NOT coalesce($3, true) THEN NULL ELSE a.session_ciphertext END,
			session_expires_at = CASE WHEN $4::bytea IS NOT NULL OR NOT coalesce($3, true) THEN NULL ELSE a.session_expires_at END,
			updated_at = greatest($5, a.updated_at + CASE WHEN $4::bytea IS NOT NULL THEN interval '1 microsecond' ELSE '0' END)
		WHERE a.id = $1 RETURNING `+accountCols, id, u.Phone, u.Active, ct, now)
}

// ResetAccount clears quarantine, cooldown, failures and the session state.
func (s *Store) ResetAccount(ctx context.Context, id int64, now time.Time) (domain.Account, error) {
	return s.changeAndNotify(ctx, "reset account", `UPDATE accountpool.accounts a SET
			consecutive_failures = 0, cooldown_until = NULL, quarantine_until = NULL,
			session_ciphertext = NULL, session_expires_at = NULL,
			updated_at = greatest($2, a.updated_at)
		WHERE a.id = $1 RETURNING `+accountCols, id, now)
}

// changeAndNotify runs an UPDATE ... RETURNING of one account and wakes
// waiting Acquires, in one transaction: a committed change is never
// reported as failed because the wake-up failed.
func (s *Store) changeAndNotify(ctx context.Context, what, q string, args ...any) (domain.Account, error) {
	var a domain.Account
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if a, err = scanAccount(tx.QueryRow(ctx, q, args...)); err != nil {
			return err
		}
		return notify(ctx, tx)
	})
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return a, fmt.Errorf("%s: %w", what, err)
	}
	return a, err
}

func notify(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}) error {
	if _, err := q.Exec(ctx, `SELECT pg_notify($1, '')`, FreeChannel); err != nil {
		return fmt.Errorf("notify %s: %w", FreeChannel, err)
	}
	return nil
}

// AcquireParams describe a lease to grant.
type AcquireParams struct {
	LeaseID     string
	MissionCode string
	Holder      string
	RequestIDs  []string
	TTL         time.Duration
	Now         time.Time
	// MaxLogins is the login budget (domain.Config.MaxLoginsPerDay).
	MaxLogins int
	// AcquireID names the Acquire, so that a retry gets its lease
	// (canonical UUID form; "" for none). A request whose id a usage row
	// holds already gets domain.ErrNotFound: look the lease up with
	// LeaseOf.
	AcquireID string
}

// Leased is an account just leased, with its secrets still sealed.
type Leased struct {
	Account            domain.Account
	PasswordCiphertext []byte
	// SessionCiphertext is the stored session state, nil unless one is
	// stored and valid at the lease's start; SessionExpiresAt is set with it.
	SessionCiphertext []byte
	SessionExpiresAt  *time.Time
	// Logins counts the account's logins in the login window, up to the
	// budget.
	Logins int
}

// validSessionSQL says that account %[1]s has a session state still
// valid at %[2]s.
const validSessionSQL = `(%[1]s.session_ciphertext IS NOT NULL AND %[1]s.session_expires_at > %[2]s)`

// loginsSQL selects account %[1]s's logins in the login window before
// %[2]s (usage_log_logins_idx); %[3]s is the window.
const loginsSQL = `SELECT u.acquired_at FROM accountpool.usage_log u
	WHERE u.account_id = %[1]s.id AND u.logged_in AND u.acquired_at > %[2]s - %[3]s::interval`

// Acquire leases the least recently used eligible account in one
// statement: the candidate row is locked with SKIP LOCKED, so concurrent
// callers on any replica each get a different account or none. An account
// without a valid session state would have to log in, so it is eligible
// only below its login budget. It returns domain.ErrNotFound when no
// account is eligible. With WithBatching, the statement serves the
// Acquires that queued meanwhile too (acquireBatch).
func (s *Store) Acquire(ctx context.Context, p AcquireParams) (Leased, error) {
	if s.batch != nil {
		return s.acquireBatched(ctx, p)
	}
	// The statement does not end with the caller: one cut off after the
	// commit would leave a lease no one reads. A caller who gave up by
	// the answer gets no lease, and the lease goes back, as in a batch.
	s.work.add() // for Drain, until the lease is the caller's or handed back
	defer s.work.done()
	runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	res := s.acquireBatch(runCtx, []AcquireParams{p})[0]
	cancel()
	if err := ctx.Err(); err != nil || res.raced {
		s.handBack(ctx, []acquired{res})
		if err != nil {
			return Leased{}, err
		}
	}
	if res.err != nil {
		return Leased{}, res.err
	}
	return res.leased, nil
}

// LeaseOf finds the lease an Acquire named acquireID granted, for a retry
// of that Acquire by holder for mission. It returns the lease while it is
// held at now (its expiry unchanged), as Acquire would have (with its
// lease id); domain.ErrNotFound when no lease has this id (none was
// granted, or it was handed back: the retry leases anew); and a
// *domain.AcquireIDUsedError when the lease ended or the id was used by
// another holder or for another mission.
//
// The lease's row is written (its version changes) in the statement that
// reads it: a hand-back of the same lease (its first caller gave up,
// unlease) then leaves it alone, or came first and LeaseOf finds none.
func (s *Store) LeaseOf(ctx context.Context, acquireID, holder, mission string, now time.Time, maxLogins int) (Leased, string, error) {
	var (
		leaseID, gotHolder, gotMission string
		accountID                      int64
		result                         *string
	)
	err := s.db.QueryRow(ctx, `SELECT lease_id::text, account_id, holder, mission_code, result FROM accountpool.usage_log
		WHERE acquire_id = $1`, acquireID).Scan(&leaseID, &accountID, &gotHolder, &gotMission, &result)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Leased{}, "", domain.ErrNotFound
	case err != nil:
		return Leased{}, "", fmt.Errorf("look up acquire_id: %w", err)
	case gotHolder != holder || gotMission != mission:
		return Leased{}, "", &domain.AcquireIDUsedError{Reason: fmt.Sprintf("its lease is %s's, for mission %q", gotHolder, gotMission)}
	case result != nil:
		return Leased{}, "", &domain.AcquireIDUsedError{Reason: "its lease ended (" + *result + ")"}
	}
	var l Leased
	l.Account, err = scanAccount(s.db.QueryRow(ctx, `UPDATE accountpool.accounts a SET updated_at = a.updated_at
		WHERE a.id = $1 AND a.lease_id = $2 AND a.lease_expires_at > $3
		RETURNING `+accountCols+`, a.password_ciphertext,
			CASE WHEN `+fmt.Sprintf(validSessionSQL, "a", "$3")+` THEN a.session_ciphertext END,
			CASE WHEN `+fmt.Sprintf(validSessionSQL, "a", "$3")+` THEN a.session_expires_at END,
			(SELECT count(*) FROM (`+fmt.Sprintf(loginsSQL, "a", "$3", "$4")+` LIMIT $5) b)`,
		accountID, leaseID, now, domain.LoginWindow, maxLogins),
		&l.PasswordCiphertext, &l.SessionCiphertext, &l.SessionExpiresAt, &l.Logins)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		// Not held: it expired, ended meanwhile, or went back to the
		// pool (then its usage row is gone too).
		var still bool
		if err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accountpool.usage_log WHERE lease_id = $1)`, leaseID).Scan(&still); err != nil {
			return Leased{}, "", fmt.Errorf("look up acquire_id: %w", err)
		}
		if !still {
			return Leased{}, "", domain.ErrNotFound
		}
		return Leased{}, "", &domain.AcquireIDUsedError{Reason: "its lease is no longer held (it expired or ended)"}
	case err != nil:
		return Leased{}, "", fmt.Errorf("look up acquire_id: %w", err)
	}
	return l, leaseID, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Renew moves a held lease's end to expiresAt.
func (s *Store) Renew(ctx context.Context, leaseID string, token int64, expiresAt, now time.Time) error {
	tag, err := s.db.Exec(ctx, `UPDATE accountpool.accounts SET lease_expires_at = $3, updated_at = greatest($4, updated_at)
		WHERE lease_id = $1 AND fencing_token = $2 AND lease_expires_at > $4`, leaseID, token, expiresAt, now)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	return s.whyNotHeld(ctx, leaseID, token)
}

// whyNotHeld explains a refused Renew: unknown lease, stale token, or
// a lease that ended.
func (s *Store) whyNotHeld(ctx context.Context, leaseID string, token int64) error {
	var logged int64
	var result *string
	err := s.db.QueryRow(ctx, `SELECT fencing_token, result FROM accountpool.usage_log WHERE lease_id = $1`, leaseID).Scan(&logged, &result)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return domain.ErrNotFound
	case err != nil:
		return fmt.Errorf("look up lease: %w", err)
	case logged != token:
		return &domain.LeaseNotHeldError{Reason: "stale fencing token"}
	case result != nil:
		return &domain.LeaseNotHeldError{Reason: "lease already ended (" + *result + ")"}
	}
	return &domain.LeaseNotHeldError{Reason: "lease expired"}
}

// ReleaseParams describe the end of a lease.
type ReleaseParams struct {
	LeaseID      string
	FencingToken int64
	// AcquireID, instead of LeaseID and FencingToken, names the lease by
	// the Acquire that granted it (canonical UUID form): the caller lost
	// that Acquire's answer and gives the lease back. No lease for it is
	// domain.ErrNotFound.
	AcquireID  string
	Outcome    domain.Outcome
	Detail     string
	RequestIDs []string
	Now        time.Time
	// LoggedIn says the check logged in, for the usage log and the budget.
	LoggedIn bool
	// Session is what happens to the stored session state; nil leaves it.
	Session *SessionWrite
	// RetryAfter: the account rests at least this long (the portal asked).
	RetryAfter time.Duration
}

// SessionWrite replaces an account's session state: Seal encrypts the new
// state bound to the account id, and a nil Seal clears it.
type SessionWrite struct {
	Seal      Sealer
	ExpiresAt time.Time
}

// Release ends a held lease and applies the outcome rule. It reads the
// lease, applies the rule in Go, and writes the result only if the account
// row is still the version it read (its xmin): two round trips and no row
// lock held in between. A concurrent change (a renewal, an expiry, a retry
// of the same release) makes it read again. A retry of a release that
// already happened with the same outcome returns the stored answer and
// writes nothing, the session state included. With WithBatching, a lease
// this Store granted whose row has not changed since ends in one round
// trip, in a batch (releaseFast). A release by AcquireID finds the lease
// and its token in the usage row and goes on as a release of that lease
// with that token, the unbatched way.
func (s *Store) Release(ctx context.Context, cfg domain.Config, p ReleaseParams) (Released, error) {
	var sess *sessionWrite
	if s.leases != nil && p.AcquireID == "" {
		if g, ok := s.leases.take(p.LeaseID); ok && g.account.FencingToken == p.FencingToken &&
			g.account.LeaseExpiresAt != nil && g.account.LeaseExpiresAt.After(p.Now) {
			rel, sealed, ended, err := s.releaseFast(ctx, cfg, p, g)
			if err != nil || ended {
				return rel, err
			}
			sess = sealed
		}
	}
	for attempt := 0; ; attempt++ {
		var (
			token    int64
			acquired time.Time
			result   *string
			answer   []byte
			version  string
			leaseID  string
			rel      Released
		)
		key, by := p.LeaseID, "u.lease_id"
		if p.AcquireID != "" {
			key, by = p.AcquireID, "u.acquire_id"
		}
		a, err := scanAccount(s.db.QueryRow(ctx, `SELECT `+accountCols+`, u.fencing_token, u.result, u.release_answer, a.xmin::text, u.mission_code, u.acquired_at,
				u.lease_id::text
			FROM accountpool.usage_log u JOIN accountpool.accounts a ON a.id = u.account_id
			WHERE `+by+` = $1`, key), &token, &result, &answer, &version, &rel.MissionCode, &acquired, &leaseID)
		if err != nil {
			if errors.Is(err, domain.ErrNotFound) {
				return rel, err
			}
			return rel, fmt.Errorf("load lease: %w", err)
		}
		if p.AcquireID != "" {
			p.LeaseID, p.FencingToken = leaseID, token
		}
		switch {
		case token != p.FencingToken:
			return rel, &domain.LeaseNotHeldError{Reason: "stale fencing token"}
		case result != nil && *result == string(p.Outcome) && answer != nil:
			rel.Replay = true
			if err := json.Unmarshal(answer, &rel.Account); err != nil {
				return rel, fmt.Errorf("decode release answer: %w", err)
			}
			return rel, nil
		case result != nil:
			return rel, &domain.LeaseNotHeldError{Reason: "lease already ended (" + *result + ")"}
		case a.LeaseID != p.LeaseID || a.LeaseExpiresAt == nil || !a.LeaseExpiresAt.After(p.Now):
			return rel, &domain.LeaseNotHeldError{Reason: "lease expired"}
		}
		if sess == nil {
			if sess, err = sealReleasedSession(p, a.ID, acquired); err != nil {
				return rel, err
			}
		}
		var now time.Time
		if rel.Account, now, answer, err = releasedAccount(cfg, a, p); err != nil {
			return rel, err
		}
		ended, err := endLease(ctx, s.db, rel.Account, version, p.LeaseID, p.Outcome, p.Detail, p.RequestIDs, now, answer, p.LoggedIn, sess)
		if err != nil || ended {
			return rel, err
		}
		if attempt == 10 {
			return rel, errors.New("release: the account kept changing under it")
		}
	}
}

// Released is how a lease ended.
type Released struct {
	// Account is the account after the outcome rule.
	Account domain.Account
	// MissionCode is the mission the lease was for.
	MissionCode string
	// Replay is true for a retry of a release that had already happened:
	// the stored answer was returned and nothing was written.
	Replay bool
}

// sessionWrite is a sealed SessionWrite: ct nil clears the state.
// leasedAt is the lease's start: a session logged in with a password that
// changed since is not stored.
type sessionWrite struct {
	ct        []byte
	expiresAt *time.Time
	leasedAt  time.Time
}

// endLease stores an account after its lease ended, closes the lease's
// usage row and wakes waiting Acquires, in one statement, provided the
// account row is still at version (its xmin when read). sess, when set,
// replaces the session state, unless the account was switched off (it
// keeps none) or got a new password during the lease (the session may be
// the old password's). It reports whether it wrote.
func endLease(ctx context.Context, db *pgxpool.Pool, a domain.Account, version, leaseID string, outcome domain.Outcome, detail string, requestIDs []string, at time.Time, answer []byte, loggedIn bool, sess *sessionWrite) (bool, error) {
	var ct []byte
	var exp, leasedAt *time.Time
	if sess != nil {
		ct, exp, leasedAt = sess.ct, sess.expiresAt, &sess.leasedAt
	}
	rows, err := db.Query(ctx, `WITH account AS (
			UPDATE accountpool.accounts SET
				lease_id = NULL, leased_by = NULL, lease_expires_at = NULL,
				consecutive_failures = $2, cooldown_until = $3, quarantine_until = $4, updated_at = $5,
				session_ciphertext = CASE WHEN NOT active THEN NULL
					WHEN $15 AND ($16::bytea IS NULL OR coalesce(password_changed_at <= $18, true)) THEN $16
					ELSE session_ciphertext END,
				session_expires_at = CASE WHEN NOT active THEN NULL
					WHEN $15 AND ($16::bytea IS NULL OR coalesce(password_changed_at <= $18, true)) THEN $17
					ELSE session_expires_at END
			WHERE id = $1 AND xmin::text = $13 AND lease_id = $6
			RETURNING id
		), usage AS (
			UPDATE accountpool.usage_log SET
				result = $7, detail = $8, released_at = $9, release_answer = $10, logged_in = $14,
				request_ids = CASE WHEN cardinality($11::text[]) > 0 THEN $11 ELSE request_ids END
			WHERE lease_id = $6 AND EXISTS (SELECT 1 FROM account)
		)
		SELECT pg_notify($12, '') FROM account`,
		a.ID, a.ConsecutiveFailures, a.CooldownUntil, a.QuarantineUntil, a.UpdatedAt,
		leaseID, string(outcome), detail, at, answer, nonNil(requestIDs), FreeChannel, version,
		loggedIn, sess != nil, ct, exp, leasedAt)
	if err != nil {
		return false, fmt.Errorf("end lease: %w", err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("end lease: %w", err)
	}
	return n == 1, nil
}

// ExpireLeases ends every lease that ended at or before cutoff, as
// lease_expired (the caller leaves domain.ExpiryGrace between the end and
// the cutoff). Replicas may expire at the same moment: each write is
// conditional on the row version read, so each lease expires exactly once.
func (s *Store) ExpireLeases(ctx context.Context, cfg domain.Config, cutoff time.Time) (int, error) {
	rows, err := s.db.Query(ctx, `SELECT `+accountCols+`, a.xmin::text FROM accountpool.accounts a
		WHERE a.lease_id IS NOT NULL AND a.lease_expires_at <= $1
		ORDER BY a.lease_expires_at LIMIT 500`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("find expired leases: %w", err)
	}
	type versioned struct {
		a       domain.Account
		version string
	}
	expired, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (versioned, error) {
		var v versioned
		var err error
		v.a, err = scanAccount(r, &v.version)
		return v, err
	})
	if err != nil {
		return 0, fmt.Errorf("find expired leases: %w", err)
	}
	n := 0
	for _, e := range expired {
		at := *e.a.LeaseExpiresAt
		after := cfg.ApplyOutcome(e.a, domain.OutcomeLeaseExpired, at)
		ended, err := endLease(ctx, s.db, after, e.version, e.a.LeaseID, domain.OutcomeLeaseExpired, "no release before the lease ended", nil, at, nil, false, nil)
		if err != nil {
			return n, err
		}
		if ended {
			n++
		}
	}
	return n, nil
}

// NextLeaseExpiry is the earliest end of a live lease, if any.
func (s *Store) NextLeaseExpiry(ctx context.Context) (*time.Time, error) {
	var t *time.Time
	err := s.db.QueryRow(ctx, `SELECT min(lease_expires_at) FROM accountpool.accounts WHERE lease_id IS NOT NULL`).Scan(&t)
	if err != nil {
		return nil, fmt.Errorf("next lease expiry: %w", err)
	}
	return t, nil
}

// PoolStatus counts accounts by state at now. An account that rests from
// nothing (by its timestamps) but has no valid session state and maxLogins
// logins in the login window is OverLoginBudget, not Available: Acquire
// would not hand it out. NextAvailableAt (NextFree's answer) is set only
// when none is available.
func (s *Store) PoolStatus(ctx context.Context, now time.Time, maxLogins int) (domain.PoolStatus, error) {
	var st domain.PoolStatus
	var rested int
	err := s.db.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE a.active),
			count(*) FILTER (WHERE `+statePredicate[domain.StateAvailable]+`),
			count(*) FILTER (WHERE `+statePredicate[domain.StateAvailable]+` AND NOT `+fmt.Sprintf(validSessionSQL, "a", "@now")+`
				AND (SELECT count(*) FROM (`+fmt.Sprintf(loginsSQL, "a", "@now", "@window")+` LIMIT @max) b) >= @max),
			count(*) FILTER (WHERE `+statePredicate[domain.StateLeased]+`),
			count(*) FILTER (WHERE `+statePredicate[domain.StateCooldown]+`),
			count(*) FILTER (WHERE `+statePredicate[domain.StateQuarantined]+`),
			count(*) FILTER (WHERE `+statePredicate[domain.StateDisabled]+`)
		FROM accountpool.accounts a`, pgx.NamedArgs{"now": now, "window": domain.LoginWindow, "max": maxLogins}).
		Scan(&st.TotalActive, &rested, &st.OverLoginBudget, &st.Leased, &st.InCooldown, &st.Quarantined, &st.Disabled)
	if err != nil {
		return st, fmt.Errorf("pool status: %w", err)
	}
	st.Available = rested - st.OverLoginBudget
	if st.Available == 0 && st.TotalActive > 0 {
		if _, st.NextAvailableAt, err = s.NextFree(ctx, now, maxLogins); err != nil {
			return st, err
		}
	}
	return st, nil
}

// NextFree says whether any account is active and, if so, the earliest
// time one frees: the end of a rest, the moment an account that rests no
// more gets back under its login budget (now, if it is under it or has a
// valid session state: then the account is free but was locked by a
// concurrent Acquire), or the end of a lease plus the expiry grace. The
// rests and leases are index lookups; the budgets are looked up for the
// accounts that rest no more, one index lookup each, and only when Acquire
// found none of them leasable.
func (s *Store) NextFree(ctx context.Context, now time.Time, maxLogins int) (anyActive bool, at *time.Time, err error) {
	var rest, budget, lease *time.Time
	err = s.db.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM accountpool.accounts WHERE active),
			(SELECT min(`+fmt.Sprintf(restEnd, "r")+`) FROM accountpool.accounts r
				WHERE r.active AND r.lease_id IS NULL AND `+fmt.Sprintf(restEnd, "r")+` > $2),
			(SELECT min(CASE WHEN `+fmt.Sprintf(validSessionSQL, "r", "$2")+` THEN $2
					-- The budget frees when the login maxLogins back from the
					-- latest leaves the window.
					ELSE coalesce((`+fmt.Sprintf(loginsSQL, "r", "$2", "$3")+`
						ORDER BY u.acquired_at DESC OFFSET $4 - 1 LIMIT 1) + $3::interval, $2) END)
				FROM accountpool.accounts r
				WHERE r.active AND r.lease_id IS NULL AND `+fmt.Sprintf(restEnd, "r")+` <= $2),
			(SELECT min(lease_expires_at) + $1::interval FROM accountpool.accounts WHERE lease_id IS NOT NULL AND active)`,
		domain.ExpiryGrace, now, domain.LoginWindow, maxLogins).Scan(&anyActive, &rest, &budget, &lease)
	if err != nil {
		return false, nil, fmt.Errorf("next free account: %w", err)
	}
	for _, t := range []*time.Time{rest, budget, lease} {
		if t != nil && (at == nil || t.Before(*at)) {
			at = t
		}
	}
	return anyActive, at, nil
}

// Ciphertext is one account's stored password and session state (nil
// when it has none), for re-encryption.
type Ciphertext struct {
	AccountID int64
	Value     []byte
	Session   []byte
}

// Ciphertexts returns up to limit accounts' ciphertexts with id > afterID.
func (s *Store) Ciphertexts(ctx context.Context, afterID int64, limit int) ([]Ciphertext, error) {
	rows, err := s.db.Query(ctx, `SELECT id, password_ciphertext, session_ciphertext FROM accountpool.accounts
		WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("read ciphertexts: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Ciphertext, error) {
		var c Ciphertext
		err := r.Scan(&c.AccountID, &c.Value, &c.Session)
		return c, err
	})
}

// ReplaceSessionCiphertext swaps the session state's ciphertext old for
// new (nil clears the session state) unless a release changed it in the
// meantime; it reports whether it swapped.
func (s *Store) ReplaceSessionCiphertext(ctx context.Context, accountID int64, old, new []byte) (bool, error) {
	tag, err := s.db.Exec(ctx, `UPDATE accountpool.accounts SET session_ciphertext = $3,
			session_expires_at = CASE WHEN $3::bytea IS NULL THEN NULL ELSE session_expires_at END
		WHERE id = $1 AND session_ciphertext = $2`, accountID, old, new)
	if err != nil {
		return false, fmt.Errorf("replace session ciphertext: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReplaceCiphertext swaps old for new unless the password changed in the
// meantime; it reports whether it swapped.
func (s *Store) ReplaceCiphertext(ctx context.Context, accountID int64, old, new []byte) (bool, error) {
	tag, err := s.db.Exec(ctx, `UPDATE accountpool.accounts SET password_ciphertext = $3
		WHERE id = $1 AND password_ciphertext = $2`, accountID, old, new)
	if err != nil {
		return false, fmt.Errorf("replace ciphertext: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
