package deploytest

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// kustomizations are every directory under deploy/k8s that `kubectl apply
// -k` may be pointed at.
var kustomizations = []string{
	"base",
	"overlays/dev",
	"overlays/prod",
	"overlays/podman", // make kube-play only: overlays/dev for podman on one machine
	"ops/migrate-down/accountpool",
	"ops/migrate-down/requests",
	"ops/migrate-down/notifier",
	"ops/slotctl",
}

// components are the kustomize Components overlays include.
var components = []string{"components/tls"}

// servers are the gRPC services every full deployment runs.
var servers = []string{"accountpool", "requests", "checker", "notifier"}

func TestEveryKustomizationIsListed(t *testing.T) {
	t.Parallel()
	root := filepath.Join(repoRoot(t), "deploy", "k8s")
	var found []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "kustomization.yaml" {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			found = append(found, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(found)
	want := slices.Concat(kustomizations, components)
	sort.Strings(want)
	if !slices.Equal(found, want) {
		t.Errorf("kustomizations under deploy/k8s = %v, the tests check %v: add the new one to kustomizations", found, want)
	}
}

// TestKustomizationsFollowTheRules builds every kustomization and checks the
// rules that hold for all of them, object by object.
func TestKustomizationsFollowTheRules(t *testing.T) {
	t.Parallel()
	secrets := exampleSecrets(t)
	// cert-manager writes the Secrets of the prod overlay's Certificates.
	for _, c := range build(t, "overlays/prod").certs {
		if !c.Spec.IsCA {
			secrets[c.Spec.SecretName] = map[string]bool{"tls.crt": true, "tls.key": true, "ca.crt": true}
		}
	}
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			m := buildBeside(t, dir)
			if len(m.secrets) > 0 {
				t.Errorf("the build holds Secret %s: secrets are referenced, never committed (secret.example.yaml is an example, not a resource)", m.secrets[0].Name)
			}
			for _, w := range m.workloads() {
				checkPodSpec(t, m, w, secrets)
			}
			for _, s := range m.services {
				checkServicePorts(t, s, m)
			}
			checkImages(t, m)
			checkVersionLabels(t, m)
		})
	}
}

func checkPodSpec(t *testing.T, m *manifest, w workload, secrets map[string]map[string]bool) {
	t.Helper()
	what := w.kind + "/" + w.name
	ps := w.spec
	if ps.ServiceAccountName == "" {
		t.Errorf("%s: no serviceAccountName (one ServiceAccount per service)", what)
	} else if m.accounts[ps.ServiceAccountName] == nil {
		t.Errorf("%s: ServiceAccount %s is not in the build", what, ps.ServiceAccountName)
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false: nothing here talks to the API server", what)
	}
	psc := ps.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if len(ps.InitContainers) > 0 || len(ps.EphemeralContainers) > 0 {
		t.Errorf("%s: init or ephemeral containers are not covered by these checks", what)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		volumes[v.Name] = v
		if v.Secret != nil {
			if len(v.Secret.Items) == 0 {
				t.Errorf("%s: secret volume %s mounts every key of %s: list the keys it needs in items", what, v.Name, v.Secret.SecretName)
			}
			for _, it := range v.Secret.Items {
				if !secrets[v.Secret.SecretName][it.Key] {
					t.Errorf("%s: volume %s uses key %q of Secret %s, which secret.example.yaml does not define", what, v.Name, it.Key, v.Secret.SecretName)
				}
			}
		}
		if v.HostPath != nil {
			t.Errorf("%s: hostPath volume %s", what, v.Name)
		}
	}
	for _, c := range ps.Containers {
		cw := what + " container " + c.Name
		if w.kind == "Deployment" {
			checkProbes(t, cw, c)
		}
		checkResources(t, cw, c)
		checkSecurity(t, cw, c, psc)
		checkEnvRefs(t, cw, c, m, secrets)
		checkWritablePaths(t, cw, c, volumes)
		for _, vm := range c.VolumeMounts {
			if _, ok := volumes[vm.Name]; !ok {
				t.Errorf("%s: mounts volume %s, which the pod does not define", cw, vm.Name)
			}
			if vm.SubPath != "" {
				t.Errorf("%s: mount %s uses subPath, which never sees Secret updates (tokens are re-read when they change)", cw, vm.Name)
			}
		}
	}
}

