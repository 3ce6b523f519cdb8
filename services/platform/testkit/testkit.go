// Package testkit holds the small helpers that tests across the services
// share: a log sink safe for concurrent writers, a settable clock, a
// context bounded by the test, and a gRPC status code check. Helpers tied
// to one concept live with it instead (authtest, grpcservertest, pgtest,
// proctest).
//
// Only tests and test helper packages import it; TestOnlyTestsImportTestkit
// keeps production code from doing so.
package testkit

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// SyncBuffer is a bytes.Buffer that one goroutine can write (a logger, a
// command's output) while another reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is what has been written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Reset empties the buffer.
func (b *SyncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// Clock is a settable clock that a test and its servers share: pass its
// Now method where a service takes a clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// ContextTimeout bounds a context from Context, so that a call that hangs
// fails its test instead of stalling the suite.
const ContextTimeout = time.Minute

// Context is a context for the calls of one test: it ends after
// ContextTimeout or when the test's cleanups run, whichever comes first.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ContextTimeout)
	t.Cleanup(cancel)
	return ctx
}

// WantCode fails t unless err carries the gRPC status code want, and
// returns the status for further checks.
func WantCode(t testing.TB, err error, want codes.Code) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != want {
		t.Fatalf("code = %s (%v), want %s", st.Code(), err, want)
	}
	return st
}

// SkipOutsideCI skips a test whose premise this machine lacks (an address,
// a user), with why; under CI (CI=true, as .ci/run runs) it fails instead,
// so a premise lost on the CI machine cannot pass as a skipped test.
func SkipOutsideCI(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI must run this test, but: "+format, args...)
	}
	t.Skipf("SKIPPED, NOT TESTED: "+format, args...)
}
