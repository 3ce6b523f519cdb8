package testkit

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const importPath = "github.com/slotwatch/slotwatch/services/platform/testkit"

// productionImporters lists the Go files below root that import testkit and
// are not tests: not a _test.go file and not in a test helper package (a
// directory named like pgtest or authtest, or testkit itself).
func productionImporters(root string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		if dir := filepath.Base(filepath.Dir(path)); strings.HasSuffix(dir, "test") || dir == "testkit" {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == importPath {
				rel, _ := filepath.Rel(root, path)
				found = append(found, rel)
			}
		}
		return nil
	})
	return found, err
}

func TestOnlyTestsImportTestkit(t *testing.T) {
	t.Parallel()

	t.Run("NoProductionFileInTheRepository", func(t *testing.T) {
		t.Parallel()
		// services/platform/testkit → the repository root.
		found, err := productionImporters(filepath.Join("..", "..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		if len(found) > 0 {
			t.Errorf("production code imports testkit (tests and *test helper packages only): %v", found)
		}
	})

	t.Run("FindsAProductionImporter", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		write := func(rel, src string) {
			t.Helper()
			path := filepath.Join(root, rel)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		imports := "import _ " + strconv.Quote(importPath) + "\n"
		write("svc/internal/app/app.go", "package app\n\n"+imports)
		write("svc/internal/app/app_test.go", "package app\n\n"+imports)
		write("svc/internal/app/apptest/apptest.go", "package apptest\n\n"+imports)
		write("svc/cmd/svc/main.go", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println() }\n")
		found, err := productionImporters(root)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join("svc", "internal", "app", "app.go"); len(found) != 1 || found[0] != want {
			t.Errorf("found %v, want [%s]", found, want)
		}
	})
}
