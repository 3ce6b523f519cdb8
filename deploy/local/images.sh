#!/usr/bin/env bash
# images.sh [--dry-run] [SERVICE...]: builds each SERVICE's image (default:
# every one) with podman into ghcr.io/slotwatch/SERVICE:$IMAGE_TAG, the
# names the manifests use. Run under with-podman.sh (`make images`).
#
# A service with a Dockerfile of its own, deploy/docker/SERVICE.Dockerfile
# (the Checker's, with Chromium), is built from it. The static services are
# the stages of deploy/docker/static.Dockerfile named after them (FROM static
# AS SERVICE), each built with --build-arg SERVICE=SERVICE --target SERVICE.
#
# The Dockerfiles' bases are build args whose defaults are the production
# images. BASE_IMAGES=auto (the default) uses them when they are present or
# can be pulled, and otherwise the local stand-ins of base-images.sh;
# BASE_IMAGES=local or BASE_IMAGES=production forces one or the other.
# VERSION and COMMIT are what the binaries report (Makefile LDFLAGS).
#
# --dry-run prints each image's podman build command, one a line, with the
# production bases, and builds nothing: deploy/deploytest's TestDockerfiles
# checks the images these commands make.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
: "${VERSION:=$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
: "${COMMIT:=$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
# The release the manifests deploy (base/kustomization.yaml's version label).
: "${IMAGE_TAG:=$(awk '/app.kubernetes.io\/version:/ { print $2; exit }' deploy/k8s/base/kustomization.yaml)}"
mode=${BASE_IMAGES:-auto}
log() { printf 'images: %s\n' "$*" >&2; }

dry_run=0
if [[ ${1:-} == --dry-run ]]; then
  dry_run=1
  shift
fi

static_file=deploy/docker/static.Dockerfile
# The services static.Dockerfile builds: its stages FROM static.
static_services() { sed -n 's/^FROM static AS \([a-z0-9-]*\)[[:space:]]*$/\1/p' "$static_file"; }

services=("$@")
if [[ ${#services[@]} -eq 0 ]]; then
  for f in deploy/docker/*.Dockerfile; do
    [[ $f == "$static_file" ]] || services+=("$(basename "$f" .Dockerfile)")
  done
  while read -r svc; do services+=("$svc"); done < <(static_services)
  mapfile -t services < <(printf '%s\n' "${services[@]}" | sort)
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
  target_args=()
  if [[ $file == "$static_file" || ! -f $file ]]; then
    static_services | grep -qx -- "$svc" || { log "no deploy/docker/$svc.Dockerfile, and no stage FROM static AS $svc in $static_file"; exit 1; }
    file=$static_file
    # Both from the one name: SERVICE is the module the build stage
    # compiles, the target the stage that copies that binary.
    target_args=(--build-arg "SERVICE=$svc" --target "$svc")
  fi
  # The base build args this Dockerfile declares, with their production defaults.
  bases=$(sed -n 's/^ARG \([A-Z_]*_IMAGE\)=\(.*\)$/\1=\2/p' "$file")
  use_local=0
  case $mode in
    local) use_local=1 ;;
    production) ;;
    auto)
      # A dry run names the production bases and asks podman nothing.
      [[ $dry_run -eq 1 ]] || for b in $bases; do
        img=${b#*=}
        # A short name is Docker Hub's, as for docker; podman would also
        # match it to a local stand-in (localhost/slotwatch-local/golang:1.26).
        [[ ${img%%/*} == *.* ]] || img=docker.io/library/$img
        podman image exists "$img" || podman pull -q "$img" >/dev/null 2>&1 || { use_local=1; break; }
      done ;;
    *) log "BASE_IMAGES=$mode: want auto, local or production"; exit 2 ;;
  esac
  [[ $dry_run -eq 0 ]] || use_local=0
  args=("${target_args[@]}" --build-arg "VERSION=$VERSION" --build-arg "COMMIT=$COMMIT")
  if [[ $use_local -eq 1 ]]; then
    local_bases
    # Only the args this Dockerfile declares: podman warns about the others.
    for ((i = 1; i < ${#local_args[@]}; i += 2)); do
      grep -q "^ARG ${local_args[i]%%=*}=" "$file" && args+=(--build-arg "${local_args[i]}")
    done
  fi
  # Host network: the build downloads Go modules (and the Checker's Debian
  # packages), and podman's bridge networking is not set up here.
  cmd=(podman build --quiet --network host --layers -f "$file" "${args[@]}" -t "ghcr.io/slotwatch/$svc:$IMAGE_TAG" .)
  if [[ $dry_run -eq 1 ]]; then
    printf '%q ' "${cmd[@]}" | sed 's/ $//'
    echo
    continue
  fi
  log "building ghcr.io/slotwatch/$svc:$IMAGE_TAG from $file ($VERSION, $([[ $use_local -eq 1 ]] && echo local || echo production) bases)"
  "${cmd[@]}" >/dev/null
done
[[ $dry_run -eq 1 ]] || podman images --filter reference='ghcr.io/slotwatch/*' --format '{{.Repository}}:{{.Tag}}  {{.Size}}'
