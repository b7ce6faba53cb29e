//! What the federation orders: consensus items, submitted by anyone through a member's API (or
//! proposed by a member itself) and processed identically by every member in the agreed order.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{schnorr, Keypair, Message, XOnlyPublicKey, SECP256K1};
use boltensor_protocol::weights::SignedWeights;
use boltensor_protocol::Role;
use serde::{Deserialize, Serialize};

/// The largest encoded item accepted (a registration with a bond proof is ~1 KiB; a weight vector
/// over 256 miners ~25 KiB).
pub const MAX_ITEM_BYTES: usize = 64 * 1024;

/// One consensus item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConsensusItem {
    /// A miner or validator joins (signed by its registration key).
    Register(Registration),
    /// A registrant leaves (signed by its registration key).
    Deregister(Deregistration),
    /// A validator's signed weights for an epoch.
    Weights(SignedWeights),
    /// A member's word on a bond in its own bitcoind's view (only counted from members).
    Attest(Attestation),
    /// A member's vote for a parameter change (only counted from members).
    Vote(ParamVote),
    /// A member's receipt for an epoch payout it made (only counted from that epoch's payer).
    Receipt(PayoutReceipt),
    /// A member's signature on the slash transaction of a bond under slashing (only counted from members,
    /// and only if it verifies on that transaction).
    SlashSignature(SlashSignature),
}

impl ConsensusItem {
    /// The item's wire form (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("items serialise")
    }

    /// Parses an item; refuses oversized input.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_ITEM_BYTES {
            return Err(format!(
                "item of {} bytes exceeds {MAX_ITEM_BYTES}",
                bytes.len()
            ));
        }
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ConsensusItem::Register(_) => "register",
            ConsensusItem::Deregister(_) => "deregister",
            ConsensusItem::Weights(_) => "weights",
            ConsensusItem::Attest(_) => "attest",
            ConsensusItem::Vote(_) => "vote",
            ConsensusItem::Receipt(_) => "receipt",
            ConsensusItem::SlashSignature(_) => "slash_signature",
        }
    }
}

/// A registration: who the registrant is and how to reach and pay it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Miner or validator.
    pub role: Role,
    /// The registration key (x-only, hex): signs this registration and, for a validator, its weights.
    pub key: XOnlyPublicKey,
    /// Its Lightning node id (hex): the id miners are weighted by and payouts go to.
    pub node_id: String,
    /// A miner's OpenAI-compatible API URL.
    #[serde(default)]
    pub api: Option<String>,
    /// A miner's models.
    #[serde(default)]
    pub models: Vec<String>,
    /// A BOLT12 offer or BOLT11-less keysend target for payouts (keysend to `node_id` if empty).
    #[serde(default)]
    pub payout_offer: Option<String>,
    /// The bond proof (hex, contracts crate encoding), if bonded.
    #[serde(default)]
    pub bond: Option<String>,
    /// BIP-340 signature by `key` over [`Registration::digest`] (hex).
    pub signature: String,
}

impl Registration {
    /// The signed digest: everything but the signature.
    pub fn digest(&self) -> [u8; 32] {
        let mut unsigned = self.clone();
        unsigned.signature = String::new();
        let mut e = sha256::Hash::engine();
        e.input(b"boltensor/registration/v1");
        e.input(&serde_json::to_vec(&unsigned).expect("serialisable"));
        sha256::Hash::from_engine(e).to_byte_array()
    }

    /// Signs with `keypair` (which must be `key`).
    pub fn sign(mut self, keypair: &Keypair) -> Self {
        self.key = keypair.x_only_public_key().0;
        let sig = SECP256K1.sign_schnorr_no_aux_rand(&Message::from_digest(self.digest()), keypair);
        self.signature = hex::encode(sig.as_ref());
        self
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), String> {
        verify_sig(&self.signature, &self.digest(), &self.key)
    }
}

/// A registrant leaving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deregistration {
    /// The registration key.
    pub key: XOnlyPublicKey,
    /// BIP-340 signature by `key` over `"boltensor/deregister/v1" ‖ key` (hex).
    pub signature: String,
}

impl Deregistration {
    fn digest(key: &XOnlyPublicKey) -> [u8; 32] {
        let mut e = sha256::Hash::engine();
        e.input(b"boltensor/deregister/v1");
        e.input(&key.serialize());
        sha256::Hash::from_engine(e).to_byte_array()
    }

    /// A signed deregistration.
    pub fn new(keypair: &Keypair) -> Self {
        let key = keypair.x_only_public_key().0;
        let sig =
            SECP256K1.sign_schnorr_no_aux_rand(&Message::from_digest(Self::digest(&key)), keypair);
        Deregistration {
            key,
            signature: hex::encode(sig.as_ref()),
        }
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), String> {
        verify_sig(&self.signature, &Self::digest(&self.key), &self.key)
    }
}

/// A member's view of a bond: unspent with this many confirmations, or gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// The registrant whose bond it is.
    pub key: XOnlyPublicKey,
    /// The bond's outpoint (`txid:vout`).
    pub outpoint: String,
    /// Whether the proof verified against the member's bitcoind (unspent, script and amount match,
    /// old enough to count and young enough to still count).
    pub ok: bool,
}

/// A member's vote for `name = value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamVote {
    /// The parameter.
    pub name: String,
    /// Its proposed value.
    pub value: u64,
}

/// Proof that an epoch payout was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutReceipt {
    /// The epoch paid.
    pub epoch: u64,
    /// The payee's registration key.
    pub key: XOnlyPublicKey,
    /// The amount, msat.
    pub msat: u64,
    /// The Lightning payment id / hash (hex).
    pub payment: String,
}

fn verify_sig(sig_hex: &str, digest: &[u8; 32], key: &XOnlyPublicKey) -> Result<(), String> {
    let bytes = hex::decode(sig_hex).map_err(|e| format!("signature is not hex: {e}"))?;
    let sig = schnorr::Signature::from_slice(&bytes).map_err(|e| e.to_string())?;
    SECP256K1
        .verify_schnorr(&sig, &Message::from_digest(*digest), key)
        .map_err(|_| "bad signature".to_string())
}

/// A member's signature on a slash transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlashSignature {
    /// The bond's outpoint (`txid:vout`).
    pub outpoint: String,
    /// BIP-340 signature (hex) on the slash transaction's input, by the proposing member.
    pub signature: String,
}
