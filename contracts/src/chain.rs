//! [`BitcoindRpc`]: the chain as a real bitcoind sees it, over JSON-RPC — the one module of this crate that
//! does IO, so that validators, coordinators and the `boltensor bond` commands verify proofs, fund, withdraw
//! and slash bonds against the same node.
//!
//! The RPCs used are all in a stock bitcoind without a wallet: `getblockchaininfo` (network check),
//! `getblockcount`, `gettxout` (the UTXO set, mempool included), `scantxoutset` (the owner key's coins),
//! `getrawtransaction` (confirmations of a transaction, needs `-txindex` or a mempool/recent tx),
//! `testmempoolaccept` and `sendrawtransaction`.
//!
//! [`ChainView`](crate::ChainView) is synchronous and infallible on purpose (the proof check does no IO):
//! [`BitcoindRpc::snapshot`] reads the outpoints into a map that implements it, and
//! [`BitcoindRpc::verify_bond_proof`] does both in one call, keeping an unreachable bitcoind (an error
//! of ours) apart from a refused proof (an error of the prover's).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use bitcoin::{Amount, Denomination, Network, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::{verify_bond_proof, BondPolicy, BondProof, ProofError, Utxo, VerifiedBond};

/// How to authenticate to bitcoind's RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcAuth {
    /// `-rpcuser`/`-rpcpassword` (or an `-rpcauth` line).
    UserPass {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// The `.cookie` file bitcoind writes into its data dir (read on every connect: it changes when
    /// bitcoind restarts).
    Cookie(PathBuf),
}

/// Why talking to bitcoind failed. Each variant says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// Nothing answered at the URL (bitcoind not running, wrong host or port, `-rpcbind`/`-rpcallowip`).
    #[error("cannot reach bitcoind at {url}: {reason} (is bitcoind running with -server, and is the --rpc-url port right?)")]
    Unreachable {
        /// The RPC URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// bitcoind refused the credentials (HTTP 401).
    #[error("bitcoind at {url} refused the RPC credentials (HTTP 401): check --rpc-user/--rpc-pass or --rpc-cookie")]
    Unauthorized {
        /// The RPC URL.
        url: String,
    },
    /// The cookie file cannot be read or is not `user:password`.
    #[error("cannot use RPC cookie file {}: {reason}", .path.display())]
    Cookie {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// bitcoind answered the call with an error.
    #[error("bitcoind refused {method}: {message} (code {code})")]
    Rpc {
        /// The RPC method.
        method: String,
        /// bitcoind's error code.
        code: i64,
        /// bitcoind's message.
        message: String,
    },
    /// The answer was not the JSON-RPC bitcoind gives (wrong URL: another service on the port?).
    #[error("unexpected answer to {method}: {reason}")]
    Unexpected {
        /// The RPC method.
        method: String,
        /// What was wrong.
        reason: String,
    },
    /// bitcoind is on another network than the one asked for.
    #[error("bitcoind is on {bitcoind}, not {expected}: pass the right --network or --rpc-url")]
    WrongNetwork {
        /// The network asked for.
        expected: Network,
        /// bitcoind's `chain` (main, test, testnet4, signet, regtest).
        bitcoind: String,
    },
}

/// Why a bond proof was not verified: the chain could not be read, or the proof is refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// bitcoind could not be asked (no verdict on the proof).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The proof is refused.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// A UTXO-set snapshot of some outpoints (implements [`ChainView`](crate::ChainView)).
pub type ChainSnapshot = BTreeMap<OutPoint, (TxOut, u32)>;

/// A bitcoind JSON-RPC client.
#[derive(Debug, Clone)]
pub struct BitcoindRpc {
    url: String,
    auth: RpcAuth,
    http: reqwest::Client,
}

/// bitcoind's `chain` name for a network.
pub fn bitcoind_chain_name(network: Network) -> &'static str {
    match network {
        Network::Bitcoin => "main",
        Network::Testnet => "test",
        Network::Testnet4 => "testnet4",
        Network::Signet => "signet",
        _ => "regtest",
    }
}

/// bitcoind's default RPC port on a network.
pub fn default_rpc_port(network: Network) -> u16 {
    match network {
        Network::Bitcoin => 8332,
        Network::Testnet => 18332,
        Network::Testnet4 => 48332,
        Network::Signet => 38332,
        _ => 18443,
    }
}

fn btc(v: &Value, method: &str, field: &str) -> Result<Amount, ChainError> {
    let unexpected = |reason: String| ChainError::Unexpected {
        method: method.to_owned(),
        reason,
    };
    let Value::Number(n) = v else {
        return Err(unexpected(format!("{field} is {v}, not a number")));
    };
    // Parse the number's text, so no float rounding is involved (falling back to the float for
    // exponent notation).
    Amount::from_str_in(&n.to_string(), Denomination::Bitcoin)
        .ok()
        .or_else(|| n.as_f64().and_then(|f| Amount::from_btc(f).ok()))
        .ok_or_else(|| unexpected(format!("{field} {n} is not an amount")))
}

