//! The PSBTs that spend bonds and the treasury, and the signer/finalizer for them.
//!
//! Every builder makes a version-2 transaction, sets `witness_utxo` and fills the input from the descriptor
//! (`update_input_with_descriptor`: internal key, leaf scripts, control blocks, key origins), computes the
//! fee from the exact weight the chosen leaf's witness will have, and refuses outputs that would be dust.
//! Signers add BIP-340 signatures with [`sign_psbt`] (any number of rounds, any order; a PSBT can travel
//! between federation members); [`finalize_psbt`] assembles the witness with miniscript and checks it with
//! miniscript's interpreter before handing back the transaction to broadcast.

use std::collections::BTreeMap;

use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Keypair, XOnlyPublicKey, SECP256K1};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute, Amount, FeeRate, OutPoint, PrivateKey, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Witness,
};
use miniscript::descriptor::{DefiniteDescriptorKey, Descriptor};
use miniscript::psbt::PsbtExt;

use crate::{Bond, BondPath, Treasury};

/// An output being spent: where it is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utxo {
    /// Its outpoint.
    pub outpoint: OutPoint,
    /// Its value and script.
    pub txout: TxOut,
}

/// Why a spending PSBT cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpendError {
    /// The output does not pay to this bond's (or treasury's) script: wrong keys, federation or T.
    #[error("{outpoint} pays to {found}, not to the expected script {expected}")]
    WrongScript {
        /// The outpoint.
        outpoint: OutPoint,
        /// The script this descriptor gives.
        expected: ScriptBuf,
        /// The script the output has.
        found: ScriptBuf,
    },
    /// After the fee, an output would be below the dust limit (or negative).
    #[error("{available} available, fee {fee}: the output would be below the dust limit {dust}")]
    BelowDust {
        /// What is left to pay out before the fee.
        available: Amount,
        /// The fee.
        fee: Amount,
        /// The smallest output the destination script may have.
        dust: Amount,
    },
    /// A payout asks for more than the inputs hold.
    #[error("the outputs ({outputs}) and fee ({fee}) exceed the inputs ({inputs})")]
    Insufficient {
        /// Sum of the inputs.
        inputs: Amount,
        /// Sum of the requested outputs.
        outputs: Amount,
        /// The fee.
        fee: Amount,
    },
    /// Nothing to spend.
    #[error("no inputs to spend")]
    NoInputs,
    /// The fee rate times the weight overflows.
    #[error("fee rate {0} is absurd for this transaction")]
    FeeOverflow(FeeRate),
    /// miniscript could not fill the input (the message says why).
    #[error("cannot fill input {input} from the descriptor: {reason}")]
    Update {
        /// The input index.
        input: usize,
        /// miniscript's error.
        reason: String,
    },
}

/// Why signing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// A sighash could not be computed for an input (a PSBT not built by this crate, or a missing UTXO).
    #[error("cannot sign input {input}: {reason}")]
    Sighash {
        /// The input index.
        input: usize,
        /// The reason.
        reason: String,
    },
}

/// Why a PSBT cannot be finalized into a valid transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinalizeError {
    /// Some input has no satisfying witness: too few signatures (fewer than k on a federation path), a
    /// signature by a key the script does not name, or nSequence below T on the withdraw path.
    #[error("input(s) cannot be satisfied: {}", .0.join("; "))]
    Unsatisfied(Vec<String>),
    /// The finalized transaction fails miniscript's interpreter check.
    #[error("the finalized transaction does not verify: {0}")]
    Invalid(String),
}

/// The PSBT for the owner to take the bond back after T blocks: one input with nSequence T on the
/// withdraw leaf, one output to `to`, fee `fee_rate` on the exact final weight. Sign with the owner key.
///
/// bitcoind refuses it (`non-BIP68-final`) until the bond has T confirmations (the spend is then mined
/// at depth ≥ T).
pub fn withdraw_psbt(
    bond: &Bond,
    utxo: &Utxo,
    to: ScriptBuf,
    fee_rate: FeeRate,
) -> Result<Psbt, SpendError> {
    check_script(utxo, &bond.script_pubkey())?;
    single_output_psbt(
        bond.descriptor(),
        utxo,
        bond.withdraw_sequence(),
        bond.witness_size(BondPath::Withdraw),
        to,
        fee_rate,
    )
}

