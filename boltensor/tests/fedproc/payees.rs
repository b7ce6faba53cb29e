//! Payouts for the federation's processes: member 0's Lightning node (what `coordinator run --ln-listen`
//! opens), prepared with a channel to each payee, two registered miners and a bonded validator that submits
//! weights every epoch, a client with a channel to member 0 (paid requests routed through it), and the
//! ledger the audit reads (faults_federation, network).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::secp256k1::{Keypair, SecretKey, SECP256K1};
use bitcoin::{Amount, FeeRate, Network};
use boltensor_audit::{Ledger, MinerRequest, NodeLedger};
use boltensor_contracts::{
    BitcoindRpc, Bond, BondClaims, BondProof, Federation as BondFederation, KeyWallet, RpcAuth,
};
use boltensor_coordinator::items::{ConsensusItem, Registration};
use boltensor_ln::{LnNode, NodeConfig, PaymentRecord};
use boltensor_protocol::weights::WeightVector;
use boltensor_protocol::Role;
use boltensor_testenv::{free_port, wait_for, TestNet};
use serde_json::Value;

use super::{Federation, Result};

/// A key derived from a label (the same label, the same key).
pub fn key(label: &str) -> Keypair {
    let digest = <bitcoin::hashes::sha256::Hash as bitcoin::hashes::Hash>::hash(label.as_bytes());
    let secret =
        SecretKey::from_slice(bitcoin::hashes::Hash::as_byte_array(&digest)).expect("a valid key");
    Keypair::from_secret_key(SECP256K1, &secret)
}

/// A miner registration for federation `fed`, signed by its key and its node (`sign_node`).
pub fn miner_registration(
    fed: [u8; 32],
    label: &str,
    node_id: &str,
    sign_node: impl FnOnce(&[u8]) -> String,
) -> ConsensusItem {
    let kp = key(label);
    let mut r = Registration::new(Role::Miner, kp.x_only_public_key().0, node_id.into(), fed);
    r.api = Some(format!("http://127.0.0.1:1/{label}"));
    r.models = vec!["all-minilm-l6-v2".into()];
    ConsensusItem::Register(r.sign_node(sign_node).sign(&kp))
}

/// Validator `validator`'s signed weight vector for `epoch`.
pub fn weights(validator: &str, epoch: u64, w: &[(String, u16)]) -> Value {
    let kp = key(validator);
    let vector = WeightVector {
        epoch,
        validator: kp.x_only_public_key().0.serialize(),
        weights: w.iter().cloned().collect(),
    };
    serde_json::to_value(vector.sign(&kp)).expect("signed weights serialise")
}

/// The test's own RPC client to the federation's bitcoind (loopback).
pub fn cleanup_rpc(rpc: &(u16, String, String)) -> BitcoindRpc {
    BitcoindRpc::new(
        format!("http://127.0.0.1:{}", rpc.0),
        RpcAuth::UserPass {
            user: rpc.1.clone(),
            password: rpc.2.clone(),
        },
    )
}

/// The payer's node as `coordinator run --ln-listen` builds it (boltensor/src/federation.rs `ln_node`).
pub fn payer_node_config(
    fed: &Federation,
    bitcoind: &boltensor_testenv::Bitcoind,
    listen: SocketAddr,
) -> NodeConfig {
    NodeConfig {
        alias: "coordinator-0".into(),
        storage_dir: fed.member_dir(0).join("ln"),
        network: Network::Regtest,
        listen,
        chain: bitcoind.chain_source(),
        trusted_peers_no_reserve: vec![],
        liquidity_provider: true,
    }
}

/// Every node's payments, the payees (and clients) first, then the payer (over its admin endpoint), then
/// the receipts: a payout the payee saw has reached the payer's record by the time it is read. `requests`:
/// the miners' paid requests (named as their nodes are in `payees`).
pub async fn ledger(
    fed: &Federation,
    payees: &[(&str, Role, &LnNode)],
    token: &str,
    requests: Vec<MinerRequest>,
) -> Result<Ledger> {
    let mut nodes: Vec<NodeLedger> = payees
        .iter()
        .map(|(name, role, n)| NodeLedger {
            name: name.to_string(),
            role: *role,
            node_id: n.node_id().to_string(),
            payments: n.payments(),
            forwarded: Some(n.forwarded()),
        })
        .collect();
    let l: Value = fed
        .http
        .get(format!("{}/v1/admin/ledger", fed.api(0)))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let payments: Vec<PaymentRecord> = serde_json::from_value(l["payments"].clone())?;
    nodes.push(NodeLedger {
        name: "coordinator-0".into(),
        role: Role::Coordinator,
        node_id: l["node_id"].as_str().unwrap_or_default().to_string(),
        payments,
        // The admin ledger carries the node's forward totals, but the clients whose payments it routed (the
        // fee-funded pool's income) are not in this ledger: fees paid and earned cannot be compared here.
        forwarded: None,
    });
    Ok(Ledger {
        nodes,
        requests,
        payouts: fed.receipts(1).await?,
        pool: Vec::new(),
    })
}

