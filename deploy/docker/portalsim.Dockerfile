# syntax=docker/dockerfile:1
# portalsim: a static binary on distroless, run as the image's nonroot user.
# Build from the repository root: the module of services/portalsim reaches its
# siblings (gen/, services/platform...) through the replace lines of its go.mod.
#
#   docker build -f deploy/docker/portalsim.Dockerfile -t ghcr.io/slotwatch/portalsim:v0.1.0 .

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
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go -C services/portalsim build -trimpath -ldflags="-s -w -X github.com/slotwatch/slotwatch/services/platform/buildinfo.version=${VERSION} -X github.com/slotwatch/slotwatch/services/platform/buildinfo.commit=${COMMIT}" -o /out/portalsim ./cmd/portalsim

FROM ${STATIC_IMAGE}
COPY --from=build /out/portalsim /usr/local/bin/portalsim
# 65532 is distroless's nonroot; the manifests run as the same uid.
USER 65532:65532
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/portalsim"]
