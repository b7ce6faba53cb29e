//! [`Evidence`] of slashable misbehaviour, its canonical encoding, and the checks every coordinator runs
//! identically before a slash.
//!
//! Two kinds count as proof, because each carries the offender's own BIP-340 signature and a rule anyone
//! can check without trusting the reporter:
//! - **Equivocation**: two different weight vectors signed by one validator for one epoch (the
//!   `boltensor_protocol::weights` types, their canonical encoding and signatures). Fully checked here.
//! - **Refuted response**: a miner's [`SignedResponse`] (it signed "this request gave this response"),
//!   whose response digest differs from what a deterministic recomputation of the request gives. The
//!   recomputation (running the model) is the caller's; this crate compares digests and checks the signature.
//!
//! The offender is named by its registration key; [`Offence::slashes`] matches it to a bond proof.
//!
//! # Encoding (integers big-endian)
//! `"BTEV"` ‖ version `1` ‖ kind (u8) ‖ body.
//! - kind 1, equivocation: twice (u32 length ‖ `WeightVector::canonical_bytes` ‖ signature (64)), the
//!   vector with the smaller digest first (so one equivocation has one encoding).
//! - kind 2, refuted response: miner x-only key (32) ‖ request digest (32) ‖ model (u16 length ‖ UTF-8) ‖
//!   response digest (32) ‖ signature (64).

use std::collections::BTreeMap;

use bitcoin::secp256k1::{schnorr, Keypair, Message, XOnlyPublicKey, SECP256K1};
use boltensor_protocol::weights::{Equivocation, SignedWeights, WeightVector};

use crate::encoding::{tagged_hash, DecodeError, Reader};
use crate::BondClaims;

const MAGIC: &[u8; 4] = b"BTEV";
const VERSION: u8 = 1;
const KIND_EQUIVOCATION: u8 = 1;
const KIND_REFUTED: u8 = 2;
/// `boltensor_protocol::weights`' domain prefix of a weight vector's canonical encoding.
const WEIGHTS_DOMAIN: &[u8] = b"boltensor/weights/v1";
/// The BIP-340 tag of a miner's signed response.
pub const RESPONSE_DOMAIN: &str = "boltensor/response/v1";

/// A miner's signed statement: the request with this digest, answered by `model`, gave the response with
/// this digest (both digests as the miner computes them, e.g. `l402::request_digest` and SHA-256 of the
/// canonical response body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedResponse {
    /// The miner's registration key.
    pub miner: XOnlyPublicKey,
    /// Digest of the request.
    pub request_digest: [u8; 32],
    /// The model that answered (at most 65535 bytes).
    pub model: String,
    /// Digest of the response the miner returned.
    pub response_digest: [u8; 32],
    /// BIP-340 signature by `miner` over [`SignedResponse::digest`].
    pub signature: schnorr::Signature,
}

impl SignedResponse {
    /// Signs a response statement with the miner's key.
    pub fn sign(
        miner: &Keypair,
        request_digest: [u8; 32],
        model: &str,
        response_digest: [u8; 32],
    ) -> Result<Self, EvidenceError> {
        if model.len() > usize::from(u16::MAX) {
            return Err(EvidenceError::ModelNameTooLong(model.len()));
        }
        let mut r = SignedResponse {
            miner: miner.x_only_public_key().0,
            request_digest,
            model: model.to_owned(),
            response_digest,
            // Placeholder, replaced below.
            signature: schnorr::Signature::from_slice(&[1; 64])
                .expect("64 bytes are a signature encoding"),
        };
        r.signature = SECP256K1.sign_schnorr_no_aux_rand(&Message::from_digest(r.digest()), miner);
        Ok(r)
    }

    fn statement_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(32 * 3 + 2 + self.model.len());
        b.extend(self.miner.serialize());
        b.extend(self.request_digest);
        // Length checked at signing and decoding; saturate rather than wrap for hand-built values.
        let len = u16::try_from(self.model.len()).unwrap_or(u16::MAX);
        b.extend(len.to_be_bytes());
        b.extend(&self.model.as_bytes()[..usize::from(len)]);
        b.extend(self.response_digest);
        b
    }

    /// What the miner signs: the tagged hash [`RESPONSE_DOMAIN`] of the statement's encoding.
    pub fn digest(&self) -> [u8; 32] {
        tagged_hash(RESPONSE_DOMAIN, &self.statement_bytes())
    }

    /// Checks the miner's signature.
    pub fn verify(&self) -> Result<(), EvidenceError> {
        SECP256K1
            .verify_schnorr(
                &self.signature,
                &Message::from_digest(self.digest()),
                &self.miner,
            )
            .map_err(|_| EvidenceError::BadSignature {
                which: "miner's response",
                key: self.miner.serialize(),
            })
    }
}

