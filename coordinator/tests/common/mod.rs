//! Shared set-up: N coordinators in one process on real TCP links, a regtest bitcoind for bonds.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::secp256k1::{Keypair, SecretKey, SECP256K1};
use bitcoin::{Amount, FeeRate, Network};
use boltensor_contracts::{BitcoindRpc, Bond, BondClaims, Federation, KeyWallet, RpcAuth};
use boltensor_coordinator::config::ConsensusTiming;
use boltensor_coordinator::items::{ConsensusItem, Registration};
use boltensor_coordinator::params::Params;
use boltensor_coordinator::store::SignedEpoch;
use boltensor_coordinator::{start, CoordinatorConfig, FederationConfig, Options, Running};
use boltensor_ln::{ChainSource, LnNode};
use boltensor_protocol::weights::WeightVector;
use boltensor_protocol::Role;
use boltensor_testenv::{wait_for, TestNet};
use serde_json::Value;

pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub fn key(label: &str) -> Keypair {
    let digest = <bitcoin::hashes::sha256::Hash as bitcoin::hashes::Hash>::hash(label.as_bytes());
    let secret = SecretKey::from_slice(bitcoin::hashes::Hash::as_byte_array(&digest))
        .expect("present in this test");
    Keypair::from_secret_key(SECP256K1, &secret)
}

pub fn node_id(label: &str) -> String {
    key(label).public_key().to_string()
}

/// The id of the test federation (its member keys derive from the seed `test`, whatever its ports).
pub fn fed_id() -> [u8; 32] {
    let keys: Vec<_> = (0..4)
        .map(|i| {
            boltensor_coordinator::config::derive_keypair(b"test", i)
                .x_only_public_key()
                .0
        })
        .collect();
    boltensor_coordinator::config::federation_id(&keys)
}

/// What signs for a Lightning node id: a bare test key or a real node.
#[derive(Clone, Copy)]
pub enum Node<'a> {
    /// A test key standing for a node.
    Key(Keypair),
    /// A running ldk-node.
    Ln(&'a LnNode),
}

impl Node<'_> {
    /// The node id.
    pub fn id(&self) -> bitcoin::secp256k1::PublicKey {
        match self {
            Node::Key(k) => k.public_key(),
            Node::Ln(n) => n.node_id(),
        }
    }

    /// Signs `msg` with the node key.
    pub fn sign(&self, msg: &[u8]) -> String {
        match self {
            Node::Key(k) => boltensor_ln::sign_message_with_key(msg, &k.secret_key()),
            Node::Ln(n) => n.sign_message(msg),
        }
    }

    /// The test node of `label` (key `<label>-node`).
    pub fn of(label: &str) -> Node<'static> {
        Node::Key(key(&format!("{label}-node")))
    }
}

/// `reg` signed by its node and by `kp`.
pub fn signed(reg: Registration, node: Node<'_>, kp: &Keypair) -> ConsensusItem {
    ConsensusItem::Register(reg.sign_node(|m| node.sign(m)).sign(kp))
}

pub struct Net {
    pub testnet: TestNet,
    pub rpc: BitcoindRpc,
    pub federation: FederationConfig,
    pub keys: Vec<Keypair>,
    pub dirs: Vec<tempfile::TempDir>,
    pub members: Vec<Option<Running>>,
    pub ln: Vec<Option<Arc<LnNode>>>,
    pub http: reqwest::Client,
}

impl Net {
    /// A federation of four with its bitcoind, members not started yet.
    pub async fn new() -> Result<Net> {
        Net::with_params(|_| {}).await
    }

    /// Like [`Net::new`] with the test parameters changed by `tweak`.
    pub async fn with_params(tweak: impl FnOnce(&mut Params)) -> Result<Net> {
        let testnet = TestNet::start().await?;
        let ChainSource::BitcoindRpc {
            port,
            user,
            password,
            ..
        } = testnet.bitcoind.chain_source()
        else {
            unreachable!()
        };
        let rpc = BitcoindRpc::new(
            format!("http://127.0.0.1:{port}"),
            RpcAuth::UserPass { user, password },
        );
        let mut params = Params {
            epoch_sessions: 2,
            bond_min_timelock: 50,
            bond_margin: 5,
            bond_min_confirmations: 1,
            bond_min_sat: 10_000,
            epoch_pool_msat: 1_000_000,
            ..Params::default()
        };
        tweak(&mut params);
        let (federation, keys) = boltensor_coordinator::config::loopback_federation(
            "test",
            b"test",
            4,
            ConsensusTiming {
                rounds_per_session: 8,
                round_delay_ms: 60,
            },
            params,
            boltensor_testenv::free_port,
        )?;
        federation.validate()?;
        Ok(Net {
            testnet,
            rpc,
            federation,
            keys,
            dirs: (0..4)
                .map(|_| tempfile::tempdir())
                .collect::<std::io::Result<_>>()?,
            members: (0..4).map(|_| None).collect(),
            ln: (0..4).map(|_| None).collect(),
            http: reqwest::Client::new(),
        })
    }

