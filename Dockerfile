# syntax=docker/dockerfile:1
# avs-sim image: build the binary in a Rust builder, run it on distroless.
#
# Runtime base: gcr.io/distroless/cc-debian12:nonroot. The binary is built for
# x86_64-unknown-linux-gnu and links glibc (ring's C and assembly, getaddrinfo),
# so it needs glibc and libgcc_s and nothing else. distroless/cc is exactly
# that: no shell, no package manager, no apt (so nothing to pin, DL3008 cannot
# apply), a built-in non-root user (uid 65532). A musl build on `scratch`
# would be smaller still but needs the musl target and musl-gcc for ring,
# which we cannot build and test offline; distroless/cc keeps the binary the
# same one CI tests.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Symbols only make the image bigger; the build command stays CI's own.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols

# Dependency-caching layer: the manifests and empty sources, so the
# dependencies build once and are reused until Cargo.toml/Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
COPY sim/Cargo.toml sim/Cargo.toml
COPY tests/Cargo.toml tests/Cargo.toml
RUN mkdir -p sim/src tests/src \
    && echo 'fn main() {}' > sim/src/main.rs \
    && touch sim/src/lib.rs tests/src/lib.rs \
    && cargo build --release --locked -p avs-sim

# The real sources. COPY keeps the files' old mtimes, so touch them: cargo
# must not take the empty build above for an up-to-date one.
COPY sim/src sim/src
RUN touch sim/src/main.rs sim/src/lib.rs \
    && cargo build --release --locked -p avs-sim \
    && install -d -m 1777 /out/certs /out/journal

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/avs-sim /usr/local/bin/avs-sim
# Owned by the image's user and writable by any (`docker run --user` too), so
# a fresh volume on these paths works.
COPY --from=build --chown=65532:65532 /out/certs /certs
COPY --from=build --chown=65532:65532 /out/journal /journal
COPY scenarios /scenarios
USER nonroot
WORKDIR /journal
# /certs: the generated CA (ca.pem) and server certificate; mount it to keep
# them across restarts and to hand ca.pem to your device.
# /scenarios: the bundled scenarios; mount your own over it.
# /journal: journal.jsonl, every exchange.
VOLUME ["/certs", "/scenarios", "/journal"]
# 8443 AVS (TLS, h2 + http/1.1), 8080 plaintext (h2c + http/1.1), 9090 control API.
EXPOSE 8443 8080 9090
# !!! THE CONTROL API (9090) HAS NO AUTHENTICATION. Anyone who reaches it can
# !!! push directives to devices, inject faults and read the journal. It
# !!! listens on 0.0.0.0 inside the container only so that `docker run -p`
# !!! works: publish it on 127.0.0.1 (`-p 127.0.0.1:9090:9090`) or on a
# !!! private network, never beyond the host. (There is no --control-token yet.)
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["avs-sim", "health"]
ENTRYPOINT ["avs-sim"]
CMD ["serve", "--avs-listen", "0.0.0.0:8443", "--plain-listen", "0.0.0.0:8080", "--control-listen", "0.0.0.0:9090", "--certs", "/certs", "--journal", "/journal/journal.jsonl"]
