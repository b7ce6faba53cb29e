//! One Yuma epoch: a port of opentensor/subtensor `pallets/subtensor/src/epoch/run_epoch.rs`
//! `Pallet::epoch_mechanism` (the sparse epoch the chain runs), with storage reads replaced by
//! [`EpochInput`] and storage writes by [`EpochOutput`].
//!
//! Not ported: commit-reveal column masking (it needs the commit storage; subnets without
//! commit-reveal are unaffected), child-key stake inheritance and the TAO weight (the caller passes
//! the final per-uid stake, which is what `get_stake_weights_for_network` returns).

use substrate_fixed::types::{I32F32, I64F64, I96F32};

use super::math::*;
use super::YumaError;

/// Subnet hyperparameters the epoch reads. Defaults are the subtensor runtime's initial values
/// (`runtime/src/lib.rs` `SubtensorInitial*`, `pallets/subtensor/src/lib.rs` `Default*`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EpochParams {
    /// κ, the consensus majority, as u16 (`Kappa`; 32767 ≈ 0.5).
    pub kappa: u16,
    /// Bonds penalty β in u16 (`BondsPenalty`; 65535 = bonds follow clipped weights).
    pub bonds_penalty: u16,
    /// Bonds moving average in millionths (`BondsMovingAverage`; 900000 → EMA α = 0.1).
    pub bonds_moving_average: u64,
    /// Top-k stake holders that get a validator permit (`MaxAllowedValidators`).
    pub max_allowed_validators: u16,
    /// Blocks after its last weight update before a uid counts as inactive
    /// (`get_activity_cutoff_blocks` = max(1, ActivityCutoffFactorMilli · tempo / 1000)).
    pub activity_cutoff: u64,
    /// Blocks per epoch (`Tempo`), used for the bond mask when `last_mechanism_step_block` is 0.
    pub tempo: u64,
    /// Stake below which a uid's stake counts as zero (`StakeThreshold`, rao).
    pub stake_threshold: u64,
    /// Yuma3 bonds (`Yuma3On`).
    pub yuma3: bool,
    /// Liquid alpha: per-bond EMA rates from a sigmoid (`LiquidAlphaOn`; used with `yuma3` only).
    pub liquid_alpha: bool,
    /// Liquid alpha low, u16 proportion (`AlphaValues.0`).
    pub alpha_low: u16,
    /// Liquid alpha high, u16 proportion (`AlphaValues.1`).
    pub alpha_high: u16,
    /// Liquid alpha sigmoid steepness (`AlphaSigmoidSteepness`).
    pub alpha_sigmoid_steepness: i16,
    /// The subnet owner's uid, if it has one (`get_owner_uid`): exempt from the stake threshold,
    /// always permitted, and its self-weight is kept.
    pub owner_uid: Option<u16>,
}

impl Default for EpochParams {
    fn default() -> Self {
        EpochParams {
            kappa: 32_767,
            bonds_penalty: u16::MAX,
            bonds_moving_average: 900_000,
            max_allowed_validators: 128,
            activity_cutoff: 5000,
            tempo: 360,
            stake_threshold: 0,
            yuma3: false,
            liquid_alpha: false,
            alpha_low: 45_875,
            alpha_high: 58_982,
            alpha_sigmoid_steepness: 1000,
            owner_uid: None,
        }
    }
}

/// What `epoch_mechanism` reads from storage, for `n` uids (every vector has length `n`).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochInput {
    /// The current block.
    pub current_block: u64,
    /// `LastMechansimStepBlock`: the block of the previous successful epoch, 0 if none.
    pub last_mechanism_step_block: u64,
    /// Per uid: total stake (`get_stake_weights_for_network`, I64F64 rao).
    pub stake: Vec<I64F64>,
    /// Per uid: the block of its last weight update (`LastUpdate`).
    pub last_update: Vec<u64>,
    /// Per uid: the block it was registered at (`BlockAtRegistration`).
    pub block_at_registration: Vec<u64>,
    /// Per uid: its permit from the previous epoch (`ValidatorPermit`).
    pub validator_permits: Vec<bool>,
    /// Per uid: its stored weight row, `(uid, u16)` pairs as `Weights` stores them.
    pub weights: Vec<Vec<(u16, u16)>>,
    /// Per uid: its stored bond row, `(uid, u16)` pairs as `Bonds` stores them.
    pub bonds: Vec<Vec<(u16, u16)>>,
    /// Emission to split this epoch, in rao.
    pub rao_emission: u64,
}

