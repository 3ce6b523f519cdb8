package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
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
