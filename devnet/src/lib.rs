//! The devnet: a whole Boltensor network on one machine, kept in a data dir, up until Ctrl-C.
//!
//! `boltensor devnet up` calls [`up`]: it starts (or resumes) a regtest bitcoind and one ldk-node node per
//! role member, funds them, opens the channel topology (clients and validators → every coordinator →
//! every miner; every coordinator → every validator, for dividends), checks that a client can pay a
//! miner through a coordinator (a held payment, failed back: no sats move, so a resumed devnet keeps
//! its balances), and serves its state on a local control port (`GET /status` as JSON, `GET /metrics`
//! as Prometheus text, `POST /shutdown`). `boltensor devnet status` calls [`status`], which reads it.
//!
//! On these nodes run the role services: the coordinator federation ([`federation`]: at least four
//! members running consensus, each paying its epochs from a coordinator's node), miners' APIs
//! registered with it (the last miner misbehaves), validators that bond, register, score the registered
//! miners and submit weights every federation epoch, clients' paying proxies with generated traffic,
//! and a block timer.

pub mod audit;
pub mod federation;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use boltensor_client::{ClientConfig, PayingClient};
use boltensor_coordinator::FederationConfig;
use boltensor_ln::{Balances, LnNode, PublicKey};
use boltensor_miner::{Miner, MinerConfig, Misbehaviour};
use boltensor_protocol::Role;
pub use boltensor_validator::SpendPolicy;
use boltensor_validator::{Validator, ValidatorConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use boltensor_testenv::net::{CHANNEL_CONFIRMATIONS, COINBASE_MATURITY, STEP_TIMEOUT};
use boltensor_testenv::{
    ensure_port_free, free_port, random_hex, wait_for, Bitcoind, BitcoindOptions, RpcClient,
    TestEnvError, TestNet,
};

/// The default control port of `boltensor devnet up`.
pub const DEFAULT_CONTROL_PORT: u16 = 28480;

/// Capacity of each client's and validator's channel to each coordinator.
pub const PAYER_CHANNEL_SATS: u64 = 2_000_000;
/// Capacity of each coordinator's channel to each miner.
pub const MINER_CHANNEL_SATS: u64 = 5_000_000;
/// Capacity of each coordinator's channel to each validator: the way the epoch's payer pays dividends
/// (a validator's own channel to a coordinator holds nothing on the coordinator's side beyond the
/// challenges it paid, and that stays under the channel reserve).
pub const DIVIDEND_CHANNEL_SATS: u64 = 1_000_000;

/// What `devnet up` is asked to run.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Where state lives; `up` again resumes from it.
    pub data_dir: PathBuf,
    /// Number of coordinators' Lightning hubs. The federation runs `max(4, coordinators)` members
    /// (see [`federation`]); with fewer hubs than members, hubs' nodes are shared.
    pub coordinators: usize,
    /// Number of miners.
    pub miners: usize,
    /// Number of validators.
    pub validators: usize,
    /// Number of clients.
    pub clients: usize,
    /// bitcoind to use (else [`boltensor_testenv::locate_bitcoind`]).
    pub bitcoind: Option<PathBuf>,
    /// The local port serving `/status` and `/shutdown`.
    pub control_port: u16,
    /// Where the models are (None: `~/.cache/boltensor/models`); `Some("")`-like empty dirs fail clearly.
    pub models_dir: Option<PathBuf>,
    /// Pause between the clients' paid requests (None: no traffic).
    pub traffic_interval: Option<Duration>,
    /// Pause between validators' challenge rounds (None: validators do not challenge).
    pub validator_round: Option<Duration>,
    /// The validators' challenge spend policy (None: they spend up to their per-miner caps whatever
    /// they earn). `devnet up` sets [`VALIDATOR_SPEND`].
    pub validator_spend: Option<SpendPolicy>,
    /// About how long a federation epoch lasts (converted into sessions when the federation is created;
    /// a resumed federation keeps its own). Each validator submits a weight vector per epoch.
    pub epoch: Duration,
    /// Mine a block this often (None: only when the devnet needs one).
    pub block_interval: Option<Duration>,
}

/// The devnet's persistent layout: `<data_dir>/devnet.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevnetState {
    /// bitcoind's RPC port.
    pub bitcoind_rpc_port: u16,
    /// bitcoind's RPC user.
    pub rpc_user: String,
    /// bitcoind's RPC password.
    pub rpc_password: String,
    /// The control port.
    pub control_port: u16,
    /// Every node, in start order.
    pub nodes: Vec<NodeEntry>,
}

/// One node of the devnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Unique name, e.g. `miner-2`.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its Lightning listen port on 127.0.0.1.
    pub ln_port: u16,
    /// Its HTTP port on 127.0.0.1: a miner's OpenAI-compatible API, a client's paying proxy (0: none).
    #[serde(default)]
    pub api_port: u16,
}

impl DevnetState {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("devnet.json")
    }

    /// Reads the state of the devnet in `data_dir`, if there is one.
    pub fn load(data_dir: &Path) -> Result<Option<Self>, TestEnvError> {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                TestEnvError::Devnet(format!(
                    "{} is not a devnet state file ({e}); remove the data dir or choose another",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TestEnvError::io(format!("reading {}", path.display()))(e)),
        }
    }

    fn save(&self, data_dir: &Path) -> Result<(), TestEnvError> {
        let path = Self::path(data_dir);
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).expect("state serialises");
        // It holds bitcoind's RPC password: owner only.
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(&json)
        };
        write().map_err(TestEnvError::io(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, &path)
            .map_err(TestEnvError::io(format!("writing {}", path.display())))
    }

    fn new(cfg: &DevnetConfig) -> Result<Self, TestEnvError> {
        let port = || free_port().map_err(TestEnvError::io("finding a free port"));
        let mut nodes = Vec::new();
        for (role, count) in [
            (Role::Coordinator, cfg.coordinators),
            (Role::Miner, cfg.miners),
            (Role::Validator, cfg.validators),
            (Role::Client, cfg.clients),
        ] {
            for i in 1..=count {
                let api_port = match role {
                    Role::Miner | Role::Client => port()?,
                    _ => 0,
                };
                nodes.push(NodeEntry {
                    name: format!("{role}-{i}"),
                    role,
                    ln_port: port()?,
                    api_port,
                });
            }
        }
        Ok(DevnetState {
            bitcoind_rpc_port: port()?,
            rpc_user: "boltensor".into(),
            rpc_password: random_hex(),
            control_port: cfg.control_port,
            nodes,
        })
    }

    fn count(&self, role: Role) -> usize {
        self.nodes.iter().filter(|n| n.role == role).count()
    }

    /// The planned channels, as (opener, acceptor, capacity) by name: every client and validator opens
    /// one to every coordinator, every coordinator one to every miner and one to every validator (to pay
    /// it dividends).
    pub fn topology(&self) -> Vec<(String, String, u64)> {
        let names = |role| {
            self.nodes
                .iter()
                .filter(move |n| n.role == role)
                .map(|n| n.name.clone())
        };
        let mut plan = Vec::new();
        for payer in names(Role::Client).chain(names(Role::Validator)) {
            for coord in names(Role::Coordinator) {
                plan.push((payer.clone(), coord, PAYER_CHANNEL_SATS));
            }
        }
        for coord in names(Role::Coordinator) {
            for miner in names(Role::Miner) {
                plan.push((coord.clone(), miner, MINER_CHANNEL_SATS));
            }
            for validator in names(Role::Validator) {
                plan.push((coord.clone(), validator, DIVIDEND_CHANNEL_SATS));
            }
        }
        plan
    }
}