/// What `epoch_mechanism` returns (`EpochTerms`), per uid.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EpochOutput {
    /// Normalised stake after the threshold, u16 (`StakeWeight`).
    pub stake_weight: Vec<u16>,
    /// Updated within the activity cutoff (`Active`).
    pub active: Vec<bool>,
    /// Stake-weighted median weight per column, u16 (`Consensus`).
    pub consensus: Vec<u16>,
    /// Sum of a validator's clipped weights, u16 (`ValidatorTrust`).
    pub validator_trust: Vec<u16>,
    /// Incentive (normalised ranks), u16 (`Incentive`).
    pub incentive: Vec<u16>,
    /// Dividends, u16 (`Dividends`).
    pub dividends: Vec<u16>,
    /// New validator permits (`ValidatorPermit`).
    pub validator_permits: Vec<bool>,
    /// Miner (server) emission, rao.
    pub server_emission: Vec<u64>,
    /// Validator emission, rao.
    pub validator_emission: Vec<u64>,
    /// Combined emission, rao (`Emission`; normalised separately, so it can differ by a unit from
    /// server + validator).
    pub emission: Vec<u64>,
    /// New bond rows: `Some(row)` replaces the stored row (an empty row for a uid that lost its
    /// permit), `None` leaves it as it was (no permit before or now).
    pub bonds: Vec<Option<Vec<(u16, u16)>>>,
}

/// `run_epoch.rs` `alpha_sigmoid`: the liquid-alpha EMA rate of one bond.
pub fn alpha_sigmoid(
    consensus: I32F32,
    weight: I32F32,
    bond: I32F32,
    alpha_low: I32F32,
    alpha_high: I32F32,
    alpha_sigmoid_steepness: I32F32,
) -> I32F32 {
    alpha_of_diff(
        combined_diff(consensus, weight, bond),
        alpha_low,
        alpha_high,
        alpha_sigmoid_steepness,
    )
}

/// The first half of [`alpha_sigmoid`]: how far a bond is from where it moves to, clamped to [0, 1].
fn combined_diff(consensus: I32F32, weight: I32F32, bond: I32F32) -> I32F32 {
    let zero = I32F32::from_num(0);
    let one = I32F32::from_num(1);
    let diff_buy = clamp_value(weight.saturating_sub(consensus), zero, one);
    let diff_sell = clamp_value(bond.saturating_sub(weight), zero, one);
    if weight >= bond {
        diff_buy
    } else {
        diff_sell
    }
}

/// The second half of [`alpha_sigmoid`]: the rate of a combined difference (a pure function of it for
/// one epoch's parameters, so it can be cached).
fn alpha_of_diff(
    combined_diff: I32F32,
    alpha_low: I32F32,
    alpha_high: I32F32,
    alpha_sigmoid_steepness: I32F32,
) -> I32F32 {
    let one = I32F32::from_num(1);
    let sigmoid = one.saturating_div(
        one.saturating_add(exp_safe(
            alpha_sigmoid_steepness
                .saturating_div(I32F32::from_num(-100))
                .saturating_mul(combined_diff.saturating_sub(I32F32::from_num(0.5))),
        )),
    );
    let alpha =
        alpha_low.saturating_add(sigmoid.saturating_mul(alpha_high.saturating_sub(alpha_low)));
    clamp_value(alpha, alpha_low, alpha_high)
}

