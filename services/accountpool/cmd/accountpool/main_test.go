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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

func TestKeysetGenerateThenRotate(t *testing.T) {
	var gen bytes.Buffer
	if err := run(context.Background(), []string{"keyset", "generate"}, &gen); err != nil {
		t.Fatal(err)
	}
	k1, err := secrets.Parse(gen.Bytes())
	if err != nil {
		t.Fatalf("generated keyset does not parse: %v", err)
	}
	path := filepath.Join(t.TempDir(), "keyset.json")
	if err := os.WriteFile(path, gen.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var rot bytes.Buffer
	if err := run(context.Background(), []string{"keyset", "rotate", path}, &rot); err != nil {
		t.Fatal(err)
	}
	k2, err := secrets.Parse(rot.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if k2.PrimaryKeyID() == k1.PrimaryKeyID() {
		t.Fatal("rotate kept the primary key")
	}
	ct, err := k1.Encrypt([]byte("pw"), []byte("row-1"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k2.Decrypt(ct, []byte("row-1")); err != nil || string(pt) != "pw" {
		t.Fatal("rotated keyset does not open what the old primary sealed")
	}
	if err := run(context.Background(), []string{"keyset", "rotate"}, &rot); err == nil {
		t.Fatal("rotate without a file accepted")
	}
}

func TestServeRefusesToStartWithoutKeyset(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://nowhere.invalid/db")
	t.Setenv("ENCRYPTION_KEYSET_FILE", "")
	err := run(context.Background(), nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "accountpool keyset generate") {
		t.Fatalf("want an error that says how to make a keyset, got %v", err)
	}
	t.Setenv("ENCRYPTION_KEYSET_FILE", filepath.Join(t.TempDir(), "missing.json"))
	err = run(context.Background(), nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "accountpool keyset generate") {
		t.Fatalf("want an error that says how to make a keyset, got %v", err)
	}
}

func TestServeRejectsMalformedSettings(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://nowhere.invalid/db")
	t.Setenv("ENCRYPTION_KEYSET_FILE", "/dev/null")
	t.Setenv("POOL_COOLDOWN", "ten minutes")
	t.Setenv("POOL_MAX_FAILURES", "0")
	err := run(context.Background(), nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "POOL_COOLDOWN") || !strings.Contains(err.Error(), "POOL_MAX_FAILURES") {
		t.Fatalf("want both bad settings named, got %v", err)
	}
}

// TestServeHealthReflectionAndStop runs the binary's serve path on real
// ports: it migrates, serves health and reflection and the API, and stops
// cleanly when its context ends.
func TestServeHealthReflectionAndStop(t *testing.T) {
	dbURL := pgtest.NewURL(t) // empty: serve applies the migrations itself
	keyset, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "keyset.json")
	if err := os.WriteFile(keyFile, keyset, 0o600); err != nil {
		t.Fatal(err)
	}
	addr, metrics := freeAddr(t), freeAddr(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("ENCRYPTION_KEYSET_FILE", keyFile)
	t.Setenv("LISTEN_ADDR", addr)
	t.Setenv("METRICS_ADDR", metrics)
	t.Setenv("LOG_LEVEL", "warn")

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, &bytes.Buffer{}) }()

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	health, err := healthpb.NewHealthClient(conn).Check(hctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || health.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", health, err)
	}
	refl, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(hctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := refl.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, ","), "slotwatch.accountpool.v1.AccountPoolService") {
		t.Fatalf("reflection lists %v", names)
	}
	if _, err := apv1.NewAccountPoolServiceClient(conn).CreateAccount(hctx, &apv1.CreateAccountRequest{Email: "a@example.com", Password: "pw"}); err != nil {
		t.Fatalf("create account on the served API: %v", err)
	}

	// A client that is done with its stream closes it, as grpcurl does.
	if err := refl.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := refl.Recv(); err == nil {
		t.Fatal("reflection stream still open")
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after its context ended", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestTokensGenerate(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"tokens", "generate"}, &out); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.OpenTokens(path, nil)
	if err != nil {
		t.Fatalf("generated tokens do not load: %v", err)
	}
	if n := tokens.Count(); n[auth.RoleAdmin] != 1 || n[auth.RoleChecker] != 1 || n[auth.RoleReader] != 1 {
		t.Fatalf("want one token per role, got %v", n)
	}
	if err := run(context.Background(), []string{"tokens"}, &out); err == nil {
		t.Fatal("tokens without generate accepted")
	}
}

func TestServeRefusesToExposeTheAPIWithoutAuth(t *testing.T) {
	keyset, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "keyset.json")
	if err := os.WriteFile(keyFile, keyset, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATABASE_URL", "postgres://nowhere.invalid/db")
	t.Setenv("ENCRYPTION_KEYSET_FILE", keyFile)
	t.Setenv("AUTH_TOKENS_FILE", "")
	t.Setenv("LISTEN_ADDR", ":50051")
	err = run(context.Background(), nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "AUTH_TOKENS_FILE") || !strings.Contains(err.Error(), "accountpool tokens generate") {
		t.Fatalf("want a refusal that says how to turn auth on, got %v", err)
	}
}

// TestServeWithAuthAndMetrics runs the binary with a tokens file: the API
// wants the token, and /metrics shows the domain metrics.
func TestServeWithAuthAndMetrics(t *testing.T) {
	dbURL := pgtest.NewURL(t)
	dir := t.TempDir()
	keyset, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	var tokens bytes.Buffer
	if err := auth.GenerateTokens(&tokens); err != nil {
		t.Fatal(err)
	}
	var adminLine string
	for _, l := range strings.Split(tokens.String(), "\n") {
		if strings.HasPrefix(l, "admin ") {
			adminLine = l
		}
	}
	files := map[string][]byte{"keyset.json": keyset, "tokens": tokens.Bytes(), "admin.token": []byte(adminLine + "\n")}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("ENCRYPTION_KEYSET_FILE", filepath.Join(dir, "keyset.json"))
	t.Setenv("AUTH_TOKENS_FILE", filepath.Join(dir, "tokens"))
	t.Setenv("LISTEN_ADDR", addr)
	t.Setenv("METRICS_ADDR", metricsAddr)
	t.Setenv("LOG_LEVEL", "warn")

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, &bytes.Buffer{}) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	opts, err := auth.DialOptions(filepath.Join(dir, "admin.token"), "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	anon, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(anon).Check(hctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("health without a token: %v", err)
	}
	_, err = apv1.NewAccountPoolServiceClient(anon).GetPoolStatus(hctx, &apv1.GetPoolStatusRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	c := apv1.NewAccountPoolServiceClient(conn)
	if _, err := c.CreateAccount(hctx, &apv1.CreateAccountRequest{Email: "a@example.com", Password: "pw"}); err != nil {
		t.Fatalf("admin create: %v", err)
	}
	if _, err := c.Acquire(hctx, &apv1.AcquireRequest{MissionCode: "fra", Holder: "h"}); err != nil {
		t.Fatalf("admin acquire: %v", err)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`slotwatch_pool_accounts{state="leased"} 1`, `slotwatch_pool_acquire_total{result="leased"} 1`,
		`grpc_server_handled_total{grpc_code="Unauthenticated"`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
}
