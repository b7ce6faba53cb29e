//! Benchmarks that print figures (never tests that fail on a timing).
//!
//! # Layout
//! - [`all`]: `boltensor bench all`: every bench below (load only with `--load`) in one process, one
//!   [`all::AllFigures`], and docs/performance.md's table: each figure as a ratio to its baseline measured
//!   in the same run, with its goal and the command that reproduces it.
//! - [`load`]: `boltensor bench load`: a bounded load test (paid requests against one miner, weight
//!   submissions against a federation of four): throughput, p99, memory, nothing lost.
//! - [`federation`]: `boltensor bench federation`: coordinators on loopback agreeing on epochs, and one
//!   epoch result's cost at 256 miners × 64 validators.
//! - [`lightning`]: `boltensor bench lightning`: payment latency by hop count, and how many paid requests
//!   one channel can hold in flight (HTLC slots), on the regtest network.
//! - [`paid`]: `boltensor bench paid`: what paying per request over Lightning costs, on the regtest network.
//! - [`yuma`]: `boltensor bench yuma`: one Yuma epoch (original and Yuma3) at the sizes docs/yuma.md reports.

pub mod all;
pub mod embed;
pub mod federation;
pub mod lightning;
pub mod load;
pub mod paid;
pub mod yuma;
