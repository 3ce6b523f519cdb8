package browser

import (
	"os"
	"path/filepath"
	"syscall"
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
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "chromium")
	script := "#!/bin/sh\nif mkdir '" + dir + "/first' 2>/dev/null; then exec '" + execPath(t) + "' \"$@\"; fi\ntouch '" + dir + "/slow'\nexec sleep 600\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	const startTimeout = 45 * time.Second
	m := New(Config{ExecPath: wrapper, NoSandbox: asRoot, StartTimeout: startTimeout, Spares: 1})
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = m.Close()
		}
	})
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	tab := open(t, m)
	if err := syscall.Kill(m.Status().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); m.Status().Crashes == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the killed browser was not noticed")
		}
	}
	tab.Close(nil) // the spare is refilled: a new browser starts, and hangs
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "slow")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the spare's browser start did not begin")
		}
	}
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
