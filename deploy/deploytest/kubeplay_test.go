package deploytest

import (
	"bytes"
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// kubePlayEnv turns TestKubePlay on: `make kube-play` sets it.
const kubePlayEnv = "SLOTWATCH_KUBE_PLAY"

// kubePlayYAML renders what podman 4.3.1 plays of m (overlays/podman): its
// ConfigMaps and Deployments, with the rewrites podman needs. Two are of
// Secrets, which podman 4.3.1 reads only from `podman secret`s and with
// which it panics on Secret volumes (docs/OPERATIONS.md):
//   - each Secret volume becomes a hostPath directory under dir holding the
//     volume's items, mode defaultMode, group fsGroup, as a kubelet writes
//     them;
//   - each env secretKeyRef becomes the value itself (the file is 0600);
//
// and one of ports: podman 4.3.1 publishes every containerPort, which it
// refuses on the host network ("PortMappings can only be used with Bridge
// or slirp4netns networking"), so the containers' ports go, and probes
// name their port by number instead; and one of seccomp: podman 4.3.1
// reads a Localhost profile from the pod's annotation
// (container.seccomp.security.alpha.kubernetes.io/<container>) only, not
// from securityContext.seccompProfile, so the annotation is added (without
// it Chromium's sandbox gets the default profile, which refuses chroot).
//
// Everything else is played as rendered.
func kubePlayYAML(t *testing.T, m *manifest, sec podSecrets, dir string) []byte {
	t.Helper()
	var docs [][]byte
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range m.configMaps {
			if !yield(n) {
				return
			}
		}
	}) {
		y, err := yaml.Marshal(m.configMaps[name])
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, y)
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range m.deployments {
			if !yield(n) {
				return
			}
		}
	}) {
		d := m.deployments[name].DeepCopy()
		ps := &d.Spec.Template.Spec
		fsGroup := int64(0)
		if ps.SecurityContext != nil && ps.SecurityContext.FSGroup != nil {
			fsGroup = *ps.SecurityContext.FSGroup
		}
		for i, v := range ps.Volumes {
			if v.Secret == nil {
				continue
			}
			vd := filepath.Join(dir, name+"-"+v.Name)
			if err := os.Mkdir(vd, 0o755); err != nil {
				t.Fatal(err)
			}
			mode := os.FileMode(0o644)
			if v.Secret.DefaultMode != nil {
				mode = os.FileMode(*v.Secret.DefaultMode)
			}
			for _, it := range v.Secret.Items {
				val, ok := sec.values[v.Secret.SecretName][it.Key]
				if !ok {
					t.Fatalf("%s: volume %s wants %s/%s, which the test does not make", name, v.Name, v.Secret.SecretName, it.Key)
				}
				f := filepath.Join(vd, it.Path)
				if err := os.WriteFile(f, []byte(val), mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(f, 0, int(fsGroup)); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(f, mode); err != nil {
					t.Fatal(err)
				}
			}
			dirType := corev1.HostPathDirectory
			ps.Volumes[i].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: vd, Type: &dirType}}
		}
		for ci := range ps.Containers {
			c := &ps.Containers[ci]
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
				if p != nil && p.HTTPGet != nil {
					p.HTTPGet.Port = intstr.FromInt32(probePort(t, *c, p.HTTPGet.Port))
				}
			}
			c.Ports = nil
			csc := c.SecurityContext
			if csc != nil && csc.SeccompProfile != nil && csc.SeccompProfile.Type == corev1.SeccompProfileTypeLocalhost {
				if d.Spec.Template.Annotations == nil {
					d.Spec.Template.Annotations = map[string]string{}
				}
				// podman reads one path segment after "localhost/": the
				// profile's file name, under --seccomp-profile-root.
				d.Spec.Template.Annotations["container.seccomp.security.alpha.kubernetes.io/"+c.Name] = "localhost/" + filepath.Base(*csc.SeccompProfile.LocalhostProfile)
			}
			for ei, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				val, ok := sec.values[ref.Name][ref.Key]
				if !ok {
					t.Fatalf("%s: env %s wants %s/%s, which the test does not make", name, e.Name, ref.Name, ref.Key)
				}
				c.Env[ei] = corev1.EnvVar{Name: e.Name, Value: val}
			}
		}
		y, err := yaml.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, y)
	}
	return bytes.Join(docs, []byte("---\n"))
}

