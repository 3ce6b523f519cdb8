package deploytest

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// runbookSection is the text of docs/OPERATIONS.md under the heading
// title, up to the next heading of the same or a higher level.
func runbookSection(t *testing.T, title string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), docsFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	level := 0
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		hashes := len(line) - len(strings.TrimLeft(line, "#"))
		isHeading := hashes > 0 && strings.HasPrefix(line[hashes:], " ")
		switch {
		case isHeading && strings.TrimSpace(line[hashes:]) == title:
			in, level = true, hashes
			continue
		case in && isHeading && hashes <= level:
			in = false
		}
		if in {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no section %q", docsFile, title)
	}
	return strings.Join(out, "\n")
}

// TestFirstDeployNamesEverySecretKey: the runbook's "First deploy" lists
// the Secrets and keys an operator makes (by hand or in a secret manager)
// before applying an overlay; a key the Deployments or migration Jobs read
// that it leaves out keeps their pods from starting
// (CreateContainerConfigError), and a token it does not say to generate
// cannot be filled in. The TLS Secrets cert-manager writes are not the
// operator's.
func TestFirstDeployNamesEverySecretKey(t *testing.T) {
	t.Parallel()
	section := runbookSection(t, "First deploy")
	m := build(t, "overlays/prod")
	managed := map[string]bool{}
	for _, c := range m.certs {
		managed[c.Spec.SecretName] = true
	}
	want := map[string]map[string]bool{}
	add := func(secret, key string) {
		if managed[secret] {
			return
		}
		if want[secret] == nil {
			want[secret] = map[string]bool{}
		}
		want[secret][key] = true
	}
	for _, w := range m.workloads() {
		for _, v := range w.spec.Volumes {
			if v.Secret == nil || (v.Secret.Optional != nil && *v.Secret.Optional) {
				continue
			}
			for _, it := range v.Secret.Items {
				add(v.Secret.SecretName, it.Key)
			}
		}
		for _, c := range w.spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					add(e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
				}
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("overlays/prod reads no Secret: the scan found nothing")
	}
	named := func(s string) bool {
		return regexp.MustCompile(`(^|[^a-z0-9.-])` + regexp.QuoteMeta(s) + `($|[^a-z0-9.-])`).MatchString(section)
	}
	for _, secret := range slices.Sorted(maps.Keys(want)) {
		if !named(secret) {
			t.Errorf("%s, First deploy: the Secret %s (read by overlays/prod) is not named", docsFile, secret)
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(want[secret])) {
			if secret != "slotwatch-checker-token" && secret != "slotwatch-notifier-token" && secret != "slotwatch-admin-token" && !named(key) {
				t.Errorf("%s, First deploy: key %s of Secret %s (read by overlays/prod) is not named", docsFile, key, secret)
			}
		}
	}
	// Every server's Deployment is waited for after the apply.
	for _, sec := range []string{"First deploy", "Rolling out a new version"} {
		text := runbookSection(t, sec)
		for name := range m.deployments {
			if !strings.Contains(text, "deployment/"+name) {
				t.Errorf("%s, %s: the rollout wait leaves out deployment/%s", docsFile, sec, name)
			}
		}
	}
}

// TestConnectingSlotctlReachesEveryService: the runbook's "Connecting
// slotctl" is how an operator reaches the servers from a laptop; each
// server slotctl dials (a *_ADDR variable it reads, found in its code) must
// be in its table and port-forwarded there, or the runbook's commands for
// that server (`slotctl deliveries list --state dead` for the Notifier)
// dial localhost and are refused.
func TestConnectingSlotctlReachesEveryService(t *testing.T) {
	t.Parallel()
	section := runbookSection(t, "Connecting slotctl")
	reads := envReads(t, repoRoot(t), modulePrefix+"services/slotctl/cmd/slotctl")
	n := 0
	for _, name := range slices.Sorted(maps.Keys(reads)) {
		svc, ok := strings.CutSuffix(name, "_ADDR")
		if !ok {
			continue
		}
		n++
		svc = strings.ToLower(svc)
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("%s, Connecting slotctl: slotctl reads %s (%s), which the table does not name", docsFile, name, reads[name].Where)
		}
		if !strings.Contains(section, "port-forward svc/"+svc+" ") {
			t.Errorf("%s, Connecting slotctl: %s is not port-forwarded (kubectl -n slotwatch port-forward svc/%s PORT)", docsFile, svc, svc)
		}
	}
	if n < 2 {
		t.Fatalf("slotctl reads %d *_ADDR variables: the scan found too few", n)
	}
}
