//! Fixed-point vector and sparse-matrix primitives of the Yuma epoch.
//!
//! A port of opentensor/subtensor `pallets/subtensor/src/epoch/math.rs` (the functions the sparse,
//! production epoch uses, plus the few its tests exercise). Every function keeps subtensor's
//! arithmetic exactly: the same fixed-point types from `substrate-fixed`, the same saturating
//! operations, the same order of summation, and the same behaviour on odd input (a division by zero
//! gives 0, a missing element counts as 0 or as "masked", length mismatches are tolerated). Where
//! subtensor logs a "math error" we stay silent: this crate does no IO.
//!
//! A sparse matrix is a `Vec` of rows; a row is a list of `(column, value)` pairs in the order
//! they were stored (subtensor never re-sorts them).

use substrate_fixed::transcendental::exp;
use substrate_fixed::types::{I32F32, I64F64};

/// A sparse matrix: one row per uid, each a list of `(column uid, value)` pairs.
pub type SparseMatrix = Vec<Vec<(u16, I32F32)>>;

/// Division that yields 0 when the divisor is 0 or the quotient overflows.
///
/// subtensor `primitives/safe-math` `FixedExt::safe_div`: `checked_div(rhs).unwrap_or_default()`.
pub trait SafeDiv: Sized {
    /// `self / rhs`, or 0 on division by zero or overflow.
    fn safe_div(self, rhs: Self) -> Self;
}

impl SafeDiv for I32F32 {
    fn safe_div(self, rhs: Self) -> Self {
        self.checked_div(rhs).unwrap_or_default()
    }
}

impl SafeDiv for I64F64 {
    fn safe_div(self, rhs: Self) -> Self {
        self.checked_div(rhs).unwrap_or_default()
    }
}

fn zero() -> I32F32 {
    I32F32::from_num(0)
}

fn get_safe<T: Copy + Default>(slice: &[T], idx: usize) -> T {
    slice.get(idx).copied().unwrap_or_default()
}

/// `math.rs` `fixed`: an `f32` as `I32F32` (saturating).
pub fn fixed(val: f32) -> I32F32 {
    I32F32::saturating_from_num(val)
}

/// `math.rs` `fixed_to_u16`: saturating, truncating conversion.
pub fn fixed_to_u16(x: I32F32) -> u16 {
    x.saturating_to_num::<u16>()
}

/// `math.rs` `fixed64_to_u64`: saturating, truncating conversion.
pub fn fixed64_to_u64(x: I64F64) -> u64 {
    x.saturating_to_num::<u64>()
}

/// `math.rs` `fixed64_to_fixed32`: drops the low 32 fractional bits, saturates the integer part.
pub fn fixed64_to_fixed32(x: I64F64) -> I32F32 {
    I32F32::saturating_from_num(x)
}

/// `math.rs` `u16_to_fixed`: the integer value of a `u16` (not a proportion).
pub fn u16_to_fixed(x: u16) -> I32F32 {
    I32F32::saturating_from_num(x)
}

/// `math.rs` `u16_proportion_to_fixed`: `x / 65535`.
pub fn u16_proportion_to_fixed(x: u16) -> I32F32 {
    I32F32::saturating_from_num(x).safe_div(I32F32::saturating_from_num(u16::MAX))
}

/// `math.rs` `fixed_to_fixed_u16_proportion`: `x / 65535` for an already fixed value.
pub fn fixed_to_fixed_u16_proportion(x: I32F32) -> I32F32 {
    x.safe_div(I32F32::saturating_from_num(u16::MAX))
}

/// `math.rs` `fixed_proportion_to_u16`: `trunc(x * 65535)`, saturating. This is how every stored
/// u16 (incentive, dividends, consensus, bonds, …) is produced: truncation, not rounding.
pub fn fixed_proportion_to_u16(x: I32F32) -> u16 {
    fixed_to_u16(x.saturating_mul(I32F32::saturating_from_num(u16::MAX)))
}

/// `math.rs` `vec_fixed64_to_fixed32`.
pub fn vec_fixed64_to_fixed32(vec: Vec<I64F64>) -> Vec<I32F32> {
    vec.into_iter().map(fixed64_to_fixed32).collect()
}

