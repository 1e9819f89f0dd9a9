# syntax=docker/dockerfile:1.7
#
# shequ's container images: the workspace is compiled once (stage `build`) and
# each binary gets a small image of its own, chosen with --target:
#
#   docker build --target merchant-alliance -t shequ/merchant-alliance:0.1.0 .
#   docker build --target complaints        -t shequ/complaints:0.1.0 .
#   docker build --target pensioner-care    -t shequ/pensioner-care:0.1.0 .
#   docker build --target shequctl          -t shequ/shequctl:0.1.0 .
#
# (`docker compose -f deploy/compose.yaml build` builds the three services.)
# Targets rather than one `ARG SERVICE`: each service has its own ports,
# default addresses and health check baked in, and all four share the one
# compiled `build` stage. Needs BuildKit (the default builder since Docker 23)
# for the cache mounts and the heredoc below. deploy/README.md explains the rest.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------
# build: every binary of the workspace, release profile, from Cargo.lock.
# The crates.io registry and target/ live in BuildKit cache mounts, so a change
# to the sources recompiles the workspace's own crates and not the ~300
# dependencies (the cache belongs to the builder; a CI runner without a
# persistent builder compiles everything once per run).
FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Smaller binaries: no debug information (symbols stay, for readable panics).
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    CARGO_TERM_COLOR=never
COPY . .
RUN --mount=type=cache,id=shequ-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=shequ-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=shequ-target,target=/src/target,sharing=locked \
    cargo build --release --locked \
        --bin complaints --bin merchant-alliance --bin pensioner-care --bin shequctl \
 && mkdir -p /out \
 && cp target/release/complaints target/release/merchant-alliance \
       target/release/pensioner-care target/release/shequctl /out/

# ---------------------------------------------------------------------------
# runtime: what every image shares. Debian slim (glibc, bash for the health
# check) with CA certificates (NATS over tls:// trusts the system store unless
# SHEQU_NATS_CA_FILE is set); a fixed non-root user; data only under /data.
# Nothing is written elsewhere, so the root filesystem can be read-only.
FROM ${RUNTIME_IMAGE} AS runtime
# Not pinned on purpose: CA certificates must be the current ones, and an old
# pinned version disappears from the mirrors with the next point release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 shequ \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin shequ \
 && mkdir -p /data \
 && chown 10001:10001 /data \
 && chmod 0750 /data

# The HEALTHCHECK: GET /readyz on this container's admin port (from
# SHEQU_ADMIN_ADDR, so an overridden address is followed) with bash's /dev/tcp;
# healthy only on HTTP 200 (database answers, not shutting down). No curl needed.
COPY --chmod=0755 <<"EOF" /usr/local/bin/shequ-healthcheck
#!/bin/bash
set -u
addr=${SHEQU_ADMIN_ADDR:?SHEQU_ADMIN_ADDR is not set}
port=${addr##*:}
case $addr in
  0.0.0.0:* | \[::\]:*) host=127.0.0.1 ;;
  \[*) host=${addr%:*}; host=${host#[}; host=${host%]} ;;
  *) host=${addr%:*} ;;
esac
if ! exec 3<>"/dev/tcp/$host/$port"; then
  echo "admin port $host:$port does not answer" >&2
  exit 1
fi
printf 'GET /readyz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
if ! IFS= read -r -t 5 status <&3; then
  echo "no HTTP answer from $host:$port" >&2
  exit 1
fi
status=${status%$'\r'}
echo "$status"
[[ $status == *" 200 "* ]]
EOF

ENV SHEQU_DATA_DIR=/data \
    SHEQU_LOG_FORMAT=json
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
LABEL org.opencontainers.image.vendor="shequ" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="deploy/README.md"

# ---------------------------------------------------------------------------
# merchant-alliance (商户联盟): gRPC 50052, admin HTTP 9102.
FROM runtime AS merchant-alliance
COPY --from=build /out/merchant-alliance /usr/local/bin/merchant-alliance
ENV SHEQU_GRPC_ADDR=0.0.0.0:50052 \
    SHEQU_ADMIN_ADDR=0.0.0.0:9102
EXPOSE 50052 9102
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/shequ-healthcheck"]
LABEL org.opencontainers.image.title="shequ merchant-alliance"
ENTRYPOINT ["/usr/local/bin/merchant-alliance"]

# ---------------------------------------------------------------------------
# complaints (诉求快速响应): gRPC 50051, admin HTTP 9101.
FROM runtime AS complaints
COPY --from=build /out/complaints /usr/local/bin/complaints
ENV SHEQU_GRPC_ADDR=0.0.0.0:50051 \
    SHEQU_ADMIN_ADDR=0.0.0.0:9101
EXPOSE 50051 9101
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/shequ-healthcheck"]
LABEL org.opencontainers.image.title="shequ complaints"
ENTRYPOINT ["/usr/local/bin/complaints"]

# ---------------------------------------------------------------------------
# pensioner-care (党员助老结对帮扶): gRPC 50053, admin HTTP 9103.
FROM runtime AS pensioner-care
COPY --from=build /out/pensioner-care /usr/local/bin/pensioner-care
ENV SHEQU_GRPC_ADDR=0.0.0.0:50053 \
    SHEQU_ADMIN_ADDR=0.0.0.0:9103
EXPOSE 50053 9103
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/shequ-healthcheck"]
LABEL org.opencontainers.image.title="shequ pensioner-care"
ENTRYPOINT ["/usr/local/bin/pensioner-care"]

# ---------------------------------------------------------------------------
# shequctl: the operator command line (a one-shot tool: no ports, no health
# check). The example organisation is at /usr/share/shequ/. Also the default
# target of a plain `docker build .`.
FROM runtime AS shequctl
COPY --from=build /out/shequctl /usr/local/bin/shequctl
COPY deploy/organisation.example.json /usr/share/shequ/organisation.example.json
HEALTHCHECK NONE
LABEL org.opencontainers.image.title="shequ shequctl"
ENTRYPOINT ["/usr/local/bin/shequctl"]
CMD ["--help"]
