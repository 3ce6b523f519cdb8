#!/usr/bin/env bash
# Installs what `make images` and `make kube-play` need when it is missing:
# podman and buildah (with runc, which works on this machine's hybrid
# cgroups where crun does not) and debootstrap, which builds the local
# stand-ins for the base images no registry serves here, and catatonit, from
# which podman builds the pause image of a pod's infra container (`kube
# play`) when none can be pulled.
set -euo pipefail
missing=()
for tool in podman:podman buildah:buildah runc:runc debootstrap:debootstrap catatonit:catatonit; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "ensure-podman: installing ${missing[*]}" >&2
sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for tool in podman buildah runc debootstrap catatonit; do
  command -v "$tool" >/dev/null || { echo "ensure-podman: $tool still missing after apt-get install" >&2; exit 1; }
done
