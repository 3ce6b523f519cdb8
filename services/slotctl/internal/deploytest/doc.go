// Package deploytest holds the tests of what ships next to the code: the
// Kubernetes manifests in deploy/k8s (built with kustomize's Go API and
// decoded strictly into k8s.io/api types) and the Dockerfiles in
// deploy/docker. It has no code of its own; it lives in the slotctl module
// so that kustomize's dependencies stay out of the services' modules.
package deploytest
