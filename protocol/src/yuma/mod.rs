//! Bittensor's Yuma consensus epoch, ported bit for bit from opentensor/subtensor.
//!
//! Coordinators run this with stake = bonded sats. The arithmetic is subtensor's: the same
//! `substrate-fixed` types (I32F32 for proportions, I64F64 for stake, I96F32 for emission), the
//! same saturating operations in the same order, u16 storage produced by truncation. So the u16
//! incentive, dividends and bonds and the rao emission equal what subtensor stores, to the unit
//! (docs/yuma.md lists the subtensor quirks this keeps, ADR 0006 the choice).
//!
//! # Layout
//! - [`math`]: `epoch/math.rs` — fixed-point vectors and sparse matrices, weighted median, EMAs.
//! - [`epoch`](mod@epoch): `epoch/run_epoch.rs` `epoch_mechanism` — [`EpochParams`], [`EpochInput`]
//!   → [`EpochOutput`].
//! - [`scenario`]: a JSON scenario of several epochs (`boltensor yuma --input`), [`run_scenario_json`].

pub mod epoch;
pub mod math;
pub mod scenario;

pub use epoch::{epoch, EpochInput, EpochOutput, EpochParams};
pub use scenario::{run_scenario, run_scenario_json, Scenario, ScenarioOutput};

/// Why an epoch or a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum YumaError {
    /// A per-uid vector does not have one entry per uid.
    #[error("{field} has {len} entries but there are {n} uids (one per stake entry)")]
    LengthMismatch {
        /// The offending field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The number of uids.
        n: usize,
    },
    /// Uids are u16 in subtensor.
    #[error("{0} uids: at most 65535 fit in a u16 uid")]
    TooManyUids(usize),
    /// An epoch's weights or an initial bond row names a uid that does not exist.
    #[error("epoch {epoch}: {field} row {row} names uid {uid}, but there are only {n} uids")]
    UidOutOfRange {
        /// Index of the epoch (0-based), or 0 for the initial bonds.
        epoch: usize,
        /// `weights` or `bonds`.
        field: &'static str,
        /// The row (uid) holding the cell.
        row: usize,
        /// The named uid.
        uid: u16,
        /// Number of uids.
        n: usize,
    },
    /// The scenario JSON did not parse.
    #[error("scenario JSON: {0}")]
    Json(#[from] serde_json::Error),
}