func checkProbes(t *testing.T, what string, c corev1.Container) {
	t.Helper()
	if c.ReadinessProbe == nil || c.LivenessProbe == nil {
		t.Errorf("%s: needs both a readiness and a liveness probe", what)
		return
	}
	names := map[string]bool{}
	for _, p := range c.Ports {
		names[p.Name] = true
	}
	if !names["grpc"] {
		return
	}
	// A gRPC server's probes use the plaintext metrics port: kubelet's
	// native gRPC probe cannot speak TLS, which the gRPC port may.
	for name, want := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/healthz"}} {
		g := want.probe.HTTPGet
		switch {
		case g == nil:
			t.Errorf("%s: %s probe must be httpGet %s on the metrics port (a gRPC probe fails once TLS is on)", what, name, want.path)
		case g.Path != want.path || g.Port.String() != "metrics" || !names["metrics"]:
			t.Errorf("%s: %s probe is GET %s on port %s, want %s on the container's metrics port", what, name, g.Path, g.Port.String(), want.path)
		case g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP:
			t.Errorf("%s: %s probe uses %s; the metrics port is plaintext", what, name, g.Scheme)
		}
	}
}

func checkResources(t *testing.T, what string, c corev1.Container) {
	t.Helper()
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim {
			t.Errorf("%s: needs a %s request and limit", what, r)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s above its limit %s", what, r, req.String(), lim.String())
		}
	}
}

func checkSecurity(t *testing.T, what string, c corev1.Container, psc *corev1.PodSecurityContext) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("%s: no securityContext", what)
		return
	}
	nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
	if !nonRoot {
		t.Errorf("%s: runAsNonRoot must be true", what)
	}
	if uid := firstInt(sc.RunAsUser, psc.RunAsUser); uid == nil || *uid == 0 {
		t.Errorf("%s: runAsUser must be a non-zero uid (the image's user)", what)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation must be false", what)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem must be true", what)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", what)
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: capabilities must be {drop: [ALL]} and add none", what)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	switch {
	case seccomp != nil && seccomp.Type == corev1.SeccompProfileTypeLocalhost && c.Name == "checker":
		// The checker's Chromium sandbox needs clone(CLONE_NEWUSER), which
		// the runtime's default profile denies (docs/OPERATIONS.md,
		// "Chromium sandbox").
		if seccomp.LocalhostProfile == nil || *seccomp.LocalhostProfile != checkerSeccompProfile {
			t.Errorf("%s: localhostProfile must be %s (deploy/k8s/seccomp/chromium.json on the nodes)", what, checkerSeccompProfile)
		}
	case seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("%s: seccompProfile must be RuntimeDefault", what)
	}
}

// checkerSeccompProfile is where the nodes hold deploy/k8s/seccomp/chromium.json,
// relative to the kubelet's seccomp directory.
const checkerSeccompProfile = "slotwatch/chromium.json"

// The checker's seccomp profile lets Chromium create its sandbox's
// namespaces and denies what lets a process out of a container.
func TestCheckerSeccompProfileAllowsTheSandboxOnly(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "k8s", "seccomp", "chromium.json"))
	if err != nil {
		t.Fatal(err)
	}
	var prof struct {
		DefaultAction string
		Syscalls      []struct {
			Names  []string
			Action string
		}
	}
	if err := json.Unmarshal(b, &prof); err != nil {
		t.Fatalf("chromium.json: %v", err)
	}
	denied := map[string]bool{}
	for _, sc := range prof.Syscalls {
		for _, n := range sc.Names {
			denied[n] = sc.Action == "SCMP_ACT_ERRNO" || sc.Action == "SCMP_ACT_KILL_PROCESS"
		}
	}
	if prof.DefaultAction != "SCMP_ACT_ALLOW" {
		t.Fatalf("defaultAction %q: the profile is a deny list (see docs/OPERATIONS.md)", prof.DefaultAction)
	}
	for _, n := range []string{"clone", "unshare", "chroot"} {
		if denied[n] {
			t.Errorf("%s is denied: Chromium's namespace sandbox needs it", n)
		}
	}
	for _, n := range []string{"mount", "umount2", "pivot_root", "setns", "ptrace", "bpf", "keyctl", "add_key",
		"kexec_load", "init_module", "finit_module", "open_by_handle_at", "perf_event_open", "userfaultfd", "io_uring_setup"} {
		if !denied[n] {
			t.Errorf("%s is allowed; the runtime's default profile denies it", n)
		}
	}
}

