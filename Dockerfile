# syntax=docker/dockerfile:1
#
# One image for Orca's four services. It holds /usr/local/bin/scheduler,
# /usr/local/bin/dispatcher, /usr/local/bin/watcher and /usr/local/bin/actions and
# has no entrypoint: the command picks the service, e.g.
#   docker run ghcr.io/sirocco-cloud/orca /usr/local/bin/scheduler --kubeconfig ...
# (deploy/kustomize sets `command:` per Deployment; docker-compose.yaml per service).
#
# Build with `make images` (IMAGE=... to name it) or `docker build -t orca .`.

ARG GO_VERSION=1.26

# Build: static binaries (no cgo), for the target platform whatever the build's.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY cmd/ cmd/
COPY internal/ internal/
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ \
        ./cmd/scheduler ./cmd/dispatcher ./cmd/watcher ./cmd/actions

# Run: distroless static (CA certificates, tzdata for the Ignitors' timeZone, no
# shell), as the unprivileged user nonroot (65532).
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.source="https://github.com/sirocco-cloud/orca" \
      org.opencontainers.image.description="Orca's services: scheduler, dispatcher, watcher, actions (the command picks one)"
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
