package main

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// These tests set environment variables, so they do not run in parallel.

func TestRefusesToStartWithoutKeyset(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "ENCRYPTION_KEYSET_FILE": ""},
		"want one naming ENCRYPTION_KEYSET_FILE and how to make a keyset", "ENCRYPTION_KEYSET_FILE", "requests keyset generate")
}

func TestRejectsBadSettingsAllAtOnce(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "ENCRYPTION_KEYSET_FILE": "/nonexistent",
		"REQUESTS_CHECK_INTERVAL": "soon", "REQUESTS_CLAIM_TTL": "-1m", "REQUESTS_WATCH_PER_CALLER": "0", "REQUESTS_WATCH_MAX": "many",
		"REQUESTS_RETENTION": "3 months"},
		"want every setting named", "REQUESTS_CHECK_INTERVAL", "REQUESTS_CLAIM_TTL", "REQUESTS_WATCH_PER_CALLER", "REQUESTS_WATCH_MAX", "REQUESTS_RETENTION")
	// The edge's settings (rate limit, gRPC limits) with them, not on the
	// next start.
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "ENCRYPTION_KEYSET_FILE": "/nonexistent",
		"REQUESTS_CHECK_INTERVAL": "soon", "RATE_LIMIT_RPS": "fifty", "GRPC_MAX_CONNS_PER_PEER": "0"},
		"want every setting named", "REQUESTS_CHECK_INTERVAL", "RATE_LIMIT_RPS", "GRPC_MAX_CONNS_PER_PEER")
}

func TestRejectsARetentionShorterThanAClaim(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "ENCRYPTION_KEYSET_FILE": "/nonexistent",
		"REQUESTS_RETENTION": "30m"},
		"want REQUESTS_RETENTION refused", "REQUESTS_RETENTION=30m", "0 (keep everything) or at least 1h")
}

func TestRejectsAClaimTTLBelowASecond(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "ENCRYPTION_KEYSET_FILE": "/nonexistent",
		"REQUESTS_CLAIM_TTL": "500ms"},
		"want REQUESTS_CLAIM_TTL refused", "REQUESTS_CLAIM_TTL=500ms")
}

func TestKeysetGeneratePrintsAUsableKeyset(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"keyset", "generate"}, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Parse(out.Bytes()); err != nil {
		t.Fatalf("printed keyset does not parse: %v", err)
	}
}

func TestMigrateDownUpAndStatus(t *testing.T) {
	t.Setenv("DATABASE_URL", pgtest.NewURL(t, migrations.Set))
	ctx := context.Background()
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "status"}, "00012_check_slots.sql"},
		{[]string{"migrate", "down"}, "reverted 00012_check_slots.sql"},
		{[]string{"migrate", "down"}, "reverted 00011_pause_level_until.sql"},
		{[]string{"migrate", "down"}, "reverted 00010_maintenance_outcome.sql"},
		{[]string{"migrate", "down"}, "reverted 00009_slot_caps.sql"},
		{[]string{"migrate", "down"}, "reverted 00008_retention_indexes.sql"},
		{[]string{"migrate", "down"}, "reverted 00007_retention.sql"},
		{[]string{"migrate", "down"}, "reverted 00006_slot_lifecycle.sql"},
		{[]string{"migrate", "down"}, "reverted 00005_claims_portal_index.sql"},
		{[]string{"migrate", "down"}, "reverted 00004_portals.sql"},
		{[]string{"migrate", "down"}, "reverted 00003_mission_settings.sql"},
		{[]string{"migrate", "up"}, "applied 00012_check_slots.sql"},
		{[]string{"migrate", "up"}, "no pending migrations"},
	} {
		var out bytes.Buffer
		if err := run(ctx, step.args, &out); err != nil {
			t.Fatalf("%v: %v", step.args, err)
		}
		if !strings.Contains(out.String(), step.want) {
			t.Fatalf("%v printed %q, want %q", step.args, out.String(), step.want)
		}
	}
	if err := run(ctx, []string{"migrate", "sideways"}, &bytes.Buffer{}); err == nil {
		t.Fatal("unknown migrate command accepted")
	}
}

