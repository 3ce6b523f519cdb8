package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slotwatch/slotwatch/services/accountpool/internal/domain"
)

// Option changes a Store.
type Option func(*Store)

// WithBatching coalesces the Acquires and the Releases that arrive while a
// batch is in flight (issue 16) into the next batch: one transaction, sent
// in one round trip, of at most two statements, one that ends N leases
// and one that leases an account to each of M callers, committed once. A
// Release of a lease this Store granted, whose account row has not
// changed since, is one round trip; any other goes the unbatched way
// (read, then write).
func WithBatching() Option {
	return func(s *Store) {
		s.batch = &batcher[op, opResult]{run: s.runBatch, abandoned: s.abandoned, max: maxBatch, work: &s.work}
		s.leases = &leaseCache{m: map[string]grantedLease{}}
		s.lockWait = releaseLockWait
	}
}

// maxBatch is the most callers one batch serves.
const maxBatch = 128

// op is one call in a batch: an Acquire or a Release (one of the two).
type op struct {
	acquire *AcquireParams
	release *fastRelease
}

// opResult answers an op: acquired for an Acquire, released for a
// Release.
type opResult struct {
	acquired acquired
	released releaseAnswer
}

// batchCounts counts the batches that had Acquires and Releases in them
// and the calls of each kind they served.
type batchCounts struct {
	acquireBatches, acquireCalls, releaseBatches, releaseCalls atomic.Int64
}

// runBatch serves one batch in one transaction, sent in one round trip:
// first the Releases' statement, then the Acquires' (one per login
// budget; one in practice), each seeing what the ones before it wrote, so
// that an account released in the batch may go to one of its Acquires if
// the outcome rule left it leasable. A failure of any statement or of the
// commit fails every call of the batch.
//
// A Release's statement may wait for a row lock (a Renew, an update, the
// expiry of the same account); every other call of this replica waits
// behind its batch. So a batch with Releases waits for a lock at most
// releaseLockWait: past it, nothing of the batch was written, its
// Acquires run again on their own and its Releases go the unbatched way,
// each waiting for its lock in its own caller.
func (s *Store) runBatch(ctx context.Context, ops []op) []opResult {
	var (
		acqs         []AcquireParams
		rels         []fastRelease
		acqAt, relAt []int
	)
	for i, o := range ops {
		if o.acquire != nil {
			acqs, acqAt = append(acqs, *o.acquire), append(acqAt, i)
		} else {
			rels, relAt = append(rels, *o.release), append(relAt, i)
		}
	}
	acqOut, relOut := make([]acquired, len(acqs)), make([]releaseAnswer, len(rels))
	if err := s.sendBatch(ctx, acqs, rels, acqOut, relOut); err != nil {
		if len(rels) > 0 && isLockTimeout(err) {
			clear(relOut) // ended false, no error: the unbatched way
			if len(acqs) > 0 {
				acqOut = make([]acquired, len(acqs))
				if err := s.sendBatch(ctx, acqs, nil, acqOut, nil); err != nil {
					s.failAcquires(ctx, acqOut, err)
				}
			}
		} else {
			s.failAcquires(ctx, acqOut, err)
			for i := range relOut {
				relOut[i] = releaseAnswer{err: fmt.Errorf("end lease: %w", err)}
			}
		}
	}
	out := make([]opResult, len(ops))
	for k, i := range acqAt {
		out[i].acquired = acqOut[k]
	}
	for k, i := range relAt {
		out[i].released = relOut[k]
	}
	return out
}

// releaseLockWait is the longest a batch with Releases waits for a row
// lock before its Releases leave it (runBatch).
const releaseLockWait = time.Second

