package buildinfo

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDefaultsWithoutLinkerFlags(t *testing.T) {
	i := Get()
	if i.Version != "dev" || i.Go != runtime.Version() || i.Commit == "" {
		t.Errorf("Get() = %+v, want version dev, this Go, some commit", i)
	}
	if got := i.String("accountpool"); !strings.HasPrefix(got, "accountpool dev (commit ") {
		t.Errorf("String = %q", got)
	}
}

func TestCollectorHasTheBuildInItsLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector())
	i := Get()
	want := `# HELP slotwatch_build_info The binary's build: 1, with its version, commit and Go version as labels.
# TYPE slotwatch_build_info gauge
slotwatch_build_info{commit="` + i.Commit + `",go="` + i.Go + `",version="dev"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "slotwatch_build_info"); err != nil {
		t.Error(err)
	}
}

// TestLinkerFlagsSetVersionAndCommit builds a tiny binary the way make
// build does and reads what it prints.
func TestLinkerFlagsSetVersionAndCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	main := filepath.Join(dir, "main.go")
	src := "package main\n\nimport (\n\t\"fmt\"\n\n\t\"github.com/slotwatch/slotwatch/services/platform/buildinfo\"\n)\n\nfunc main() { fmt.Print(buildinfo.Get().String(\"x\")) }\n"
	if err := os.WriteFile(main, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	const pkg = "github.com/slotwatch/slotwatch/services/platform/buildinfo"
	bin := filepath.Join(dir, "x")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X "+pkg+".version=v9.8.7 -X "+pkg+".commit=abc123", main)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "x v9.8.7 (commit abc123, " + runtime.Version() + ")"; string(out) != want {
		t.Errorf("printed %q, want %q", out, want)
	}
}
