//! Signed weight vectors: what a validator says about the miners each epoch.
//!
//! A [`WeightVector`] has a canonical encoding; the validator signs its SHA-256 with BIP-340 Schnorr. A
//! receiver ([`WeightInbox`]) accepts one vector per validator per epoch, refuses bad signatures, wrong
//! epochs and duplicates, and turns two different signed vectors for one epoch into [`Equivocation`]
//! evidence (slashable: the validator signed both).

use std::collections::BTreeMap;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{schnorr, Keypair, Message, XOnlyPublicKey, SECP256K1};
use serde::{Deserialize, Serialize};

const DOMAIN: &[u8] = b"boltensor/weights/v1";

/// Why a weight vector was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightsError {
    /// The signature does not verify under the validator's key.
    #[error("bad signature on the weight vector of validator {0}")]
    BadSignature(String),
    /// Not a valid x-only key or signature encoding.
    #[error("malformed weight vector: {0}")]
    Malformed(String),
    /// For another epoch than the one being collected.
    #[error("weight vector for epoch {got}, collecting epoch {expected}")]
    WrongEpoch {
        /// The vector's epoch.
        got: u64,
        /// The epoch being collected.
        expected: u64,
    },
    /// The same vector again.
    #[error("duplicate weight vector from validator {0} for this epoch")]
    Duplicate(String),
    /// A different vector from a validator that already submitted one for this epoch.
    #[error("validator {} signed two different weight vectors for epoch {}", hex::encode(.0.first.vector.validator), .0.first.vector.epoch)]
    Equivocation(Box<Equivocation>),
}

/// Weights of one validator for one epoch: miner node id → weight (u16, as subtensor stores them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightVector {
    /// The epoch.
    pub epoch: u64,
    /// The validator's x-only public key (its signing key).
    #[serde(with = "hex_array")]
    pub validator: [u8; 32],
    /// Miner (Lightning node id, 33 bytes hex) → weight; sorted by miner, one entry each.
    pub weights: BTreeMap<String, u16>,
}

impl WeightVector {
    /// The canonical encoding: domain, epoch, validator, count, then (miner id, weight) sorted by id.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(DOMAIN.len() + 44 + self.weights.len() * 35);
        b.extend(DOMAIN);
        b.extend(self.epoch.to_be_bytes());
        b.extend(self.validator);
        b.extend((self.weights.len() as u32).to_be_bytes());
        for (miner, w) in &self.weights {
            b.extend((miner.len() as u16).to_be_bytes());
            b.extend(miner.as_bytes());
            b.extend(w.to_be_bytes());
        }
        b
    }

    /// The 32-byte message that is signed: SHA-256 of the canonical encoding.
    pub fn digest(&self) -> [u8; 32] {
        let mut e = sha256::Hash::engine();
        e.input(&self.canonical_bytes());
        sha256::Hash::from_engine(e).to_byte_array()
    }

    /// Signs with the validator's key (whose x-only public key must be `validator`).
    pub fn sign(self, keypair: &Keypair) -> SignedWeights {
        let msg = Message::from_digest(self.digest());
        // BIP-340 with no auxiliary randomness: the nonce still derives from the key and message.
        let sig = SECP256K1.sign_schnorr_no_aux_rand(&msg, keypair);
        SignedWeights {
            vector: self,
            signature: sig.serialize(),
        }
    }
}

/// A weight vector with the validator's BIP-340 signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedWeights {
    /// The vector.
    pub vector: WeightVector,
    /// BIP-340 signature over [`WeightVector::digest`].
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

impl SignedWeights {
    /// Checks the signature against the vector's validator key.
    pub fn verify(&self) -> Result<(), WeightsError> {
        let key = XOnlyPublicKey::from_slice(&self.vector.validator)
            .map_err(|e| WeightsError::Malformed(format!("validator key: {e}")))?;
        let sig = schnorr::Signature::from_slice(&self.signature)
            .map_err(|e| WeightsError::Malformed(format!("signature: {e}")))?;
        SECP256K1
            .verify_schnorr(&sig, &Message::from_digest(self.vector.digest()), &key)
            .map_err(|_| WeightsError::BadSignature(hex::encode(self.vector.validator)))
    }
}

/// Two validly signed, different weight vectors from one validator for one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equivocation {
    /// The first vector received.
    pub first: SignedWeights,
    /// The conflicting one.
    pub second: SignedWeights,
}

impl Equivocation {
    /// Checks that this really is equivocation: same validator and epoch, different vectors, both signed.
    pub fn verify(&self) -> Result<(), WeightsError> {
        let (a, b) = (&self.first.vector, &self.second.vector);
        if a.validator != b.validator || a.epoch != b.epoch {
            return Err(WeightsError::Malformed(
                "not the same validator and epoch".into(),
            ));
        }
        if a == b {
            return Err(WeightsError::Malformed("the two vectors are equal".into()));
        }
        self.first.verify()?;
        self.second.verify()
    }
}