/// The PSBT for the federation to slash a bond: the whole bond, less the fee, to the treasury, on the
/// `multi_a` leaf. k members sign it with [`sign_psbt`]; valid at any time.
pub fn slash_psbt(
    bond: &Bond,
    utxo: &Utxo,
    treasury: &Treasury,
    fee_rate: FeeRate,
) -> Result<Psbt, SpendError> {
    cooperative_exit_psbt(bond, utxo, treasury.script_pubkey(), fee_rate)
}

/// A federation-path spend of a bond to any script: a slash when `to` is the treasury, a cooperative
/// early exit when `to` is the owner's (k members agree to release the bond before T).
pub fn cooperative_exit_psbt(
    bond: &Bond,
    utxo: &Utxo,
    to: ScriptBuf,
    fee_rate: FeeRate,
) -> Result<Psbt, SpendError> {
    check_script(utxo, &bond.script_pubkey())?;
    single_output_psbt(
        bond.descriptor(),
        utxo,
        Sequence::ENABLE_RBF_NO_LOCKTIME,
        bond.witness_size(BondPath::Federation),
        to,
        fee_rate,
    )
}

/// The PSBT for a treasury payout: `utxos` (all treasury outputs) pay `payees`; what is left after the fee
/// returns to the treasury if it is above dust (else it goes to the fee). k members sign it.
pub fn treasury_payout_psbt(
    treasury: &Treasury,
    utxos: &[Utxo],
    payees: Vec<TxOut>,
    fee_rate: FeeRate,
) -> Result<Psbt, SpendError> {
    if utxos.is_empty() {
        return Err(SpendError::NoInputs);
    }
    let spk = treasury.script_pubkey();
    for u in utxos {
        check_script(u, &spk)?;
    }
    for p in &payees {
        let dust = p.script_pubkey.minimal_non_dust();
        if p.value < dust {
            return Err(SpendError::BelowDust {
                available: p.value,
                fee: Amount::ZERO,
                dust,
            });
        }
    }
    let inputs: Amount = utxos.iter().map(|u| u.txout.value).sum();
    let outputs: Amount = payees.iter().map(|p| p.value).sum();
    let witness = treasury.witness_size() * utxos.len();
    let mut tx = unsigned_tx(
        utxos
            .iter()
            .map(|u| (u.outpoint, Sequence::ENABLE_RBF_NO_LOCKTIME))
            .collect(),
        payees,
    );
    // With change back to the treasury.
    tx.output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: spk.clone(),
    });
    let fee_with_change = fee(&tx, witness, fee_rate)?;
    let change = inputs
        .checked_sub(outputs)
        .and_then(|a| a.checked_sub(fee_with_change));
    match change {
        Some(c) if c >= spk.minimal_non_dust() => {
            if let Some(last) = tx.output.last_mut() {
                last.value = c;
            }
        }
        _ => {
            tx.output.pop();
            let fee = fee(&tx, witness, fee_rate)?;
            if inputs
                .checked_sub(outputs)
                .and_then(|a| a.checked_sub(fee))
                .is_none()
            {
                return Err(SpendError::Insufficient {
                    inputs,
                    outputs,
                    fee,
                });
            }
        }
    }
    let mut psbt = Psbt::from_unsigned_tx(tx).expect("a transaction without signatures");
    for (i, u) in utxos.iter().enumerate() {
        fill_input(&mut psbt, i, u, treasury.descriptor())?;
    }
    Ok(psbt)
}