/// `run_epoch.rs` `compute_liquid_alpha_values_sparse`: a dense `rows × columns` matrix of rates.
/// Walks each row's cells with a cursor, so it assumes rows are sorted by column.
pub fn compute_liquid_alpha_values_sparse(
    params: &EpochParams,
    weights: &[Vec<(u16, I32F32)>],
    bonds: &[Vec<(u16, I32F32)>],
    consensus: &[I32F32],
) -> Vec<Vec<I32F32>> {
    if weights.len() != bonds.len() {
        return Vec::new();
    }
    let steepness = I32F32::saturating_from_num(params.alpha_sigmoid_steepness);
    let (alpha_low, alpha_high) = alpha_values_32(params);
    let zero = I32F32::from_num(0);
    let mut alphas = Vec::with_capacity(consensus.len());
    for (w_row, b_row) in weights.iter().zip(bonds.iter()) {
        let mut row_alphas = Vec::with_capacity(w_row.len());
        let mut w_iter = w_row.iter().peekable();
        let mut b_iter = b_row.iter().peekable();
        for (j_pos, consensus_val) in consensus.iter().enumerate() {
            let j = j_pos as u16;
            let mut weight = zero;
            while let Some(&&(i, val)) = w_iter.peek() {
                if i < j {
                    w_iter.next();
                } else {
                    if i == j {
                        weight = val;
                    }
                    break;
                }
            }
            let mut bond = zero;
            while let Some(&&(i, val)) = b_iter.peek() {
                if i < j {
                    b_iter.next();
                } else {
                    if i == j {
                        bond = val;
                    }
                    break;
                }
            }
            row_alphas.push(alpha_sigmoid(
                *consensus_val,
                weight,
                bond,
                alpha_low,
                alpha_high,
                steepness,
            ));
        }
        alphas.push(row_alphas);
    }
    alphas
}

/// [`compute_liquid_alpha_values_sparse`] followed by [`mat_ema_alpha_sparse`], computing a rate only
/// where the EMA uses one: the EMA writes a cell only where the new weights have one, so of the dense
/// `rows × n` rate matrix (one `exp` per cell) only the weights' non-zero cells matter. The same
/// arithmetic on the same operands, so the same bits; `None` (use the dense pair) unless every row of
/// both matrices is strictly sorted by column and they have as many rows, which is where the dense
/// version's cursors and this merge agree.
pub fn liquid_ema_bonds_sparse(
    params: &EpochParams,
    weights: &[Vec<(u16, I32F32)>],
    bonds: &[Vec<(u16, I32F32)>],
    consensus: &[I32F32],
) -> Option<SparseMatrix> {
    let sorted = |m: &[Vec<(u16, I32F32)>]| m.iter().all(|r| r.windows(2).all(|p| p[0].0 < p[1].0));
    if weights.len() != bonds.len() || !sorted(weights) || !sorted(bonds) {
        return None;
    }
    let steepness = I32F32::saturating_from_num(params.alpha_sigmoid_steepness);
    let (alpha_low, alpha_high) = alpha_values_32(params);
    let zero = I32F32::from_num(0);
    let one = I32F32::saturating_from_num(1);
    let n = consensus.len();
    let mut rates: std::collections::HashMap<i64, I32F32, BitsHash> =
        std::collections::HashMap::default();
    let mut result = Vec::with_capacity(weights.len());
    for (w_row, b_row) in weights.iter().zip(bonds.iter()) {
        let mut old = b_row.iter().peekable();
        let mut out_row = Vec::with_capacity(w_row.len());
        for &(j, new_val) in w_row.iter().filter(|(j, _)| usize::from(*j) < n) {
            let mut bond = None;
            while let Some(&&(k, v)) = old.peek() {
                if k < j {
                    old.next();
                } else {
                    if k == j {
                        bond = Some(v);
                    }
                    break;
                }
            }
            // The rate depends on the cell only through its combined difference, which repeats a lot
            // (0 wherever a weight is at or below consensus and above the bond): one exp per value.
            let diff = combined_diff(consensus[usize::from(j)], new_val, bond.unwrap_or(zero));
            let a = *rates
                .entry(diff.to_bits())
                .or_insert_with(|| alpha_of_diff(diff, alpha_low, alpha_high, steepness));
            let decayed = bond.map_or(zero, |b| one.saturating_sub(a).saturating_mul(b));
            let inc = a.saturating_mul(new_val).max(zero);
            let val = decayed.saturating_add(inc).min(one);
            if val > zero {
                out_row.push((j, val));
            }
        }
        result.push(out_row);
    }
    Some(result)
}