/// Member 0's payees: two miners and a bonded validator, each with a channel from member 0's node; and a
/// client with a channel to member 0's node.
pub struct Payees {
    pub miner_a: Arc<LnNode>,
    pub miner_b: Arc<LnNode>,
    pub validator: Arc<LnNode>,
    pub client: Arc<LnNode>,
    /// Member 0's node id.
    pub payer: bitcoin::secp256k1::PublicKey,
    owner: Keypair,
    proof: BondProof,
}

impl Payees {
    /// Starts the payees and the client (listening on `payee_ip`; the client funded, its channel opened
    /// once member 0 runs: [`Payees::open_client_channel`]), prepares member 0's node on its storage dir
    /// (funded, a 1,000,000 sat channel to each payee; then stopped: `coordinator run --ln-listen` opens
    /// it) and funds and confirms the validator's bond (6 confirmations, timelock 2000). Nothing runs yet.
    pub async fn prepare(
        testnet: &TestNet,
        fed: &Federation,
        payee_ip: std::net::IpAddr,
    ) -> Result<Payees> {
        let node = async |alias: &str| -> Result<Arc<LnNode>> {
            let cfg = testnet.node_config_at(alias, SocketAddr::new(payee_ip, free_port()?));
            Ok(Arc::new(LnNode::start(cfg).await?))
        };
        let miner_a = node("miner-a").await?;
        let miner_b = node("miner-b").await?;
        let validator = node("validator-1").await?;
        let client = node("client").await?;
        let listen: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let payer = LnNode::start(payer_node_config(fed, &testnet.bitcoind, listen)).await?;
        // The payees hold on-chain coins too, as anchor channels need: after a force-close a payee claims
        // an HTLC it was paid on chain, paying the fee from its wallet.
        testnet
            .fund(&[&payer, &miner_a, &miner_b, &validator, &client], 1)
            .await?;
        for to in [&miner_a, &miner_b, &validator] {
            testnet.open_channel(&payer, to, 1_000_000, 0).await?;
        }
        let payer_id = payer.node_id();
        payer.stop().await;

        let (owner, proof) = fund_validator_bond(testnet, fed, &validator).await?;
        Ok(Payees {
            miner_a,
            miner_b,
            validator,
            client,
            payer: payer_id,
            owner,
            proof,
        })
    }

    /// Name, role and node of each payee.
    pub fn list(&self) -> [(&str, Role, &LnNode); 3] {
        [
            ("miner-a", Role::Miner, &self.miner_a),
            ("miner-b", Role::Miner, &self.miner_b),
            ("validator-1", Role::Validator, &self.validator),
        ]
    }

    /// Registers the miners and the bonded validator at member `at`; waits until the bond counts.
    pub async fn register(&self, fed: &Federation, at: usize) -> Result {
        let miners = [("miner-a", &*self.miner_a), ("miner-b", &*self.miner_b)];
        register_all(fed, at, miners, &self.validator, &self.owner, &self.proof).await
    }

    /// [`submit_weights`] for these payees.
    pub fn submit_weights(&self, fed: &Federation, to: &[usize]) -> tokio::task::JoinHandle<()> {
        submit_weights(fed, to, &self.miner_a, &self.miner_b)
    }

    /// Opens the client's 1,000,000 sat channel to member 0's running node at `addr` (where `coordinator
    /// run --ln-listen` put it: the address the client's node keeps and reconnects to, as a real client
    /// keeps its hub's) and waits until the client can send over it.
    pub async fn open_client_channel(&self, testnet: &TestNet, addr: SocketAddr) -> Result {
        let (_, txid) = self
            .client
            .open_channel(self.payer, addr, 1_000_000, 0)
            .await?;
        testnet
            .bitcoind
            .wait_for_tx(txid, Duration::from_secs(90))
            .await?;
        testnet.bitcoind.mine(6).await?;
        wait_for(
            "the client's channel to member 0 to be usable",
            Duration::from_secs(90),
            || async {
                let _ = self.client.sync();
                let usable = self.client.channels().iter().any(|c| {
                    c.counterparty == self.payer && c.is_usable && c.next_htlc_limit_msat > 0
                });
                Ok(usable.then_some(()))
            },
        )
        .await?;
        Ok(())
    }

