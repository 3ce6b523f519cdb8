package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// repoRoot is the directory holding go.work.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the test directory")
		}
		dir = parent
	}
}

// Custom resources of the Prometheus Operator. k8s.io/api does not have
// them, so these are the fields the manifests use; anything else is an
// unknown field and fails the strict decode like a typo in a core type.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Interval string `json:"interval,omitempty"`
			Path     string `json:"path,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []ruleGroup `json:"groups"`
	} `json:"spec"`
}

type ruleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Rules    []rule `json:"rules"`
}

type rule struct {
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Custom resources of cert-manager, likewise: the fields the manifests use.
type issuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}

type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		IsCA        bool     `json:"isCA,omitempty"`
		CommonName  string   `json:"commonName,omitempty"`
		SecretName  string   `json:"secretName"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		DNSNames    []string `json:"dnsNames,omitempty"`
		Usages      []string `json:"usages,omitempty"`
		PrivateKey  struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey"`
		IssuerRef struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// decoders maps apiVersion/kind to the typed object it decodes into. A kind
// not listed here fails the test: add it deliberately.
var decoders = map[string]func() any{
	"v1/Namespace":                            func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &serviceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &prometheusRule{} },
	"cert-manager.io/v1/Issuer":               func() any { return &issuer{} },
	"cert-manager.io/v1/Certificate":          func() any { return &certificate{} },
}

// manifest is the decoded output of one kustomization.
type manifest struct {
	dir         string
	objects     []any
	deployments map[string]*appsv1.Deployment
	jobs        map[string]*batchv1.Job
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pdbs        map[string]*policyv1.PodDisruptionBudget
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	policies    map[string]*networkingv1.NetworkPolicy
	accounts    map[string]*corev1.ServiceAccount
	rules       []*prometheusRule
	issuers     map[string]*issuer
	certs       map[string]*certificate
	namespaces  []*corev1.Namespace
	secrets     []*corev1.Secret
}

// kustomize's API keeps global state (its OpenAPI schema) and is not safe
// for concurrent builds, so builds are serialised, and each directory is
// built once per test binary.
var (
	buildMu sync.Mutex
	built   = map[string][][]byte{}
)

// build runs kustomize on dir (relative to deploy/k8s) and decodes every
// object strictly, into fresh objects a test may change.
func build(t *testing.T, dir string) *manifest {
	t.Helper()
	docs := buildYAML(t, dir)
	m := &manifest{
		dir:         dir,
		deployments: map[string]*appsv1.Deployment{},
		jobs:        map[string]*batchv1.Job{},
		services:    map[string]*corev1.Service{},
		configMaps:  map[string]*corev1.ConfigMap{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
		hpas:        map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		policies:    map[string]*networkingv1.NetworkPolicy{},
		accounts:    map[string]*corev1.ServiceAccount{},
		issuers:     map[string]*issuer{},
		certs:       map[string]*certificate{},
	}
	for _, y := range docs {
		m.add(decodeStrict(t, dir, y))
	}
	return m
}

// buildBeside is build, where an ops/ kustomization also sees what the
// deployed base gives its Jobs: the ServiceAccounts and the ConfigMaps
// whose names carry no hash (client-transport).
func buildBeside(t *testing.T, dir string) *manifest {
	t.Helper()
	m := build(t, dir)
	if !strings.HasPrefix(dir, "ops/") {
		return m
	}
	base := build(t, "base")
	for name, sa := range base.accounts {
		if m.accounts[name] == nil {
			m.accounts[name] = sa
		}
	}
	for name, cm := range base.configMaps {
		if m.configMaps[name] == nil {
			m.configMaps[name] = cm
		}
	}
	return m
}

func buildYAML(t *testing.T, dir string) [][]byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if docs, ok := built[dir]; ok {
		return docs
	}
	path := filepath.Join(repoRoot(t), "deploy", "k8s", dir)
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), path)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var docs [][]byte
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s/%s as YAML: %v", dir, r.GetKind(), r.GetName(), err)
		}
		docs = append(docs, y)
	}
	built[dir] = docs
	return docs
}

func decodeStrict(t *testing.T, where string, y []byte) any {
	t.Helper()
	var head struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal(y, &head); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	tm := head.TypeMeta
	what := where + ": " + tm.Kind + "/" + head.Name
	newObj, ok := decoders[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		t.Fatalf("%s: no typed decoder for %s %s; add one to decoders", what, tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	if err := yaml.UnmarshalStrict(y, obj); err != nil {
		t.Fatalf("%s: strict decode: %v", what, err)
	}
	return obj
}

func (m *manifest) add(obj any) {
	m.objects = append(m.objects, obj)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		m.deployments[o.Name] = o
	case *batchv1.Job:
		m.jobs[o.Name] = o
	case *corev1.Service:
		m.services[o.Name] = o
	case *corev1.ConfigMap:
		m.configMaps[o.Name] = o
	case *policyv1.PodDisruptionBudget:
		m.pdbs[o.Name] = o
	case *autoscalingv2.HorizontalPodAutoscaler:
		m.hpas[o.Name] = o
	case *networkingv1.NetworkPolicy:
		m.policies[o.Name] = o
	case *corev1.ServiceAccount:
		m.accounts[o.Name] = o
	case *issuer:
		m.issuers[o.Name] = o
	case *certificate:
		m.certs[o.Name] = o
	case *prometheusRule:
		m.rules = append(m.rules, o)
	case *corev1.Namespace:
		m.namespaces = append(m.namespaces, o)
	case *corev1.Secret:
		m.secrets = append(m.secrets, o)
	}
}

// workload is a pod template with the object it came from.
type workload struct {
	kind, name string
	spec       *corev1.PodSpec
	labels     map[string]string
}

func (m *manifest) workloads() []workload {
	var ws []workload
	for _, d := range m.deployments {
		ws = append(ws, workload{"Deployment", d.Name, &d.Spec.Template.Spec, d.Spec.Template.Labels})
	}
	for _, j := range m.jobs {
		ws = append(ws, workload{"Job", j.Name, &j.Spec.Template.Spec, j.Spec.Template.Labels})
	}
	return ws
}

// exampleSecretObjects decodes base/secret.example.yaml.
func exampleSecretObjects(t *testing.T) []*corev1.Secret {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "k8s", "base", "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*corev1.Secret
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj := decodeStrict(t, "secret.example.yaml document "+strconv.Itoa(i+1), []byte(doc))
		s, ok := obj.(*corev1.Secret)
		if !ok {
			t.Fatalf("secret.example.yaml holds a %T; only Secrets belong there", obj)
		}
		out = append(out, s)
	}
	return out
}

// exampleSecrets reads base/secret.example.yaml: secret name → keys.
func exampleSecrets(t *testing.T) map[string]map[string]bool {
	t.Helper()
	keys := map[string]map[string]bool{}
	for _, s := range exampleSecretObjects(t) {
		keys[s.Name] = map[string]bool{}
		for k := range s.StringData {
			keys[s.Name][k] = true
		}
		for k := range s.Data {
			keys[s.Name][k] = true
		}
	}
	return keys
}

// exampleSecretLines are the lines of every value of one example Secret,
// less blank and '#' comment lines.
func exampleSecretLines(t *testing.T, name string) []string {
	t.Helper()
	var lines []string
	for _, s := range exampleSecretObjects(t) {
		if s.Name != name {
			continue
		}
		for _, v := range s.StringData {
			for _, line := range strings.Split(v, "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					lines = append(lines, line)
				}
			}
		}
	}
	return lines
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
