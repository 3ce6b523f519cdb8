package main

import (
	"bytes"
	"context"
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
		{[]string{"migrate", "status"}, "00001_requests.sql"},
		{[]string{"migrate", "down"}, "reverted 00001_requests.sql"},
		{[]string{"migrate", "up"}, "applied 00001_requests.sql"},
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
