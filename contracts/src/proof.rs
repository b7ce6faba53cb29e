//! [`BondProof`]: the owner's signed statement "the bond at this outpoint backs this node", and its check
//! against the chain.
//!
//! # Encoding (213 bytes, integers big-endian)
//! `"BTBP"` ‖ version `1` ‖ txid (32, internal byte order) ‖ vout (u32) ‖ amount in sat (u64) ‖ timelock T
//! (u16) ‖ owner x-only key (32) ‖ role (u8: 0 coordinator, 1 miner, 2 validator, 3 client) ‖ Lightning
//! node id (33, compressed) ‖ registration key (x-only, 32) ‖ BIP-340 signature (64).
//!
//! The signature is by the owner key over the BIP-340 tagged hash `"boltensor/bond-proof/v1"` of
//! everything before it. The federation is not in the proof: the verifier rebuilds the script from the
//! owner key, T and its own federation, so a proof for another federation's bond fails as a script mismatch.

use std::collections::BTreeMap;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{schnorr, Keypair, Message, PublicKey, XOnlyPublicKey, SECP256K1};
use bitcoin::{Amount, OutPoint, ScriptBuf, TxOut, Txid};
use boltensor_protocol::Role;

use crate::encoding::{tagged_hash, DecodeError, Reader};
use crate::{Bond, BondError, BondPolicy};

const MAGIC: &[u8; 4] = b"BTBP";
const VERSION: u8 = 1;
const TAG: &str = "boltensor/bond-proof/v1";
/// The length of an encoded [`BondProof`].
pub const PROOF_LEN: usize = 4 + 1 + 32 + 4 + 8 + 2 + 32 + 1 + 33 + 32 + 64;

/// What the caller knows about the chain: the unspent output at an outpoint and its confirmations.
///
/// Implement it over `gettxout` (return `None` for spent or unknown outpoints, confirmations 0 for a
/// mempool output), an Electrum server or an index; the crate does no IO itself.
pub trait ChainView {
    /// The unspent output at `outpoint` and how many confirmations it has, or `None` if it is spent or
    /// does not exist.
    fn tx_out(&self, outpoint: &OutPoint) -> Option<(TxOut, u32)>;
}

impl ChainView for BTreeMap<OutPoint, (TxOut, u32)> {
    fn tx_out(&self, outpoint: &OutPoint) -> Option<(TxOut, u32)> {
        self.get(outpoint).cloned()
    }
}

/// What a bond proof states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondClaims {
    /// The bond output.
    pub outpoint: OutPoint,
    /// Its value.
    pub amount: Amount,
    /// Its relative timelock T.
    pub timelock: u16,
    /// The owner key (the withdraw leaf's key; signs the proof).
    pub owner: XOnlyPublicKey,
    /// The role the bond backs.
    pub role: Role,
    /// The Lightning node id of that role's node.
    pub node_id: PublicKey,
    /// The key the role signs with (registrations, weight vectors, responses): the key slashing evidence
    /// names.
    pub registration_key: XOnlyPublicKey,
}

/// Bond claims signed by the owner key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondProof {
    /// The claims.
    pub claims: BondClaims,
    /// BIP-340 signature by `claims.owner` over [`BondClaims::digest`].
    pub signature: schnorr::Signature,
}

/// A proof that checked out: the bond, its confirmations and the stake it gives now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBond {
    /// The claims (now known true).
    pub claims: BondClaims,
    /// The bond's script terms.
    pub bond: Bond,
    /// Its confirmations when checked.
    pub confirmations: u32,
    /// The stake it gives (its amount; the check fails when it would give none).
    pub stake: Amount,
    /// The last confirmation count at which it still counts: re-check before then.
    pub counts_until_confirmations: u32,
}

