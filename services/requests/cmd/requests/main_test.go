package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/auth/authtest"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

// These tests set environment variables, so they do not run in parallel.

func TestRefusesToStartWithoutKeyset(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
	t.Setenv("ENCRYPTION_KEYSET_FILE", "")
	err := run(context.Background(), nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "ENCRYPTION_KEYSET_FILE") || !strings.Contains(err.Error(), "requests keyset generate") {
		t.Fatalf("err = %v, want one naming ENCRYPTION_KEYSET_FILE and how to make a keyset", err)
	}
}

func TestRejectsBadSettingsAllAtOnce(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
	t.Setenv("ENCRYPTION_KEYSET_FILE", "/nonexistent")
	t.Setenv("REQUESTS_CHECK_INTERVAL", "soon")
	t.Setenv("REQUESTS_CLAIM_TTL", "-1m")
	err := run(context.Background(), nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "REQUESTS_CHECK_INTERVAL") || !strings.Contains(err.Error(), "REQUESTS_CLAIM_TTL") {
		t.Fatalf("err = %v, want both settings named", err)
	}
}

func TestRejectsAClaimTTLBelowASecond(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
	t.Setenv("ENCRYPTION_KEYSET_FILE", "/nonexistent")
	t.Setenv("REQUESTS_CLAIM_TTL", "500ms")
	err := run(context.Background(), nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "REQUESTS_CLAIM_TTL=500ms") {
		t.Fatalf("err = %v, want REQUESTS_CLAIM_TTL refused", err)
	}
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
		{[]string{"migrate", "status"}, "00002_list_indexes.sql"},
		{[]string{"migrate", "down"}, "reverted 00002_list_indexes.sql"},
		{[]string{"migrate", "down"}, "reverted 00001_requests.sql"},
		{[]string{"migrate", "up"}, "applied 00002_list_indexes.sql"},
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

// freeAddr finds a free loopback port (closed again, so there is a small
// window in which another process could take it).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestServesGRPCAndGatewayThenStopsGracefully(t *testing.T) {
	ks, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "keyset.json")
	if err := os.WriteFile(file, ks, 0o600); err != nil {
		t.Fatal(err)
	}
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	t.Setenv("DATABASE_URL", pgtest.NewURL(t, migrations.Set))
	t.Setenv("ENCRYPTION_KEYSET_FILE", file)
	t.Setenv("LISTEN_ADDR", grpcAddr)
	t.Setenv("METRICS_ADDR", freeAddr(t))
	t.Setenv("HTTP_ADDR", httpAddr)
	t.Setenv("LOG_LEVEL", "error")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, &bytes.Buffer{}) }()

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hctx, hcancel := context.WithTimeout(ctx, 30*time.Second)
	defer hcancel()
	hr, err := healthpb.NewHealthClient(conn).Check(hctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", hr, err)
	}
	resp, err := http.Get("http://" + httpAddr + "/v1/applicants")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/applicants = %d", resp.StatusCode)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}

func TestRefusesAnExposedGatewayWithoutAuth(t *testing.T) {
	ks, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "keyset.json")
	if err := os.WriteFile(file, ks, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
	t.Setenv("ENCRYPTION_KEYSET_FILE", file)
	t.Setenv("AUTH_TOKENS_FILE", "")
	t.Setenv("LISTEN_ADDR", "127.0.0.1:0")
	t.Setenv("HTTP_ADDR", ":8082")
	err = run(context.Background(), nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), ":8082 is not a loopback address") {
		t.Fatalf("want a refusal naming HTTP_ADDR, got %v", err)
	}
}

// TestServesWithAuthAndTLS runs the binary with a tokens file and a
// certificate: gRPC and the JSON gateway both speak TLS and want a token,
// the gateway reaches gRPC through its pinned self-connection, and /metrics
// shows the domain metrics.
func TestServesWithAuthAndTLS(t *testing.T) {
	dir := t.TempDir()
	ks, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	keyset := filepath.Join(dir, "keyset.json")
	if err := os.WriteFile(keyset, ks, 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := authtest.SelfSigned(t, dir, "requests")
	grpcAddr, httpAddr, metricsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	t.Setenv("DATABASE_URL", pgtest.NewURL(t, migrations.Set))
	t.Setenv("ENCRYPTION_KEYSET_FILE", keyset)
	t.Setenv("AUTH_TOKENS_FILE", authtest.TokensFile(t))
	t.Setenv("TLS_CERT_FILE", certFile)
	t.Setenv("TLS_KEY_FILE", keyFile)
	t.Setenv("LISTEN_ADDR", grpcAddr)
	t.Setenv("METRICS_ADDR", metricsAddr)
	t.Setenv("HTTP_ADDR", httpAddr)
	t.Setenv("LOG_LEVEL", "error")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, &bytes.Buffer{}) }()

	opts, err := auth.DialOptions(authtest.WriteFile(t, "token", authtest.AdminToken), certFile)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(grpcAddr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hctx, hcancel := context.WithTimeout(ctx, 30*time.Second)
	defer hcancel()
	if _, err := healthpb.NewHealthClient(conn).Check(hctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("health: %v", err)
	}
	c := requestsv1.NewRequestsServiceClient(conn)
	if _, err := c.CreateApplicant(hctx, &requestsv1.CreateApplicantRequest{FullName: "Ada Lovelace", Email: "ada@example.com"}); err != nil {
		t.Fatalf("create over TLS as admin: %v", err)
	}

	tlsCfg, err := auth.ClientTLS(certFile)
	if err != nil {
		t.Fatal(err)
	}
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	get := func(tok string) int {
		req, err := http.NewRequestWithContext(hctx, "GET", "https://"+httpAddr+"/v1/applicants", nil)
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
	if got := get(""); got != http.StatusUnauthorized {
		t.Fatalf("gateway without a token: %d", got)
	}
	if got := get(authtest.ReaderToken); got != http.StatusOK {
		t.Fatalf("gateway as reader: %d", got)
	}

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`slotwatch_requests{status="pending"} 0`, "slotwatch_requests_watchers 0", "slotwatch_requests_claims_total 0"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}
