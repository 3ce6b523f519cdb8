package main

import (
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/session"
	"github.com/slotwatch/slotwatch/services/platform/envconfig"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
)

func loader(env map[string]string) *envconfig.Loader {
	return &envconfig.Loader{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
}

// The defaults are the binary contract the demo and the manifests rely on.
func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(loader(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := c.session
	for _, tc := range []struct {
		name string
		got  any
		want any
	}{
		{"LISTEN_ADDR", c.listenAddr, ":50053"},
		{"METRICS_ADDR", c.metricsAddr, ":9093"},
		{"ACCOUNTPOOL_ADDR", c.accountPoolAddr, "localhost:50051"},
		{"REQUESTS_ADDR", c.requestsAddr, "localhost:50052"},
		{"CHROME_PATH", c.chromePath, "/usr/bin/chromium"},
		{"CHECKER_BROWSER_RECYCLE", c.recycle, 100},
		{"MAX_CONCURRENT_MISSIONS", s.MaxConcurrent, 5},
		{"CHECKER_SESSION_INTERVAL", s.Interval, 10 * time.Second},
		{"CHECKER_CLAIM_TTL", s.ClaimTTL, 5 * time.Minute},
		{"CHECKER_LEASE_TTL", s.LeaseTTL, 2 * time.Minute},
		{"CHECKER_LOOP", c.loop, true},
		{"CHECKER_DRAIN_TIMEOUT", c.drain, time.Minute},
		{"PORTAL_PROFILE_FILE", c.profile.Name, "portalsim"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s default = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if s.CheckerID == "" || !strings.Contains(s.CheckerID, "-") {
		t.Errorf("CHECKER_ID default = %q, want hostname-pid", s.CheckerID)
	}
	if session.DefaultMaxConcurrent != 5 {
		t.Errorf("session default concurrency %d", session.DefaultMaxConcurrent)
	}
}

func TestBadSettingsAreNamedAllAtOnce(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(loader(map[string]string{
		"CHECKER_CLAIM_TTL": "1s", "CHECKER_LEASE_TTL": "2h", "CHECKER_LOOP": "sometimes",
		"MAX_CONCURRENT_MISSIONS": "0", "PORTAL_BASE_URL": "ftp://x", "TLS_INSECURE": "perhaps",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"CHECKER_CLAIM_TTL", "CHECKER_LEASE_TTL", "CHECKER_LOOP", "MAX_CONCURRENT_MISSIONS", "PORTAL_BASE_URL", "TLS_INSECURE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// TestRefusesPlaintextToARemoteService: the Checker sends its token, and
// receives portal passwords, over these connections.
func TestRefusesPlaintextToARemoteService(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{
		"LISTEN_ADDR": "127.0.0.1:0", "METRICS_ADDR": "127.0.0.1:0", "AUTH_TOKENS_FILE": "", "AUTH_TOKEN_FILE": "", "TLS_CA_FILE": "", "TLS_INSECURE": "",
		"ACCOUNTPOOL_ADDR": "accountpool.slotwatch.svc:50051", "REQUESTS_ADDR": "localhost:50052",
	}, "want a refusal naming the address, TLS_CA_FILE and TLS_INSECURE", "ACCOUNTPOOL_ADDR=accountpool.slotwatch.svc:50051", "TLS_CA_FILE", "TLS_INSECURE=true")
}
