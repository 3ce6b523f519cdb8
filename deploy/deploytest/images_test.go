package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

// imageTestsEnv turns the image tests on: `make test-images` builds the
// images (`make images`) and sets it. `make test` leaves it unset: there
// the Dockerfiles and manifests are checked by decoding only.
const imageTestsEnv = "SLOTWATCH_IMAGE_TESTS"

// staticImageLimit is the goal for the images on the static base.
const staticImageLimit = 30 << 20

// needImages skips a test of the built images unless `make test-images`
// runs it.
func needImages(t *testing.T) {
	t.Helper()
	if os.Getenv(imageTestsEnv) != "1" {
		t.Skipf("the built images are tested by `make test-images` (%s=1)", imageTestsEnv)
	}
}

// podman runs podman (configured by deploy/local/with-podman.sh, which
// `make test-images` runs the test under) and returns its stdout.
func podman(ctx context.Context, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, "podman", args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func mustPodman(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := podman(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// podSecrets are the Secrets of base/secret.example.yaml, made for real:
// fresh keysets and tokens, a database per service. The test's own client
// token (admin) is in adminToken.
type podSecrets struct {
	values     map[string]map[string]string // Secret name -> key -> value
	adminToken string                       // a file holding the admin token
}

func makeSecrets(t *testing.T) podSecrets {
	t.Helper()
	callers := map[auth.Role]auth.NewCaller{}
	for _, r := range []auth.Role{auth.RoleChecker, auth.RoleAdmin, auth.RoleReader} {
		c, err := auth.GenerateCaller(r, string(r))
		if err != nil {
			t.Fatal(err)
		}
		callers[r] = c
	}
	// The Notifier calls Requests with a reader token of its own.
	notifier, err := auth.GenerateCaller(auth.RoleReader, "notifier")
	if err != nil {
		t.Fatal(err)
	}
	lines := func(roles ...auth.Role) string {
		var b strings.Builder
		for _, r := range roles {
			b.WriteString(callers[r].Line() + "\n")
		}
		return b.String()
	}
	keyset := func() string {
		k, err := secrets.Generate()
		if err != nil {
			t.Fatal(err)
		}
		return string(k)
	}
	// One database per service, as with one role per service in
	// production: each migrates its own schema.
	s := podSecrets{values: map[string]map[string]string{
		"slotwatch-postgres": {"accountpool-url": pgtest.NewURL(t), "requests-url": pgtest.NewURL(t), "notifier-url": pgtest.NewURL(t)},
		"slotwatch-keysets":  {"accountpool-keyset.json": keyset(), "requests-keyset.json": keyset(), "notifier-keyset.json": keyset()},
		"slotwatch-auth": {
			"accountpool-tokens": lines(auth.RoleChecker, auth.RoleAdmin, auth.RoleReader),
			"requests-tokens":    lines(auth.RoleChecker, auth.RoleAdmin, auth.RoleReader) + notifier.Line() + "\n",
			"notifier-tokens":    lines(auth.RoleAdmin, auth.RoleReader),
			"checker-tokens":     lines(auth.RoleAdmin, auth.RoleReader),
		},
		"slotwatch-checker-token":  {"token": callers[auth.RoleChecker].Token},
		"slotwatch-notifier-token": {"token": notifier.Token},
		"slotwatch-admin-token":    {"token": callers[auth.RoleAdmin].Token},
	}}
	s.adminToken = filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(s.adminToken, []byte(callers[auth.RoleAdmin].Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every Secret key the example names exists here: a manifest change
	// that adds one must add it to this test too.
	for name, keys := range exampleSecrets(t) {
		if name == "slotwatch-legacy" {
			continue // only for the import-legacy Job
		}
		for k := range keys {
			if _, ok := s.values[name][k]; !ok {
				t.Fatalf("the test makes no %s/%s, which secret.example.yaml has", name, k)
			}
		}
	}
	return s
}

// hostAliases are the names a pod reaches the others by (the Services),
// all on this host: the containers share its network.
var hostAliases = []string{"accountpool", "requests", "checker", "notifier", "portalsim"}

// runArgs are the arguments of `podman run` that give container c of pod
// spec ps what a kubelet would: its user, a read-only root filesystem
// with only the declared volumes writable, no capabilities, its seccomp
// profile, and only the environment the manifest gives it.
func runArgs(t *testing.T, m *manifest, ps *corev1.PodSpec, c corev1.Container, sec podSecrets) []string {
	t.Helper()
	root := repoRoot(t)
	dir := t.TempDir()
	psc, csc := ps.SecurityContext, c.SecurityContext
	if psc == nil || csc == nil {
		t.Fatalf("%s: no security context", c.Name)
	}
	uid := firstInt(csc.RunAsUser, psc.RunAsUser)
	gid := firstInt(csc.RunAsGroup, psc.RunAsGroup)
	if uid == nil || gid == nil {
		t.Fatalf("%s: no runAsUser/runAsGroup", c.Name)
	}
	fsGroup := *gid
	if psc.FSGroup != nil {
		fsGroup = *psc.FSGroup
	}
	args := []string{"run", "--detach", "--pull=never", "--network=host",
		"--user", fmt.Sprintf("%d:%d", *uid, *gid), "--group-add", strconv.FormatInt(fsGroup, 10)}
	for _, h := range hostAliases {
		args = append(args, "--add-host", h+":127.0.0.1")
	}
	if csc.ReadOnlyRootFilesystem != nil && *csc.ReadOnlyRootFilesystem {
		// podman would add writable tmpfs on /tmp, /var/tmp and /run;
		// a kubelet does not.
		args = append(args, "--read-only", "--read-only-tmpfs=false")
	}
	if csc.Capabilities != nil && slices.Contains(csc.Capabilities.Drop, "ALL") {
		args = append(args, "--cap-drop=all")
	}
	if csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation {
		args = append(args, "--security-opt=no-new-privileges")
	}
	if sp := csc.SeccompProfile; sp != nil && sp.Type == corev1.SeccompProfileTypeLocalhost {
		// The nodes install deploy/k8s/seccomp/* under slotwatch/.
		args = append(args, "--security-opt=seccomp="+filepath.Join(root, "deploy", "k8s", "seccomp", strings.TrimPrefix(*sp.LocalhostProfile, "slotwatch/")))
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		volumes[v.Name] = v
	}
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			t.Fatalf("%s: mount of unknown volume %s", c.Name, vm.Name)
		}
		switch {
		case v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory && vm.MountPath == "/dev/shm":
			args = append(args, "--shm-size", strconv.FormatInt(v.EmptyDir.SizeLimit.Value(), 10))
		case v.EmptyDir != nil:
			// kubelet makes an emptyDir world-writable (and group-owned by
			// fsGroup when one is set).
			d := filepath.Join(dir, "empty-"+v.Name)
			if err := os.Mkdir(d, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(d, 0o777); err != nil { // past the umask
				t.Fatal(err)
			}
			args = append(args, "--volume", d+":"+vm.MountPath)
		case v.Secret != nil:
			d := filepath.Join(dir, "secret-"+v.Name)
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			mode := os.FileMode(0o644)
			if v.Secret.DefaultMode != nil {
				mode = os.FileMode(*v.Secret.DefaultMode)
			}
			for _, it := range v.Secret.Items {
				val, ok := sec.values[v.Secret.SecretName][it.Key]
				if !ok {
					t.Fatalf("%s: volume %s wants %s/%s, which the test does not make", c.Name, v.Name, v.Secret.SecretName, it.Key)
				}
				f := filepath.Join(d, it.Path)
				if err := os.WriteFile(f, []byte(val), mode); err != nil {
					t.Fatal(err)
				}
				// As a kubelet does with fsGroup: the group may read it.
				if err := os.Chown(f, 0, int(fsGroup)); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(f, mode); err != nil {
					t.Fatal(err)
				}
			}
			opt := ""
			if vm.ReadOnly {
				opt = ":ro"
			}
			args = append(args, "--volume", d+":"+vm.MountPath+opt)
		default:
			t.Fatalf("%s: volume %s: the test knows emptyDir and secret volumes only", c.Name, v.Name)
		}
	}

	var env []string
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Fatalf("%s: envFrom other than a ConfigMap", c.Name)
		}
		cm := m.configMaps[ef.ConfigMapRef.Name]
		if cm == nil {
			t.Fatalf("%s: envFrom ConfigMap %s is not in the manifests", c.Name, ef.ConfigMapRef.Name)
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range cm.Data {
				if !yield(k) {
					return
				}
			}
		}) {
			env = append(env, k+"="+cm.Data[k])
		}
	}
	for _, e := range c.Env {
		switch vf := e.ValueFrom; {
		case vf == nil:
			env = append(env, e.Name+"="+e.Value)
		case vf.SecretKeyRef != nil:
			val, ok := sec.values[vf.SecretKeyRef.Name][vf.SecretKeyRef.Key]
			if !ok {
				t.Fatalf("%s: env %s wants %s/%s, which the test does not make", c.Name, e.Name, vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
			}
			env = append(env, e.Name+"="+val)
		case vf.ResourceFieldRef != nil && vf.ResourceFieldRef.Resource == "limits.memory":
			env = append(env, fmt.Sprintf("%s=%d", e.Name, c.Resources.Limits.Memory().Value()))
		default:
			t.Fatalf("%s: env %s: a valueFrom the test does not know", c.Name, e.Name)
		}
	}
	// A file, not --env: secrets stay out of the process list.
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte(strings.Join(env, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(args, "--env-file", envFile, c.Image)
	args = append(args, c.Command...)
	return append(args, c.Args...)
}

// container is one running container of the test.
type container struct {
	name  string
	grace time.Duration
}

// start runs container c of pod spec ps as the pod's name, and stops and
// removes it when the test ends (if the test has not stopped it).
func start(t *testing.T, m *manifest, ps *corev1.PodSpec, c corev1.Container, sec podSecrets, name string) container {
	t.Helper()
	for _, p := range c.Ports {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.ContainerPort)); err != nil {
			t.Fatalf("%s: port %d is taken on this host, where the containers share the host's network: %v", name, p.ContainerPort, err)
		} else {
			l.Close()
		}
	}
	grace := 30 * time.Second
	if ps.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*ps.TerminationGracePeriodSeconds) * time.Second
	}
	args := runArgs(t, m, ps, c, sec)
	args = slices.Insert(args, 1, "--name", name)
	mustPodman(t, args...)
	ct := container{name: name, grace: grace}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if t.Failed() {
			logs, _ := podman(ctx, "logs", "--tail", "40", name)
			t.Logf("%s's last log lines:\n%s", name, logs)
		}
		podman(ctx, "rm", "--force", "--time", "0", name)
	})
	return ct
}

