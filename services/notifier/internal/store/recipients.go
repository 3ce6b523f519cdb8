package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/slotwatch/slotwatch/services/notifier/internal/channel"
	"github.com/slotwatch/slotwatch/services/notifier/internal/domain"
)

var errNotFound = domain.ErrNotFound

const contactCols = `id, applicant_id, kind, address, language, secret_ciphertext IS NOT NULL, prev_secret_ciphertext IS NOT NULL, created_at, updated_at`

func scanContact(row pgx.Row) (domain.Contact, error) {
	var c domain.Contact
	var kind string
	err := row.Scan(&c.ID, &c.ApplicantID, &kind, &c.Address, &c.Language, &c.SecretSet, &c.Rotating, &c.CreatedAt, &c.UpdatedAt)
	c.Kind = channel.Kind(kind)
	return c, err
}

// CreateContact inserts c with its sealed secret (nil for none).
func (s *Store) CreateContact(ctx context.Context, c domain.Contact, secret []byte) (domain.Contact, error) {
	row := s.pool.QueryRow(ctx, `INSERT INTO notifier.contacts (id, applicant_id, kind, address, language, secret_ciphertext, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING `+contactCols,
		c.ID, c.ApplicantID, string(c.Kind), c.Address, c.Language, secret, c.CreatedAt)
	out, err := scanContact(row)
	if err != nil {
		return out, fmt.Errorf("insert contact: %w", err)
	}
	return out, nil
}

// GetContact returns one contact.
func (s *Store) GetContact(ctx context.Context, id uuid.UUID) (domain.Contact, error) {
	c, err := scanContact(s.pool.QueryRow(ctx, `SELECT `+contactCols+` FROM notifier.contacts WHERE id = $1`, id))
	return c, notFound(err)
}

