# avs-sim image: build the binary, then run it on a slim Debian base.
# (A later issue hardens this: non-root user, smaller base, health check.)
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY sim sim
COPY tests tests
RUN cargo build --release --locked -p avs-sim --bin avs-sim

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/avs-sim /usr/local/bin/avs-sim
WORKDIR /var/lib/avs-sim
# Mount a volume here to keep the generated CA across container restarts.
VOLUME ["/var/lib/avs-sim/certs"]
EXPOSE 8443 8080 9090
ENTRYPOINT ["avs-sim"]
CMD ["serve", "--avs-listen", "0.0.0.0:8443", "--plain-listen", "0.0.0.0:8080", "--control-listen", "0.0.0.0:9090", "--certs", "/var/lib/avs-sim/certs"]
