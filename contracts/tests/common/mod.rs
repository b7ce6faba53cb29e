//! The regtest harness for the contract tests: a real bitcoind (boltensor-testenv), a funder key that owns
//! coinbase outputs, funding transactions built and signed here, bitcoind's verdict on every spend, and a
//! `ChainView` snapshot taken over `gettxout`.

#![allow(dead_code)]

pub mod measured;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bitcoin::hashes::Hash;
use bitcoin::key::TapTweak;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Keypair, Message, SecretKey, SECP256K1};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::taproot::{LeafVersion, TapLeafHash};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute, Address, Amount, Network, OutPoint, ScriptBuf, Sequence, TapSighashType, Transaction,
    TxIn, TxOut, Txid, Witness,
};
use boltensor_contracts::miniscript::descriptor::{
    DefiniteDescriptorKey, Descriptor, DescriptorPublicKey,
};
use boltensor_contracts::miniscript::psbt::PsbtExt;
use boltensor_contracts::{finalize_psbt, sign_psbt, Federation, Utxo};
use boltensor_testenv::{wait_for, TestNet};
use serde_json::{json, Value};

/// Deterministic keys from a label, so failures are reproducible.
pub fn key(label: &str) -> Keypair {
    let h = bitcoin::hashes::sha256::Hash::hash(label.as_bytes()).to_byte_array();
    Keypair::from_secret_key(
        SECP256K1,
        &SecretKey::from_slice(&h).expect("a hash is a valid key"),
    )
}

pub fn keys(prefix: &str, n: usize) -> Vec<Keypair> {
    (0..n).map(|i| key(&format!("{prefix}-{i}"))).collect()
}

pub fn federation(members: &[Keypair], k: usize) -> Federation {
    Federation::new(members.iter().map(|m| m.x_only_public_key().0).collect(), k)
        .expect("valid federation")
}

/// What bitcoind said about a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// testmempoolaccept allowed it: its vsize and fee as bitcoind computed them.
    Accepted { vsize: u64, fee: Amount },
    /// Refused, with bitcoind's reason.
    Rejected(String),
}

impl Verdict {
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Rejected(r) => r,
            Verdict::Accepted { .. } => "",
        }
    }
}

/// A regtest bitcoind and a funder that owns mature coinbase outputs (key-path P2TR).
pub struct Chain {
    pub net: TestNet,
    funder: Keypair,
    funder_desc: Descriptor<DefiniteDescriptorKey>,
    coinbases: Vec<Utxo>,
}

impl Chain {
    /// Starts bitcoind and mines `coinbases` spendable outputs to the funder.
    pub async fn start(coinbases: u64) -> Result<Self> {
        let net = TestNet::start()
            .await
            .context("starting regtest bitcoind")?;
        let funder = key("funder");
        let xonly = funder.x_only_public_key().0;
        let funder_desc = Descriptor::<DescriptorPublicKey>::from_str(&format!("tr({xonly})"))?
            .at_derivation_index(0)?;
        let addr = Address::p2tr(SECP256K1, xonly, None, Network::Regtest);
        let rpc = net.bitcoind.rpc();
        let hashes: Vec<String> = rpc
            .call("generatetoaddress", json!([coinbases, addr.to_string()]))
            .await?;
        let mut utxos = Vec::new();
        for h in hashes {
            let block: Value = rpc.call("getblock", json!([h, 2])).await?;
            let cb = &block["tx"][0];
            let txid = Txid::from_str(cb["txid"].as_str().context("txid")?)?;
            let value = Amount::from_btc(cb["vout"][0]["value"].as_f64().context("value")?)?;
            utxos.push(Utxo {
                outpoint: OutPoint { txid, vout: 0 },
                txout: TxOut {
                    value,
                    script_pubkey: addr.script_pubkey(),
                },
            });
        }
        net.bitcoind.mine(100).await?;
        Ok(Chain {
            net,
            funder,
            funder_desc,
            coinbases: utxos,
        })
    }

    pub async fn mine(&self, n: u64) -> Result<()> {
        Ok(self.net.bitcoind.mine(n).await?)
    }

