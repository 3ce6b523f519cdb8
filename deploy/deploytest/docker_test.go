package deploytest

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	op   string // upper case: FROM, RUN, ...
	args string
}

type stage struct {
	from, name string
	// base is what FROM names as written: an image, a build arg
	// (${STATIC_IMAGE}) or an earlier stage (static).
	base string
	// arg is the build arg FROM names (FROM ${STATIC_IMAGE}), whose
	// default from is; "" when FROM names an image or a stage itself.
	arg  string
	body []instruction
}

// dockerfile is a parsed Dockerfile: its global ARGs (before the first
// FROM, with their defaults) and its stages.
type dockerfile struct {
	path   string
	global map[string]string
	stages []stage
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := dockerfile{path: path, global: map[string]string{}}
	var cur string
	flush := func() {
		line := strings.TrimSpace(cur)
		cur = ""
		if line == "" {
			return
		}
		op, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(op), strings.TrimSpace(args)}
		if in.op == "ARG" && len(f.stages) == 0 {
			// A global ARG: the base images are build args, and the
			// checks below read their defaults, the production bases.
			name, def, _ := strings.Cut(in.args, "=")
			f.global[name] = def
			return
		}
		if in.op == "FROM" {
			fs := strings.Fields(in.args)
			st := stage{base: fs[0], from: os.Expand(fs[0], func(name string) string { return f.global[name] })}
			if m := regexp.MustCompile(`^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$`).FindStringSubmatch(fs[0]); m != nil {
				st.arg = m[1]
			}
			if len(fs) == 3 && strings.EqualFold(fs[1], "AS") {
				st.name = fs[2]
			}
			f.stages = append(f.stages, st)
			return
		}
		if len(f.stages) == 0 {
			t.Fatalf("%s: %s before the first FROM", path, in.op)
		}
		f.stages[len(f.stages)-1].body = append(f.stages[len(f.stages)-1].body, in)
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
	return f
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

func (s stage) text() string {
	var b strings.Builder
	for _, in := range s.body {
		b.WriteString(in.op + " " + in.args + "\n")
	}
	return b.String()
}

// dockerImage is what one build of a Dockerfile makes, as docker and buildah
// make it: the stages from the runtime base to the target (the last stage
// when there is no --target), with the build args expanded where they
// would be. An ARG is seen only by the stage that declares it, and only
// after its declaration; ENV carries into the stages built FROM its stage;
// exec-form ENTRYPOINT and CMD are never expanded.
type dockerImage struct {
	file  dockerfile
	chain []stage // base first, target last; bodies expanded
	// build is each stage a COPY --from of the chain names, expanded.
	build map[string]stage
}

// buildOf is the image that building f with --target target (the last
// stage when "") and these --build-arg values makes.
func buildOf(t *testing.T, f dockerfile, target string, args map[string]string) dockerImage {
	t.Helper()
	byName := map[string]int{}
	for i, st := range f.stages {
		if st.name != "" {
			byName[st.name] = i
		}
	}
	i := len(f.stages) - 1
	if target != "" {
		var ok bool
		if i, ok = byName[target]; !ok {
			t.Fatalf("%s has no stage %q to build --target", f.path, target)
		}
	}
	// Expanded stages, by index: each with the ENV it leaves to its children.
	type done struct {
		st  stage
		env map[string]string
	}
	memo := map[int]done{}
	var expand func(i int) done
	expand = func(i int) done {
		if d, ok := memo[i]; ok {
			return d
		}
		st := f.stages[i]
		env := map[string]string{}
		if p, ok := byName[st.base]; ok && p < i {
			maps.Copy(env, expand(p).env)
		}
		vars := maps.Clone(env)
		var body []instruction
		for _, in := range st.body {
			switch in.op {
			case "ENTRYPOINT", "CMD":
				body = append(body, in)
				continue
			}
			in.args = os.Expand(in.args, func(name string) string { return vars[name] })
			body = append(body, in)
			switch in.op {
			case "ARG":
				name, def, hasDef := strings.Cut(in.args, "=")
				if !hasDef {
					def = f.global[name]
				}
				if v, ok := args[name]; ok {
					def = v
				}
				if _, isEnv := env[name]; !isEnv {
					vars[name] = def
				}
			case "ENV":
				for _, kv := range strings.Fields(in.args) {
					if k, v, ok := strings.Cut(kv, "="); ok {
						env[k], vars[k] = v, v
					}
				}
			}
		}
		st.body = body
		memo[i] = done{st, env}
		return memo[i]
	}
	b := dockerImage{file: f, build: map[string]stage{}}
	for {
		b.chain = append([]stage{expand(i).st}, b.chain...)
		p, ok := byName[f.stages[i].base]
		if !ok || p >= i {
			break
		}
		i = p
	}
	for _, st := range b.chain {
		for _, c := range st.all("COPY") {
			if m := regexp.MustCompile(`--from=(\S+)`).FindStringSubmatch(c); m != nil {
				if p, ok := byName[m[1]]; ok {
					b.build[m[1]] = expand(p).st
				}
			}
		}
	}
	return b
}

// last is the value of the chain's last op instruction, as the image
// config keeps it ("" if none).
func (b dockerImage) last(op string) string {
	v := ""
	for _, st := range b.chain {
		if a := st.all(op); len(a) > 0 {
			v = a[len(a)-1]
		}
	}
	return v
}

// exposed are the ports the image declares, sorted.
func (b dockerImage) exposed() []string {
	var ports []string
	for _, st := range b.chain {
		for _, e := range st.all("EXPOSE") {
			for _, p := range strings.Fields(e) {
				ports = append(ports, strings.TrimSuffix(p, "/tcp"))
			}
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// imageBuild is how `make images` builds one image: a line of
// `deploy/local/images.sh --dry-run`, which prints each podman build it
// would run.
type imageBuild struct {
	image, file, target string
	args                map[string]string
	line                string
}

// The VERSION and COMMIT the test hands images.sh, to find them in the
// binaries' ldflags.
const (
	planVersion = "v0.0.0-deploytest"
	planCommit  = "0123456789abcdef0123456789abcdef01234567"
)

var (
	planOnce   sync.Once
	planBuilds map[string]imageBuild
	planErr    string
)

// imageBuilds runs `deploy/local/images.sh --dry-run` and returns its
// builds by image name (ghcr.io/slotwatch/accountpool:v0.1.0).
func imageBuilds(t *testing.T) map[string]imageBuild {
	t.Helper()
	root := repoRoot(t)
	planOnce.Do(func() {
		cmd := exec.Command("bash", filepath.Join(root, "deploy", "local", "images.sh"), "--dry-run")
		cmd.Dir = root
		for _, kv := range os.Environ() {
			switch k, _, _ := strings.Cut(kv, "="); k {
			case "VERSION", "COMMIT", "IMAGE_TAG", "BASE_IMAGES":
			default:
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "VERSION="+planVersion, "COMMIT="+planCommit)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				stderr = ee.Stderr
			}
			planErr = "images.sh --dry-run: " + err.Error() + "\n" + string(out) + string(stderr)
			return
		}
		planBuilds = map[string]imageBuild{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || f[0] != "podman" || f[1] != "build" || f[len(f)-1] != "." {
				planErr = "images.sh --dry-run printed " + strconv.Quote(line) + ", want podman build ... ."
				return
			}
			b := imageBuild{args: map[string]string{}, line: line}
			for i := 2; i < len(f)-1; i++ {
				next := func() string {
					i++
					if i >= len(f)-1 {
						planErr = "images.sh --dry-run: " + f[i-1] + " without a value in " + strconv.Quote(line)
						return ""
					}
					return f[i]
				}
				switch f[i] {
				case "-f", "--file":
					b.file = next()
				case "--target":
					b.target = next()
				case "-t", "--tag":
					b.image = next()
				case "--build-arg":
					k, v, _ := strings.Cut(next(), "=")
					b.args[k] = v
				}
			}
			if planErr != "" {
				return
			}
			if b.image == "" || b.file == "" {
				planErr = "images.sh --dry-run: no -t or -f in " + strconv.Quote(line)
				return
			}
			if _, dup := planBuilds[b.image]; dup {
				planErr = "images.sh --dry-run builds " + b.image + " twice"
				return
			}
			planBuilds[b.image] = b
		}
	})
	if planErr != "" {
		t.Fatal(planErr)
	}
	return planBuilds
}

// manifestImage is what the manifests say of one image: the uid they run
// it as and the container ports its containers declare.
type manifestImage struct {
	ref   string // ghcr.io/slotwatch/accountpool:v0.1.0
	uid   string
	ports []string // sorted
}

// manifestImages maps each image of every kustomization, by binary
// (binaryOf), to what the manifests say of it.
func manifestImages(t *testing.T) map[string]manifestImage {
	t.Helper()
	out := map[string]manifestImage{}
	for _, dir := range kustomizations {
		m := build(t, dir)
		for _, w := range m.workloads() {
			for _, c := range w.spec.Containers {
				bin := binaryOf(c.Image)
				mi := out[bin]
				mi.ref = c.Image
				uid := firstInt(nil, w.spec.SecurityContext.RunAsUser)
				if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
					uid = c.SecurityContext.RunAsUser
				}
				if uid != nil {
					mi.uid = strconv.FormatInt(*uid, 10)
				}
				for _, p := range c.Ports {
					mi.ports = append(mi.ports, strconv.Itoa(int(p.ContainerPort)))
				}
				slices.Sort(mi.ports)
				mi.ports = slices.Compact(mi.ports)
				out[bin] = mi
			}
		}
	}
	return out
}

// runAsUsers maps each image to the uid the manifests run it as.
func runAsUsers(t *testing.T) map[string]string {
	t.Helper()
	uids := map[string]string{}
	for bin, mi := range manifestImages(t) {
		if mi.uid != "" {
			uids[bin] = mi.uid
		}
	}
	return uids
}

// TestDockerfiles checks each service's image as `make images` builds it
// (deploy/local/images.sh --dry-run: its Dockerfile, --target and build
// args): two kinds of stage, a static trimmed build of the service's own
// module with the release in its ldflags, the binary copied to the path
// the entrypoint names, a non-root runtime user and the ports that match
// the manifests, and Chromium in the Checker's image.
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
	manifests := manifestImages(t)
	for _, want := range slices.Concat([]string{"accountpool", "requests", "checker", "notifier", "portalsim", "slotctl"}, slices.Collect(maps.Keys(manifests))) {
		if !slices.Contains(images, want) {
			images = append(images, want) // not written yet: its image is checked all the same
		}
	}
	slices.Sort(images)

	// make images builds the images the manifests run, by the names they
	// use, and nothing else; and every Dockerfile is one of its builds.
	builds := map[string]imageBuild{}
	for ref, b := range imageBuilds(t) {
		bin := binaryOf(ref)
		if !slices.Contains(images, bin) {
			t.Errorf("make images builds %s, which is no service's image", ref)
		}
		if mi, ok := manifests[bin]; ok && mi.ref != ref {
			t.Errorf("make images builds %s, but the manifests run %s", ref, mi.ref)
		}
		builds[bin] = b
	}
	files, err := filepath.Glob(filepath.Join(root, "deploy", "docker", "*.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		if !slices.ContainsFunc(slices.Collect(maps.Values(builds)), func(b imageBuild) bool { return filepath.Clean(b.file) == rel }) {
			t.Errorf("%s is no image's Dockerfile in make images: remove it, or build from it", rel)
		}
	}

	for _, svc := range images {
		t.Run(svc, func(t *testing.T) {
			t.Parallel()
			ib, ok := builds[svc]
			if !ok {
				t.Fatalf("make images (deploy/local/images.sh --dry-run) does not build %s", svc)
			}
			f := parseDockerfile(t, filepath.Join(root, ib.file))
			img := buildOf(t, f, ib.target, ib.args)
			checkImage(t, root, svc, ib, img, manifests[svc])
		})
	}
}

// checkImage checks the image of service svc that build ib makes.
func checkImage(t *testing.T, root, svc string, ib imageBuild, img dockerImage, mi manifestImage) {
	t.Helper()
	t.Logf("%s", ib.line)
	runtime := img.chain[0]
	// make images swaps the bases for local stand-ins where no registry
	// answers (deploy/local/base-images.sh): by these args.
	wantRuntimeArg := "STATIC_IMAGE"
	if svc == "checker" {
		wantRuntimeArg = "DEBIAN_IMAGE"
	}
	if runtime.arg != wantRuntimeArg {
		t.Errorf("runtime FROM %s: want FROM ${%s}, a global ARG defaulting to the production base, which make images replaces here",
			cmpOr(runtime.arg, runtime.from), wantRuntimeArg)
	}
	if svc == "checker" {
		if !strings.HasPrefix(runtime.from, "debian:") {
			t.Errorf("checker runtime FROM %s, want a Debian image (its chromium package)", runtime.from)
		}
		var body strings.Builder
		for _, st := range img.chain {
			body.WriteString(st.text())
		}
		checkChromium(t, root, img, body.String())
	} else if !strings.HasPrefix(runtime.from, "gcr.io/distroless/static") || !strings.HasSuffix(runtime.from, ":nonroot") {
		t.Errorf("runtime FROM %s, want gcr.io/distroless/static*:nonroot", runtime.from)
	}

	// The entrypoint, in exec form (distroless has no shell), is the
	// binary a COPY --from the build stage put there.
	var entrypoint []string
	if ep := img.last("ENTRYPOINT"); json.Unmarshal([]byte(ep), &entrypoint) != nil || len(entrypoint) != 1 {
		t.Fatalf("ENTRYPOINT %s, want the exec form [\"/usr/local/bin/%s\"]", ep, svc)
	}
	bin := entrypoint[0]
	if bin != "/usr/local/bin/"+svc {
		t.Errorf("ENTRYPOINT [%q], want [\"/usr/local/bin/%s\"]: the binary keeps its name (its messages and --version say it)", bin, svc)
	}
	var buildStage stage
	var out string
	for _, st := range img.chain {
		for _, c := range st.all("COPY") {
			m := regexp.MustCompile(`^--from=(\S+)\s+(\S+)\s+(\S+)$`).FindStringSubmatch(c)
			if m == nil {
				continue
			}
			if dst := m[3]; dst == bin || (strings.HasSuffix(dst, "/") && dst+filepath.Base(m[2]) == bin) {
				buildStage, out = img.build[m[1]], m[2]
			}
		}
	}
	if buildStage.name == "" {
		t.Fatalf("no COPY --from a build stage puts %s, the entrypoint, in the image (the stages built: %s)", bin, stageNames(img))
	}

	if buildStage.arg != "BUILD_IMAGE" || !strings.HasPrefix(buildStage.from, "golang:1.26") {
		t.Errorf("build stage FROM %s, want FROM ${BUILD_IMAGE} defaulting to golang:1.26", cmpOr(buildStage.arg, buildStage.from))
	}
	for _, st := range slices.Concat(img.chain, []stage{buildStage}) {
		if st.arg == "" && st.base != "" && !slices.ContainsFunc(img.file.stages, func(s stage) bool { return s.name == st.base }) {
			t.Errorf("FROM %s: the bases are build args (make images replaces them)", st.base)
		}
		if _, tag := splitImage(st.from); st.arg != "" && (tag == "" || tag == "latest") {
			t.Errorf("FROM %s: pin the base image by tag", st.from)
		}
	}
	bt := buildStage.text()
	if !regexp.MustCompile(`CGO_ENABLED=0`).MatchString(bt) {
		t.Errorf("build stage does not set CGO_ENABLED=0")
	}
	if !regexp.MustCompile(`(?m)^ENV [^\n]*\bGOWORK=off\b`).MatchString(bt) {
		t.Errorf("build stage does not set GOWORK=off: the binary would be built with go.work's versions, not its module's")
	}
	if slices.ContainsFunc(buildStage.all("COPY"), func(a string) bool { return strings.HasPrefix(a, "go.work ") }) {
		t.Errorf("build stage COPYs go.work, which the module's own build does not read")
	}
	// The image is built from its own module, as check-modules.sh keeps
	// it buildable: go.work also spans test-only modules (deploy/), whose
	// requirements would change the binary's. Build args expanded as the
	// builder would (one not declared in the stage is empty).
	goBuild := regexp.MustCompile(`go -C (\S+) build ([^\n]*?)-o (\S+) (\S+)(?:\s|$)`).FindStringSubmatch(bt)
	if goBuild == nil {
		t.Fatalf("build stage does not `go -C services/%s build ... -o %s ./cmd/%s`:\n%s", svc, out, svc, bt)
	}
	if goBuild[1] != "services/"+svc || goBuild[3] != out || goBuild[4] != "./cmd/"+svc {
		t.Errorf("build stage runs `go -C %s build ... -o %s %s`, want `go -C services/%s build ... -o %s ./cmd/%s` (build args %v)",
			goBuild[1], goBuild[3], goBuild[4], svc, out, svc, ib.args)
	}
	flags := goBuild[2]
	if !strings.Contains(flags, "-trimpath") {
		t.Errorf("go build %s: no -trimpath", flags)
	}
	const bi = "github.com/slotwatch/slotwatch/services/platform/buildinfo"
	for _, want := range []string{`-ldflags="-s -w `, "-X " + bi + ".version=" + planVersion + " ", "-X " + bi + ".commit=" + planCommit + `"`} {
		if !strings.Contains(flags, want) {
			t.Errorf("go build %s: no %s (make images passes VERSION=%s COMMIT=%s; --version and slotwatch_build_info report them)", flags, want, planVersion, planCommit)
		}
	}

	user := img.last("USER")
	if user == "" {
		t.Fatalf("the image has no USER: it would run as root")
	}
	uid, _, _ := strings.Cut(user, ":")
	if uid == "0" || uid == "root" || !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(uid) {
		t.Errorf("USER %s: want a numeric non-root uid (kubelet checks runAsNonRoot against it)", user)
	}
	if mi.uid != "" && mi.uid != uid {
		t.Errorf("USER %s, but the manifests run %s as uid %s", user, svc, mi.uid)
	}
	if got := img.exposed(); !slices.Equal(got, mi.ports) {
		t.Errorf("the image EXPOSEs %v, the manifests' containers of %s declare ports %v: keep them the same", got, svc, mi.ports)
	}
}

func stageNames(b dockerImage) string {
	var names []string
	for _, st := range b.chain {
		names = append(names, cmpOr(st.name, st.from))
	}
	return strings.Join(names, " -> ")
}

// chromiumPackages are the Debian packages that provide each browser the
// Checker can drive.
var chromiumPackages = map[string]string{
	"/usr/bin/chromium":                         "chromium",
	"/usr/lib/chromium/chromium-headless-shell": "chromium-headless-shell",
}

// checkChromium: the Checker's image sets CHROME_PATH to a browser that a
// package it installs provides, and the manifest gives the same path.
func checkChromium(t *testing.T, root string, img dockerImage, body string) {
	t.Helper()
	var chrome string
	for _, st := range img.chain {
		for _, env := range st.all("ENV") {
			if m := regexp.MustCompile(`(?:^|\s)CHROME_PATH=(\S+)`).FindStringSubmatch(env); m != nil {
				chrome = m[1]
			}
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
