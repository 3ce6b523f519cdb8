package main

import (
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/notifier/internal/app"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
)

// loader reads the variables of env and nothing else.
func loader(env map[string]string) *envconfig.Loader {
	base := map[string]string{"DATABASE_URL": "postgres://localhost/slotwatch", "ENCRYPTION_KEYSET_FILE": "/run/keyset.json"}
	for k, v := range env {
		base[k] = v
	}
	return &envconfig.Loader{Lookup: func(k string) (string, bool) { v, ok := base[k]; return v, ok }}
}

func TestConcurrencyIsCapped(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(loader(map[string]string{"NOTIFIER_CONCURRENCY": "1024"}))
	if err != nil || c.delivery.Concurrency != 1024 {
		t.Fatalf("1024: %d, %v; want accepted", c.delivery.Concurrency, err)
	}
	_, err = loadConfig(loader(map[string]string{"NOTIFIER_CONCURRENCY": "1000000"}))
	if err == nil || !strings.Contains(err.Error(), "NOTIFIER_CONCURRENCY=1000000: want at most 1024") {
		t.Fatalf("1000000: %v; want an error naming NOTIFIER_CONCURRENCY and the cap", err)
	}
}

func TestRetentionIsReadAsAnAge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  string
		want time.Duration
	}{{"", app.DefaultRetention}, {"30d", 30 * 24 * time.Hour}, {"36h", 36 * time.Hour}, {"0", 0}} {
		env := map[string]string{}
		if tc.env != "" {
			env["NOTIFIER_RETENTION"] = tc.env
		}
		c, err := loadConfig(loader(env))
		if err != nil || c.retention != tc.want {
			t.Errorf("NOTIFIER_RETENTION=%q: %s, %v; want %s", tc.env, c.retention, err, tc.want)
		}
	}
	_, err := loadConfig(loader(map[string]string{"NOTIFIER_RETENTION": "ninety days"}))
	if err == nil || !strings.Contains(err.Error(), "NOTIFIER_RETENTION") || !strings.Contains(err.Error(), "90d") {
		t.Fatalf("ninety days: %v; want an error naming NOTIFIER_RETENTION and the form 90d", err)
	}
}

// TestRefusesEveryBadSettingAtOnce: the edge's settings (rate limit, gRPC
// limits) are named with the Notifier's own, not on the next start.
func TestRefusesEveryBadSettingAtOnce(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "ENCRYPTION_KEYSET_FILE": "/nonexistent",
		"NOTIFIER_CONCURRENCY": "0", "RATE_LIMIT_RPS": "fifty", "GRPC_MAX_CONNS_PER_PEER": "0"},
		"want every setting named", "NOTIFIER_CONCURRENCY", "RATE_LIMIT_RPS", "GRPC_MAX_CONNS_PER_PEER")
}
