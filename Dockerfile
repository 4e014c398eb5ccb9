# syntax=docker/dockerfile:1
# freshtap: multi-stage build, a slim non-root runtime with a data volume and a HEALTHCHECK.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits rebuild only freshtap itself.
COPY Cargo.toml Cargo.lock ./
COPY crates/clevertap-sim/Cargo.toml ./crates/clevertap-sim/
RUN mkdir -p src crates/clevertap-sim/src && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs crates/clevertap-sim/src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src crates/clevertap-sim/src
COPY src ./src
COPY crates ./crates
COPY config ./config
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs crates/clevertap-sim/src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
# CA certificates follow Debian's security updates; pinning them would freeze stale roots.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 freshtap \
    && useradd --system --uid 10001 --gid freshtap --home-dir /app --shell /usr/sbin/nologin freshtap \
    && mkdir -p /app/data \
    && chown freshtap:freshtap /app/data
WORKDIR /app
COPY --from=build /src/target/release/freshtap /usr/local/bin/freshtap
COPY config ./config
USER 10001:10001
ENV FRESHTAP__SERVER__BIND=0.0.0.0:8080 \
    FRESHTAP__QUEUE__URL=sqlite:///app/data/freshtap.db \
    FRESHTAP__LOG__FORMAT=json
VOLUME ["/app/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["freshtap", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["freshtap"]
CMD ["serve"]
