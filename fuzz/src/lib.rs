//! Fixtures shared by the fuzz targets and the seed generator: deterministic keys, a 4-member federation,
//! a small replicated state with registered, bonded and weighted neurons, and a signed epoch of it.
//! Everything here is deterministic, so a crash input reproduces against the same fixtures.

use std::collections::BTreeMap;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, PublicKey, SecretKey, SECP256K1};
use bitcoin::{Amount, OutPoint, Txid};
use boltensor_contracts::{BondClaims, BondProof};
use boltensor_coordinator::config::{local_federation, ConsensusTiming};
use boltensor_coordinator::engine::session_header;
use boltensor_coordinator::items::{Attestation, Registration};
use boltensor_coordinator::keychain::Keychain;
use boltensor_coordinator::params::Params;
use boltensor_coordinator::store::SignedEpoch;
use boltensor_coordinator::{ConsensusItem, FederationConfig, State};
use boltensor_protocol::weights::{SignedWeights, WeightVector};
use boltensor_protocol::Role;

/// The key the fuzzed miner signs its L402 tokens and credit notes with.
pub const L402_KEY: [u8; 32] = [7; 32];

/// Deterministic key pair `i` (secret key `i + 2`; never 0 or 1).
pub fn keypair(i: u64) -> Keypair {
    let mut sk = [0u8; 32];
    sk[24..].copy_from_slice(&(i + 2).to_be_bytes());
    Keypair::from_secret_key(
        SECP256K1,
        &SecretKey::from_slice(&sk).expect("a small non-zero secret key"),
    )
}

/// The x-only key of [`keypair`] `i`.
pub fn xonly(i: u64) -> [u8; 32] {
    keypair(i).x_only_public_key().0.serialize()
}

/// A Lightning node id (compressed public key) for neuron `i`.
pub fn node_id(i: u64) -> PublicKey {
    keypair(1000 + i).public_key()
}

/// The fuzzed federation: 4 members on loopback, default parameters.
pub fn federation() -> (FederationConfig, Vec<Keypair>) {
    local_federation(
        Some(b"boltensor-fuzz"),
        4,
        17_000,
        ConsensusTiming::default(),
        Params::default(),
    )
}

/// A bond proof for neuron `i` (owner key `500 + i`), signed.
pub fn bond_proof(i: u64, role: Role, amount_sat: u64) -> BondProof {
    let owner = keypair(500 + i);
    BondClaims {
        outpoint: OutPoint {
            txid: Txid::from_byte_array([i as u8 + 1; 32]),
            vout: i as u32,
        },
        amount: Amount::from_sat(amount_sat),
        timelock: 1008,
        owner: owner.x_only_public_key().0,
        role,
        node_id: node_id(i),
        registration_key: keypair(i).x_only_public_key().0,
    }
    .sign(&owner)
    .expect("signed by its owner key")
}

/// Neuron `i`'s signed registration (sequence 1; a miner gets an API URL and a model).
pub fn registration(i: u64, role: Role, bond: Option<&BondProof>) -> Registration {
    let mut r = Registration::new(
        role,
        keypair(i).x_only_public_key().0,
        node_id(i).to_string(),
        federation().0.id(),
    );
    r.sequence = 1;
    if role == Role::Miner {
        r.api = Some(format!("http://127.0.0.1:{}", 9000 + i));
        r.models = vec!["all-MiniLM-L6-v2".into()];
    }
    r.bond = bond.map(BondProof::to_hex);
    r.sign_node_with_key(&keypair(1000 + i).secret_key())
        .sign(&keypair(i))
}

/// Validator `i`'s signed weights for `epoch` over miners `miners` (weight = 1000 × (miner + 1) + salt).
pub fn weights(i: u64, epoch: u64, miners: &[u64], salt: u16) -> SignedWeights {
    WeightVector {
        epoch,
        validator: xonly(i),
        weights: miners
            .iter()
            .map(|&m| {
                (
                    node_id(m).to_string(),
                    (1000 * (m as u16 + 1)).wrapping_add(salt),
                )
            })
            .collect::<BTreeMap<_, _>>(),
    }
    .sign(&keypair(i))
}

/// Applies `item` as `peer`, panicking if the state refuses it (fixtures only).
fn apply(state: &mut State, item: ConsensusItem, peer: usize) {
    if let Err(e) = state.apply(&item, peer) {
        panic!("fixture item {} refused: {e}", item.kind());
    }
}

/// Neurons in [`sample_state`]: miners 0 and 1, validators 2 and 3 (3 bonded and attested).
pub const MINERS: [u64; 2] = [0, 1];
/// See [`MINERS`].
pub const VALIDATORS: [u64; 2] = [2, 3];

/// A state as a running federation has it: two miners (one bonded), two validators (both bonded and
/// attested by a threshold of members), both validators' weights for the current epoch.
pub fn sample_state() -> State {
    let (fed, _) = federation();
    let mut st = State::genesis(fed.params.clone(), fed.n());
    st.member_keys = fed.keys();
    for i in MINERS {
        let bond = (i == 1).then(|| bond_proof(i, Role::Miner, 50_000));
        apply(
            &mut st,
            ConsensusItem::Register(registration(i, Role::Miner, bond.as_ref())),
            0,
        );
    }
    for i in VALIDATORS {
        let bond = bond_proof(i, Role::Validator, 100_000 * (i + 1));
        apply(
            &mut st,
            ConsensusItem::Register(registration(i, Role::Validator, Some(&bond))),
            1,
        );
        for member in 0..3 {
            apply(
                &mut st,
                ConsensusItem::Attest(Attestation {
                    key: keypair(i).x_only_public_key().0,
                    outpoint: bond.claims.outpoint.to_string(),
                    ok: true,
                }),
                member,
            );
        }
    }
    for v in VALIDATORS {
        let epoch = st.epoch;
        apply(
            &mut st,
            ConsensusItem::Weights(weights(v, epoch, &MINERS, v as u16)),
            2,
        );
    }
    st
}

/// [`sample_state`]'s epoch result, signed by every member of [`federation`] as the engine signs it.
pub fn sample_epoch() -> SignedEpoch {
    let (fed, keys) = federation();
    let st = sample_state();
    let result = st.epoch_result(fed.id(), fed.max_faulty(), fed.n());
    let items_digest = [9u8; 32];
    let session = st.session;
    let header = session_header(&fed.id(), session, &items_digest, Some(result.digest()));
    let signatures = keys
        .iter()
        .enumerate()
        .map(|(i, kp)| {
            let kc = Keychain::new(i, fed.keys(), *kp, fed.id(), fed.threshold());
            (i, hex::encode(kc.sign_bytes(&header).0))
        })
        .collect();
    SignedEpoch {
        result,
        session,
        items_digest: hex::encode(items_digest),
        signatures,
    }
}
