package buildinfo

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
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
