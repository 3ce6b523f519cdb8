package main

import (
	"strings"
	"testing"

	"github.com/slotwatch/slotwatch/services/platform/envconfig"
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
