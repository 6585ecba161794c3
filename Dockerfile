# syntax=docker/dockerfile:1
#
# Sluice: the gateway binary on a distroless, non-root base.
#
#   docker build -t sluice .
#   docker run -p 9080:9080 -p 9180:9180 -v sluice-data:/data \
#     -e SLUICE_ADMIN_KEY="$(openssl rand -hex 24)" sluice

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/sluice ./cmd/sluice \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sluice /usr/local/bin/sluice
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /
# The admin listener binds every interface inside the container so the port
# can be published. Set SLUICE_ADMIN_KEY (at least 32 characters): without it
# sluice generates a key and prints it once in the log. Publish 9180 only
# where the admin API should be reachable.
ENV SLUICE_LISTEN=:9080 \
    SLUICE_ADMIN_LISTEN=0.0.0.0:9180 \
    SLUICE_DATA_DIR=/data
# SQLite lives in /data unless DATABASE_URL points at PostgreSQL.
VOLUME /data
# 9080 proxy (HTTP), 9443 proxy (HTTPS, when certificates are configured), 9180 admin.
EXPOSE 9080 9443 9180
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/sluice", "serve"]
