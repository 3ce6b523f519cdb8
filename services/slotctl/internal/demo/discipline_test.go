package demo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// TestDiscipline runs `make bench-discipline` small (20 checks a mode, a
// short cap phase and pause) with the real services, two real Checkers and
// Chromium, so that the benchmark does not rot: it asserts only that the
// run ends well and prints its figures, not what they are.
func TestDiscipline(t *testing.T) {
	t.Parallel()
	chrome := requireChromium(t)
	server := pgtest.ServerURL(t)
	bin := filepath.Join(t.TempDir(), "bin")
	const mod = "github.com/slotwatch/slotwatch/services/"
	cmd := exec.Command("go", "build", "-o", bin+string(filepath.Separator),
		mod+"portalsim/cmd/portalsim", mod+"accountpool/cmd/accountpool", mod+"requests/cmd/requests", mod+"checker/cmd/checker")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the services: %v\n%s", err, b)
	}
	db := "slotwatch_discipline_test_" + randomHex(t, 6)
	t.Cleanup(func() { dropDatabase(t, server, db) })

	var out testkit.SyncBuffer
	err := Discipline(t.Context(), DisciplineConfig{
		BinDir: bin, ProfileFile: filepath.Join("..", "..", "..", "checker", "profiles", "portalsim.yaml"),
		WorkDir: t.TempDir(), DatabaseURL: server, Database: db,
		Checks: 20, Cap: 20, CapFor: 5 * time.Second, Hold: 2 * time.Second, ChromePath: chrome, Out: &out,
		Patience: testkit.TimeoutScale(),
	})
	if err != nil {
		t.Fatalf("Discipline: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"logins per check", "most checks in 60s at the portal", "CPU per check",
		"most checks in any 60s at the portal", "pages the portal served during the pause",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in the output:\n%s", want, out.String())
		}
	}
	t.Logf("output:\n%s", out.String())
}