/// What `/status` answers and `boltensor devnet status` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// `starting`, a step description, `ready`, or `failed: …`.
    pub phase: String,
    /// Whether every planned channel is usable and the routing check passed.
    pub ready: bool,
    /// The data dir.
    pub data_dir: PathBuf,
    /// bitcoind's RPC URL.
    pub bitcoind_rpc: String,
    /// Current block height, when known.
    pub height: Option<u64>,
    /// This control server.
    pub control_url: String,
    /// The result of paying a miner from a client through a coordinator, when done.
    pub routing_check: Option<String>,
    /// Every node that has started.
    pub nodes: Vec<NodeStatus>,
    /// What the devnet's clients spent (generated traffic included).
    #[serde(default)]
    pub spend: Vec<(String, boltensor_client::Spend)>,
    /// Each validator's current scores, by miner name.
    #[serde(default)]
    pub scores: Vec<(String, BTreeMap<String, f64>)>,
    /// The coordinator federation, once started.
    #[serde(default)]
    pub federation: Option<federation::FederationReport>,
    /// Each validator's books since this launcher started it: dividends against challenge spend and the
    /// capital cost of its bond.
    #[serde(default)]
    pub validators_net: Vec<ValidatorNet>,
}

/// `devnet up`'s validators' spend policy: a bootstrap of about two challenges, then half of what they
/// earned (docs/economics.md, "Validators' net").
pub const VALIDATOR_SPEND: SpendPolicy = SpendPolicy {
    bootstrap_msat: 5_000,
    income_share_ppm: 500_000,
};

/// The bond capital cost a validator's net counts: 5 % a year of its bond (what the bonded bitcoin could
/// earn elsewhere), in ppm per year.
pub const BOND_CAPITAL_RATE_PPM: u64 = 50_000;

/// A validator's net since the launcher started it (docs/economics.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorNet {
    /// The validator's node name.
    pub name: String,
    /// Its node id (the dashboard matches it to the registry's validators).
    #[serde(default)]
    pub node_id: String,
    /// Seconds since it started.
    pub secs: u64,
    /// Epoch payouts its node received (dividends), msat.
    pub dividends_msat: u64,
    /// Challenge prices and routing fees of settled challenges, msat.
    pub challenge_spend_msat: u64,
    /// Its bond, sat.
    pub bond_sat: u64,
    /// The bond's capital cost over `secs` at [`BOND_CAPITAL_RATE_PPM`], msat.
    pub capital_cost_msat: u64,
    /// dividends − challenge spend − capital cost, msat.
    pub net_msat: i64,
    /// Challenges not sent because its spend policy's allowance was used up.
    #[serde(default)]
    pub over_budget: u64,
}

impl ValidatorNet {
    fn of(
        name: &str,
        node_id: &str,
        started: &ValidatorStart,
        keysend_now_msat: u64,
        spend: &boltensor_validator::ValidatorMetrics,
    ) -> Self {
        let secs = started.at.elapsed().as_secs();
        let dividends_msat = keysend_now_msat.saturating_sub(started.keysend_msat);
        let challenge_spend_msat = spend.spent_msat.saturating_add(spend.fees_msat);
        let capital_cost_msat = (u128::from(started.bond_sat)
            * 1000
            * u128::from(BOND_CAPITAL_RATE_PPM)
            * u128::from(secs)
            / 1_000_000
            / (365 * 24 * 3600)) as u64;
        ValidatorNet {
            name: name.to_owned(),
            node_id: node_id.to_owned(),
            secs,
            dividends_msat,
            challenge_spend_msat,
            bond_sat: started.bond_sat,
            capital_cost_msat,
            net_msat: dividends_msat as i64
                - challenge_spend_msat as i64
                - capital_cost_msat as i64,
            over_budget: spend.over_budget,
        }
    }
}

/// When the launcher started a validator, with what bond, and what its node had received by then.
#[derive(Debug, Clone)]
struct ValidatorStart {
    at: std::time::Instant,
    bond_sat: u64,
    keysend_msat: u64,
}

/// One node in a [`StatusReport`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Lightning node id.
    pub node_id: String,
    /// Lightning peer address.
    pub ln_addr: SocketAddr,
    /// A miner's API or a client's proxy (OpenAI base URL), if it serves one.
    #[serde(default)]
    pub api_url: Option<String>,
    /// A client's proxy: the file holding its API key (`Authorization: Bearer <key>`).
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// A client's agent wallet: LND's REST payment call (`POST /v2/router/send`) over the client's node,
    /// so L402 agents that pay through LND (PyPI `l402-requests`' `LndWallet`) pay from it; its macaroon
    /// is the proxy's key (docs/clients.md).
    #[serde(default)]
    pub agent_wallet_url: Option<String>,
    /// Funds.
    pub onchain_sats: u64,
    /// Lightning funds.
    pub lightning_sats: u64,
    /// Epoch payouts received (keysend), msat.
    #[serde(default)]
    pub keysend_received_msat: u64,
    /// Channels.
    pub channels: Vec<ChannelStatus>,
}

/// One channel in a [`StatusReport`], seen from its node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelStatus {
    /// The peer's devnet name (or node id if not a devnet node).
    pub peer: String,
    /// Capacity.
    pub capacity_sats: u64,
    /// What this side can send.
    pub outbound_msat: u64,
    /// What this side can receive.
    pub inbound_msat: u64,
    /// Usable for payments now.
    pub usable: bool,
    /// Whether this side opened it.
    pub outbound: bool,
}

impl StatusReport {
    /// A terminal-friendly rendering: nodes, then channels with balances.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "devnet {} ({})  height {}  bitcoind {}  control {}",
            if self.ready { "READY" } else { "NOT READY" },
            self.phase,
            self.height.map_or("?".into(), |h| h.to_string()),
            self.bitcoind_rpc,
            self.control_url
        );
        let _ = writeln!(out, "data dir {}", self.data_dir.display());
        if let Some(check) = &self.routing_check {
            let _ = writeln!(out, "routing check: {check}");
        }
        let _ = writeln!(
            out,
            "\n{:<15} {:<12} {:<21} {:>14} {:>12}  {:<30} node id",
            "node", "role", "lightning", "on-chain sat", "channel sat", "OpenAI API"
        );
        for n in &self.nodes {
            let _ = writeln!(
                out,
                "{:<15} {:<12} {:<21} {:>14} {:>12}  {:<30} {}",
                n.name,
                n.role,
                n.ln_addr,
                n.onchain_sats,
                n.lightning_sats,
                n.api_url.as_deref().unwrap_or("-"),
                n.node_id
            );
        }
        for n in &self.nodes {
            if let Some(wallet) = &n.agent_wallet_url {
                let _ = writeln!(
                    out,
                    "{} agent wallet (LND REST for L402 agents; macaroon = the proxy's key): {wallet}",
                    n.name
                );
            }
        }
        if let Some(f) = &self.federation {
            let opt = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
            let _ = writeln!(
                out,
                "\nfederation {} ({} members, {} signatures make a result final, {} sessions per epoch): \
                 session {}, epoch {}, last signed epoch {}, {} registered; payouts {} receipted, {} owed ({} msat)",
                f.name,
                f.members.len(),
                f.threshold,
                f.epoch_sessions,
                opt(f.session),
                opt(f.epoch),
                opt(f.last_signed_epoch),
                opt(f.registered),
                f.payouts_receipted,
                f.payouts_owed,
                f.payouts_owed_msat
            );
            for m in &f.members {
                let state = match &m.status {
                    Some(s) => format!(
                        "session {} epoch {} last signed {}",
                        s.session,
                        s.epoch,
                        opt(s.last_signed_epoch)
                    ),
                    None => format!("NOT ANSWERING: {}", m.error.as_deref().unwrap_or("?")),
                };
                let _ = writeln!(
                    out,
                    "  member {} {:<24} pays from {:<15} {state}",
                    m.index, m.api_url, m.hub
                );
            }
            if let Some(m) = f.members.first() {
                let _ = writeln!(out, "dashboard: {}/", m.api_url.trim_end_matches('/'));
                let _ = writeln!(
                    out,
                    "audit the latest epoch: boltensor epoch verify --from {}",
                    m.api_url
                );
            }
        }
        for (name, scores) in &self.scores {
            let list: Vec<String> = scores.iter().map(|(m, s)| format!("{m} {s:.2}")).collect();
            let _ = writeln!(out, "{name} scores: {}", list.join(", "));
        }
        for v in &self.validators_net {
            let _ = writeln!(
                out,
                "{} net {} msat over {} s = dividends {} − challenges {} − bond capital {} ({} sat at {} %/year); {} challenges skipped (spend follows income)",
                v.name,
                v.net_msat,
                v.secs,
                v.dividends_msat,
                v.challenge_spend_msat,
                v.capital_cost_msat,
                v.bond_sat,
                BOND_CAPITAL_RATE_PPM as f64 / 10_000.0,
                v.over_budget
            );
        }
        for (name, s) in &self.spend {
            let _ = writeln!(
                out,
                "{name}: {} requests, {} paid, {} msat spent + {} msat fees, {} refunded, {} msat credit",
                s.requests, s.paid_requests, s.spent_msat, s.fees_msat, s.refunded, s.credit_msat
            );
        }
        let _ = writeln!(
            out,
            "\n{:<15}    {:<15} {:>12} {:>14} {:>14}  state",
            "opener", "peer", "capacity", "opener can send", "peer can send"
        );
        for n in &self.nodes {
            for c in n.channels.iter().filter(|c| c.outbound) {
                let _ = writeln!(
                    out,
                    "{:<15} -> {:<15} {:>12} {:>14} {:>14}  {}",
                    n.name,
                    c.peer,
                    c.capacity_sats,
                    c.outbound_msat / 1000,
                    c.inbound_msat / 1000,
                    if c.usable { "usable" } else { "NOT USABLE" }
                );
            }
        }
        out
    }
}

