package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
)

// Consumer is the right to follow one event stream: a session advisory
// lock held on one connection, so one replica at a time consumes; the
// others wait for it to be free. The lock goes with the connection, so a
// replica that dies (or loses its connection) frees it at once. Every
// write of the consumer runs on that connection: a consumer that lost its
// lock cannot write.
type Consumer struct {
	conn   *pgxpool.Conn
	stream string
}

// ErrLocked: another replica consumes the stream.
var ErrLocked = errors.New("another replica consumes the stream")

func lockKey(stream string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("slotwatch-notifier-consumer-" + stream))
	return int64(h.Sum64() >> 1)
}

// AcquireConsumer takes the consumer lock of stream, or returns ErrLocked.
func (s *Store) AcquireConsumer(ctx context.Context, stream string, now time.Time) (*Consumer, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer connection: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(stream)).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("consumer lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, ErrLocked
	}
	c := &Consumer{conn: conn, stream: stream}
	if _, err := conn.Exec(ctx, `INSERT INTO notifier.cursors (stream, cursor, updated_at) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING`, stream, now); err != nil {
		c.Close()
		return nil, fmt.Errorf("cursor row: %w", err)
	}
	return c, nil
}

// Close frees the lock (by closing the connection if unlocking fails).
func (c *Consumer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey(c.stream)); err != nil {
		_ = c.conn.Hijack().Close(ctx)
		return
	}
	c.conn.Release()
}

// Cursor is the cursor of the last event whose deliveries are recorded.
func (c *Consumer) Cursor(ctx context.Context) (int64, error) {
	var cur int64
	err := c.conn.QueryRow(ctx, `SELECT cursor FROM notifier.cursors WHERE stream = $1`, c.stream).Scan(&cur)
	if err != nil {
		return 0, fmt.Errorf("read cursor: %w", err)
	}
	return cur, nil
}