/// `math.rs` `vec_max_upscale_to_u16`: scale so the maximum becomes 65535 (rounded), as
/// `set_weights` stores weights. Assumes non-negative input.
pub fn vec_max_upscale_to_u16(vec: &[I32F32]) -> Vec<u16> {
    let u16_max = I32F32::saturating_from_num(u16::MAX);
    let threshold = I32F32::saturating_from_num(32768);
    match vec.iter().max() {
        Some(val) => {
            if *val == zero() {
                return vec
                    .iter()
                    .map(|e| e.saturating_mul(u16_max).saturating_to_num::<u16>())
                    .collect();
            }
            if *val > threshold {
                return vec
                    .iter()
                    .map(|e| {
                        e.saturating_mul(u16_max.safe_div(*val))
                            .round()
                            .saturating_to_num::<u16>()
                    })
                    .collect();
            }
            vec.iter()
                .map(|e| {
                    e.saturating_mul(u16_max)
                        .safe_div(*val)
                        .round()
                        .saturating_to_num::<u16>()
                })
                .collect()
        }
        None => Vec::new(),
    }
}

/// `math.rs` `vec_u16_max_upscale_to_u16`.
pub fn vec_u16_max_upscale_to_u16(vec: &[u16]) -> Vec<u16> {
    let vec_fixed: Vec<I32F32> = vec
        .iter()
        .map(|e| I32F32::saturating_from_num(*e))
        .collect();
    vec_max_upscale_to_u16(&vec_fixed)
}

/// `math.rs` `sum`. Like upstream, a plain (non-saturating) `Sum`.
pub fn sum(x: &[I32F32]) -> I32F32 {
    x.iter().sum()
}

/// `math.rs` `is_zero`: true when the vector sums to zero.
pub fn is_zero(vector: &[I32F32]) -> bool {
    sum(vector) == zero()
}