/// Why a bond proof is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The signature is not the owner's over these claims (tampered, or signed by another key).
    #[error("the proof's signature does not verify under owner key {}", hex::encode(.owner))]
    BadSignature {
        /// The claimed owner (x-only key bytes).
        owner: [u8; 32],
    },
    /// Signing with a key that is not the claims' owner key.
    #[error("signing key {} is not the bond's owner key {}", hex::encode(.signer), hex::encode(.owner))]
    NotOwnerKey {
        /// The key given (x-only key bytes).
        signer: [u8; 32],
        /// The claims' owner (x-only key bytes).
        owner: [u8; 32],
    },
    /// T is shorter than the federation accepts.
    #[error("timelock {timelock} is below the minimum {min}")]
    TimelockTooShort {
        /// The proof's T.
        timelock: u16,
        /// The policy's minimum.
        min: u16,
    },
    /// The bond script could not be built from the claims.
    #[error(transparent)]
    Bond(#[from] BondError),
    /// No unspent output at the outpoint: spent (withdrawn or slashed) or never created.
    #[error("no unspent output at {outpoint}: spent, or never created")]
    NotFound {
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// The output exists but is not a bond of this owner key, timelock and federation.
    #[error("{outpoint} pays to {found}, not to the bond script {expected} of owner {}, T = {timelock} and this federation", hex::encode(.owner))]
    ScriptMismatch {
        /// The outpoint.
        outpoint: OutPoint,
        /// The owner key claimed (x-only key bytes).
        owner: [u8; 32],
        /// T claimed.
        timelock: u16,
        /// The script the claims imply.
        expected: ScriptBuf,
        /// The output's script.
        found: ScriptBuf,
    },
    /// The output's value is not the amount claimed.
    #[error("{outpoint} holds {on_chain}, the proof claims {claimed}")]
    AmountMismatch {
        /// The outpoint.
        outpoint: OutPoint,
        /// The amount in the proof.
        claimed: Amount,
        /// The output's value.
        on_chain: Amount,
    },
    /// Smaller than the smallest bond the federation accepts.
    #[error("bond of {amount} is below the minimum {min}")]
    BelowMinimum {
        /// The bond's value.
        amount: Amount,
        /// The policy's minimum.
        min: Amount,
    },
    /// Not confirmed deeply enough yet.
    #[error("{confirmations} confirmations, {required} needed before a bond counts")]
    NotConfirmed {
        /// Confirmations now.
        confirmations: u32,
        /// The policy's minimum.
        required: u32,
    },
    /// Too close to (or past) the timelock: the owner could withdraw soon, so it no longer counts.
    #[error("{confirmations} confirmations: a bond with T = {timelock} counts only up to {last_counting} (margin {margin})")]
    Expired {
        /// Confirmations now.
        confirmations: u32,
        /// The bond's T.
        timelock: u16,
        /// The policy's margin.
        margin: u16,
        /// The last confirmation count that counts (0 if none).
        last_counting: u32,
    },
}

fn role_byte(role: Role) -> u8 {
    match role {
        Role::Coordinator => 0,
        Role::Miner => 1,
        Role::Validator => 2,
        Role::Client => 3,
    }
}

fn role_from_byte(b: u8) -> Result<Role, DecodeError> {
    Ok(match b {
        0 => Role::Coordinator,
        1 => Role::Miner,
        2 => Role::Validator,
        3 => Role::Client,
        tag => return Err(DecodeError::UnknownTag { field: "role", tag }),
    })
}

impl BondClaims {
    /// The canonical encoding of the claims (the proof's bytes before the signature).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(PROOF_LEN - 64);
        b.extend(MAGIC);
        b.push(VERSION);
        b.extend(self.outpoint.txid.to_byte_array());
        b.extend(self.outpoint.vout.to_be_bytes());
        b.extend(self.amount.to_sat().to_be_bytes());
        b.extend(self.timelock.to_be_bytes());
        b.extend(self.owner.serialize());
        b.push(role_byte(self.role));
        b.extend(self.node_id.serialize());
        b.extend(self.registration_key.serialize());
        b
    }

    /// What the owner signs: the tagged hash `"boltensor/bond-proof/v1"` of [`Self::canonical_bytes`].
    pub fn digest(&self) -> [u8; 32] {
        tagged_hash(TAG, &self.canonical_bytes())
    }

    /// Signs with the owner key (BIP-340, no auxiliary randomness).
    pub fn sign(self, owner: &Keypair) -> Result<BondProof, ProofError> {
        let signer = owner.x_only_public_key().0;
        if signer != self.owner {
            return Err(ProofError::NotOwnerKey {
                signer: signer.serialize(),
                owner: self.owner.serialize(),
            });
        }
        let signature =
            SECP256K1.sign_schnorr_no_aux_rand(&Message::from_digest(self.digest()), owner);
        Ok(BondProof {
            claims: self,
            signature,
        })
    }
}

