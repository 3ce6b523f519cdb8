package deploytest

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	op   string // upper case: FROM, RUN, ...
	args string
}

type stage struct {
	from, name string
	// arg is the build arg FROM names (FROM ${STATIC_IMAGE}), whose
	// default from is; "" when FROM names an image itself.
	arg  string
	body []instruction
}

func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		stages []stage
		cur    string
		global = map[string]string{}
	)
	flush := func() {
		line := strings.TrimSpace(cur)
		cur = ""
		if line == "" {
			return
		}
		op, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(op), strings.TrimSpace(args)}
		if in.op == "ARG" && len(stages) == 0 {
			// A global ARG: the base images are build args, and the
			// checks below read their defaults, the production bases.
			name, def, _ := strings.Cut(in.args, "=")
			global[name] = def
			return
		}
		if in.op == "FROM" {
			f := strings.Fields(in.args)
			st := stage{from: os.Expand(f[0], func(name string) string { return global[name] })}
			if m := regexp.MustCompile(`^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$`).FindStringSubmatch(f[0]); m != nil {
				st.arg = m[1]
			}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			return
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before the first FROM", path, in.op)
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		cur += line
		flush()
	}
	flush()
	return stages
}

func (s stage) all(op string) []string {
	var out []string
	for _, in := range s.body {
		if in.op == op {
			out = append(out, in.args)
		}
	}
	return out
}

// TestDockerfiles checks each service's image recipe: two stages, a static
// trimmed build, a non-root runtime user that matches the manifests, and
// Chromium in the Checker's image.
func TestDockerfiles(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	cmds, err := filepath.Glob(filepath.Join(root, "services", "*", "cmd", "*"))
	if err != nil {
		t.Fatal(err)
	}
	// Every binary named after its service is an image; helper commands
	// (poolbench, checkerbench) are not.
	var images []string
	for _, c := range cmds {
		if filepath.Base(c) == filepath.Base(filepath.Dir(filepath.Dir(c))) {
			images = append(images, filepath.Base(c))
		}
	}
	for _, want := range []string{"accountpool", "requests", "checker", "notifier", "portalsim", "slotctl"} {
		if !slices.Contains(images, want) {
			images = append(images, want) // not written yet: its Dockerfile is checked all the same
		}
	}
	uids := runAsUsers(t)
	for _, svc := range images {
		t.Run(svc, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(root, "deploy", "docker", svc+".Dockerfile")
			stages := parseDockerfile(t, path)
			if len(stages) != 2 {
				t.Fatalf("%d stages, want 2 (build, runtime)", len(stages))
			}
			build, runtime := stages[0], stages[1]
			// make images swaps the bases for local stand-ins where no
			// registry answers (deploy/local/base-images.sh): by these args.
			wantRuntimeArg := "STATIC_IMAGE"
			if svc == "checker" {
				wantRuntimeArg = "DEBIAN_IMAGE"
			}
			if build.arg != "BUILD_IMAGE" || runtime.arg != wantRuntimeArg {
				t.Errorf("FROM %s, FROM %s: want FROM ${BUILD_IMAGE} and FROM ${%s}, global ARGs defaulting to the production bases, which make images replaces here",
					cmpOr(build.arg, build.from), cmpOr(runtime.arg, runtime.from), wantRuntimeArg)
			}
			if !strings.HasPrefix(build.from, "golang:1.26") || build.name == "" {
				t.Errorf("build stage FROM %s AS %q, want golang:1.26 AS <name>", build.from, build.name)
			}
			for _, st := range stages {
				if _, tag := splitImage(st.from); tag == "" || tag == "latest" {
					t.Errorf("FROM %s: pin the base image by tag", st.from)
				}
			}
			text := func(s stage) string {
				var b strings.Builder
				for _, in := range s.body {
					b.WriteString(in.op + " " + in.args + "\n")
				}
				return b.String()
			}
			bt := text(build)
			if !regexp.MustCompile(`CGO_ENABLED=0`).MatchString(bt) {
				t.Errorf("build stage does not set CGO_ENABLED=0")
			}
			// The image is built from its own module, as check-modules.sh
			// keeps it buildable: go.work also spans test-only modules
			// (deploy/), whose requirements would change the binary's.
			if !regexp.MustCompile(`go -C services/` + svc + ` build [^\n]*-trimpath[^\n]*\./cmd/` + svc + `\b`).MatchString(bt) {
				t.Errorf("build stage does not `go -C services/%s build -trimpath ... ./cmd/%s`", svc, svc)
			}
			if !regexp.MustCompile(`(?m)^ENV [^\n]*\bGOWORK=off\b`).MatchString(bt) {
				t.Errorf("build stage does not set GOWORK=off: the binary would be built with go.work's versions, not its module's")
			}
			if slices.ContainsFunc(build.all("COPY"), func(a string) bool { return strings.HasPrefix(a, "go.work ") }) {
				t.Errorf("build stage COPYs go.work, which the module's own build does not read")
			}
			if !slices.ContainsFunc(runtime.all("COPY"), func(a string) bool { return strings.Contains(a, "--from="+build.name) }) {
				t.Errorf("runtime stage does not COPY the binary from the build stage")
			}
			users := runtime.all("USER")
			if len(users) == 0 {
				t.Fatalf("runtime stage has no USER: it would run as root")
			}
			user := users[len(users)-1]
			uid, _, _ := strings.Cut(user, ":")
			if uid == "0" || uid == "root" || !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(uid) {
				t.Errorf("USER %s: want a numeric non-root uid (kubelet checks runAsNonRoot against it)", user)
			}
			if want, ok := uids[svc]; ok && want != uid {
				t.Errorf("USER %s, but the manifests run %s as uid %s", user, svc, want)
			}
			if ep := runtime.all("ENTRYPOINT"); len(ep) != 1 || !strings.Contains(ep[0], "/"+svc+`"`) {
				t.Errorf("ENTRYPOINT %v, want the %s binary", ep, svc)
			}
			if svc == "checker" {
				if !strings.HasPrefix(runtime.from, "debian:") {
					t.Errorf("checker runtime FROM %s, want a Debian image (its chromium package)", runtime.from)
				}
				checkChromium(t, root, runtime, text(runtime))
			} else if !strings.HasPrefix(runtime.from, "gcr.io/distroless/static") || !strings.HasSuffix(runtime.from, ":nonroot") {
				t.Errorf("runtime FROM %s, want gcr.io/distroless/static*:nonroot", runtime.from)
			}
		})
	}
}