// sendBatch runs the statements of rels and acqs in one transaction, one
// round trip, reading their answers into relOut and acqOut; the error is
// the batch's (a statement's or the commit's).
func (s *Store) sendBatch(ctx context.Context, acqs []AcquireParams, rels []fastRelease, acqOut []acquired, relOut []releaseAnswer) error {
	var (
		reads  []func(pgx.Rows, error)
		queued pgx.Batch
	)
	if len(rels) > 0 {
		queued.Queue(`SELECT set_config('lock_timeout', $1, true)`, fmt.Sprintf("%dms", s.lockWait.Milliseconds()))
		reads = append(reads, func(pgx.Rows, error) {})
		args, read := releaseStatement(rels, relOut)
		queued.Queue(releaseSQL, args...)
		reads = append(reads, read)
		s.counts.releaseBatches.Add(1)
		s.counts.releaseCalls.Add(int64(len(rels)))
	}
	if len(acqs) > 0 {
		for _, idx := range byLoginBudget(acqs) {
			queued.Queue(acquireSQL, acquireArgs(acqs, idx, acqOut)...)
			reads = append(reads, func(rows pgx.Rows, err error) { readAcquired(rows, err, acqs, idx, acqOut) })
		}
		s.counts.acquireBatches.Add(1)
		s.counts.acquireCalls.Add(int64(len(acqs)))
	}
	br := s.db.SendBatch(ctx, &queued)
	for _, read := range reads {
		rows, err := br.Query()
		read(rows, err)
		if rows != nil {
			rows.Close()
		}
	}
	return br.Close()
}

// failAcquires answers every Acquire of a failed batch with err. The
// batch may still have committed (the connection failed after the
// server's commit, or an answer could not be read): the leases it read
// are handed back, best effort and off the batcher's path (Postgres may
// be gone); any other ends at its expiry.
func (s *Store) failAcquires(ctx context.Context, out []acquired, err error) {
	s.handBack(ctx, slices.Clone(out))
	for i := range out {
		out[i] = acquired{err: fmt.Errorf("acquire: %w", err)}
	}
}

// isLockTimeout tells whether err is Postgres's lock_timeout.
func isLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

// abandoned hands back the leases of the Acquires whose callers gave up
// while their batch ran.
func (s *Store) abandoned(ctx context.Context, rs []opResult) {
	res := make([]acquired, len(rs))
	for i, r := range rs {
		res[i] = r.acquired
	}
	s.handBack(ctx, res)
}

// handBack runs unlease for all of res in one goroutine of its own: a
// hand-back is a round trip, and callers give up when Postgres is slow,
// when the batch loop (or the caller) should not wait for it too. Drain
// waits for it.
func (s *Store) handBack(ctx context.Context, res []acquired) {
	s.work.goCounted(func() { s.unlease(context.WithoutCancel(ctx), res) })
}

// Drain waits until the batches in flight and the hand-backs of leases no
// caller received are done, or ctx ends. Call it when the server has
// stopped, before closing the database pool: a batch whose callers all
// gave up still commits its leases, and a hand-back cut short leaves its
// lease held until its expiry.
func (s *Store) Drain(ctx context.Context) error {
	if err := s.work.wait(ctx); err != nil {
		return fmt.Errorf("batches or hand-backs still running: %w", err)
	}
	return nil
}

// acquired is one caller's answer from an Acquire batch.
type acquired struct {
	leased Leased
	// version is the account row's xmin after the lease began.
	version string
	// prevUsed is the account's last_used_at before this lease, for
	// unlease.
	prevUsed *time.Time
	leaseID  string
	err      error
	// raced: the lease was granted, but another Acquire with the same
	// acquire_id logged its lease first (domain.ErrAcquireIDRaced): it goes back.
	raced bool
}

func (s *Store) acquireBatched(ctx context.Context, p AcquireParams) (Leased, error) {
	r, err := s.batch.do(ctx, op{acquire: &p})
	if err != nil {
		return Leased{}, err
	}
	res := r.acquired
	if res.raced {
		s.handBack(ctx, []acquired{res})
	}
	if res.err != nil {
		return Leased{}, res.err
	}
	s.leases.put(p.LeaseID, grantedLease{account: res.leased.Account, version: res.version, mission: p.MissionCode})
	return res.leased, nil
}