// Record moves the cursor to cursor and inserts the deliveries of the
// events up to it, in one transaction (the outbox). Events at or before
// the stored cursor were recorded already and are skipped; a delivery
// already in the log for its (event, recipient) is left as it is. It
// returns the deliveries it inserted, with their ids.
//
// A delivery with LeaseUntil set is inserted claimed, as Claim leaves it
// (one attempt counted, lease token 1, leased until then), and comes back
// with its recipient's sealed secrets: the consuming replica's delivery
// loop sends it without claiming it (delivery.Loop.Hand). If that replica
// dies first, the lease lapses and any replica's Claim takes it.
func (c *Consumer) Record(ctx context.Context, cursor int64, ds []domain.Delivery, now time.Time) ([]domain.Delivery, error) {
	var out []domain.Delivery
	err := pgx.BeginFunc(ctx, c.conn, func(tx pgx.Tx) error {
		out = nil
		var stored int64
		if err := tx.QueryRow(ctx, `SELECT cursor FROM notifier.cursors WHERE stream = $1 FOR UPDATE`, c.stream).Scan(&stored); err != nil {
			return fmt.Errorf("lock cursor: %w", err)
		}
		if stored >= cursor {
			return nil
		}
		var (
			cols   insertColumns
			byKey  = make(map[recordKey]int, len(ds))
			leased bool
		)
		for i, d := range ds {
			if d.EventCursor <= stored {
				continue
			}
			cols.add(d)
			byKey[recordKey{d.EventCursor, d.RecipientID()}] = i
			leased = leased || !d.LeaseUntil.IsZero()
		}
		if len(byKey) > 0 {
			rows, err := tx.Query(ctx, `WITH ins AS (
					INSERT INTO notifier.deliveries (event_cursor, event_type, event_occurred_at, request_id, contact_id, subscription_id,
						kind, address, subject, body_text, body_html, body_json, lease_until, attempts, lease_token, next_attempt_at, created_at)
					SELECT a.cursor, a.type, a.occurred_at, a.request_id, a.contact_id, a.subscription_id, a.kind, a.address, a.subject,
						a.body_text, a.body_html, a.body_json, a.lease_until,
						CASE WHEN a.lease_until IS NULL THEN 0 ELSE 1 END, CASE WHEN a.lease_until IS NULL THEN 0 ELSE 1 END, $14, $14
					FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::uuid[], $5::uuid[], $6::uuid[], $7::text[], $8::text[],
						$9::text[], $10::text[], $11::text[], $12::bytea[], $13::timestamptz[])
						AS a(cursor, type, occurred_at, request_id, contact_id, subscription_id, kind, address, subject, body_text, body_html,
							body_json, lease_until)
					ON CONFLICT (event_cursor, recipient_id) DO NOTHING
					RETURNING id, event_cursor, recipient_id, contact_id, subscription_id, lease_until)
				SELECT ins.id, ins.event_cursor, ins.recipient_id, ins.lease_until IS NOT NULL AND COALESCE(c.id, s.id) IS NULL,
					COALESCE(c.secret_ciphertext, s.secret_ciphertext), COALESCE(c.prev_secret_ciphertext, s.prev_secret_ciphertext)
				FROM ins
				LEFT JOIN notifier.contacts c ON ins.lease_until IS NOT NULL AND c.id = ins.contact_id
				LEFT JOIN notifier.subscriptions s ON ins.lease_until IS NOT NULL AND s.id = ins.subscription_id`,
				cols.cursor, cols.typ, cols.occurredAt, cols.requestID, cols.contactID, cols.subscriptionID, cols.kind, cols.address,
				cols.subject, cols.text, cols.html, cols.json, cols.leaseUntil, now)
			if err != nil {
				return fmt.Errorf("record deliveries: %w", err)
			}
			out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Delivery, error) {
				var (
					k         recordKey
					id        int64
					gone      bool
					cur, prev []byte
				)
				if err := r.Scan(&id, &k.cursor, &k.recipient, &gone, &cur, &prev); err != nil {
					return domain.Delivery{}, err
				}
				d := ds[byKey[k]]
				d.ID, d.State, d.NextAttemptAt, d.CreatedAt, d.RecipientGone = id, domain.Pending, now, now, gone
				if !d.LeaseUntil.IsZero() {
					d.Attempts, d.LeaseToken = 1, 1
					for _, ct := range [][]byte{cur, prev} {
						if ct != nil {
							d.Secrets = append(d.Secrets, ct)
						}
					}
				}
				return d, nil
			})
			if err != nil {
				return fmt.Errorf("record deliveries: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE notifier.cursors SET cursor = $2, updated_at = $3 WHERE stream = $1`, c.stream, cursor, now); err != nil {
			return fmt.Errorf("move cursor: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type recordKey struct {
	cursor    int64
	recipient uuid.UUID
}

// insertColumns are Record's deliveries column by column, for one INSERT
// over unnest.
type insertColumns struct {
	cursor                                  []int64
	typ, kind, address, subject, text, html []string
	occurredAt                              []time.Time
	requestID, contactID, subscriptionID    []pgtype.UUID
	json                                    [][]byte
	leaseUntil                              []pgtype.Timestamptz
}

func (c *insertColumns) add(d domain.Delivery) {
	id := func(u uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: u, Valid: u != uuid.Nil} }
	c.cursor = append(c.cursor, d.EventCursor)
	c.typ = append(c.typ, string(d.EventType))
	c.occurredAt = append(c.occurredAt, d.EventOccurredAt)
	// request_id is NOT NULL: an event whose request id did not parse
	// is stored with the nil UUID, as before, not refused with its batch.
	c.requestID = append(c.requestID, pgtype.UUID{Bytes: d.RequestID, Valid: true})
	c.contactID = append(c.contactID, id(d.ContactID))
	c.subscriptionID = append(c.subscriptionID, id(d.SubscriptionID))
	c.kind = append(c.kind, string(d.Kind))
	c.address = append(c.address, d.Address)
	c.subject = append(c.subject, d.Subject)
	c.text = append(c.text, d.Text)
	c.html = append(c.html, d.HTML)
	c.json = append(c.json, d.JSON)
	c.leaseUntil = append(c.leaseUntil, pgtype.Timestamptz{Time: d.LeaseUntil, Valid: !d.LeaseUntil.IsZero()})
}

const deliveryCols = `id, event_cursor, event_type, event_occurred_at, request_id, contact_id, subscription_id, kind, address, subject,
	state, attempts, last_error, next_attempt_at, created_at, delivered_at, lease_token, lease_until`

func scanDelivery(row pgx.Row, withBody bool, extra ...any) (domain.Delivery, error) {
	var (
		d                domain.Delivery
		typ, kind, state string
		contact, sub     *uuid.UUID
		delivered, lease *time.Time
	)
	dest := []any{&d.ID, &d.EventCursor, &typ, &d.EventOccurredAt, &d.RequestID, &contact, &sub, &kind, &d.Address, &d.Subject,
		&state, &d.Attempts, &d.LastError, &d.NextAttemptAt, &d.CreatedAt, &delivered, &d.LeaseToken, &lease}
	if withBody {
		dest = append(dest, &d.Text, &d.HTML, &d.JSON)
	}
	dest = append(dest, extra...)
	if err := row.Scan(dest...); err != nil {
		return d, err
	}
	d.EventType, d.Kind, d.State = domain.EventType(typ), channel.Kind(kind), domain.DeliveryState(state)
	if contact != nil {
		d.ContactID = *contact
	}
	if sub != nil {
		d.SubscriptionID = *sub
	}
	if delivered != nil {
		d.DeliveredAt = *delivered
	}
	if lease != nil {
		d.LeaseUntil = *lease
	}
	return d, nil
}

// Claim takes up to limit due deliveries for one attempt each: their lease
// runs to leaseUntil, their attempts count one more, and their lease token
// changes (MarkDelivered and MarkFailed must present it). Rows another
// replica is claiming are skipped, not waited for; a delivery whose lease
// lapsed (its replica died mid-attempt) is due again.
// Only deliveries of kinds are claimed: the channels this replica can send.
func (s *Store) Claim(ctx context.Context, now, leaseUntil time.Time, kinds []string, limit int) ([]domain.Delivery, error) {
	// The recipient's address and sealed secrets come with each delivery,
	// read as they are now, so a change of address or a rotation applies
	// to retries too.
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT id FROM notifier.deliveries
			WHERE state = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) AND kind = ANY($4)
			ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED),
		claimed AS (
			UPDATE notifier.deliveries d SET lease_until = $2, lease_token = d.lease_token + 1, attempts = d.attempts + 1,
				address = `+currentAddress+`
			FROM due WHERE d.id = due.id
			RETURNING `+prefixed("d.", deliveryCols)+`, d.body_text, d.body_html, d.body_json)
		SELECT claimed.*, COALESCE(c.id, s.id) IS NULL,
			COALESCE(c.secret_ciphertext, s.secret_ciphertext), COALESCE(c.prev_secret_ciphertext, s.prev_secret_ciphertext)
		FROM claimed
		LEFT JOIN notifier.contacts c ON c.id = claimed.contact_id
		LEFT JOIN notifier.subscriptions s ON s.id = claimed.subscription_id
		ORDER BY claimed.next_attempt_at, claimed.id`, now, leaseUntil, limit, kinds)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Delivery, error) {
		var (
			cur, prev []byte
			gone      bool
		)
		d, err := scanDelivery(r, true, &gone, &cur, &prev)
		d.RecipientGone = gone
		for _, ct := range [][]byte{cur, prev} {
			if ct != nil {
				d.Secrets = append(d.Secrets, ct)
			}
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return out, nil
}

// currentAddress is, in an UPDATE of notifier.deliveries d, the address of
// d's recipient as it is now: an attempt goes where the contact or
// subscription says today (UpdateContact on a DEAD delivery, then
// RetryDelivery), and the log shows where. A deleted recipient's
// deliveries keep the address they had.
const currentAddress = `COALESCE((SELECT c.address FROM notifier.contacts c WHERE c.id = d.contact_id),
	(SELECT s.address FROM notifier.subscriptions s WHERE s.id = d.subscription_id), d.address)`

// MarkDelivered records that the receiver accepted d. It says false when
// the attempt no longer holds d (its lease lapsed and another took it).
func (s *Store) MarkDelivered(ctx context.Context, d domain.Delivery, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE notifier.deliveries SET state = 'delivered', delivered_at = $3, lease_until = NULL, last_error = ''
		WHERE id = $1 AND lease_token = $2 AND state = 'pending'`, d.ID, d.LeaseToken, now)
	if err != nil {
		return false, fmt.Errorf("mark delivered: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// MarkDeliveredBatch is MarkDelivered for many attempts in one statement;
// it returns how many still held their delivery.
func (s *Store) MarkDeliveredBatch(ctx context.Context, ds []domain.Delivery, now time.Time) (int, error) {
	ids, tokens := make([]int64, len(ds)), make([]int64, len(ds))
	for i, d := range ds {
		ids[i], tokens[i] = d.ID, d.LeaseToken
	}
	tag, err := s.pool.Exec(ctx, `UPDATE notifier.deliveries d SET state = 'delivered', delivered_at = $3, lease_until = NULL, last_error = ''
		FROM unnest($1::bigint[], $2::bigint[]) AS a(id, token)
		WHERE d.id = a.id AND d.lease_token = a.token AND d.state = 'pending'`, ids, tokens, now)
	if err != nil {
		return 0, fmt.Errorf("mark delivered: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// MarkFailed records a failed attempt: DEAD, or PENDING again from next.
func (s *Store) MarkFailed(ctx context.Context, d domain.Delivery, dead bool, next time.Time, reason string) (bool, error) {
	state := domain.Pending
	if dead {
		state = domain.Dead
	}
	tag, err := s.pool.Exec(ctx, `UPDATE notifier.deliveries SET state = $3, next_attempt_at = $4, last_error = $5, lease_until = NULL
		WHERE id = $1 AND lease_token = $2 AND state = 'pending'`, d.ID, d.LeaseToken, string(state), next, reason)
	if err != nil {
		return false, fmt.Errorf("mark failed: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Extend moves the lease of d's attempt to until, for a send that would
// otherwise be cut short (domain.Delivery.LeaseUntil is the caller's to
// move). It says false when the attempt no longer holds d.
func (s *Store) Extend(ctx context.Context, d domain.Delivery, until time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE notifier.deliveries SET lease_until = $3
		WHERE id = $1 AND lease_token = $2 AND state = 'pending'`, d.ID, d.LeaseToken, until)
	if err != nil {
		return false, fmt.Errorf("extend delivery lease: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Defer gives back an attempt that sent nothing (its channel's turn came
// after the send's deadline): the delivery is due again at next, its
// attempt not counted, with reason as its last error. It says false when
// the attempt no longer holds d.
func (s *Store) Defer(ctx context.Context, d domain.Delivery, next time.Time, reason string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE notifier.deliveries SET attempts = attempts - 1, next_attempt_at = $3, last_error = $4, lease_until = NULL
		WHERE id = $1 AND lease_token = $2 AND state = 'pending'`, d.ID, d.LeaseToken, next, reason)
	if err != nil {
		return false, fmt.Errorf("defer delivery: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Release gives back attempts that never started (their replica is
// stopping): each delivery is due again at once, its attempt not counted,
// for any replica to claim. A delivery whose lease another attempt took
// is left as it is.
func (s *Store) Release(ctx context.Context, ds []domain.Delivery) error {
	ids, tokens := make([]int64, len(ds)), make([]int64, len(ds))
	for i, d := range ds {
		ids[i], tokens[i] = d.ID, d.LeaseToken
	}
	_, err := s.pool.Exec(ctx, `UPDATE notifier.deliveries d SET lease_until = NULL, attempts = d.attempts - 1
		FROM unnest($1::bigint[], $2::bigint[]) AS a(id, token)
		WHERE d.id = a.id AND d.lease_token = a.token AND d.state = 'pending'`, ids, tokens)
	if err != nil {
		return fmt.Errorf("release deliveries: %w", err)
	}
	return nil
}

// DeliveryFilter narrows ListDeliveries; zero fields match all.
type DeliveryFilter struct {
	State          domain.DeliveryState
	ContactID      uuid.UUID
	SubscriptionID uuid.UUID
}

// ListDeliveries returns up to limit deliveries with ids below before (0:
// from the newest), newest first, and whether more follow.
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter, before int64, limit int) ([]domain.Delivery, bool, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryCols+` FROM notifier.deliveries
		WHERE ($1 = '' OR state = $1) AND ($2::uuid IS NULL OR contact_id = $2) AND ($3::uuid IS NULL OR subscription_id = $3) AND id < $4
		ORDER BY id DESC LIMIT $5`, string(f.State), nullID(f.ContactID), nullID(f.SubscriptionID), before, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Delivery, error) { return scanDelivery(r, false) })
	if err != nil {
		return nil, false, fmt.Errorf("list deliveries: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// RetryDelivery puts a DEAD delivery back in the queue, due at now, its
// attempts counted from zero, to its recipient's address as it is now.
func (s *Store) RetryDelivery(ctx context.Context, id int64, now time.Time) (domain.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `UPDATE notifier.deliveries d SET state = 'pending', attempts = 0, next_attempt_at = $2,
		lease_until = NULL, address = `+currentAddress+`
		WHERE id = $1 AND state = 'dead' RETURNING `+deliveryCols, id, now), false)
	if errors.Is(err, pgx.ErrNoRows) {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM notifier.deliveries WHERE id = $1)`, id).Scan(&exists); err != nil {
			return d, fmt.Errorf("retry delivery: %w", err)
		}
		if exists {
			return d, domain.ErrNotDead
		}
		return d, errNotFound
	}
	if err != nil {
		return d, fmt.Errorf("retry delivery: %w", err)
	}
	return d, nil
}

// CountByState counts deliveries by state (the metrics' gauge).
func (s *Store) CountByState(ctx context.Context) (map[domain.DeliveryState]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM notifier.deliveries GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	defer rows.Close()
	// Every state has its series, at 0 while no delivery is in it.
	out := map[domain.DeliveryState]int{domain.Pending: 0, domain.Delivered: 0, domain.Dead: 0}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[domain.DeliveryState(st)] = n
	}
	return out, rows.Err()
}

func prefixed(p, cols string) string {
	out := make([]byte, 0, len(cols)*2)
	out = append(out, p...)
	for i := 0; i < len(cols); i++ {
		out = append(out, cols[i])
		if cols[i] == ',' {
			j := i + 1
			for j < len(cols) && (cols[j] == ' ' || cols[j] == '\n' || cols[j] == '\t') {
				out = append(out, cols[j])
				j++
			}
			out = append(out, p...)
			i = j - 1
		}
	}
	return string(out)
}
