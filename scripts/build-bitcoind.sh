#!/usr/bin/env bash
# Builds bitcoind + bitcoin-cli from the Bitcoin Core source that crates.io's libbitcoinkernel-sys vendors,
# once, into ~/.cache/boltensor/bitcoin-core-<version>/bin, and prints that directory's bitcoind path last.
#
#   scripts/build-bitcoind.sh            build if missing (about 12-25 min on 2 cores), else reuse
#   BITCOIND_EXE=/path/to/bitcoind       skip the build and use this binary
#   BOLTENSOR_CACHE=/dir                 cache elsewhere (default ~/.cache/boltensor)
#
# Needs cmake, g++, pkg-config, libboost-dev, libevent-dev: installed with apt-get when run as root,
# otherwise the exact command is printed.
set -euo pipefail

log() { printf '[build-bitcoind] %s\n' "$*" >&2; }

if [ -n "${BITCOIND_EXE:-}" ]; then
  if [ -x "$BITCOIND_EXE" ]; then log "using BITCOIND_EXE=$BITCOIND_EXE"; echo "$BITCOIND_EXE"; exit 0; fi
  log "BITCOIND_EXE=$BITCOIND_EXE is not an executable file"; exit 1
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
manifest="$here/tools/bitcoin-core-src/Cargo.toml"
version=$(sed -n 's/^libbitcoinkernel-sys = "=\(.*\)"/\1/p' "$manifest")
cache="${BOLTENSOR_CACHE:-$HOME/.cache/boltensor}"
prefix="$cache/bitcoin-core-kernel-sys-$version"
if [ -x "$prefix/bin/bitcoind" ] && [ -x "$prefix/bin/bitcoin-cli" ]; then
  log "cached: $prefix/bin"
  echo "$prefix/bin/bitcoind"
  exit 0
fi

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -f /usr/include/boost/version.hpp ] || need+=(libboost-dev)
[ -f /usr/include/event2/event.h ] || need+=(libevent-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing build tools: ${need[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
  else
    log "missing build tools: ${need[*]}"
    log "install them with:  sudo apt-get install -y ${need[*]}"
    log "or point BITCOIND_EXE at an existing bitcoind (v28 or newer)."
    exit 1
  fi
fi

log "fetching libbitcoinkernel-sys $version (Bitcoin Core source) with cargo"
cargo fetch --manifest-path "$manifest" >&2
src=$(cargo metadata --format-version 1 --manifest-path "$manifest" 2>/dev/null | python3 -c '
import json, sys, os
m = json.load(sys.stdin)
p = [p for p in m["packages"] if p["name"] == "libbitcoinkernel-sys"][0]
print(os.path.join(os.path.dirname(p["manifest_path"]), "bitcoin"))')
[ -f "$src/CMakeLists.txt" ] || { log "no Bitcoin Core source at $src"; exit 1; }

build="$cache/build-bitcoin-core-$version"
jobs=$(nproc 2>/dev/null || echo 2)
log "configuring in $build (source $src)"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_DAEMON=ON -DBUILD_CLI=ON -DENABLE_WALLET=OFF -DENABLE_IPC=OFF -DWITH_ZMQ=OFF -DBUILD_GUI=OFF \
  -DBUILD_TESTS=OFF -DBUILD_BENCH=OFF -DBUILD_FUZZ_BINARY=OFF -DBUILD_UTIL=OFF -DBUILD_TX=OFF \
  -DBUILD_KERNEL_LIB=OFF -DWITH_EMBEDDED_ASMAP=OFF -DBUILD_UTIL_CHAINSTATE=OFF >&2
log "compiling bitcoind and bitcoin-cli with $jobs jobs; cmake prints [ NN%] as it goes"
start=$(date +%s)
cmake --build "$build" --target bitcoind bitcoin-cli -j "$jobs" >&2
mkdir -p "$prefix/bin.tmp"
cp "$build/bin/bitcoind" "$build/bin/bitcoin-cli" "$prefix/bin.tmp/"
rm -rf "$prefix/bin" && mv "$prefix/bin.tmp" "$prefix/bin"
rm -rf "$build"
log "built in $(( $(date +%s) - start )) s: $prefix/bin"
echo "$prefix/bin/bitcoind"
