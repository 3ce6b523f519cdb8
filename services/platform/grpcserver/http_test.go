package grpcserver_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
)

// reader is an extra handler that reads the whole body, as the JSON
// gateway's decoder does: 400 when the read fails, 401 for the token
// "refused" (as the gRPC chain would), else 200 with the length read.
type reader struct{ calls atomic.Int64 }

func (h *reader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	if r.Header.Get("Authorization") == "Bearer refused" {
		http.Error(w, `{"code":16}`, http.StatusUnauthorized)
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, `{"code":3,"message":"bad body"}`, http.StatusBadRequest)
		return
	}
	_, _ = io.WriteString(w, `{"read":`+strconv.Itoa(len(b))+`}`)
}

// serveHTTP serves an extra handler (and metrics) on loopback, with auth on
// or off, and returns their base URLs.
func serveHTTP(t *testing.T, authOn bool, h http.Handler, opts ...func(*grpcserver.Server)) (api, metrics string) {
	t.Helper()
	var sec grpcserver.Security
	if authOn {
		sec.Tokens = openTokens(t, writeTokens(t, allTokens))
	}
	apiAddr, metricsAddr := grpcservertest.FreeAddr(t), grpcservertest.FreeAddr(t)
	srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t), Security: sec, Policy: policy, MetricsAddr: metricsAddr})
	srv.GRPC.RegisterService(&desc, struct{}{})
	for _, o := range opts {
		o(srv)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, map[string]http.Handler{apiAddr: h}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	for _, a := range []string{apiAddr, metricsAddr} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			c, err := net.Dial("tcp", a)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never listened: %v", a, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return "http://" + apiAddr, "http://" + metricsAddr
}

// post posts to the test route of api.
func post(t *testing.T, api, tok string, body io.Reader, contentLength int64) grpcservertest.Answer {
	t.Helper()
	return grpcservertest.Post(t, api+"/v1/applicants", tok, body, contentLength)
}

