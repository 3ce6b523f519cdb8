// Package deploytest holds the tests of what ships next to the code: the
// Kubernetes manifests in deploy/k8s (built with kustomize's Go API and
// decoded strictly into k8s.io/api types), the Dockerfiles in
// deploy/docker, and the PromQL of the alert rules and the Grafana
// dashboard. It has no code of its own; it is a module of its own (deploy)
// so that kustomize's and Prometheus' dependencies stay out of the
// services' modules.
package deploytest
