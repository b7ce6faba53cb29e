//! Benchmarks that print figures (never tests that fail on a timing).
//!
//! # Layout
//! - [`paid`]: `boltensor bench paid`: what paying per request over Lightning costs, on the regtest network.

pub mod paid;

/// What the `boltensor` binary prints for benchmarks that do not exist yet.
pub const NOT_YET: &str = "not yet: see issue 6 (bench compare) in the issue tracker";
