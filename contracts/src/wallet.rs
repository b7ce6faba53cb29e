//! [`KeyWallet`]: the owner key's own single-key taproot wallet, `tr(owner)`, which funds bonds.
//!
//! Why this and not a BDK wallet synced from bitcoind or the role's ldk-node wallet (docs/contracts.md):
//! the owner key is already the one secret a bond needs, so its key-path address is a wallet with no
//! seed, no derivation and no sync state; `scantxoutset` finds its coins in any stock bitcoind (no
//! bitcoind wallet, no new crate), and the withdrawal pays back to the same address by default. A role
//! that runs an ldk-node can instead pay the bond address from that node's on-chain wallet
//! (`boltensor_ln::LnNode::send_to_address`); both give the same bond output.

use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::Keypair;
use bitcoin::{
    Address, Amount, FeeRate, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxOut,
};
use miniscript::descriptor::{DefiniteDescriptorKey, Descriptor};
use miniscript::psbt::PsbtExt;

use crate::bond::parse_definite;
use crate::chain::{BitcoindRpc, ChainError};
use crate::spend::{fee, unsigned_tx};
use crate::{finalize_psbt, sign_psbt, FinalizeError, SignError, SpendError, Utxo};

/// Witness of a key-path spend: item count, signature push (1 + 64, `SIGHASH_DEFAULT`).
const KEY_PATH_WITNESS: usize = 1 + 1 + 64;

/// Why funding failed.
#[derive(Debug, thiserror::Error)]
pub enum FundError {
    /// bitcoind could not be asked or refused the transaction.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Not enough spendable coins at the wallet's address.
    #[error("{address} holds {available} spendable (confirmed, mature), {needed} needed including the fee: send coins to it first")]
    Insufficient {
        /// The wallet's address.
        address: Address,
        /// What it holds now.
        available: Amount,
        /// Amount plus fee.
        needed: Amount,
    },
    /// The transaction could not be built.
    #[error(transparent)]
    Spend(#[from] SpendError),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// Finalizing failed.
    #[error(transparent)]
    Finalize(#[from] FinalizeError),
}

/// A funding transaction, signed and (after [`KeyWallet::fund`]) broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funding {
    /// The transaction.
    pub tx: Transaction,
    /// The new output (always output 0).
    pub outpoint: OutPoint,
    /// The fee paid.
    pub fee: Amount,
}

/// The single-key taproot wallet of a key (`tr(key)`, key path only, BIP-86 tweak).
#[derive(Debug, Clone)]
pub struct KeyWallet {
    keypair: Keypair,
    network: Network,
    descriptor: Descriptor<DefiniteDescriptorKey>,
}

impl KeyWallet {
    /// The wallet of `keypair` on `network`.
    pub fn new(keypair: Keypair, network: Network) -> Self {
        let xonly = keypair.x_only_public_key().0;
        let descriptor =
            parse_definite(&format!("tr({xonly})")).expect("tr(valid x-only key) always parses");
        KeyWallet {
            keypair,
            network,
            descriptor,
        }
    }

    /// Its address: where to send the coins a bond is funded from.
    pub fn address(&self) -> Address {
        Address::from_script(&self.script_pubkey(), self.network)
            .expect("a taproot output script always has an address")
    }

    /// Its output script.
    pub fn script_pubkey(&self) -> ScriptBuf {
        self.descriptor.script_pubkey()
    }

    /// Its spendable coins, per bitcoind's UTXO set.
    pub async fn utxos(&self, rpc: &BitcoindRpc) -> Result<Vec<Utxo>, ChainError> {
        rpc.scan_script(&self.script_pubkey()).await
    }

    /// Builds and signs a transaction paying `amount` to `to` (output 0) from `utxos` (largest first),
    /// change above dust back to the wallet, fee `fee_rate` on the exact final weight.
    pub fn build(
        &self,
        utxos: &[Utxo],
        to: ScriptBuf,
        amount: Amount,
        fee_rate: FeeRate,
    ) -> Result<Funding, FundError> {
        let dust = to.minimal_non_dust();
        if amount < dust {
            return Err(SpendError::BelowDust {
                available: amount,
                fee: Amount::ZERO,
                dust,
            }
            .into());
        }
        let mut sorted: Vec<&Utxo> = utxos.iter().collect();
        sorted.sort_by_key(|u| std::cmp::Reverse(u.txout.value));
        let change_spk = self.script_pubkey();
        let outputs = |change: Option<Amount>| {
            let mut o = vec![TxOut {
                value: amount,
                script_pubkey: to.clone(),
            }];
            if let Some(c) = change {
                o.push(TxOut {
                    value: c,
                    script_pubkey: change_spk.clone(),
                });
            }
            o
        };
        let mut chosen: Vec<&Utxo> = Vec::new();
        let mut total = Amount::ZERO;
        let mut needed = amount;
        for u in sorted {
            chosen.push(u);
            total += u.txout.value;
            let inputs: Vec<_> = chosen
                .iter()
                .map(|u| (u.outpoint, Sequence::ENABLE_RBF_NO_LOCKTIME))
                .collect();
            let witness = KEY_PATH_WITNESS * chosen.len();
            let with_change = unsigned_tx(inputs.clone(), outputs(Some(Amount::ZERO)));
            let fee_change = fee(&with_change, witness, fee_rate)?;
            let without = unsigned_tx(inputs, outputs(None));
            let fee_none = fee(&without, witness, fee_rate)?;
            needed = amount + fee_none;
            let tx = match total.checked_sub(amount + fee_change) {
                Some(change) if change >= change_spk.minimal_non_dust() => {
                    let mut tx = with_change;
                    tx.output[1].value = change;
                    tx
                }
                // The change would be dust: it goes to the fee.
                _ if total >= needed => without,
                _ => continue,
            };
            let paid = total - tx.output.iter().map(|o| o.value).sum::<Amount>();
            let mut psbt = Psbt::from_unsigned_tx(tx).expect("a transaction without signatures");
            for (i, u) in chosen.iter().enumerate() {
                psbt.inputs[i].witness_utxo = Some(u.txout.clone());
                psbt.update_input_with_descriptor(i, &self.descriptor)
                    .map_err(|e| SpendError::Update {
                        input: i,
                        reason: e.to_string(),
                    })?;
            }
            sign_psbt(&mut psbt, &[self.keypair])?;
            let tx = finalize_psbt(psbt)?;
            let outpoint = OutPoint {
                txid: tx.compute_txid(),
                vout: 0,
            };
            return Ok(Funding {
                tx,
                outpoint,
                fee: paid,
            });
        }
        Err(FundError::Insufficient {
            address: self.address(),
            available: total,
            needed,
        })
    }

    /// Finds the wallet's coins, pays `amount` to `to` and broadcasts.
    pub async fn fund(
        &self,
        rpc: &BitcoindRpc,
        to: ScriptBuf,
        amount: Amount,
        fee_rate: FeeRate,
    ) -> Result<Funding, FundError> {
        let utxos = self.utxos(rpc).await?;
        let funding = self.build(&utxos, to, amount, fee_rate)?;
        rpc.broadcast(&funding.tx).await?;
        Ok(funding)
    }

    /// The key (for callers that also sign proofs or withdrawals with it).
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }
}