func firstInt(vs ...*int64) *int64 {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func checkEnvRefs(t *testing.T, what string, c corev1.Container, m *manifest, secrets map[string]map[string]bool) {
	t.Helper()
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil && !secrets[r.Name][r.Key] {
			t.Errorf("%s: %s reads key %q of Secret %s, which secret.example.yaml does not define", what, e.Name, r.Key, r.Name)
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			if cm := m.configMaps[r.Name]; cm == nil {
				t.Errorf("%s: %s reads ConfigMap %s, which is not in the build", what, e.Name, r.Name)
			} else if _, ok := cm.Data[r.Key]; !ok {
				t.Errorf("%s: %s reads key %q of ConfigMap %s, which has none", what, e.Name, r.Key, r.Name)
			}
		}
	}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil {
			t.Errorf("%s: envFrom Secret %s: name each secret variable with secretKeyRef, so the keys are checked", what, ef.SecretRef.Name)
		}
		if ef.ConfigMapRef != nil && m.configMaps[ef.ConfigMapRef.Name] == nil {
			t.Errorf("%s: envFrom ConfigMap %s, which is not in the build", what, ef.ConfigMapRef.Name)
		}
	}
}

// checkWritablePaths: with a read-only root, every path a container is told
// to write to (a home for Chromium's profile, an artifacts directory, /tmp
// for a browser) must be an emptyDir.
func checkWritablePaths(t *testing.T, what string, c corev1.Container, volumes map[string]corev1.Volume) {
	t.Helper()
	var paths []string
	for _, e := range c.Env {
		switch {
		case e.Name == "HOME", e.Name == "TMPDIR", strings.HasSuffix(e.Name, "_DIR"):
			paths = append(paths, e.Value)
		case e.Name == "CHROME_PATH":
			paths = append(paths, "/tmp", "/dev/shm")
		}
	}
	for _, p := range paths {
		ok := false
		for _, vm := range c.VolumeMounts {
			if vm.MountPath == p && !vm.ReadOnly && volumes[vm.Name].EmptyDir != nil {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s: writes to %s on a read-only root filesystem: mount an emptyDir there", what, p)
		}
	}
}

func checkServicePorts(t *testing.T, s *corev1.Service, m *manifest) {
	t.Helper()
	names := map[string]bool{}
	for _, p := range s.Spec.Ports {
		if p.Name == "" {
			t.Errorf("Service %s: port %d has no name", s.Name, p.Port)
		}
		names[p.Name] = true
	}
	want := map[string][]string{
		"accountpool": {"grpc", "metrics"},
		"requests":    {"grpc", "metrics", "http"},
		"checker":     {"grpc", "metrics"},
		"notifier":    {"grpc", "metrics"},
		"portalsim":   {"http"},
	}[s.Name]
	for _, n := range want {
		if !names[n] {
			t.Errorf("Service %s: no port named %q", s.Name, n)
		}
	}
	// gRPC backends that run several replicas are headless, so clients
	// balance over the pods instead of pinning one connection to one.
	if (s.Name == "accountpool" || s.Name == "requests" || s.Name == "notifier") && s.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s: clusterIP %q, want None (headless: clients balance over its pods)", s.Name, s.Spec.ClusterIP)
	}
	// The selector must pick pods of a Deployment in the same build, and the
	// target ports must be ports those pods name.
	var target *corev1.PodTemplateSpec
	for _, d := range m.deployments {
		if selects(s.Spec.Selector, d.Spec.Template.Labels) {
			target = &d.Spec.Template
		}
	}
	if target == nil {
		t.Errorf("Service %s: selector %v picks no Deployment's pods", s.Name, s.Spec.Selector)
		return
	}
	podPorts := map[string]bool{}
	for _, c := range target.Spec.Containers {
		for _, p := range c.Ports {
			podPorts[p.Name] = true
		}
	}
	for _, p := range s.Spec.Ports {
		if p.TargetPort.StrVal != "" && !podPorts[p.TargetPort.StrVal] {
			t.Errorf("Service %s: targetPort %q is no container port name", s.Name, p.TargetPort.StrVal)
		}
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

var imageRE = regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$`)

func checkImages(t *testing.T, m *manifest) {
	t.Helper()
	for _, w := range m.workloads() {
		for _, c := range w.spec.Containers {
			img := c.Image
			name, tag := splitImage(img)
			switch {
			case !imageRE.MatchString(img):
				t.Errorf("%s/%s: image %q is not registry/path:tag", w.kind, w.name, img)
			case strings.Contains(img, "@sha256:"):
			case tag == "" || tag == "latest":
				t.Errorf("%s/%s: image %q must be pinned by tag (not :latest)", w.kind, w.name, img)
			}
			if name == "" {
				t.Errorf("%s/%s: image %q has no name", w.kind, w.name, img)
			}
		}
	}
}

// checkVersionLabels: every object says which release it belongs to
// (app.kubernetes.io/version), and that is the tag of slotwatch's images.
func checkVersionLabels(t *testing.T, m *manifest) {
	t.Helper()
	const key = "app.kubernetes.io/version"
	tags := map[string]bool{}
	for _, w := range m.workloads() {
		for _, c := range w.spec.Containers {
			if repo, tag := splitImage(c.Image); strings.HasPrefix(repo, "ghcr.io/slotwatch/") {
				tags[tag] = true
			}
		}
	}
	if len(tags) > 1 {
		t.Errorf("slotwatch images of several tags in one build: %v", slices.Sorted(maps.Keys(tags)))
	}
	type labelled interface {
		GetLabels() map[string]string
		GetName() string
	}
	for _, o := range m.objects {
		l, ok := o.(labelled)
		if !ok {
			continue
		}
		v := l.GetLabels()[key]
		if v == "" {
			t.Errorf("%T %s: no %s label", o, l.GetName(), key)
		} else if len(tags) == 1 && !tags[v] {
			t.Errorf("%T %s: %s=%s, but the images are %v", o, l.GetName(), key, v, slices.Sorted(maps.Keys(tags)))
		}
	}
}

// splitImage returns an image's repository and tag.
func splitImage(img string) (repo, tag string) {
	img, _, _ = strings.Cut(img, "@")
	slash := strings.LastIndexByte(img, '/')
	if i := strings.LastIndexByte(img, ':'); i > slash {
		return img[:i], img[i+1:]
	}
	return img, ""
}

// binaryOf is the service binary an image runs: the image's last path
// element (ghcr.io/slotwatch/accountpool → accountpool).
func binaryOf(image string) string {
	repo, _ := splitImage(image)
	return repo[strings.LastIndexByte(repo, '/')+1:]
}

// runtimeEnv are variables read by the Go runtime or the OS, not by our
// code, that a manifest may set.
var runtimeEnv = map[string]bool{"HOME": true, "TMPDIR": true, "TZ": true, "GOMEMLIMIT": true, "GOGC": true, "GOMAXPROCS": true, "GODEBUG": true}

// TestEnvMatchesTheCode checks each container's environment against the
// variables its binary reads (found in the code by envReads): everything the
// code requires is set, and everything set is read (a typo in a variable
// name would otherwise leave the default in force, silently).
func TestEnvMatchesTheCode(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	type container struct {
		what   string
		server bool
		set    map[string]bool // env names, envFrom ConfigMap keys included
	}
	byBinary := map[string][]container{}
	for _, dir := range kustomizations {
		m := buildBeside(t, dir)
		for _, w := range m.workloads() {
			for _, c := range w.spec.Containers {
				b := binaryOf(c.Image)
				set := map[string]bool{}
				for _, e := range c.Env {
					set[e.Name] = true
				}
				for _, ef := range c.EnvFrom {
					if ef.ConfigMapRef != nil {
						for k := range m.configMaps[ef.ConfigMapRef.Name].Data {
							set[k] = true
						}
					}
				}
				byBinary[b] = append(byBinary[b], container{dir + ": " + w.kind + "/" + w.name, w.kind == "Deployment", set})
			}
		}
	}
	binaries := make([]string, 0, len(byBinary))
	for b := range byBinary {
		binaries = append(binaries, b)
	}
	sort.Strings(binaries)
	for _, b := range binaries {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			pkgDir := filepath.Join(root, "services", b, "cmd", b)
			if _, err := os.Stat(pkgDir); err != nil {
				t.Fatalf("a manifest runs %s, but services/%s/cmd/%s does not exist", b, b, b)
			}
			reads := envReads(t, root, modulePrefix+"services/"+b+"/cmd/"+b)
			for _, ct := range byBinary[b] {
				for name := range ct.set {
					if _, ok := reads[name]; !ok && !runtimeEnv[name] {
						t.Errorf("%s: sets %s, which %s never reads (a typo, or a setting that was removed)", ct.what, name, b)
					}
				}
				if !ct.server {
					continue
				}
				for _, r := range reads {
					if r.Required && !ct.set[r.Name] {
						t.Errorf("%s: %s requires %s (%s), which is not set", ct.what, b, r.Name, r.Where)
					}
				}
			}
		})
	}
}

func TestFullDeploymentsHaveEveryPiece(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"overlays/dev", "overlays/prod"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			m := build(t, dir)
			if len(m.namespaces) != 1 || m.namespaces[0].Name != "slotwatch" {
				t.Errorf("want one Namespace slotwatch, got %d", len(m.namespaces))
			} else if m.namespaces[0].Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
				t.Errorf("Namespace slotwatch: enforce the restricted Pod Security Standard")
			}
			for _, s := range servers {
				if m.deployments[s] == nil || m.services[s] == nil || m.accounts[s] == nil || m.pdbs[s] == nil {
					t.Errorf("%s: needs a Deployment, Service, ServiceAccount and PodDisruptionBudget", s)
				}
			}
			for _, schema := range []string{"accountpool", "requests", "notifier"} {
				j := m.jobs[schema+"-migrate"]
				if j == nil {
					t.Errorf("no migration Job %s-migrate", schema)
					continue
				}
				c := j.Spec.Template.Spec.Containers[0]
				if binaryOf(c.Image) != schema || !slices.Equal(c.Args, []string{"migrate", "up"}) {
					t.Errorf("Job %s-migrate runs %s %v, want %s migrate up", schema, binaryOf(c.Image), c.Args, schema)
				}
			}
			for _, o := range m.objects {
				if ns := namespaceOf(o); ns != "" && ns != "slotwatch" {
					t.Errorf("%T in namespace %s", o, ns)
				}
			}
			checkNetworkPolicies(t, m)
			checkPrometheusRule(t, m)
		})
	}
}

func namespaceOf(o any) string {
	type namespaced interface{ GetNamespace() string }
	if n, ok := o.(namespaced); ok {
		return n.GetNamespace()
	}
	return ""
}

func TestDevRunsOneOfEachWithPortalsim(t *testing.T) {
	t.Parallel()
	m := build(t, "overlays/dev")
	if m.deployments["portalsim"] == nil || m.services["portalsim"] == nil {
		t.Fatal("dev needs portalsim's Deployment and Service")
	}
	for name, d := range m.deployments {
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			t.Errorf("Deployment %s: dev runs one replica", name)
		}
	}
	if len(m.hpas) > 0 {
		t.Errorf("dev has an HPA: it would scale the Checker past one replica")
	}
	checker := m.deployments["checker"]
	if got := envValue(t, m, checker.Spec.Template.Spec.Containers[0], "PORTAL_BASE_URL"); got != "http://portalsim:8090" {
		t.Errorf("dev Checker's PORTAL_BASE_URL = %q, want portalsim's Service", got)
	}
}

func TestProdIsRedundant(t *testing.T) {
	t.Parallel()
	m := build(t, "overlays/prod")
	for _, s := range []string{"accountpool", "requests", "notifier"} {
		if d := m.deployments[s]; d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("Deployment %s: prod runs at least 2 replicas", s)
		}
	}
	hpa := m.hpas["checker"]
	if hpa == nil || hpa.Spec.ScaleTargetRef.Name != "checker" || hpa.Spec.ScaleTargetRef.Kind != "Deployment" {
		t.Fatalf("prod needs an HPA on Deployment checker")
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
		t.Errorf("HPA checker: minReplicas must be at least 2 and at most maxReplicas")
	}
	if m.deployments["checker"].Spec.Replicas != nil {
		t.Errorf("Deployment checker sets replicas: the HPA owns the count, and apply would fight it")
	}
	for _, s := range servers {
		d := m.deployments[s]
		aff := d.Spec.Template.Spec.Affinity
		if aff == nil || aff.PodAntiAffinity == nil {
			t.Errorf("Deployment %s: prod spreads replicas with pod anti-affinity", s)
		} else {
			for _, term := range aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
				if !selects(term.PodAffinityTerm.LabelSelector.MatchLabels, d.Spec.Template.Labels) {
					t.Errorf("Deployment %s: anti-affinity term does not select its own pods", s)
				}
			}
		}
		pdb := m.pdbs[s]
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.MaxUnavailable != nil {
			t.Errorf("PodDisruptionBudget %s: prod keeps minAvailable 1 (and no maxUnavailable)", s)
		}
		if !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("PodDisruptionBudget %s does not select its Deployment's pods", s)
		}
	}
}

func envValue(t *testing.T, m *manifest, c corev1.Container, name string) string {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			if v, ok := m.configMaps[ef.ConfigMapRef.Name].Data[name]; ok {
				return v
			}
		}
	}
	return ""
}

// checkNetworkPolicies checks who may talk to whom, by pod labels, the way
// the policies are meant to be read: default deny, DNS for all, AccountPool's
// gRPC port only for labelled clients, Postgres only for schema owners.
func checkNetworkPolicies(t *testing.T, m *manifest) {
	t.Helper()
	deny := m.policies["default-deny"]
	if deny == nil || len(deny.Spec.PodSelector.MatchLabels) != 0 || len(deny.Spec.Ingress) != 0 || len(deny.Spec.Egress) != 0 ||
		!slices.Contains(deny.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(deny.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("need a default-deny NetworkPolicy for ingress and egress of every pod")
	}
	dns := m.policies["dns-egress"]
	if dns == nil || len(dns.Spec.PodSelector.MatchLabels) != 0 || len(dns.Spec.Egress) != 1 || len(dns.Spec.Egress[0].Ports) != 2 ||
		dns.Spec.Egress[0].Ports[0].Port.IntValue() != 53 {
		t.Errorf("need a dns-egress NetworkPolicy letting every pod reach DNS on port 53")
	}

	// Ingress to AccountPool: only from pods labelled as its clients.
	ap := m.deployments["accountpool"].Spec.Template.Labels
	for name, p := range m.policies {
		if !selects(p.Spec.PodSelector.MatchLabels, ap) && len(p.Spec.PodSelector.MatchLabels) > 0 {
			continue
		}
		for _, rule := range p.Spec.Ingress {
			for _, port := range rule.Ports {
				if port.Port.IntValue() == 50051 || port.Port.StrVal == "grpc" {
					for _, from := range rule.From {
						if from.PodSelector == nil || from.PodSelector.MatchLabels["slotwatch.io/accountpool-client"] != "true" || from.NamespaceSelector != nil || from.IPBlock != nil {
							t.Errorf("NetworkPolicy %s lets %v into AccountPool's gRPC port: only pods labelled slotwatch.io/accountpool-client of this namespace may", name, from)
						}
					}
					if len(rule.From) == 0 {
						t.Errorf("NetworkPolicy %s opens AccountPool's gRPC port to everyone", name)
					}
				}
			}
		}
	}
	checker := m.deployments["checker"].Spec.Template.Labels
	if checker["slotwatch.io/accountpool-client"] != "true" || checker["slotwatch.io/requests-client"] != "true" {
		t.Errorf("the Checker's pods must carry the accountpool-client and requests-client labels")
	}

	// Postgres egress: exactly the pods that own a schema.
	var pgPolicies []*networkingv1.NetworkPolicy
	for _, p := range m.policies {
		for _, rule := range p.Spec.Egress {
			for _, port := range rule.Ports {
				if port.Port.IntValue() == 5432 {
					pgPolicies = append(pgPolicies, p)
				}
			}
		}
	}
	if len(pgPolicies) != 1 {
		t.Fatalf("want one NetworkPolicy allowing Postgres egress, got %d", len(pgPolicies))
	}
	for _, w := range m.workloads() {
		wantPG := w.name == "accountpool" || w.name == "requests" || w.name == "notifier" || strings.HasSuffix(w.name, "-migrate")
		gotPG := selects(pgPolicies[0].Spec.PodSelector.MatchLabels, w.labels)
		if wantPG != gotPG {
			t.Errorf("%s/%s: Postgres egress allowed = %v, want %v", w.kind, w.name, gotPG, wantPG)
		}
	}
}

func checkPrometheusRule(t *testing.T, m *manifest) {
	t.Helper()
	if len(m.rules) != 1 {
		t.Fatalf("want one PrometheusRule, got %d", len(m.rules))
	}
	ops, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatalf("the alerts' runbooks live in docs/OPERATIONS.md: %v", err)
	}
	anchors := markdownAnchors(string(ops))
	alerts := map[string]bool{}
	for _, g := range m.rules[0].Spec.Groups {
		for _, r := range g.Rules {
			what := fmt.Sprintf("alert %s", r.Alert)
			if r.Alert == "" {
				t.Errorf("group %s: a rule with no alert name", g.Name)
			}
			alerts[r.Alert] = true
			if !slices.Contains([]string{"info", "warning", "critical"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q, want info, warning or critical", what, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", what)
			}
			// Parsed by Prometheus' own parser; the metrics it names are
			// checked against live services in TestPromQLNamesOnlyExportedMetrics.
			parsePromQL(t, promExpr{where: m.dir + ": " + what, expr: r.Expr, alert: true})
			rb := r.Annotations["runbook"]
			file, anchor, _ := strings.Cut(rb, "#")
			if file != "docs/OPERATIONS.md" || !anchors[anchor] {
				t.Errorf("%s: runbook %q is not a heading of docs/OPERATIONS.md", what, rb)
			}
			if want := runbookBase + "docs/OPERATIONS.md#" + anchor; r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url %q, want %q (Alertmanager and Grafana link it)", what, r.Annotations["runbook_url"], want)
			}
		}
	}
	// The alerts the operators asked for, by what they watch.
	for _, want := range []string{
		"SlotwatchPoolExhausted", "SlotwatchPoolAllQuarantined", "SlotwatchHighLoginFailureRate", "SlotwatchHighBanRate",
		"SlotwatchLeasesExpiring", "SlotwatchClaimsLapsing", "SlotwatchCheckerDown", "SlotwatchHighErrorRate",
		"SlotwatchNotifierDeliveriesDead",
	} {
		if !alerts[want] {
			t.Errorf("PrometheusRule has no alert %s", want)
		}
	}
}

// runbookBase is where the repository's files are read in a browser.
const runbookBase = "https://github.com/slotwatch/slotwatch/blob/main/"

// markdownAnchors are GitHub's anchors for the headings of a Markdown page.
func markdownAnchors(md string) map[string]bool {
	anchors := map[string]bool{}
	strip := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		h = strip.ReplaceAllString(h, "")
		anchors[strings.ReplaceAll(h, " ", "-")] = true
	}
	return anchors
}
