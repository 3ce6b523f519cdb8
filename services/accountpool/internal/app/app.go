// Package app is the account pool's application layer: one method per use
// case, holding the clock, the keyset and the wake-ups that let a waiting
// Acquire return the moment an account frees on any replica.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/metrics"
	"github.com/slotwatch/slotwatch/services/accountpool/internal/store"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

// Pool is the account pool.
type Pool struct {
	store   *store.Store
	keys    *secrets.Keyset
	cfg     domain.Config
	now     func() time.Time
	free    *broadcast
	logger  *slog.Logger
	metrics *metrics.Pool
	// listenIdle is the account-free listener's quiet spell before a ping
	// (0: pgdb.DefaultIdleCheck).
	listenIdle time.Duration

	stopOnce sync.Once
	stopping chan struct{}
}

// Option changes a Pool.
type Option func(*Pool)

// WithClock replaces time.Now (tests play the seed's sessions with it).
func WithClock(now func() time.Time) Option { return func(p *Pool) { p.now = now } }

// WithLogger sets the logger (slog.Default otherwise).
func WithLogger(l *slog.Logger) Option { return func(p *Pool) { p.logger = l } }

// WithMetrics makes the pool count acquires, waits, releases, expiries and
// fencing rejections (none otherwise).
func WithMetrics(m *metrics.Pool) Option { return func(p *Pool) { p.metrics = m } }

// WithListenIdleCheck sets how long the account-free listener waits for a
// notification before it pings its connection, and how long it then waits
// for the answer (tests shorten both).
func WithListenIdleCheck(d time.Duration) Option { return func(p *Pool) { p.listenIdle = d } }

