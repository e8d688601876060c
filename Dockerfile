# Build: docker build -t qstash-dev .
# Run:   docker run -p 8080:8080 qstash-dev            (same as: ... qstash-dev qstash dev)
# Keep state across restarts (README "Keeping state"):
#        docker run -p 8080:8080 -v qstash-data:/data qstash-dev dev -data-dir /data
# (The release workflow publishes the same image from its static binaries: Dockerfile.release.)
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: built against stub sources, so editing src/ does
# not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
COPY benches/qstash-bench/Cargo.toml benches/qstash-bench/
RUN mkdir -p src benches/qstash-bench \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && echo 'fn main() {}' > benches/qstash-bench/main.rs \
 && cargo build --release --locked -p qstash --bin qstash \
 && rm -rf src benches/qstash-bench/main.rs
ARG QSTASH_BUILD_COMMIT=""
ENV QSTASH_BUILD_COMMIT=${QSTASH_BUILD_COMMIT}
COPY src ./src
COPY benches ./benches
# COPY keeps the files' own times, which may be older than the stubs: touch so cargo
# rebuilds the crate. Stripped: the symbols are a third of the binary.
RUN touch src/main.rs src/lib.rs \
 && CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked -p qstash --bin qstash \
 && mkdir /data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/qstash /usr/local/bin/qstash
# The data volume, owned by the image's non-root user so the server can write there.
COPY --from=build --chown=nonroot:nonroot /data /data
# `-data-dir /data` keeps messages, schedules, queues and runs there; without the flag the
# server keeps everything in memory and the volume stays empty.
# Outside a container the server listens on loopback only; inside one, `-p 8080:8080`
# reaches it through the container's own interface, so it listens on all of them.
ENV QSTASH_DEV_HOST=0.0.0.0
EXPOSE 8080
VOLUME ["/data"]
# No shell or curl in the image: the binary asks its own /health (QSTASH_DEV_PORT, if set,
# is the port for both).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["qstash", "health"]
ENTRYPOINT ["qstash"]
CMD ["dev"]
