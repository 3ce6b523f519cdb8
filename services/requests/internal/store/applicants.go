package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/slotwatch/slotwatch/services/requests/internal/domain"
)

// ApplicantRecord is an applicant as stored: the passport number only as
// ciphertext (nil when none), Applicant.PassportNumber left empty.
type ApplicantRecord struct {
	domain.Applicant
	PassportCiphertext []byte
}

const applicantCols = `id, full_name, email, phone, passport_ciphertext, nationality, date_of_birth, created_at, updated_at`

func scanApplicant(row pgx.Row) (ApplicantRecord, error) {
	var (
		a   ApplicantRecord
		dob pgtype.Date
	)
	err := row.Scan(&a.ID, &a.FullName, &a.Email, &a.Phone, &a.PassportCiphertext, &a.Nationality, &dob, &a.CreatedAt, &a.UpdatedAt)
	if dob.Valid {
		a.DateOfBirth = dob.Time
	}
	return a, err
}

func dateOrNull(t time.Time) pgtype.Date {
	return pgtype.Date{Time: t, Valid: !t.IsZero()}
}

// CreateApplicant inserts a.
func (s *Store) CreateApplicant(ctx context.Context, a ApplicantRecord) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO requests.applicants (`+applicantCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		a.ID, a.FullName, a.Email, a.Phone, a.PassportCiphertext, a.Nationality, dateOrNull(a.DateOfBirth), a.CreatedAt, a.UpdatedAt)
	if err != nil {
		return fmt.Errorf("insert applicant: %w", err)
	}
	return nil
}

// GetApplicant reads one applicant.
func (s *Store) GetApplicant(ctx context.Context, id uuid.UUID) (ApplicantRecord, error) {
	a, err := scanApplicant(s.pool.QueryRow(ctx, `SELECT `+applicantCols+` FROM requests.applicants WHERE id = $1`, id))
	if err != nil {
		return a, fmt.Errorf("get applicant: %w", notFound(err))
	}
	return a, nil
}

// Position is a keyset-pagination position: the last row served.
type Position struct {
	CreatedAt time.Time `json:"t"`
	ID        uuid.UUID `json:"id"`
}

// ListApplicants returns up to limit applicants after pos, oldest first,
// and whether more follow; with ids, only those applicants.
func (s *Store) ListApplicants(ctx context.Context, ids []uuid.UUID, pos *Position, limit int) ([]ApplicantRecord, bool, error) {
	var after Position
	if pos != nil {
		after = *pos
	}
	// A NULL array (no ids) matches every applicant; a zero position is
	// before every row.
	rows, err := s.pool.Query(ctx, `SELECT `+applicantCols+` FROM requests.applicants
		WHERE ($1::uuid[] IS NULL OR id = ANY($1)) AND (created_at, id) > ($2, $3)
		ORDER BY created_at, id LIMIT $4`, ids, after.CreatedAt, after.ID, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list applicants: %w", err)
	}
	defer rows.Close()
	var out []ApplicantRecord
	for rows.Next() {
		a, err := scanApplicant(rows)
		if err != nil {
			return nil, false, fmt.Errorf("list applicants: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list applicants: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// UpdateApplicant reads the applicant under a row lock, lets update change
// it, and writes it back in the same transaction. An error from update
// aborts and is returned as it is.
func (s *Store) UpdateApplicant(ctx context.Context, id uuid.UUID, update func(*ApplicantRecord) error) (ApplicantRecord, error) {
	var a ApplicantRecord
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		a, err = scanApplicant(tx.QueryRow(ctx, `SELECT `+applicantCols+` FROM requests.applicants WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return fmt.Errorf("get applicant: %w", notFound(err))
		}
		if err := update(&a); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE requests.applicants SET full_name = $2, email = $3, phone = $4,
			passport_ciphertext = $5, nationality = $6, date_of_birth = $7, updated_at = $8 WHERE id = $1`,
			a.ID, a.FullName, a.Email, a.Phone, a.PassportCiphertext, a.Nationality, dateOrNull(a.DateOfBirth), a.UpdatedAt)
		if err != nil {
			return fmt.Errorf("update applicant: %w", err)
		}
		return nil
	})
	return a, err
}

// DeleteApplicant removes the applicant and cancels their PENDING requests
// (with a cancelled event each), in one transaction. It returns how many
// requests it cancelled.
func (s *Store) DeleteApplicant(ctx context.Context, id uuid.UUID, now time.Time) (int, error) {
	var cancelled []domain.Request
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The row lock makes a concurrent CreateAppointmentRequest for this
		// applicant either commit before the cancel below (and be cancelled)
		// or fail its foreign key after the delete.
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM requests.applicants WHERE id = $1 FOR UPDATE`, id).Scan(&one); err != nil {
			return fmt.Errorf("lock applicant: %w", notFound(err))
		}
		rows, err := tx.Query(ctx, `UPDATE requests.appointment_requests SET status = 'cancelled', updated_at = $2
			WHERE id IN (SELECT id FROM requests.appointment_requests
			             WHERE applicant_id = $1 AND status = 'pending' ORDER BY id FOR UPDATE)
			RETURNING `+requestCols, id, now)
		if err != nil {
			return fmt.Errorf("cancel applicant's requests: %w", err)
		}
		if cancelled, err = collectRequests(rows); err != nil {
			return fmt.Errorf("cancel applicant's requests: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM requests.applicants WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete applicant: %w", err)
		}
		return writeEvents(ctx, tx, domain.EventCancelled, cancelled, now)
	})
	return len(cancelled), err
}
