// Package testkit holds the small helpers that tests across the services
// share: a log sink safe for concurrent writers, a settable clock, a
// context bounded by the test, a gRPC status code check, and timeouts that
// lengthen on a loaded machine (Scale). Helpers tied
// to one concept live with it instead (authtest, grpcservertest, pgtest,
// proctest).
//
// Only tests and test helper packages import it; TestOnlyTestsImportTestkit
// keeps production code from doing so.
package testkit

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
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

// TimeoutScaleEnv names the variable that sets Scale's factor outright: a
// number, at least 1 and at most maxTimeoutScale.
const TimeoutScaleEnv = "TEST_TIMEOUT_SCALE"

// maxTimeoutScale bounds the factor, from the load average or from
// TEST_TIMEOUT_SCALE: a scaled timeout still ends a test that hangs within
// make test's 25 minutes (a wait of 30 s to 90 s becomes 5 to 15 minutes).
// Suites of many scaled waits in a row bound their own factor lower (the
// demo's patience).
const maxTimeoutScale = 10

// Scale lengthens d, a timeout for something that legitimately takes
// longer on a busy machine (a browser or a service starting, a condition
// a test waits for), by TimeoutScale. Use it for waits whose length is
// not what the test checks: then a right result that came late no longer
// fails. Where a deadline is itself the property measured (a recovery
// within N seconds), a scaled deadline measures a weaker property, N
// times the factor on this machine, and the test must say so.
func Scale(d time.Duration) time.Duration {
	f := math.Ceil(float64(d) * TimeoutScale())
	if f >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(f)
}

// TimeoutScale is $TEST_TIMEOUT_SCALE when set; otherwise 1 plus the
// one-minute load average per CPU this process may run on (at load 40 on
// two cores a start that takes 1 s alone takes about 20), at least 2 under
// CI (CI=true: the CI machine is shared), at most 10. It is read at each
// call, as the load changes while a suite runs. A TEST_TIMEOUT_SCALE that
// is no number in [1, 10] (NaN, Inf, 1e12 included) panics: a factor past
// the bound would overflow a Duration or outlast go test's timeout.
func TimeoutScale() float64 {
	if s := os.Getenv(TimeoutScaleEnv); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		// Written so that NaN, for which every comparison is false, fails.
		if err != nil || !(f >= 1 && f <= maxTimeoutScale) {
			panic(fmt.Sprintf("%s=%q: want a number, at least 1 and at most %d", TimeoutScaleEnv, s, maxTimeoutScale))
		}
		return f
	}
	f := 1.0
	if load, ok := loadAverage(); ok {
		f += load / float64(runtime.NumCPU())
	}
	if os.Getenv("CI") == "true" {
		f = max(f, 2)
	}
	return min(f, maxTimeoutScale)
}

// loadAverage is the one-minute load average, from /proc/loadavg.
func loadAverage() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0, false
	}
	load, err := strconv.ParseFloat(fields[0], 64)
	return load, err == nil && load >= 0
}
