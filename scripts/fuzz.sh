#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (fuzz/README.md): builds them all once, then runs each for
# SECONDS_PER_TARGET (default 10) from a temporary copy of its checked-in seed corpus (fuzz/corpus/<target>/),
# so what the fuzzer finds never lands in git. Exits non-zero if any target crashed, printing where the
# crashing input was saved (fuzz/artifacts/<target>/) and how to replay it.
#
#   scripts/fuzz.sh                 # every target, 10 s each
#   scripts/fuzz.sh 600 epoch l402  # two targets, 10 min each
#   scripts/fuzz.sh --seeds         # regenerate the seed corpus (fuzz/seeds/gen_seeds.rs)
#   scripts/fuzz.sh --build-only    # build every target, run none (CI builds them beside the tests)
#
# Installs what a fresh machine lacks: the nightly toolchain (rustup) and cargo-fuzz (crates.io).
# Builds into $FUZZ_TARGET_DIR (default ~/.cache/boltensor/fuzz-target), never the main target dir.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seeds=false
build_only=false
case "${1:-}" in
    --seeds) seeds=true; shift ;;
    --build-only) build_only=true; shift ;;
esac
secs=${1:-10}
shift || true
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
target_dir=${FUZZ_TARGET_DIR:-$HOME/.cache/boltensor/fuzz-target}
# The main build's CARGO_TARGET_DIR must not leak into the fuzz build (cargo-fuzz gets --target-dir).
unset CARGO_TARGET_DIR

if ! cargo +nightly --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
        echo "[fuzz] installing the nightly toolchain (cargo-fuzz needs it)"
        rustup toolchain install nightly --profile minimal
    else
        echo "[fuzz] cargo-fuzz needs a nightly toolchain and rustup is not installed" >&2
        exit 1
    fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "[fuzz] installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
fi

if $seeds; then
    # The generator is a normal program built with cargo-fuzz's flags (cargo-fuzz 0.13), so it reuses the
    # fuzz build's dependencies instead of building them all again without instrumentation.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}
    RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Zsanitizer=address -Cllvm-args=-sanitizer-coverage-stack-depth -Ccodegen-units=1" \
        cargo +nightly run --manifest-path fuzz/Cargo.toml --release \
        --target "$(rustc +nightly -vV | sed -n 's/^host: //p')" \
        --config 'profile.release.debug="line-tables-only"' --target-dir "$target_dir" \
        --features seedgen --bin gen_seeds
    exit 0
fi

all=()
for f in fuzz/fuzz_targets/*.rs; do
    all+=("$(basename "$f" .rs)")
done
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all[@]}")
fi
for t in "${targets[@]}"; do
    if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
        echo "[fuzz] unknown target $t; targets: ${all[*]}" >&2
        exit 2
    fi
done

fuzz=(cargo +nightly fuzz)
common=(--fuzz-dir fuzz --target-dir "$target_dir")
start=$(date +%s)
echo "[fuzz] building ${#all[@]} targets into $target_dir"
"${fuzz[@]}" build -O "${common[@]}"
echo "[fuzz] build: $(($(date +%s) - start)) s"
if $build_only; then
    exit 0
fi

# Run the built binaries directly: no cargo between runs (nothing rebuilds mid-run when sources change).
bin_dir="$target_dir/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
    corpus="$work/corpus-$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    if [ -d "fuzz/corpus/$t" ]; then
        cp -R "fuzz/corpus/$t/." "$corpus/"
    fi
    log="$work/$t.log"
    status=0
    "$bin_dir/$t" "$corpus" -max_total_time="$secs" -timeout=25 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    if [ "$status" -eq 0 ]; then
        printf '[fuzz] %-16s ok   %8s execs  %6s exec/s  cov %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}"
    else
        failed+=("$t")
        printf '[fuzz] %-16s FAIL (exit %s)\n' "$t" "$status"
        grep -m1 -A3 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)" "$log" | sed 's/^/    /' || tail -n 20 "$log"
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        if [ -n "$artifact" ]; then
            echo "[fuzz] $t: crashing input saved to $artifact"
            echo "[fuzz] replay: cargo +nightly fuzz run ${common[*]} $t $artifact"
            echo "[fuzz]     or: $bin_dir/$t $artifact   (cargo +nightly fuzz fmt ... prints structured input)"
        fi
    fi
done
echo "[fuzz] ${#targets[@]} targets x ${secs} s: $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "[fuzz] crashed: ${failed[*]}" >&2
    exit 1
fi
