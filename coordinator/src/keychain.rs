//! The aleph-bft keychain: each coordinator signs units with its BIP-340 key; messages are tagged with
//! the federation id so that a signature made for one federation is worthless in another.

use aleph_bft::{NodeCount, NodeIndex, NodeMap};
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{schnorr, Keypair, Message, XOnlyPublicKey, SECP256K1};
use parity_scale_codec::{Decode, Encode};

/// A BIP-340 signature as aleph-bft carries it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Sig(pub [u8; 64]);

/// The hash aleph-bft identifies units with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sha256Hasher;

impl aleph_bft::Hasher for Sha256Hasher {
    type Hash = [u8; 32];

    fn hash(s: &[u8]) -> [u8; 32] {
        sha256::Hash::hash(s).to_byte_array()
    }
}

/// One member's view of the federation's keys plus its own key pair.
#[derive(Clone)]
pub struct Keychain {
    index: usize,
    keys: Vec<XOnlyPublicKey>,
    keypair: Keypair,
    tag: [u8; 32],
    threshold: usize,
}

impl std::fmt::Debug for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keychain")
            .field("index", &self.index)
            .field("members", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Keychain {
    /// `tag` is the federation id; `threshold` the signatures a multisignature needs.
    pub fn new(
        index: usize,
        keys: Vec<XOnlyPublicKey>,
        keypair: Keypair,
        tag: [u8; 32],
        threshold: usize,
    ) -> Self {
        Keychain {
            index,
            keys,
            keypair,
            tag,
            threshold,
        }
    }

    fn message(&self, msg: &[u8]) -> Message {
        tagged_message(&self.tag, msg)
    }

    /// Signs `msg` (tagged) with this member's key.
    pub fn sign_bytes(&self, msg: &[u8]) -> Sig {
        let sig = SECP256K1.sign_schnorr_no_aux_rand(&self.message(msg), &self.keypair);
        Sig(*sig.as_ref())
    }

    /// Checks member `index`'s signature over `msg` (tagged).
    pub fn verify_bytes(&self, msg: &[u8], sig: &Sig, index: usize) -> bool {
        let Some(key) = self.keys.get(index) else {
            return false;
        };
        let Ok(sig) = schnorr::Signature::from_slice(&sig.0) else {
            return false;
        };
        SECP256K1
            .verify_schnorr(&sig, &self.message(msg), key)
            .is_ok()
    }

    /// This member's index.
    pub fn own_index(&self) -> usize {
        self.index
    }
}

impl aleph_bft::Index for Keychain {
    fn index(&self) -> NodeIndex {
        NodeIndex(self.index)
    }
}

impl aleph_bft::Keychain for Keychain {
    type Signature = Sig;

    fn node_count(&self) -> NodeCount {
        NodeCount(self.keys.len())
    }

    fn sign(&self, msg: &[u8]) -> Sig {
        self.sign_bytes(msg)
    }

    fn verify(&self, msg: &[u8], sgn: &Sig, index: NodeIndex) -> bool {
        self.verify_bytes(msg, sgn, index.0)
    }
}

impl aleph_bft::MultiKeychain for Keychain {
    type PartialMultisignature = NodeMap<Sig>;

    fn bootstrap_multi(&self, signature: &Sig, index: NodeIndex) -> NodeMap<Sig> {
        let mut partial = NodeMap::with_size(NodeCount(self.keys.len()));
        partial.insert(index, signature.clone());
        partial
    }

    fn is_complete(&self, msg: &[u8], partial: &NodeMap<Sig>) -> bool {
        partial.iter().count() >= self.threshold
            && partial.iter().all(|(i, s)| self.verify_bytes(msg, s, i.0))
    }
}

fn tagged_message(federation: &[u8; 32], msg: &[u8]) -> Message {
    let mut e = sha256::Hash::engine();
    e.input(b"boltensor/aleph/v1");
    e.input(federation);
    e.input(msg);
    Message::from_digest(sha256::Hash::from_engine(e).to_byte_array())
}

/// Checks a member's signature over `msg` as [`Keychain`] makes them (tagged with the federation id).
pub fn verify_tagged(
    federation: &[u8; 32],
    msg: &[u8],
    sig: &schnorr::Signature,
    key: &XOnlyPublicKey,
) -> bool {
    SECP256K1
        .verify_schnorr(sig, &tagged_message(federation, msg), key)
        .is_ok()
}

/// How many of `signatures` (member index → hex BIP-340 signature) are valid members' signatures over `msg`.
pub fn count_valid(
    federation: &[u8; 32],
    keys: &[XOnlyPublicKey],
    msg: &[u8],
    signatures: &std::collections::BTreeMap<usize, String>,
) -> usize {
    signatures
        .iter()
        .filter(|(m, s)| {
            let (Some(key), Some(sig)) = (
                keys.get(**m),
                hex::decode(s)
                    .ok()
                    .and_then(|b| schnorr::Signature::from_slice(&b).ok()),
            ) else {
                return false;
            };
            verify_tagged(federation, msg, &sig, key)
        })
        .count()
}
