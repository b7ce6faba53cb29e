//! A Yuma scenario: parameters, stake, permits and one weight matrix per epoch, run epoch after
//! epoch with the outputs (permits, bonds) carried forward as subtensor stores them.
//! The JSON format is documented in docs/yuma.md.

use serde::{Deserialize, Serialize};
use substrate_fixed::types::I64F64;

use super::epoch::{epoch, EpochInput, EpochParams};
use super::YumaError;

/// A stored sparse row: `(uid, u16 value)` pairs, as subtensor's `Weights` and `Bonds` hold them.
pub type U16Row = Vec<(u16, u16)>;

/// A scenario (`boltensor yuma --input`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Subnet hyperparameters; any left out take subtensor's defaults.
    #[serde(default)]
    pub params: EpochParams,
    /// Emission per epoch in rao (default 1 000 000 000).
    #[serde(default = "default_rao_emission")]
    pub rao_emission: u64,
    /// Stake per uid (rao); its length is the number of uids.
    pub stake: Vec<u64>,
    /// Permits before the first epoch (default: none, as after registration).
    #[serde(default)]
    pub validator_permits: Option<Vec<bool>>,
    /// Registration block per uid (default 0).
    #[serde(default)]
    pub block_at_registration: Option<Vec<u64>>,
    /// Last weight update per uid before the first epoch (default 0).
    #[serde(default)]
    pub last_update: Option<Vec<u64>>,
    /// Stored bond rows before the first epoch (default none).
    #[serde(default)]
    pub bonds: Option<Vec<U16Row>>,
    /// `LastMechansimStepBlock` (default 0: the bond mask then uses `block - tempo`).
    #[serde(default)]
    pub last_mechanism_step_block: u64,
    /// The epochs, in order.
    pub epochs: Vec<ScenarioEpoch>,
}

fn default_rao_emission() -> u64 {
    1_000_000_000
}

/// One epoch of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioEpoch {
    /// The block the epoch runs at (default: the previous epoch's block + 1, starting at 1).
    #[serde(default)]
    pub block: Option<u64>,
    /// The stored weight matrix: one row per uid of `(uid, u16)` pairs.
    pub weights: Vec<U16Row>,
    /// Last weight update per uid. Default: a uid whose row differs from the previous epoch's
    /// (or is non-empty in the first epoch) updated at this block, the others keep theirs.
    #[serde(default)]
    pub last_update: Option<Vec<u64>>,
    /// Stake per uid for this and later epochs (default: unchanged).
    #[serde(default)]
    pub stake: Option<Vec<u64>>,
    /// Overrides `LastMechansimStepBlock` for this and later epochs.
    #[serde(default)]
    pub last_mechanism_step_block: Option<u64>,
    /// Registration blocks for this and later epochs (a uid re-registered by a new hotkey).
    #[serde(default)]
    pub block_at_registration: Option<Vec<u64>>,
}

/// What one scenario epoch produced, as subtensor stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioEpochOutput {
    /// The block it ran at.
    pub block: u64,
    /// `Incentive`, u16 per uid.
    pub incentive: Vec<u16>,
    /// `Dividends`, u16 per uid.
    pub dividends: Vec<u16>,
    /// Miner emission, rao per uid.
    pub server_emission: Vec<u64>,
    /// Validator emission, rao per uid.
    pub validator_emission: Vec<u64>,
    /// `Emission` (combined), rao per uid.
    pub emission: Vec<u64>,
    /// `Consensus`, u16 per uid.
    pub consensus: Vec<u16>,
    /// `ValidatorTrust`, u16 per uid.
    pub validator_trust: Vec<u16>,
    /// `ValidatorPermit` after the epoch.
    pub validator_permits: Vec<bool>,
    /// `Active`.
    pub active: Vec<bool>,
    /// `StakeWeight`, u16 per uid.
    pub stake_weight: Vec<u16>,
    /// `Bonds` after the epoch: every uid's stored row.
    pub bonds: Vec<U16Row>,
}

/// The result of a scenario: one entry per epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioOutput {
    /// Per epoch, in order.
    pub epochs: Vec<ScenarioEpochOutput>,
}

fn check_len<T>(v: &[T], field: &'static str, n: usize) -> Result<(), YumaError> {
    if v.len() == n {
        Ok(())
    } else {
        Err(YumaError::LengthMismatch {
            field,
            len: v.len(),
            n,
        })
    }
}

fn check_cols(
    rows: &[U16Row],
    field: &'static str,
    epoch: usize,
    n: usize,
) -> Result<(), YumaError> {
    check_len(rows, field, n)?;
    for (row, cells) in rows.iter().enumerate() {
        if let Some(&(uid, _)) = cells.iter().find(|(uid, _)| *uid as usize >= n) {
            return Err(YumaError::UidOutOfRange {
                epoch,
                field,
                row,
                uid,
                n,
            });
        }
    }
    Ok(())
}