    /// A federation of four, all started.
    pub async fn start() -> Result<Net> {
        Net::start_with(|_| {}).await
    }

    /// Like [`Net::start`] with the test parameters changed by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut Params)) -> Result<Net> {
        let mut net = Net::with_params(tweak).await?;
        for i in 0..4 {
            net.members[i] = Some(net.start_member(i).await?);
        }
        Ok(net)
    }

    pub fn bitcoind(&self) -> &boltensor_testenv::Bitcoind {
        &self.testnet.bitcoind
    }

    pub async fn start_member(&self, i: usize) -> Result<Running> {
        self.start_member_with(i, Some(self.rpc.clone())).await
    }

    /// Starts member `i` with `rpc` as its bitcoind (none: it checks and attests no bond).
    pub async fn start_member_with(
        &self,
        i: usize,
        rpc: Option<boltensor_contracts::BitcoindRpc>,
    ) -> Result<Running> {
        let cfg = CoordinatorConfig {
            federation: self.federation.clone(),
            index: i,
            keypair: self.keys[i],
            data_dir: self.dirs[i].path().to_path_buf(),
        };
        Ok(start(
            cfg,
            Options {
                rpc,
                bond_check_every: Some(Duration::from_millis(500)),
                ln_shared: false,
                ln: self.ln[i].clone(),
                dashboard_annex: None,
            },
        )
        .await?)
    }

    pub fn api(&self, i: usize) -> String {
        format!("http://{}", self.federation.members[i].api)
    }

    pub async fn get(&self, i: usize, path: &str) -> Result<Option<Value>> {
        let resp = self
            .http
            .get(format!("{}{path}", self.api(i)))
            .send()
            .await?;
        if resp.status() == 404 {
            return Ok(None);
        }
        Ok(Some(resp.error_for_status()?.json().await?))
    }

    pub async fn post(&self, i: usize, path: &str, body: &Value) -> Result<(u16, Value)> {
        let resp = self
            .http
            .post(format!("{}{path}", self.api(i)))
            .json(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await?))
    }

    pub async fn status(&self, i: usize) -> Result<Value> {
        Ok(self.get(i, "/v1/status").await?.ok_or("no status")?)
    }

    /// Waits until members `who` have a signed epoch `epoch`; returns them.
    pub async fn wait_epoch(
        &self,
        who: &[usize],
        epoch: u64,
        timeout: Duration,
    ) -> Result<Vec<SignedEpoch>> {
        let mut out = Vec::new();
        for &i in who {
            let e = wait_for(
                &format!("member {i} to sign epoch {epoch}"),
                timeout,
                || async {
                    match self.get(i, &format!("/v1/epochs/{epoch}")).await {
                        Ok(Some(v)) => Ok(Some(
                            serde_json::from_value::<SignedEpoch>(v).expect("present in this test"),
                        )),
                        _ => Ok(None),
                    }
                },
            )
            .await?;
            out.push(e);
        }
        Ok(out)
    }

    /// Bonded validators: each funds a bond from its coinbase coins; the bonds confirm together and
    /// each registers with its proof.
    pub async fn bonded_registrations(&self, who: &[(&str, u64)]) -> Result<Vec<ConsensusItem>> {
        let nodes: Vec<_> = who.iter().map(|(label, _)| Node::of(label)).collect();
        self.bonded_registrations_for(who, &nodes).await
    }

    /// Like [`Net::bonded_registrations`] with the validators' Lightning nodes given.
    pub async fn bonded_registrations_for(
        &self,
        who: &[(&str, u64)],
        nodes: &[Node<'_>],
    ) -> Result<Vec<ConsensusItem>> {
        for (label, _) in who {
            let wallet = KeyWallet::new(key(label), Network::Regtest);
            self.bitcoind().mine_to(1, &wallet.address()).await?;
        }
        self.bitcoind().mine(100).await?;
        let mut out = Vec::new();
        for ((label, sats), node) in who.iter().zip(nodes) {
            let owner = key(label);
            let outpoint = self.fund_bond(&owner, *sats).await?;
            let proof = bond_claims(&owner, &owner, node.id(), outpoint, *sats).sign(&owner)?;
            let mut reg = Registration::new(
                Role::Validator,
                owner.x_only_public_key().0,
                node.id().to_string(),
                self.federation.id(),
            );
            reg.bond = Some(proof.to_hex());
            out.push(signed(reg, *node, &owner));
        }
        self.bitcoind().mine(1).await?;
        Ok(out)
    }

    /// Funds a bond of `sats` owned by `owner` (T = 200) from `owner`'s coins (mined to its address
    /// beforehand); returns its outpoint, unconfirmed.
    pub async fn fund_bond(&self, owner: &Keypair, sats: u64) -> Result<bitcoin::OutPoint> {
        let wallet = KeyWallet::new(*owner, Network::Regtest);
        let fed = Federation::byzantine(self.federation.keys())?;
        let bond = Bond::new(owner.x_only_public_key().0, fed, 200)?;
        let funding = wallet
            .fund(
                &self.rpc,
                bond.script_pubkey(),
                Amount::from_sat(sats),
                FeeRate::from_sat_per_vb(2).expect("present in this test"),
            )
            .await?;
        Ok(funding.outpoint)
    }
}

