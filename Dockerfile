# syntax=docker/dockerfile:1
#
# genesys-queue-sync container image: a static musl binary on distroless.
#   docker build -t ghcr.io/example/genesys-queue-sync:0.1.0 .
# Needs BuildKit (default in current Docker) for the cache mounts.

# ---- build ---------------------------------------------------------------
FROM rust:1.95-bookworm AS build

# musl-tools: musl-gcc for the C parts (aws-lc-sys via rustls/aws-lc-rs).
# cmake: aws-lc-sys falls back to it for some targets/feature sets.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      musl-tools=1.2.3-1 \
      cmake=3.25.1-1 \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl

# C code is compiled against musl's headers; Rust links it with its own
# self-contained musl libc, so no linker override is needed.
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_TERM_COLOR=never

WORKDIR /src
COPY . .

# Cache mounts keep the crate registry and target dir between builds; the
# binary is copied out because a cache mount is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl \
 && install -D -m 0555 target/x86_64-unknown-linux-musl/release/genesys-queue-sync /out/genesys-queue-sync

# ---- runtime -------------------------------------------------------------
# static-debian12 carries CA certificates and /etc/passwd with the nonroot
# user (65532), and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/genesys-queue-sync /genesys-queue-sync

USER 65532:65532
# Health (/healthz, /readyz) and Prometheus metrics; set [http] listen to
# 0.0.0.0:9464 in the mounted config so it is reachable from outside the pod.
EXPOSE 9464

ENTRYPOINT ["/genesys-queue-sync"]
# The config is not baked in: mount it (ConfigMap) at /etc/genesys-queue-sync.
CMD ["run", "--config", "/etc/genesys-queue-sync/config.toml", "--log-format", "json"]