impl BondProof {
    /// The canonical encoding ([`PROOF_LEN`] bytes, see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.claims.canonical_bytes();
        b.extend(self.signature.serialize());
        b
    }

    /// Decodes [`Self::encode`]'s bytes. Total: any input gives a proof or an error. Does not check the
    /// signature ([`Self::verify_signature`], [`verify_bond_proof`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.magic(MAGIC, "bond proof")?;
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let txid = Txid::from_byte_array(r.array("txid")?);
        let vout = r.u32("vout")?;
        let amount = r.u64("amount")?;
        if amount > Amount::MAX_MONEY.to_sat() {
            return Err(DecodeError::OutOfRange {
                field: "amount",
                reason: "above 21 million BTC",
            });
        }
        let timelock = r.u16("timelock")?;
        let owner = r.x_only("owner key")?;
        let role = role_from_byte(r.u8("role")?)?;
        let node_id = r.public_key("node id")?;
        let registration_key = r.x_only("registration key")?;
        let signature = r.signature("signature")?;
        r.finish()?;
        Ok(BondProof {
            claims: BondClaims {
                outpoint: OutPoint { txid, vout },
                amount: Amount::from_sat(amount),
                timelock,
                owner,
                role,
                node_id,
                registration_key,
            },
            signature,
        })
    }

    /// Hex of [`Self::encode`] (for configs, CLIs and JSON).
    pub fn to_hex(&self) -> String {
        hex::encode(self.encode())
    }

    /// Decodes hex of [`Self::encode`].
    pub fn from_hex(s: &str) -> Result<Self, DecodeError> {
        let bytes = hex::decode(s.trim()).map_err(|_| DecodeError::OutOfRange {
            field: "bond proof",
            reason: "not hex",
        })?;
        Self::decode(&bytes)
    }

    /// Checks the owner's signature over the claims.
    pub fn verify_signature(&self) -> Result<(), ProofError> {
        SECP256K1
            .verify_schnorr(
                &self.signature,
                &Message::from_digest(self.claims.digest()),
                &self.claims.owner,
            )
            .map_err(|_| ProofError::BadSignature {
                owner: self.claims.owner.serialize(),
            })
    }
}

