# syntax=docker/dockerfile:1
# The services that are one static binary on distroless, run as the image's
# nonroot user: accountpool, requests, notifier, portalsim and slotctl
# (checker.Dockerfile is the Checker's: it needs Chromium). Build from the
# repository root, naming the service twice: SERVICE picks the module the
# build stage compiles, and --target the service's stage below (FROM static
# AS <service>), which copies that binary and names its entrypoint and
# ports. The module of services/SERVICE reaches its siblings (gen/,
# services/platform...) through the replace lines of its go.mod.
#
#   docker build -f deploy/docker/static.Dockerfile --build-arg SERVICE=accountpool \
#     --target accountpool -t ghcr.io/slotwatch/accountpool:v0.1.0 .
#
# `make images` (deploy/local/images.sh) builds each of them this way.

# The bases are build args: their defaults are the production images;
# `make images` passes local stand-ins of the same shape where no registry
# is reachable (deploy/local/base-images.sh).
ARG BUILD_IMAGE=golang:1.26
ARG STATIC_IMAGE=gcr.io/distroless/static-debian12:nonroot

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
# Declared after the COPYs, so that the five builds share those layers.
ARG SERVICE
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    if [ -z "${SERVICE}" ]; then echo "static.Dockerfile: pass --build-arg SERVICE=<name> and --target <name>" >&2; exit 1; fi \
    && go -C services/${SERVICE} build -trimpath -ldflags="-s -w -X github.com/slotwatch/slotwatch/services/platform/buildinfo.version=${VERSION} -X github.com/slotwatch/slotwatch/services/platform/buildinfo.commit=${COMMIT}" -o /out/${SERVICE} ./cmd/${SERVICE}

FROM ${STATIC_IMAGE} AS static
# 65532 is distroless's nonroot; the manifests run as the same uid.
USER 65532:65532

# One stage per service, the --target of its image. ENTRYPOINT takes no
# build args (its exec form is not expanded, and distroless has no shell
# for the other form), so each stage names its binary; it also holds the
# service's EXPOSE, the ports its manifest declares (an EXPOSE ${PORTS}
# would be empty for slotctl, which buildah refuses). Each copies its own
# binary by name: a --target that is not SERVICE fails the build here
# rather than making an image whose entrypoint is missing.

FROM static AS accountpool
COPY --from=build /out/accountpool /usr/local/bin/accountpool
EXPOSE 50051 9091
ENTRYPOINT ["/usr/local/bin/accountpool"]

FROM static AS requests
COPY --from=build /out/requests /usr/local/bin/requests
EXPOSE 50052 9092 8082
ENTRYPOINT ["/usr/local/bin/requests"]

FROM static AS notifier
COPY --from=build /out/notifier /usr/local/bin/notifier
EXPOSE 50054 9094
ENTRYPOINT ["/usr/local/bin/notifier"]

FROM static AS portalsim
COPY --from=build /out/portalsim /usr/local/bin/portalsim
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/portalsim"]

FROM static AS slotctl
COPY --from=build /out/slotctl /usr/local/bin/slotctl
ENTRYPOINT ["/usr/local/bin/slotctl"]
