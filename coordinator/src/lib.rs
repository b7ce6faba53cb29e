//! The coordinator: federation consensus, registry, Yuma epochs on bonded stake, routing, payouts, dashboard.
//!
//! Not built yet: this crate marks the room the design gives it (issue 8). See docs/ARCHITECTURE.md.

/// What the `boltensor` binary prints for this crate's commands until they are built.
pub const NOT_YET: &str = "not yet: see issue 8 in the issue tracker and docs/ARCHITECTURE.md";