impl StatusReport {
    /// The same as Prometheus text (`GET /metrics` on the control port): readiness, height, each
    /// node's balances and channels, the clients' spend, the validators' scores, the federation's
    /// progress. Each role's own daemon serves its detailed metrics (docs/operators.md).
    pub fn prometheus(&self) -> String {
        fn label(v: &str) -> String {
            v.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        }
        fn gauge(out: &mut String, name: &str, help: &str) {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        }
        let mut out = String::new();
        gauge(
            &mut out,
            "boltensor_devnet_ready",
            "1 once every channel is usable and the services run.",
        );
        let _ = writeln!(out, "boltensor_devnet_ready {}", u8::from(self.ready));
        if let Some(h) = self.height {
            gauge(
                &mut out,
                "boltensor_devnet_block_height",
                "The regtest chain's height.",
            );
            let _ = writeln!(out, "boltensor_devnet_block_height {h}");
        }
        type Field = fn(&NodeStatus) -> u64;
        let fields: [(&str, &str, Field); 4] = [
            (
                "boltensor_devnet_onchain_sats",
                "A node's on-chain funds.",
                |n| n.onchain_sats,
            ),
            (
                "boltensor_devnet_lightning_sats",
                "A node's Lightning funds.",
                |n| n.lightning_sats,
            ),
            (
                "boltensor_devnet_keysend_received_msat",
                "Epoch payouts a node received (keysend).",
                |n| n.keysend_received_msat,
            ),
            (
                "boltensor_devnet_usable_channels",
                "A node's channels usable for payments now.",
                |n| n.channels.iter().filter(|c| c.usable).count() as u64,
            ),
        ];
        for (name, help, get) in fields {
            gauge(&mut out, name, help);
            for n in &self.nodes {
                let _ = writeln!(
                    out,
                    "{name}{{node=\"{}\",role=\"{}\"}} {}",
                    label(&n.name),
                    n.role,
                    get(n)
                );
            }
        }
        type SpendField = fn(&boltensor_client::Spend) -> u64;
        let spend: [(&str, &str, SpendField); 5] = [
            (
                "boltensor_devnet_client_requests_total",
                "Requests a client sent.",
                |s| s.requests,
            ),
            (
                "boltensor_devnet_client_paid_requests_total",
                "Requests whose payment settled.",
                |s| s.paid_requests,
            ),
            (
                "boltensor_devnet_client_spent_msat_total",
                "Settled prices.",
                |s| s.spent_msat,
            ),
            (
                "boltensor_devnet_client_fees_msat_total",
                "Routing fees of settled payments.",
                |s| s.fees_msat,
            ),
            (
                "boltensor_devnet_client_refunded_total",
                "Payments failed back (refunded).",
                |s| s.refunded,
            ),
        ];
        for (name, help, get) in spend {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (client, s) in &self.spend {
                let _ = writeln!(out, "{name}{{client=\"{}\"}} {}", label(client), get(s));
            }
        }
        gauge(
            &mut out,
            "boltensor_devnet_validator_score",
            "A validator's current score of a miner.",
        );
        for (validator, scores) in &self.scores {
            for (miner, score) in scores {
                let _ = writeln!(
                    out,
                    "boltensor_devnet_validator_score{{validator=\"{}\",miner=\"{}\"}} {score}",
                    label(validator),
                    label(miner)
                );
            }
        }
        type NetField = fn(&ValidatorNet) -> i64;
        let net_fields: [(&str, &str, NetField); 4] = [
            (
                "boltensor_devnet_validator_dividends_msat",
                "Epoch payouts a validator received since it started.",
                |v| v.dividends_msat as i64,
            ),
            (
                "boltensor_devnet_validator_challenge_spend_msat",
                "What a validator paid for settled challenges since it started (prices and fees).",
                |v| v.challenge_spend_msat as i64,
            ),
            (
                "boltensor_devnet_validator_capital_cost_msat",
                "Its bond's capital cost since it started, at BOND_CAPITAL_RATE_PPM.",
                |v| v.capital_cost_msat as i64,
            ),
            (
                "boltensor_devnet_validator_net_msat",
                "Dividends minus challenge spend minus bond capital cost.",
                |v| v.net_msat,
            ),
        ];
        for (name, help, get) in net_fields {
            gauge(&mut out, name, help);
            for v in &self.validators_net {
                let _ = writeln!(out, "{name}{{validator=\"{}\"}} {}", label(&v.name), get(v));
            }
        }
        if let Some(f) = &self.federation {
            let values = [
                (
                    "boltensor_devnet_federation_session",
                    "The highest session a member runs.",
                    f.session,
                ),
                (
                    "boltensor_devnet_federation_epoch",
                    "The epoch being collected.",
                    f.epoch,
                ),
                (
                    "boltensor_devnet_federation_last_signed_epoch",
                    "The last epoch whose result is signed.",
                    f.last_signed_epoch,
                ),
                (
                    "boltensor_devnet_federation_registered",
                    "Registered miners and validators.",
                    f.registered,
                ),
                (
                    "boltensor_devnet_federation_payouts_receipted",
                    "Epoch payouts made and receipted.",
                    Some(f.payouts_receipted as u64),
                ),
                (
                    "boltensor_devnet_federation_payouts_owed_msat",
                    "Epoch payouts owed, not yet receipted.",
                    Some(f.payouts_owed_msat),
                ),
                (
                    "boltensor_devnet_federation_members_answering",
                    "Members whose API answers.",
                    Some(f.members.iter().filter(|m| m.status.is_some()).count() as u64),
                ),
            ];
            for (name, help, value) in values {
                if let Some(v) = value {
                    gauge(&mut out, name, help);
                    let _ = writeln!(out, "{name} {v}");
                }
            }
        }
        out
    }
}

