package grpcserver_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
)

// The probes on the metrics port follow the gRPC health: /healthz while the
// process answers, /readyz only while the overall status is SERVING.
func TestProbesFollowHealth(t *testing.T) {
	t.Parallel()
	metricsAddr := grpcservertest.FreeAddr(t)
	srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t), MetricsAddr: metricsAddr, ShutdownTimeout: 5 * time.Second})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveUntilCleanup(t, srv, lis)

	get := func(path string) (int, string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + metricsAddr + path)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, strings.TrimSpace(string(body))
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %v", path, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q, want 200", code, body)
	}
	if code, body := get("/readyz"); code != http.StatusOK || body != "SERVING" {
		t.Errorf("/readyz while serving = %d %q, want 200 SERVING", code, body)
	}
	// A dependency down (the Checker's browser): not ready, still alive.
	srv.Health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || body != "NOT_SERVING" {
		t.Errorf("/readyz while not serving = %d %q, want 503 NOT_SERVING", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while not serving = %d, want 200", code)
	}
	srv.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz serving again = %d, want 200", code)
	}
}