/// Evidence of a slashable offence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Two different signed weight vectors from one validator for one epoch.
    Equivocation(Equivocation),
    /// A miner's signed response that recomputation refutes.
    RefutedResponse(SignedResponse),
}

/// What kind of offence was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffenceKind {
    /// A validator signed two weight vectors for `epoch`.
    Equivocation {
        /// The epoch.
        epoch: u64,
    },
    /// A miner signed a response that recomputation refutes.
    RefutedResponse {
        /// The request's digest.
        request_digest: [u8; 32],
    },
}

/// A proven offence: who did it and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offence {
    /// The offender's registration key (x-only).
    pub offender: XOnlyPublicKey,
    /// The offence.
    pub kind: OffenceKind,
}

impl Offence {
    /// Whether this offence is by the node a bond proof backs (same registration key).
    pub fn slashes(&self, claims: &BondClaims) -> bool {
        claims.registration_key == self.offender
    }
}

/// Why evidence does not prove an offence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// The two vectors are from different validators.
    #[error("the two weight vectors are from different validators ({} and {})", hex::encode(.first), hex::encode(.second))]
    DifferentValidators {
        /// The first vector's validator key.
        first: [u8; 32],
        /// The second's.
        second: [u8; 32],
    },
    /// The two vectors are for different epochs.
    #[error("the two weight vectors are for different epochs ({first} and {second})")]
    DifferentEpochs {
        /// The first vector's epoch.
        first: u64,
        /// The second's.
        second: u64,
    },
    /// The two vectors are the same: re-sending is not equivocation.
    #[error("the two weight vectors are identical")]
    SameVector,
    /// A key in the evidence is not a valid x-only key.
    #[error("the validator key {} is not a valid x-only key", hex::encode(.0))]
    InvalidKey([u8; 32]),
    /// A signature in the evidence does not verify: the accused never signed it.
    #[error("the {which} signature does not verify under {}", hex::encode(.key))]
    BadSignature {
        /// Which signature.
        which: &'static str,
        /// The key it was checked against.
        key: [u8; 32],
    },
    /// A refuted-response check needs the recomputed digest.
    #[error("a refuted-response check needs the recomputed response digest")]
    NeedsRecomputation,
    /// The recomputation agrees with the miner: nothing to slash.
    #[error("the recomputed response digest equals the signed one: the response is correct")]
    NotRefuted,
    /// A model name longer than the encoding allows.
    #[error("model name of {0} bytes is longer than 65535")]
    ModelNameTooLong(usize),
}

/// Checks equivocation fully: same validator and epoch, different vectors, both signatures valid.
pub fn verify_equivocation(e: &Equivocation) -> Result<Offence, EvidenceError> {
    let (a, b) = (&e.first.vector, &e.second.vector);
    if a.validator != b.validator {
        return Err(EvidenceError::DifferentValidators {
            first: a.validator,
            second: b.validator,
        });
    }
    if a.epoch != b.epoch {
        return Err(EvidenceError::DifferentEpochs {
            first: a.epoch,
            second: b.epoch,
        });
    }
    if a.canonical_bytes() == b.canonical_bytes() {
        return Err(EvidenceError::SameVector);
    }
    let key = XOnlyPublicKey::from_slice(&a.validator)
        .map_err(|_| EvidenceError::InvalidKey(a.validator))?;
    for (which, sw) in [("first vector's", &e.first), ("second vector's", &e.second)] {
        let bad = || EvidenceError::BadSignature {
            which,
            key: a.validator,
        };
        let sig = schnorr::Signature::from_slice(&sw.signature).map_err(|_| bad())?;
        SECP256K1
            .verify_schnorr(&sig, &Message::from_digest(sw.vector.digest()), &key)
            .map_err(|_| bad())?;
    }
    Ok(Offence {
        offender: key,
        kind: OffenceKind::Equivocation { epoch: a.epoch },
    })
}

