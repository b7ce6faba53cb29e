//! Benchmarks: paid inference over Lightning, and the Lightning design side by side with the token design.
//!
//! Not built yet: this crate marks the room the design gives it (issues 4 and 6). See docs/ARCHITECTURE.md.

/// What the `boltensor` binary prints for this crate's commands until they are built.
pub const NOT_YET: &str =
    "not yet: see issues 4 and 6 in the issue tracker and docs/ARCHITECTURE.md";