struct Shared {
    data_dir: PathBuf,
    phase: RwLock<String>,
    ready: RwLock<bool>,
    routing_check: RwLock<Option<String>>,
    nodes: RwLock<Vec<(NodeEntry, Arc<LnNode>)>>,
    bitcoind: RwLock<Option<(String, RpcClient)>>,
    control_url: String,
    shutdown: watch::Sender<bool>,
    /// Names of nodes whose HTTP service is up.
    services_up: RwLock<Vec<String>>,
    /// The clients' paying clients, by node name.
    clients: RwLock<Vec<(String, PayingClient)>>,
    /// The validators, by node name, and miner names by API URL.
    validators: RwLock<Vec<(String, Arc<Validator>)>>,
    /// When each validator started, by node name (its net in the status).
    validator_starts: RwLock<HashMap<String, ValidatorStart>>,
    miner_names: RwLock<HashMap<String, String>>,
    /// The miners, by node name (their request stores feed the ledger audit).
    miners: RwLock<Vec<(String, Arc<Miner>)>>,
    /// Each client's agent wallet URL, by node name.
    agent_wallets: RwLock<HashMap<String, String>>,
    /// Miner, proxy and traffic tasks, stopped (in order) before the nodes.
    services: tokio::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The federation's config and the hub (node name) paying for each member index modulo its length.
    federation: RwLock<Option<(FederationConfig, Vec<String>)>>,
    /// The running federation members, stopped after the services and before the nodes.
    coordinators: tokio::sync::Mutex<Vec<boltensor_coordinator::Running>>,
    services_stop: watch::Sender<bool>,
}

impl Shared {
    /// Each validator's net since the launcher started it (dividends from its node's payment store,
    /// challenge spend from the validator's books).
    fn validators_net(&self) -> Vec<ValidatorNet> {
        let starts = read(&self.validator_starts).clone();
        let nodes = read(&self.nodes).clone();
        read(&self.validators)
            .iter()
            .filter_map(|(name, v)| {
                let started = starts.get(name)?;
                let node = nodes.iter().find(|(e, _)| e.name == *name)?;
                Some(ValidatorNet::of(
                    name,
                    &node.1.node_id().to_string(),
                    started,
                    node.1.received_keysend_msat(),
                    &v.metrics(),
                ))
            })
            .collect()
    }

    fn set_phase(&self, phase: impl Into<String>) {
        let phase = phase.into();
        tracing::info!(%phase, "devnet");
        *write(&self.phase) = phase;
    }

    async fn report(&self) -> StatusReport {
        let (bitcoind_rpc, rpc) = read(&self.bitcoind)
            .clone()
            .map_or((String::new(), None), |(u, c)| (u, Some(c)));
        let height = match rpc {
            Some(rpc) => rpc
                .call::<u64>("getblockcount", serde_json::json!([]))
                .await
                .ok(),
            None => None,
        };
        let fed = read(&self.federation).clone();
        let federation = match fed {
            Some((config, hubs)) => Some(federation::report(&config, &hubs).await),
            None => None,
        };
        let nodes = read(&self.nodes).clone();
        let names: HashMap<PublicKey, String> = nodes
            .iter()
            .map(|(e, n)| (n.node_id(), e.name.clone()))
            .collect();
        StatusReport {
            phase: read(&self.phase).clone(),
            ready: *read(&self.ready),
            data_dir: self.data_dir.clone(),
            bitcoind_rpc,
            height,
            control_url: self.control_url.clone(),
            routing_check: read(&self.routing_check).clone(),
            federation,
            spend: read(&self.clients)
                .iter()
                .map(|(name, c)| (name.clone(), c.spend()))
                .collect(),
            scores: {
                let names = read(&self.miner_names).clone();
                read(&self.validators)
                    .iter()
                    .map(|(name, v)| {
                        let scores = v
                            .scores()
                            .into_iter()
                            .map(|(url, s)| (names.get(&url).cloned().unwrap_or(url), s))
                            .collect();
                        (name.clone(), scores)
                    })
                    .collect()
            },
            validators_net: self.validators_net(),
            nodes: nodes
                .iter()
                .map(|(e, n)| {
                    let Balances {
                        onchain_sats,
                        lightning_sats,
                        ..
                    } = n.balances();
                    NodeStatus {
                        name: e.name.clone(),
                        role: e.role,
                        node_id: n.node_id().to_string(),
                        ln_addr: n.listen_addr(),
                        api_url: (e.api_port != 0 && read(&self.services_up).contains(&e.name))
                            .then(|| format!("http://127.0.0.1:{}/v1", e.api_port)),
                        api_key_file: (e.role == Role::Client && e.api_port != 0).then(|| {
                            proxy_dir(&self.data_dir, &e.name)
                                .join(boltensor_client::proxy::KEY_FILE)
                        }),
                        agent_wallet_url: read(&self.agent_wallets).get(&e.name).cloned(),
                        onchain_sats,
                        lightning_sats,
                        keysend_received_msat: n.received_keysend_msat(),
                        channels: n
                            .channels()
                            .into_iter()
                            .map(|c| ChannelStatus {
                                peer: names
                                    .get(&c.counterparty)
                                    .cloned()
                                    .unwrap_or_else(|| c.counterparty.to_string()),
                                capacity_sats: c.capacity_sats,
                                outbound_msat: c.outbound_msat,
                                inbound_msat: c.inbound_msat,
                                usable: c.is_usable,
                                outbound: c.is_outbound,
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn control_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/status",
            get(|State(s): State<Arc<Shared>>| async move { Json(s.report().await) }),
        )
        .route(
            "/audit",
            get(|State(s): State<Arc<Shared>>| async move { Json(audit::collect(&s).await) }),
        )
        .route("/requests/{payment_hash}", get(request_record))
        .route(
            "/metrics",
            get(|State(s): State<Arc<Shared>>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    s.report().await.prometheus(),
                )
            }),
        )
        .route(
            "/shutdown",
            post(|State(s): State<Arc<Shared>>| async move {
                let _ = s.shutdown.send(true);
                "stopping\n"
            }),
        )
        .with_state(shared)
}

/// What the control API's `GET /requests/{payment_hash}` answers: a miner's record of one paid request
/// (without its body or preimage), for an agent that wants to see when its payment was taken.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestSummary {
    /// The miner's node name.
    pub miner: String,
    /// The model.
    pub model: String,
    /// The invoice amount, msat.
    pub price_msat: u64,
    /// `AwaitingPayment`, `Serving`, `Settling`, `Settled`, `FailedBack` or `Expired`.
    pub status: String,
    /// Whether a result is stored (kept for the token's re-fetch).
    pub result_stored: bool,
    /// Served because its payment came first (the kept request ran, then the miner claimed).
    pub paid_first: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

async fn request_record(
    State(s): State<Arc<Shared>>,
    axum::extract::Path(hash): axum::extract::Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let Some(hash) = hex::decode(&hash)
        .ok()
        .and_then(|h| <[u8; 32]>::try_from(h).ok())
    else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "a payment hash is 64 hex digits\n",
        )
            .into_response();
    };
    let miners = read(&s.miners).clone();
    for (name, miner) in miners {
        match miner.store().get(&hash) {
            Ok(Some(r)) => {
                return Json(RequestSummary {
                    miner: name,
                    model: r.model,
                    price_msat: r.price_msat,
                    status: format!("{:?}", r.status),
                    result_stored: r.result.is_some(),
                    paid_first: r.paid_first,
                    error: r.error,
                })
                .into_response()
            }
            Ok(None) => {}
            Err(e) => {
                return (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{name}'s store: {e}\n"),
                )
                    .into_response()
            }
        }
    }
    (
        axum::http::StatusCode::NOT_FOUND,
        "no miner of this devnet has a request with this payment hash\n",
    )
        .into_response()
}

/// After a `kill -9` of the launcher its bitcoind lives on (an orphan holding the data dir and the RPC
/// port). The pid lock has shown no launcher is alive, so a bitcoind answering on this devnet's port with
/// this devnet's credentials is that orphan: stop it over RPC and wait until the port is free.
async fn stop_stale_bitcoind(state: &DevnetState, datadir: &Path) -> Result<(), TestEnvError> {
    if ensure_port_free(state.bitcoind_rpc_port, "bitcoind RPC").is_ok() {
        return Ok(());
    }
    let rpc = RpcClient::new(
        format!("http://127.0.0.1:{}", state.bitcoind_rpc_port),
        state.rpc_user.clone(),
        state.rpc_password.clone(),
    );
    if rpc
        .call::<String>("stop", serde_json::json!([]))
        .await
        .is_err()
    {
        // Not ours (other credentials) or not bitcoind: leave it, the port check reports it.
        return Ok(());
    }
    eprintln!(
        "[devnet] stopped the bitcoind a previous launcher left running on port {}",
        state.bitcoind_rpc_port
    );
    // The RPC port closes before bitcoind lets go of its data dir: wait for the process itself.
    let arg = format!("-datadir={}", datadir.display());
    let running = move || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
            })
    };
    wait_for(
        "the stale bitcoind to exit",
        Duration::from_secs(60),
        || async {
            Ok(
                (!running() && ensure_port_free(state.bitcoind_rpc_port, "bitcoind RPC").is_ok())
                    .then_some(()),
            )
        },
    )
    .await
}