// waitReady polls the container's readiness probe (an httpGet) as a
// kubelet would, until it answers 2xx.
func (ct container) waitReady(t *testing.T, c corev1.Container, timeout time.Duration) {
	t.Helper()
	p := c.ReadinessProbe
	if p == nil || p.HTTPGet == nil {
		t.Fatalf("%s: no httpGet readiness probe", c.Name)
	}
	port := probePort(t, c, p.HTTPGet.Port)
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, p.HTTPGet.Path)
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return
			}
		}
		if state := ct.state(t); state != "running" {
			t.Fatalf("%s is %s before it was ready", ct.name, state)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not ready within %s (last: %v)", ct.name, url, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func probePort(t *testing.T, c corev1.Container, port intstr.IntOrString) int32 {
	t.Helper()
	if port.Type == intstr.Int {
		return port.IntVal
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort
		}
	}
	t.Fatalf("%s: probe port %q is not a port of the container", c.Name, port.StrVal)
	return 0
}

func (ct container) state(t *testing.T) string {
	t.Helper()
	return mustPodman(t, "inspect", "--format", "{{.State.Status}}", ct.name)
}

// uid is the real uid of the container's main process, as the host's
// kernel sees it.
func (ct container) uid(t *testing.T) string {
	t.Helper()
	pid := mustPodman(t, "inspect", "--format", "{{.State.Pid}}", ct.name)
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindSubmatch(status)
	if m == nil {
		t.Fatalf("no Uid line in /proc/%s/status", pid)
	}
	return string(m[1])
}