/// `substrate_fixed::transcendental::exp::<I32F32, I32F32>` (`None` for its `Err`): the same operations
/// on the same bits, with the series' divisions done on the raw bits. Dividing a fixed-point term by the
/// fixed-point integer `i` computes `(term << 32) / (i << 32)` in 128 bits, truncated toward zero,
/// which is exactly `term / i` on the 64-bit raw value (the same rational number): one 64-bit division
/// replaces a 128-bit one per term. Once a term is 0 every later one is, so the loop stops there. The
/// multiplication, the overflow checks and the final reciprocal are the crate's own. The `math` test
/// `exp_on_raw_bits_is_the_crates_exp` compares the two on every edge and on a million random inputs.
pub fn exp_i32f32(operand: I32F32) -> Option<I32F32> {
    let one = I32F32::from_num(1);
    if operand == I32F32::from_num(0) {
        return Some(one);
    }
    if operand == one {
        return exp(operand).ok();
    }
    let neg = operand < I32F32::from_num(0);
    let operand = if neg { operand.checked_neg()? } else { operand };
    let mut result = operand.checked_add(one)?;
    let mut term = operand;
    let finish = |result: I32F32| {
        if neg {
            one.checked_div(result)
        } else {
            Some(result)
        }
    };
    // `for i in 2..D::frac_nbits()` (I32F32 has 32 fraction bits), unrolled so that each division is
    // by a constant, which the compiler turns into a multiplication and shifts giving the same quotient.
    // Once a term is 0, every later term is 0 · operand / i = 0 and adds nothing: the crate's loop runs
    // on to the same result.
    macro_rules! terms {
        ($($i:literal)*) => {$(
            term = term.checked_mul(operand)?;
            term = I32F32::from_bits(term.to_bits() / $i);
            if term == I32F32::from_num(0) {
                return finish(result);
            }
            result = result.checked_add(term)?;
        )*};
    }
    terms!(2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
    finish(result)
}

/// `math.rs` `exp_safe`: `exp` with the input clamped to [-20, 20]; on error 0 or `I32F32::MAX`.
pub fn exp_safe(input: I32F32) -> I32F32 {
    let min_input = I32F32::saturating_from_num(-20);
    let max_input = I32F32::saturating_from_num(20);
    let mut safe_input = input;
    if input < min_input {
        safe_input = min_input;
    } else if max_input < input {
        safe_input = max_input;
    }
    match exp_i32f32(safe_input) {
        Some(val) => val,
        None => {
            if safe_input <= zero() {
                zero()
            } else {
                I32F32::max_value()
            }
        }
    }
}

/// `math.rs` `sigmoid_safe`: `1 / (1 + exp(-rho * (input - kappa)))`.
pub fn sigmoid_safe(input: I32F32, rho: I32F32, kappa: I32F32) -> I32F32 {
    let one = I32F32::saturating_from_num(1);
    let offset = input.saturating_sub(kappa);
    let neg_rho = rho.saturating_mul(one.saturating_neg());
    let exp_input = neg_rho.saturating_mul(offset);
    let exp_output = exp_safe(exp_input);
    let denominator = exp_output.saturating_add(one);
    one.safe_div(denominator)
}

/// `math.rs` `is_topk`: true for the k largest values (ties broken by a stable ascending sort, so
/// among equal values the higher uids win).
pub fn is_topk(vector: &[I32F32], k: usize) -> Vec<bool> {
    let n = vector.len();
    let mut result = vec![true; n];
    if n < k {
        return result;
    }
    let mut idxs: Vec<usize> = (0..n).collect();
    idxs.sort_by_key(|&idx| get_safe(vector, idx));
    for &idx in idxs.iter().take(n.saturating_sub(k)) {
        if let Some(cell) = result.get_mut(idx) {
            *cell = false;
        }
    }
    result
}

/// `math.rs` `is_topk_nonzero`: as [`is_topk`], and false for zero values.
pub fn is_topk_nonzero(vector: &[I32F32], k: usize) -> Vec<bool> {
    let n = vector.len();
    let mut result: Vec<bool> = vector.iter().map(|&elem| elem != zero()).collect();
    if n < k {
        return result;
    }
    let mut idxs: Vec<usize> = (0..n).collect();
    idxs.sort_by_key(|&idx| get_safe(vector, idx));
    for &idx in idxs.iter().take(n.saturating_sub(k)) {
        if let Some(cell) = result.get_mut(idx) {
            *cell = false;
        }
    }
    result
}

/// `math.rs` `normalize`: a copy that sums to 1, unless the sum is 0.
pub fn normalize(x: &[I32F32]) -> Vec<I32F32> {
    let x_sum = sum(x);
    if x_sum != zero() {
        x.iter().map(|xi| xi.safe_div(x_sum)).collect()
    } else {
        x.to_vec()
    }
}

/// `math.rs` `inplace_normalize`.
pub fn inplace_normalize(x: &mut [I32F32]) {
    let x_sum: I32F32 = x.iter().sum();
    if x_sum == zero() {
        return;
    }
    x.iter_mut().for_each(|v| *v = v.safe_div(x_sum));
}

/// `math.rs` `inplace_normalize_using_sum`.
pub fn inplace_normalize_using_sum(x: &mut [I32F32], x_sum: I32F32) {
    if x_sum == zero() {
        return;
    }
    x.iter_mut().for_each(|v| *v = v.safe_div(x_sum));
}

/// `math.rs` `inplace_normalize_64`.
pub fn inplace_normalize_64(x: &mut [I64F64]) {
    let x_sum: I64F64 = x.iter().sum();
    if x_sum == I64F64::from_num(0) {
        return;
    }
    x.iter_mut().for_each(|v| *v = v.safe_div(x_sum));
}

/// `math.rs` `inplace_row_normalize_sparse`: rows with a positive sum are scaled to sum to 1.
pub fn inplace_row_normalize_sparse(sparse_matrix: &mut [Vec<(u16, I32F32)>]) {
    for row in sparse_matrix.iter_mut() {
        let row_sum: I32F32 = row.iter().map(|(_, v)| *v).sum();
        if row_sum > zero() {
            row.iter_mut().for_each(|(_, v)| *v = v.safe_div(row_sum));
        }
    }
}

/// `math.rs` `row_sum_sparse`.
pub fn row_sum_sparse(sparse_matrix: &[Vec<(u16, I32F32)>]) -> Vec<I32F32> {
    sparse_matrix
        .iter()
        .map(|row| row.iter().map(|(_, v)| v).sum())
        .collect()
}

/// `math.rs` `inplace_col_normalize_sparse`: columns with a non-zero (saturating) sum sum to 1.
pub fn inplace_col_normalize_sparse(sparse_matrix: &mut [Vec<(u16, I32F32)>], columns: u16) {
    let mut col_sum = vec![zero(); columns as usize];
    for row in sparse_matrix.iter() {
        for &(j, value) in row.iter() {
            if let Some(s) = col_sum.get_mut(j as usize) {
                *s = s.saturating_add(value);
            }
        }
    }
    for row in sparse_matrix.iter_mut() {
        for (j, value) in row.iter_mut() {
            let denom = col_sum.get(*j as usize).copied().unwrap_or(zero());
            if denom != zero() {
                *value = value.safe_div(denom);
            }
        }
    }
}

/// `math.rs` `inplace_col_max_upscale_sparse`: each column divided by its maximum.
pub fn inplace_col_max_upscale_sparse(sparse_matrix: &mut [Vec<(u16, I32F32)>], columns: u16) {
    let mut col_max = vec![zero(); columns as usize];
    for row in sparse_matrix.iter() {
        for (j, value) in row.iter() {
            if let Some(m) = col_max.get_mut(*j as usize) {
                if *m < *value {
                    *m = *value;
                }
            }
        }
    }
    for row in sparse_matrix.iter_mut() {
        for (j, value) in row.iter_mut() {
            let m = col_max.get(*j as usize).copied().unwrap_or(zero());
            if m != zero() {
                *value = value.safe_div(m);
            }
        }
    }
}

/// `math.rs` `inplace_mask_vector`: `mask[i] == true` zeroes `vector[i]`; an empty mask does
/// nothing, a short mask masks the rest.
pub fn inplace_mask_vector(mask: &[bool], vector: &mut [I32F32]) {
    if mask.is_empty() {
        return;
    }
    for (i, v) in vector.iter_mut().enumerate() {
        if *mask.get(i).unwrap_or(&true) {
            *v = zero();
        }
    }
}

/// `math.rs` `scalar_vec_mask_sparse_matrix`: drop cell `(i, j)` when `mask_fn(scalar, vector[j])`.
pub fn scalar_vec_mask_sparse_matrix(
    sparse_matrix: &[Vec<(u16, I32F32)>],
    scalar: u64,
    vector: &[u64],
    mask_fn: &dyn Fn(u64, u64) -> bool,
) -> SparseMatrix {
    sparse_matrix
        .iter()
        .map(|row| {
            row.iter()
                .filter(|(j, _)| !mask_fn(scalar, vector.get(*j as usize).copied().unwrap_or(0)))
                .copied()
                .collect()
        })
        .collect()
}

/// `math.rs` `mask_rows_sparse`: rows whose mask is true (or missing) become empty.
pub fn mask_rows_sparse(mask: &[bool], sparse_matrix: &[Vec<(u16, I32F32)>]) -> SparseMatrix {
    sparse_matrix
        .iter()
        .enumerate()
        .map(|(i, row)| {
            if mask.get(i).copied().unwrap_or(true) {
                Vec::new()
            } else {
                row.clone()
            }
        })
        .collect()
}

/// `math.rs` `mask_diag_sparse`: drop self-weights.
pub fn mask_diag_sparse(sparse_matrix: &[Vec<(u16, I32F32)>]) -> SparseMatrix {
    sparse_matrix
        .iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .filter(|(j, _)| i != *j as usize)
                .copied()
                .collect()
        })
        .collect()
}

