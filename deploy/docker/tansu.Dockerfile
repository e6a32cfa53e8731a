# syntax=docker/dockerfile:1.7
# Tansu 0.6.0, the Kafka-compatible broker of the single-node overlay (and of the local stack,
# docs/decisions/0001), built from crates.io exactly as scripts/install-tools builds it.
#
#   docker build -f deploy/docker/tansu.Dockerfile -t emberline/tansu:0.6.0 deploy/docker
#
# About 12 minutes on 2 cores; the result changes only with TANSU_VERSION.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
ARG TANSU_VERSION=0.6.0
# sqlite (libsql) and postgres storage; memory:// (dynostore) has a read bug in 0.6.0 and is
# not used, but the feature set matches the one the tests run against.
RUN cargo install tansu --version "${TANSU_VERSION}" --locked \
        --features dynostore,libsql,postgres --root /out \
    && if ldd /out/bin/tansu | grep '=>' | grep -vE '^\s*(libc|libm|libgcc_s|libdl|libpthread|librt)\.so'; then \
           echo "tansu needs a shared library the runtime image does not have" >&2; exit 1; \
       fi

FROM gcr.io/distroless/cc-debian12:nonroot
USER 65532:65532
COPY --from=builder /out/bin/tansu /usr/local/bin/tansu
EXPOSE 9092
ENTRYPOINT ["/usr/local/bin/tansu"]
CMD ["broker"]