/// Checks a refuted response: the miner's signature is valid and `recomputed` (the digest of the response
/// a deterministic recomputation of the request gives) differs from the one it signed.
pub fn verify_refutation(
    response: &SignedResponse,
    recomputed: [u8; 32],
) -> Result<Offence, EvidenceError> {
    response.verify()?;
    if recomputed == response.response_digest {
        return Err(EvidenceError::NotRefuted);
    }
    Ok(Offence {
        offender: response.miner,
        kind: OffenceKind::RefutedResponse {
            request_digest: response.request_digest,
        },
    })
}

impl Evidence {
    /// Equivocation evidence from two signed vectors, in canonical order (smaller digest first).
    pub fn equivocation(a: SignedWeights, b: SignedWeights) -> Self {
        let (first, second) = if a.vector.digest() <= b.vector.digest() {
            (a, b)
        } else {
            (b, a)
        };
        Evidence::Equivocation(Equivocation { first, second })
    }

    /// Checks the evidence: [`verify_equivocation`], or [`verify_refutation`] with `recomputed` (required
    /// for a refuted response, ignored for equivocation).
    pub fn verify(&self, recomputed: Option<[u8; 32]>) -> Result<Offence, EvidenceError> {
        match self {
            Evidence::Equivocation(e) => verify_equivocation(e),
            Evidence::RefutedResponse(r) => {
                verify_refutation(r, recomputed.ok_or(EvidenceError::NeedsRecomputation)?)
            }
        }
    }

