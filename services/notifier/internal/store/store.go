// Package store is the Notifier's Postgres adapter: every SQL statement of
// the service lives here. pgx's errors become the domain's sentinels at
// this boundary (pgx.ErrNoRows → domain.ErrNotFound).
package store

import (
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store runs the service's SQL on a pool.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Position is a keyset-pagination position of contacts and subscriptions:
// the last row served.
type Position struct {
	CreatedAt time.Time `json:"t"`
	ID        uuid.UUID `json:"id"`
}

// Secrets are a recipient's webhook secrets as stored: Tink ciphertexts
// bound to the row (see SecretAD). Prev is set during a rotation.
type Secrets struct {
	Current []byte
	Prev    []byte
}

// Table names the recipient tables, for SecretAD and Secrets.
type Table string

// The recipient tables.
const (
	Contacts      Table = "contacts"
	Subscriptions Table = "subscriptions"
)

// SecretAD is the associated data a recipient's secrets are sealed with:
// a ciphertext copied to another row, or the other table, does not open.
func SecretAD(t Table, id uuid.UUID) []byte {
	return []byte("notifier." + string(t) + "/" + id.String() + "/webhook_secret")
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound
	}
	return err
}