// ListContacts returns up to limit contacts after pos, oldest first (of
// one applicant unless applicant is Nil), and whether more follow.
func (s *Store) ListContacts(ctx context.Context, applicant uuid.UUID, pos *Position, limit int) ([]domain.Contact, bool, error) {
	var after Position
	if pos != nil {
		after = *pos
	}
	rows, err := s.pool.Query(ctx, `SELECT `+contactCols+` FROM notifier.contacts
		WHERE ($1::uuid IS NULL OR applicant_id = $1) AND (created_at, id) > ($2, $3)
		ORDER BY created_at, id LIMIT $4`, nullID(applicant), after.CreatedAt, after.ID, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list contacts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Contact, error) { return scanContact(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list contacts: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// ContactsOf returns every contact of an applicant.
func (s *Store) ContactsOf(ctx context.Context, applicant uuid.UUID) ([]domain.Contact, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+contactCols+` FROM notifier.contacts WHERE applicant_id = $1 ORDER BY created_at, id`, applicant)
	if err != nil {
		return nil, fmt.Errorf("contacts of applicant: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Contact, error) { return scanContact(r) })
}

// UpdateContact applies change to the contact and its secrets under a row
// lock, and stores the result.
func (s *Store) UpdateContact(ctx context.Context, id uuid.UUID, now time.Time, change func(*domain.Contact, *Secrets) error) (domain.Contact, error) {
	var out domain.Contact
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := scanContact(tx.QueryRow(ctx, `SELECT `+contactCols+` FROM notifier.contacts WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return notFound(err)
		}
		var sec Secrets
		if err := tx.QueryRow(ctx, `SELECT secret_ciphertext, prev_secret_ciphertext FROM notifier.contacts WHERE id = $1`, id).Scan(&sec.Current, &sec.Prev); err != nil {
			return err
		}
		if err := change(&c, &sec); err != nil {
			return err
		}
		out, err = scanContact(tx.QueryRow(ctx, `UPDATE notifier.contacts SET address = $2, language = $3, secret_ciphertext = $4,
			prev_secret_ciphertext = $5, updated_at = $6 WHERE id = $1 RETURNING `+contactCols,
			id, c.Address, c.Language, sec.Current, sec.Prev, now))
		return err
	})
	return out, err
}

// DeleteContact deletes a contact; its pending deliveries die.
func (s *Store) DeleteContact(ctx context.Context, id uuid.UUID) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM notifier.contacts WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete contact: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errNotFound
		}
		_, err = tx.Exec(ctx, `UPDATE notifier.deliveries SET state = 'dead', last_error = 'the contact was deleted', lease_until = NULL
			WHERE contact_id = $1 AND state = 'pending'`, id)
		return err
	})
}

const subscriptionCols = `id, mission_codes, event_types, kind, address, language, secret_ciphertext IS NOT NULL, prev_secret_ciphertext IS NOT NULL, created_at, updated_at`

func scanSubscription(row pgx.Row) (domain.Subscription, error) {
	var sub domain.Subscription
	var kind string
	var types []string
	err := row.Scan(&sub.ID, &sub.MissionCodes, &types, &kind, &sub.Address, &sub.Language, &sub.SecretSet, &sub.Rotating, &sub.CreatedAt, &sub.UpdatedAt)
	sub.Kind = channel.Kind(kind)
	for _, t := range types {
		sub.EventTypes = append(sub.EventTypes, domain.EventType(t))
	}
	return sub, err
}

func typesToText(ts []domain.EventType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// CreateSubscription inserts sub with its sealed secret (nil for none).
func (s *Store) CreateSubscription(ctx context.Context, sub domain.Subscription, secret []byte) (domain.Subscription, error) {
	row := s.pool.QueryRow(ctx, `INSERT INTO notifier.subscriptions (id, mission_codes, event_types, kind, address, language, secret_ciphertext, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING `+subscriptionCols,
		sub.ID, sub.MissionCodes, typesToText(sub.EventTypes), string(sub.Kind), sub.Address, sub.Language, secret, sub.CreatedAt)
	out, err := scanSubscription(row)
	if err != nil {
		return out, fmt.Errorf("insert subscription: %w", err)
	}
	return out, nil
}

// GetSubscription returns one subscription.
func (s *Store) GetSubscription(ctx context.Context, id uuid.UUID) (domain.Subscription, error) {
	sub, err := scanSubscription(s.pool.QueryRow(ctx, `SELECT `+subscriptionCols+` FROM notifier.subscriptions WHERE id = $1`, id))
	return sub, notFound(err)
}

// ListSubscriptions returns up to limit subscriptions after pos, oldest
// first (those hearing of mission unless it is empty), and whether more
// follow.
func (s *Store) ListSubscriptions(ctx context.Context, mission string, pos *Position, limit int) ([]domain.Subscription, bool, error) {
	var after Position
	if pos != nil {
		after = *pos
	}
	rows, err := s.pool.Query(ctx, `SELECT `+subscriptionCols+` FROM notifier.subscriptions
		WHERE ($1 = '' OR mission_codes @> ARRAY[$1]) AND (created_at, id) > ($2, $3)
		ORDER BY created_at, id LIMIT $4`, mission, after.CreatedAt, after.ID, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list subscriptions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Subscription, error) { return scanSubscription(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list subscriptions: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// SubscriptionsFor returns the subscriptions hearing of events of type t
// on mission.
func (s *Store) SubscriptionsFor(ctx context.Context, mission string, t domain.EventType) ([]domain.Subscription, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+subscriptionCols+` FROM notifier.subscriptions
		WHERE mission_codes @> ARRAY[$1] AND event_types @> ARRAY[$2] ORDER BY created_at, id`, mission, string(t))
	if err != nil {
		return nil, fmt.Errorf("subscriptions for mission: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Subscription, error) { return scanSubscription(r) })
}

// UpdateSubscription applies change under a row lock and stores the result.
func (s *Store) UpdateSubscription(ctx context.Context, id uuid.UUID, now time.Time, change func(*domain.Subscription, *Secrets) error) (domain.Subscription, error) {
	var out domain.Subscription
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		sub, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionCols+` FROM notifier.subscriptions WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return notFound(err)
		}
		var sec Secrets
		if err := tx.QueryRow(ctx, `SELECT secret_ciphertext, prev_secret_ciphertext FROM notifier.subscriptions WHERE id = $1`, id).Scan(&sec.Current, &sec.Prev); err != nil {
			return err
		}
		if err := change(&sub, &sec); err != nil {
			return err
		}
		out, err = scanSubscription(tx.QueryRow(ctx, `UPDATE notifier.subscriptions SET mission_codes = $2, event_types = $3, address = $4, language = $5,
			secret_ciphertext = $6, prev_secret_ciphertext = $7, updated_at = $8 WHERE id = $1 RETURNING `+subscriptionCols,
			id, sub.MissionCodes, typesToText(sub.EventTypes), sub.Address, sub.Language, sec.Current, sec.Prev, now))
		return err
	})
	return out, err
}

// DeleteSubscription deletes a subscription; its pending deliveries die.
func (s *Store) DeleteSubscription(ctx context.Context, id uuid.UUID) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM notifier.subscriptions WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete subscription: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errNotFound
		}
		_, err = tx.Exec(ctx, `UPDATE notifier.deliveries SET state = 'dead', last_error = 'the subscription was deleted', lease_until = NULL
			WHERE subscription_id = $1 AND state = 'pending'`, id)
		return err
	})
}

func nullID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}