// acquireBatch leases one account to each request that an eligible one is
// left for, in one statement per login budget: the requests in their
// order of arrival get the eligible accounts in LRU order (the first
// caller the least recently used account), each with its usage row. The
// rest get domain.ErrNotFound. It serves the unbatched Store; runBatch
// runs the same statements in its transaction.
func (s *Store) acquireBatch(ctx context.Context, reqs []AcquireParams) []acquired {
	out := make([]acquired, len(reqs))
	for _, idx := range byLoginBudget(reqs) {
		rows, err := s.db.Query(ctx, acquireSQL, acquireArgs(reqs, idx, out)...)
		readAcquired(rows, err, reqs, idx, out)
	}
	return out
}

// byLoginBudget groups the requests' indexes by login budget, in order of
// arrival: one acquireSQL each.
func byLoginBudget(reqs []AcquireParams) [][]int {
	var groups [][]int
	done := make([]bool, len(reqs))
	for first := range reqs {
		if done[first] {
			continue
		}
		var idx []int
		for i := first; i < len(reqs); i++ {
			if !done[i] && reqs[i].MaxLogins == reqs[first].MaxLogins {
				idx = append(idx, i)
				done[i] = true
			}
		}
		groups = append(groups, idx)
	}
	return groups
}

// acquireSQL is Acquire's one statement, for N requests given as arrays
// (N is 1 without batching). $6 is the latest of the requests' times, at
// which eligibility is judged; each lease starts at its own request's time
// (or the row's last change).
//
// A request with an acquire_id ($11, empty for none) that a usage row holds
// already gets no account (the caller looks that lease up: LeaseOf). Two
// with one id at once (two replicas, or one batch) both get an account,
// but the usage rows' unique index (usage_log_acquire_id_key) logs one:
// the other's lease comes back unlogged (logged false), for its caller to
// hand back.
var acquireSQL = `
	WITH asked AS (
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::interval[], $10::timestamptz[], $11::text[])
			WITH ORDINALITY AS r(lease_id, holder, mission_code, request_ids, ttl, at, acquire_id, ord)
	), req AS (
		-- slot numbers the requests that may get an account, in order.
		SELECT r.lease_id, r.holder, r.mission_code, r.request_ids, r.ttl, r.at, nullif(r.acquire_id, '')::uuid AS acquire_id,
			r.ord, row_number() OVER (ORDER BY r.ord) AS slot
		FROM asked r
		-- One probe of usage_log_acquire_id_key per request. (A NOT
		-- EXISTS here was planned, on a young usage log's statistics, as a
		-- hash of the whole table built for every batch: a sequential
		-- scan that grew with the log. A LATERAL subquery with a LIMIT
		-- is never hashed.)
		LEFT JOIN LATERAL (
			SELECT true AS logged FROM accountpool.usage_log u
			WHERE u.acquire_id = nullif(r.acquire_id, '')::uuid LIMIT 1) u ON true
		WHERE u.logged IS NULL
	), candidate AS (
		SELECT c.id, c.last_used_at AS prev_used,
			row_number() OVER (ORDER BY c.last_used_at ASC NULLS FIRST, c.id) AS ord
		FROM (
			SELECT c.id, c.last_used_at FROM accountpool.accounts c
			WHERE ` + available("c", "$6") + `
				AND (` + fmt.Sprintf(validSessionSQL, "c", "$6") + `
					OR (SELECT count(*) FROM (` + fmt.Sprintf(loginsSQL, "c", "$6", "$7") + ` LIMIT $8) b) < $8)
				-- A one-time check on accounts_rest_end_idx: when every
				-- account rests, skip the walk of the LRU index. (min()
				-- reads one index entry; an EXISTS was planned as a scan.)
				AND (SELECT min(` + fmt.Sprintf(restEnd, "r") + `) FROM accountpool.accounts r
					WHERE r.active AND r.lease_id IS NULL) <= $6
			ORDER BY c.last_used_at ASC NULLS FIRST, c.id
			LIMIT $9
			FOR UPDATE SKIP LOCKED
		) c
	), leased AS (
		-- A lease starts no earlier than the row's last change, so that
		-- the usage log stays in order even when replicas' clocks or
		-- schedulers disagree by a little.
		UPDATE accountpool.accounts a SET
			lease_id = r.lease_id, leased_by = r.holder,
			lease_expires_at = greatest(r.at, a.updated_at) + r.ttl,
			fencing_token = a.fencing_token + 1, last_used_at = greatest(r.at, a.updated_at),
			use_count = a.use_count + 1, updated_at = greatest(r.at, a.updated_at)
		FROM candidate c JOIN req r ON r.slot = c.ord
		WHERE a.id = c.id
		RETURNING a.*, a.xmin::text AS version, r.ord AS req_ord, r.mission_code AS req_mission,
			r.request_ids AS req_request_ids, r.acquire_id AS req_acquire_id, c.prev_used
	), logged AS (
		INSERT INTO accountpool.usage_log (lease_id, account_id, fencing_token, mission_code, holder, request_ids, acquired_at, acquire_id)
		SELECT l.lease_id, l.id, l.fencing_token, l.req_mission, l.leased_by,
			ARRAY(SELECT jsonb_array_elements_text(l.req_request_ids::jsonb)), l.last_used_at, l.req_acquire_id
		FROM leased l
		ORDER BY l.req_ord
		ON CONFLICT (acquire_id) WHERE acquire_id IS NOT NULL DO NOTHING
		RETURNING lease_id
	)
	SELECT ` + accountCols + `, a.password_ciphertext,
		CASE WHEN ` + fmt.Sprintf(validSessionSQL, "a", "$6") + ` THEN a.session_ciphertext END,
		CASE WHEN ` + fmt.Sprintf(validSessionSQL, "a", "$6") + ` THEN a.session_expires_at END,
		(SELECT count(*) FROM (` + fmt.Sprintf(loginsSQL, "a", "$6", "$7") + ` LIMIT $8) b),
		a.version, a.prev_used, a.req_ord, EXISTS (SELECT 1 FROM logged g WHERE g.lease_id = a.lease_id)
	FROM leased a`