impl BitcoindRpc {
    /// A client for `url` (e.g. `http://127.0.0.1:18443`). Does not connect yet.
    pub fn new(url: impl Into<String>, auth: RpcAuth) -> Self {
        BitcoindRpc {
            url: url.into(),
            auth,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap_or_default(),
        }
    }

    /// The RPC URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn credentials(&self) -> Result<(String, String), ChainError> {
        match &self.auth {
            RpcAuth::UserPass { user, password } => Ok((user.clone(), password.clone())),
            RpcAuth::Cookie(path) => read_cookie(path),
        }
    }

    /// Calls `method` with `params` (a JSON array) and decodes the result.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, ChainError> {
        let (user, password) = self.credentials()?;
        let body = json!({"jsonrpc": "1.0", "id": "boltensor", "method": method, "params": params});
        let resp = self
            .http
            .post(&self.url)
            .basic_auth(user, Some(password))
            .json(&body)
            .send()
            .await
            .map_err(|e| ChainError::Unreachable {
                url: self.url.clone(),
                reason: error_chain(&e),
            })?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ChainError::Unauthorized {
                url: self.url.clone(),
            });
        }
        let text = resp.text().await.map_err(|e| ChainError::Unreachable {
            url: self.url.clone(),
            reason: error_chain(&e),
        })?;
        let unexpected = |reason: String| ChainError::Unexpected {
            method: method.to_owned(),
            reason,
        };
        let v: Value = serde_json::from_str(&text).map_err(|_| {
            unexpected(format!(
                "HTTP {status}, not JSON-RPC: {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(ChainError::Rpc {
                method: method.to_owned(),
                code: e["code"].as_i64().unwrap_or(0),
                message: e["message"].as_str().unwrap_or("?").to_owned(),
            });
        }
        serde_json::from_value(v.get("result").cloned().unwrap_or(Value::Null))
            .map_err(|e| unexpected(format!("unexpected result: {e}")))
    }

    /// Checks that bitcoind answers, accepts the credentials and is on `network`; returns its block count.
    pub async fn check_network(&self, network: Network) -> Result<u32, ChainError> {
        let info: Value = self.call("getblockchaininfo", json!([])).await?;
        let chain = info["chain"].as_str().unwrap_or("?");
        if chain != bitcoind_chain_name(network) {
            return Err(ChainError::WrongNetwork {
                expected: network,
                bitcoind: chain.to_owned(),
            });
        }
        Ok(info["blocks"].as_u64().unwrap_or(0) as u32)
    }

    /// The height of the tip.
    pub async fn block_count(&self) -> Result<u32, ChainError> {
        self.call("getblockcount", json!([])).await
    }

    /// The unspent output at `outpoint` and its confirmations (0 in the mempool), or `None` if it is
    /// spent (in a block or in the mempool) or never existed.
    pub async fn tx_out(&self, outpoint: &OutPoint) -> Result<Option<(TxOut, u32)>, ChainError> {
        const M: &str = "gettxout";
        let r: Value = self
            .call(M, json!([outpoint.txid.to_string(), outpoint.vout, true]))
            .await?;
        if r.is_null() {
            return Ok(None);
        }
        let value = btc(&r["value"], M, "value")?;
        let script_pubkey = r["scriptPubKey"]["hex"]
            .as_str()
            .and_then(|h| ScriptBuf::from_hex(h).ok())
            .ok_or_else(|| ChainError::Unexpected {
                method: M.into(),
                reason: "no scriptPubKey.hex".into(),
            })?;
        let confirmations = r["confirmations"].as_u64().unwrap_or(0) as u32;
        Ok(Some((
            TxOut {
                value,
                script_pubkey,
            },
            confirmations,
        )))
    }

    /// A [`ChainView`](crate::ChainView) of `outpoints` as bitcoind sees them now.
    pub async fn snapshot(&self, outpoints: &[OutPoint]) -> Result<ChainSnapshot, ChainError> {
        let mut m = BTreeMap::new();
        for op in outpoints {
            if let Some(v) = self.tx_out(op).await? {
                m.insert(*op, v);
            }
        }
        Ok(m)
    }

    /// Verifies a bond proof against bitcoind's UTXO set now ([`verify_bond_proof`]).
    pub async fn verify_bond_proof(
        &self,
        proof: &BondProof,
        policy: &BondPolicy,
    ) -> Result<VerifiedBond, VerifyError> {
        // Check the signature before asking the chain: a forged proof costs no RPC.
        proof.verify_signature()?;
        let view = self.snapshot(&[proof.claims.outpoint]).await?;
        Ok(verify_bond_proof(proof, policy, &view)?)
    }

    /// Confirmations of `txid`: `Some(0)` in the mempool, `None` if bitcoind does not know it (without
    /// `-txindex` only mempool transactions and those with unspent outputs are known).
    pub async fn tx_confirmations(&self, txid: &Txid) -> Result<Option<u32>, ChainError> {
        match self
            .call::<Value>("getrawtransaction", json!([txid.to_string(), true]))
            .await
        {
            Ok(v) => Ok(Some(v["confirmations"].as_u64().unwrap_or(0) as u32)),
            // -5: "No such mempool or blockchain transaction".
            Err(ChainError::Rpc { code: -5, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Broadcasts `tx`; an error carries bitcoind's reason (e.g. `non-BIP68-final`).
    pub async fn broadcast(&self, tx: &Transaction) -> Result<Txid, ChainError> {
        let hex = bitcoin::consensus::encode::serialize_hex(tx);
        let txid: String = self.call("sendrawtransaction", json!([hex])).await?;
        Txid::from_str(&txid).map_err(|e| ChainError::Unexpected {
            method: "sendrawtransaction".into(),
            reason: e.to_string(),
        })
    }

    /// bitcoind's mempool verdict on `tx` without broadcasting: `Ok(())` or its reject reason.
    pub async fn test_accept(&self, tx: &Transaction) -> Result<Result<(), String>, ChainError> {
        let hex = bitcoin::consensus::encode::serialize_hex(tx);
        let r: Value = self.call("testmempoolaccept", json!([[hex]])).await?;
        let r = &r[0];
        if r["allowed"].as_bool() == Some(true) {
            Ok(Ok(()))
        } else {
            Ok(Err(r["reject-reason"].as_str().unwrap_or("?").to_owned()))
        }
    }

    /// The spendable outputs paying to `script` (confirmed, not spent in the mempool, coinbases only once
    /// mature), found with `scantxoutset` over the whole UTXO set — no wallet needed in bitcoind.
    pub async fn scan_script(&self, script: &ScriptBuf) -> Result<Vec<Utxo>, ChainError> {
        const M: &str = "scantxoutset";
        let desc = format!("raw({})", script.to_hex_string());
        let r: Value = self.call(M, json!(["start", [desc]])).await?;
        let tip = r["height"].as_u64().unwrap_or(0);
        let unexpected = |reason: &str| ChainError::Unexpected {
            method: M.into(),
            reason: reason.into(),
        };
        let mut utxos = Vec::new();
        for u in r["unspents"].as_array().into_iter().flatten() {
            let txid = u["txid"]
                .as_str()
                .and_then(|t| Txid::from_str(t).ok())
                .ok_or_else(|| unexpected("bad txid"))?;
            let vout = u["vout"].as_u64().ok_or_else(|| unexpected("bad vout"))? as u32;
            let value = btc(&u["amount"], M, "amount")?;
            let height = u["height"].as_u64().unwrap_or(0);
            // A coinbase output can be spent in a block 100 deeper than its own.
            if u["coinbase"].as_bool() == Some(true) && tip + 1 < height + 100 {
                continue;
            }
            let outpoint = OutPoint { txid, vout };
            // scantxoutset reads the confirmed set only: skip what the mempool already spends.
            if self.tx_out(&outpoint).await?.is_none() {
                continue;
            }
            utxos.push(Utxo {
                outpoint,
                txout: TxOut {
                    value,
                    script_pubkey: script.clone(),
                },
            });
        }
        Ok(utxos)
    }
}

fn read_cookie(path: &Path) -> Result<(String, String), ChainError> {
    let err = |reason: String| ChainError::Cookie {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let (user, password) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| err("not user:password".into()))?;
    Ok((user.to_owned(), password.to_owned()))
}

/// The error and its sources in one line (reqwest's top-level message alone says only "error sending
/// request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact() {
        let v: Value = serde_json::from_str("0.00012345").expect("json");
        assert_eq!(btc(&v, "m", "f").expect("amount").to_sat(), 12345);
        let v: Value = serde_json::from_str("50.0").expect("json");
        assert_eq!(btc(&v, "m", "f").expect("amount").to_sat(), 5_000_000_000);
        let v: Value = serde_json::from_str("1e-8").expect("json");
        assert_eq!(btc(&v, "m", "f").expect("amount").to_sat(), 1);
    }

    #[tokio::test]
    async fn unreachable_and_bad_cookie_are_clear() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let rpc = BitcoindRpc::new(
            format!("http://127.0.0.1:{port}"),
            RpcAuth::UserPass {
                user: "u".into(),
                password: "p".into(),
            },
        );
        let e = rpc.block_count().await.expect_err("nothing listens");
        assert!(matches!(e, ChainError::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains("cannot reach bitcoind"), "{e}");
        let rpc = BitcoindRpc::new(
            "http://127.0.0.1:1",
            RpcAuth::Cookie("/nonexistent/.cookie".into()),
        );
        let e = rpc.block_count().await.expect_err("no cookie");
        assert!(matches!(e, ChainError::Cookie { .. }), "{e}");
    }
}
