# syntax=docker/dockerfile:1
# neo-events image: /usr/local/bin/worker (the entrypoint) and /usr/local/bin/eventsctl,
# static binaries on distroless, running as the non-root user 65532.
#   docker build -t ghcr.io/neo-events/neo-events:$(git describe --tags) .
# GO_VERSION follows the go directive of go.mod (deploy/chartcheck checks it).
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/worker ./cmd/eventsctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /out/eventsctl /usr/local/bin/
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/worker"]
CMD ["--config", "/etc/neo-events/worker.yaml"]
