// Package legacy reads the old application's 1:1 schema, where each row of
// `users` was both a portal login and the person a request was for, with
// their details in `personal_details`. It is the source of `slotctl
// import-legacy` (the seed's "Option A" migration); all its SQL is here.
package legacy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is one row of users with its personal details.
type User struct {
	// ID is users.id as text (an integer or a UUID in the old schema).
	ID       string
	Email    string
	Password string
	Active   bool
	// HasDetails is whether a personal_details row exists for the user.
	HasDetails bool
	// Phone is personal_details.mobile_number.
	Phone string
	// FullName is personal_details.full_name, or first_name and last_name.
	FullName       string
	PassportNumber string
	Nationality    string
	// DateOfBirth is "YYYY-MM-DD" when the column is a date.
	DateOfBirth string
}

// ErrNoUsersTable means the database does not look like the old schema.
var ErrNoUsersTable = errors.New("no users table with email and password columns: is --from the old application's database?")

// Read returns every user, ordered by id. The old schemas varied: users
// must have email and password; active and each personal_details column are
// used when they exist.
func Read(ctx context.Context, conn *pgx.Conn) ([]User, error) {
	userCols, err := columns(ctx, conn, "users")
	if err != nil {
		return nil, err
	}
	if !userCols["email"] || !userCols["password"] || !userCols["id"] {
		return nil, ErrNoUsersTable
	}
	detailCols, err := columns(ctx, conn, "personal_details")
	if err != nil {
		return nil, err
	}
	hasDetails := detailCols["user_id"]

	text := func(table string, cols map[string]bool, name string) string {
		if !cols[name] {
			return "''"
		}
		return fmt.Sprintf("coalesce(%s.%s::text, '')", table, pgx.Identifier{name}.Sanitize())
	}
	active := "true"
	if userCols["active"] {
		active = "coalesce(u.active, false)"
	}
	sel := []string{"u.id::text", "coalesce(u.email, '')", "coalesce(u.password, '')", active}
	from := "users u"
	if hasDetails {
		sel = append(sel, "pd.user_id IS NOT NULL",
			text("pd", detailCols, "mobile_number"),
			text("pd", detailCols, "full_name"),
			text("pd", detailCols, "first_name"),
			text("pd", detailCols, "last_name"),
			text("pd", detailCols, "passport_number"),
			text("pd", detailCols, "nationality"),
			text("pd", detailCols, "date_of_birth"),
		)
		// One details row per user even if the old table holds several.
		from += " LEFT JOIN LATERAL (SELECT * FROM personal_details d WHERE d.user_id = u.id LIMIT 1) pd ON true"
	} else {
		sel = append(sel, "false", "''", "''", "''", "''", "''", "''", "''")
	}
	rows, err := conn.Query(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+from+" ORDER BY u.id")
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	var users []User
	for rows.Next() {
		var (
			u                          User
			fullName, first, last, dob string
		)
		if err := rows.Scan(&u.ID, &u.Email, &u.Password, &u.Active, &u.HasDetails, &u.Phone, &fullName, &first, &last,
			&u.PassportNumber, &u.Nationality, &dob); err != nil {
			return nil, fmt.Errorf("read users: %w", err)
		}
		u.Email = strings.TrimSpace(u.Email)
		u.FullName = strings.TrimSpace(fullName)
		if u.FullName == "" {
			u.FullName = strings.TrimSpace(strings.TrimSpace(first) + " " + strings.TrimSpace(last))
		}
		u.Phone = strings.TrimSpace(u.Phone)
		u.PassportNumber = strings.TrimSpace(u.PassportNumber)
		u.Nationality = strings.TrimSpace(u.Nationality)
		u.DateOfBirth = dateOnly(dob)
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	return users, nil
}

// dateOnly is the date of a timestamp column, which reads as "YYYY-MM-DD
// hh:mm:ss"; any other text is kept (trimmed) for the import to judge,
// never cut in the middle of a character.
func dateOnly(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > len(time.DateOnly) {
		if _, err := time.Parse(time.DateOnly, s[:len(time.DateOnly)]); err == nil {
			return s[:len(time.DateOnly)]
		}
	}
	return s
}

// columns returns the columns of a table on the search path (none if it
// does not exist).
func columns(ctx context.Context, conn *pgx.Conn, table string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, `
		SELECT a.attname FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, table)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", table, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", table, err)
	}
	cols := map[string]bool{}
	for _, n := range names {
		cols[n] = true
	}
	return cols, nil
}
