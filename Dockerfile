# syntax=docker/dockerfile:1
# authbridge in a small image: built with the Rust toolchain, run on distroless (glibc, no shell,
# no package manager) as a non-root user. `docker build -t authbridge .`; compose.yaml runs two.

FROM rust:1.94-bookworm AS build
WORKDIR /src
COPY . .
# BuildKit cache mounts keep crates and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin authbridge \
    && install -D -m 0755 target/release/authbridge /out/authbridge \
    && mkdir -p /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/authbridge /usr/local/bin/authbridge
# The embedded SQLite default needs a writable directory; PostgreSQL deployments ignore it.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
ENV AUTHBRIDGE_LISTEN=0.0.0.0:8000 \
    AUTHBRIDGE_LOG_FORMAT=json \
    AUTHBRIDGE_DATABASE_URL=sqlite:///data/authbridge.db?mode=rwc
USER 65532:65532
EXPOSE 8000
# No curl in the image: the binary asks its own /healthz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/authbridge", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/authbridge"]
CMD ["serve"]
