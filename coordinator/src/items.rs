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
    /// A validator's commitment to its weight vector for an epoch (commit-reveal, `commit_reveal` = 1).
    Commit(WeightsCommit),
    /// The vector a validator committed to in the previous epoch, with its salt (commit-reveal).
    Reveal(WeightsReveal),
    /// A member's forwarding income so far (only counted from members, for themselves): what funds the
    /// epoch pool when `pool_fee_share_ppm` > 0 (ADR 0015).
    Fees(FeeReport),
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
            ConsensusItem::Commit(_) => "commit",
            ConsensusItem::Reveal(_) => "reveal",
            ConsensusItem::Fees(_) => "fees",
        }
    }
}

/// A registration: who the registrant is and how to reach and pay it.
///
/// Signed twice over [`Registration::digest`] (everything but the two signatures): by the registration
/// key (`signature`, BIP-340) and by the Lightning node behind `node_id` (`node_signature`, a Lightning
/// signed message over [`Registration::node_message`]), so nobody can register a node id it does not hold.
/// The digest binds the federation (`federation`: an item signed for one federation is worthless in
/// another) and a per-key `sequence` that must exceed every earlier item of the same key (the state
/// remembers the last one, even after a deregistration): an old registration or deregistration cannot be
/// replayed.
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
    /// The federation id (hex, [`crate::FederationConfig::id`]) this registration is for.
    pub federation: String,
    /// Strictly increasing per registration key over its registrations and deregistrations (registrants
    /// use the Unix time in milliseconds: [`sequence_now`]).
    pub sequence: u64,
    /// The node's Lightning signed message (zbase32) over [`Registration::node_message`].
    pub node_signature: String,
    /// BIP-340 signature by `key` over [`Registration::digest`] (hex).
    pub signature: String,
}

/// A sequence number for a new registration or deregistration: the Unix time in milliseconds (strictly
/// increasing across a registrant's restarts without storing a counter).
pub fn sequence_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Registration {
    /// An unsigned registration of `key` with node `node_id` for federation `federation`, sequence
    /// [`sequence_now`]; set the optional fields, then [`Registration::sign_node`] and
    /// [`Registration::sign`].
    pub fn new(role: Role, key: XOnlyPublicKey, node_id: String, federation: [u8; 32]) -> Self {
        Registration {
            role,
            key,
            node_id,
            api: None,
            models: Vec::new(),
            payout_offer: None,
            bond: None,
            federation: hex::encode(federation),
            sequence: sequence_now(),
            node_signature: String::new(),
            signature: String::new(),
        }
    }

    /// The signed digest: everything but the two signatures.
    pub fn digest(&self) -> [u8; 32] {
        let mut unsigned = self.clone();
        unsigned.signature = String::new();
        unsigned.node_signature = String::new();
        let mut e = sha256::Hash::engine();
        e.input(b"boltensor/registration/v2");
        e.input(&serde_json::to_vec(&unsigned).expect("serialisable"));
        sha256::Hash::from_engine(e).to_byte_array()
    }

    /// The message the Lightning node signs: `boltensor registration <digest hex>`.
    pub fn node_message(&self) -> Vec<u8> {
        format!("boltensor registration {}", hex::encode(self.digest())).into_bytes()
    }

    /// Has the node sign: `sign` is its message signer (`LnNode::sign_message`, or
    /// `boltensor_ln::sign_message_with_key` with the node's secret key).
    pub fn sign_node(mut self, sign: impl FnOnce(&[u8]) -> String) -> Self {
        self.node_signature = sign(&self.node_message());
        self
    }

    /// Has the node sign with its secret key (tests and tools that hold the node key itself).
    pub fn sign_node_with_key(self, node_secret: &bitcoin::secp256k1::SecretKey) -> Self {
        self.sign_node(|m| boltensor_ln::sign_message_with_key(m, node_secret))
    }

    /// Signs with `keypair` (which must be `key`; set before [`Registration::sign_node`]).
    pub fn sign(mut self, keypair: &Keypair) -> Self {
        self.key = keypair.x_only_public_key().0;
        let sig = SECP256K1.sign_schnorr_no_aux_rand(&Message::from_digest(self.digest()), keypair);
        self.signature = hex::encode(sig.as_ref());
        self
    }

    /// Checks both signatures (the node's against `node_id`).
    pub fn verify(&self) -> Result<(), String> {
        verify_sig(&self.signature, &self.digest(), &self.key)?;
        let node = node_key(&self.node_id)?;
        if !boltensor_ln::verify_message(&self.node_message(), &self.node_signature, &node) {
            return Err("the node signature does not verify for node_id".into());
        }
        Ok(())
    }
}

/// Parses a Lightning node id (hex compressed public key).
pub fn node_key(node_id: &str) -> Result<bitcoin::secp256k1::PublicKey, String> {
    bitcoin::secp256k1::PublicKey::from_slice(
        &hex::decode(node_id).map_err(|_| "node id is not hex")?,
    )
    .map_err(|_| "node id is not a public key".into())
}

/// A registrant leaving. Like a registration it names the federation and carries the key's next
/// sequence number, so it cannot be replayed against a later registration of the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deregistration {
    /// The registration key.
    pub key: XOnlyPublicKey,
    /// The federation id (hex).
    pub federation: String,
    /// Greater than the sequence of every earlier item of `key`.
    pub sequence: u64,
    /// BIP-340 signature by `key` over
    /// `SHA-256("boltensor/deregister/v2" ‖ federation ‖ key ‖ sequence as u64 BE)` (hex).
    pub signature: String,
}

