# The `twin` image used by deploy/k8s/: the CLI (serve, worker, complexes, ...) and the
# bundled scenes. Build: docker build -t twin:latest .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p twin-cli --bin twin

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 twin && mkdir -p /var/lib/twin && chown twin /var/lib/twin
COPY --from=build /src/target/release/twin /usr/local/bin/twin
COPY scenes /opt/twin/scenes
USER twin
WORKDIR /opt/twin
ENTRYPOINT ["/usr/local/bin/twin"]
