#!/usr/bin/env bash
# images.sh [SERVICE...]: builds deploy/docker/SERVICE.Dockerfile (default:
# every Dockerfile there) with podman into ghcr.io/slotwatch/SERVICE:$IMAGE_TAG,
# the names the manifests use. Run under with-podman.sh (`make images`).
#
# The Dockerfiles' bases are build args whose defaults are the production
# images. BASE_IMAGES=auto (the default) uses them when they are present or
# can be pulled, and otherwise the local stand-ins of base-images.sh;
# BASE_IMAGES=local or BASE_IMAGES=production forces one or the other.
# VERSION and COMMIT are what the binaries report (Makefile LDFLAGS).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
: "${VERSION:=$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
: "${COMMIT:=$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
# The release the manifests deploy (base/kustomization.yaml's version label).
: "${IMAGE_TAG:=$(awk '/app.kubernetes.io\/version:/ { print $2; exit }' deploy/k8s/base/kustomization.yaml)}"
mode=${BASE_IMAGES:-auto}
log() { printf 'images: %s\n' "$*" >&2; }

services=("$@")
if [[ ${#services[@]} -eq 0 ]]; then
  for f in deploy/docker/*.Dockerfile; do services+=("$(basename "$f" .Dockerfile)"); done
fi

local_args=()
local_bases() {
  [[ ${#local_args[@]} -eq 0 ]] || return 0
  local out
  out=$("$root/deploy/local/base-images.sh") # fails the build when it fails
  read -r -a local_args <<<"$out"
}

for svc in "${services[@]}"; do
  file=deploy/docker/$svc.Dockerfile
  [[ -f $file ]] || { log "no $file"; exit 1; }
  # The base build args this Dockerfile declares, with their production defaults.
  bases=$(sed -n 's/^ARG \([A-Z_]*_IMAGE\)=\(.*\)$/\1=\2/p' "$file")
  use_local=0
  case $mode in
    local) use_local=1 ;;
    production) ;;
    auto)
      for b in $bases; do
        img=${b#*=}
        # A short name is Docker Hub's, as for docker; podman would also
        # match it to a local stand-in (localhost/slotwatch-local/golang:1.26).
        [[ ${img%%/*} == *.* ]] || img=docker.io/library/$img
        podman image exists "$img" || podman pull -q "$img" >/dev/null 2>&1 || { use_local=1; break; }
      done ;;
    *) log "BASE_IMAGES=$mode: want auto, local or production"; exit 2 ;;
  esac
  args=(--build-arg "VERSION=$VERSION" --build-arg "COMMIT=$COMMIT")
  if [[ $use_local -eq 1 ]]; then
    local_bases
    # Only the args this Dockerfile declares: podman warns about the others.
    for ((i = 1; i < ${#local_args[@]}; i += 2)); do
      grep -q "^ARG ${local_args[i]%%=*}=" "$file" && args+=(--build-arg "${local_args[i]}")
    done
  fi
  log "building ghcr.io/slotwatch/$svc:$IMAGE_TAG ($VERSION, $([[ $use_local -eq 1 ]] && echo local || echo production) bases)"
  # Host network: the build downloads Go modules (and the Checker's Debian
  # packages), and podman's bridge networking is not set up here.
  podman build --quiet --network host --layers -f "$file" "${args[@]}" \
    -t "ghcr.io/slotwatch/$svc:$IMAGE_TAG" . >/dev/null
done
podman images --filter reference='ghcr.io/slotwatch/*' --format '{{.Repository}}:{{.Tag}}  {{.Size}}'
