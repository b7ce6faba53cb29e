//! Benchmark figures for one Yuma epoch (prints; never fails on timing):
//!
//! ```sh
//! cargo test --release -p boltensor-protocol --test yuma_bench -- --ignored --nocapture
//! ```
//!
//! Validators are uids `0..V` with distinct stakes, each weighting every miner (`V..V+M`) with
//! pseudo-random u16 weights; a first epoch gives them permits and bonds, then the measured epoch
//! runs on that state (so bonds are full V × M matrices). Allocations are counted with
//! `stats_alloc` around the measured call only.

use std::alloc::System;
use std::time::Instant;

use boltensor_protocol::yuma::{epoch, EpochInput, EpochParams};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use substrate_fixed::types::I64F64;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn input(miners: usize, validators: usize) -> EpochInput {
    let n = miners + validators;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let weights = (0..n)
        .map(|i| {
            if i < validators {
                (validators..n)
                    .map(|j| (j as u16, (next() % 65_536) as u16))
                    .collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    EpochInput {
        current_block: 1000,
        last_mechanism_step_block: 0,
        stake: (0..n)
            .map(|i| {
                I64F64::from_num(if i < validators {
                    1_000_000 + 1000 * i as u64
                } else {
                    0
                })
            })
            .collect(),
        last_update: vec![999; n],
        block_at_registration: vec![0; n],
        validator_permits: vec![true; n],
        weights,
        bonds: vec![Vec::new(); n],
        rao_emission: 1_000_000_000,
    }
}

fn measure(label: &str, params: &EpochParams, miners: usize, validators: usize, runs: u32) {
    let mut inp = input(miners, validators);
    let warm = epoch(params, &inp).expect("warm-up epoch");
    inp.validator_permits = warm.validator_permits.clone();
    for (row, new) in inp.bonds.iter_mut().zip(warm.bonds) {
        if let Some(r) = new {
            *row = r;
        }
    }
    inp.current_block += 1;
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
    let original = EpochParams {
        max_allowed_validators: 256,
        ..EpochParams::default()
    };
    let yuma3 = EpochParams {
        yuma3: true,
        liquid_alpha: true,
        bonds_penalty: 0,
        ..original.clone()
    };
    for (m, v, runs) in [(256, 64, 50), (4096, 256, 3)] {
        measure("original Yuma (EMA bonds)", &original, m, v, runs);
        measure("Yuma3 + liquid alpha", &yuma3, m, v, runs);
    }
}