/// The claims of a validator bond (T = 200) owned by `owner` for registration key `registrant`.
pub fn bond_claims(
    owner: &Keypair,
    registrant: &Keypair,
    node: bitcoin::secp256k1::PublicKey,
    outpoint: bitcoin::OutPoint,
    sats: u64,
) -> BondClaims {
    BondClaims {
        outpoint,
        amount: Amount::from_sat(sats),
        timelock: 200,
        owner: owner.x_only_public_key().0,
        role: Role::Validator,
        node_id: node,
        registration_key: registrant.x_only_public_key().0,
    }
}

pub fn miner_registration(label: &str) -> ConsensusItem {
    miner_registration_for(label, Node::of(label))
}

/// A miner's registration with its Lightning node given.
pub fn miner_registration_for(label: &str, node: Node<'_>) -> ConsensusItem {
    let kp = key(label);
    let mut reg = Registration::new(
        Role::Miner,
        kp.x_only_public_key().0,
        node.id().to_string(),
        fed_id(),
    );
    reg.api = Some(format!("http://127.0.0.1:1/{label}"));
    reg.models = vec!["all-minilm-l6-v2".into()];
    signed(reg, node, &kp)
}

/// A miner's registration (as [`miner_registration`]) carrying a bond proof, owned and signed by the
/// miner's key, that claims `sats` at `outpoint` (T = 200) — whether or not that output exists.
pub fn bonded_miner_registration(
    label: &str,
    outpoint: bitcoin::OutPoint,
    sats: u64,
) -> Result<ConsensusItem> {
    let kp = key(label);
    let node = Node::of(label);
    let mut claims = bond_claims(&kp, &kp, node.id(), outpoint, sats);
    claims.role = Role::Miner;
    let proof = claims.sign(&kp)?;
    let mut reg = Registration::new(
        Role::Miner,
        kp.x_only_public_key().0,
        node.id().to_string(),
        fed_id(),
    );
    reg.api = Some(format!("http://127.0.0.1:1/{label}"));
    reg.models = vec!["all-minilm-l6-v2".into()];
    reg.bond = Some(proof.to_hex());
    Ok(signed(reg, node, &kp))
}

/// Keeps `who` submitting `w` for the current epoch to member `to` every 300 ms, like real validators
/// do, until the handle is aborted.
pub fn submit_weights(
    net: &Net,
    to: usize,
    who: &[&'static str],
    w: &'static [(&'static str, u16)],
) -> tokio::task::JoinHandle<()> {
    let http = net.http.clone();
    let api = net.api(to);
    let who = who.to_vec();
    tokio::spawn(async move {
        loop {
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
                for v in &who {
                    let _ = http
                        .post(format!("{api}/v1/weights"))
                        .json(&weights(v, e, w))
                        .send()
                        .await;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    })
}

pub fn weights(validator: &str, epoch: u64, w: &[(&str, u16)]) -> Value {
    let by_node: Vec<(String, u16)> = w
        .iter()
        .map(|(m, v)| (node_id(&format!("{m}-node")), *v))
        .collect();
    weights_by_node(validator, epoch, &by_node)
}

/// A validator's signed weights over miners given by Lightning node id.
pub fn weights_by_node(validator: &str, epoch: u64, w: &[(String, u16)]) -> Value {
    let kp = key(validator);
    let vector = WeightVector {
        epoch,
        validator: kp.x_only_public_key().0.serialize(),
        weights: w.iter().cloned().collect::<BTreeMap<_, _>>(),
    };
    serde_json::to_value(vector.sign(&kp)).expect("present in this test")
}

/// Test logging (`RUST_LOG`, else the coordinator's warnings), once per test binary.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "boltensor_coordinator=warn".into()),
        )
        .with_test_writer()
        .try_init();
}