/// Adds every BIP-340 signature `keys` can make on `psbt` (script-path signatures for the leaves a key is
/// named in, key-path signatures for an internal key): returns how many were added. Keys the PSBT does
/// not name add nothing. Signs with `SIGHASH_DEFAULT` over all inputs and outputs.
pub fn sign_psbt(psbt: &mut Psbt, keys: &[Keypair]) -> Result<usize, SignError> {
    let before = signature_count(psbt);
    let map: BTreeMap<XOnlyPublicKey, PrivateKey> = keys
        .iter()
        .map(|k| {
            (
                k.x_only_public_key().0,
                PrivateKey::new(k.secret_key(), bitcoin::NetworkKind::Test),
            )
        })
        .collect();
    psbt.sign(&map, SECP256K1).map_err(|(_, errors)| {
        let (input, e) = errors
            .into_iter()
            .next()
            .map(|(i, e)| (i, e.to_string()))
            .unwrap_or((0, "unknown".into()));
        SignError::Sighash { input, reason: e }
    })?;
    Ok(signature_count(psbt) - before)
}

/// Builds the final witnesses from the signatures collected (the cheapest satisfying leaf for each input),
/// checks the result with miniscript's interpreter and returns the transaction to broadcast.
pub fn finalize_psbt(mut psbt: Psbt) -> Result<Transaction, FinalizeError> {
    psbt.finalize_mut(SECP256K1).map_err(|errors| {
        FinalizeError::Unsatisfied(errors.iter().map(|e| e.to_string()).collect())
    })?;
    psbt.extract(SECP256K1)
        .map_err(|e| FinalizeError::Invalid(e.to_string()))
}

fn signature_count(psbt: &Psbt) -> usize {
    psbt.inputs
        .iter()
        .map(|i| i.tap_script_sigs.len() + usize::from(i.tap_key_sig.is_some()))
        .sum()
}

fn check_script(utxo: &Utxo, expected: &ScriptBuf) -> Result<(), SpendError> {
    if &utxo.txout.script_pubkey != expected {
        return Err(SpendError::WrongScript {
            outpoint: utxo.outpoint,
            expected: expected.clone(),
            found: utxo.txout.script_pubkey.clone(),
        });
    }
    Ok(())
}

pub(crate) fn unsigned_tx(inputs: Vec<(OutPoint, Sequence)>, outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: inputs
            .into_iter()
            .map(|(previous_output, sequence)| TxIn {
                previous_output,
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs,
    }
}

/// The fee for `tx` once its inputs carry `witness` weight units of witness (+2 for the segwit marker).
pub(crate) fn fee(
    tx: &Transaction,
    witness: usize,
    fee_rate: FeeRate,
) -> Result<Amount, SpendError> {
    let weight = tx.weight().to_wu() + 2 + witness as u64;
    fee_rate
        .fee_vb(weight.div_ceil(4))
        .ok_or(SpendError::FeeOverflow(fee_rate))
}

fn single_output_psbt(
    descriptor: &Descriptor<DefiniteDescriptorKey>,
    utxo: &Utxo,
    sequence: Sequence,
    witness: usize,
    to: ScriptBuf,
    fee_rate: FeeRate,
) -> Result<Psbt, SpendError> {
    let dust = to.minimal_non_dust();
    let mut tx = unsigned_tx(
        vec![(utxo.outpoint, sequence)],
        vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: to,
        }],
    );
    let fee = fee(&tx, witness, fee_rate)?;
    let available = utxo.txout.value;
    let value = available
        .checked_sub(fee)
        .filter(|v| *v >= dust)
        .ok_or(SpendError::BelowDust {
            available,
            fee,
            dust,
        })?;
    tx.output[0].value = value;
    let mut psbt = Psbt::from_unsigned_tx(tx).expect("a transaction without signatures");
    fill_input(&mut psbt, 0, utxo, descriptor)?;
    Ok(psbt)
}

fn fill_input(
    psbt: &mut Psbt,
    index: usize,
    utxo: &Utxo,
    descriptor: &Descriptor<DefiniteDescriptorKey>,
) -> Result<(), SpendError> {
    psbt.inputs[index].witness_utxo = Some(utxo.txout.clone());
    psbt.update_input_with_descriptor(index, descriptor)
        .map_err(|e| SpendError::Update {
            input: index,
            reason: e.to_string(),
        })
}
