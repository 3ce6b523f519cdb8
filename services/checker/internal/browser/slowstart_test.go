package browser

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// slowStartWrapper writes a Chromium wrapper into a new directory and
// returns its path and the directory: the first Chromium it runs starts;
// every later one hangs (a busy node), after touching dir/slow.
func slowStartWrapper(t *testing.T) (wrapper, dir string) {
	t.Helper()
	dir = t.TempDir()
	wrapper = filepath.Join(dir, "chromium")
	script := "#!/bin/sh\nif mkdir '" + dir + "/first' 2>/dev/null; then exec '" + execPath(t) + "' \"$@\"; fi\ntouch '" + dir + "/slow'\nexec sleep 600\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper, dir
}

// hangSparesStart starts m (built on slowStartWrapper's wrapper in dir,
// with one spare), kills its browser and returns once the spare's refill
// has begun a new browser start, which hangs. The start runs under no
// caller's context, bounded only by StartTimeout.
func hangSparesStart(t *testing.T, m *Manager, dir string) {
	t.Helper()
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	tab := open(t, m) // the spare opened after Start
	if err := syscall.Kill(m.Status().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); m.Status().Crashes == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the killed browser was not noticed")
		}
	}
	tab.Close(nil) // the teardown refills the spare: a new browser starts, and hangs
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "slow")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the spare's browser start did not begin")
		}
	}
}