// stop sends SIGTERM (podman stop) with the pod's grace period, after
// which podman would SIGKILL; a clean shutdown exits 0 before that.
func (ct container) stop(t *testing.T) {
	t.Helper()
	mustPodman(t, "stop", "--time", strconv.Itoa(int(ct.grace/time.Second)), ct.name)
	code := mustPodman(t, "inspect", "--format", "{{.State.ExitCode}}", ct.name)
	if code != "0" {
		logs, _ := podman(context.Background(), "logs", "--tail", "20", ct.name)
		t.Errorf("%s exited %s after SIGTERM, want 0 within its grace period of %s (137: killed when it ran out)\n%s", ct.name, code, ct.grace, logs)
	}
}

// TestImagesRunAsTheirManifestsSay runs every image of the dev overlay the
// way its manifest runs it: the migration Jobs to completion, then
// portalsim, AccountPool, Requests, the Notifier and the Checker, each as its non-root
// user with a read-only root filesystem, only the manifest's environment
// and writable mounts, until its readiness probe answers. The Checker then
// finds a slot that portalsim offers, with Chromium inside its container,
// and each stops cleanly on SIGTERM within its grace period.
func TestImagesRunAsTheirManifestsSay(t *testing.T) {
	needImages(t)
	m := build(t, "overlays/dev")
	sec := makeSecrets(t)
	runMigrations(t, m, sec)

	order := []string{"portalsim", "accountpool", "requests", "notifier", "checker"}
	if names := slices.Sorted(func(yield func(string) bool) {
		for n := range m.deployments {
			if !yield(n) {
				return
			}
		}
	}); !slices.Equal(names, slices.Sorted(slices.Values(order))) {
		t.Fatalf("overlays/dev has Deployments %v; the test runs %v", names, order)
	}
	running := map[string]container{}
	for _, name := range order {
		d := m.deployments[name]
		ps := &d.Spec.Template.Spec
		c := ps.Containers[0]
		ct := start(t, m, ps, c, sec, "deploytest-"+name)
		ct.waitReady(t, c, 3*time.Minute)
		want := strconv.FormatInt(*firstInt(c.SecurityContext.RunAsUser, ps.SecurityContext.RunAsUser), 10)
		if got := ct.uid(t); got != want || got == "0" {
			t.Errorf("%s runs as uid %s, want the manifest's %s", name, got, want)
		}
		running[name] = ct
	}

	t.Run("CheckerFindsASlotInPortalsim", func(t *testing.T) {
		findSlot(t, sec)
	})

	for _, name := range slices.Backward(order) {
		running[name].stop(t)
	}
}

