//! subtensor's math tests, ported verbatim as reference vectors for `boltensor_protocol::yuma::math`.
//!
//! Source: opentensor/subtensor `pallets/subtensor/src/tests/math.rs` (snapshot
//! 14bc6f9f964b9cc362e9635dd110a487fa5d15a0). Every function that the sparse epoch uses is tested
//! with upstream's own vectors; each test keeps its upstream name and says so. The dense-matrix
//! functions (`weighted_median_col`, `mat_ema_alpha`, …) are not ported, nor are their tests.
//! The helpers below are upstream's too. The one change: upstream draws random scores and
//! permutations with `rand`; here a fixed xorshift generator (same test logic) keeps the crate
//! free of a `rand` dependency and the test deterministic.
#![allow(
    clippy::unwrap_used,
    clippy::excessive_precision,
    clippy::approx_constant,
    clippy::identity_op,
    clippy::erasing_op,
    clippy::useless_vec,
    clippy::needless_range_loop,
    clippy::manual_range_contains,
    clippy::bool_assert_comparison,
    clippy::manual_is_multiple_of
)]

use boltensor_protocol::yuma::math::*;
use substrate_fixed::transcendental::exp;
use substrate_fixed::types::{I32F32, I64F64};

/// A deterministic stand-in for `rand::rng()` (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn random_range(&mut self, r: std::ops::Range<u64>) -> u64 {
        r.start + self.next() % (r.end - r.start)
    }
}

trait Shuffle {
    fn shuffle(&mut self, rng: &mut Rng);
}

impl<T> Shuffle for Vec<T> {
    fn shuffle(&mut self, rng: &mut Rng) {
        for i in (1..self.len()).rev() {
            let j = rng.random_range(0..(i as u64 + 1)) as usize;
            self.swap(i, j);
        }
    }
}

mod rand {
    pub fn rng() -> super::Rng {
        super::Rng(0x9E37_79B9_7F4A_7C15)
    }
}

fn vec_to_fixed(vector: &[f32]) -> Vec<I32F32> {
    vector.iter().map(|x| I32F32::from_num(*x)).collect()
}

fn assert_float_compare(a: I32F32, b: I32F32, epsilon: I32F32) {
    assert!(I32F32::abs(a - b) <= epsilon, "a({a:?}) != b({b:?})");
}

fn assert_float_compare_64(a: I64F64, b: I64F64, epsilon: I64F64) {
    assert!(I64F64::abs(a - b) <= epsilon, "a({a:?}) != b({b:?})");
}

fn assert_vec_compare(va: &[I32F32], vb: &[I32F32], epsilon: I32F32) {
    assert!(va.len() == vb.len());
    for i in 0..va.len() {
        assert_float_compare(va[i], vb[i], epsilon);
    }
}

fn assert_vec_compare_64(va: &[I64F64], vb: &[I64F64], epsilon: I64F64) {
    assert!(va.len() == vb.len());
    for i in 0..va.len() {
        assert_float_compare_64(va[i], vb[i], epsilon);
    }
}

fn assert_vec_compare_u16(va: &[u16], vb: &[u16]) {
    assert!(va.len() == vb.len());
    for i in 0..va.len() {
        assert_eq!(va[i], vb[i]);
    }
}

fn assert_sparse_mat_compare(
    ma: &[Vec<(u16, I32F32)>],
    mb: &[Vec<(u16, I32F32)>],
    epsilon: I32F32,
) {
    assert!(ma.len() == mb.len());
    for row in 0..ma.len() {
        assert!(
            ma[row].len() == mb[row].len(),
            "row: {}, ma: {:?}, mb: {:?}",
            row,
            ma[row],
            mb[row]
        );
        for j in 0..ma[row].len() {
            assert!(ma[row][j].0 == mb[row][j].0); // u16
            assert_float_compare(ma[row][j].1, mb[row][j].1, epsilon) // I32F32
        }
    }
}

pub fn vec_to_mat_fixed(vector: &[f32], rows: usize, transpose: bool) -> Vec<Vec<I32F32>> {
    assert!(
        vector.len() % rows == 0,
        "Vector of len {:?} cannot reshape to {rows} rows.",
        vector.len()
    );
    let cols: usize = vector.len() / rows;
    let mut mat: Vec<Vec<I32F32>> = vec![];
    if transpose {
        for col in 0..cols {
            let mut vals: Vec<I32F32> = vec![];
            for row in 0..rows {
                vals.push(I32F32::from_num(vector[row * cols + col]));
            }
            mat.push(vals);
        }
    } else {
        for row in 0..rows {
            mat.push(
                vector[row * cols..(row + 1) * cols]
                    .iter()
                    .map(|v| I32F32::from_num(*v))
                    .collect(),
            );
        }
    }
    mat
}

fn vec_to_sparse_mat_fixed(
    vector: &[f32],
    rows: usize,
    transpose: bool,
) -> Vec<Vec<(u16, I32F32)>> {
    assert!(
        vector.len() % rows == 0,
        "Vector of len {:?} cannot reshape to {rows} rows.",
        vector.len()
    );
    let cols: usize = vector.len() / rows;
    let mut mat: Vec<Vec<(u16, I32F32)>> = vec![];
    if transpose {
        for col in 0..cols {
            let mut row_vec: Vec<(u16, I32F32)> = vec![];
            for row in 0..rows {
                if vector[row * cols + col] > 0. {
                    row_vec.push((row as u16, I32F32::from_num(vector[row * cols + col])));
                }
            }
            mat.push(row_vec);
        }
    } else {
        for row in 0..rows {
            let mut row_vec: Vec<(u16, I32F32)> = vec![];
            for col in 0..cols {
                if vector[row * cols + col] > 0. {
                    row_vec.push((col as u16, I32F32::from_num(vector[row * cols + col])));
                }
            }
            mat.push(row_vec);
        }
    }
    mat
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_vec_max_upscale_to_u16`.
#[test]
fn test_vec_max_upscale_to_u16() {
    let vector: Vec<I32F32> = vec_to_fixed(&[]);
    let target: Vec<u16> = vec![];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[0.]);
    let target: Vec<u16> = vec![0];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[0., 0.]);
    let target: Vec<u16> = vec![0, 0];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[0., 1.]);
    let target: Vec<u16> = vec![0, 65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[0., 0.000000001]);
    let target: Vec<u16> = vec![0, 65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[0., 0.000016, 1.]);
    let target: Vec<u16> = vec![0, 1, 65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[0.000000001, 0.000000001]);
    let target: Vec<u16> = vec![65535, 65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[
        0.000001, 0.000006, 0.000007, 0.0001, 0.001, 0.01, 0.1, 0.2, 0.3, 0.4,
    ]);
    let target: Vec<u16> = vec![0, 1, 1, 16, 164, 1638, 16384, 32768, 49151, 65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec![I32F32::from_num(16384)];
    let target: Vec<u16> = vec![65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec![I32F32::from_num(32768)];
    let target: Vec<u16> = vec![65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec![I32F32::from_num(32769)];
    let target: Vec<u16> = vec![65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec![I32F32::from_num(65535)];
    let target: Vec<u16> = vec![65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec![I32F32::max_value()];
    let target: Vec<u16> = vec![65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[0., 1., 65535.]);
    let target: Vec<u16> = vec![0, 1, 65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[0., 0.5, 1., 1.5, 2., 32768.]);
    let target: Vec<u16> = vec![0, 1, 2, 3, 4, 65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[0., 0.5, 1., 1.5, 2., 32768., 32769.]);
    let target: Vec<u16> = vec![0, 1, 2, 3, 4, 65533, 65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<I32F32> = vec![
        I32F32::from_num(0),
        I32F32::from_num(1),
        I32F32::from_num(32768),
        I32F32::from_num(32769),
        I32F32::max_value(),
    ];
    let target: Vec<u16> = vec![0, 0, 1, 1, 65535];
    let result: Vec<u16> = vec_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_vec_u16_max_upscale_to_u16`.
#[test]
fn test_vec_u16_max_upscale_to_u16() {
    let vector: Vec<u16> = vec![];
    let result: Vec<u16> = vec_u16_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &vector);
    let vector: Vec<u16> = vec![0];
    let result: Vec<u16> = vec_u16_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &vector);
    let vector: Vec<u16> = vec![0, 0];
    let result: Vec<u16> = vec_u16_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &vector);
    let vector: Vec<u16> = vec![1];
    let target: Vec<u16> = vec![65535];
    let result: Vec<u16> = vec_u16_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<u16> = vec![0, 1];
    let target: Vec<u16> = vec![0, 65535];
    let result: Vec<u16> = vec_u16_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<u16> = vec![65534];
    let target: Vec<u16> = vec![65535];
    let result: Vec<u16> = vec_u16_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<u16> = vec![65535];
    let target: Vec<u16> = vec![65535];
    let result: Vec<u16> = vec_u16_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<u16> = vec![65535, 65535];
    let target: Vec<u16> = vec![65535, 65535];
    let result: Vec<u16> = vec_u16_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<u16> = vec![0, 1, 65534];
    let target: Vec<u16> = vec![0, 1, 65535];
    let result: Vec<u16> = vec_u16_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &target);
    let vector: Vec<u16> = vec![0, 1, 2, 3, 4, 65533, 65535];
    let result: Vec<u16> = vec_u16_max_upscale_to_u16(&vector);
    assert_vec_compare_u16(&result, &vector);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_exp_safe`.
#[test]
fn test_math_exp_safe() {
    let zero: I32F32 = I32F32::from_num(0);
    let one: I32F32 = I32F32::from_num(1);
    let target: I32F32 = exp(zero).unwrap();
    assert_eq!(exp_safe(zero), target);
    let target: I32F32 = exp(one).unwrap();
    assert_eq!(exp_safe(one), target);
    let min_input: I32F32 = I32F32::from_num(-20); // <= 1/exp(-20) = 485 165 195,4097903
    let max_input: I32F32 = I32F32::from_num(20); // <= exp(20) = 485 165 195,4097903
    let target: I32F32 = exp(min_input).unwrap();
    assert_eq!(exp_safe(min_input), target);
    assert_eq!(exp_safe(min_input - one), target);
    assert_eq!(exp_safe(I32F32::min_value()), target);
    let target: I32F32 = exp(max_input).unwrap();
    assert_eq!(exp_safe(max_input), target);
    assert_eq!(exp_safe(max_input + one), target);
    assert_eq!(exp_safe(I32F32::max_value()), target);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_sigmoid_safe`.
