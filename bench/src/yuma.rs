//! `boltensor bench yuma`: one Yuma epoch on state with full bonds (every validator weights every miner),
//! original Yuma (EMA bonds) and Yuma3 with liquid alpha, at the sizes docs/yuma.md reports; each Yuma3
//! figure also as a ratio to the original epoch measured in the same run.
//!
//! Allocation counts need a counting global allocator, which the binary does not carry: they come from
//! `protocol/tests/yuma_bench.rs` (docs/yuma.md, "Benchmark").

use std::time::Instant;

use boltensor_protocol::yuma::scenario::{benchmark_params, dense_input_with_bonds};
use boltensor_protocol::yuma::{epoch, EpochParams};
use serde::Serialize;

/// One measured epoch.
#[derive(Debug, Clone, Serialize)]
pub struct YumaRow {
    /// `original` or `yuma3+liquid-alpha`.
    pub variant: &'static str,
    /// Miners.
    pub miners: usize,
    /// Validators.
    pub validators: usize,
    /// Mean wall time of one epoch, ms.
    pub ms_per_epoch: f64,
    /// Epochs timed.
    pub runs: u32,
    /// Bond cells after the epoch.
    pub bond_cells: usize,
}

/// Every row of a run.
#[derive(Debug, Clone, Serialize)]
pub struct YumaFigures {
    /// original then Yuma3, per size.
    pub rows: Vec<YumaRow>,
}

fn measure(
    variant: &'static str,
    params: &EpochParams,
    miners: usize,
    validators: usize,
    runs: u32,
) -> Result<YumaRow, String> {
    let inp = dense_input_with_bonds(params, miners, validators).map_err(|e| e.to_string())?;
    let out = epoch(params, &inp).map_err(|e| e.to_string())?;
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(epoch(params, std::hint::black_box(&inp)).map_err(|e| e.to_string())?);
    }
    Ok(YumaRow {
        variant,
        miners,
        validators,
        ms_per_epoch: start.elapsed().as_secs_f64() * 1e3 / f64::from(runs.max(1)),
        runs,
        bond_cells: out.bonds.iter().flatten().map(Vec::len).sum(),
    })
}

/// Measures each `(miners, validators, runs)`.
pub fn run(sizes: &[(usize, usize, u32)]) -> Result<YumaFigures, String> {
    let (original, yuma3) = benchmark_params();
    let mut rows = Vec::new();
    for &(m, v, runs) in sizes {
        rows.push(measure("original", &original, m, v, runs)?);
        rows.push(measure("yuma3+liquid-alpha", &yuma3, m, v, runs)?);
    }
    Ok(YumaFigures { rows })
}

/// The sizes docs/yuma.md reports: 256 × 64 (50 epochs) and 4096 × 256 (3 epochs).
pub const SIZES: [(usize, usize, u32); 2] = [(256, 64, 50), (4096, 256, 3)];

impl YumaFigures {
    /// A table, with Yuma3 / original per size.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{:<20} {:>7} {:>10} {:>12} {:>10} {:>12}\n",
            "epoch", "miners", "validators", "ms/epoch", "bond cells", "vs original"
        );
        for r in &self.rows {
            let base = self
                .rows
                .iter()
                .find(|o| {
                    o.variant == "original" && o.miners == r.miners && o.validators == r.validators
                })
                .map_or(f64::NAN, |o| o.ms_per_epoch);
            s.push_str(&format!(
                "{:<20} {:>7} {:>10} {:>12.3} {:>10} {:>11.2}x\n",
                r.variant,
                r.miners,
                r.validators,
                r.ms_per_epoch,
                r.bond_cells,
                r.ms_per_epoch / base
            ));
        }
        s
    }
}