    /// Pays `amount` to `script` from a fresh coinbase (change back to the funder), broadcasts and mines
    /// one block; returns the new output.
    pub async fn fund(&mut self, script: ScriptBuf, amount: Amount) -> Result<Utxo> {
        let utxo = self.fund_unmined(script, amount).await?;
        self.mine(1).await?;
        self.wait_confirmed(utxo.outpoint.txid, 0).await?;
        Ok(utxo)
    }

    /// Like [`Chain::fund`], but leaves the funding transaction in the mempool.
    pub async fn fund_unmined(&mut self, script: ScriptBuf, amount: Amount) -> Result<Utxo> {
        let cb = self
            .coinbases
            .pop()
            .context("no coinbase left: start with more")?;
        let fee = Amount::from_sat(10_000);
        let change = cb.txout.value - amount - fee;
        let tx = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: cb.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            }],
            output: vec![
                TxOut {
                    value: amount,
                    script_pubkey: script,
                },
                TxOut {
                    value: change,
                    script_pubkey: cb.txout.script_pubkey.clone(),
                },
            ],
        };
        let mut psbt = Psbt::from_unsigned_tx(tx)?;
        psbt.inputs[0].witness_utxo = Some(cb.txout.clone());
        psbt.update_input_with_descriptor(0, &self.funder_desc)?;
        let added = sign_psbt(&mut psbt, &[self.funder])?;
        assert_eq!(added, 1, "one key-path signature");
        let tx = finalize_psbt(psbt)?;
        let txid = self.send(&tx).await?;
        Ok(Utxo {
            outpoint: OutPoint { txid, vout: 0 },
            txout: tx.output[0].clone(),
        })
    }

    /// bitcoind's verdict (testmempoolaccept), without broadcasting.
    pub async fn test_accept(&self, tx: &Transaction) -> Result<Verdict> {
        let hex = bitcoin::consensus::encode::serialize_hex(tx);
        let r: Value = self
            .net
            .bitcoind
            .rpc()
            .call("testmempoolaccept", json!([[hex]]))
            .await?;
        let r = &r[0];
        if r["allowed"].as_bool() == Some(true) {
            let vsize = r["vsize"].as_u64().context("vsize")?;
            let fee = Amount::from_btc(r["fees"]["base"].as_f64().context("fee")?)?;
            Ok(Verdict::Accepted { vsize, fee })
        } else {
            Ok(Verdict::Rejected(
                r["reject-reason"].as_str().unwrap_or("?").to_owned(),
            ))
        }
    }

    /// Tries to mine `tx` in a block of its own (`generateblock`, bypassing the mempool's policy), so the
    /// verdict is consensus itself; returns bitcoind's error when the block is invalid.
    pub async fn mine_directly(&self, tx: &Transaction) -> Result<(), String> {
        let hex = bitcoin::consensus::encode::serialize_hex(tx);
        self.net
            .bitcoind
            .rpc()
            .call::<Value>(
                "generateblock",
                json!([
                    boltensor_testenv::bitcoind::burn_address().to_string(),
                    [hex]
                ]),
            )
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Broadcasts; an error carries bitcoind's reason.
    pub async fn send(&self, tx: &Transaction) -> Result<Txid> {
        let hex = bitcoin::consensus::encode::serialize_hex(tx);
        let txid: String = self
            .net
            .bitcoind
            .rpc()
            .call("sendrawtransaction", json!([hex]))
            .await
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Txid::from_str(&txid)?)
    }

    /// Broadcasts, mines a block and waits until output `vout` of it is confirmed.
    pub async fn send_and_confirm(&self, tx: &Transaction) -> Result<Txid> {
        let txid = self.send(tx).await?;
        self.mine(1).await?;
        self.wait_confirmed(txid, 0).await?;
        Ok(txid)
    }

    /// Waits (with a deadline) until output `vout` of `txid` is unspent and confirmed.
    pub async fn wait_confirmed(&self, txid: Txid, vout: u32) -> Result<()> {
        let rpc = self.net.bitcoind.rpc();
        wait_for(
            &format!("{txid}:{vout} to confirm"),
            Duration::from_secs(30),
            || async move {
                let r: Value = rpc
                    .call("gettxout", json!([txid.to_string(), vout, false]))
                    .await?;
                Ok((r["confirmations"].as_u64().unwrap_or(0) >= 1).then_some(()))
            },
        )
        .await?;
        Ok(())
    }

    /// The unspent output at `outpoint` with its confirmations, over `gettxout` (mempool included: an
    /// output spent in the mempool is gone, one created there has 0 confirmations).
    pub async fn tx_out(&self, outpoint: OutPoint) -> Result<Option<(TxOut, u32)>> {
        let r: Value = self
            .net
            .bitcoind
            .rpc()
            .call(
                "gettxout",
                json!([outpoint.txid.to_string(), outpoint.vout, true]),
            )
            .await?;
        if r.is_null() {
            return Ok(None);
        }
        let value = Amount::from_btc(r["value"].as_f64().context("value")?)?;
        let spk = ScriptBuf::from_hex(r["scriptPubKey"]["hex"].as_str().context("script")?)?;
        let conf = r["confirmations"].as_u64().context("confirmations")? as u32;
        Ok(Some((
            TxOut {
                value,
                script_pubkey: spk,
            },
            conf,
        )))
    }

    /// A `ChainView` snapshot of `outpoints` as bitcoind sees them now.
    pub async fn view(&self, outpoints: &[OutPoint]) -> Result<BTreeMap<OutPoint, (TxOut, u32)>> {
        let mut m = BTreeMap::new();
        for op in outpoints {
            if let Some(v) = self.tx_out(*op).await? {
                m.insert(*op, v);
            }
        }
        Ok(m)
    }

    /// Mines until `outpoint` has `confirmations`.
    pub async fn mine_until(&self, outpoint: OutPoint, confirmations: u32) -> Result<()> {
        let (_, now) = self.tx_out(outpoint).await?.context("output gone")?;
        if now > confirmations {
            bail!("{outpoint} already has {now} confirmations");
        }
        self.mine(u64::from(confirmations - now)).await?;
        let (_, now) = self.tx_out(outpoint).await?.context("output gone")?;
        assert_eq!(now, confirmations);
        Ok(())
    }
}