/// `math.rs` `mask_diag_sparse_except_index`: drop self-weights except at `except_index`.
pub fn mask_diag_sparse_except_index(
    sparse_matrix: &[Vec<(u16, I32F32)>],
    except_index: u16,
) -> SparseMatrix {
    sparse_matrix
        .iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .filter(|(j, _)| {
                    i != *j as usize || (i == except_index as usize && *j == except_index)
                })
                .copied()
                .collect()
        })
        .collect()
}

/// `math.rs` `vec_mask_sparse_matrix`: drop cell `(i, j)` when `mask_fn(first[i], second[j])`
/// (missing entries count as 0).
pub fn vec_mask_sparse_matrix(
    sparse_matrix: &[Vec<(u16, I32F32)>],
    first_vector: &[u64],
    second_vector: &[u64],
    mask_fn: &dyn Fn(u64, u64) -> bool,
) -> SparseMatrix {
    let mut fv_it = first_vector.iter();
    sparse_matrix
        .iter()
        .map(|row| {
            let fv = fv_it.next().copied().unwrap_or(0);
            row.iter()
                .filter(|(j, _)| !mask_fn(fv, second_vector.get(*j as usize).copied().unwrap_or(0)))
                .copied()
                .collect()
        })
        .collect()
}

/// `math.rs` `row_hadamard_sparse`: row `i` times `vector[i]`; stops at the shorter of the two.
pub fn row_hadamard_sparse(
    sparse_matrix: &[Vec<(u16, I32F32)>],
    vector: &[I32F32],
) -> SparseMatrix {
    sparse_matrix
        .iter()
        .zip(vector.iter())
        .map(|(row, &scale)| {
            row.iter()
                .map(|&(j, v)| (j, v.saturating_mul(scale)))
                .collect()
        })
        .collect()
}