// acquireArgs is acquireSQL's arguments for the requests reqs[idx]; each
// of their answers in out starts as domain.ErrNotFound.
func acquireArgs(reqs []AcquireParams, idx []int, out []acquired) []any {
	n := len(idx)
	var (
		leaseIDs, holders, missions, requestIDs = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		acquireIDs                              = make([]string, n)
		ttls                                    = make([]time.Duration, n)
		ats                                     = make([]time.Time, n)
		latest                                  time.Time
	)
	for k, i := range idx {
		p := reqs[i]
		ids, _ := json.Marshal(nonNil(p.RequestIDs)) // a []string always encodes
		leaseIDs[k], holders[k], missions[k], requestIDs[k] = p.LeaseID, p.Holder, p.MissionCode, string(ids)
		acquireIDs[k] = p.AcquireID
		ttls[k], ats[k] = p.TTL, p.Now
		if p.Now.After(latest) {
			latest = p.Now
		}
		out[i] = acquired{leaseID: p.LeaseID, err: domain.ErrNotFound}
	}
	return []any{leaseIDs, holders, missions, requestIDs, ttls, latest,
		domain.LoginWindow, reqs[idx[0]].MaxLogins, n, ats, acquireIDs}
}

// readAcquired reads acquireSQL's answer (rows, or err) for the requests
// reqs[idx] into out.
func readAcquired(rows pgx.Rows, err error, reqs []AcquireParams, idx []int, out []acquired) {
	if err != nil {
		for _, i := range idx {
			out[i].err = fmt.Errorf("acquire: %w", err)
		}
		return
	}
	defer rows.Close()
	for rows.Next() {
		var (
			l      Leased
			res    acquired
			ord    int
			logged bool
		)
		a, err := scanAccount(rows, &l.PasswordCiphertext, &l.SessionCiphertext, &l.SessionExpiresAt, &l.Logins,
			&res.version, &res.prevUsed, &ord, &logged)
		if err != nil {
			for _, i := range idx {
				out[i] = acquired{err: fmt.Errorf("acquire: %w", err)}
			}
			return
		}
		l.Account = a
		i := idx[ord-1]
		res.leased, res.leaseID = l, reqs[i].LeaseID
		if !logged {
			res.raced, res.err = true, domain.ErrAcquireIDRaced
		}
		out[i] = res
	}
	if err := rows.Err(); err != nil {
		// The statement failed as a whole: no lease was granted.
		for _, i := range idx {
			out[i] = acquired{err: fmt.Errorf("acquire: %w", err)}
		}
	}
}