/// The receiving side: collects one signed vector per validator for one epoch.
#[derive(Debug, Clone, Default)]
pub struct WeightInbox {
    epoch: u64,
    received: BTreeMap<[u8; 32], SignedWeights>,
}

impl WeightInbox {
    /// An inbox for `epoch`.
    pub fn new(epoch: u64) -> Self {
        WeightInbox {
            epoch,
            received: BTreeMap::new(),
        }
    }

    /// Accepts `sw`, or says why not. Equivocation comes back as evidence in the error.
    pub fn submit(&mut self, sw: SignedWeights) -> Result<(), WeightsError> {
        sw.verify()?;
        if sw.vector.epoch != self.epoch {
            return Err(WeightsError::WrongEpoch {
                got: sw.vector.epoch,
                expected: self.epoch,
            });
        }
        match self.received.get(&sw.vector.validator) {
            Some(prev) if prev.vector == sw.vector => {
                Err(WeightsError::Duplicate(hex::encode(sw.vector.validator)))
            }
            Some(prev) => Err(WeightsError::Equivocation(Box::new(Equivocation {
                first: prev.clone(),
                second: sw,
            }))),
            None => {
                self.received.insert(sw.vector.validator, sw);
                Ok(())
            }
        }
    }

    /// The accepted vectors.
    pub fn vectors(&self) -> impl Iterator<Item = &SignedWeights> {
        self.received.values()
    }
}

/// Scales non-negative scores to u16 weights the way subtensor's `set_weights` callers do: the largest
/// becomes 65535, the rest in proportion (rounded down). All-zero scores give all-zero weights.
pub fn max_upscale_u16(scores: &BTreeMap<String, f64>) -> BTreeMap<String, u16> {
    let max = scores.values().copied().fold(0.0f64, f64::max);
    scores
        .iter()
        .map(|(k, v)| {
            let w = if max > 0.0 && v.is_finite() && *v > 0.0 {
                ((v / max) * f64::from(u16::MAX)).floor() as u16
            } else {
                0
            };
            (k.clone(), w)
        })
        .collect()
}

mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let bytes = hex::decode(&s).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom(format!("expected {N} bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::SecretKey;

    fn keypair(b: u8) -> Keypair {
        Keypair::from_secret_key(SECP256K1, &SecretKey::from_slice(&[b; 32]).expect("key"))
    }

    fn vector(kp: &Keypair, epoch: u64, w: u16) -> WeightVector {
        WeightVector {
            epoch,
            validator: kp.x_only_public_key().0.serialize(),
            weights: [("02aa".to_owned(), w), ("03bb".to_owned(), 7)].into(),
        }
    }

    #[test]
    fn inbox_accepts_once_and_turns_conflicts_into_evidence() {
        let kp = keypair(3);
        let mut inbox = WeightInbox::new(5);
        let good = vector(&kp, 5, 100).sign(&kp);
        assert_eq!(inbox.submit(good.clone()), Ok(()));
        assert!(matches!(
            inbox.submit(good.clone()),
            Err(WeightsError::Duplicate(_))
        ));
        let other = vector(&kp, 5, 200).sign(&kp);
        match inbox.submit(other) {
            Err(WeightsError::Equivocation(ev)) => assert_eq!(ev.verify(), Ok(())),
            e => panic!("expected equivocation, got {e:?}"),
        }
        assert!(matches!(
            inbox.submit(vector(&kp, 6, 1).sign(&kp)),
            Err(WeightsError::WrongEpoch {
                got: 6,
                expected: 5
            })
        ));
        // Signed by another key than the one it names.
        let mut forged = vector(&kp, 5, 300).sign(&keypair(4));
        assert!(matches!(
            inbox.submit(forged.clone()),
            Err(WeightsError::BadSignature(_))
        ));
        forged.signature[0] ^= 1;
        assert!(inbox.submit(forged).is_err());
        // JSON round trip keeps the signature valid.
        let json = serde_json::to_string(&good).expect("json");
        let back: SignedWeights = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.verify(), Ok(()));
    }

    #[test]
    fn upscale_puts_the_best_at_u16_max() {
        let scores: BTreeMap<String, f64> =
            [("a".into(), 0.5), ("b".into(), 1.0), ("c".into(), 0.0)].into();
        let w = max_upscale_u16(&scores);
        assert_eq!(w["b"], 65535);
        assert_eq!(w["a"], 32767);
        assert_eq!(w["c"], 0);
    }
}