// runMigrations runs the migration Jobs' containers to completion, as
// the images' own commands, in the order a deploy needs them.
func runMigrations(t *testing.T, m *manifest, sec podSecrets) {
	t.Helper()
	for _, name := range []string{"accountpool-migrate", "requests-migrate", "notifier-migrate"} {
		j := m.jobs[name]
		if j == nil {
			t.Fatalf("no Job %s in %s", name, m.dir)
		}
		ps := &j.Spec.Template.Spec
		ct := start(t, m, ps, ps.Containers[0], sec, "deploytest-"+name)
		code := mustPodman(t, "wait", ct.name)
		if code != "0" {
			logs, _ := podman(context.Background(), "logs", ct.name)
			t.Fatalf("Job %s exited %s\n%s", name, code, logs)
		}
	}
}

// findSlot loads the demo's dataset with `slotctl seed` (the binary built
// from this tree, as an operator runs it: six accounts, missions fra and
// bel, four requests) into AccountPool, Requests and portalsim, has it free
// the dataset's slot on portalsim, and waits for Requests to say the
// Checker found it for the one request that wants it; the other three stay
// pending.
func findSlot(t *testing.T, sec podSecrets) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	slotctl := filepath.Join(t.TempDir(), "slotctl")
	build := exec.CommandContext(ctx, "go", "build", "-o", slotctl, "./services/slotctl/cmd/slotctl")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build slotctl: %v\n%s", err, out)
	}
	var stderr bytes.Buffer
	seed := exec.CommandContext(ctx, slotctl, "-o", "json", "--accountpool", "127.0.0.1:50051", "--requests", "127.0.0.1:50052",
		"--token-file", sec.adminToken, "seed", "--portalsim", "http://127.0.0.1:8090", "--free-slot")
	seed.Stderr = &stderr
	out, err := seed.Output()
	if err != nil {
		t.Fatalf("slotctl seed: %v\n%s%s", err, out, stderr.Bytes())
	}
	var loaded struct {
		AccountsCreated int `json:"accounts_created"`
		Requests        []struct {
			ID        string `json:"id"`
			Applicant string `json:"applicant"`
		} `json:"requests"`
		Target    string `json:"target"`
		SlotFreed bool   `json:"slot_freed"`
	}
	if err := json.Unmarshal(out, &loaded); err != nil {
		t.Fatalf("slotctl seed -o json: %v\n%s", err, out)
	}
	if loaded.AccountsCreated != 6 || len(loaded.Requests) != 4 || loaded.Target == "" || !loaded.SlotFreed {
		t.Fatalf("slotctl seed loaded %s", out)
	}
	t.Logf("slotctl seed: 6 accounts, 4 requests; the slot is for %s", loaded.Target)

	rq := rqv1.NewRequestsServiceClient(dialAdmin(t, "127.0.0.1:50052", sec.adminToken))
	for {
		got, err := rq.GetAppointmentRequest(ctx, &rqv1.GetAppointmentRequestRequest{Id: loaded.Target})
		if err != nil {
			t.Fatalf("the Checker in its container did not find the slot: %v", err)
		}
		if got.GetRequest().GetStatus() == rqv1.RequestStatus_REQUEST_STATUS_SLOT_FOUND {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the Checker in its container did not find the slot: the request is %s", got.GetRequest().GetStatus())
		case <-time.After(time.Second):
		}
	}
	for _, r := range loaded.Requests {
		if r.ID == loaded.Target {
			continue
		}
		got, err := rq.GetAppointmentRequest(ctx, &rqv1.GetAppointmentRequestRequest{Id: r.ID})
		if err != nil {
			t.Fatal(err)
		}
		if st := got.GetRequest().GetStatus(); st != rqv1.RequestStatus_REQUEST_STATUS_PENDING {
			t.Errorf("%s's request %s is %s, want still pending: the slot is not in its window", r.Applicant, r.ID, st)
		}
	}
}