// unlease hands back, in one statement, leases no caller received (the
// caller gave up while its batch ran, or the batch failed after reading
// them): each account is as if it had not been leased (the fencing token
// stays spent), and each lease leaves no usage row. Answers without a
// lease are skipped. A batch's hand-backs go together, so that however
// many callers give up they take one connection and one round trip.
func (s *Store) unlease(ctx context.Context, res []acquired) {
	var (
		ids      []int64
		leaseIDs []string
		prevUsed []*time.Time
		versions []string
	)
	for _, r := range res {
		if (r.err == nil || r.raced) && r.leaseID != "" {
			ids, leaseIDs, prevUsed = append(ids, r.leased.Account.ID), append(leaseIDs, r.leaseID), append(prevUsed, r.prevUsed)
			versions = append(versions, r.version)
		}
	}
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, batchTimeout)
	defer cancel()
	// Best effort: if this fails, the leases end at their expiry instead.
	// Only a row unchanged since its lease began goes back: a retry of
	// the Acquire that got the lease (LeaseOf) changes it, and the lease
	// is that caller's then.
	_, _ = s.db.Exec(ctx, `WITH back AS (
			SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::timestamptz[], $5::text[]) AS b(id, lease_id, prev_used, version)
		), account AS (
			UPDATE accountpool.accounts a SET lease_id = NULL, leased_by = NULL, lease_expires_at = NULL,
				last_used_at = b.prev_used, use_count = a.use_count - 1
			FROM back b
			WHERE a.id = b.id AND a.lease_id = b.lease_id AND a.xmin::text = b.version
			RETURNING b.lease_id
		), gone AS (
			DELETE FROM accountpool.usage_log u USING account WHERE u.lease_id = account.lease_id
		)
		SELECT pg_notify($4, '') WHERE EXISTS (SELECT 1 FROM account)`,
		ids, leaseIDs, prevUsed, FreeChannel, versions)
}

// grantedLease is what a Store remembers of a lease it granted, so that
// its Release can skip reading the row back: the account as leased and
// the row's version then.
type grantedLease struct {
	account domain.Account
	version string
	mission string
}

// leaseCache holds the leases this Store granted and has not seen end. An
// entry is only a hint: the release's write checks the row's version.
type leaseCache struct {
	mu sync.Mutex
	m  map[string]grantedLease
}

// maxCachedLeases bounds the cache; leases released on other replicas or
// expired are dropped when it fills.
const maxCachedLeases = 100_000

func (c *leaseCache) put(leaseID string, g grantedLease) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedLeases {
		now := time.Now()
		for id, e := range c.m {
			if e.account.LeaseExpiresAt == nil || e.account.LeaseExpiresAt.Before(now) {
				delete(c.m, id)
			}
		}
		if len(c.m) >= maxCachedLeases {
			clear(c.m)
		}
	}
	c.m[leaseID] = g
}

func (c *leaseCache) take(leaseID string) (grantedLease, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.m[leaseID]
	delete(c.m, leaseID)
	return g, ok
}

// fastRelease is one lease to end in a release batch: the account as the
// outcome rule left it, written if the row is still at version.
type fastRelease struct {
	account  domain.Account
	version  string
	leaseID  string
	outcome  domain.Outcome
	detail   string
	reqIDs   []string
	at       time.Time
	answer   []byte
	loggedIn bool
	sess     *sessionWrite
}

