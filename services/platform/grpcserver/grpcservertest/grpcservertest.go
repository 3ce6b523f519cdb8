// Package grpcservertest holds what the tests of services built on
// grpcserver share: running a binary's serve path on real ports and probing
// it, and checking what its request logs and metrics show.
package grpcservertest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/slotwatch/slotwatch/services/platform/freeport"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

// Run is a service binary's run function, as grpcserver.Main calls it.
type Run func(ctx context.Context, args []string, stdout io.Writer) error

// wait bounds how long a serve path may take to answer, or to stop.
const wait = 30 * time.Second

// Setenv sets each variable for the rest of the test: a serve path reads
// its settings from the environment.
func Setenv(t testing.TB, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// WantRefusal runs the serve path under env and fails the test with why
// unless it returns an error naming every one of want: a bad setup is
// refused, with the fix, before anything is served.
func WantRefusal(t testing.TB, run Run, env map[string]string, why string, want ...string) {
	t.Helper()
	Setenv(t, env)
	err := run(context.Background(), nil, io.Discard)
	if err == nil {
		t.Fatalf("%s, got %v", why, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("%s, got %v", why, err)
		}
	}
}

// FreeAddr finds a free loopback port (closed again, so there is a small
// window in which another process could take it), below the ephemeral
// range (package freeport): a fixed address a restarted server takes again.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addrs, err := freeport.Loopback(1)
	if err != nil {
		t.Fatal(err)
	}
	return addrs[0]
}

// KeysetFile writes a new keyset to a temporary file, for a serve path's
// ENCRYPTION_KEYSET_FILE, and returns its path.
func KeysetFile(t testing.TB) string {
	t.Helper()
	keyset, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keyset.json")
	if err := os.WriteFile(path, keyset, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Serving is a serve path running in the background.
type Serving struct {
	stop context.CancelFunc
	done chan error
}

// Serve starts run with no arguments, as the binary serves, with the
// settings the test put in the environment. Its context ends with the test
// at the latest, so a failed test does not leave it serving.
func Serve(t testing.TB, run Run) *Serving {
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	s := &Serving{stop: stop, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, nil, io.Discard) }()
	return s
}

// Stop ends the serve path's context, as SIGTERM would, and returns what
// it returned; the test fails if it does not return in time.
func (s *Serving) Stop(t testing.TB) error {
	t.Helper()
	s.stop()
	select {
	case err := <-s.done:
		return err
	case <-time.After(wait):
		t.Fatal("serve did not stop")
		return nil
	}
}

// Dial connects to addr, in plaintext without opts; the connection closes
// when the test ends.
func Dial(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// DialServing dials addr as Dial does and waits until the server there says
// it is SERVING: the serve path is up, migrated and registered.
func DialServing(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn := Dial(t, addr, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	health, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || health.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", health, err)
	}
	return conn
}

// WantMetrics scrapes /metrics at addr (a serve path's METRICS_ADDR) and
// fails the test unless it holds every one of want.
func WantMetrics(t testing.TB, addr string, want ...string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range want {
		if !strings.Contains(string(body), w) {
			t.Fatalf("/metrics lacks %s", w)
		}
	}
}

// WantRequestLogs fails the test unless logs (grpcserver's JSON logger)
// hold a request line for each of rpcs.
func WantRequestLogs(t testing.TB, logs string, rpcs ...string) {
	t.Helper()
	for _, rpc := range rpcs {
		if !strings.Contains(logs, `"grpc.method":"`+rpc+`"`) {
			t.Fatalf("no request log line for %s", rpc)
		}
	}
}

// WantCallerRoles fails the test unless logs name each of roles as a
// caller's role: who called is part of every request line.
func WantCallerRoles(t testing.TB, logs string, roles ...string) {
	t.Helper()
	for _, role := range roles {
		if !strings.Contains(logs, `"caller.role":"`+role+`"`) {
			t.Fatal("the caller's role is not logged")
		}
	}
}

// WantNoSecrets fails the test if logs, or what reg would show on
// /metrics, hold any of secrets, or even its first ten characters. The
// failure names a secret by its length and start only: test output is a
// log too.
func WantNoSecrets(t testing.TB, logs string, reg prometheus.Gatherer, secrets ...string) {
	t.Helper()
	var scrape strings.Builder
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&scrape, mf); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range secrets {
		for where, text := range map[string]string{"logs": logs, "metrics": scrape.String()} {
			if strings.Contains(text, s) || strings.Contains(text, s[:min(len(s), 10)]) {
				t.Fatalf("%s hold a secret (%d characters, starting %.3s…)", where, len(s), s)
			}
		}
	}
}

// Metric reads one sample from reg, the first whose labels include the
// name/value pairs in labels: a counter's or gauge's value, or a
// histogram's count. A family with no such sample reads 0.
func Metric(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue next
				}
			}
			return value(m)
		}
		return 0
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// WantMetric fails the test unless Metric reads want.
func WantMetric(t testing.TB, reg prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	if got := Metric(t, reg, name, labels...); got != want {
		t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

// Body is a request body of a given size that is generated as it is read,
// so a test can send a huge body without holding it: prefix, then 'a's.
type Body struct {
	prefix []byte
	size   int64
	read   atomic.Int64
}

// NewBody returns a body of size bytes that starts with prefix.
func NewBody(prefix string, size int64) *Body {
	return &Body{prefix: []byte(prefix), size: size}
}

func (b *Body) Read(p []byte) (int, error) {
	off := b.read.Load()
	if off >= b.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.size-off))
	for i := range n {
		if at := off + int64(i); at < int64(len(b.prefix)) {
			p[i] = b.prefix[at]
		} else {
			p[i] = 'a'
		}
	}
	b.read.Add(int64(n))
	return n, nil
}

// Sent is how much of the body has been read (handed to the connection).
func (b *Body) Sent() int64 { return b.read.Load() }

// Allocated runs f and returns the bytes the process allocated meanwhile
// (whatever later became of them) and how much the live heap grew, after
// a collection on both sides. Other goroutines count too: run it in a
// test that is not parallel.
func Allocated(f func()) (total uint64, heapGrowth int64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, int64(after.HeapAlloc) - int64(before.HeapAlloc) //nolint:gosec // heap sizes fit
}

// Answer is an HTTP response with its JSON body decoded.
type Answer struct {
	Status int
	Header http.Header
	Body   map[string]any
}

// Post sends body to url as JSON, chunked unless contentLength >= 0, with
// the header Authorization: Bearer tok ("" sends none), and fails the test
// unless the answer is a JSON object. It reads the answer while it is
// still sending, as a browser does: a server that answers early (401, 413)
// and closes the connection on the rest of a large body is heard, where
// http.Client may report only its own broken pipe.
func Post(t testing.TB, url, tok string, body io.Reader, contentLength int64) Answer {
	t.Helper()
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = contentLength
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	conn, err := net.DialTimeout("tcp", req.URL.Host, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() // also ends the sending goroutine, if it is still writing
	_ = conn.SetDeadline(time.Now().Add(wait))
	go func() { _ = req.Write(conn) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	a := Answer{Status: resp.StatusCode, Header: resp.Header, Body: map[string]any{}}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &a.Body); err != nil {
		t.Fatalf("POST %s: answer %d is not a JSON object: %q", url, resp.StatusCode, raw)
	}
	return a
}
