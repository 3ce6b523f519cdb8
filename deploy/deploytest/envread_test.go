package deploytest

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// envRead is one environment variable a binary reads.
type envRead struct {
	Name string
	// Required is true for envconfig's Require: the binary refuses to start
	// without it. Everything else has a default in the code (possibly "").
	Required bool
	// Where is file:line of the first read, for messages.
	Where string
}

const modulePrefix = "github.com/slotwatch/slotwatch/"

var envNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// envFuncs are the calls whose first argument names an environment
// variable: envconfig.Loader's methods, os.Getenv/LookupEnv, and the small
// helpers some packages have (portalsim's envOr, slotctl's env, the
// checker profile's lookup).
var envFuncs = map[string]bool{
	"String": true, "Require": true, "Duration": true, "Int": true, "Float": true, "Bool": true,
	"Getenv": true, "LookupEnv": true, "Lookup": true, "lookup": true, "envOr": true, "getenv": true, "env": true,
}

// envReads lists the variables the binary built from pkg (an import path
// under this repository) reads, in its own packages and in every package of
// this repository it imports. It is derived from the code on every run, so
// a new variable a service reads is checked against the manifests at once.
func envReads(t *testing.T, root, pkg string) map[string]envRead {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,GoFiles", pkg)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr.String())
	}
	reads := map[string]envRead{}
	fset := token.NewFileSet()
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			ImportPath string
			Dir        string
			GoFiles    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if !strings.HasPrefix(p.ImportPath, modulePrefix) {
			continue
		}
		for _, name := range p.GoFiles {
			path := filepath.Join(p.Dir, name)
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatalf("parse %s: %v", path, err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				var fn string
				switch c := call.Fun.(type) {
				case *ast.SelectorExpr:
					fn = c.Sel.Name
				case *ast.Ident:
					fn = c.Name
				}
				lit, ok := call.Args[0].(*ast.BasicLit)
				if !envFuncs[fn] || !ok || lit.Kind != token.STRING {
					return true
				}
				name, err := strconv.Unquote(lit.Value)
				if err != nil || !envNameRE.MatchString(name) {
					return true
				}
				r, seen := reads[name]
				if !seen {
					pos := fset.Position(lit.Pos())
					rel, _ := filepath.Rel(root, pos.Filename)
					r = envRead{Name: name, Where: rel + ":" + strconv.Itoa(pos.Line)}
				}
				r.Required = r.Required || fn == "Require"
				reads[name] = r
				return true
			})
		}
	}
	return reads
}

// TestEnvReadsFindsAccountPoolSettings guards the scanner itself: if it
// stopped finding what accountpool's main plainly reads, every manifest
// check built on it would pass vacuously.
func TestEnvReadsFindsAccountPoolSettings(t *testing.T) {
	t.Parallel()
	reads := envReads(t, repoRoot(t), modulePrefix+"services/accountpool/cmd/accountpool")
	for name, required := range map[string]bool{
		"DATABASE_URL": true, "ENCRYPTION_KEYSET_FILE": true, "LISTEN_ADDR": false, "POOL_COOLDOWN": false,
	} {
		r, ok := reads[name]
		if !ok {
			t.Errorf("%s: not found among %v", name, reads)
			continue
		}
		if r.Required != required {
			t.Errorf("%s: required = %v, want %v", name, r.Required, required)
		}
	}
}
