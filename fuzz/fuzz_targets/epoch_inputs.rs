//! The epoch computation on structured inputs: Yuma on bonded stake plus the payout split, as every
//! member runs it and as anyone recomputes a published result. Inputs are built by the fuzzer, including
//! shapes a malicious coordinator could publish (uids that are not their index, bond rows naming
//! missing uids, permit and bond vectors of the wrong length, any parameters). Checks: nothing panics;
//! the computation is deterministic (a result built from `compute` recomputes, unless a weight vector
//! is signed by another key than its uid's); payouts never exceed the pool; results survive JSON.
#![no_main]

use arbitrary::Arbitrary;
use boltensor_coordinator::params::Params;
use boltensor_coordinator::state::{
    EpochInputs, EpochNeuron, EpochResult, EpochWeights, RecomputeError,
};
use boltensor_fuzz::{keypair, node_id, weights};
use boltensor_protocol::Role;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Neuron {
    validator: bool,
    /// `Some`: a uid other than its index (a malformed published result).
    uid: Option<u16>,
    stake_sat: u32,
    registered_epoch: u8,
    registered_block: u8,
}

#[derive(Debug, Arbitrary)]
struct Weights {
    uid: u8,
    /// Signed by neuron `signer`'s key (normally the uid's own).
    signer: Option<u8>,
    epoch: u8,
    block: u8,
    miners: Vec<u8>,
    salt: u16,
}

#[derive(Debug, Arbitrary)]
struct Input {
    neurons: Vec<Option<Neuron>>,
    weights: Vec<Weights>,
    permits: Vec<bool>,
    bonds: Vec<Vec<(u16, u16)>>,
    epoch: u8,
    block: u16,
    last_step_block: u16,
    epoch_sessions: u8,
    kappa: u16,
    max_uids: u16,
    activity_cutoff_epochs: u8,
    epoch_pool_msat: u64,
    /// A fee-funded pool when > 0 (capped at 1,000,000 ppm), with each member's income.
    pool_fee_share_ppm: u32,
    fees_msat: Vec<u64>,
}

fuzz_target!(|input: Input| {
    let neurons: Vec<Option<EpochNeuron>> = input
        .neurons
        .iter()
        .take(24)
        .enumerate()
        .map(|(i, n)| {
            n.as_ref().map(|n| EpochNeuron {
                uid: n.uid.unwrap_or(i as u16),
                key: keypair(i as u64).x_only_public_key().0,
                role: if n.validator {
                    Role::Validator
                } else {
                    Role::Miner
                },
                node_id: node_id(i as u64).to_string(),
                stake_sat: u64::from(n.stake_sat),
                registered_epoch: u64::from(n.registered_epoch),
                registered_block: u64::from(n.registered_block),
            })
        })
        .collect();
    let n = neurons.len().max(1);
    let weights: Vec<EpochWeights> = input
        .weights
        .iter()
        .take(8)
        .map(|w| {
            let uid = u64::from(w.uid) % (n as u64 + 1);
            let signer = w.signer.map_or(uid, |s| u64::from(s) % n as u64);
            let miners: Vec<u64> = w
                .miners
                .iter()
                .take(8)
                .map(|&m| u64::from(m) % n as u64)
                .collect();
            EpochWeights {
                uid: uid as u16,
                epoch: u64::from(w.epoch),
                block: u64::from(w.block),
                signed: weights(signer, u64::from(w.epoch), &miners, w.salt),
            }
        })
        .collect();
    let params = Params {
        epoch_sessions: u64::from(input.epoch_sessions),
        kappa: input.kappa,
        max_uids: input.max_uids,
        activity_cutoff_epochs: u64::from(input.activity_cutoff_epochs),
        epoch_pool_msat: input.epoch_pool_msat,
        pool_fee_share_ppm: u64::from(input.pool_fee_share_ppm.min(1_000_000)),
        ..Params::default()
    };
    let fees_msat = if params.pool_fee_share_ppm > 0 {
        input.fees_msat.into_iter().take(8).collect()
    } else {
        Vec::new()
    };
    let inputs = EpochInputs {
        fees_msat,
        federation: "00".repeat(32),
        epoch: u64::from(input.epoch),
        block: u64::from(input.block),
        last_step_block: u64::from(input.last_step_block),
        params,
        neurons,
        weights,
        permits: input.permits.into_iter().take(32).collect(),
        bonds: input
            .bonds
            .into_iter()
            .take(32)
            .map(|row| row.into_iter().take(32).collect())
            .collect(),
    };
    let (output, payouts) = inputs.compute();
    let paid: u128 = payouts.iter().map(|p| u128::from(p.msat)).sum();
    assert!(
        paid <= u128::from(inputs.pool_msat()),
        "payouts {paid} exceed the pool {}",
        inputs.pool_msat()
    );
    // A fee-funded pool: each member pays at most its part, which is at most its income.
    for (m, part) in inputs.member_pools().into_iter().enumerate() {
        let by: u128 = payouts
            .iter()
            .filter(|p| p.payer == Some(m as u16))
            .map(|p| u128::from(p.msat))
            .sum();
        assert!(by <= u128::from(part) && part <= inputs.fees_msat[m]);
    }
    let result = EpochResult {
        inputs,
        output,
        payouts,
        payer: 0,
    };
    match result.recompute() {
        Ok(())
        | Err(
            RecomputeError::BadWeights { .. }
            | RecomputeError::WrongSigner(_)
            | RecomputeError::Malformed(_),
        ) => {}
        Err(e) => panic!("a result built by compute() does not recompute: {e}"),
    }
    let json = serde_json::to_vec(&result).expect("serialises");
    let back: EpochResult = serde_json::from_slice(&json).expect("own JSON parses");
    assert_eq!(back.digest(), result.digest());
    assert_eq!(back, result);
});