impl Deregistration {
    fn digest(federation: &str, key: &XOnlyPublicKey, sequence: u64) -> [u8; 32] {
        let mut e = sha256::Hash::engine();
        e.input(b"boltensor/deregister/v2");
        e.input(federation.as_bytes());
        e.input(&key.serialize());
        e.input(&sequence.to_be_bytes());
        sha256::Hash::from_engine(e).to_byte_array()
    }

    /// A signed deregistration for `federation`, sequence [`sequence_now`].
    pub fn new(keypair: &Keypair, federation: [u8; 32]) -> Self {
        Self::with_sequence(keypair, federation, sequence_now())
    }

    /// A signed deregistration with the given sequence.
    pub fn with_sequence(keypair: &Keypair, federation: [u8; 32], sequence: u64) -> Self {
        let key = keypair.x_only_public_key().0;
        let federation = hex::encode(federation);
        let digest = Self::digest(&federation, &key, sequence);
        let sig = SECP256K1.sign_schnorr_no_aux_rand(&Message::from_digest(digest), keypair);
        Deregistration {
            key,
            federation,
            sequence,
            signature: hex::encode(sig.as_ref()),
        }
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), String> {
        verify_sig(
            &self.signature,
            &Self::digest(&self.federation, &self.key, self.sequence),
            &self.key,
        )
    }
}

/// A validator's commitment to the weight vector it reveals in the next epoch (subtensor's commit-reveal):
/// `hash` = [`WeightsCommit::commitment`] of the vector and a secret salt. Until the reveal nobody can
/// read the vector, so a validator that copies others' weights only ever copies last epoch's.
///
/// Signed by the validator over [`WeightsCommit::digest`], which binds the federation (a commit cannot be
/// replayed into another federation to take the validator's commit slot there) and the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsCommit {
    /// The validator's registration key (x-only, hex).
    pub validator: XOnlyPublicKey,
    /// The federation id (hex).
    pub federation: String,
    /// The epoch the committed vector is for (revealed while the next epoch collects).
    pub epoch: u64,
    /// The commitment, hex.
    pub hash: String,
    /// BIP-340 signature by `validator`, hex.
    pub signature: String,
}

impl WeightsCommit {
    /// SHA-256 over a domain tag, the vector's digest and the salt: what a commit holds.
    pub fn commitment(
        vector: &boltensor_protocol::weights::WeightVector,
        salt: &[u8; 32],
    ) -> [u8; 32] {
        let mut e = sha256::Hash::engine();
        e.input(b"boltensor/weights-commitment/v1");
        e.input(&vector.digest());
        e.input(salt);
        sha256::Hash::from_engine(e).to_byte_array()
    }

    fn digest(validator: &XOnlyPublicKey, federation: &str, epoch: u64, hash: &str) -> [u8; 32] {
        let mut e = sha256::Hash::engine();
        e.input(b"boltensor/weights-commit/v1");
        e.input(&validator.serialize());
        e.input(federation.as_bytes());
        e.input(&epoch.to_be_bytes());
        e.input(hash.as_bytes());
        sha256::Hash::from_engine(e).to_byte_array()
    }

    /// A commit of `vector` (for `vector.epoch`) with `salt`, signed by the validator `keypair`.
    pub fn new(
        keypair: &Keypair,
        federation: [u8; 32],
        vector: &boltensor_protocol::weights::WeightVector,
        salt: &[u8; 32],
    ) -> Self {
        let validator = keypair.x_only_public_key().0;
        let federation = hex::encode(federation);
        let hash = hex::encode(Self::commitment(vector, salt));
        let digest = Self::digest(&validator, &federation, vector.epoch, &hash);
        let sig = SECP256K1.sign_schnorr_no_aux_rand(&Message::from_digest(digest), keypair);
        WeightsCommit {
            validator,
            federation,
            epoch: vector.epoch,
            hash,
            signature: hex::encode(sig.as_ref()),
        }
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), String> {
        verify_sig(
            &self.signature,
            &Self::digest(&self.validator, &self.federation, self.epoch, &self.hash),
            &self.validator,
        )
    }
}

/// A reveal: the signed vector committed to and the salt (hex) that opens the commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsReveal {
    /// The vector, signed as plain weights are.
    pub weights: SignedWeights,
    /// The salt, hex (32 bytes).
    pub salt: String,
}

impl WeightsReveal {
    /// The commitment this reveal opens (hex), or why it is malformed.
    pub fn commitment(&self) -> Result<String, String> {
        let salt: [u8; 32] = hex::decode(&self.salt)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the salt is not 32 bytes of hex")?;
        Ok(hex::encode(WeightsCommit::commitment(
            &self.weights.vector,
            &salt,
        )))
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
    /// The member that paid it, when the pool is funded by fees and every member pays its share
    /// (`None`: the epoch's round-robin payer; not serialised then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<u16>,
}

/// A member's forwarding income: the forwarding fees its Lightning node has earned since its ledger
/// began ([`boltensor_ln::Forwards`]), a running total that only grows. The member is the item's
/// proposer (consensus authenticates it), so the report names no member and needs no signature of its
/// own. Each epoch's income of a member is its last report minus what earlier epochs accounted for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeReport {
    /// Fees earned, msat, in total.
    pub fee_msat: u64,
    /// Payments forwarded, in total.
    pub forwards: u64,
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
