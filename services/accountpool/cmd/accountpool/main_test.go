package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
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
	const why = "want an error that says how to make a keyset"
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/db", "ENCRYPTION_KEYSET_FILE": ""},
		why, "accountpool keyset generate")
	grpcservertest.WantRefusal(t, run, map[string]string{"ENCRYPTION_KEYSET_FILE": filepath.Join(t.TempDir(), "missing.json")},
		why, "accountpool keyset generate")
}

func TestServeRejectsMalformedSettings(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/db", "ENCRYPTION_KEYSET_FILE": "/dev/null",
		"POOL_COOLDOWN": "ten minutes", "POOL_MAX_FAILURES": "0"},
		"want both bad settings named", "POOL_COOLDOWN", "POOL_MAX_FAILURES")
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/db", "ENCRYPTION_KEYSET_FILE": "/dev/null",
		"POOL_MAX_LOGINS_PER_DAY": "0"}, "want a login budget of none refused", "POOL_MAX_LOGINS_PER_DAY")
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/db", "ENCRYPTION_KEYSET_FILE": "/dev/null",
		"POOL_BATCHING": "yes"}, "want a batching switch other than true/false refused", "POOL_BATCHING")
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/db", "ENCRYPTION_KEYSET_FILE": "/dev/null",
		"POOL_SESSION_MAX_AGE": "0s"}, "want a session max age of 0 refused", "POOL_SESSION_MAX_AGE")
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/db", "ENCRYPTION_KEYSET_FILE": "/dev/null",
		"POOL_SESSION_MAX_AGE": "800h"}, "want a session max age over 30 days refused", "POOL_SESSION_MAX_AGE")
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/db", "ENCRYPTION_KEYSET_FILE": "/dev/null",
		"POOL_LEASE_TTL": "1ns"}, "want a lease that ends as it begins refused", "POOL_LEASE_TTL=1ns", "at least 1s")
}

// TestServeNamesEveryBadSettingAtOnce: a setting out of its range and a
// malformed one are reported together, so that an operator fixes them in
// one restart.
func TestServeNamesEveryBadSettingAtOnce(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/db", "ENCRYPTION_KEYSET_FILE": "/dev/null",
		"POOL_COOLDOWN": "ten minutes", "POOL_LEASE_TTL": "2h", "POOL_SESSION_MAX_AGE": "800h", "POOL_USAGE_RETENTION": "12h"},
		"want every bad setting named", "POOL_COOLDOWN", "POOL_LEASE_TTL=2h", "POOL_SESSION_MAX_AGE=800h", "POOL_USAGE_RETENTION=12h")
}

func TestServeRejectsAUsageRetentionItCannotKeep(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/db", "ENCRYPTION_KEYSET_FILE": "/dev/null",
		"POOL_USAGE_RETENTION": "ninety days"}, "want a malformed retention refused", "POOL_USAGE_RETENTION", "90d")
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/db", "ENCRYPTION_KEYSET_FILE": "/dev/null",
		"POOL_USAGE_RETENTION": "12h"}, "want a retention shorter than the login budget's window refused", "POOL_USAGE_RETENTION=12h", "at least 24h")
}

// TestServeHealthReflectionAndStop runs the binary's serve path on real
// ports: it migrates, serves health and reflection and the API, and stops
// cleanly when its context ends.
func TestServeHealthReflectionAndStop(t *testing.T) {
	addr := grpcservertest.FreeAddr(t)
	grpcservertest.Setenv(t, map[string]string{
		"DATABASE_URL":           pgtest.NewURL(t), // empty: serve applies the migrations itself
		"ENCRYPTION_KEYSET_FILE": grpcservertest.KeysetFile(t),
		"LISTEN_ADDR":            addr,
		"METRICS_ADDR":           grpcservertest.FreeAddr(t),
		"LOG_LEVEL":              "warn",
		"GRPC_REFLECTION":        "true",
	})
	srv := grpcservertest.Serve(t, run)

	conn := grpcservertest.DialServing(t, addr)
	hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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
	if err := srv.Stop(t); err != nil {
		t.Fatalf("serve returned %v after its context ended", err)
	}
}