/// Guards the data dir against a second `up`: a pid file removed on drop.
struct PidLock(PathBuf);

impl PidLock {
    fn acquire(data_dir: &Path) -> Result<Self, TestEnvError> {
        let path = data_dir.join("devnet.pid");
        if let Ok(pid) = std::fs::read_to_string(&path) {
            let pid = pid.trim();
            if !pid.is_empty() && process_alive(pid) {
                return Err(TestEnvError::Devnet(format!(
                    "a devnet is already running on {} (pid {pid}); stop it with `boltensor devnet down` or Ctrl-C",
                    data_dir.display()
                )));
            }
        }
        std::fs::write(&path, std::process::id().to_string())
            .map_err(TestEnvError::io(format!("writing {}", path.display())))?;
        Ok(PidLock(path))
    }
}

/// Whether process `pid` exists and has not exited: a launcher killed with `kill -9` stays a zombie
/// until its parent reaps it, and that must not block the next `up`.
fn process_alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state …`: comm may hold spaces and parentheses, the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

impl Drop for PidLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts or resumes the devnet in `cfg.data_dir` and keeps it up until `stop` resolves or
/// `POST /shutdown` arrives; then stops every node and bitcoind cleanly. `on_ready` is called once with
/// the status when everything is usable.
pub async fn up(
    cfg: DevnetConfig,
    stop: impl std::future::Future<Output = ()>,
    on_ready: impl FnOnce(&StatusReport),
) -> Result<(), TestEnvError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(TestEnvError::io(format!(
        "creating data dir {}",
        cfg.data_dir.display()
    )))?;
    let data_dir = cfg
        .data_dir
        .canonicalize()
        .map_err(TestEnvError::io("resolving the data dir"))?;
    let _lock = PidLock::acquire(&data_dir)?;
    let state = match DevnetState::load(&data_dir)? {
        Some(state) => {
            let have = [
                Role::Coordinator,
                Role::Miner,
                Role::Validator,
                Role::Client,
            ]
            .map(|r| state.count(r));
            let want = [cfg.coordinators, cfg.miners, cfg.validators, cfg.clients];
            if have != want {
                return Err(TestEnvError::Devnet(format!(
                    "{} holds a devnet of {} coordinators, {} miners, {} validators, {} clients; \
                     run `up` with those counts, or `boltensor devnet down --wipe` to start afresh",
                    data_dir.display(),
                    have[0],
                    have[1],
                    have[2],
                    have[3]
                )));
            }
            tracing::info!(data_dir = %data_dir.display(), "resuming devnet");
            let mut state = state;
            let mut changed = false;
            for n in &mut state.nodes {
                if n.api_port == 0 && matches!(n.role, Role::Miner | Role::Client) {
                    n.api_port = free_port().map_err(TestEnvError::io("finding a free port"))?;
                    changed = true;
                }
            }
            if changed {
                state.save(&data_dir)?;
            }
            state
        }
        None => {
            if cfg.coordinators == 0 || cfg.miners == 0 {
                return Err(TestEnvError::Devnet(
                    "a devnet needs at least one coordinator and one miner".into(),
                ));
            }
            let state = DevnetState::new(&cfg)?;
            state.save(&data_dir)?;
            state
        }
    };

    ensure_port_free(state.control_port, "devnet control")?;
    stop_stale_bitcoind(&state, &data_dir.join("bitcoind")).await?;
    ensure_port_free(state.bitcoind_rpc_port, "bitcoind RPC")?;
    for n in &state.nodes {
        ensure_port_free(n.ln_port, &format!("lightning port of {}", n.name))?;
        if n.api_port != 0 {
            ensure_port_free(n.api_port, &format!("HTTP port of {}", n.name))?;
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", state.control_port))
        .await
        .map_err(TestEnvError::io("binding the control port"))?;
    let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        data_dir: data_dir.clone(),
        phase: RwLock::new("starting".into()),
        ready: RwLock::new(false),
        routing_check: RwLock::new(None),
        nodes: RwLock::new(Vec::new()),
        bitcoind: RwLock::new(None),
        control_url: format!("http://127.0.0.1:{}", state.control_port),
        shutdown: shutdown_tx,
        services_up: RwLock::new(Vec::new()),
        clients: RwLock::new(Vec::new()),
        validators: RwLock::new(Vec::new()),
        validator_starts: RwLock::new(HashMap::new()),
        miner_names: RwLock::new(HashMap::new()),
        miners: RwLock::new(Vec::new()),
        agent_wallets: RwLock::new(HashMap::new()),
        services: tokio::sync::Mutex::new(Vec::new()),
        services_stop: watch::channel(false).0,
        federation: RwLock::new(None),
        coordinators: tokio::sync::Mutex::new(Vec::new()),
    });
    let server = {
        let router = control_router(Arc::clone(&shared));
        let mut rx = shared.shutdown.subscribe();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await;
        })
    };

    let started = Instant::now();
    tokio::pin!(stop);
    let result = tokio::select! {
        r = bring_up(&cfg, &state, &data_dir, &shared) => r.map(Some),
        _ = shutdown_rx.wait_for(|s| *s) => Ok(None),
        _ = &mut stop => Ok(None),
    };
    let net = match result {
        Ok(Some(net)) => {
            *write(&shared.ready) = true;
            shared.set_phase("ready");
            tracing::info!(elapsed_s = started.elapsed().as_secs_f32(), "devnet ready");
            on_ready(&shared.report().await);
            tokio::select! {
                _ = &mut stop => {},
                _ = shutdown_rx.wait_for(|s| *s) => {},
            }
            Some(net)
        }
        Ok(None) => None,
        Err(e) => {
            shared.set_phase(format!("failed: {e}"));
            teardown(&shared, None).await;
            let _ = shared.shutdown.send(true);
            let _ = server.await;
            return Err(e);
        }
    };
    shared.set_phase("stopping");
    teardown(&shared, net.as_ref()).await;
    let _ = shared.shutdown.send(true);
    let _ = server.await;
    Ok(())
}

async fn teardown(shared: &Shared, net: Option<&TestNet>) {
    // Services first: a miner that stops fails back every payment it holds for an undelivered result.
    let _ = shared.services_stop.send(true);
    for task in shared.services.lock().await.drain(..) {
        let _ = task.await;
    }
    write(&shared.clients).clear();
    write(&shared.validators).clear();
    // Then the federation (its payers use the nodes), each member releasing its ledger.
    for member in shared.coordinators.lock().await.drain(..) {
        member.shutdown().await;
    }
    let nodes = std::mem::take(&mut *write(&shared.nodes));
    for (_, node) in &nodes {
        node.stop().await;
    }
    if let Some(net) = net {
        net.bitcoind.stop().await;
    }
}

async fn bring_up(
    cfg: &DevnetConfig,
    state: &DevnetState,
    data_dir: &Path,
    shared: &Arc<Shared>,
) -> Result<TestNet, TestEnvError> {
    shared.set_phase("starting bitcoind");
    let bitcoind = Bitcoind::start(BitcoindOptions {
        exe: cfg.bitcoind.clone(),
        datadir: data_dir.join("bitcoind"),
        rpc_port: Some(state.bitcoind_rpc_port),
        rpc_auth: Some((state.rpc_user.clone(), state.rpc_password.clone())),
    })
    .await?;
    *write(&shared.bitcoind) = Some((
        format!("http://127.0.0.1:{}", bitcoind.rpc_port()),
        bitcoind.rpc().clone(),
    ));
    let net = TestNet::with_bitcoind(bitcoind, data_dir);

    shared.set_phase(format!("starting {} lightning nodes", state.nodes.len()));
    let mut nodes: HashMap<String, Arc<LnNode>> = HashMap::new();
    for entry in &state.nodes {
        let mut config = net.node_config_at(
            &entry.name,
            SocketAddr::from(([127, 0, 0, 1], entry.ln_port)),
        );
        config.liquidity_provider = entry.role == Role::Coordinator;
        let node = Arc::new(LnNode::start(config).await?);
        write(&shared.nodes).push((entry.clone(), Arc::clone(&node)));
        nodes.insert(entry.name.clone(), node);
    }

    let plan = state.topology();
    let has_channel = |from: &LnNode, to: &LnNode| {
        from.channels()
            .iter()
            .any(|c| c.counterparty == to.node_id() && c.is_outbound)
    };
    let missing: Vec<&(String, String, u64)> = plan
        .iter()
        .filter(|(f, t, _)| !has_channel(&nodes[f], &nodes[t]))
        .collect();

    // Fund whoever has no coins: one coinbase output per channel it still has to open, plus one kept
    // on-chain (the anchor reserve that lets it accept channels).
    let unfunded: Vec<&NodeEntry> = state
        .nodes
        .iter()
        .filter(|e| nodes[&e.name].balances().onchain_sats == 0)
        .collect();
    if !unfunded.is_empty() {
        shared.set_phase(format!("funding {} nodes", unfunded.len()));
        for e in &unfunded {
            let opens = missing.iter().filter(|(f, _, _)| *f == e.name).count() as u64;
            let address = nodes[&e.name].new_address()?;
            net.bitcoind.mine_to(opens + 1, &address).await?;
        }
        net.bitcoind.mine(COINBASE_MATURITY).await?;
        for e in &unfunded {
            let node = &nodes[&e.name];
            wait_for(
                &format!("{} to see its funds", e.name),
                STEP_TIMEOUT,
                || async {
                    node.sync()?;
                    Ok((node.balances().spendable_onchain_sats > 0).then_some(()))
                },
            )
            .await?;
        }
    }

    // Reconnect the peers of existing channels (after a restart the retry timer is ~60 s).
    for (f, t, _) in &plan {
        let (from, to) = (&nodes[f], &nodes[t]);
        if has_channel(from, to) {
            from.connect(to.node_id(), to.listen_addr(), true)?;
        }
    }

    // Open missing channels in rounds: each opener opens at most one per round, so every funding
    // transaction spends a confirmed coinbase output; a block confirms the round.
    let mut remaining = missing.clone();
    let mut round = 0;
    while !remaining.is_empty() {
        round += 1;
        let mut this_round = Vec::new();
        let mut openers = std::collections::HashSet::new();
        // Never two channels between the same two nodes in one round: a validator opening to a
        // coordinator while that coordinator opens to it would connect twice at once, and one fails.
        let mut pairs = std::collections::HashSet::new();
        remaining.retain(|ch| {
            let pair = if ch.0 < ch.1 {
                (ch.0.clone(), ch.1.clone())
            } else {
                (ch.1.clone(), ch.0.clone())
            };
            if !openers.contains(&ch.0) && !pairs.contains(&pair) {
                openers.insert(ch.0.clone());
                pairs.insert(pair);
                this_round.push(*ch);
                false
            } else {
                true
            }
        });
        shared.set_phase(format!(
            "opening channels, round {round}: {} channels",
            this_round.len()
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for (f, t, sats) in this_round {
            let (from, to) = (Arc::clone(&nodes[f]), Arc::clone(&nodes[t]));
            let sats = *sats;
            tasks.spawn(async move {
                from.open_channel(to.node_id(), to.listen_addr(), sats, 0)
                    .await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (_, txid) = joined
                .map_err(|e| TestEnvError::Devnet(format!("channel open task failed: {e}")))??;
            net.bitcoind.wait_for_tx(txid, STEP_TIMEOUT).await?;
        }
        net.bitcoind.mine(1).await?;
        for node in nodes.values() {
            node.sync()?;
        }
    }
    if !missing.is_empty() {
        net.bitcoind.mine(CHANNEL_CONFIRMATIONS).await?;
    }

    shared.set_phase(format!("waiting for {} channels to be usable", plan.len()));
    let pairs: Vec<(&LnNode, &LnNode)> = plan
        .iter()
        .map(|(f, t, _)| (nodes[f].as_ref(), nodes[t].as_ref()))
        .collect();
    net.wait_usable(&pairs).await?;

    shared.set_phase("routing check: client pays miner through a coordinator");
    let check = routing_check(state, &nodes).await?;
    *write(&shared.routing_check) = Some(check);

    start_federation(cfg, state, data_dir, shared, &nodes).await?;
    start_services(cfg, state, data_dir, shared, &nodes).await?;
    if let Some(every) = cfg.block_interval {
        // Blocks on a timer, like a real chain; far slower than the 42-block hold deadlines matter.
        let rpc = net.bitcoind.rpc().clone();
        let mut stop = shared.services_stop.subscribe();
        let address = boltensor_testenv::bitcoind::burn_address().to_string();
        shared.services.lock().await.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    _ = tokio::time::sleep(every) => {}
                }
                if let Err(e) = rpc
                    .call::<serde_json::Value>("generatetoaddress", serde_json::json!([1, address]))
                    .await
                {
                    tracing::warn!(error = %e, "could not mine the timer block");
                }
            }
        }));
    }
    Ok(net)
}

/// The dashboard annex of the devnet's members: each validator's net ([`ValidatorNet`]), by node id.
fn validator_books(shared: &Arc<Shared>) -> boltensor_coordinator::dashboard::DashboardAnnex {
    let shared = Arc::downgrade(shared);
    boltensor_coordinator::dashboard::DashboardAnnex(Arc::new(move || {
        let nets = shared
            .upgrade()
            .map(|s| s.validators_net())
            .unwrap_or_default();
        serde_json::Value::Array(
            nets.iter()
                .map(|v| {
                    serde_json::json!({
                        "node_id": v.node_id,
                        "income_msat": v.dividends_msat,
                        "challenge_spend_msat": v.challenge_spend_msat,
                        "capital_cost_msat": v.capital_cost_msat,
                        "net_msat": v.net_msat,
                        "books_secs": v.secs,
                    })
                })
                .collect(),
        )
    }))
}

/// Starts the coordinator federation (created in the data dir on the first `up`, resumed after): every
/// member with the devnet's bitcoind for bond checks and a coordinator's node to pay its epochs from.
async fn start_federation(
    cfg: &DevnetConfig,
    state: &DevnetState,
    data_dir: &Path,
    shared: &Arc<Shared>,
    nodes: &HashMap<String, Arc<LnNode>>,
) -> Result<(), TestEnvError> {
    let hubs: Vec<String> = state
        .nodes
        .iter()
        .filter(|e| e.role == Role::Coordinator)
        .map(|e| e.name.clone())
        .collect();
    let members = hubs.len().max(federation::MIN_MEMBERS);
    let configs = federation::load_or_create(data_dir, members, cfg.epoch)?;
    let fed = configs
        .first()
        .map(|c| c.federation.clone())
        .ok_or_else(|| TestEnvError::Devnet("a federation without members".into()))?;
    shared.set_phase(format!(
        "starting the coordinator federation: {} members, {} sessions per epoch",
        fed.n(),
        fed.params.epoch_sessions
    ));
    let rpc = federation::rpc(
        state.bitcoind_rpc_port,
        &state.rpc_user,
        &state.rpc_password,
    );
    for c in configs {
        let index = c.index;
        let hub = &hubs[index % hubs.len()];
        let running = boltensor_coordinator::start(
            c,
            boltensor_coordinator::Options {
                rpc: Some(rpc.clone()),
                bond_check_every: Some(Duration::from_secs(1)),
                ln: Some(Arc::clone(&nodes[hub])),
                // Members beyond the hubs share a hub's node: its fees are reported once, by the
                // member whose index is the hub's.
                ln_shared: index >= hubs.len(),
                // The validators' own books (income, challenge spend, net) beside the federation's.
                dashboard_annex: Some(validator_books(shared)),
            },
        )
        .await
        .map_err(|e| TestEnvError::Devnet(format!("federation member {index}: {e}")))?;
        tracing::info!(member = index, api = %running.api, %hub, "federation member started");
        shared.coordinators.lock().await.push(running);
    }
    *write(&shared.federation) = Some((fed, hubs));
    Ok(())
}

/// Starts a miner API on every miner node (sharing one copy of the models), a paying proxy on every
/// client node, and the clients' traffic.
async fn start_services(
    cfg: &DevnetConfig,
    state: &DevnetState,
    data_dir: &Path,
    shared: &Arc<Shared>,
    nodes: &HashMap<String, Arc<LnNode>>,
) -> Result<(), TestEnvError> {
    let models_dir = cfg
        .models_dir
        .clone()
        .unwrap_or_else(boltensor_miner::config::default_models_dir);
    shared.set_phase(format!("loading models from {}", models_dir.display()));
    let specs = boltensor_miner::config::default_models(&models_dir);
    let backends = {
        let specs = specs.clone();
        tokio::task::spawn_blocking(move || boltensor_miner::load_backends(&specs))
            .await
            .map_err(|e| TestEnvError::Devnet(e.to_string()))?
            .map_err(|e| {
                TestEnvError::Devnet(format!(
                    "{e}\n  fetch the models with scripts/fetch-models.sh (./dev devnet does)"
                ))
            })?
    };
    let coordinator_urls: Vec<String> = read(&shared.federation)
        .as_ref()
        .map(|(f, _)| (0..f.n()).map(|i| federation::api_url(f, i)).collect())
        .unwrap_or_default();
    let mut miner_urls = Vec::new();
    let mut tasks = Vec::new();
    let miner_count = state.count(Role::Miner);
    for (i, e) in state
        .nodes
        .iter()
        .filter(|e| e.role == Role::Miner)
        .enumerate()
    {
        let mut cfg = MinerConfig::new(specs.clone(), data_dir.join("miners").join(&e.name));
        if miner_count > 1 && i + 1 == miner_count {
            // One miner cheats, so the validators' scoring is visible.
            cfg.misbehaviour = Some(Misbehaviour::RandomEmbeddings);
            tracing::info!(miner = %e.name, "this miner answers embeddings with random vectors");
        }
        let miner = Miner::new(cfg, Arc::clone(&nodes[&e.name]), &backends)
            .map_err(|err| TestEnvError::Devnet(format!("{}: {err}", e.name)))?;
        write(&shared.miners).push((e.name.clone(), Arc::clone(&miner)));
        let listener = bind(e.api_port, &format!("API of {}", e.name)).await?;
        let mut stop = shared.services_stop.subscribe();
        let name = e.name.clone();
        tasks.push(tokio::spawn(async move {
            let served = miner
                .run(listener, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(err) = served {
                tracing::error!(miner = %name, error = %err, "miner API stopped");
            }
        }));
        let url = format!("http://127.0.0.1:{}", e.api_port);
        write(&shared.miner_names).insert(url.clone(), e.name.clone());
        // Validators key registered miners' scores by node id.
        write(&shared.miner_names).insert(nodes[&e.name].node_id().to_string(), e.name.clone());
        if !coordinator_urls.is_empty() {
            let miner_dir = data_dir.join("miners").join(&e.name);
            let keypair = federation::miner_keypair(&miner_dir)?;
            let fed_id = federation::federation_id(&coordinator_urls, STEP_TIMEOUT).await?;
            let node = &nodes[&e.name];
            // Registration costs a bond (the federation's miner_bond_min_sat): funded from the miner's
            // node once, its proof kept in the miner's directory.
            let bond = boltensor_validator::load_or_fund_bond(
                &boltensor_validator::federation::FederationClient::new(coordinator_urls.clone()),
                node,
                &miner_dir,
                &keypair,
                Role::Miner,
                Some(boltensor_validator::BondRequest {
                    rpc: federation::rpc(
                        state.bitcoind_rpc_port,
                        &state.rpc_user,
                        &state.rpc_password,
                    ),
                    amount: bitcoin::Amount::from_sat(federation::MINER_BOND_SAT),
                    timelock: None,
                    network: bitcoin::Network::Regtest,
                }),
            )
            .await
            .map_err(|err| TestEnvError::Devnet(format!("{}'s bond: {err}", e.name)))?;
            let item = federation::miner_registration(
                &keypair,
                node.node_id().to_string(),
                |m| node.sign_message(m),
                fed_id,
                url.clone(),
                specs.iter().map(|s| s.id.clone()).collect(),
                bond.as_ref(),
            );
            let queued = federation::submit(&coordinator_urls, &item, STEP_TIMEOUT).await?;
            tracing::info!(miner = %e.name, queued, "miner registration submitted to the federation");
        }
        miner_urls.push(url);
        write(&shared.services_up).push(e.name.clone());
    }
    if let Some(round) = cfg.validator_round {
        let validators = state.nodes.iter().filter(|e| e.role == Role::Validator);
        for (i, e) in validators.enumerate() {
            let mut vcfg = ValidatorConfig::new(
                miner_urls.clone(),
                data_dir.join("validators").join(&e.name),
            );
            vcfg.coordinators = coordinator_urls.clone();
            vcfg.spend = cfg.validator_spend;
            let v = Validator::new(vcfg, Arc::clone(&nodes[&e.name]), &backends)
                .map_err(|err| TestEnvError::Devnet(format!("{}: {err}", e.name)))?;
            let v = Arc::new(v);
            let bond = boltensor_validator::BondRequest {
                rpc: federation::rpc(
                    state.bitcoind_rpc_port,
                    &state.rpc_user,
                    &state.rpc_password,
                ),
                amount: bitcoin::Amount::from_sat(federation::VALIDATOR_BOND_SAT * (i as u64 + 1)),
                timelock: None,
                network: bitcoin::Network::Regtest,
            };
            write(&shared.validator_starts).insert(
                e.name.clone(),
                ValidatorStart {
                    at: std::time::Instant::now(),
                    bond_sat: bond.amount.to_sat(),
                    keysend_msat: nodes[&e.name].received_keysend_msat(),
                },
            );
            let stop = shared.services_stop.subscribe();
            tasks.push(tokio::spawn(validate(
                e.name.clone(),
                Arc::clone(&v),
                (!coordinator_urls.is_empty()).then(|| (coordinator_urls.clone(), bond)),
                round,
                cfg.epoch,
                stop,
            )));
            write(&shared.validators).push((e.name.clone(), v));
        }
    }
    for e in state.nodes.iter().filter(|e| e.role == Role::Client) {
        // The proxy routes by the federation's scores (weighted by incentive, with a floor so unscored
        // miners still get traffic); the static miner list is its fallback.
        let mut client_cfg = ClientConfig::new(miner_urls.clone());
        client_cfg.directory.coordinators = coordinator_urls.clone();
        let client = PayingClient::new(client_cfg, Arc::clone(&nodes[&e.name]));
        let listener = bind(e.api_port, &format!("proxy of {}", e.name)).await?;
        let listen = listener
            .local_addr()
            .map_err(TestEnvError::io("reading the proxy's address"))?;
        let (auth, key_file) = boltensor_client::proxy::ProxyAuth::load_or_create(
            &proxy_dir(data_dir, &e.name),
            listen,
        )
        .map_err(TestEnvError::io("writing the proxy's key"))?;
        tracing::info!(client = %e.name, key_file = %key_file.display(), "proxy key");
        let auth_key = auth.key().to_owned();
        let mut stop = shared.services_stop.subscribe();
        let proxy = client.clone();
        tasks.push(tokio::spawn(async move {
            let _ = boltensor_client::proxy::serve(listener, proxy, auth, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        }));
        // The agent wallet: LND's REST payment call over this client's node, for L402 agents that pay
        // through LND; the proxy's key is its macaroon.
        let wallet = bind(0, &format!("agent wallet of {}", e.name)).await?;
        let wallet_url = format!(
            "http://{}",
            wallet
                .local_addr()
                .map_err(TestEnvError::io("reading the agent wallet's address"))?
        );
        let mut stop = shared.services_stop.subscribe();
        let wallet_app = boltensor_testenv::lnd_rest::router(
            Arc::clone(&nodes[&e.name]),
            Some(auth_key.clone()),
        );
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(wallet, wallet_app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        }));
        write(&shared.agent_wallets).insert(e.name.clone(), wallet_url);
        if let Some(every) = cfg.traffic_interval {
            tasks.push(tokio::spawn(traffic(
                e.name.clone(),
                client.clone(),
                every,
                shared.services_stop.subscribe(),
            )));
        }
        write(&shared.clients).push((e.name.clone(), client));
        write(&shared.services_up).push(e.name.clone());
    }
    shared.services.lock().await.extend(tasks);
    Ok(())
}

/// A validator's life on the devnet: enrol with the federation (fund a bond from its node once, then
/// register; retried until it lands), then challenge, score and submit weights every federation epoch.
async fn validate(
    name: String,
    v: Arc<Validator>,
    federation: Option<(Vec<String>, boltensor_validator::BondRequest)>,
    round: Duration,
    epoch: Duration,
    mut stop: watch::Receiver<bool>,
) {
    if let Some((urls, bond)) = federation {
        let fed = boltensor_validator::federation::FederationClient::new(urls);
        loop {
            match v.register(&fed, Some(bond.clone())).await {
                Ok((reg, delivery)) => {
                    tracing::info!(
                        validator = %name,
                        key = %reg.key,
                        bonded = reg.bond.is_some(),
                        holders = delivery.holders(),
                        "validator registered with the federation"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!(validator = %name, error = %e, "validator not registered yet; retrying")
                }
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }
    v.run(round, epoch, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await;
}

async fn bind(port: u16, what: &str) -> Result<tokio::net::TcpListener, TestEnvError> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| TestEnvError::PortInUse {
            port,
            what: what.to_owned(),
            source,
        })
}

/// Where a devnet client's proxy keeps its key (`proxy.key`).
pub fn proxy_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("clients").join(name)
}

/// A client's steady mix of paid requests: embeddings and short chats, one every `every`.
async fn traffic(
    name: String,
    client: PayingClient,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    const PROMPTS: [&str; 4] = [
        "What is the capital of France?",
        "Name a primary colour.",
        "What is 2 + 2?",
        "Say hello in Spanish.",
    ];
    let mut i = 0usize;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(every) => {}
        }
        i += 1;
        let (path, body) = if i.is_multiple_of(2) {
            (
                "/v1/chat/completions",
                serde_json::json!({
                    "model": "smollm2-135m-instruct",
                    "messages": [{"role": "user", "content": PROMPTS[i / 2 % PROMPTS.len()]}],
                    "max_tokens": 16,
                }),
            )
        } else {
            (
                "/v1/embeddings",
                serde_json::json!({"model": "all-minilm-l6-v2", "input": format!("traffic sample {i}")}),
            )
        };
        match client.post(path, body.to_string().into_bytes()).await {
            Ok(mut paid) => {
                let status = paid.response.status();
                let outcome = paid.outcome().await;
                tracing::info!(client = %name, path, %status, price_msat = paid.price_msat, miner = %paid.miner, outcome = ?outcome.map(|o| matches!(o, boltensor_client::PaymentOutcome::Settled { .. })), "traffic");
            }
            Err(e) => tracing::warn!(client = %name, path, error = %e, "traffic request failed"),
        }
    }
}

/// Routes 1,000 sats from the first client (or validator) to the first miner over two hops, without
/// moving any: the payment goes to a hold invoice of the miner's, which fails it back once it is held.
/// That proves every hop can carry the HTLC and leaves every balance as it was, so an `up` that resumes
/// a devnet finds the balances it left (the paid traffic shows settlement).
async fn routing_check(
    state: &DevnetState,
    nodes: &HashMap<String, Arc<LnNode>>,
) -> Result<String, TestEnvError> {
    use bitcoin::hashes::{sha256, Hash as _};
    use boltensor_ln::{PaymentHash, PaymentPreimage};
    let first = |role| state.nodes.iter().find(|n| n.role == role);
    let (Some(payer), Some(miner)) = (
        first(Role::Client).or_else(|| first(Role::Validator)),
        first(Role::Miner),
    ) else {
        return Ok("skipped (no client or validator)".into());
    };
    let (payer_node, miner_node) = (&nodes[&payer.name], &nodes[&miner.name]);
    let preimage = PaymentPreimage(sha256::Hash::hash(random_hex().as_bytes()).to_byte_array());
    let hash = PaymentHash::from(preimage);
    let invoice = miner_node.hold_invoice(hash, 1_000_000, "devnet routing check", 600)?;
    let started = Instant::now();
    let pending = payer_node.send(&invoice)?;
    miner_node
        .wait_claimable(hash, Duration::from_secs(60))
        .await?;
    let held_ms = started.elapsed().as_millis();
    miner_node.fail(hash)?;
    match pending.outcome(Duration::from_secs(60)).await {
        Err(boltensor_ln::LnError::PaymentFailed { .. }) => {}
        Ok(_) => {
            return Err(TestEnvError::Devnet(
                "routing check: the payment settled although the miner failed it back".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(format!(
        "{} routed 1000 sat to {} via a coordinator in {held_ms} ms (held, then failed back: no sats moved)",
        payer.name, miner.name,
    ))
}

/// Asks the devnet running in `data_dir` for its status.
pub async fn status(data_dir: &Path) -> Result<StatusReport, TestEnvError> {
    let url = control_url(data_dir)?;
    let resp = reqwest::Client::new()
        .get(format!("{url}/status"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| not_running(data_dir, &url, e))?;
    resp.json()
        .await
        .map_err(|e| TestEnvError::Devnet(format!("bad status from {url}: {e}")))
}

/// Asks the devnet running in `data_dir` to stop; returns false if it was not running.
pub async fn down(data_dir: &Path) -> Result<bool, TestEnvError> {
    let url = control_url(data_dir)?;
    match reqwest::Client::new()
        .post(format!("{url}/shutdown"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_connect() => return Ok(false),
        Err(e) => return Err(not_running(data_dir, &url, e)),
    }
    // Wait until it has released the data dir.
    let pid = data_dir.join("devnet.pid");
    wait_for("the devnet to stop", Duration::from_secs(120), || async {
        Ok((!pid.exists()).then_some(()))
    })
    .await?;
    Ok(true)
}

fn control_url(data_dir: &Path) -> Result<String, TestEnvError> {
    let state = DevnetState::load(data_dir)?.ok_or_else(|| {
        TestEnvError::Devnet(format!(
            "no devnet in {}: start one with `boltensor devnet up`",
            data_dir.display()
        ))
    })?;
    Ok(format!("http://127.0.0.1:{}", state.control_port))
}

fn not_running(data_dir: &Path, url: &str, e: reqwest::Error) -> TestEnvError {
    TestEnvError::Devnet(format!(
        "the devnet in {} is not running (nothing answers at {url}: {e}); start it with `boltensor devnet up`",
        data_dir.display()
    ))
}
