//! The client library and the local OpenAI-compatible proxy that pays miners per request.
//!
//! Not built yet: this crate marks the room the design gives it (issue 4). See docs/ARCHITECTURE.md.

/// What the `boltensor` binary prints for this crate's commands until they are built.
pub const NOT_YET: &str = "not yet: see issue 4 in the issue tracker and docs/ARCHITECTURE.md";
