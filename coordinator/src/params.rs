//! The federation's governable parameters. A change passes when a threshold of members vote for the
//! same value within one epoch, and takes effect at the next epoch boundary.

use serde::{Deserialize, Serialize};

/// Parameters every member applies identically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Consensus sessions per epoch.
    pub epoch_sessions: u64,
    /// Yuma's κ (u16; 32767 ≈ 0.5).
    pub kappa: u16,
    /// Smallest bond that gives stake, in sat.
    pub bond_min_sat: u64,
    /// The pool paid out each epoch to miners (incentive) and validators (dividends), msat, by the
    /// epoch's round-robin payer from its own balance. Used only while `pool_fee_share_ppm` is 0.
    pub epoch_pool_msat: u64,
    /// Registry capacity (miners and validators together, as subtensor's uids).
    pub max_uids: u16,
    /// Epochs a new registrant cannot be pruned.
    pub immunity_epochs: u64,
    /// Epochs without a weight update after which a validator counts as inactive.
    pub activity_cutoff_epochs: u64,
    /// Shortest bond timelock T accepted, in blocks.
    pub bond_min_timelock: u16,
    /// Blocks before T at which a bond stops counting (so its owner can never withdraw a bond that
    /// still counts).
    pub bond_margin: u16,
    /// Confirmations before a bond counts.
    pub bond_min_confirmations: u32,
    /// The bond a miner must register with, in sat (0: miners register without one). Registration's cost,
    /// as subtensor's burn: ADR 0012. A miner is listed, weighed and paid only once more than f members
    /// attested a bond of at least this much.
    pub miner_bond_min_sat: u64,
    /// 1: validators commit a hash of their weights in one epoch and reveal them in the next (subtensor's
    /// commit-reveal), so a copier only sees last epoch's weights; plain weights are refused. 0: off.
    /// Not serialised when 0, so results signed before it existed keep their digest.
    #[serde(skip_serializing_if = "is_zero")]
    pub commit_reveal: u64,
    /// The pool funded by what the network earned (ADR 0015), in parts per million: each epoch, every
    /// member pays out this share of the forwarding fees it reported for the epoch, so the pool is
    /// `Σ fees × share` and no member pays from its own pocket. 0: the fixed `epoch_pool_msat`, paid by
    /// the epoch's round-robin payer. Not serialised when 0 (results signed before it keep their digest).
    #[serde(skip_serializing_if = "is_zero")]
    pub pool_fee_share_ppm: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Default for Params {
    fn default() -> Self {
        Params {
            epoch_sessions: 3,
            kappa: 32_767,
            bond_min_sat: 10_000,
            epoch_pool_msat: 1_000_000,
            max_uids: 256,
            immunity_epochs: 2,
            activity_cutoff_epochs: 5,
            bond_min_timelock: 1008,
            bond_margin: 144,
            bond_min_confirmations: 6,
            miner_bond_min_sat: 0,
            commit_reveal: 0,
            pool_fee_share_ppm: 0,
        }
    }
}

impl Params {
    /// The names a vote can change.
    pub const NAMES: [&'static str; 13] = [
        "epoch_sessions",
        "kappa",
        "bond_min_sat",
        "epoch_pool_msat",
        "max_uids",
        "immunity_epochs",
        "activity_cutoff_epochs",
        "bond_min_timelock",
        "bond_margin",
        "bond_min_confirmations",
        "miner_bond_min_sat",
        "commit_reveal",
        "pool_fee_share_ppm",
    ];

    /// Checks the values are usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.epoch_sessions == 0 {
            return Err("epoch_sessions must be at least 1".into());
        }
        if self.max_uids < 2 {
            return Err("max_uids must be at least 2".into());
        }
        if self.bond_min_confirmations == 0
            || u32::from(self.bond_margin) + self.bond_min_confirmations
                >= u32::from(self.bond_min_timelock)
        {
            return Err(
                "bonds must be able to count: bond_min_confirmations + bond_margin < bond_min_timelock, confirmations ≥ 1"
                    .into(),
            );
        }
        if self.activity_cutoff_epochs == 0 {
            return Err("activity_cutoff_epochs must be at least 1".into());
        }
        if self.commit_reveal > 1 {
            return Err("commit_reveal is 0 (off) or 1 (on)".into());
        }
        if self.pool_fee_share_ppm > 1_000_000 {
            return Err("pool_fee_share_ppm is at most 1000000 (all of the fees)".into());
        }
        Ok(())
    }

    /// This set of parameters with `name` set to `value`, if that is a valid change.
    pub fn with(&self, name: &str, value: u64) -> Result<Params, String> {
        let mut p = self.clone();
        let small = |v: u64| u16::try_from(v).map_err(|_| format!("{name} must fit in 16 bits"));
        match name {
            "epoch_sessions" => p.epoch_sessions = value,
            "kappa" => p.kappa = small(value)?,
            "bond_min_sat" => p.bond_min_sat = value,
            "epoch_pool_msat" => p.epoch_pool_msat = value,
            "max_uids" => p.max_uids = small(value)?,
            "immunity_epochs" => p.immunity_epochs = value,
            "activity_cutoff_epochs" => p.activity_cutoff_epochs = value,
            "bond_min_timelock" => p.bond_min_timelock = small(value)?,
            "bond_margin" => p.bond_margin = small(value)?,
            "miner_bond_min_sat" => p.miner_bond_min_sat = value,
            "commit_reveal" => p.commit_reveal = value,
            "pool_fee_share_ppm" => p.pool_fee_share_ppm = value,
            "bond_min_confirmations" => {
                p.bond_min_confirmations =
                    u32::try_from(value).map_err(|_| format!("{name} must fit in 32 bits"))?
            }
            _ => {
                return Err(format!(
                    "unknown parameter {name:?}; one of {}",
                    Params::NAMES.join(", ")
                ))
            }
        }
        p.validate()?;
        Ok(p)
    }
}
