//! Slashing on evidence. When consensus records an equivocation by a bonded validator, every member
//! builds the same slash transaction (the whole bond, less a fixed-rate fee, to the federation's treasury on
//! the bond's `multi_a` leaf), signs its input and proposes the signature as a consensus item. A signature is
//! accepted only if it verifies against that transaction's sighash under the proposing member's key; once
//! k = n − f are in consensus, any member assembles the witness, finalizes and broadcasts. bitcoind's
//! verdict is the only one that counts.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{schnorr, Keypair, Message, XOnlyPublicKey, SECP256K1};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::taproot::{LeafVersion, TapLeafHash};
use bitcoin::{Amount, FeeRate, OutPoint, Psbt, TapSighashType, Transaction, TxOut};
use boltensor_contracts::{
    finalize_psbt, sign_psbt, slash_psbt, Bond, BondPath, BondProof, Federation, Treasury, Utxo,
};
use serde::{Deserialize, Serialize};

/// The fee rate of slash transactions (fixed, so every member builds the same transaction).
pub const SLASH_FEE_SAT_PER_VB: u64 = 2;

/// A bond the federation is slashing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashJob {
    /// The offender's registration key.
    pub key: XOnlyPublicKey,
    /// The bond proof (hex) that names the bond.
    pub proof: String,
    /// member index → BIP-340 signature (hex) on the slash transaction's input.
    pub signatures: std::collections::BTreeMap<usize, String>,
}

/// The slash transaction of a bond, as every member builds it.
pub fn slash_tx(
    proof: &BondProof,
    federation_keys: &[XOnlyPublicKey],
) -> Result<(Psbt, Bond), String> {
    let fed = Federation::byzantine(federation_keys.to_vec()).map_err(|e| e.to_string())?;
    let bond = Bond::new(proof.claims.owner, fed.clone(), proof.claims.timelock)
        .map_err(|e| e.to_string())?;
    let treasury = Treasury::new(fed).map_err(|e| e.to_string())?;
    let utxo = Utxo {
        outpoint: proof.claims.outpoint,
        txout: TxOut {
            value: proof.claims.amount,
            script_pubkey: bond.script_pubkey(),
        },
    };
    let fee = FeeRate::from_sat_per_vb(SLASH_FEE_SAT_PER_VB).expect("a small fee rate");
    let psbt = slash_psbt(&bond, &utxo, &treasury, fee).map_err(|e| e.to_string())?;
    Ok((psbt, bond))
}

fn sighash(psbt: &Psbt, bond: &Bond, amount: Amount) -> Result<Message, String> {
    let prevout = TxOut {
        value: amount,
        script_pubkey: bond.script_pubkey(),
    };
    let leaf = TapLeafHash::from_script(
        &bond.leaf_script(BondPath::Federation),
        LeafVersion::TapScript,
    );
    let mut cache = SighashCache::new(&psbt.unsigned_tx);
    let h = cache
        .taproot_script_spend_signature_hash(
            0,
            &Prevouts::All(&[prevout]),
            leaf,
            TapSighashType::Default,
        )
        .map_err(|e| e.to_string())?;
    Ok(Message::from_digest(h.to_byte_array()))
}

/// Checks member `signer`'s signature on the slash transaction of `proof`.
pub fn verify_slash_signature(
    proof: &BondProof,
    federation_keys: &[XOnlyPublicKey],
    signer: usize,
    sig_hex: &str,
) -> Result<(), String> {
    let key = federation_keys.get(signer).ok_or("not a member")?;
    let (psbt, bond) = slash_tx(proof, federation_keys)?;
    let msg = sighash(&psbt, &bond, proof.claims.amount)?;
    let bytes = hex::decode(sig_hex).map_err(|_| "signature is not hex")?;
    let sig = schnorr::Signature::from_slice(&bytes).map_err(|e| e.to_string())?;
    SECP256K1
        .verify_schnorr(&sig, &msg, key)
        .map_err(|_| "the signature does not verify on the slash transaction".to_string())
}

/// This member's signature on the slash transaction of `proof`.
pub fn sign_slash(
    proof: &BondProof,
    federation_keys: &[XOnlyPublicKey],
    keypair: &Keypair,
) -> Result<String, String> {
    let (mut psbt, _) = slash_tx(proof, federation_keys)?;
    sign_psbt(&mut psbt, &[*keypair]).map_err(|e| e.to_string())?;
    let me = keypair.x_only_public_key().0;
    let sig = psbt.inputs[0]
        .tap_script_sigs
        .iter()
        .find(|((k, _), _)| *k == me)
        .map(|(_, s)| s.signature)
        .ok_or("this member's key is not in the bond's federation leaf")?;
    Ok(hex::encode(sig.as_ref()))
}

/// The final slash transaction from k member signatures.
pub fn assemble(
    proof: &BondProof,
    federation_keys: &[XOnlyPublicKey],
    signatures: &std::collections::BTreeMap<usize, String>,
) -> Result<Transaction, String> {
    let (mut psbt, bond) = slash_tx(proof, federation_keys)?;
    let leaf = TapLeafHash::from_script(
        &bond.leaf_script(BondPath::Federation),
        LeafVersion::TapScript,
    );
    for (m, s) in signatures {
        let key = federation_keys.get(*m).ok_or("not a member")?;
        let bytes = hex::decode(s).map_err(|_| "signature is not hex")?;
        let signature = schnorr::Signature::from_slice(&bytes).map_err(|e| e.to_string())?;
        psbt.inputs[0].tap_script_sigs.insert(
            (*key, leaf),
            bitcoin::taproot::Signature {
                signature,
                sighash_type: TapSighashType::Default,
            },
        );
    }
    finalize_psbt(psbt).map_err(|e| e.to_string())
}

/// The outpoint a proof names.
pub fn outpoint(proof: &BondProof) -> OutPoint {
    proof.claims.outpoint
}