/// Checks a bond proof against `policy` and the chain: the owner's signature, T, the output unspent, its
/// script the bond of this owner, T and the policy's federation, its value the amount claimed and above the
/// minimum, and its age within the counting window. Returns the stake it gives now.
pub fn verify_bond_proof(
    proof: &BondProof,
    policy: &BondPolicy,
    chain: &impl ChainView,
) -> Result<VerifiedBond, ProofError> {
    proof.verify_signature()?;
    let c = &proof.claims;
    if c.timelock < policy.min_timelock() {
        return Err(ProofError::TimelockTooShort {
            timelock: c.timelock,
            min: policy.min_timelock(),
        });
    }
    let bond = Bond::new(c.owner, policy.federation().clone(), c.timelock)?;
    let (txout, confirmations) = chain.tx_out(&c.outpoint).ok_or(ProofError::NotFound {
        outpoint: c.outpoint,
    })?;
    let expected = bond.script_pubkey();
    if txout.script_pubkey != expected {
        return Err(ProofError::ScriptMismatch {
            outpoint: c.outpoint,
            owner: c.owner.serialize(),
            timelock: c.timelock,
            expected,
            found: txout.script_pubkey,
        });
    }
    if txout.value != c.amount {
        return Err(ProofError::AmountMismatch {
            outpoint: c.outpoint,
            claimed: c.amount,
            on_chain: txout.value,
        });
    }
    if c.amount < policy.min_amount() {
        return Err(ProofError::BelowMinimum {
            amount: c.amount,
            min: policy.min_amount(),
        });
    }
    if confirmations < policy.min_confirmations() {
        return Err(ProofError::NotConfirmed {
            confirmations,
            required: policy.min_confirmations(),
        });
    }
    let last = policy.last_counting_confirmations(c.timelock);
    match last {
        Some(last) if confirmations <= last => Ok(VerifiedBond {
            claims: c.clone(),
            bond,
            confirmations,
            stake: c.amount,
            counts_until_confirmations: last,
        }),
        _ => Err(ProofError::Expired {
            confirmations,
            timelock: c.timelock,
            margin: policy.margin(),
            last_counting: last.unwrap_or(0),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::test_keys;
    use crate::Federation;

    type Setup = (
        Vec<Keypair>,
        BondPolicy,
        BondProof,
        BTreeMap<OutPoint, (TxOut, u32)>,
    );

    fn setup() -> Setup {
        let keys = test_keys(6);
        let fed = Federation::new(
            keys[2..].iter().map(|k| k.x_only_public_key().0).collect(),
            3,
        )
        .expect("valid");
        let policy =
            BondPolicy::new(fed.clone(), 100, 10, 1, Amount::from_sat(10_000)).expect("valid");
        let owner = keys[0].x_only_public_key().0;
        let bond = Bond::new(owner, fed, 144).expect("valid");
        let outpoint = OutPoint {
            txid: Txid::from_byte_array([7; 32]),
            vout: 1,
        };
        let claims = BondClaims {
            outpoint,
            amount: Amount::from_sat(50_000),
            timelock: 144,
            owner,
            role: Role::Validator,
            node_id: keys[1].public_key(),
            registration_key: keys[1].x_only_public_key().0,
        };
        let proof = claims.sign(&keys[0]).expect("owner key");
        let mut chain = BTreeMap::new();
        chain.insert(
            outpoint,
            (
                TxOut {
                    value: Amount::from_sat(50_000),
                    script_pubkey: bond.script_pubkey(),
                },
                6,
            ),
        );
        (keys, policy, proof, chain)
    }

    #[test]
    fn round_trip_and_verify() {
        let (_, policy, proof, chain) = setup();
        let bytes = proof.encode();
        assert_eq!(bytes.len(), PROOF_LEN);
        assert_eq!(BondProof::decode(&bytes), Ok(proof.clone()));
        assert_eq!(BondProof::from_hex(&proof.to_hex()), Ok(proof.clone()));
        let v = verify_bond_proof(&proof, &policy, &chain).expect("valid");
        assert_eq!(v.stake, Amount::from_sat(50_000));
        assert_eq!(v.counts_until_confirmations, 133);
    }

    #[test]
    fn refusals() {
        let (keys, policy, proof, mut chain) = setup();
        let mut tampered = proof.clone();
        tampered.claims.registration_key = keys[5].x_only_public_key().0;
        assert!(matches!(
            verify_bond_proof(&tampered, &policy, &chain),
            Err(ProofError::BadSignature { .. })
        ));
        assert!(matches!(
            proof.claims.clone().sign(&keys[1]),
            Err(ProofError::NotOwnerKey { .. })
        ));
        let op = proof.claims.outpoint;
        chain.get_mut(&op).expect("inserted").1 = 134;
        assert!(matches!(
            verify_bond_proof(&proof, &policy, &chain),
            Err(ProofError::Expired {
                last_counting: 133,
                ..
            })
        ));
        chain.get_mut(&op).expect("inserted").1 = 0;
        assert!(matches!(
            verify_bond_proof(&proof, &policy, &chain),
            Err(ProofError::NotConfirmed { .. })
        ));
        chain.clear();
        assert!(matches!(
            verify_bond_proof(&proof, &policy, &chain),
            Err(ProofError::NotFound { .. })
        ));
    }

    #[test]
    fn decode_errors_name_the_problem() {
        let (_, _, proof, _) = setup();
        let bytes = proof.encode();
        assert_eq!(
            BondProof::decode(&bytes[..100]),
            Err(DecodeError::Truncated { field: "node id" })
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(BondProof::decode(&long), Err(DecodeError::TrailingBytes(1)));
        let mut bad = bytes.clone();
        bad[4] = 2;
        assert_eq!(
            BondProof::decode(&bad),
            Err(DecodeError::UnsupportedVersion(2))
        );
        let mut bad = bytes;
        bad[83] = 9;
        assert_eq!(
            BondProof::decode(&bad),
            Err(DecodeError::UnknownTag {
                field: "role",
                tag: 9
            })
        );
    }
}