// chromiumPackages are the Debian packages that provide each browser the
// Checker can drive.
var chromiumPackages = map[string]string{
	"/usr/bin/chromium":                         "chromium",
	"/usr/lib/chromium/chromium-headless-shell": "chromium-headless-shell",
}

// checkChromium: the Checker's image sets CHROME_PATH to a browser that a
// package it installs provides, and the manifest gives the same path.
func checkChromium(t *testing.T, root string, runtime stage, body string) {
	t.Helper()
	var chrome string
	for _, env := range runtime.all("ENV") {
		if m := regexp.MustCompile(`(?:^|\s)CHROME_PATH=(\S+)`).FindStringSubmatch(env); m != nil {
			chrome = m[1]
		}
	}
	pkg, ok := chromiumPackages[chrome]
	if !ok {
		t.Fatalf("checker image sets CHROME_PATH=%q, want one of %v", chrome, slices.Sorted(maps.Keys(chromiumPackages)))
	}
	if !regexp.MustCompile(`apt-get install [^\n]*\s` + regexp.QuoteMeta(pkg) + `(\s|$)`).MatchString(body) {
		t.Errorf("checker image sets CHROME_PATH=%s but does not apt-get install %s", chrome, pkg)
	}
	manifest, err := os.ReadFile(filepath.Join(root, "deploy", "k8s", "base", "checker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	if m := regexp.MustCompile(`name: CHROME_PATH\s+value: (\S+)`).FindSubmatch(manifest); m != nil {
		got = string(m[1])
	}
	if got != chrome {
		t.Errorf("the checker manifest's CHROME_PATH is %q, the image's %q: keep them the same", got, chrome)
	}
}

// runAsUsers maps each image to the uid the manifests run it as.
func runAsUsers(t *testing.T) map[string]string {
	t.Helper()
	uids := map[string]string{}
	for _, dir := range kustomizations {
		m := build(t, dir)
		for _, w := range m.workloads() {
			for _, c := range w.spec.Containers {
				uid := firstInt(nil, w.spec.SecurityContext.RunAsUser)
				if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
					uid = c.SecurityContext.RunAsUser
				}
				if uid != nil {
					uids[binaryOf(c.Image)] = strconv.FormatInt(*uid, 10)
				}
			}
		}
	}
	return uids
}

// TestDockerignoreKeepsLocalStateOut: the build context is the repository
// root, where the dev Postgres cluster, its tokens and keyset (.data/) and
// built binaries live; none of it may enter an image's build context.
func TestDockerignoreKeepsLocalStateOut(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatalf("no .dockerignore at the build context's root: %v", err)
	}
	var patterns []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, strings.TrimSuffix(line, "/"))
		}
	}
	for _, want := range []string{".data", "bin", ".git"} {
		if !slices.Contains(patterns, want) {
			t.Errorf(".dockerignore does not exclude %s/", want)
		}
	}
	// What the Dockerfiles COPY must stay in: a pattern that matches a Go
	// source file would break every image build.
	for _, p := range patterns {
		for _, src := range []string{"services/platform/auth/tokens.go", "services/slotctl/internal/cli/keyset.go", "services/accountpool/go.sum", "gen/go.mod"} {
			if ok, _ := filepath.Match(strings.TrimPrefix(p, "**/"), filepath.Base(src)); ok || p == src {
				t.Errorf(".dockerignore pattern %q excludes %s, which the images build from", p, src)
			}
		}
	}
}