func dialAdmin(t *testing.T, addr, tokenFile string) *grpc.ClientConn {
	t.Helper()
	opts, err := auth.DialOptions(addr, auth.ClientConfig{TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestStaticImagesAreSmallAndShellless: the images on the static base
// have no shell to run (nothing for an intruder to exec), run as the
// manifests' non-root user by default, report the version they were
// built as, and stay under staticImageLimit.
func TestStaticImagesAreSmallAndShellless(t *testing.T) {
	needImages(t)
	uids := runAsUsers(t)
	// The images make images builds from static.Dockerfile.
	var static []string
	for ref, b := range imageBuilds(t) {
		if filepath.Base(b.file) == "static.Dockerfile" {
			static = append(static, binaryOf(ref))
		}
	}
	if len(static) == 0 {
		t.Fatal("make images builds nothing from deploy/docker/static.Dockerfile")
	}
	slices.Sort(static)
	for _, svc := range static {
		t.Run(svc, func(t *testing.T) {
			img := "ghcr.io/slotwatch/" + svc + ":" + imageTag(t)
			user := mustPodman(t, "image", "inspect", "--format", "{{.Config.User}}", img)
			if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || (uids[svc] != "" && uid != uids[svc]) {
				t.Errorf("image user %q, want the manifests' uid %s", user, uids[svc])
			}
			size, err := strconv.ParseInt(mustPodman(t, "image", "inspect", "--format", "{{.Size}}", img), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %.1f MB", img, float64(size)/1e6)
			if size > staticImageLimit {
				t.Errorf("%s is %d bytes, over the %d of the goal", img, size, staticImageLimit)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := podman(ctx, "run", "--rm", "--pull=never", "--network=none", "--entrypoint", "/bin/sh", img, "-c", "true"); err == nil {
				t.Errorf("%s runs /bin/sh: the static images have no shell", img)
			}
			out, err := podman(ctx, "run", "--rm", "--pull=never", "--network=none", "--read-only", img, "--version")
			if err != nil {
				t.Fatal(err)
			}
			if v := os.Getenv("VERSION"); v != "" && !strings.Contains(out, " "+v+" ") {
				t.Errorf("%s --version says %q, want version %s (VERSION of make images)", img, out, v)
			} else if strings.Contains(out, " dev ") {
				t.Errorf("%s --version says %q: built without its version", img, out)
			}
		})
	}
}

// imageTag is the tag `make images` gives the images: the release the
// manifests deploy (IMAGE_TAG overrides it, as it does for make images).
func imageTag(t *testing.T) string {
	t.Helper()
	if tag := os.Getenv("IMAGE_TAG"); tag != "" {
		return tag
	}
	d := build(t, "overlays/dev").deployments["accountpool"]
	if d == nil {
		t.Fatal("no accountpool Deployment in overlays/dev")
	}
	_, tag := splitImage(d.Spec.Template.Spec.Containers[0].Image)
	return tag
}
