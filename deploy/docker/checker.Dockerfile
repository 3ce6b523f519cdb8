# syntax=docker/dockerfile:1
# checker: the Go binary plus Debian's Chromium headless shell, which
# chromedp drives: the same Chromium as the chromium package without the
# full browser's window machinery, at about a third of its CPU per check
# (docs/BENCHMARKS.md). Not distroless: Chromium needs its shared
# libraries and fonts.
# Build from the repository root: the module of services/checker reaches its
# siblings (gen/, services/platform...) through the replace lines of its go.mod.
#
#   docker build -f deploy/docker/checker.Dockerfile -t ghcr.io/slotwatch/checker:v0.1.0 .

# The bases are build args: their defaults are the production images;
# `make images` passes local stand-ins of the same shape where no registry
# is reachable (deploy/local/base-images.sh).
ARG BUILD_IMAGE=golang:1.26
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# Only the Go modules: never .data/ (the dev Postgres) or bin/. The build is
# the module's own (GOWORK=off): its go.mod and go.sum say what goes in,
# not go.work, which also spans test-only modules (deploy/).
COPY gen/ gen/
COPY services/ services/
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOWORK=off
# The release and commit the binary reports (--version, slotwatch_build_info):
#   --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse HEAD)
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go -C services/checker build -trimpath -ldflags="-s -w -X github.com/slotwatch/slotwatch/services/platform/buildinfo.version=${VERSION} -X github.com/slotwatch/slotwatch/services/platform/buildinfo.commit=${COMMIT}" -o /out/checker ./cmd/checker

FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium-headless-shell fonts-liberation ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed uid the manifests name in runAsUser. Chromium writes its profile
# under $HOME and screenshots go to the artifacts directory; with a
# read-only root filesystem both are emptyDir volumes in Kubernetes.
RUN groupadd --gid 10001 checker \
    && useradd --uid 10001 --gid 10001 --home-dir /home/checker --create-home --shell /usr/sbin/nologin checker \
    && install -d -o 10001 -g 10001 /var/lib/checker/artifacts
COPY --from=build /out/checker /usr/local/bin/checker
# Not root, so Chromium runs sandboxed: its namespace sandbox needs nothing
# from the image (Debian ships no setuid chrome-sandbox), only unprivileged
# user namespaces from the kernel and a seccomp profile that allows them
# (docs/OPERATIONS.md, "Chromium sandbox"; `docker run --security-opt
# seccomp=deploy/k8s/seccomp/chromium.json`). CHROME_NO_SANDBOX=true is for
# root-run local development only.
USER 10001:10001
ENV HOME=/home/checker \
    CHROME_PATH=/usr/lib/chromium/chromium-headless-shell \
    CHROME_NO_SANDBOX=false \
    CHECKER_ARTIFACTS_DIR=/var/lib/checker/artifacts
EXPOSE 50053 9093
ENTRYPOINT ["/usr/local/bin/checker"]