// TestKubePlayYAMLIsWhatPodmanPlays is TestKubePlay's short sibling in
// `make test` (no podman): overlays/podman keeps every Deployment of
// overlays/dev on the host network with the Service names on 127.0.0.1,
// and the YAML TestKubePlay hands podman has each rewrite it needs and
// nothing podman 4.3.1 refuses: no Secret volume (a hostPath directory with
// the Secret's items, their defaultMode, the pod's fsGroup), no secretKeyRef
// (the value), no containerPort (probes by number), and the Checker's
// seccomp profile as the annotation.
func TestKubePlayYAMLIsWhatPodmanPlays(t *testing.T) {
	m := build(t, "overlays/podman")
	dev := build(t, "overlays/dev")
	if got, want := slices.Sorted(maps.Keys(m.deployments)), slices.Sorted(maps.Keys(dev.deployments)); !slices.Equal(got, want) {
		t.Fatalf("overlays/podman has Deployments %v, overlays/dev %v", got, want)
	}
	sec := makeSecrets(t)
	dir := t.TempDir()
	played := kubePlayYAML(t, m, sec, dir)
	seccompAnnotations := 0
	for _, doc := range bytes.Split(played, []byte("---\n")) {
		var kind struct{ Kind string }
		if err := yaml.Unmarshal(doc, &kind); err != nil {
			t.Fatal(err)
		}
		if kind.Kind == "ConfigMap" {
			continue
		}
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict(doc, &d); err != nil || d.Kind != "Deployment" {
			t.Fatalf("a played document is no Deployment (%v):\n%s", err, doc)
		}
		ps := d.Spec.Template.Spec
		ha := ps.HostAliases
		if !ps.HostNetwork || len(ha) != 1 || ha[0].IP != "127.0.0.1" || !slices.Equal(ha[0].Hostnames, hostAliases) {
			t.Errorf("%s: hostNetwork %v, hostAliases %v; want the host network and %v on 127.0.0.1", d.Name, ps.HostNetwork, ha, hostAliases)
		}
		orig := dev.deployments[d.Name].Spec.Template.Spec
		for i, v := range ps.Volumes {
			ov := orig.Volumes[i]
			if v.Secret != nil {
				t.Errorf("%s: volume %s is still a Secret volume", d.Name, v.Name)
			}
			if ov.Secret == nil {
				continue
			}
			if v.HostPath == nil || filepath.Dir(v.HostPath.Path) != dir {
				t.Errorf("%s: Secret volume %s became %+v, want a hostPath under the test's directory", d.Name, v.Name, v.VolumeSource)
				continue
			}
			for _, it := range ov.Secret.Items {
				st, err := os.Stat(filepath.Join(v.HostPath.Path, it.Path))
				if err != nil {
					t.Errorf("%s: volume %s: %v", d.Name, v.Name, err)
					continue
				}
				if ov.Secret.DefaultMode != nil && st.Mode().Perm() != os.FileMode(*ov.Secret.DefaultMode) {
					t.Errorf("%s: %s has mode %v, want the Secret's defaultMode %o", d.Name, it.Path, st.Mode().Perm(), *ov.Secret.DefaultMode)
				}
			}
		}
		for _, c := range ps.Containers {
			if len(c.Ports) > 0 {
				t.Errorf("%s/%s: containerPorts %v (podman 4.3.1 refuses them on the host network)", d.Name, c.Name, c.Ports)
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					t.Errorf("%s/%s: env %s is still a secretKeyRef", d.Name, c.Name, e.Name)
				}
			}
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
				if p != nil && p.HTTPGet != nil && p.HTTPGet.Port.Type != intstr.Int {
					t.Errorf("%s/%s: a probe names port %q, not a number", d.Name, c.Name, p.HTTPGet.Port.StrVal)
				}
			}
			if csc := c.SecurityContext; csc != nil && csc.SeccompProfile != nil && csc.SeccompProfile.Type == corev1.SeccompProfileTypeLocalhost {
				want := "localhost/" + filepath.Base(*csc.SeccompProfile.LocalhostProfile)
				if got := d.Spec.Template.Annotations["container.seccomp.security.alpha.kubernetes.io/"+c.Name]; got != want {
					t.Errorf("%s/%s: seccomp annotation %q, want %q", d.Name, c.Name, got, want)
				}
				seccompAnnotations++
			}
		}
	}
	if seccompAnnotations == 0 {
		t.Error("no container has a Localhost seccomp profile: the Checker's is gone from overlays/dev")
	}
}