func TestHTTPRequestsAreBounded(t *testing.T) {
	t.Parallel()
	const huge = 150 << 20

	t.Run("NoAuthorizationIs401BeforeTheBodyIsRead", func(t *testing.T) {
		t.Parallel()
		h := &reader{}
		api, _ := serveHTTP(t, true, h)
		body := grpcservertest.NewBody(`{"full_name":"`, huge)
		a := post(t, api, "", body, -1)
		if a.Status != http.StatusUnauthorized || a.Header.Get("WWW-Authenticate") != "Bearer" || a.Body["code"] != float64(16) {
			t.Fatalf("no token: %d %v %v, want 401, WWW-Authenticate: Bearer, code 16", a.Status, a.Header, a.Body)
		}
		if h.calls.Load() != 0 {
			t.Fatal("the handler ran for a request without a token")
		}
		// What the client got to send is what the sockets buffered, not
		// the body.
		if sent := body.Sent(); sent > 32<<20 {
			t.Fatalf("the server took %d MiB of a body it had refused", sent>>20)
		}
	})

	t.Run("ABodyOverTheLimitIs413", func(t *testing.T) {
		t.Parallel()
		h := &reader{}
		api, _ := serveHTTP(t, true, h)
		// Content-Length says so: refused before the handler runs.
		a := post(t, api, readerTok, grpcservertest.NewBody(`{"full_name":"`, huge), huge)
		if a.Status != http.StatusRequestEntityTooLarge || a.Body["code"] != float64(8) {
			t.Fatalf("declared %d bytes: %d %v, want 413 code 8", huge, a.Status, a.Body)
		}
		if h.calls.Load() != 0 {
			t.Fatal("the handler ran for a body declared too large")
		}
		// Chunked: the read stops at the limit, and the handler's 400 for
		// the failed read becomes a 413.
		body := grpcservertest.NewBody(`{"full_name":"`, huge)
		a = post(t, api, readerTok, body, -1)
		if a.Status != http.StatusRequestEntityTooLarge || a.Body["code"] != float64(8) || !strings.Contains(a.Body["message"].(string), "1048576") {
			t.Fatalf("chunked %d bytes: %d %v, want 413 code 8", huge, a.Status, a.Body)
		}
		if sent := body.Sent(); sent > 32<<20 {
			t.Fatalf("the server took %d MiB of a body over the limit", sent>>20)
		}
		// Up to the limit is read whole.
		a = post(t, api, readerTok, grpcservertest.NewBody("", grpcserver.MaxRequestBodyBytes), -1)
		if a.Status != http.StatusOK || a.Body["read"] != float64(grpcserver.MaxRequestBodyBytes) {
			t.Fatalf("a body at the limit: %d %v", a.Status, a.Body)
		}
	})

	t.Run("ATokenTheHandlerRefusesGetsTheChallengeToo", func(t *testing.T) {
		t.Parallel()
		api, _ := serveHTTP(t, true, &reader{})
		a := post(t, api, "refused", strings.NewReader("{}"), -1)
		if a.Status != http.StatusUnauthorized || a.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Fatalf("refused token: %d %v", a.Status, a.Header)
		}
	})

	t.Run("WithAuthOffNoTokenReachesTheHandler", func(t *testing.T) {
		t.Parallel()
		h := &reader{}
		api, _ := serveHTTP(t, false, h)
		if a := post(t, api, "", strings.NewReader("{}"), -1); a.Status != http.StatusOK || h.calls.Load() != 1 {
			t.Fatalf("auth off: %d %v", a.Status, a.Body)
		}
	})

	t.Run("SlowRequestsAndSlowAnswersAreCut", func(t *testing.T) {
		t.Parallel()
		slowAnswer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				return
			}
			time.Sleep(time.Second) // past the write timeout below
			_, _ = io.WriteString(w, "{}")
		})
		api, _ := serveHTTP(t, true, slowAnswer, func(s *grpcserver.Server) {
			grpcserver.SetHTTPTimeouts(s, 200*time.Millisecond, 200*time.Millisecond)
		})
		// A body that never finishes arriving: the server hangs up rather
		// than wait for it.
		conn, err := net.Dial("tcp", strings.TrimPrefix(api, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "POST /v1/applicants HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer x\r\nContent-Length: 100\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadAll(conn); err != nil {
			t.Fatalf("the server still waits for the body: %v", err)
		}
		// An answer later than the write timeout never reaches the client.
		req, err := http.NewRequest("GET", api+"/v1/applicants", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer x")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("a late answer arrived: %d", resp.StatusCode)
		}
	})

	t.Run("HeadersOverTheLimitAreRefusedOnEveryPort", func(t *testing.T) {
		t.Parallel()
		api, metrics := serveHTTP(t, true, &reader{})
		for _, url := range []string{api + "/v1/applicants", metrics + "/healthz"} {
			req, err := http.NewRequest("GET", url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Padding", strings.Repeat("a", 200<<10))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("%s with 200 KiB of headers: %d, want 431", url, resp.StatusCode)
			}
		}
	})
}

// TestServeRefusesOneAddressForMetricsAndAnAPI: METRICS_ADDR set to the
// address of an extra HTTP server (Requests' HTTP_ADDR) cannot serve both.
// Serve must fail to listen and name the address, rather than serve one of
// them and drop the other (the servers were a map by address: the gateway
// won, so /metrics and the readiness probe answered the gateway's 401 and
// the pod never got ready).
func TestServeRefusesOneAddressForMetricsAndAnAPI(t *testing.T) {
	t.Parallel()
	addr := grpcservertest.FreeAddr(t)
	srv := grpcserver.New(grpcserver.Config{Name: "test", Logger: discard(t), MetricsAddr: addr})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, map[string]http.Handler{addr: &reader{}}) }()
	defer cancel()
	for {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), addr) {
				t.Errorf("serve: %v; want an error naming %s", err, addr)
			}
			return
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			cancel()
			<-done
			t.Fatalf("serve listened on %s, given as both the metrics and an API address", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
