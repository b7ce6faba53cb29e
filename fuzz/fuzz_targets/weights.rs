//! Signed weight vectors as a coordinator receives them (`POST /v1/weights`, JSON) and as the inbox
//! collects them. Operations are either raw JSON from the fuzzer or vectors signed here with one of a
//! few validator keys (so the inbox's duplicate, wrong-epoch and equivocation paths are reached).
//! Checks: JSON and the canonical encoding round-trip; a vector that verifies is signed by the key it
//! names; the inbox keeps at most one verified vector per validator, all for its epoch; equivocation
//! evidence verifies and names the right validator.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use bitcoin::secp256k1::{schnorr, Message, XOnlyPublicKey, SECP256K1};
use boltensor_contracts::decode_weight_vector;
use boltensor_fuzz::{keypair, xonly};
use boltensor_protocol::weights::{SignedWeights, WeightInbox, WeightVector, WeightsError};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Op {
    Json(Vec<u8>),
    Signed {
        key: u8,
        epoch_offset: u8,
        weights: Vec<(u8, u16)>,
        tamper: Option<u8>,
    },
}

#[derive(Debug, Arbitrary)]
struct Input {
    epoch: u64,
    ops: Vec<Op>,
}

fn check_one(sw: &SignedWeights) {
    let json = serde_json::to_vec(sw).expect("serialises");
    let back: SignedWeights = serde_json::from_slice(&json).expect("own JSON parses");
    assert_eq!(&back, sw);
    let canonical = sw.vector.canonical_bytes();
    if sw
        .vector
        .weights
        .keys()
        .all(|m| m.len() <= usize::from(u16::MAX))
    {
        assert_eq!(decode_weight_vector(&canonical).as_ref(), Ok(&sw.vector));
    }
    if sw.verify().is_ok() {
        // Independently: the named key signed the digest.
        let key = XOnlyPublicKey::from_slice(&sw.vector.validator).expect("verified key");
        let sig = schnorr::Signature::from_slice(&sw.signature).expect("verified signature");
        SECP256K1
            .verify_schnorr(&sig, &Message::from_digest(sw.vector.digest()), &key)
            .expect("verify() said so");
    }
}

fuzz_target!(|input: Input| {
    let mut inbox = WeightInbox::new(input.epoch);
    let mut accepted: BTreeMap<[u8; 32], SignedWeights> = BTreeMap::new();
    for op in input.ops.into_iter().take(16) {
        let sw = match op {
            Op::Json(bytes) => match serde_json::from_slice::<SignedWeights>(&bytes) {
                Ok(sw) => sw,
                Err(_) => continue,
            },
            Op::Signed {
                key,
                epoch_offset,
                weights,
                tamper,
            } => {
                let k = u64::from(key % 4);
                let mut sw = WeightVector {
                    epoch: input.epoch.wrapping_add(u64::from(epoch_offset % 3)),
                    validator: xonly(k),
                    weights: weights
                        .into_iter()
                        .take(8)
                        .map(|(m, w)| (format!("{:02x}", m % 6), w))
                        .collect(),
                }
                .sign(&keypair(k));
                if let Some(t) = tamper {
                    sw.signature[usize::from(t % 64)] ^= 1;
                }
                sw
            }
        };
        check_one(&sw);
        let verified = sw.verify().is_ok();
        match inbox.submit(sw.clone()) {
            Ok(()) => {
                assert!(verified);
                assert_eq!(sw.vector.epoch, input.epoch);
                assert!(accepted.insert(sw.vector.validator, sw).is_none());
            }
            Err(WeightsError::Duplicate(_)) => {
                assert_eq!(accepted.get(&sw.vector.validator), Some(&sw));
            }
            Err(WeightsError::Equivocation(ev)) => {
                assert_eq!(ev.verify(), Ok(()));
                assert_eq!(ev.first.vector.validator, sw.vector.validator);
                assert_eq!(accepted.get(&sw.vector.validator), Some(&ev.first));
                assert_eq!(ev.second, sw);
            }
            Err(WeightsError::WrongEpoch { got, expected }) => {
                assert!(verified);
                assert_eq!((got, expected), (sw.vector.epoch, input.epoch));
            }
            Err(WeightsError::BadSignature(_) | WeightsError::Malformed(_)) => assert!(!verified),
        }
    }
    let held: Vec<_> = inbox.vectors().cloned().collect();
    assert_eq!(held, accepted.into_values().collect::<Vec<_>>());
});