/// `math.rs` `matmul_sparse`: `result_j = Σ_i vector_i · m_ij` (saturating).
pub fn matmul_sparse(
    sparse_matrix: &[Vec<(u16, I32F32)>],
    vector: &[I32F32],
    columns: u16,
) -> Vec<I32F32> {
    let mut result = vec![zero(); columns as usize];
    let mut vec_it = vector.iter();
    for row in sparse_matrix.iter() {
        let scale = vec_it.next().copied().unwrap_or(zero());
        for &(j, val) in row.iter() {
            if let Some(r) = result.get_mut(j as usize) {
                *r = r.saturating_add(scale.saturating_mul(val));
            }
        }
    }
    result
}

/// `math.rs` `matmul_transpose_sparse`: `result_i = Σ_j vector_j · m_ij` (saturating).
pub fn matmul_transpose_sparse(
    sparse_matrix: &[Vec<(u16, I32F32)>],
    vector: &[I32F32],
) -> Vec<I32F32> {
    sparse_matrix
        .iter()
        .map(|row| {
            let mut acc = zero();
            for &(j, val) in row.iter() {
                let v = vector.get(j as usize).copied().unwrap_or(zero());
                acc = acc.saturating_add(v.saturating_mul(val));
            }
            acc
        })
        .collect()
}

/// `math.rs` `col_clip_sparse`: values above the column threshold become the threshold, and are
/// dropped altogether when the threshold is 0.
pub fn col_clip_sparse(
    sparse_matrix: &[Vec<(u16, I32F32)>],
    col_threshold: &[I32F32],
) -> SparseMatrix {
    sparse_matrix
        .iter()
        .map(|row| {
            let mut out_row = Vec::with_capacity(row.len());
            for &(j, val) in row.iter() {
                let th = col_threshold.get(j as usize).copied().unwrap_or(zero());
                if th < val {
                    if th > zero() {
                        out_row.push((j, th));
                    }
                } else {
                    out_row.push((j, val));
                }
            }
            out_row
        })
        .collect()
}

/// `math.rs` `weighted_median`: stake-weighted median by a deterministic mid-pivot partition
/// search. `minority = stake_sum - κ`; `[partition_lo, partition_hi]` is the stake segment searched.
pub fn weighted_median(
    stake: &[I32F32],
    score: &[I32F32],
    partition_idx: &[usize],
    minority: I32F32,
    mut partition_lo: I32F32,
    mut partition_hi: I32F32,
) -> I32F32 {
    if stake.len() != score.len() {
        return zero();
    }
    let mut current: Vec<usize> = partition_idx.to_vec();
    let mut iteration_counter: usize = 0;
    let iteration_limit = partition_idx.len();
    let mut lower: Vec<usize> = Vec::new();
    let mut upper: Vec<usize> = Vec::new();
    loop {
        let n = current.len();
        if n == 0 {
            return zero();
        }
        if n == 1 {
            return current.first().map_or(zero(), |&i| get_safe(score, i));
        }
        let mid_idx = n / 2;
        let pivot = get_safe(score, current.get(mid_idx).copied().unwrap_or(0));
        let mut lo_stake = zero();
        let mut hi_stake = zero();
        for &idx in current.iter() {
            let s = get_safe(score, idx);
            if s == pivot {
                continue;
            }
            if s < pivot {
                lo_stake = lo_stake.saturating_add(get_safe(stake, idx));
                lower.push(idx);
            } else {
                hi_stake = hi_stake.saturating_add(get_safe(stake, idx));
                upper.push(idx);
            }
        }
        if minority < partition_lo.saturating_add(lo_stake) && !lower.is_empty() {
            std::mem::swap(&mut current, &mut lower);
            partition_hi = partition_lo.saturating_add(lo_stake);
        } else if partition_hi.saturating_sub(hi_stake) <= minority && !upper.is_empty() {
            std::mem::swap(&mut current, &mut upper);
            partition_lo = partition_hi.saturating_sub(hi_stake);
        } else {
            return pivot;
        }
        lower.clear();
        upper.clear();
        iteration_counter = iteration_counter.saturating_add(1);
        if iteration_counter > iteration_limit {
            break;
        }
    }
    zero()
}