    /// The canonical encoding (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(MAGIC);
        b.push(VERSION);
        match self {
            Evidence::Equivocation(e) => {
                b.push(KIND_EQUIVOCATION);
                for sw in [&e.first, &e.second] {
                    let v = sw.vector.canonical_bytes();
                    b.extend((v.len() as u32).to_be_bytes());
                    b.extend(v);
                    b.extend(sw.signature);
                }
            }
            Evidence::RefutedResponse(r) => {
                b.push(KIND_REFUTED);
                b.extend(r.statement_bytes());
                b.extend(r.signature.serialize());
            }
        }
        b
    }

    /// Decodes [`Self::encode`]'s bytes. Total: any input gives evidence or an error; only canonical
    /// encodings are accepted. Does not check signatures ([`Self::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.magic(MAGIC, "slashing evidence")?;
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let evidence = match r.u8("evidence kind")? {
            KIND_EQUIVOCATION => {
                let first = read_signed_weights(&mut r)?;
                let second = read_signed_weights(&mut r)?;
                if first.vector.digest() > second.vector.digest() {
                    return Err(DecodeError::NotCanonical(
                        "equivocating vectors not in digest order",
                    ));
                }
                Evidence::Equivocation(Equivocation { first, second })
            }
            KIND_REFUTED => {
                let miner = r.x_only("miner key")?;
                let request_digest = r.array("request digest")?;
                let len = r.u16("model length")?;
                let model = std::str::from_utf8(r.take(usize::from(len), "model")?)
                    .map_err(|_| DecodeError::OutOfRange {
                        field: "model",
                        reason: "not UTF-8",
                    })?
                    .to_owned();
                let response_digest = r.array("response digest")?;
                let signature = r.signature("miner signature")?;
                Evidence::RefutedResponse(SignedResponse {
                    miner,
                    request_digest,
                    model,
                    response_digest,
                    signature,
                })
            }
            tag => {
                return Err(DecodeError::UnknownTag {
                    field: "evidence kind",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(evidence)
    }
}

fn read_signed_weights(r: &mut Reader<'_>) -> Result<SignedWeights, DecodeError> {
    let len = r.u32("weight vector length")? as usize;
    if len > r.remaining() {
        return Err(DecodeError::Truncated {
            field: "weight vector",
        });
    }
    let bytes = r.take(len, "weight vector")?;
    let vector = decode_weight_vector(bytes)?;
    let signature = r.array("weight vector signature")?;
    Ok(SignedWeights { vector, signature })
}

/// Decodes `WeightVector::canonical_bytes`; refuses anything that does not re-encode to the same bytes.
pub fn decode_weight_vector(bytes: &[u8]) -> Result<WeightVector, DecodeError> {
    let mut r = Reader::new(bytes);
    r.magic(WEIGHTS_DOMAIN, "weight vector")?;
    let epoch = r.u64("epoch")?;
    let validator = r.array("validator key")?;
    let count = r.u32("weight count")? as usize;
    // Each entry takes at least 4 bytes: never allocate for more than the input can hold.
    if count > r.remaining() / 4 {
        return Err(DecodeError::Truncated { field: "weights" });
    }
    let mut weights = BTreeMap::new();
    for _ in 0..count {
        let len = r.u16("miner id length")?;
        let miner = std::str::from_utf8(r.take(usize::from(len), "miner id")?)
            .map_err(|_| DecodeError::OutOfRange {
                field: "miner id",
                reason: "not UTF-8",
            })?
            .to_owned();
        let w = r.u16("weight")?;
        weights.insert(miner, w);
    }
    r.finish()?;
    let v = WeightVector {
        epoch,
        validator,
        weights,
    };
    if v.canonical_bytes() != bytes {
        return Err(DecodeError::NotCanonical(
            "weights not sorted by miner id, or a miner twice",
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::test_keys;

    fn vector(epoch: u64, key: &Keypair, w: u16) -> SignedWeights {
        WeightVector {
            epoch,
            validator: key.x_only_public_key().0.serialize(),
            weights: [("02aa".to_owned(), w), ("03bb".to_owned(), 7)]
                .into_iter()
                .collect(),
        }
        .sign(key)
    }

    #[test]
    fn equivocation_is_proven_and_round_trips() {
        let k = &test_keys(1)[0];
        let e = Evidence::equivocation(vector(5, k, 1), vector(5, k, 2));
        let o = e.verify(None).expect("equivocation");
        assert_eq!(o.offender, k.x_only_public_key().0);
        assert_eq!(o.kind, OffenceKind::Equivocation { epoch: 5 });
        assert_eq!(Evidence::decode(&e.encode()), Ok(e.clone()));
        // The protocol crate's own check agrees.
        if let Evidence::Equivocation(inner) = &e {
            assert_eq!(inner.verify(), Ok(()));
        }
    }

    #[test]
    fn non_equivocations_are_refused() {
        let keys = test_keys(2);
        let (k, other) = (&keys[0], &keys[1]);
        let check = |a, b| Evidence::equivocation(a, b).verify(None);
        assert_eq!(
            check(vector(5, k, 1), vector(5, k, 1)),
            Err(EvidenceError::SameVector)
        );
        assert!(matches!(
            check(vector(5, k, 1), vector(6, k, 2)),
            Err(EvidenceError::DifferentEpochs { .. })
        ));
        assert!(matches!(
            check(vector(5, k, 1), vector(5, other, 2)),
            Err(EvidenceError::DifferentValidators { .. })
        ));
        // A vector "signed" by someone else in the validator's name.
        let mut forged = vector(5, other, 2);
        forged.vector.validator = k.x_only_public_key().0.serialize();
        assert!(matches!(
            check(vector(5, k, 1), forged),
            Err(EvidenceError::BadSignature { .. })
        ));
    }

    #[test]
    fn refuted_response() {
        let k = &test_keys(1)[0];
        let r = SignedResponse::sign(k, [1; 32], "all-MiniLM-L6-v2", [2; 32]).expect("short");
        let e = Evidence::RefutedResponse(r.clone());
        assert_eq!(e.verify(None), Err(EvidenceError::NeedsRecomputation));
        assert_eq!(e.verify(Some([2; 32])), Err(EvidenceError::NotRefuted));
        assert_eq!(
            e.verify(Some([3; 32])).map(|o| o.offender),
            Ok(k.x_only_public_key().0)
        );
        assert_eq!(Evidence::decode(&e.encode()), Ok(e));
        let mut lie = r;
        lie.response_digest = [3; 32];
        assert!(matches!(
            verify_refutation(&lie, [4; 32]),
            Err(EvidenceError::BadSignature { .. })
        ));
    }

    #[test]
    fn weight_vector_decoding_matches_the_protocol_encoding() {
        let k = &test_keys(1)[0];
        let sw = vector(9, k, 3);
        assert_eq!(
            decode_weight_vector(&sw.vector.canonical_bytes()),
            Ok(sw.vector)
        );
        // Unsorted entries are not canonical.
        let mut b = WEIGHTS_DOMAIN.to_vec();
        b.extend(1u64.to_be_bytes());
        b.extend([0u8; 32]);
        b.extend(2u32.to_be_bytes());
        for (m, w) in [("b", 1u16), ("a", 2)] {
            b.extend(1u16.to_be_bytes());
            b.extend(m.as_bytes());
            b.extend(w.to_be_bytes());
        }
        assert!(matches!(
            decode_weight_vector(&b),
            Err(DecodeError::NotCanonical(_))
        ));
    }
}
