package legacy

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzRead: whatever text the old tables hold (every column text, as some
// old schemas had it), Read returns each user once with trimmed fields
// that are valid UTF-8, the date of a date of birth that starts with one, and the
// name from full_name or else first and last name.
func FuzzRead(f *testing.F) {
	conn := connect(f, `
		CREATE TABLE users (id int PRIMARY KEY, email text, password text, active boolean);
		CREATE TABLE personal_details (user_id int, full_name text, first_name text, last_name text,
			mobile_number text, passport_number text, nationality text, date_of_birth text);`)
	f.Add(" ann@example.com ", "pw", "", " Ann ", "Smith", " +4411 ", "X123", "gb", "1980-02-03 00:00:00")
	f.Add("b@example.com", "", "Bob Full", "Bob", "Other", "", "", "", "03/02/1980 é")
	f.Add("", "", "", "", "", "", "", "", "1980-02-03日本")
	f.Fuzz(func(t *testing.T, email, password, fullName, first, last, phone, passport, nationality, dob string) {
		for _, s := range []string{email, password, fullName, first, last, phone, passport, nationality, dob} {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Skip("Postgres text holds valid UTF-8 without NUL only")
			}
		}
		ctx := context.Background()
		if _, err := conn.Exec(ctx, `TRUNCATE users, personal_details`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO users VALUES (1, $1, $2, NULL), (2, $1, NULL, true)`, email, password); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO personal_details VALUES (1, nullif($1, ''), $2, $3, $4, $5, $6, $7)`,
			fullName, first, last, phone, passport, nationality, dob); err != nil {
			t.Fatal(err)
		}
		users, err := Read(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 2 || users[0].ID != "1" || users[1].ID != "2" {
			t.Fatalf("users: %+v", users)
		}
		u := users[0]
		for name, v := range map[string]string{"email": u.Email, "full name": u.FullName, "phone": u.Phone,
			"passport": u.PassportNumber, "nationality": u.Nationality, "date of birth": u.DateOfBirth} {
			if !utf8.ValidString(v) || v != strings.TrimSpace(v) {
				t.Fatalf("%s %q is not trimmed valid UTF-8", name, v)
			}
		}
		if u.Password != password || u.Active || !u.HasDetails || users[1].HasDetails || !users[1].Active {
			t.Fatalf("user: %+v", u)
		}
		if d := strings.TrimSpace(dob); len(d) >= 10 {
			if _, err := time.Parse(time.DateOnly, d[:10]); err == nil && u.DateOfBirth != d[:10] {
				t.Fatalf("date of birth %q read as %q", dob, u.DateOfBirth)
			}
		}
		want := strings.TrimSpace(fullName)
		if want == "" {
			want = strings.TrimSpace(strings.TrimSpace(first) + " " + strings.TrimSpace(last))
		}
		if u.FullName != want {
			t.Fatalf("full name %q, want %q", u.FullName, want)
		}
	})
}