// TestKubePlay plays overlays/podman (overlays/dev on the host network) with
// `podman kube play --network host`: the migration Jobs' containers first,
// then every Deployment of the overlay from its rendered YAML, until each
// answers its readiness probe; the Checker in its pod then finds a slot
// that portalsim (a Deployment of the overlay) offers, and `podman kube
// down` removes it all.
func TestKubePlay(t *testing.T) {
	if os.Getenv(kubePlayEnv) != "1" {
		t.Skipf("`make kube-play` plays the dev overlay (%s=1)", kubePlayEnv)
	}
	m := build(t, "overlays/podman")
	for name, d := range m.deployments {
		ha := d.Spec.Template.Spec.HostAliases
		if len(ha) != 1 || ha[0].IP != "127.0.0.1" || !slices.Equal(ha[0].Hostnames, hostAliases) {
			t.Fatalf("overlays/podman: Deployment %s has hostAliases %v, want %v on 127.0.0.1", name, ha, hostAliases)
		}
	}
	sec := makeSecrets(t)
	runMigrations(t, m, sec)

	dir := t.TempDir()
	// The nodes install deploy/k8s/seccomp/* as slotwatch/*; podman takes
	// the file name alone (kubePlayYAML).
	profiles := filepath.Join(repoRoot(t), "deploy", "k8s", "seccomp")
	secretDir := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secretDir, 0o755); err != nil {
		t.Fatal(err)
	}
	played := filepath.Join(dir, "kube-play.yaml")
	if err := os.WriteFile(played, kubePlayYAML(t, m, sec, secretDir), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// podman 4.3.1 leaves hostAliases out of /etc/hosts on the host
	// network: the same names go in through containers.conf's
	// base_hosts_file, in a copy of deploy/local/containers.conf.
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost "+strings.Join(hostAliases, " ")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "local", "containers.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf = bytes.Replace(conf, []byte("[containers]\n"), []byte("[containers]\nbase_hosts_file = \""+hosts+"\"\n"), 1)
	confFile := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(confFile, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	var outBuf, errBuf bytes.Buffer
	cmd := exec.CommandContext(ctx, "podman", "kube", "play", "--network", "host", "--seccomp-profile-root", profiles, played)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+confFile)
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err = cmd.Run()
	out := outBuf.String() + errBuf.String()

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if t.Failed() {
			for name, d := range m.deployments {
				ct := name + "-pod-0-" + d.Spec.Template.Spec.Containers[0].Name
				logs, err := podman(ctx, "logs", "--tail", "40", ct)
				t.Logf("%s's last log lines (%v):\n%s", ct, err, logs)
			}
		}
		if out, err := podman(ctx, "kube", "down", played); err != nil {
			t.Errorf("podman kube down: %v\n%s", err, out)
		}
		// kube down stops at the first pod it does not find (a play that
		// failed half-way): remove whatever is left one by one.
		for name := range m.deployments {
			podman(ctx, "pod", "rm", "--force", "--ignore", name+"-pod-0")
		}
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("podman kube play:\n%s", out)

	for _, name := range []string{"portalsim", "accountpool", "requests", "notifier", "checker"} {
		d := m.deployments[name]
		if d == nil {
			t.Fatalf("no Deployment %s in overlays/podman", name)
		}
		ps := &d.Spec.Template.Spec
		c := ps.Containers[0]
		// podman names the container of a Deployment's first replica
		// <name>-pod-0-<container>.
		ct := container{name: name + "-pod-0-" + c.Name}
		ct.waitReady(t, c, 3*time.Minute)
		want := strconv.FormatInt(*firstInt(c.SecurityContext.RunAsUser, ps.SecurityContext.RunAsUser), 10)
		if got := ct.uid(t); got != want || got == "0" {
			t.Errorf("%s runs as uid %s, want the manifest's %s", ct.name, got, want)
		}
	}
	findSlot(t, sec)
}