    /// Payment hashes of the keysends (payouts) the payees received.
    pub fn arrived(&self) -> Vec<[u8; 32]> {
        self.list()
            .iter()
            .flat_map(|(_, _, n)| n.payments())
            .filter(|p| p.inbound && p.keysend)
            .filter_map(|p| p.hash)
            .collect()
    }

    pub async fn stop(&self) {
        for (_, _, n) in self.list() {
            n.stop().await;
        }
        self.client.stop().await;
    }
}

/// Funds a 200,000 sat bond for validator-1 (owner key `key("validator-1")`, node `validator`; the default
/// parameters: timelock 2000, 6 confirmations) from a coinbase mined to the owner, and confirms it.
pub async fn fund_validator_bond(
    testnet: &TestNet,
    fed: &Federation,
    validator: &LnNode,
) -> Result<(Keypair, BondProof)> {
    let cfg = fed.config()?;
    let rpc = cleanup_rpc(&fed.rpc);
    let owner = key("validator-1");
    let wallet = KeyWallet::new(owner, Network::Regtest);
    testnet.bitcoind.mine_to(1, &wallet.address()).await?;
    testnet.bitcoind.mine(100).await?;
    let bond = Bond::new(
        owner.x_only_public_key().0,
        BondFederation::byzantine(cfg.keys())?,
        2000,
    )?;
    let funding = wallet
        .fund(
            &rpc,
            bond.script_pubkey(),
            Amount::from_sat(200_000),
            FeeRate::from_sat_per_vb(2).ok_or("fee")?,
        )
        .await?;
    let proof = BondClaims {
        outpoint: funding.outpoint,
        amount: Amount::from_sat(200_000),
        timelock: 2000,
        owner: owner.x_only_public_key().0,
        role: Role::Validator,
        node_id: validator.node_id(),
        registration_key: owner.x_only_public_key().0,
    }
    .sign(&owner)?;
    testnet
        .bitcoind
        .wait_for_tx(funding.outpoint.txid, Duration::from_secs(90))
        .await?;
    testnet.bitcoind.mine(6).await?;
    Ok((owner, proof))
}

/// Registers two miners (labels and nodes) and the bonded validator at member `at`; waits until the
/// bond counts.
pub async fn register_all(
    fed: &Federation,
    at: usize,
    miners: [(&str, &LnNode); 2],
    validator: &LnNode,
    owner: &Keypair,
    proof: &BondProof,
) -> Result {
    let cfg = fed.config()?;
    for (label, node) in miners {
        let item = miner_registration(cfg.id(), label, &node.node_id().to_string(), |m| {
            node.sign_message(m)
        });
        assert_eq!(
            fed.post(at, "/v1/items", &serde_json::to_value(item)?)
                .await?,
            202
        );
    }
    let mut reg = Registration::new(
        Role::Validator,
        owner.x_only_public_key().0,
        validator.node_id().to_string(),
        cfg.id(),
    );
    reg.bond = Some(proof.to_hex());
    let reg = ConsensusItem::Register(reg.sign_node(|m| validator.sign_message(m)).sign(owner));
    assert_eq!(
        fed.post(at, "/v1/items", &serde_json::to_value(reg)?)
            .await?,
        202
    );
    wait_for(
        "the validator's bond to count",
        Duration::from_secs(90),
        || async {
            let reg = fed.get(at, "/v1/registry").await;
            Ok(reg.filter(|r| {
                r["registry"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|n| n["stake_sat"].as_u64().unwrap_or(0) > 0))
            }))
        },
    )
    .await?;
    Ok(())
}

/// validator-1's weights (`miner_a` 40,000, `miner_b` 25,000), submitted for the current epoch to members
/// `to` every 500 ms until the task is aborted.
pub fn submit_weights(
    fed: &Federation,
    to: &[usize],
    miner_a: &LnNode,
    miner_b: &LnNode,
) -> tokio::task::JoinHandle<()> {
    let http = fed.http.clone();
    let apis: Vec<String> = to.iter().map(|&i| fed.api(i)).collect();
    let w = vec![
        (miner_a.node_id().to_string(), 40_000u16),
        (miner_b.node_id().to_string(), 25_000u16),
    ];
    tokio::spawn(async move {
        loop {
            for api in &apis {
                let epoch = async {
                    let s: Value = http
                        .get(format!("{api}/v1/status"))
                        .send()
                        .await
                        .ok()?
                        .json()
                        .await
                        .ok()?;
                    s["epoch"].as_u64()
                }
                .await;
                if let Some(e) = epoch {
                    let _ = http
                        .post(format!("{api}/v1/weights"))
                        .json(&weights("validator-1", e, &w))
                        .send()
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}