/// `math.rs` `weighted_median_col_sparse`: the κ-majority stake-weighted median of every column,
/// over the rows with positive stake (stake renormalised over those rows).
pub fn weighted_median_col_sparse(
    stake: &[I32F32],
    score: &[Vec<(u16, I32F32)>],
    columns: u16,
    majority: I32F32,
) -> Vec<I32F32> {
    let mut use_stake: Vec<I32F32> = stake.iter().copied().filter(|&s| s > zero()).collect();
    inplace_normalize(&mut use_stake);
    let stake_sum: I32F32 = use_stake.iter().sum();
    let minority = stake_sum.saturating_sub(majority);
    let stake_idx: Vec<usize> = (0..use_stake.len()).collect();
    let mut use_score: Vec<Vec<I32F32>> = (0..columns as usize)
        .map(|_| vec![zero(); use_stake.len()])
        .collect();
    let mut k: usize = 0;
    for (&s, row) in stake.iter().zip(score.iter()) {
        if s > zero() {
            for &(c, val) in row.iter() {
                if let Some(cell) = use_score.get_mut(c as usize).and_then(|col| col.get_mut(k)) {
                    *cell = val;
                }
            }
            k = k.saturating_add(1);
        }
    }
    use_score
        .iter()
        .map(|col| weighted_median(&use_stake, col, &stake_idx, minority, zero(), stake_sum))
        .collect()
}

/// `math.rs` `interpolate_sparse`: `A + ratio · (B − A)`, keeping positive cells, in column order.
/// `ratio == 0` returns `A` and `ratio == 1` returns `B` unchanged (same cell order as stored).
pub fn interpolate_sparse(
    mat1: &[Vec<(u16, I32F32)>],
    mat2: &[Vec<(u16, I32F32)>],
    columns: u16,
    ratio: I32F32,
) -> SparseMatrix {
    if ratio == zero() {
        return mat1.to_owned();
    }
    if ratio == I32F32::from_num(1) {
        return mat2.to_owned();
    }
    if mat1.len() != mat2.len() {
        return mat2.to_owned();
    }
    let mut result: SparseMatrix = vec![Vec::new(); mat1.len()];
    for (i, out) in result.iter_mut().enumerate() {
        let mut row1 = vec![zero(); columns as usize];
        for (j, value) in mat1.get(i).into_iter().flatten() {
            if let Some(e) = row1.get_mut(*j as usize) {
                *e = *value;
            }
        }
        let mut row2 = vec![zero(); columns as usize];
        for (j, value) in mat2.get(i).into_iter().flatten() {
            if let Some(e) = row2.get_mut(*j as usize) {
                *e = *value;
            }
        }
        for (j, (v1, v2)) in row1.iter().zip(row2.iter()).enumerate() {
            let interp = v1.saturating_add(ratio.saturating_mul(v2.saturating_sub(*v1)));
            if zero() < interp {
                out.push((j as u16, interp));
            }
        }
    }
    result
}

/// `math.rs` `vec_mul`: element-wise product; an overflowing product becomes 0 (`checked_mul`).
pub fn vec_mul(a: &[I32F32], b: &[I32F32]) -> Vec<I32F32> {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| x.checked_mul(*y).unwrap_or_default())
        .collect()
}

/// `math.rs` `mat_vec_mul_sparse`: `m_ij · vector_j`, keeping non-zero cells.
pub fn mat_vec_mul_sparse(matrix: &[Vec<(u16, I32F32)>], vector: &[I32F32]) -> SparseMatrix {
    matrix
        .iter()
        .map(|row| {
            let mut out = Vec::new();
            for (j, value) in row.iter() {
                if let Some(v) = vector.get(*j as usize) {
                    let new_value = value.saturating_mul(*v);
                    if new_value != zero() {
                        out.push((*j, new_value));
                    }
                }
            }
            out
        })
        .collect()
}