// New returns a Pool.
func New(st *store.Store, keys *secrets.Keyset, cfg domain.Config, opts ...Option) *Pool {
	p := &Pool{store: st, keys: keys, cfg: cfg, now: time.Now, free: newBroadcast(), logger: slog.Default(), stopping: make(chan struct{})}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Config returns the pool's settings.
func (p *Pool) Config() domain.Config { return p.cfg }

// Now is the pool's clock.
// Times are kept to the microsecond, as Postgres stores them, so that what
// an RPC answers equals what a later read returns.
func (p *Pool) Now() time.Time { return p.now().UTC().Truncate(time.Microsecond) }

// PasswordAD is the associated data that binds a password ciphertext to its
// account row.
func PasswordAD(accountID int64) []byte {
	return []byte("slotwatch.accountpool.accounts.password:" + strconv.FormatInt(accountID, 10))
}

// SessionAD is the associated data that binds a session state ciphertext
// to its account row. Its purpose prefix differs from PasswordAD's, so a
// password never opens as a session state, nor a session state as a
// password.
func SessionAD(accountID int64) []byte {
	return []byte("slotwatch.accountpool.accounts.session:" + strconv.FormatInt(accountID, 10))
}

func (p *Pool) sealer(password string) store.Sealer {
	return func(id int64) ([]byte, error) {
		return p.keys.Encrypt([]byte(password), PasswordAD(id))
	}
}

func (p *Pool) sessionSealer(state []byte) store.Sealer {
	return func(id int64) ([]byte, error) {
		return p.keys.Encrypt(state, SessionAD(id))
	}
}

// NewAccount is an account to create.
type NewAccount struct {
	Email, Password, Phone string
}

// CreateAccount adds an account; a duplicate email is domain.ErrAlreadyExists.
func (p *Pool) CreateAccount(ctx context.Context, n NewAccount) (domain.Account, error) {
	return p.store.CreateAccount(ctx, n.Email, n.Phone, p.sealer(n.Password), p.Now())
}

// ImportAccount adds an account unless its email exists.
func (p *Pool) ImportAccount(ctx context.Context, n NewAccount) (created bool, err error) {
	return p.store.CreateAccountIfAbsent(ctx, n.Email, n.Phone, p.sealer(n.Password), p.Now())
}

// GetAccount returns one account.
func (p *Pool) GetAccount(ctx context.Context, id int64) (domain.Account, error) {
	return p.store.GetAccount(ctx, id)
}

// ListAccounts pages accounts by id.
func (p *Pool) ListAccounts(ctx context.Context, state domain.State, afterID int64, limit int) ([]domain.Account, error) {
	return p.store.ListAccounts(ctx, state, afterID, limit, p.Now())
}

// AccountChange is what UpdateAccount changes; nil fields stay.
type AccountChange struct {
	Password *string
	Phone    *string
	Active   *bool
}

// UpdateAccount changes an account.
func (p *Pool) UpdateAccount(ctx context.Context, id int64, c AccountChange) (domain.Account, error) {
	u := store.AccountUpdate{Phone: c.Phone, Active: c.Active}
	if c.Password != nil {
		u.Password = p.sealer(*c.Password)
	}
	return p.store.UpdateAccount(ctx, id, u, p.Now())
}

// ResetAccount clears quarantine, cooldown, failures and the session state.
func (p *Pool) ResetAccount(ctx context.Context, id int64) (domain.Account, error) {
	return p.store.ResetAccount(ctx, id, p.Now())
}

// AcquireRequest asks for a lease.
type AcquireRequest struct {
	MissionCode string
	Holder      string
	TTL         time.Duration // 0: the configured LeaseTTL
	Wait        time.Duration // 0: answer at once
	RequestIDs  []string
	// AcquireID names the Acquire ("" for none): a retry with the same id
	// while its lease is held gets that lease again.
	AcquireID string
}

// Acquire leases the least recently used eligible account. With Wait, it
// blocks until an account frees (a release on any replica, or the end of a
// cooldown) or Wait runs out.
func (p *Pool) Acquire(ctx context.Context, r AcquireRequest) (domain.Lease, error) {
	started := time.Now()
	lease, err := p.acquire(ctx, r)
	if r.Wait > 0 {
		p.metrics.Waited(time.Since(started))
	}
	var busy *domain.NoAccountFreeError
	switch {
	case err == nil:
		p.metrics.Acquired(metrics.AcquireLeased)
	case errors.As(err, &busy):
		p.metrics.Acquired(metrics.AcquireExhausted)
	case errors.Is(err, domain.ErrNoActiveAccount):
		p.metrics.Acquired(metrics.AcquireNoActiveAccount)
	default:
		p.metrics.Acquired(metrics.AcquireError)
	}
	return lease, err
}

func (p *Pool) acquire(ctx context.Context, r AcquireRequest) (domain.Lease, error) {
	if r.TTL == 0 {
		r.TTL = p.cfg.LeaseTTL
	}
	deadline := time.Now().Add(r.Wait)
	for {
		woken := p.free.wait()
		lease, err := p.tryAcquire(ctx, r)
		var busy *domain.NoAccountFreeError
		if !errors.As(err, &busy) {
			return lease, err
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return lease, err
		}
		// Sleep until the next account frees, but not less than a short
		// jittered floor: when free rows were only locked by concurrent
		// Acquires the delay is 0, and the loop must not spin.
		floor := minRetry + time.Duration(rand.Int64N(int64(minRetry)))
		timer := time.NewTimer(min(max(busy.RetryAfter(), floor), remaining))
		select {
		case <-ctx.Done():
			timer.Stop()
			return domain.Lease{}, ctx.Err()
		case <-p.stopping:
			// The server is stopping: answer now so that the caller can
			// retry on another replica instead of holding up the stop.
			timer.Stop()
			return lease, err
		case <-woken:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// minRetry is the shortest sleep of a waiting Acquire between attempts.
const minRetry = 50 * time.Millisecond

// Stop makes waiting Acquires answer at once; call it when the server
// begins its graceful stop.
func (p *Pool) Stop() { p.stopOnce.Do(func() { close(p.stopping) }) }

func (p *Pool) tryAcquire(ctx context.Context, r AcquireRequest) (domain.Lease, error) {
	for attempt := 0; ; attempt++ {
		now := p.Now()
		params := store.AcquireParams{
			LeaseID: uuid.NewString(), MissionCode: r.MissionCode, Holder: r.Holder,
			RequestIDs: r.RequestIDs, TTL: r.TTL, Now: now, MaxLogins: p.cfg.MaxLoginsPerDay,
			AcquireID: r.AcquireID,
		}
		leased, err := p.store.Acquire(ctx, params)
		if err == nil {
			return p.grant(ctx, leased, params)
		}
		raced := errors.Is(err, domain.ErrAcquireIDRaced)
		if !errors.Is(err, domain.ErrNotFound) && !raced {
			return domain.Lease{}, err
		}
		if r.AcquireID != "" {
			// A retry (or a twin) of an Acquire that leased already gets
			// that lease; an id no lease holds leases as new.
			leased, leaseID, lerr := p.store.LeaseOf(ctx, r.AcquireID, r.Holder, r.MissionCode, now, p.cfg.MaxLoginsPerDay)
			switch {
			case lerr == nil:
				p.logger.InfoContext(ctx, "Acquire retried: its lease is handed out again",
					"acquire_id", r.AcquireID, "lease_id", leaseID, "account_id", leased.Account.ID)
				params.LeaseID = leaseID
				return p.grant(ctx, leased, params)
			case !errors.Is(lerr, domain.ErrNotFound):
				return domain.Lease{}, lerr
			case raced && attempt < 3:
				continue // the other's lease went back meanwhile
			case raced:
				// Lost every race, the winner's lease gone each time:
				// ErrAcquireIDRaced (ABORTED, retried), not LeaseOf's
				// ErrNotFound, which said the caller named something
				// missing.
				return domain.Lease{}, err
			}
		}
		// Nothing eligible. Leases that ran out but were not expired yet
		// count as free once expired; then see when the next one frees.
		if n, err := p.expire(ctx, now); err != nil {
			return domain.Lease{}, err
		} else if n > 0 && attempt < 3 {
			continue
		}
		anyActive, freeAt, err := p.store.NextFree(ctx, now, p.cfg.MaxLoginsPerDay)
		switch {
		case err != nil:
			return domain.Lease{}, err
		case !anyActive:
			return domain.Lease{}, domain.ErrNoActiveAccount
		case freeAt == nil:
			// Every active account is leased by someone (an instant ago).
			freeAt = &now
		case !freeAt.After(now) && attempt < 3:
			// Free accounts exist, but concurrent Acquires held their rows.
			continue
		}
		return domain.Lease{}, &domain.NoAccountFreeError{FreeAt: *freeAt, Now: now}
	}
}

// grant decrypts the leased account's password and session state. A
// password that does not decrypt although the keyset holds its key (a
// tampered or moved row) makes the account useless until an operator sets
// a new one: the lease ends at once as an error and the account is
// disabled, so it is not handed out again. One sealed with a key this
// keyset does not hold may be intact: this replica's keyset is the wrong
// one, or older than the password (a rotation not rolled out here yet).
// Then the lease ends unused and the account stays as it was, or one
// misconfigured replica would disable the whole pool, an account per
// Acquire. A session state that does not decrypt is only treated as none:
// the check logs in, and its Release stores a new one.
func (p *Pool) grant(ctx context.Context, leased store.Leased, params store.AcquireParams) (domain.Lease, error) {
	a := leased.Account
	pw, err := p.keys.Decrypt(leased.PasswordCiphertext, PasswordAD(a.ID))
	if err != nil {
		outcome, detail := domain.OutcomeError, "stored password does not decrypt with the configured keyset"
		held := p.keys.HoldsKeyOf(leased.PasswordCiphertext)
		if held {
			p.logger.ErrorContext(ctx, "leased account's password does not decrypt; disabling the account until it gets a new password",
				"account_id", a.ID, "lease_id", params.LeaseID)
		} else {
			outcome, detail = domain.OutcomeUnused, "stored password is sealed with a key this replica's keyset does not hold"
			keyID, _ := secrets.KeyID(leased.PasswordCiphertext)
			p.logger.ErrorContext(ctx, "leased account's password is sealed with a key that ENCRYPTION_KEYSET_FILE does not hold: "+
				"is it the keyset the pool was written with (a rotated one rolled out everywhere)? The account is left as it was",
				"account_id", a.ID, "lease_id", params.LeaseID, "key_id", keyID, "primary_key_id", p.keys.PrimaryKeyID())
		}
		// The lease is ended whether or not the caller still waits: one
		// that gave up meanwhile (its deadline) would otherwise leave it
		// held, to expire as lease_expired, a failure charged to an
		// account this replica never used. Bounded as the store bounds
		// the Acquire statement and its hand-back of abandoned leases.
		endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
		defer cancel()
		if _, rerr := p.store.Release(endCtx, p.cfg, store.ReleaseParams{
			LeaseID: params.LeaseID, FencingToken: a.FencingToken, Outcome: outcome, Detail: detail, Now: params.Now,
		}); rerr != nil {
			p.logger.ErrorContext(ctx, "release undecryptable account", "account_id", a.ID, "error", rerr)
		} else {
			p.metrics.Released(outcome, params.MissionCode)
		}
		if held {
			off := false
			if _, derr := p.store.UpdateAccount(endCtx, a.ID, store.AccountUpdate{Active: &off}, p.Now()); derr != nil {
				p.logger.ErrorContext(ctx, "disable undecryptable account", "account_id", a.ID, "error", derr)
			}
		}
		return domain.Lease{}, fmt.Errorf("account %d: %w", a.ID, ErrUndecryptable)
	}
	lease := domain.Lease{
		LeaseID: params.LeaseID, FencingToken: a.FencingToken, Account: a, Password: string(pw),
		MissionCode: params.MissionCode, Holder: params.Holder, ExpiresAt: *a.LeaseExpiresAt,
		LoginsLeft: max(p.cfg.MaxLoginsPerDay-leased.Logins, 0),
	}
	if leased.SessionCiphertext != nil {
		state, err := p.keys.Decrypt(leased.SessionCiphertext, SessionAD(a.ID))
		if err != nil {
			p.logger.WarnContext(ctx, "leased account's session state does not decrypt; the check will log in",
				"account_id", a.ID, "lease_id", params.LeaseID)
		} else {
			lease.SessionState, lease.SessionExpiresAt = state, leased.SessionExpiresAt
		}
	}
	return lease, nil
}

// endTimeout bounds grant's ending of a lease it cannot hand out, run
// detached from the caller (as the store's batchTimeout does a batch).
const endTimeout = 30 * time.Second

// ErrUndecryptable says a stored password does not open with the keyset.
var ErrUndecryptable = errors.New("stored password does not decrypt with the configured keyset")

// Renew extends a held lease to now+extendBy (the LeaseTTL when 0).
func (p *Pool) Renew(ctx context.Context, leaseID string, token int64, extendBy time.Duration) (time.Time, error) {
	if extendBy == 0 {
		extendBy = p.cfg.LeaseTTL
	}
	now := p.Now()
	until := now.Add(extendBy)
	err := p.store.Renew(ctx, leaseID, token, until, now)
	p.countFencing(err)
	return until, err
}

func (p *Pool) countFencing(err error) {
	if errors.Is(err, domain.ErrLeaseNotHeld) {
		p.metrics.FencingRejected()
	}
}

// ReleaseRequest ends a lease.
type ReleaseRequest struct {
	LeaseID      string
	FencingToken int64
	// AcquireID names the lease by its Acquire instead (store.ReleaseParams).
	AcquireID  string
	Outcome    domain.Outcome
	Detail     string
	RequestIDs []string
	Session    domain.SessionRelease
	// RetryAfter is the portal's Retry-After: the account rests at least
	// that long (domain.RestAtLeast).
	RetryAfter time.Duration
}

// Release ends a lease with its outcome, and stores the session state it
// carries, or clears the stored one when asked or when the outcome says
// the session is not one to return to (domain.ClearsSession).
func (p *Pool) Release(ctx context.Context, r ReleaseRequest) (domain.Account, error) {
	now := p.Now()
	params := store.ReleaseParams{
		LeaseID: r.LeaseID, FencingToken: r.FencingToken, AcquireID: r.AcquireID, Outcome: r.Outcome,
		Detail: r.Detail, RequestIDs: r.RequestIDs, Now: now, LoggedIn: r.Session.LoggedIn, RetryAfter: r.RetryAfter,
	}
	switch {
	case r.Session.Clear || domain.ClearsSession(r.Outcome):
		params.Session = &store.SessionWrite{}
	case len(r.Session.State) > 0:
		params.Session = &store.SessionWrite{
			Seal: p.sessionSealer(r.Session.State), ExpiresAt: p.cfg.SessionExpiry(now, r.Session.MaxAge),
		}
	}
	rel, err := p.store.Release(ctx, p.cfg, params)
	if r.AcquireID == "" {
		// A give-back by acquire_id that finds its lease ended is no
		// holder's stale call (the fencing metric's meaning): the lease
		// expired while its Acquire's caller gave up.
		p.countFencing(err)
	}
	if err == nil && !rel.Replay {
		p.metrics.Released(r.Outcome, rel.MissionCode)
	}
	return rel.Account, err
}

// ExpireLeases ends every lease whose time ran out.
func (p *Pool) ExpireLeases(ctx context.Context) (int, error) {
	return p.expire(ctx, p.Now())
}

func (p *Pool) expire(ctx context.Context, now time.Time) (int, error) {
	n, err := p.store.ExpireLeases(ctx, p.cfg, now.Add(-domain.ExpiryGrace))
	p.metrics.Expired(n)
	return n, err
}

// PoolStatus counts accounts by state.
func (p *Pool) PoolStatus(ctx context.Context) (domain.PoolStatus, error) {
	return p.store.PoolStatus(ctx, p.Now(), p.cfg.MaxLoginsPerDay)
}

// ListUsage pages the usage log.
func (p *Pool) ListUsage(ctx context.Context, f store.UsageFilter, after *store.UsageCursor, limit int) ([]domain.UsageRecord, error) {
	return p.store.ListUsage(ctx, f, after, limit)
}

// UsageStats counts leases per account in [since, until); zero times mean
// the 24 hours up to now.
func (p *Pool) UsageStats(ctx context.Context, since, until time.Time, afterID int64, limit int) ([]domain.UsageStats, time.Time, time.Time, error) {
	if until.IsZero() {
		until = p.Now()
	}
	if since.IsZero() {
		since = until.Add(-24 * time.Hour)
	}
	st, err := p.store.UsageStats(ctx, since, until, afterID, limit)
	return st, since, until, err
}

// Reencrypted is what ReencryptPasswords did.
type Reencrypted struct {
	Count        int
	PrimaryKeyID uint32
	// Undecryptable lists accounts whose password does not open with the
	// keyset; they are left as they are.
	Undecryptable []int64
	// Sessions counts the session states re-encrypted; SessionsCleared
	// those that did not open with the keyset and were cleared.
	Sessions, SessionsCleared int
}

// ReencryptPasswords moves every stored password and session state to the
// keyset's primary key. It reads in batches and swaps each ciphertext only
// if it did not change meanwhile, so it is safe to run while the pool
// serves. A password that does not decrypt is skipped and reported, so one
// bad row does not stop a rotation; a session state that does not decrypt
// is cleared (it would be handed out as none anyway), unless its key is
// one the keyset does not hold (reencryptSession).
func (p *Pool) ReencryptPasswords(ctx context.Context) (Reencrypted, error) {
	r := Reencrypted{PrimaryKeyID: p.keys.PrimaryKeyID()}
	var after int64
	for {
		batch, err := p.store.Ciphertexts(ctx, after, 500)
		if err != nil || len(batch) == 0 {
			return r, err
		}
		for _, c := range batch {
			after = c.AccountID
			if err := p.reencryptSession(ctx, c, &r); err != nil {
				return r, err
			}
			if id, ok := secrets.KeyID(c.Value); ok && id == r.PrimaryKeyID {
				continue
			}
			pt, err := p.keys.Decrypt(c.Value, PasswordAD(c.AccountID))
			if err != nil {
				r.Undecryptable = append(r.Undecryptable, c.AccountID)
				continue
			}
			ct, err := p.keys.Encrypt(pt, PasswordAD(c.AccountID))
			if err != nil {
				return r, err
			}
			swapped, err := p.store.ReplaceCiphertext(ctx, c.AccountID, c.Value, ct)
			if err != nil {
				return r, err
			}
			if swapped {
				r.Count++
			}
		}
	}
}

// reencryptSession moves c's session state, if it has one, to the primary
// key, or clears it when it does not decrypt although the keyset holds its
// key. One sealed with a key the keyset does not hold is left as it is:
// it may be intact, and this replica's keyset the wrong one or older (as
// for a password, see grant).
func (p *Pool) reencryptSession(ctx context.Context, c store.Ciphertext, r *Reencrypted) error {
	if c.Session == nil || !p.keys.HoldsKeyOf(c.Session) {
		return nil
	}
	if id, ok := secrets.KeyID(c.Session); ok && id == r.PrimaryKeyID {
		return nil
	}
	var ct []byte // nil clears
	if pt, err := p.keys.Decrypt(c.Session, SessionAD(c.AccountID)); err == nil {
		if ct, err = p.keys.Encrypt(pt, SessionAD(c.AccountID)); err != nil {
			return err
		}
	}
	swapped, err := p.store.ReplaceSessionCiphertext(ctx, c.AccountID, c.Session, ct)
	switch {
	case err != nil:
		return err
	case swapped && ct == nil:
		r.SessionsCleared++
	case swapped:
		r.Sessions++
	}
	return nil
}