/// Builds a script-path witness by hand, bypassing miniscript's finalizer, so bitcoind itself judges
/// spends miniscript would refuse to assemble: `slots` gives, for each key of the leaf in script order,
/// the signer to sign in that key's place (possibly a key the script does not name) or none.
pub fn forced_witness(psbt: &Psbt, leaf: &ScriptBuf, slots: &[Option<Keypair>]) -> Transaction {
    let input = &psbt.inputs[0];
    let (control, _) = input
        .tap_scripts
        .iter()
        .find(|(_, (s, _))| s == leaf)
        .expect("the leaf is in the PSBT");
    let prevouts: Vec<TxOut> = psbt
        .inputs
        .iter()
        .map(|i| i.witness_utxo.clone().expect("witness_utxo"))
        .collect();
    let tx = psbt.unsigned_tx.clone();
    let sighash = SighashCache::new(&tx)
        .taproot_script_spend_signature_hash(
            0,
            &Prevouts::All(&prevouts),
            TapLeafHash::from_script(leaf, LeafVersion::TapScript),
            TapSighashType::Default,
        )
        .expect("sighash");
    let msg = Message::from(sighash);
    let mut w = Witness::new();
    // The script checks the first key first, so its signature must be on top: push in reverse.
    for slot in slots.iter().rev() {
        match slot {
            Some(k) => w.push(SECP256K1.sign_schnorr_no_aux_rand(&msg, k).serialize()),
            None => w.push([]),
        }
    }
    w.push(leaf.as_bytes());
    w.push(control.serialize());
    let mut tx = tx;
    tx.input[0].witness = w;
    tx
}

/// A P2TR key-path output script for `key` (a destination somebody owns).
pub fn p2tr_script(key: &Keypair) -> ScriptBuf {
    let (tweaked, _) = key.x_only_public_key().0.tap_tweak(SECP256K1, None);
    ScriptBuf::new_p2tr_tweaked(tweaked)
}
