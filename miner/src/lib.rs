//! The miner: model backends behind an OpenAI-compatible API, paid per request with L402 hold invoices.
//!
//! Not built yet: this crate marks the room the design gives it (issue 4). See docs/ARCHITECTURE.md.

/// What the `boltensor` binary prints for this crate's commands until they are built.
pub const NOT_YET: &str = "not yet: see issue 4 in the issue tracker and docs/ARCHITECTURE.md";