type releaseAnswer struct {
	ended bool
	err   error
}

// releaseFast ends a lease this Store granted in a release batch, without
// reading it first. ended false means the row changed since the lease
// began (a renewal, an expiry, an update): the caller reads it and tries
// the unbatched way. sess is the sealed session state, for that retry.
func (s *Store) releaseFast(ctx context.Context, cfg domain.Config, p ReleaseParams, g grantedLease) (Released, *sessionWrite, bool, error) {
	rel := Released{MissionCode: g.mission}
	a := g.account
	sess, err := sealReleasedSession(p, a.ID, *a.LastUsedAt)
	if err != nil {
		return rel, nil, false, err
	}
	var now time.Time
	var answer []byte
	rel.Account, now, answer, err = releasedAccount(cfg, a, p)
	if err != nil {
		return rel, sess, false, err
	}
	r, err := s.batch.do(ctx, op{release: &fastRelease{
		account: rel.Account, version: g.version, leaseID: p.LeaseID, outcome: p.Outcome, detail: p.Detail,
		reqIDs: p.RequestIDs, at: now, answer: answer, loggedIn: p.LoggedIn, sess: sess,
	}})
	res := r.released
	if err == nil {
		err = res.err
	}
	return rel, sess, res.ended, err
}

// releasedAccount is what a Release makes of the leased row a: the time it
// takes effect (no earlier than the row's last change), the account after
// the outcome rule and the portal's Retry-After, and that account as the
// stored answer a retried Release gets.
func releasedAccount(cfg domain.Config, a domain.Account, p ReleaseParams) (domain.Account, time.Time, []byte, error) {
	now := p.Now
	if a.UpdatedAt.After(now) {
		now = a.UpdatedAt
	}
	after := domain.RestAtLeast(cfg.ApplyOutcome(a, p.Outcome, now), p.RetryAfter, now)
	answer, err := json.Marshal(after)
	if err != nil {
		return after, now, nil, fmt.Errorf("encode release answer: %w", err)
	}
	return after, now, answer, nil
}

// sealReleasedSession is the session write a Release asks for (nil: none),
// its state sealed for account id.
func sealReleasedSession(p ReleaseParams, id int64, leasedAt time.Time) (*sessionWrite, error) {
	if p.Session == nil {
		return nil, nil
	}
	sess := &sessionWrite{leasedAt: leasedAt}
	if p.Session.Seal != nil {
		ct, err := p.Session.Seal(id)
		if err != nil {
			return nil, fmt.Errorf("seal session state: %w", err)
		}
		sess.ct, sess.expiresAt = ct, &p.Session.ExpiresAt
	}
	return sess, nil
}

// releaseSQL is endLease for N leases given as arrays; it wakes waiting
// Acquires once (Postgres folds a transaction's identical notifications
// into one) and returns the leases it ended.
const releaseSQL = `
	WITH r AS (
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::int[], $5::timestamptz[], $6::timestamptz[],
			$7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bool[], $13::bool[],
			$14::bytea[], $15::timestamptz[], $16::timestamptz[])
			AS r(id, version, lease_id, failures, cooldown_until, quarantine_until, at, result, detail, answer,
				request_ids, logged_in, sess, sess_ct, sess_expires_at, leased_at)
	), account AS (
		UPDATE accountpool.accounts a SET
			lease_id = NULL, leased_by = NULL, lease_expires_at = NULL,
			consecutive_failures = r.failures, cooldown_until = r.cooldown_until,
			quarantine_until = r.quarantine_until, updated_at = r.at,
			session_ciphertext = CASE WHEN NOT a.active THEN NULL
				WHEN r.sess AND (r.sess_ct IS NULL OR coalesce(a.password_changed_at <= r.leased_at, true)) THEN r.sess_ct
				ELSE a.session_ciphertext END,
			session_expires_at = CASE WHEN NOT a.active THEN NULL
				WHEN r.sess AND (r.sess_ct IS NULL OR coalesce(a.password_changed_at <= r.leased_at, true)) THEN r.sess_expires_at
				ELSE a.session_expires_at END
		FROM r
		WHERE a.id = r.id AND a.xmin::text = r.version AND a.lease_id = r.lease_id
		RETURNING r.lease_id
	), usage AS (
		UPDATE accountpool.usage_log u SET
			result = r.result, detail = r.detail, released_at = r.at, release_answer = r.answer::jsonb, logged_in = r.logged_in,
			request_ids = CASE WHEN r.request_ids <> '[]' THEN ARRAY(SELECT jsonb_array_elements_text(r.request_ids::jsonb))
				ELSE u.request_ids END
		FROM r JOIN account USING (lease_id)
		WHERE u.lease_id = r.lease_id
	)
	SELECT lease_id::text, pg_notify($17, '') FROM account`