func TestTokensGenerate(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"tokens", "generate", "checker:checker-prod", "reader"}, &out); err != nil {
		t.Fatal(err)
	}
	// The digest lines are the servers' file; the tokens are not in it.
	var server []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "sha256:") {
			server = append(server, l)
		}
	}
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(strings.Join(server, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.OpenTokens(path, nil)
	if err != nil {
		t.Fatalf("generated lines do not load: %v", err)
	}
	if n := tokens.Count(); n[auth.RoleAdmin] != 0 || n[auth.RoleChecker] != 1 || n[auth.RoleReader] != 1 {
		t.Fatalf("want a checker and a reader, got %v", n)
	}
	checker := clientToken(t, out.String(), "checker-prod")
	if id, ok := tokens.Lookup(checker); !ok || id.Name != "checker-prod" {
		t.Fatalf("the printed checker token: %v %v", id, ok)
	}
	for _, bad := range [][]string{{"tokens"}, {"tokens", "generate", "root"}} {
		if err := run(context.Background(), bad, &out); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}

// clientToken finds the token of the caller name in `tokens generate`'s
// output ("token role name TOKEN").
func clientToken(t *testing.T, out, name string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "token" && f[2] == name {
			return f[3]
		}
	}
	t.Fatalf("no token for %s in %s", name, out)
	return ""
}

func TestServeRefusesToExposeTheAPIWithoutAuth(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/db",
		"ENCRYPTION_KEYSET_FILE": grpcservertest.KeysetFile(t), "AUTH_TOKENS_FILE": "", "LISTEN_ADDR": ":50051"},
		"want a refusal that says how to turn auth on", "AUTH_TOKENS_FILE", "accountpool tokens generate")
}

// TestServeWithAuthAndMetrics runs the binary with a tokens file: the API
// wants the token, and /metrics shows the domain metrics.
func TestServeWithAuthAndMetrics(t *testing.T) {
	dir := t.TempDir()
	var tokens bytes.Buffer
	if err := auth.GenerateTokens(&tokens); err != nil {
		t.Fatal(err)
	}
	var server []string
	for _, l := range strings.Split(tokens.String(), "\n") {
		if strings.HasPrefix(l, "sha256:") {
			server = append(server, l)
		}
	}
	files := map[string][]byte{"tokens": []byte(strings.Join(server, "\n")), "admin.token": []byte(clientToken(t, tokens.String(), "admin") + "\n")}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addr, metricsAddr := grpcservertest.FreeAddr(t), grpcservertest.FreeAddr(t)
	grpcservertest.Setenv(t, map[string]string{
		"DATABASE_URL":           pgtest.NewURL(t),
		"ENCRYPTION_KEYSET_FILE": grpcservertest.KeysetFile(t),
		"AUTH_TOKENS_FILE":       filepath.Join(dir, "tokens"),
		"LISTEN_ADDR":            addr,
		"METRICS_ADDR":           metricsAddr,
		"LOG_LEVEL":              "warn",
	})
	srv := grpcservertest.Serve(t, run)
	defer func() {
		if err := srv.Stop(t); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	opts, err := auth.DialOptions(addr, auth.ClientConfig{TokenFile: filepath.Join(dir, "admin.token")})
	if err != nil {
		t.Fatal(err)
	}
	conn := grpcservertest.Dial(t, addr, opts...)
	// Health wants no token.
	anon := grpcservertest.DialServing(t, addr)
	hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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
	grpcservertest.WantMetrics(t, metricsAddr, `slotwatch_pool_accounts{state="leased"} 1`, `slotwatch_pool_acquire_total{result="leased"} 1`,
		`grpc_server_handled_total{grpc_code="Unauthenticated"`, "pgxpool_max_conns ", "pgxpool_acquire_count ")
}
