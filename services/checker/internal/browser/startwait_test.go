package browser

import (
	"context"
	"testing"
	"time"
)

// TestNewTabReturnsWhenItsContextEndsDuringASparesStart: a spare tab's
// browser start runs under context.Background, bounded only by
// StartTimeout, and holds startMu; NewTab (and Close) wait for startMu
// without looking at their context. So a check cut by the Checker's drain
// (session.Checker.Drain: after CHECKER_DRAIN_TIMEOUT it cancels the checks
// and then waits for them without bound) stays in NewTab for the rest of
// CHECKER_BROWSER_START_TIMEOUT. README and OPERATIONS now tell operators
// of busy nodes to lengthen that timeout: at 2m the drain takes 60 s + up
// to 2 min, past the pod's terminationGracePeriodSeconds (90), and the
// SIGKILL leaves that check's lease unreleased and its claim unreported.
// The first Chromium starts; every later one hangs (a busy node).
func TestNewTabReturnsWhenItsContextEndsDuringASparesStart(t *testing.T) {
	t.Parallel()
	wrapper, dir := slowStartWrapper(t)
	const startTimeout = 45 * time.Second
	m := New(Config{ExecPath: wrapper, NoSandbox: asRoot, StartTimeout: startTimeout, Spares: 1})
	t.Cleanup(func() { _ = m.Close() })
	hangSparesStart(t, m, dir)

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	begin := time.Now()
	done := make(chan error, 1)
	go func() {
		tab, err := m.NewTab(ctx)
		if err == nil {
			tab.Close(nil)
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Logf("NewTab returned %v after %s", err, time.Since(begin).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		err := <-done
		t.Errorf("NewTab with a 1s context returned only after %s (%v): it waited for the spare's start, bounded by StartTimeout (%s), not by its context",
			time.Since(begin).Round(time.Second), err, startTimeout)
	}
}
