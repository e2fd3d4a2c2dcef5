# syntax=docker/dockerfile:1.7
# The Tandem operator: a static (musl) release build of `tandem-operator`, shipped alone on distroless/static as user 65532.
# Build from the repository root (BuildKit):
#   docker build -f docker/operator.Dockerfile -t ghcr.io/tandem-run/tandem-operator:0.1.0 .
# Not built in CI: the build machine has no access to an image registry. See docker/README.md.

# The toolchain rust-toolchain.toml pins, so rustup in the image uses the one it has.
ARG RUST_VERSION=1.95.0

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
# musl-gcc for the C and assembly parts of the dependency tree (ring, SQLite).
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
# The whole workspace: cargo reads every member's manifest, and Cargo.lock pins the build (--locked).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl -p tandem-operator --bin tandem-operator \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/tandem-operator /out/tandem-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /out/tandem-operator /tandem-operator
USER 65532:65532
EXPOSE 8080 6500 19443
ENTRYPOINT ["/tandem-operator"]