/// A hasher for the rate cache's keys (the raw bits of a fixed-point number, which need no DoS-resistant
/// hash): Fibonacci hashing of the 64 bits.
#[derive(Default)]
struct BitsHasher(u64);

impl std::hash::Hasher for BitsHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_i64(&mut self, v: i64) {
        self.0 = (v as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type BitsHash = std::hash::BuildHasherDefault<BitsHasher>;

/// `utils/misc.rs` `get_alpha_values_32`.
fn alpha_values_32(params: &EpochParams) -> (I32F32, I32F32) {
    (
        u16_proportion_to_fixed(params.alpha_low),
        u16_proportion_to_fixed(params.alpha_high),
    )
}

/// `run_epoch.rs` `compute_disabled_liquid_alpha` / the α of `compute_ema_bonds_normal_sparse`:
/// `1 − bonds_moving_average / 1e6`, computed in I64F64 then narrowed.
pub fn ema_alpha(bonds_moving_average: u64) -> I32F32 {
    let bma = I64F64::saturating_from_num(bonds_moving_average)
        .safe_div(I64F64::saturating_from_num(1_000_000));
    I32F32::saturating_from_num(1).saturating_sub(I32F32::saturating_from_num(bma))
}

/// `run_epoch.rs` `compute_bonds_sparse`: Yuma3 bonds, with liquid alpha when it is on and some
/// consensus is non-zero, otherwise a fixed EMA rate.
pub fn compute_bonds_sparse(
    params: &EpochParams,
    weights: &[Vec<(u16, I32F32)>],
    bonds: &[Vec<(u16, I32F32)>],
    consensus: &[I32F32],
) -> SparseMatrix {
    if params.liquid_alpha
        && !consensus.is_empty()
        && consensus.iter().any(|&c| c != I32F32::from_num(0))
    {
        liquid_ema_bonds_sparse(params, weights, bonds, consensus).unwrap_or_else(|| {
            let alphas = compute_liquid_alpha_values_sparse(params, weights, bonds, consensus);
            mat_ema_alpha_sparse(weights, bonds, &alphas)
        })
    } else {
        mat_ema_sparse(weights, bonds, ema_alpha(params.bonds_moving_average))
    }
}

fn u16_ratio(x: u16) -> I32F32 {
    I32F32::saturating_from_num(x).safe_div(I32F32::saturating_from_num(u16::MAX))
}

/// Runs one epoch: `run_epoch.rs` `epoch_mechanism`, step by step, with the same arithmetic.
pub fn epoch(params: &EpochParams, input: &EpochInput) -> Result<EpochOutput, YumaError> {
    let n_usize = input.stake.len();
    let n = u16::try_from(n_usize).map_err(|_| YumaError::TooManyUids(n_usize))?;
    for (field, len) in [
        ("last_update", input.last_update.len()),
        ("block_at_registration", input.block_at_registration.len()),
        ("validator_permits", input.validator_permits.len()),
        ("weights", input.weights.len()),
        ("bonds", input.bonds.len()),
    ] {
        if len != n_usize {
            return Err(YumaError::LengthMismatch {
                field,
                len,
                n: n_usize,
            });
        }
    }
    let zero = I32F32::from_num(0);
    let current_block = input.current_block;

    // == Active & updated ==
    let inactive: Vec<bool> = input
        .last_update
        .iter()
        .map(|updated| updated.saturating_add(params.activity_cutoff) < current_block)
        .collect();
    let active: Vec<bool> = inactive.iter().map(|&b| !b).collect();
    let block_at_registration = &input.block_at_registration;

    // == Stake ==
    let owner_uid = params.owner_uid;
    let mut filtered_stake: Vec<I64F64> = input
        .stake
        .iter()
        .enumerate()
        .map(|(uid, &s)| {
            if owner_uid != Some(uid as u16) && fixed64_to_u64(s) < params.stake_threshold {
                return I64F64::from_num(0);
            }
            s
        })
        .collect();
    inplace_normalize_64(&mut filtered_stake);
    let stake: Vec<I32F32> = vec_fixed64_to_fixed32(filtered_stake);

    // == Validator permits ==
    let mut validator_permits = input.validator_permits.clone();
    if let Some(p) = owner_uid.and_then(|o| validator_permits.get_mut(o as usize)) {
        *p = true;
    }
    let validator_forbids: Vec<bool> = validator_permits.iter().map(|&b| !b).collect();
    let mut new_validator_permits = is_topk_nonzero(&stake, params.max_allowed_validators as usize);
    if let Some(p) = owner_uid.and_then(|o| new_validator_permits.get_mut(o as usize)) {
        *p = true;
    }

    // == Active stake ==
    let mut active_stake = stake.clone();
    inplace_mask_vector(&inactive, &mut active_stake);
    inplace_mask_vector(&validator_forbids, &mut active_stake);
    inplace_normalize(&mut active_stake);

    // == Weights ==  (`get_weights_sparse`: cells at uids >= n are dropped)
    let mut weights: SparseMatrix = input
        .weights
        .iter()
        .map(|row| {
            row.iter()
                .filter(|(j, _)| *j < n)
                .map(|&(j, w)| (j, I32F32::saturating_from_num(w)))
                .collect()
        })
        .collect();
    weights = mask_rows_sparse(&validator_forbids, &weights);
    weights = match owner_uid {
        Some(o) => mask_diag_sparse_except_index(&weights, o),
        None => mask_diag_sparse(&weights),
    };
    weights = vec_mask_sparse_matrix(
        &weights,
        &input.last_update,
        block_at_registration,
        &|updated, registered| updated <= registered,
    );
    inplace_row_normalize_sparse(&mut weights);

    // == Consensus, validator trust ==
    let kappa = u16_ratio(params.kappa);
    let consensus = weighted_median_col_sparse(&active_stake, &weights, n, kappa);
    let clipped_weights = col_clip_sparse(&weights, &consensus);
    let validator_trust = row_sum_sparse(&clipped_weights);

    // == Ranks, incentive ==
    let mut ranks = matmul_sparse(&clipped_weights, &active_stake, n);
    inplace_normalize(&mut ranks);
    let incentive = ranks;

    // == Bonds and dividends ==
    let bonds_penalty = u16_ratio(params.bonds_penalty);
    let weights_for_bonds = interpolate_sparse(&weights, &clipped_weights, n, bonds_penalty);
    let last_tempo = if input.last_mechanism_step_block == 0 {
        current_block.saturating_sub(params.tempo)
    } else {
        input.last_mechanism_step_block.saturating_add(1)
    };
    let mut dividends: Vec<I32F32>;
    let mut ema_bonds: SparseMatrix;
    if params.yuma3 {
        // `get_bonds_sparse_fixed_proportion`: u16 / 65535.
        let mut bonds: SparseMatrix = input
            .bonds
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&(j, b)| (j, fixed_to_fixed_u16_proportion(u16_to_fixed(b))))
                    .collect()
            })
            .collect();
        bonds =
            scalar_vec_mask_sparse_matrix(&bonds, last_tempo, block_at_registration, &|lt, reg| {
                lt <= reg
            });
        ema_bonds = compute_bonds_sparse(params, &weights_for_bonds, &bonds, &consensus);
        let mut ema_bonds_norm = ema_bonds.clone();
        inplace_col_normalize_sparse(&mut ema_bonds_norm, n);
        let total_bonds_per_validator =
            row_sum_sparse(&mat_vec_mul_sparse(&ema_bonds_norm, &incentive));
        dividends = vec_mul(&total_bonds_per_validator, &active_stake);
        inplace_normalize(&mut dividends);
    } else {
        // `get_bonds_sparse`: the raw u16 as a fixed-point integer, column-normalised below.
        let mut bonds: SparseMatrix = input
            .bonds
            .iter()
            .map(|row| row.iter().map(|&(j, b)| (j, u16_to_fixed(b))).collect())
            .collect();
        bonds =
            scalar_vec_mask_sparse_matrix(&bonds, last_tempo, block_at_registration, &|lt, reg| {
                lt <= reg
            });
        inplace_col_normalize_sparse(&mut bonds, n);
        let mut bonds_delta = row_hadamard_sparse(&weights_for_bonds, &active_stake);
        inplace_col_normalize_sparse(&mut bonds_delta, n);
        ema_bonds = mat_ema_sparse(&bonds_delta, &bonds, ema_alpha(params.bonds_moving_average));
        inplace_col_normalize_sparse(&mut ema_bonds, n);
        dividends = matmul_transpose_sparse(&ema_bonds, &incentive);
        inplace_normalize(&mut dividends);
        inplace_col_max_upscale_sparse(&mut ema_bonds, n);
    }

    // == Emission ==
    let combined_emission: Vec<I32F32> = incentive
        .iter()
        .zip(dividends.iter())
        .map(|(ii, di)| ii.saturating_add(*di))
        .collect();
    let emission_sum: I32F32 = combined_emission.iter().sum();
    let mut normalized_server_emission = incentive.clone();
    let mut normalized_validator_emission = dividends.clone();
    let mut normalized_combined_emission = combined_emission;
    inplace_normalize_using_sum(&mut normalized_server_emission, emission_sum);
    inplace_normalize_using_sum(&mut normalized_validator_emission, emission_sum);
    inplace_normalize(&mut normalized_combined_emission);
    if emission_sum == zero {
        // No weights, outdated weights or self-weights only: pay validators by stake.
        if is_zero(&active_stake) {
            normalized_validator_emission.clone_from(&stake);
            normalized_combined_emission.clone_from(&stake);
        } else {
            normalized_validator_emission.clone_from(&active_stake);
            normalized_combined_emission.clone_from(&active_stake);
        }
    }
    let float_rao_emission = I96F32::saturating_from_num(input.rao_emission);
    let to_rao = |v: &[I32F32]| -> Vec<u64> {
        v.iter()
            .map(|x| {
                I96F32::saturating_from_num(*x)
                    .saturating_mul(float_rao_emission)
                    .saturating_to_num::<u64>()
            })
            .collect()
    };
    let to_u16 =
        |v: &[I32F32]| -> Vec<u16> { v.iter().map(|x| fixed_proportion_to_u16(*x)).collect() };

    let bonds = new_validator_permits
        .iter()
        .zip(validator_permits.iter())
        .enumerate()
        .map(|(uid, (&new_permit, &old_permit))| {
            if new_permit {
                Some(
                    ema_bonds
                        .get(uid)
                        .map(|row| {
                            row.iter()
                                .map(|&(j, v)| (j, fixed_proportion_to_u16(v)))
                                .collect()
                        })
                        .unwrap_or_default(),
                )
            } else if old_permit {
                Some(Vec::new())
            } else {
                None
            }
        })
        .collect();

    Ok(EpochOutput {
        stake_weight: to_u16(&stake),
        active,
        consensus: to_u16(&consensus),
        validator_trust: to_u16(&validator_trust),
        incentive: to_u16(&incentive),
        dividends: to_u16(&dividends),
        validator_permits: new_validator_permits,
        server_emission: to_rao(&normalized_server_emission),
        validator_emission: to_rao(&normalized_validator_emission),
        emission: to_rao(&normalized_combined_emission),
        bonds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The liquid-alpha EMA computed only where it is used gives the dense pair's bits, on random sparse
    /// matrices (sorted rows, cells beyond n, empty rows, zero and full values, zero consensus).
    #[test]
    fn liquid_alpha_where_used_is_bit_identical_to_the_dense_matrix() {
        fn next(seed: &mut u64, m: u64) -> u64 {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed % m.max(1)
        }
        fn value(r: u64) -> I32F32 {
            match r % 5 {
                0 => I32F32::from_num(0),
                1 => I32F32::from_num(1),
                _ => I32F32::from_bits((r as i64 * 7_919) % (1 << 32)),
            }
        }
        fn matrix(seed: &mut u64, rows: usize, n: usize, density: u64) -> Vec<Vec<(u16, I32F32)>> {
            (0..rows)
                .map(|_| {
                    let mut row = Vec::new();
                    for j in 0..(n + 3) as u16 {
                        if next(seed, 100) < density {
                            row.push((j, value(next(seed, 1 << 32))));
                        }
                    }
                    row
                })
                .collect()
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let params = EpochParams {
            liquid_alpha: true,
            ..EpochParams::default()
        };
        for case in 0..300 {
            let n = 1 + next(&mut seed, 40) as usize;
            let rows = 1 + next(&mut seed, 12) as usize;
            let d = next(&mut seed, 100);
            let weights = matrix(&mut seed, rows, n, d);
            let d = next(&mut seed, 100);
            let bonds = matrix(&mut seed, rows, n, d);
            let consensus: Vec<I32F32> = (0..n)
                .map(|_| {
                    if case % 7 == 0 {
                        I32F32::from_num(0)
                    } else {
                        value(next(&mut seed, 1 << 32))
                    }
                })
                .collect();
            let dense = mat_ema_alpha_sparse(
                &weights,
                &bonds,
                &compute_liquid_alpha_values_sparse(&params, &weights, &bonds, &consensus),
            );
            let fast = liquid_ema_bonds_sparse(&params, &weights, &bonds, &consensus)
                .expect("sorted rows");
            assert_eq!(fast, dense, "case {case}: n {n}, rows {rows}");
        }
        // Unsorted rows go to the dense pair.
        let unsorted = vec![vec![(2, I32F32::from_num(1)), (1, I32F32::from_num(1))]];
        assert!(
            liquid_ema_bonds_sparse(&params, &unsorted, &[vec![]], &[I32F32::from_num(1); 3])
                .is_none()
        );
    }

    fn two_uids() -> EpochInput {
        EpochInput {
            current_block: 10,
            last_mechanism_step_block: 0,
            stake: vec![I64F64::from_num(5), I64F64::from_num(0)],
            last_update: vec![9, 9],
            block_at_registration: vec![0, 0],
            validator_permits: vec![true, false],
            weights: vec![vec![(1, u16::MAX)], vec![]],
            bonds: vec![vec![], vec![]],
            rao_emission: 1000,
        }
    }

    #[test]
    fn one_validator_one_miner_split_the_emission() {
        let out = epoch(&EpochParams::default(), &two_uids()).expect("runs");
        assert_eq!(out.incentive, [0, u16::MAX]);
        assert_eq!(out.dividends, [u16::MAX, 0]);
        assert_eq!(out.server_emission, [0, 500]);
        assert_eq!(out.validator_emission, [500, 0]);
        assert_eq!(out.validator_permits, [true, false]);
        assert_eq!(out.bonds, [Some(vec![(1, u16::MAX)]), None]);
    }

    #[test]
    fn self_weight_is_masked_unless_owner() {
        let mut input = two_uids();
        input.weights = vec![vec![(0, u16::MAX)], vec![]];
        let out = epoch(&EpochParams::default(), &input).expect("runs");
        // No weights left: the emission falls back to (active) stake.
        assert_eq!(out.incentive, [0, 0]);
        assert_eq!(out.validator_emission, [1000, 0]);
        let owner = EpochParams {
            owner_uid: Some(0),
            ..EpochParams::default()
        };
        let out = epoch(&owner, &input).expect("runs");
        assert_eq!(out.incentive, [u16::MAX, 0]);
    }

    #[test]
    fn lengths_must_match() {
        let mut input = two_uids();
        input.last_update.pop();
        assert!(matches!(
            epoch(&EpochParams::default(), &input),
            Err(YumaError::LengthMismatch {
                field: "last_update",
                len: 1,
                n: 2
            })
        ));
    }

    #[test]
    fn ema_alpha_and_sigmoid_bounds() {
        // 1 - 0.9 in I64F64 narrowed to I32F32: truncation leaves it a hair under 0.1.
        let a = ema_alpha(900_000);
        assert!(a <= I32F32::from_num(0.1) && a > I32F32::from_num(0.0999999));
        let (lo, hi) = (I32F32::from_num(0.1), I32F32::from_num(0.3));
        let s = I32F32::from_num(1000);
        let one = I32F32::from_num(1);
        let z = I32F32::from_num(0);
        // Weight far above consensus: buys fast (alpha near high); at consensus: near low.
        assert!(alpha_sigmoid(z, one, z, lo, hi, s) > I32F32::from_num(0.29));
        assert!(alpha_sigmoid(one, one, one, lo, hi, s) < I32F32::from_num(0.11));
    }
}