#[test]
fn test_math_sigmoid_safe() {
    let trust: Vec<I32F32> = vec![
        I32F32::min_value(),
        I32F32::from_num(0),
        I32F32::from_num(0.4),
        I32F32::from_num(0.5),
        I32F32::from_num(0.6),
        I32F32::from_num(1),
        I32F32::max_value(),
    ];
    let consensus: Vec<I32F32> = trust
        .iter()
        .map(|t: &I32F32| sigmoid_safe(*t, I32F32::max_value(), I32F32::max_value()))
        .collect();
    let target: Vec<I32F32> = vec_to_fixed(&[
        0.0000000019,
        0.0000000019,
        0.0000000019,
        0.0000000019,
        0.0000000019,
        0.0000000019,
        0.5,
    ]);
    assert_eq!(&consensus, &target);
    let consensus: Vec<I32F32> = trust
        .iter()
        .map(|t: &I32F32| sigmoid_safe(*t, I32F32::min_value(), I32F32::min_value()))
        .collect();
    let target: Vec<I32F32> = vec_to_fixed(&[
        0.5,
        0.0000000019,
        0.0000000019,
        0.0000000019,
        0.0000000019,
        0.0000000019,
        0.0000000019,
    ]);
    assert_eq!(&consensus, &target);
    let consensus: Vec<I32F32> = trust
        .iter()
        .map(|t: &I32F32| sigmoid_safe(*t, I32F32::from_num(30), I32F32::from_num(0.5)))
        .collect();
    let target: Vec<f64> = vec![
        0.0000000019,
        0.0000003057,
        0.0474258729,
        0.5,
        0.952574127,
        0.9999996943,
        0.9999999981,
    ];
    let target: Vec<I32F32> = target.iter().map(|c: &f64| I32F32::from_num(*c)).collect();
    assert_eq!(&consensus, &target);
    let trust: Vec<I32F32> = vec_to_fixed(&[0., 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.]);
    let consensus: Vec<I32F32> = trust
        .iter()
        .map(|t: &I32F32| sigmoid_safe(*t, I32F32::from_num(40), I32F32::from_num(0.5)))
        .collect();
    let target: Vec<f64> = vec![
        0.0000000019,
        0.0000001125,
        0.0000061442,
        0.0003353502,
        0.017986214,
        0.5,
        0.9820138067,
        0.9996646498,
        0.9999938558,
        0.9999998875,
        0.9999999981,
    ];
    let target: Vec<I32F32> = target.iter().map(|c: &f64| I32F32::from_num(*c)).collect();
    assert_eq!(&consensus, &target);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_is_topk`.
#[test]
fn test_math_is_topk() {
    let vector: Vec<I32F32> = vec_to_fixed(&[]);
    let result = is_topk(&vector, 5);
    let target: Vec<bool> = vec![];
    assert_eq!(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[0., 1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    let result = is_topk(&vector, 0);
    let target: Vec<bool> = vec![
        false, false, false, false, false, false, false, false, false, false,
    ];
    assert_eq!(&result, &target);
    let result = is_topk(&vector, 5);
    let target: Vec<bool> = vec![
        false, false, false, false, false, true, true, true, true, true,
    ];
    assert_eq!(&result, &target);
    let result = is_topk(&vector, 10);
    let target: Vec<bool> = vec![true, true, true, true, true, true, true, true, true, true];
    assert_eq!(&result, &target);
    let result = is_topk(&vector, 100);
    assert_eq!(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[9., 8., 7., 6., 5., 4., 3., 2., 1., 0.]);
    let result = is_topk(&vector, 5);
    let target: Vec<bool> = vec![
        true, true, true, true, true, false, false, false, false, false,
    ];
    assert_eq!(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[9., 0., 8., 1., 7., 2., 6., 3., 5., 4.]);
    let result = is_topk(&vector, 5);
    let target: Vec<bool> = vec![
        true, false, true, false, true, false, true, false, true, false,
    ];
    assert_eq!(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[0.9, 0., 0.8, 0.1, 0.7, 0.2, 0.6, 0.3, 0.5, 0.4]);
    let result = is_topk(&vector, 5);
    let target: Vec<bool> = vec![
        true, false, true, false, true, false, true, false, true, false,
    ];
    assert_eq!(&result, &target);
    let vector: Vec<I32F32> = vec_to_fixed(&[0., 1., 2., 3., 4., 5., 5., 5., 5., 6.]);
    let result = is_topk(&vector, 5);
    let target: Vec<bool> = vec![
        false, false, false, false, false, true, true, true, true, true,
    ];
    assert_eq!(&result, &target);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_sum`.
#[test]
fn test_math_sum() {
    assert!(sum(&[]) == I32F32::from_num(0));
    assert!(
        sum(&[
            I32F32::from_num(1.0),
            I32F32::from_num(10.0),
            I32F32::from_num(30.0)
        ]) == I32F32::from_num(41)
    );
    assert!(
        sum(&[
            I32F32::from_num(-1.0),
            I32F32::from_num(10.0),
            I32F32::from_num(30.0)
        ]) == I32F32::from_num(39)
    );
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_normalize`.
#[test]
fn test_math_normalize() {
    let epsilon: I32F32 = I32F32::from_num(0.0001);
    let x: Vec<I32F32> = vec![];
    let y: Vec<I32F32> = normalize(&x);
    assert_vec_compare(&x, &y, epsilon);
    let x: Vec<I32F32> = vec![
        I32F32::from_num(1.0),
        I32F32::from_num(10.0),
        I32F32::from_num(30.0),
    ];
    let y: Vec<I32F32> = normalize(&x);
    assert_vec_compare(
        &y,
        &[
            I32F32::from_num(0.0243902437),
            I32F32::from_num(0.243902439),
            I32F32::from_num(0.7317073171),
        ],
        epsilon,
    );
    assert_float_compare(sum(&y), I32F32::from_num(1.0), epsilon);
    let x: Vec<I32F32> = vec![
        I32F32::from_num(-1.0),
        I32F32::from_num(10.0),
        I32F32::from_num(30.0),
    ];
    let y: Vec<I32F32> = normalize(&x);
    assert_vec_compare(
        &y,
        &[
            I32F32::from_num(-0.0256410255),
            I32F32::from_num(0.2564102563),
            I32F32::from_num(0.769230769),
        ],
        epsilon,
    );
    assert_float_compare(sum(&y), I32F32::from_num(1.0), epsilon);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_inplace_normalize`.
#[test]
fn test_math_inplace_normalize() {
    let epsilon: I32F32 = I32F32::from_num(0.0001);
    let mut x1: Vec<I32F32> = vec![
        I32F32::from_num(1.0),
        I32F32::from_num(10.0),
        I32F32::from_num(30.0),
    ];
    inplace_normalize(&mut x1);
    assert_vec_compare(
        &x1,
        &[
            I32F32::from_num(0.0243902437),
            I32F32::from_num(0.243902439),
            I32F32::from_num(0.7317073171),
        ],
        epsilon,
    );
    let mut x2: Vec<I32F32> = vec![
        I32F32::from_num(-1.0),
        I32F32::from_num(10.0),
        I32F32::from_num(30.0),
    ];
    inplace_normalize(&mut x2);
    assert_vec_compare(
        &x2,
        &[
            I32F32::from_num(-0.0256410255),
            I32F32::from_num(0.2564102563),
            I32F32::from_num(0.769230769),
        ],
        epsilon,
    );
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_inplace_normalize_64`.
#[test]
fn test_math_inplace_normalize_64() {
    let epsilon: I64F64 = I64F64::from_num(0.0001);
    let mut x1: Vec<I64F64> = vec![
        I64F64::from_num(1.0),
        I64F64::from_num(10.0),
        I64F64::from_num(30.0),
    ];
    inplace_normalize_64(&mut x1);
    assert_vec_compare_64(
        &x1,
        &[
            I64F64::from_num(0.0243902437),
            I64F64::from_num(0.243902439),
            I64F64::from_num(0.7317073171),
        ],
        epsilon,
    );
    let mut x2: Vec<I64F64> = vec![
        I64F64::from_num(-1.0),
        I64F64::from_num(10.0),
        I64F64::from_num(30.0),
    ];
    inplace_normalize_64(&mut x2);
    assert_vec_compare_64(
        &x2,
        &[
            I64F64::from_num(-0.0256410255),
            I64F64::from_num(0.2564102563),
            I64F64::from_num(0.769230769),
        ],
        epsilon,
    );
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_inplace_row_normalize_sparse`.
#[test]
fn test_math_inplace_row_normalize_sparse() {
    let epsilon: I32F32 = I32F32::from_num(0.0001);
    let vector: Vec<f32> = vec![
        0., 1., 0., 2., 0., 3., 4., 0., 1., 0., 2., 0., 3., 0., 1., 0., 0., 2., 0., 3., 4., 0.,
        10., 0., 100., 1000., 0., 10000., 0., 0., 0., 0., 0., 0., 0., 1., 1., 1., 1., 1., 1., 1.,
    ];
    let mut mat = vec_to_sparse_mat_fixed(&vector, 6, false);
    inplace_row_normalize_sparse(&mut mat);
    let target: Vec<f32> = vec![
        0., 0.1, 0., 0.2, 0., 0.3, 0.4, 0., 0.166666, 0., 0.333333, 0., 0.5, 0., 0.1, 0., 0., 0.2,
        0., 0.3, 0.4, 0., 0.0009, 0., 0.009, 0.09, 0., 0.9, 0., 0., 0., 0., 0., 0., 0., 0.142857,
        0.142857, 0.142857, 0.142857, 0.142857, 0.142857, 0.142857,
    ];
    assert_sparse_mat_compare(&mat, &vec_to_sparse_mat_fixed(&target, 6, false), epsilon);
    let vector: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let mut mat = vec_to_sparse_mat_fixed(&vector, 3, false);
    inplace_row_normalize_sparse(&mut mat);
    assert_sparse_mat_compare(
        &mat,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_inplace_col_normalize_sparse`.
#[test]
fn test_math_inplace_col_normalize_sparse() {
    let epsilon: I32F32 = I32F32::from_num(0.0001);
    let vector: Vec<f32> = vec![
        0., 1., 0., 2., 0., 3., 4., 0., 1., 0., 2., 0., 3., 0., 1., 0., 0., 2., 0., 3., 4., 0.,
        10., 0., 100., 1000., 0., 10000., 0., 0., 0., 0., 0., 0., 0., 1., 1., 1., 1., 1., 1., 1.,
    ];
    let mut mat = vec_to_sparse_mat_fixed(&vector, 6, true);
    inplace_col_normalize_sparse(&mut mat, 6);
    let target: Vec<f32> = vec![
        0., 0.1, 0., 0.2, 0., 0.3, 0.4, 0., 0.166666, 0., 0.333333, 0., 0.5, 0., 0.1, 0., 0., 0.2,
        0., 0.3, 0.4, 0., 0.0009, 0., 0.009, 0.09, 0., 0.9, 0., 0., 0., 0., 0., 0., 0., 0.142857,
        0.142857, 0.142857, 0.142857, 0.142857, 0.142857, 0.142857,
    ];
    assert_sparse_mat_compare(&mat, &vec_to_sparse_mat_fixed(&target, 6, true), epsilon);
    let vector: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let mut mat = vec_to_sparse_mat_fixed(&vector, 3, false);
    inplace_col_normalize_sparse(&mut mat, 6);
    assert_sparse_mat_compare(
        &mat,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
    let mut mat: Vec<Vec<(u16, I32F32)>> = vec![];
    let target: Vec<Vec<(u16, I32F32)>> = vec![];
    inplace_col_normalize_sparse(&mut mat, 0);
    assert_sparse_mat_compare(&mat, &target, epsilon);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_inplace_col_max_upscale_sparse`.
#[test]
fn test_math_inplace_col_max_upscale_sparse() {
    let mut mat: Vec<Vec<(u16, I32F32)>> = vec![vec![]];
    let target: Vec<Vec<(u16, I32F32)>> = vec![vec![]];
    inplace_col_max_upscale_sparse(&mut mat, 0);
    assert_eq!(&mat, &target);
    let mut mat: Vec<Vec<(u16, I32F32)>> = vec![vec![(0, I32F32::from_num(0))]];
    let target: Vec<Vec<(u16, I32F32)>> = vec![vec![(0, I32F32::from_num(0))]];
    inplace_col_max_upscale_sparse(&mut mat, 1);
    assert_eq!(&mat, &target);
    let epsilon: I32F32 = I32F32::from_num(0.0001);
    let vector: Vec<f32> = vec![
        0., 1., 0., 2., 0., 3., 4., 0., 1., 0., 2., 0., 3., 0., 1., 0., 0., 2., 0., 3., 4., 0.,
        10., 0., 100., 1000., 0., 10000., 0., 0., 0., 0., 0., 0., 0., 1., 1., 1., 1., 1., 1., 1.,
    ];
    let mut mat = vec_to_sparse_mat_fixed(&vector, 6, true);
    inplace_col_max_upscale_sparse(&mut mat, 6);
    let target: Vec<f32> = vec![
        0., 0.25, 0., 0.5, 0., 0.75, 1., 0., 0.333333, 0., 0.666666, 0., 1., 0., 0.25, 0., 0., 0.5,
        0., 0.75, 1., 0., 0.001, 0., 0.01, 0.1, 0., 1., 0., 0., 0., 0., 0., 0., 0., 1., 1., 1., 1.,
        1., 1., 1.,
    ];
    assert_sparse_mat_compare(&mat, &vec_to_sparse_mat_fixed(&target, 6, true), epsilon);
    let vector: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let mut mat = vec_to_sparse_mat_fixed(&vector, 3, false);
    inplace_col_max_upscale_sparse(&mut mat, 6);
    assert_sparse_mat_compare(
        &mat,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
    let mut mat: Vec<Vec<(u16, I32F32)>> = vec![];
    let target: Vec<Vec<(u16, I32F32)>> = vec![];
    inplace_col_max_upscale_sparse(&mut mat, 0);
    assert_sparse_mat_compare(&mat, &target, epsilon);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_inplace_mask_vector`.
#[test]
fn test_math_inplace_mask_vector() {
    let mask: Vec<bool> = vec![false, false, false];
    let mut vector: Vec<I32F32> = vec_to_fixed(&[0., 1., 2.]);
    let target: Vec<I32F32> = vec_to_fixed(&[0., 1., 2.]);
    inplace_mask_vector(&mask, &mut vector);
    assert_vec_compare(&vector, &target, I32F32::from_num(0));
    let mask: Vec<bool> = vec![false, true, false];
    let mut vector: Vec<I32F32> = vec_to_fixed(&[0., 1., 2.]);
    let target: Vec<I32F32> = vec_to_fixed(&[0., 0., 2.]);
    inplace_mask_vector(&mask, &mut vector);
    assert_vec_compare(&vector, &target, I32F32::from_num(0));
    let mask: Vec<bool> = vec![true, true, true];
    let mut vector: Vec<I32F32> = vec_to_fixed(&[0., 1., 2.]);
    let target: Vec<I32F32> = vec_to_fixed(&[0., 0., 0.]);
    inplace_mask_vector(&mask, &mut vector);
    assert_vec_compare(&vector, &target, I32F32::from_num(0));
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_mask_rows_sparse`.
#[test]
fn test_math_mask_rows_sparse() {
    let input: Vec<f32> = vec![1., 2., 3., 4., 5., 6., 7., 8., 9.];
    let mat = vec_to_sparse_mat_fixed(&input, 3, false);
    let mask: Vec<bool> = vec![false, false, false];
    let target: Vec<f32> = vec![1., 2., 3., 4., 5., 6., 7., 8., 9.];
    let result = mask_rows_sparse(&mask, &mat);
    assert_sparse_mat_compare(
        &result,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
    let mask: Vec<bool> = vec![true, true, true];
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let result = mask_rows_sparse(&mask, &mat);
    assert_sparse_mat_compare(
        &result,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
    let mask: Vec<bool> = vec![true, false, true];
    let target: Vec<f32> = vec![0., 0., 0., 4., 5., 6., 0., 0., 0.];
    let result = mask_rows_sparse(&mask, &mat);
    assert_sparse_mat_compare(
        &result,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
    let input: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let mat = vec_to_sparse_mat_fixed(&input, 3, false);
    let mask: Vec<bool> = vec![false, false, false];
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let result = mask_rows_sparse(&mask, &mat);
    assert_sparse_mat_compare(
        &result,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_mask_diag_sparse`.
#[test]
fn test_math_mask_diag_sparse() {
    let vector: Vec<f32> = vec![1., 2., 3., 4., 5., 6., 7., 8., 9.];
    let target: Vec<f32> = vec![0., 2., 3., 4., 0., 6., 7., 8., 0.];
    let mat = vec_to_sparse_mat_fixed(&vector, 3, false);
    let result = mask_diag_sparse(&mat);
    assert_sparse_mat_compare(
        &result,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
    let vector: Vec<f32> = vec![1., 0., 0., 0., 5., 0., 0., 0., 9.];
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let mat = vec_to_sparse_mat_fixed(&vector, 3, false);
    let result = mask_diag_sparse(&mat);
    assert_sparse_mat_compare(
        &result,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
    let vector: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let mat = vec_to_sparse_mat_fixed(&vector, 3, false);
    let result = mask_diag_sparse(&mat);
    assert_sparse_mat_compare(
        &result,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_mask_diag_sparse_except_index`.
#[test]
fn test_math_mask_diag_sparse_except_index() {
    let rows = 3;

    let vector: Vec<f32> = vec![1., 2., 3., 4., 5., 6., 7., 8., 9.];
    let mat = vec_to_sparse_mat_fixed(&vector, rows, false);

    for i in 0..rows {
        let mut target: Vec<f32> = vec![0., 2., 3., 4., 0., 6., 7., 8., 0.];
        let row = i * rows;
        let col = i;
        target[row + col] = vector[row + col];

        let result = mask_diag_sparse_except_index(&mat, i as u16);
        let target_as_mat = vec_to_sparse_mat_fixed(&target, rows, false);

        assert_sparse_mat_compare(&result, &target_as_mat, I32F32::from_num(0));
    }

    let vector: Vec<f32> = vec![1., 0., 0., 0., 5., 0., 0., 0., 9.];
    let mat = vec_to_sparse_mat_fixed(&vector, rows, false);

    for i in 0..rows {
        let mut target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0.];
        let row = i * rows;
        let col = i;
        target[row + col] = vector[row + col];

        let result = mask_diag_sparse_except_index(&mat, i as u16);
        let target_as_mat = vec_to_sparse_mat_fixed(&target, rows, false);
        assert_eq!(result.len(), target_as_mat.len());

        assert_sparse_mat_compare(&result, &target_as_mat, I32F32::from_num(0));
    }

    for i in 0..rows {
        let vector: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0.];
        let mat = vec_to_sparse_mat_fixed(&vector, rows, false);

        let mut target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0.];
        let row = i * rows;
        let col = i;
        target[row + col] = vector[row + col];

        let result = mask_diag_sparse_except_index(&mat, i as u16);
        let target_as_mat = vec_to_sparse_mat_fixed(&target, rows, false);
        assert_eq!(result.len(), target_as_mat.len());

        assert_sparse_mat_compare(&result, &target_as_mat, I32F32::from_num(0));
    }
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_vec_mask_sparse_matrix`.
#[test]
fn test_math_vec_mask_sparse_matrix() {
    let vector: Vec<f32> = vec![1., 2., 3., 4., 5., 6., 7., 8., 9.];
    let target: Vec<f32> = vec![0., 2., 3., 4., 0., 6., 7., 8., 0.];
    let mat = vec_to_sparse_mat_fixed(&vector, 3, false);
    let first_vector: Vec<u64> = vec![1, 2, 3];
    let second_vector: Vec<u64> = vec![1, 2, 3];
    let result = vec_mask_sparse_matrix(&mat, &first_vector, &second_vector, &|a, b| a == b);
    assert_sparse_mat_compare(
        &result,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
    let target: Vec<f32> = vec![1., 0., 0., 4., 5., 0., 7., 8., 9.];
    let mat = vec_to_sparse_mat_fixed(&vector, 3, false);
    let first_vector: Vec<u64> = vec![1, 2, 3];
    let second_vector: Vec<u64> = vec![1, 2, 3];
    let result = vec_mask_sparse_matrix(&mat, &first_vector, &second_vector, &|a, b| a < b);
    assert_sparse_mat_compare(
        &result,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
    let vector: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let mat = vec_to_sparse_mat_fixed(&vector, 3, false);
    let first_vector: Vec<u64> = vec![1, 2, 3];
    let second_vector: Vec<u64> = vec![1, 2, 3];
    let result = vec_mask_sparse_matrix(&mat, &first_vector, &second_vector, &|a, b| a == b);
    assert_sparse_mat_compare(
        &result,
        &vec_to_sparse_mat_fixed(&target, 3, false),
        I32F32::from_num(0),
    );
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_vec_mul`.
#[test]
fn test_math_vec_mul() {
    let vector: Vec<I32F32> = vec_to_fixed(&[1., 2., 3., 4.]);
    let target: Vec<I32F32> = vec_to_fixed(&[1., 4., 9., 16.]);
    let result = vec_mul(&vector, &vector);
    assert_vec_compare(&result, &target, I32F32::from_num(0));
    let vector_empty: Vec<I32F32> = vec_to_fixed(&[]);
    let result = vec_mul(&vector_empty, &vector);
    let target: Vec<I32F32> = vec![];
    assert_vec_compare(&result, &target, I32F32::from_num(0));
    let vector_zero: Vec<I32F32> = vec_to_fixed(&[0., 0., 0., 0., 0., 0., 0., 0.]);
    let result = vec_mul(&vector_zero, &vector);
    let target: Vec<I32F32> = vec![I32F32::from_num(0); 4];
    assert_vec_compare(&result, &target, I32F32::from_num(0));
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_mat_vec_mul_sparse`.
#[test]
fn test_math_mat_vec_mul_sparse() {
    let matrix: Vec<f32> = vec![1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let vector: Vec<I32F32> = vec_to_fixed(&[1., 2., 3.]);
    let target: Vec<f32> = vec![1., 4., 9., 4., 10., 18., 7., 16., 27., 10., 22., 36.];
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let result = mat_vec_mul_sparse(&matrix, &vector);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));
    let vector_one: Vec<I32F32> = vec_to_fixed(&[1., 0., 0.]);
    let target: Vec<f32> = vec![1., 0., 0., 4., 0., 0., 7., 0., 0., 10., 0., 0.];
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let result = mat_vec_mul_sparse(&matrix, &vector_one);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));
    let vector_empty: Vec<I32F32> = vec_to_fixed(&[]);
    let result = mat_vec_mul_sparse(&matrix, &vector_empty);
    let target = vec![vec![]; 4];
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_row_hadamard_sparse`.
#[test]
fn test_math_row_hadamard_sparse() {
    let vector: Vec<I32F32> = vec_to_fixed(&[1., 2., 3., 4.]);
    let matrix: Vec<f32> = vec![1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = row_hadamard_sparse(&matrix, &vector);
    let target: Vec<f32> = vec![1., 2., 3., 8., 10., 12., 21., 24., 27., 40., 44., 48.];
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));
    let matrix: Vec<f32> = vec![0., 2., 3., 4., 0., 6., 7., 8., 0., 10., 11., 12.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = row_hadamard_sparse(&matrix, &vector);
    let target: Vec<f32> = vec![0., 2., 3., 8., 0., 12., 21., 24., 0., 40., 44., 48.];
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));
    let matrix: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = row_hadamard_sparse(&matrix, &vector);
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_row_sum_sparse`.
#[test]
fn test_math_row_sum_sparse() {
    let matrix: Vec<f32> = vec![1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = row_sum_sparse(&matrix);
    let target: Vec<I32F32> = vec_to_fixed(&[6., 15., 24., 33.]);
    assert_vec_compare(&result, &target, I32F32::from_num(0));
    let matrix: Vec<f32> = vec![0., 2., 3., 4., 0., 6., 7., 8., 0., 10., 11., 12.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = row_sum_sparse(&matrix);
    let target: Vec<I32F32> = vec_to_fixed(&[5., 10., 15., 33.]);
    assert_vec_compare(&result, &target, I32F32::from_num(0));
    let matrix: Vec<f32> = vec![1., 2., 3., 0., 0., 0., 7., 8., 9., 10., 11., 12.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = row_sum_sparse(&matrix);
    let target: Vec<I32F32> = vec_to_fixed(&[6., 0., 24., 33.]);
    assert_vec_compare(&result, &target, I32F32::from_num(0));
    let matrix: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = row_sum_sparse(&matrix);
    let target: Vec<I32F32> = vec_to_fixed(&[0., 0., 0., 0.]);
    assert_vec_compare(&result, &target, I32F32::from_num(0));
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_sparse_matmul`.
#[test]
fn test_math_sparse_matmul() {
    let vector: Vec<I32F32> = vec_to_fixed(&[1., 2., 3., 4.]);
    let matrix: Vec<f32> = vec![1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = matmul_sparse(&matrix, &vector, 3);
    let target: Vec<I32F32> = vec_to_fixed(&[70., 80., 90.]);
    assert_vec_compare(&result, &target, I32F32::from_num(0));
    let matrix: Vec<f32> = vec![0., 2., 3., 4., 0., 6., 7., 8., 0., 10., 11., 12.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = matmul_sparse(&matrix, &vector, 3);
    let target: Vec<I32F32> = vec_to_fixed(&[69., 70., 63.]);
    assert_vec_compare(&result, &target, I32F32::from_num(0));
    let matrix: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = matmul_sparse(&matrix, &vector, 3);
    let target: Vec<I32F32> = vec_to_fixed(&[0., 0., 0.]);
    assert_vec_compare(&result, &target, I32F32::from_num(0));
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_sparse_matmul_transpose`.
#[test]
fn test_math_sparse_matmul_transpose() {
    let vector: Vec<I32F32> = vec_to_fixed(&[1., 2., 3.]);
    let matrix: Vec<f32> = vec![1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = matmul_transpose_sparse(&matrix, &vector);
    let target: Vec<I32F32> = vec_to_fixed(&[14., 32., 50., 68.]);
    assert_vec_compare(&result, &target, I32F32::from_num(0));
    let matrix: Vec<f32> = vec![0., 2., 3., 4., 0., 6., 7., 8., 0., 10., 11., 12.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = matmul_transpose_sparse(&matrix, &vector);
    let target: Vec<I32F32> = vec_to_fixed(&[13., 22., 23., 68.]);
    assert_vec_compare(&result, &target, I32F32::from_num(0));
    let matrix: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let result = matmul_transpose_sparse(&matrix, &vector);
    let target: Vec<I32F32> = vec_to_fixed(&[0., 0., 0., 0.]);
    assert_vec_compare(&result, &target, I32F32::from_num(0));
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_col_clip_sparse`.
#[test]
fn test_math_col_clip_sparse() {
    let vector: Vec<I32F32> = vec_to_fixed(&[0., 5., 12.]);
    let matrix: Vec<f32> = vec![0., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let target: Vec<f32> = vec![0., 2., 3., 0., 5., 6., 0., 5., 9., 0., 5., 12.];
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let result = col_clip_sparse(&matrix, &vector);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));
    let matrix: Vec<f32> = vec![0., 2., 3., 4., 5., 6., 0., 0., 0., 10., 11., 12.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let target: Vec<f32> = vec![0., 2., 3., 0., 5., 6., 0., 0., 0., 0., 5., 12.];
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let result = col_clip_sparse(&matrix, &vector);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));
    let matrix: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let matrix = vec_to_sparse_mat_fixed(&matrix, 4, false);
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let result = col_clip_sparse(&matrix, &vector);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_weighted_median`.
#[test]
fn test_math_weighted_median() {
    let mut rng = rand::rng();
    let zero: I32F32 = fixed(0.);
    let one: I32F32 = fixed(1.);
    for _ in 0..100 {
        let stake: Vec<I32F32> = vec_to_fixed(&[]);
        let score: Vec<I32F32> = vec_to_fixed(&[]);
        let majority: I32F32 = fixed(0.51);
        assert_eq!(
            zero,
            weighted_median(
                &stake,
                &score,
                (0..stake.len()).collect::<Vec<_>>().as_slice(),
                one - majority,
                zero,
                stake.iter().sum()
            )
        );

        let stake: Vec<I32F32> = normalize(&vec_to_fixed(&[0.51]));
        let score: Vec<I32F32> = vec_to_fixed(&[1.]);
        let majority: I32F32 = fixed(0.51);
        assert_eq!(
            one,
            weighted_median(
                &stake,
                &score,
                (0..stake.len()).collect::<Vec<_>>().as_slice(),
                one - majority,
                zero,
                stake.iter().sum()
            )
        );

        let stake: Vec<I32F32> = vec_to_fixed(&[0.49, 0.51]);
        let score: Vec<I32F32> = vec_to_fixed(&[0.5, 1.]);
        let majority: I32F32 = fixed(0.51);
        assert_eq!(
            one,
            weighted_median(
                &stake,
                &score,
                (0..stake.len()).collect::<Vec<_>>().as_slice(),
                one - majority,
                zero,
                stake.iter().sum()
            )
        );

        let stake: Vec<I32F32> = vec_to_fixed(&[0.51, 0.49]);
        let score: Vec<I32F32> = vec_to_fixed(&[0.5, 1.]);
        let majority: I32F32 = fixed(0.51);
        assert_eq!(
            fixed(0.5),
            weighted_median(
                &stake,
                &score,
                (0..stake.len()).collect::<Vec<_>>().as_slice(),
                one - majority,
                zero,
                stake.iter().sum()
            )
        );

        let stake: Vec<I32F32> = vec_to_fixed(&[0.49, 0., 0.51]);
        let score: Vec<I32F32> = vec_to_fixed(&[0.5, 0.7, 1.]);
        let majority: I32F32 = fixed(0.51);
        assert_eq!(
            one,
            weighted_median(
                &stake,
                &score,
                (0..stake.len()).collect::<Vec<_>>().as_slice(),
                one - majority,
                zero,
                stake.iter().sum()
            )
        );

        let stake: Vec<I32F32> = vec_to_fixed(&[0.49, 0.01, 0.5]);
        let score: Vec<I32F32> = vec_to_fixed(&[0.5, 0.7, 1.]);
        let majority: I32F32 = fixed(0.51);
        assert_eq!(
            fixed(0.7),
            weighted_median(
                &stake,
                &score,
                (0..stake.len()).collect::<Vec<_>>().as_slice(),
                one - majority,
                zero,
                stake.iter().sum()
            )
        );

        let stake: Vec<I32F32> = vec_to_fixed(&[0.49, 0.51, 0.0]);
        let score: Vec<I32F32> = vec_to_fixed(&[0.5, 0.7, 1.]);
        let majority: I32F32 = fixed(0.51);
        assert_eq!(
            fixed(0.7),
            weighted_median(
                &stake,
                &score,
                (0..stake.len()).collect::<Vec<_>>().as_slice(),
                one - majority,
                zero,
                stake.iter().sum()
            )
        );

        let stake: Vec<I32F32> = vec_to_fixed(&[0.0, 0.49, 0.51]);
        let score: Vec<I32F32> = vec_to_fixed(&[0.5, 0.7, 1.]);
        let majority: I32F32 = fixed(0.51);
        assert_eq!(
            one,
            weighted_median(
                &stake,
                &score,
                (0..stake.len()).collect::<Vec<_>>().as_slice(),
                one - majority,
                zero,
                stake.iter().sum()
            )
        );

        let stake: Vec<I32F32> = vec_to_fixed(&[0.0, 0.49, 0.0, 0.51]);
        let score: Vec<I32F32> = vec_to_fixed(&[0.5, 0.5, 1., 1.]);
        let majority: I32F32 = fixed(0.51);
        assert_eq!(
            one,
            weighted_median(
                &stake,
                &score,
                (0..stake.len()).collect::<Vec<_>>().as_slice(),
                one - majority,
                zero,
                stake.iter().sum()
            )
        );

        let stake: Vec<I32F32> = vec_to_fixed(&[0.0, 0.49, 0.0, 0.51, 0.0]);
        let score: Vec<I32F32> = vec_to_fixed(&[0.5, 0.5, 1., 1., 0.5]);
        let majority: I32F32 = fixed(0.51);
        assert_eq!(
            one,
            weighted_median(
                &stake,
                &score,
                (0..stake.len()).collect::<Vec<_>>().as_slice(),
                one - majority,
                zero,
                stake.iter().sum()
            )
        );

        let stake: Vec<I32F32> = vec_to_fixed(&[0.2, 0.2, 0.2, 0.2, 0.2]);
        let score: Vec<I32F32> = vec_to_fixed(&[0.8, 0.2, 1., 0.6, 0.4]);
        let majority: I32F32 = fixed(0.51);
        assert_eq!(
            fixed(0.6),
            weighted_median(
                &stake,
                &score,
                (0..stake.len()).collect::<Vec<_>>().as_slice(),
                one - majority,
                zero,
                stake.iter().sum()
            )
        );

        let stake: Vec<I32F32> = vec_to_fixed(&[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]);
        let score: Vec<I32F32> = vec_to_fixed(&[0.8, 0.8, 0.2, 0.2, 1.0, 1.0, 0.6, 0.6, 0.4, 0.4]);
        let majority: I32F32 = fixed(0.51);
        assert_eq!(
            fixed(0.6),
            weighted_median(
                &stake,
                &score,
                (0..stake.len()).collect::<Vec<_>>().as_slice(),
                one - majority,
                zero,
                stake.iter().sum()
            )
        );

        let n: usize = 100;
        for majority in vec_to_fixed(&[
            0., 0.0000001, 0.25, 0.49, 0.49, 0.49, 0.5, 0.51, 0.51, 0.51, 0.9999999, 1.,
        ]) {
            for allow_equal in [false, true] {
                let mut stake: Vec<I32F32> = vec![];
                let mut score: Vec<I32F32> = vec![];
                let mut last_score: I32F32 = zero;
                for i in 0..n {
                    if allow_equal {
                        match rng.random_range(0..2) {
                            1 => stake.push(one),
                            _ => stake.push(zero),
                        }
                        if rng.random_range(0..2) == 1 {
                            last_score += one
                        }
                        score.push(last_score);
                    } else {
                        stake.push(one);
                        score.push(I32F32::from_num(i));
                    }
                }
                inplace_normalize(&mut stake);
                let total_stake: I32F32 = stake.iter().sum();
                let mut minority: I32F32 = total_stake - majority;
                if minority < zero {
                    minority = zero;
                }
                let mut medians: Vec<I32F32> = vec![];
                let mut median_stake: I32F32 = zero;
                let mut median_set = false;
                let mut stake_sum: I32F32 = zero;
                for i in 0..n {
                    stake_sum += stake[i];
                    if !median_set && stake_sum >= minority {
                        median_stake = stake_sum;
                        median_set = true;
                    }
                    if median_set {
                        if median_stake < stake_sum {
                            if median_stake == minority && !medians.contains(&score[i]) {
                                medians.push(score[i]);
                            }
                            break;
                        }
                        if !medians.contains(&score[i]) {
                            medians.push(score[i]);
                        }
                    }
                }
                if medians.is_empty() {
                    medians.push(zero);
                }
                let stake_idx: Vec<usize> = (0..stake.len()).collect();
                let result: I32F32 =
                    weighted_median(&stake, &score, &stake_idx, minority, zero, total_stake);
                assert!(medians.contains(&result));
                for _ in 0..10 {
                    let mut permuted_uids: Vec<usize> = (0..n).collect();
                    permuted_uids.shuffle(&mut rng);
                    stake = permuted_uids.iter().map(|&i| stake[i]).collect();
                    score = permuted_uids.iter().map(|&i| score[i]).collect();
                    let result: I32F32 =
                        weighted_median(&stake, &score, &stake_idx, minority, zero, total_stake);
                    assert!(medians.contains(&result));
                }
            }
        }
    }
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_weighted_median_col_sparse`.
#[test]
fn test_math_weighted_median_col_sparse() {
    let stake: Vec<I32F32> = vec_to_fixed(&[]);
    let weights: Vec<Vec<(u16, I32F32)>> = vec![vec![]];
    let median: Vec<I32F32> = vec_to_fixed(&[]);
    assert_eq!(
        median,
        weighted_median_col_sparse(&stake, &weights, 0, fixed(0.5))
    );

    let stake: Vec<I32F32> = vec_to_fixed(&[0., 0.]);
    let weights: Vec<f32> = vec![0., 0., 0., 0.];
    let weights: Vec<Vec<(u16, I32F32)>> = vec_to_sparse_mat_fixed(&weights, 2, false);
    let median: Vec<I32F32> = vec_to_fixed(&[0., 0.]);
    assert_eq!(
        median,
        weighted_median_col_sparse(&stake, &weights, 2, fixed(0.5))
    );

    let stake: Vec<I32F32> = vec_to_fixed(&[0., 0.75, 0.25, 0.]);
    let weights: Vec<f32> = vec![0., 0.1, 0., 0., 0.2, 0.4, 0., 0.3, 0.1, 0., 0.4, 0.5];
    let weights: Vec<Vec<(u16, I32F32)>> = vec_to_sparse_mat_fixed(&weights, 4, false);
    let median: Vec<I32F32> = vec_to_fixed(&[0., 0.3, 0.4]);
    assert_eq!(
        median,
        weighted_median_col_sparse(&stake, &weights, 3, fixed(0.24))
    );
    let median: Vec<I32F32> = vec_to_fixed(&[0., 0.2, 0.4]);
    assert_eq!(
        median,
        weighted_median_col_sparse(&stake, &weights, 3, fixed(0.26))
    );
    let median: Vec<I32F32> = vec_to_fixed(&[0., 0.2, 0.1]);
    assert_eq!(
        median,
        weighted_median_col_sparse(&stake, &weights, 3, fixed(0.76))
    );

    let stake: Vec<I32F32> = vec_to_fixed(&[0., 0.3, 0.2, 0.5]);
    let weights: Vec<f32> = vec![0., 0.1, 0., 0., 0.2, 0.4, 0., 0.3, 0.1, 0., 0., 0.5];
    let weights: Vec<Vec<(u16, I32F32)>> = vec_to_sparse_mat_fixed(&weights, 4, false);
    let median: Vec<I32F32> = vec_to_fixed(&[0., 0., 0.4]);
    assert_eq!(
        median,
        weighted_median_col_sparse(&stake, &weights, 3, fixed(0.51))
    );
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_interpolate_sparse`.
#[test]
fn test_math_interpolate_sparse() {
    let mat1: Vec<Vec<(u16, I32F32)>> = vec![vec![]];
    let mat2: Vec<Vec<(u16, I32F32)>> = vec![vec![]];
    let target: Vec<Vec<(u16, I32F32)>> = vec![vec![]];
    let ratio = I32F32::from_num(0);
    let result = interpolate_sparse(&mat1, &mat2, 0, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));

    let mat1: Vec<f32> = vec![0.];
    let mat2: Vec<f32> = vec![1.];
    let target: Vec<f32> = vec![0.];
    let mat1 = vec_to_sparse_mat_fixed(&mat1, 1, false);
    let mat2 = vec_to_sparse_mat_fixed(&mat2, 1, false);
    let ratio = I32F32::from_num(0);
    let target = vec_to_sparse_mat_fixed(&target, 1, false);
    let result = interpolate_sparse(&mat1, &mat2, 1, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));

    let target: Vec<f32> = vec![0.5];
    let ratio = I32F32::from_num(0.5);
    let target = vec_to_sparse_mat_fixed(&target, 1, false);
    let result = interpolate_sparse(&mat1, &mat2, 1, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));

    let target: Vec<f32> = vec![1.];
    let ratio = I32F32::from_num(1);
    let target = vec_to_sparse_mat_fixed(&target, 1, false);
    let result = interpolate_sparse(&mat1, &mat2, 1, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));

    let mat1: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let mat2: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let mat1 = vec_to_sparse_mat_fixed(&mat1, 4, false);
    let mat2 = vec_to_sparse_mat_fixed(&mat2, 4, false);
    let ratio = I32F32::from_num(0);
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let result = interpolate_sparse(&mat1, &mat2, 3, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));

    let ratio = I32F32::from_num(1);
    let result = interpolate_sparse(&mat1, &mat2, 3, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));

    let mat1: Vec<f32> = vec![1., 0., 100., 1000., 10000., 100000.];
    let mat2: Vec<f32> = vec![10., 100., 1000., 10000., 100000., 0.];
    let target: Vec<f32> = vec![1., 0., 100., 1000., 10000., 100000.];
    let mat1 = vec_to_sparse_mat_fixed(&mat1, 3, false);
    let mat2 = vec_to_sparse_mat_fixed(&mat2, 3, false);
    let ratio = I32F32::from_num(0);
    let target = vec_to_sparse_mat_fixed(&target, 3, false);
    let result = interpolate_sparse(&mat1, &mat2, 2, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));

    let target: Vec<f32> = vec![9.1, 90., 910., 9100., 91000., 10000.];
    let ratio = I32F32::from_num(0.9);
    let target = vec_to_sparse_mat_fixed(&target, 3, false);
    let result = interpolate_sparse(&mat1, &mat2, 2, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0.0001));

    let mat1: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let mat2: Vec<f32> = vec![1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1.];
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let mat1 = vec_to_sparse_mat_fixed(&mat1, 4, false);
    let mat2 = vec_to_sparse_mat_fixed(&mat2, 4, false);
    let ratio = I32F32::from_num(0);
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let result = interpolate_sparse(&mat1, &mat2, 3, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));

    let target: Vec<f32> = vec![
        0.000000001,
        0.000000001,
        0.000000001,
        0.000000001,
        0.000000001,
        0.000000001,
        0.000000001,
        0.000000001,
        0.000000001,
        0.000000001,
        0.000000001,
        0.000000001,
    ];
    let ratio = I32F32::from_num(0.000000001);
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let result = interpolate_sparse(&mat1, &mat2, 3, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));

    let target: Vec<f32> = vec![0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
    let ratio = I32F32::from_num(0.5);
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let result = interpolate_sparse(&mat1, &mat2, 3, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));

    let target: Vec<f32> = vec![
        0.999_999_9,
        0.999_999_9,
        0.999_999_9,
        0.999_999_9,
        0.999_999_9,
        0.999_999_9,
        0.999_999_9,
        0.999_999_9,
        0.999_999_9,
        0.999_999_9,
        0.999_999_9,
        0.999_999_9,
    ];
    let ratio = I32F32::from_num(0.9999998808);
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let result = interpolate_sparse(&mat1, &mat2, 3, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));

    let target: Vec<f32> = vec![1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1.];
    let ratio = I32F32::from_num(1);
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let result = interpolate_sparse(&mat1, &mat2, 3, ratio);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(0));
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_sparse_mat_ema_alpha`.
#[test]
fn test_math_sparse_mat_ema_alpha() {
    let old: Vec<f32> = vec![
        0.1, 0.2, 3., 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12,
    ];
    let new: Vec<f32> = vec![1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12.];
    let target: Vec<f32> = vec![
        0.19, 0.38, 1., 0.43599, 0.545, 0.65399, 0.763, 0.87199, 0.981, 1., 1., 1.,
    ];
    let old = vec_to_sparse_mat_fixed(&old, 4, false);
    let new = vec_to_sparse_mat_fixed(&new, 4, false);
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let alphas = vec_to_mat_fixed(&[0.1; 12], 4, false);
    let result = mat_ema_alpha_sparse(&new, &old, &alphas);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(1e-4));
    let old: Vec<f32> = vec![
        0.001, 0.002, 0.003, 0.004, 0.05, 0.006, 0.007, 0.008, 0.009, 0.010, 0.011, 0.012,
    ];
    let new: Vec<f32> = vec![
        0.1, 0.2, 3., 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12,
    ];
    let target: Vec<f32> = vec![
        0.0109, 0.0218, 0.30270, 0.007599, 0.05, 0.01139, 0.0133, 0.01519, 0.017, 0.01899, 0.02089,
        0.0227,
    ];
    let old = vec_to_sparse_mat_fixed(&old, 4, false);
    let new = vec_to_sparse_mat_fixed(&new, 4, false);
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let alphas = vec_to_mat_fixed(&[0.1; 12], 4, false);
    let result = mat_ema_alpha_sparse(&new, &old, &alphas);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(1e-4));
    let old: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let new: Vec<f32> = vec![
        0.1, 0.2, 3., 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12,
    ];
    let target: Vec<f32> = vec![
        0.01, 0.02, 0.3, 0.00399, 0.005, 0.00599, 0.007, 0.00799, 0.009, 0.01, 0.011, 0.01199,
    ];
    let old = vec_to_sparse_mat_fixed(&old, 4, false);
    let new = vec_to_sparse_mat_fixed(&new, 4, false);
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let alphas = vec_to_mat_fixed(&[0.1; 12], 4, false);
    let result = mat_ema_alpha_sparse(&new, &old, &alphas);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(1e-4));
    let old: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let new: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let target: Vec<f32> = vec![0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let old = vec_to_sparse_mat_fixed(&old, 4, false);
    let new = vec_to_sparse_mat_fixed(&new, 4, false);
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let alphas = vec_to_mat_fixed(&[0.1; 12], 4, false);
    let result = mat_ema_alpha_sparse(&new, &old, &alphas);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(1e-4));
    let old: Vec<f32> = vec![1., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.];
    let new: Vec<f32> = vec![0., 0., 0., 0., 2., 0., 0., 0., 0., 0., 0., 0.];
    let target: Vec<f32> = vec![0.0, 0., 0., 0., 0.2, 0., 0., 0., 0., 0., 0., 0.];
    let old = vec_to_sparse_mat_fixed(&old, 4, false);
    let new = vec_to_sparse_mat_fixed(&new, 4, false);
    let target = vec_to_sparse_mat_fixed(&target, 4, false);
    let alphas = vec_to_mat_fixed(&[0.1; 12], 4, false);
    let result = mat_ema_alpha_sparse(&new, &old, &alphas);
    assert_sparse_mat_compare(&result, &target, I32F32::from_num(1e-1));
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_fixed_to_u16`.
#[test]
fn test_math_fixed_to_u16() {
    let expected = u16::MIN;
    assert_eq!(fixed_to_u16(I32F32::from_num(expected)), expected);

    let expected = u16::MAX / 2;
    assert_eq!(fixed_to_u16(I32F32::from_num(expected)), expected);

    let expected = u16::MAX;
    assert_eq!(fixed_to_u16(I32F32::from_num(expected)), expected);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_fixed64_to_u64`.
#[test]
fn test_math_fixed64_to_u64() {
    let expected = u64::MIN;
    let input = I64F64::from_num(expected);
    assert_eq!(fixed64_to_u64(input), expected);

    let input = i64::MAX / 2;
    let expected = u64::try_from(input).unwrap();
    assert_eq!(fixed64_to_u64(I64F64::from_num(input)), expected);

    let input = i64::MAX;
    let expected = u64::try_from(input).unwrap();
    assert_eq!(fixed64_to_u64(I64F64::from_num(input)), expected);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_fixed64_to_u64_saturates`.
#[test]
fn test_math_fixed64_to_u64_saturates() {
    let bad_input = I64F64::from_num(-1);
    let expected = 0;
    assert_eq!(fixed64_to_u64(bad_input), expected);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_fixed64_to_fixed32`.
#[test]
fn test_math_fixed64_to_fixed32() {
    let input = u64::MIN;
    let expected = u32::try_from(input).unwrap();
    assert_eq!(fixed64_to_fixed32(I64F64::from_num(expected)), expected);

    let expected = u32::MAX / 2;
    let input = u64::from(expected);
    assert_eq!(fixed64_to_fixed32(I64F64::from_num(input)), expected);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_fixed64_to_fixed32_saturates`.
#[test]
fn test_math_fixed64_to_fixed32_saturates() {
    let bad_input = I64F64::from_num(u32::MAX);
    assert_eq!(fixed64_to_fixed32(bad_input), I32F32::max_value());
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_u16_to_fixed`.
#[test]
fn test_math_u16_to_fixed() {
    let input = u16::MIN;
    let expected = I32F32::from_num(input);
    assert_eq!(u16_to_fixed(input), expected);

    let input = u16::MAX / 2;
    let expected = I32F32::from_num(input);
    assert_eq!(u16_to_fixed(input), expected);

    let input = u16::MAX;
    let expected = I32F32::from_num(input);
    assert_eq!(u16_to_fixed(input), expected);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_math_u16_proportion_to_fixed`.
#[test]
fn test_math_u16_proportion_to_fixed() {
    let input = u16::MIN;
    let expected = I32F32::from_num(input);
    assert_eq!(u16_proportion_to_fixed(input), expected);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_fixed_proportion_to_u16`.
#[test]
fn test_fixed_proportion_to_u16() {
    let expected = u16::MIN;
    let input = I32F32::from_num(expected);
    assert_eq!(fixed_proportion_to_u16(input), expected);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_fixed_proportion_to_u16_saturates`.
#[test]
fn test_fixed_proportion_to_u16_saturates() {
    let expected = u16::MAX;
    let input = I32F32::from_num(expected);
    // (upstream logs here) log::trace!("Testing with input: {input:?}"); // Debug output
    let result = fixed_proportion_to_u16(input);
    // (upstream logs here) log::trace!("Testing with result: {result:?}"); // Debug output
    assert_eq!(result, expected);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_vec_fixed64_to_fixed32`.
#[test]
fn test_vec_fixed64_to_fixed32() {
    let input = vec![I64F64::from_num(i32::MIN)];
    let expected = vec![I32F32::from_num(i32::MIN)];
    assert_eq!(vec_fixed64_to_fixed32(input), expected);

    let input = vec![I64F64::from_num(i32::MAX)];
    let expected = vec![I32F32::from_num(i32::MAX)];
    assert_eq!(vec_fixed64_to_fixed32(input), expected);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_vec_fixed64_to_fixed32_saturates`.
#[test]
fn test_vec_fixed64_to_fixed32_saturates() {
    let bad_input = vec![I64F64::from_num(i64::MAX)];
    assert_eq!(vec_fixed64_to_fixed32(bad_input), [I32F32::max_value()]);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_mat_ema_alpha_sparse_empty`.
#[test]
fn test_mat_ema_alpha_sparse_empty() {
    let new: Vec<Vec<(u16, I32F32)>> = Vec::new();
    let old: Vec<Vec<(u16, I32F32)>> = Vec::new();
    let alpha: Vec<Vec<I32F32>> = Vec::new();
    let result = mat_ema_alpha_sparse(&new, &old, &alpha);
    assert_eq!(result, Vec::<Vec<(u16, I32F32)>>::new());
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_mat_ema_alpha_sparse_single_element`.
#[test]
fn test_mat_ema_alpha_sparse_single_element() {
    let new: Vec<Vec<(u16, I32F32)>> = vec![vec![(0, I32F32::from_num(1.0))]];
    let old: Vec<Vec<(u16, I32F32)>> = vec![vec![(0, I32F32::from_num(2.0))]];
    let alpha = vec![vec![I32F32::from_num(0.5)]];
    let result = mat_ema_alpha_sparse(&new, &old, &alpha);
    assert_eq!(result, vec![vec![(0, I32F32::from_num(1.0))]]);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_mat_ema_alpha_sparse_multiple_elements`.
#[test]
fn test_mat_ema_alpha_sparse_multiple_elements() {
    let new: Vec<Vec<(u16, I32F32)>> = vec![
        vec![(0, I32F32::from_num(1.0)), (1, I32F32::from_num(2.0))],
        vec![(0, I32F32::from_num(3.0)), (1, I32F32::from_num(4.0))],
    ];
    let old: Vec<Vec<(u16, I32F32)>> = vec![
        vec![(0, I32F32::from_num(5.0)), (1, I32F32::from_num(6.0))],
        vec![(0, I32F32::from_num(7.0)), (1, I32F32::from_num(8.0))],
    ];
    let alpha = vec![vec![I32F32::from_num(0.1), I32F32::from_num(0.2)]; 2];
    let result = mat_ema_alpha_sparse(&new, &old, &alpha);
    let expected = vec![
        vec![(0, I32F32::from_num(1.0)), (1, I32F32::from_num(1.0))],
        vec![(0, I32F32::from_num(1.0)), (1, I32F32::from_num(1.0))],
    ];
    assert_sparse_mat_compare(&result, &expected, I32F32::from_num(0.000001));
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_mat_ema_alpha_sparse_zero_alpha`.
#[test]
fn test_mat_ema_alpha_sparse_zero_alpha() {
    let new: Vec<Vec<(u16, I32F32)>> = vec![vec![(0, I32F32::from_num(1.0))]];
    let old: Vec<Vec<(u16, I32F32)>> = vec![vec![(0, I32F32::from_num(2.0))]];
    let alpha = vec![vec![I32F32::from_num(0.1), I32F32::from_num(0.0)]];
    let result = mat_ema_alpha_sparse(&new, &old, &alpha);
    assert_eq!(result, vec![vec![(0, I32F32::from_num(1.0))]]);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_mat_ema_alpha_sparse_one_alpha`.
#[test]
fn test_mat_ema_alpha_sparse_one_alpha() {
    let new: Vec<Vec<(u16, I32F32)>> = vec![vec![(0, I32F32::from_num(1.0))]];
    let old: Vec<Vec<(u16, I32F32)>> = vec![vec![(0, I32F32::from_num(2.0))]];
    let alpha = vec![vec![I32F32::from_num(1.0), I32F32::from_num(0.0)]];
    let result = mat_ema_alpha_sparse(&new, &old, &alpha);
    assert_eq!(result, vec![vec![(0, I32F32::from_num(1.0))]]);
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_mat_ema_alpha_sparse_mixed_alpha`.
#[test]
fn test_mat_ema_alpha_sparse_mixed_alpha() {
    let new: Vec<Vec<(u16, I32F32)>> = vec![
        vec![(0, I32F32::from_num(1.0)), (1, I32F32::from_num(2.0))],
        vec![(0, I32F32::from_num(3.0)), (1, I32F32::from_num(4.0))],
    ];
    let old: Vec<Vec<(u16, I32F32)>> = vec![
        vec![(0, I32F32::from_num(5.0)), (1, I32F32::from_num(6.0))],
        vec![(0, I32F32::from_num(7.0)), (1, I32F32::from_num(8.0))],
    ];
    let alpha = vec![vec![I32F32::from_num(0.3), I32F32::from_num(0.7)]; 2];
    let result = mat_ema_alpha_sparse(&new, &old, &alpha);
    assert_sparse_mat_compare(
        &result,
        &[
            vec![(0, I32F32::from_num(1.0)), (1, I32F32::from_num(1.0))],
            vec![(0, I32F32::from_num(1.0)), (1, I32F32::from_num(1.0))],
        ],
        I32F32::from_num(0.000001),
    );
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_mat_ema_alpha_sparse_sparse_matrix`.
#[test]
fn test_mat_ema_alpha_sparse_sparse_matrix() {
    let new: Vec<Vec<(u16, I32F32)>> = vec![
        vec![(0, I32F32::from_num(1.0))],
        vec![(1, I32F32::from_num(4.0))],
    ];
    let old: Vec<Vec<(u16, I32F32)>> = vec![
        vec![(0, I32F32::from_num(5.0))],
        vec![(1, I32F32::from_num(8.0))],
    ];
    let alpha = vec![vec![I32F32::from_num(0.5), I32F32::from_num(0.5)]; 2];
    let result = mat_ema_alpha_sparse(&new, &old, &alpha);
    assert_eq!(
        result,
        vec![
            vec![(0, I32F32::from_num(1.0))],
            vec![(1, I32F32::from_num(1.0))]
        ]
    );
}

/// Upstream: `pallets/subtensor/src/tests/math.rs` `test_mat_ema_alpha_sparse_varying_alpha`.
#[test]
fn test_mat_ema_alpha_sparse_varying_alpha() {
    let weights = vec![
        vec![(0, I32F32::from_num(0.1)), (1, I32F32::from_num(0.2))],
        vec![(0, I32F32::from_num(0.3)), (1, I32F32::from_num(0.4))],
    ];
    let bonds = vec![
        vec![(0, I32F32::from_num(0.5)), (1, I32F32::from_num(0.6))],
        vec![(0, I32F32::from_num(0.7)), (1, I32F32::from_num(0.8))],
    ];
    let alpha = vec![
        vec![I32F32::from_num(0.9), I32F32::from_num(0.8)],
        vec![I32F32::from_num(0.5), I32F32::from_num(0.7)],
    ];

    let expected = vec![
        vec![(0, I32F32::from_num(0.14)), (1, I32F32::from_num(0.28))],
        vec![
            (0, I32F32::from_num(0.499999)),
            (1, I32F32::from_num(0.519999)),
        ],
    ];

    let result = mat_ema_alpha_sparse(&weights, &bonds, &alpha);
    // Assert the results with an epsilon for approximate equality
    assert_sparse_mat_compare(&result, &expected, I32F32::from_num(1e-6));
}
