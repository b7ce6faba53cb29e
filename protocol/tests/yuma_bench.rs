//! Benchmark figures for one Yuma epoch, with allocation counts (prints; never fails on timing):
//!
//! ```sh
//! cargo test --release -p boltensor-protocol --test yuma_bench -- --ignored --nocapture
//! ```
//!
//! `boltensor bench yuma` measures the same epochs (timings and ratios, without the allocation counts,
//! which need this test's counting allocator).
//!
//! Validators are uids `0..V` with distinct stakes, each weighting every miner (`V..V+M`) with
//! pseudo-random u16 weights; a first epoch gives them permits and bonds, then the measured epoch
//! runs on that state (so bonds are full V × M matrices). Allocations are counted with
//! `stats_alloc` around the measured call only.

use std::alloc::System;
use std::time::Instant;

use boltensor_protocol::yuma::{epoch, EpochParams};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn measure(label: &str, params: &EpochParams, miners: usize, validators: usize, runs: u32) {
    let inp =
        boltensor_protocol::yuma::scenario::dense_input_with_bonds(params, miners, validators)
            .expect("warm-up epoch");
    let region = Region::new(GLOBAL);
    let out = epoch(params, &inp).expect("epoch");
    let stats = region.change();
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(epoch(params, std::hint::black_box(&inp)).expect("epoch"));
    }
    let per = start.elapsed() / runs;
    let bonds: usize = out.bonds.iter().flatten().map(Vec::len).sum();
    println!(
        "{label:<28} {miners:>5} miners × {validators:>3} validators: {:>9.3} ms/epoch, {:>8} allocations, {:>8.1} MiB allocated, {bonds} bond cells",
        per.as_secs_f64() * 1e3,
        stats.allocations + stats.reallocations,
        stats.bytes_allocated as f64 / (1024.0 * 1024.0),
    );
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn yuma_epoch_figures() {
    let (original, yuma3) = boltensor_protocol::yuma::scenario::benchmark_params();
    for (m, v, runs) in [(256, 64, 50), (4096, 256, 3)] {
        measure("original Yuma (EMA bonds)", &original, m, v, runs);
        measure("Yuma3 + liquid alpha", &yuma3, m, v, runs);
    }
}
