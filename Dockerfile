# syntax=docker/dockerfile:1
#
# genesys-queue-sync container image: a static musl binary on distroless, for
# linux/amd64 and linux/arm64.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=0.1.0 \
#     --build-arg REVISION="$(git rev-parse --short=12 HEAD)" \
#     --build-arg SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
#     -t registry.example.com/genesys-queue-sync:0.1.0 --push .
#
# The build stage runs on the TARGET platform (under QEMU for the other
# architecture): aws-lc-sys compiles C, and Debian ships no musl cross
# compiler, so each architecture builds natively for its own musl target.
# Needs BuildKit (default in current Docker) for TARGETARCH and cache mounts.

# ---- build ---------------------------------------------------------------
FROM rust:1.95-bookworm AS build

ARG TARGETARCH
# build.rs records these for --version and the build_info metric; the
# context has no .git, so the revision must come from outside.
ARG REVISION=unknown
ARG SOURCE_DATE_EPOCH

# musl-tools: musl-gcc for the C parts (aws-lc-sys via rustls/aws-lc-rs).
# cmake: aws-lc-sys falls back to it for some targets/feature sets.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      musl-tools=1.2.3-1 \
      cmake=3.25.1-1 \
 && rm -rf /var/lib/apt/lists/*

# One place maps Docker's architecture names to Rust's target triples.
RUN case "${TARGETARCH:-amd64}" in \
      amd64) echo x86_64-unknown-linux-musl ;; \
      arm64) echo aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac > /rust-target \
 && rustup target add "$(cat /rust-target)"

# C code is compiled against musl's headers; Rust links it with its own
# self-contained musl libc, so no linker override is needed.
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CC_aarch64_unknown_linux_musl=musl-gcc \
    CARGO_TERM_COLOR=never \
    GENESYS_QUEUE_SYNC_REVISION=${REVISION} \
    SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}

WORKDIR /src
COPY . .

# Cache mounts keep the crate registry and target dir between builds; the
# binary is copied out because a cache mount is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=target-${TARGETARCH} \
    cargo build --release --locked --target "$(cat /rust-target)" \
 && install -D -m 0555 "target/$(cat /rust-target)/release/genesys-queue-sync" /out/genesys-queue-sync

# ---- runtime -------------------------------------------------------------
# static-debian12 carries CA certificates and /etc/passwd with the nonroot
# user (65532), and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot

# Set SOURCE to where your copy of the repository lives; CREATED is an RFC 3339
# time, e.g. "$(date -u +%Y-%m-%dT%H:%M:%SZ)".
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED
ARG SOURCE=https://github.com/example/genesys-queue-sync
LABEL org.opencontainers.image.title="genesys-queue-sync" \
      org.opencontainers.image.description="Single writer of Genesys Cloud queue agent counts into an Architect data table" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT"

COPY --from=build /out/genesys-queue-sync /genesys-queue-sync

USER 65532:65532
# Landing page, health (/healthz, /readyz) and Prometheus metrics; the
# kustomize base's config listens on ":9464" (all interfaces) so kubelet and
# Prometheus reach it.
EXPOSE 9464

ENTRYPOINT ["/genesys-queue-sync"]
# The config is not baked in: mount it (ConfigMap) at /etc/genesys-queue-sync.
CMD ["run", "--config", "/etc/genesys-queue-sync/config.toml", "--log-format", "json"]
