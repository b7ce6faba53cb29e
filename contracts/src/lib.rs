//! Bonds, the federation treasury and slashing evidence in Bitcoin Script: descriptors, PSBTs, proofs. No IO but what the caller passes.
//!
//! Not built yet: this crate marks the room the design gives it (issue 5). See docs/ARCHITECTURE.md.

/// What the `boltensor` binary prints for this crate's commands until they are built.
pub const NOT_YET: &str = "not yet: see issue 5 in the issue tracker and docs/ARCHITECTURE.md";
