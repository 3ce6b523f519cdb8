package browser

import (
	"testing"
	"time"
)

// TestCloseDoesNotWaitOutASparesStart: Close, the Checker's last step of
// its drain, ends a spare's browser start under way instead of waiting
// for it (up to StartTimeout, which README/OPERATIONS advise lengthening),
// and leaves no Chromium behind. The first Chromium starts; every later
// one hangs (a busy node).
func TestCloseDoesNotWaitOutASparesStart(t *testing.T) {
	t.Parallel()
	wrapper, dir := slowStartWrapper(t)
	const startTimeout = 45 * time.Second
	m := New(Config{ExecPath: wrapper, NoSandbox: asRoot, StartTimeout: startTimeout, Spares: 1})
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = m.Close()
		}
	})
	hangSparesStart(t, m, dir)
	begin := time.Now()
	done := make(chan error, 1)
	go func() { done <- m.Close() }()
	select {
	case <-done:
		closed = true
		t.Logf("Close returned after %s", time.Since(begin).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		<-done
		closed = true
		t.Errorf("Close returned only after %s: it waited for the spare's start (StartTimeout %s)", time.Since(begin).Round(time.Second), startTimeout)
	}
	if st := m.Status(); st.Running {
		t.Errorf("after Close the status is %+v, want no browser running", st)
	}
}