/// Runs every epoch of a scenario, carrying permits, bonds and last updates forward.
pub fn run_scenario(scenario: &Scenario) -> Result<ScenarioOutput, YumaError> {
    let n = scenario.stake.len();
    if n > u16::MAX as usize {
        return Err(YumaError::TooManyUids(n));
    }
    let mut stake = scenario.stake.clone();
    let mut permits = scenario
        .validator_permits
        .clone()
        .unwrap_or_else(|| vec![false; n]);
    let mut block_at_registration = scenario
        .block_at_registration
        .clone()
        .unwrap_or_else(|| vec![0; n]);
    let mut last_update = scenario.last_update.clone().unwrap_or_else(|| vec![0; n]);
    let mut bonds = scenario
        .bonds
        .clone()
        .unwrap_or_else(|| vec![Vec::new(); n]);
    check_len(&permits, "validator_permits", n)?;
    check_len(&block_at_registration, "block_at_registration", n)?;
    check_len(&last_update, "last_update", n)?;
    check_cols(&bonds, "bonds", 0, n)?;
    let mut lms = scenario.last_mechanism_step_block;
    let mut previous_weights: Option<&Vec<U16Row>> = None;
    let mut block = 0u64;
    let mut out = Vec::with_capacity(scenario.epochs.len());
    for (index, ep) in scenario.epochs.iter().enumerate() {
        block = ep.block.unwrap_or(block.saturating_add(1));
        check_cols(&ep.weights, "weights", index, n)?;
        if let Some(s) = &ep.stake {
            check_len(s, "stake", n)?;
            stake.clone_from(s);
        }
        if let Some(b) = &ep.block_at_registration {
            check_len(b, "block_at_registration", n)?;
            block_at_registration.clone_from(b);
        }
        if let Some(l) = ep.last_mechanism_step_block {
            lms = l;
        }
        match &ep.last_update {
            Some(lu) => {
                check_len(lu, "last_update", n)?;
                last_update.clone_from(lu);
            }
            None => {
                for (uid, row) in ep.weights.iter().enumerate() {
                    let changed = match previous_weights {
                        Some(prev) => prev.get(uid) != Some(row),
                        None => !row.is_empty(),
                    };
                    if changed {
                        if let Some(lu) = last_update.get_mut(uid) {
                            *lu = block;
                        }
                    }
                }
            }
        }
        previous_weights = Some(&ep.weights);
        let input = EpochInput {
            current_block: block,
            last_mechanism_step_block: lms,
            stake: stake
                .iter()
                .map(|&s| I64F64::saturating_from_num(s))
                .collect(),
            last_update: last_update.clone(),
            block_at_registration: block_at_registration.clone(),
            validator_permits: permits.clone(),
            weights: ep.weights.clone(),
            bonds: bonds.clone(),
            rao_emission: scenario.rao_emission,
        };
        let result = epoch(&scenario.params, &input)?;
        for (stored, new) in bonds.iter_mut().zip(result.bonds) {
            if let Some(row) = new {
                *stored = row;
            }
        }
        permits.clone_from(&result.validator_permits);
        out.push(ScenarioEpochOutput {
            block,
            incentive: result.incentive,
            dividends: result.dividends,
            server_emission: result.server_emission,
            validator_emission: result.validator_emission,
            emission: result.emission,
            consensus: result.consensus,
            validator_trust: result.validator_trust,
            validator_permits: result.validator_permits,
            active: result.active,
            stake_weight: result.stake_weight,
            bonds: bonds.clone(),
        });
    }
    Ok(ScenarioOutput { epochs: out })
}

/// Parses a scenario, runs it, and returns the per-epoch results as JSON: one epoch per object,
/// one field per line (compact arrays), so outputs diff line by line.
pub fn run_scenario_json(input: &str) -> Result<String, YumaError> {
    let scenario: Scenario = serde_json::from_str(input)?;
    let output = run_scenario(&scenario)?;
    to_json_lines(&output)
}

