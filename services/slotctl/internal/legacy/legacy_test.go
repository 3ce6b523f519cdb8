package legacy

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/slotwatch/slotwatch/services/platform/pgtest"
)

func connect(t testing.TB, schema string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if schema != "" {
		if _, err := conn.Exec(ctx, schema); err != nil {
			t.Fatal(err)
		}
	}
	return conn
}

func TestRead(t *testing.T) {
	t.Parallel()

	t.Run("VariantLayoutWithFullNameAndNoActiveColumn", func(t *testing.T) {
		t.Parallel()
		conn := connect(t, `
			CREATE TABLE users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text, password text);
			CREATE TABLE personal_details (user_id uuid REFERENCES users (id), full_name text, mobile_number text, date_of_birth timestamp);
			WITH u AS (INSERT INTO users (email, password) VALUES (' ann@example.com ', 'pw') RETURNING id)
			INSERT INTO personal_details SELECT id, 'Ann Smith', ' +4411 ', '1980-02-03 00:00' FROM u;
			INSERT INTO users (email, password) VALUES ('noname@example.com', NULL);`)
		users, err := Read(context.Background(), conn)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 2 {
			t.Fatalf("got %d users", len(users))
		}
		var ann, other User
		for _, u := range users {
			if u.Email == "ann@example.com" {
				ann = u
			} else {
				other = u
			}
		}
		if !ann.Active || !ann.HasDetails || ann.FullName != "Ann Smith" || ann.Phone != "+4411" || ann.DateOfBirth != "1980-02-03" || ann.Password != "pw" {
			t.Errorf("ann: %+v", ann)
		}
		if other.HasDetails || other.Password != "" || !other.Active {
			t.Errorf("user without details: %+v", other)
		}
	})

	t.Run("UsersOnly", func(t *testing.T) {
		t.Parallel()
		conn := connect(t, `CREATE TABLE users (id int PRIMARY KEY, email text, password text, active boolean);
			INSERT INTO users VALUES (1, 'a@example.com', 'pw', NULL), (2, 'b@example.com', 'pw', true);`)
		users, err := Read(context.Background(), conn)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 2 || users[0].Active || !users[1].Active || users[0].HasDetails {
			t.Errorf("users: %+v", users)
		}
	})

	t.Run("NotTheOldSchema", func(t *testing.T) {
		t.Parallel()
		if _, err := Read(context.Background(), connect(t, "")); !errors.Is(err, ErrNoUsersTable) {
			t.Errorf("err = %v, want ErrNoUsersTable", err)
		}
	})
}
