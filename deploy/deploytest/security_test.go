package deploytest

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// mountedFile is the Secret key behind a file a container reads, if a
// Secret volume mounted in it provides that path.
func mountedFile(ps *corev1.PodSpec, c corev1.Container, path string) (secret, key string, ok bool) {
	for _, vm := range c.VolumeMounts {
		rel, found := strings.CutPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !found {
			continue
		}
		for _, v := range ps.Volumes {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == rel {
					return v.Secret.SecretName, it.Key, true
				}
			}
		}
	}
	return "", "", false
}

// TestProdRunsTLSEndToEnd: in prod every server serves a cert-manager
// certificate for its Service name, the Checker and slotctl Jobs verify it
// against the namespace's CA, and nothing says plaintext; the CA's own key
// is mounted nowhere. In dev clients are told plaintext explicitly.
func TestProdRunsTLSEndToEnd(t *testing.T) {
	t.Parallel()
	m := build(t, "overlays/prod")
	bySecret := map[string]*certificate{}
	var ca *certificate
	for _, c := range m.certs {
		if c.Spec.IsCA {
			ca = c
			continue
		}
		bySecret[c.Spec.SecretName] = c
		iss := m.issuers[c.Spec.IssuerRef.Name]
		if iss == nil || iss.Spec.CA == nil {
			t.Errorf("Certificate %s: issued by %q, want the namespace's CA Issuer", c.Name, c.Spec.IssuerRef.Name)
		}
	}
	if ca == nil {
		t.Fatal("prod has no CA Certificate (components/tls)")
	}
	for _, s := range servers {
		d := m.deployments[s]
		ps := &d.Spec.Template.Spec
		c := ps.Containers[0]
		certFile, keyFile := envValue(t, m, c, "TLS_CERT_FILE"), envValue(t, m, c, "TLS_KEY_FILE")
		sec, key, ok := mountedFile(ps, c, certFile)
		sec2, key2, ok2 := mountedFile(ps, c, keyFile)
		if !ok || !ok2 || key != "tls.crt" || key2 != "tls.key" || sec != sec2 {
			t.Errorf("%s: TLS_CERT_FILE=%q TLS_KEY_FILE=%q are not tls.crt and tls.key of one mounted Secret", s, certFile, keyFile)
			continue
		}
		cert := bySecret[sec]
		if cert == nil {
			t.Errorf("%s: serves Secret %s, which no Certificate writes", s, sec)
		} else if !slices.Contains(cert.Spec.DNSNames, s) || !slices.Contains(cert.Spec.DNSNames, s+".slotwatch.svc") {
			t.Errorf("%s: Certificate %s names %v, want the Service name the clients dial", s, cert.Name, cert.Spec.DNSNames)
		}
	}
	checker := m.deployments["checker"]
	cc := checker.Spec.Template.Spec.Containers[0]
	if v := envValue(t, m, cc, "TLS_INSECURE"); v != "false" {
		t.Errorf("prod Checker: TLS_INSECURE=%q, want false", v)
	}
	caFile := envValue(t, m, cc, "TLS_CA_FILE")
	if _, key, ok := mountedFile(&checker.Spec.Template.Spec, cc, caFile); !ok || key != "ca.crt" {
		t.Errorf("prod Checker: TLS_CA_FILE=%q is not a mounted ca.crt", caFile)
	}
	for _, w := range m.workloads() {
		for _, v := range w.spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == ca.Spec.SecretName {
				t.Errorf("%s/%s mounts the CA's Secret %s, which holds the CA's private key", w.kind, w.name, ca.Spec.SecretName)
			}
		}
	}
	// slotctl Jobs, applied beside prod, read the same ConfigMap and find
	// the CA where it says.
	job := buildBeside(t, "ops/slotctl").jobs["slotctl-import-legacy"]
	jc := job.Spec.Template.Spec.Containers[0]
	if _, key, ok := mountedFile(&job.Spec.Template.Spec, jc, m.configMaps["client-transport"].Data["TLS_CA_FILE"]); !ok || key != "ca.crt" {
		t.Errorf("slotctl Job: prod's TLS_CA_FILE is not a ca.crt the Job mounts")
	}
	if !slices.ContainsFunc(jc.EnvFrom, func(e corev1.EnvFromSource) bool {
		return e.ConfigMapRef != nil && e.ConfigMapRef.Name == "client-transport"
	}) {
		t.Errorf("slotctl Job: does not read the client-transport ConfigMap")
	}

	dev := build(t, "overlays/dev")
	if v := dev.configMaps["client-transport"].Data["TLS_INSECURE"]; v != "true" {
		t.Errorf("dev: client-transport TLS_INSECURE=%q, want true (dev runs plaintext)", v)
	}
	if len(dev.certs) > 0 {
		t.Errorf("dev has Certificates: a laptop cluster need not run cert-manager")
	}
}

