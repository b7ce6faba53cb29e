//! The validator: pays miners for challenge requests, checks their work, signs weight vectors each epoch.
//!
//! Not built yet: this crate marks the room the design gives it (issue 7). See docs/ARCHITECTURE.md.

/// What the `boltensor` binary prints for this crate's commands until they are built.
pub const NOT_YET: &str = "not yet: see issue 7 in the issue tracker and docs/ARCHITECTURE.md";