/// `math.rs` `clamp_value`: `min(value, high)` then `max(_, low)`.
pub fn clamp_value(value: I32F32, low: I32F32, high: I32F32) -> I32F32 {
    value.min(high).max(low)
}

/// `math.rs` `mat_ema_sparse`: `α · new + (1 − α) · old`, densified per row (width = number of
/// rows), keeping positive cells in column order.
pub fn mat_ema_sparse(
    new: &[Vec<(u16, I32F32)>],
    old: &[Vec<(u16, I32F32)>],
    alpha: I32F32,
) -> SparseMatrix {
    let one_minus_alpha = I32F32::saturating_from_num(1).saturating_sub(alpha);
    let n = new.len();
    if n == 0 {
        return Vec::new();
    }
    let mut result = Vec::with_capacity(n);
    let mut old_it = old.iter();
    for new_row in new.iter() {
        let mut acc = vec![zero(); n];
        for &(j, v) in new_row.iter() {
            if let Some(cell) = acc.get_mut(j as usize) {
                *cell = cell.saturating_add(alpha.saturating_mul(v));
            }
        }
        if let Some(orow) = old_it.next() {
            for &(j, v) in orow.iter() {
                if let Some(cell) = acc.get_mut(j as usize) {
                    *cell = cell.saturating_add(one_minus_alpha.saturating_mul(v));
                }
            }
        }
        result.push(
            acc.iter()
                .enumerate()
                .filter(|(_, v)| **v > zero())
                .map(|(j, v)| (j as u16, *v))
                .collect(),
        );
    }
    result
}

/// `math.rs` `mat_ema_alpha_sparse`: per-cell `(1 − α_ij) · old_ij + max(α_ij · new_ij, 0)`,
/// clamped to 1. **Only the cells present in `new` are emitted**: a bond whose weight is now
/// zero disappears instead of decaying (subtensor quirk; the dense `mat_ema_alpha` decays it).
pub fn mat_ema_alpha_sparse(
    new: &[Vec<(u16, I32F32)>],
    old: &[Vec<(u16, I32F32)>],
    alpha: &[Vec<I32F32>],
) -> SparseMatrix {
    if new.len() != old.len() || new.len() != alpha.len() {
        return new.to_owned();
    }
    let one = I32F32::saturating_from_num(1);
    let mut result = Vec::with_capacity(new.len());
    for ((new_row, old_row), alpha_row) in new.iter().zip(old.iter()).zip(alpha.iter()) {
        let mut decayed = vec![zero(); alpha_row.len()];
        for &(j, old_val) in old_row.iter() {
            if let (Some(&a), Some(cell)) = (alpha_row.get(j as usize), decayed.get_mut(j as usize))
            {
                *cell = one.saturating_sub(a).saturating_mul(old_val);
            }
        }
        let mut out_row = Vec::new();
        for &(j, new_val) in new_row.iter() {
            if let (Some(&a), Some(&d)) = (alpha_row.get(j as usize), decayed.get(j as usize)) {
                let inc = a.saturating_mul(new_val).max(zero());
                let val = d.saturating_add(inc).min(one);
                if val > zero() {
                    out_row.push((j, val));
                }
            }
        }
        result.push(out_row);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_on_raw_bits_is_the_crates_exp() {
        let check = |x: I32F32| {
            let ours = exp_i32f32(x);
            let theirs: Option<I32F32> = exp(x).ok();
            assert_eq!(ours, theirs, "exp({x}) bits {}", x.to_bits());
        };
        let edges = [
            0i64,
            1,
            -1,
            1 << 32,
            -(1 << 32),
            (1 << 32) + 1,
            (1 << 32) - 1,
            20 << 32,
            -(20 << 32),
            (20 << 32) - 1,
            -(20 << 32) + 1,
            5 << 32,
            -(5 << 32),
            1 << 31,
            -(1 << 31),
            40 << 32,
            -(40 << 32),
            i64::MAX,
            i64::MIN + 1,
        ];
        for b in edges {
            check(I32F32::from_bits(b));
        }
        // A million random inputs over exp_safe's domain [-20, 20], and some beyond it (overflow paths).
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for k in 0..1_000_000u64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let span: i64 = if k % 10 == 0 { 64 << 32 } else { 20 << 32 };
            let b = (seed % (2 * span as u64 + 1)) as i64 - span;
            check(I32F32::from_bits(b));
        }
    }
}
