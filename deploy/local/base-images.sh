#!/usr/bin/env bash
# base-images.sh: local stand-ins for the base images the Dockerfiles name,
# for a machine that reaches no container registry (`make images` calls this
# when a production base cannot be pulled). Each is built once and kept in
# podman's storage; it is rebuilt only when this script or the host's Go
# or its CA certificates change. Run under with-podman.sh. Prints the --build-arg flags that
# select them.
#
#   golang:1.26                            -> localhost/slotwatch-local/golang:1.26
#       minbase Debian + this machine's Go toolchain (GOROOT) and CA
#       certificates, GOPATH=/go
#   debian:bookworm-slim                   -> localhost/slotwatch-local/debian:bookworm-slim
#       debootstrap --variant=minbase bookworm from the mirror apt uses
#   gcr.io/distroless/static-debian12:nonroot -> localhost/slotwatch-local/static-debian12:nonroot
#       scratch + CA certificates + tzdata + /etc/passwd with nonroot (65532),
#       no shell, no package manager
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$root/.data/containers
suite=bookworm
log() { printf 'base-images: %s\n' "$*" >&2; }

# The recipe label: a base whose label differs from this is rebuilt.
go_version=$(go env GOVERSION)
recipe=$( (cat "${BASH_SOURCE[0]}" /etc/ssl/certs/ca-certificates.crt; echo "$go_version") | sha256sum | cut -c1-16)

current() { # image: does it exist, built by this recipe?
  [[ $(podman image inspect --format '{{index .Config.Labels "io.slotwatch.recipe"}}' "$1" 2>/dev/null) == "$recipe" ]]
}

# The Debian mirror and security mirror apt uses here (one-line and deb822
# sources alike); DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR override them.
apt_uri() { # suite
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v want="$1" '
    /^deb / { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i ~ /:\/\//) { if ($(i+1) == want) { print $i; exit } break } }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == want && uri != "") { print uri; exit } }
    /^$/ { uri = "" }' || true
}
mirror=${DEBIAN_MIRROR:-$(apt_uri $suite)}
security=${DEBIAN_SECURITY_MIRROR:-$(apt_uri $suite-security)}
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}

debian=localhost/slotwatch-local/debian:$suite-slim
golang=localhost/slotwatch-local/golang:1.26
static=localhost/slotwatch-local/static-debian12:nonroot

# The root filesystem every base starts from. ca-certificates and tzdata
# come along for the static base to copy; debian:bookworm-slim itself lacks
# ca-certificates, which the Checker's Dockerfile installs anyway.
rootfs=$work/rootfs-$suite
if [[ ! -f $rootfs/.slotwatch-complete ]]; then
  log "debootstrap --variant=minbase $suite from $mirror into $rootfs"
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=ca-certificates,tzdata $suite "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SOURCES
  # As in Debian's slim images: no apt caches or docs in the layers.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  touch "$rootfs/.slotwatch-complete"
fi

if ! current $debian; then
  log "importing $rootfs as $debian"
  tar --exclude=./.slotwatch-complete -C "$rootfs" -c . |
    podman import --quiet --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "LABEL io.slotwatch.recipe=$recipe" - $debian >/dev/null
fi

if ! current $golang; then
  log "building $golang from $debian and $(go env GOROOT) ($go_version)"
  c=$(buildah from --pull-never $debian)
  buildah copy --quiet "$c" "$(go env GOROOT)" /usr/local/go >/dev/null
  # The build downloads modules through whatever this machine trusts (here
  # a TLS-intercepting egress proxy whose CA only the host has). Build
  # stage only: the shipped bases keep Debian's CA set.
  buildah copy --quiet "$c" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
  # As in the official golang image: GOPATH=/go, the toolchain on PATH.
  buildah config --env GOPATH=/go --env GOTOOLCHAIN=local \
    --env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --workingdir /go --label io.slotwatch.recipe=$recipe "$c"
  buildah commit --quiet --rm "$c" $golang >/dev/null
fi

if ! current $static; then
  log "building $static from scratch with files of $rootfs"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/etc/ssl/certs" "$tmp/usr/share" "$tmp/tmp" "$tmp/home/nonroot" "$tmp/root"
  cp "$rootfs/etc/ssl/certs/ca-certificates.crt" "$tmp/etc/ssl/certs/"
  cp -a "$rootfs/usr/share/zoneinfo" "$tmp/usr/share/"
  cp "$rootfs/etc/os-release" "$tmp/etc/" 2>/dev/null || cp "$rootfs/usr/lib/os-release" "$tmp/etc/"
  # distroless's users: root, nobody and nonroot, none with a shell.
  cat >"$tmp/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
  cat >"$tmp/etc/group" <<GROUP
root:x:0:
nobody:x:65534:
nonroot:x:65532:
GROUP
  echo 'hosts: files dns' >"$tmp/etc/nsswitch.conf"
  chmod 1777 "$tmp/tmp"
  chmod 700 "$tmp/root" "$tmp/home/nonroot"
  chown 65532:65532 "$tmp/home/nonroot"
  c=$(buildah from scratch)
  # Through a mount, not buildah copy: copy would make /home/nonroot root's.
  mnt=$(buildah mount "$c")
  cp -a "$tmp/." "$mnt/"
  buildah umount "$c" >/dev/null
  buildah config --user 65532:65532 --workingdir /home/nonroot \
    --env PATH=/usr/local/bin:/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --label io.slotwatch.recipe=$recipe "$c"
  buildah commit --quiet --rm "$c" $static >/dev/null
fi

echo "--build-arg BUILD_IMAGE=$golang --build-arg DEBIAN_IMAGE=$debian --build-arg STATIC_IMAGE=$static"