// releaseStatement is releaseSQL's arguments for the leases of one batch,
// and the function that reads its answer (rows, or err) into out.
func releaseStatement(items []fastRelease, out []releaseAnswer) ([]any, func(pgx.Rows, error)) {
	n := len(items)
	var (
		ids                      = make([]int64, n)
		versions, leaseIDs       = make([]string, n), make([]string, n)
		failures                 = make([]int, n)
		cooldowns, quarantines   = make([]*time.Time, n), make([]*time.Time, n)
		ats                      = make([]time.Time, n)
		results, details, reqIDs = make([]string, n), make([]string, n), make([]string, n)
		answers                  = make([]string, n)
		loggedIn, sess           = make([]bool, n), make([]bool, n)
		sessCT                   = make([][]byte, n)
		sessExpires, leasedAts   = make([]*time.Time, n), make([]*time.Time, n)
		seen                     = map[string]bool{}
		batchIdx                 []int
	)
	k := 0
	for i, it := range items {
		if seen[it.leaseID] {
			// The same lease twice in one batch: the second goes the
			// unbatched way, which sees how the first ended.
			continue
		}
		seen[it.leaseID] = true
		ids[k], versions[k], leaseIDs[k] = it.account.ID, it.version, it.leaseID
		failures[k], cooldowns[k], quarantines[k] = it.account.ConsecutiveFailures, it.account.CooldownUntil, it.account.QuarantineUntil
		ats[k], results[k], details[k] = it.at, string(it.outcome), it.detail
		ids2, _ := json.Marshal(nonNil(it.reqIDs)) // a []string always encodes
		reqIDs[k], answers[k], loggedIn[k] = string(ids2), string(it.answer), it.loggedIn
		if it.sess != nil {
			sess[k], sessCT[k], sessExpires[k], leasedAts[k] = true, it.sess.ct, it.sess.expiresAt, &it.sess.leasedAt
		}
		batchIdx = append(batchIdx, i)
		k++
	}
	args := []any{ids[:k], versions[:k], leaseIDs[:k], failures[:k], cooldowns[:k], quarantines[:k],
		ats[:k], results[:k], details[:k], answers[:k], reqIDs[:k], loggedIn[:k], sess[:k], sessCT[:k], sessExpires[:k], leasedAts[:k],
		FreeChannel}
	read := func(rows pgx.Rows, err error) {
		fail := func(err error) {
			for _, i := range batchIdx {
				out[i].err = fmt.Errorf("end lease: %w", err)
			}
		}
		if err != nil {
			fail(err)
			return
		}
		defer rows.Close()
		ended := map[string]bool{}
		for rows.Next() {
			var id string
			var notified any
			if err := rows.Scan(&id, &notified); err != nil {
				fail(err)
				return
			}
			ended[id] = true
		}
		if err := rows.Err(); err != nil {
			fail(err)
			return
		}
		for _, i := range batchIdx {
			out[i].ended = ended[items[i].leaseID]
		}
	}
	return args, read
}