/// [`ScenarioOutput`] as JSON with one field per line.
pub fn to_json_lines(output: &ScenarioOutput) -> Result<String, YumaError> {
    use serde_json::to_string as js;
    let mut epochs = Vec::with_capacity(output.epochs.len());
    for e in &output.epochs {
        let fields = [
            ("block", js(&e.block)?),
            ("incentive", js(&e.incentive)?),
            ("dividends", js(&e.dividends)?),
            ("server_emission", js(&e.server_emission)?),
            ("validator_emission", js(&e.validator_emission)?),
            ("emission", js(&e.emission)?),
            ("consensus", js(&e.consensus)?),
            ("validator_trust", js(&e.validator_trust)?),
            ("validator_permits", js(&e.validator_permits)?),
            ("active", js(&e.active)?),
            ("stake_weight", js(&e.stake_weight)?),
            ("bonds", js(&e.bonds)?),
        ];
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("      \"{k}\": {v}"))
            .collect();
        epochs.push(format!("    {{\n{}\n    }}", body.join(",\n")));
    }
    Ok(format!(
        "{{\n  \"epochs\": [\n{}\n  ]\n}}",
        epochs.join(",\n")
    ))
}

/// The two epochs the benchmarks measure: original Yuma (EMA bonds) and Yuma3 with liquid alpha, both
/// with permits for up to 256 validators.
pub fn benchmark_params() -> (EpochParams, EpochParams) {
    let original = EpochParams {
        max_allowed_validators: 256,
        ..EpochParams::default()
    };
    let yuma3 = EpochParams {
        yuma3: true,
        liquid_alpha: true,
        bonds_penalty: 0,
        ..original.clone()
    };
    (original, yuma3)
}

/// A benchmark input: uids `0..validators` are validators with distinct stakes, each weighting every
/// miner (`validators..validators + miners`) with pseudo-random u16 weights (a fixed xorshift, so every
/// run measures the same epoch); no bonds yet, every uid permitted and active.
pub fn dense_input(miners: usize, validators: usize) -> EpochInput {
    let n = miners + validators;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let weights = (0..n)
        .map(|i| {
            if i < validators {
                (validators..n)
                    .map(|j| (j as u16, (next() % 65_536) as u16))
                    .collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    EpochInput {
        current_block: 1000,
        last_mechanism_step_block: 0,
        stake: (0..n)
            .map(|i| {
                I64F64::from_num(if i < validators {
                    1_000_000 + 1000 * i as u64
                } else {
                    0
                })
            })
            .collect(),
        last_update: vec![999; n],
        block_at_registration: vec![0; n],
        validator_permits: vec![true; n],
        weights,
        bonds: vec![Vec::new(); n],
        rao_emission: 1_000_000_000,
    }
}

/// [`dense_input`] one epoch later: the permits and full bonds of a first epoch carried forward, as
/// subtensor stores them (the state the benchmarks measure).
pub fn dense_input_with_bonds(
    params: &EpochParams,
    miners: usize,
    validators: usize,
) -> Result<EpochInput, YumaError> {
    let mut inp = dense_input(miners, validators);
    let warm = epoch(params, &inp)?;
    inp.validator_permits = warm.validator_permits.clone();
    for (row, new) in inp.bonds.iter_mut().zip(warm.bonds) {
        if let Some(r) = new {
            *row = r;
        }
    }
    inp.current_block += 1;
    Ok(inp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../docs/examples/yuma-scenario.json");

    #[test]
    fn output_is_json_that_round_trips() {
        let scenario: Scenario = serde_json::from_str(EXAMPLE).expect("example parses");
        let output = run_scenario(&scenario).expect("example runs");
        let text = run_scenario_json(EXAMPLE).expect("example runs");
        let parsed: ScenarioOutput = serde_json::from_str(&text).expect("output is JSON");
        assert_eq!(parsed, output);
        assert_eq!(output.epochs.len(), 2);
    }

    #[test]
    fn emission_is_split_and_bonds_carry_over() {
        let scenario: Scenario = serde_json::from_str(EXAMPLE).expect("example parses");
        let output = run_scenario(&scenario).expect("example runs");
        for e in &output.epochs {
            let total: u64 = e.server_emission.iter().chain(&e.validator_emission).sum();
            // Truncation to whole rao loses at most one rao per uid and term.
            assert!(total <= scenario.rao_emission);
            assert!(scenario.rao_emission - total <= 2 * e.incentive.len() as u64);
            // Miners hold no bonds and validators' rows only name miners.
            assert!(e.bonds[3].is_empty() && e.bonds[4].is_empty());
        }
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let short = r#"{"stake":[1,2],"epochs":[{"weights":[[]]}]}"#;
        assert!(matches!(
            run_scenario_json(short),
            Err(YumaError::LengthMismatch {
                field: "weights",
                len: 1,
                n: 2
            })
        ));
        let far = r#"{"stake":[1,2],"epochs":[{"weights":[[[7,1]],[]]}]}"#;
        assert!(matches!(
            run_scenario_json(far),
            Err(YumaError::UidOutOfRange { uid: 7, .. })
        ));
        assert!(matches!(run_scenario_json("{"), Err(YumaError::Json(_))));
    }
}
