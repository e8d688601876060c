# Build: docker build -t qstash-dev .
# Run:   docker run -p 8080:8080 qstash-dev            (same as: ... qstash-dev qstash dev)
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin qstash

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/qstash /usr/local/bin/qstash
EXPOSE 8080
ENTRYPOINT ["qstash"]
CMD ["dev"]
