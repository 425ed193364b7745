# syntax=docker/dockerfile:1
#
# redpg container image.
#   docker build -t redpg .
#   docker run --rm -e DATABASE_URL=... -e REDIS_URL=... redpg demo
# Used by docker-compose.yml (service `redpg`).

# ---- build ------------------------------------------------------------------
FROM golang:1.26 AS build
WORKDIR /src

# Dependencies first: this layer is cached until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
# VERSION names the build in `redpg --version`, `redpg stats` and each
# worker's registration: docker build --build-arg VERSION=$(git describe --tags --always --dirty) .
ARG VERSION=devel
# Static binary (pgx and go-redis are pure Go): runs on distroless/static.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -X github.com/redpg/redpg/internal/version.Version=${VERSION}" -o /out/redpg ./cmd/redpg

# ---- runtime ----------------------------------------------------------------
# distroless: no shell, no package manager, CA certificates + tzdata included
# (needed for rediss:// and sslmode=verify-full), runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/redpg /usr/local/bin/redpg
USER nonroot:nonroot
ENTRYPOINT ["redpg"]
CMD ["demo"]