// served is the serve path of the binary, running for a test.
type served struct {
	*grpcservertest.Serving
	grpcAddr, httpAddr, metricsAddr string
}

// serve runs the serve path with a new database and keyset on free
// loopback ports, extra added to its environment (TLS, tokens).
func serve(t *testing.T, extra map[string]string) served {
	t.Helper()
	s := served{grpcAddr: grpcservertest.FreeAddr(t), httpAddr: grpcservertest.FreeAddr(t), metricsAddr: grpcservertest.FreeAddr(t)}
	env := map[string]string{
		"DATABASE_URL":           pgtest.NewURL(t, migrations.Set),
		"ENCRYPTION_KEYSET_FILE": grpcservertest.KeysetFile(t),
		"LISTEN_ADDR":            s.grpcAddr,
		"METRICS_ADDR":           s.metricsAddr,
		"HTTP_ADDR":              s.httpAddr,
		"LOG_LEVEL":              "error",
	}
	maps.Copy(env, extra)
	grpcservertest.Setenv(t, env)
	s.Serving = grpcservertest.Serve(t, run)
	return s
}

func TestServesGRPCAndGatewayThenStopsGracefully(t *testing.T) {
	srv := serve(t, nil)
	grpcservertest.DialServing(t, srv.grpcAddr)
	resp, err := http.Get("http://" + srv.httpAddr + "/v1/applicants")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/applicants = %d", resp.StatusCode)
	}

	if err := srv.Stop(t); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}

func TestRefusesAnExposedGatewayWithoutAuth(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
		"ENCRYPTION_KEYSET_FILE": grpcservertest.KeysetFile(t), "AUTH_TOKENS_FILE": "", "LISTEN_ADDR": "127.0.0.1:0", "HTTP_ADDR": ":8082"},
		"want a refusal naming HTTP_ADDR", ":8082 is not a loopback address")
}

// TestServesWithAuthAndTLS runs the binary with a tokens file and a
// certificate: gRPC and the JSON gateway both speak TLS and want a token,
// the gateway reaches gRPC through its pinned self-connection (only its
// OpenAPI document is public), and /metrics shows the domain metrics.
func TestServesWithAuthAndTLS(t *testing.T) {
	certFile, keyFile := authtest.SelfSigned(t, t.TempDir(), "requests")
	srv := serve(t, map[string]string{"AUTH_TOKENS_FILE": authtest.TokensFile(t), "TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile})
	grpcAddr, httpAddr, metricsAddr := srv.grpcAddr, srv.httpAddr, srv.metricsAddr

	opts, err := auth.DialOptions(grpcAddr, auth.ClientConfig{TokenFile: authtest.WriteFile(t, "token", authtest.AdminToken), CAFile: certFile})
	if err != nil {
		t.Fatal(err)
	}
	conn := grpcservertest.DialServing(t, grpcAddr, opts...)
	hctx, hcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer hcancel()
	c := requestsv1.NewRequestsServiceClient(conn)
	if _, err := c.CreateApplicant(hctx, &requestsv1.CreateApplicantRequest{FullName: "Ada Lovelace", Email: "ada@example.com"}); err != nil {
		t.Fatalf("create over TLS as admin: %v", err)
	}

	tlsCfg, err := auth.ClientTLS(certFile)
	if err != nil {
		t.Fatal(err)
	}
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	get := func(path, tok string) int {
		req, err := http.NewRequestWithContext(hctx, "GET", "https://"+httpAddr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := https.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("/v1/applicants", ""); got != http.StatusUnauthorized {
		t.Fatalf("gateway without a token: %d", got)
	}
	if got := get("/v1/applicants", authtest.ReaderToken); got != http.StatusOK {
		t.Fatalf("gateway as reader: %d", got)
	}
	if got := get("/openapi.json", ""); got != http.StatusOK {
		t.Fatalf("GET /openapi.json without a token: %d, want 200", got)
	}

	grpcservertest.WantMetrics(t, metricsAddr, `slotwatch_requests{status="pending"} 0`, "slotwatch_requests_watchers 0", "slotwatch_requests_claims_total 0", "pgxpool_max_conns ")
	if err := srv.Stop(t); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}
