package session

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLeaseLogValueHidesThePassword(t *testing.T) {
	t.Parallel()
	const password = "hunter2-Secret!"
	l := Lease{ID: "lease-1", FencingToken: 7, AccountID: 42, Email: "a@example.com", Password: password,
		ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("leased", "lease", l, "ptr", &l)
	out := buf.String()
	if strings.Contains(out, password) {
		t.Fatalf("the log holds the password: %s", out)
	}
	for _, want := range []string{`"id":"lease-1"`, `"account_id":42`, `"email":"a@example.com"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s: %s", want, out)
		}
	}
}