// TestEachPodMountsOnlyItsTokens: a server reads the digests of its own
// callers, never a file of tokens; the Checker holds its own token and no
// other; the admin token is mounted by admin Jobs only.
func TestEachPodMountsOnlyItsTokens(t *testing.T) {
	t.Parallel()
	secrets := exampleSecrets(t)
	if len(secrets["slotwatch-auth"]) == 0 {
		t.Fatal("secret.example.yaml has no slotwatch-auth")
	}
	for _, dir := range []string{"overlays/dev", "overlays/prod", "ops/slotctl"} {
		m := buildBeside(t, dir)
		for _, w := range m.workloads() {
			var mounted []string
			for _, v := range w.spec.Volumes {
				if v.Secret == nil {
					continue
				}
				for _, it := range v.Secret.Items {
					mounted = append(mounted, v.Secret.SecretName+"/"+it.Key)
				}
			}
			what := dir + ": " + w.kind + "/" + w.name
			for _, sk := range mounted {
				secret, key, _ := strings.Cut(sk, "/")
				switch {
				case secret == "slotwatch-auth" && key != w.name+"-tokens":
					t.Errorf("%s mounts %s: a server mounts only the digests of its own callers (%s-tokens)", what, sk, w.name)
				case secret == "slotwatch-admin-token" && w.kind != "Job":
					t.Errorf("%s mounts the admin token", what)
				case secret == "slotwatch-checker-token" && w.name != "checker":
					t.Errorf("%s mounts the Checker's token", what)
				case secret == "slotwatch-notifier-token" && w.name != "notifier":
					t.Errorf("%s mounts the Notifier's token", what)
				}
			}
			if w.kind == "Deployment" && slices.Contains(servers, w.name) {
				c := w.spec.Containers[0]
				sec, key, ok := mountedFile(w.spec, c, envValue(t, m, c, "AUTH_TOKENS_FILE"))
				if !ok || sec != "slotwatch-auth" || key != w.name+"-tokens" {
					t.Errorf("%s: AUTH_TOKENS_FILE is not slotwatch-auth's %s-tokens", what, w.name)
				}
			}
		}
	}
	// Every line of the example tokens files is a digest, never a token.
	for _, line := range exampleSecretLines(t, "slotwatch-auth") {
		if !strings.HasPrefix(line, "sha256:") {
			t.Errorf("secret.example.yaml slotwatch-auth: line %q is not a digest line", line)
		}
	}
}

// TestNetworkPoliciesTrustNoForeignLabel: a pod label is trusted only
// inside this namespace or in namespaces an operator labelled; the Checker's
// internet egress is shut to private, CGNAT, link-local and Service ranges.
func TestNetworkPoliciesTrustNoForeignLabel(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"overlays/dev", "overlays/prod"} {
		m := build(t, dir)
		for name, p := range m.policies {
			for _, rule := range p.Spec.Ingress {
				for _, from := range rule.From {
					if ns := from.NamespaceSelector; ns != nil && len(ns.MatchLabels) == 0 && len(ns.MatchExpressions) == 0 &&
						name != "metrics-ingress" {
						t.Errorf("%s: NetworkPolicy %s admits pods of any namespace by their labels alone", dir, name)
					}
				}
			}
		}
		eg := m.policies["checker-portal-egress"]
		if eg == nil || len(eg.Spec.Egress) != 1 || len(eg.Spec.Egress[0].To) != 1 || eg.Spec.Egress[0].To[0].IPBlock == nil {
			t.Fatalf("%s: checker-portal-egress must be one ipBlock rule", dir)
		}
		except := eg.Spec.Egress[0].To[0].IPBlock.Except
		want := []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"}
		if dir == "overlays/prod" {
			want = append(want, "10.96.0.0/12")
		}
		for _, cidr := range want {
			if !slices.Contains(except, cidr) {
				t.Errorf("%s: the Checker's egress does not exclude %s", dir, cidr)
			}
		}
	}
}

// TestClientsBalanceOverReplicas: every client of a headless gRPC Service
// dials it through gRPC's DNS resolver, which sees every pod.
func TestClientsBalanceOverReplicas(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"overlays/dev", "overlays/prod", "ops/slotctl"} {
		m := buildBeside(t, dir)
		for _, w := range m.workloads() {
			for _, c := range w.spec.Containers {
				for _, name := range []string{"ACCOUNTPOOL_ADDR", "REQUESTS_ADDR"} {
					if v := envValue(t, m, c, name); v != "" && !strings.HasPrefix(v, "dns:///") {
						t.Errorf("%s: %s/%s sets %s=%q, want dns:///name:port", dir, w.kind, w.name, name, v)
					}
				}
			}
		}
	}
}
