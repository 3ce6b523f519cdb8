package demo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestChaos is `make chaos`'s sibling in `make test`: the real binaries
// and Chromium on a Postgres cluster of its own, through toxiproxy, under
// load; Postgres restarted (fast, then immediate) and AccountPool,
// Requests, the Notifier (replica 1, which started first and so usually
// holds the consumer lock) and the Checker SIGKILLed once. Every invariant must hold,
// the Notifier's included: every SLOT_FOUND one webhook, delivered.
func TestChaos(t *testing.T) {
	t.Parallel()
	chrome := requireChromium(t)
	if _, err := pgBindir(); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bin")
	const mod = "github.com/slotwatch/slotwatch/services/"
	cmd := exec.Command("go", "build", "-o", bin+string(filepath.Separator),
		mod+"portalsim/cmd/portalsim", mod+"accountpool/cmd/accountpool", mod+"requests/cmd/requests", mod+"notifier/cmd/notifier", mod+"checker/cmd/checker")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the services: %v\n%s", err, b)
	}
	var out testkit.SyncBuffer
	ctx := t.Context()
	if end, ok := chaosTestDeadline(t); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, end)
		defer cancel()
	}
	err := Chaos(ctx, ChaosConfig{
		BinDir: bin, WorkDir: t.TempDir(), ChromePath: chrome, Short: true, Kills: 1, Out: &out, Patience: testkit.TimeoutScale(),
		Scenarios: []string{"pg-restart-fast", "pg-restart-immediate",
			"kill-accountpool-1", "kill-requests-1", "kill-notifier-1", "kill-checker-1"},
	})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("Chaos: %v", err)
	}
	if n := strings.Count(out.String(), "recovered"); n != 6 {
		t.Errorf("%d scenario lines say recovered, want 6", n)
	}
	if n := strings.Count(out.String(), "notifier:held"); n != 6 {
		t.Errorf("%d scenario lines say notifier:held, want 6", n)
	}
}

// chaosTestDeadline is when TestChaos stops a run that is still going: 3
// minutes before go test's -timeout would panic (the run stopping its
// services and Postgres, the output logged), so that a run failing past
// its patience (maxPatience) ends with its report instead of losing it.
func chaosTestDeadline(t *testing.T) (time.Time, bool) {
	end, ok := t.Deadline()
	if !ok || time.Until(end) < 6*time.Minute {
		return time.Time{}, false
	}
	return end.Add(-3 * time.Minute), true
}
