//! Benchmarks that print figures (never tests that fail on a timing).
//!
//! # Layout
//! - [`paid`]: `boltensor bench paid`: what paying per request over Lightning costs, on the regtest network.

pub mod paid;
