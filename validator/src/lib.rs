//! The validator: pays miners for challenge requests through the same client a real client uses (a miner
//! cannot tell a challenge from paid traffic), checks the answers against its own copies of the pinned
//! models, keeps a score history, and signs one weight vector per epoch.
//!
//! # Layout
//! - [`scoring`]: the formula (pure).
//! - [`federation`]: the coordinator federation's API (epoch, miners, registration with a bond, weights).
//! - [`Validator`]: challenges, checks, the store, epochs; [`Validator::metrics`] counts what it did.
//! - [`api`]: the optional HTTP API of `boltensor validator run --listen` (`/metrics`, `/v1/scores`).
//!
//! Checks (docs/scoring.md): an embedding is recomputed with the same model at batch size 1 and must
//! have cosine similarity ≥ `embed_tolerance` with the miner's; a greedy chat answer is re-scored by
//! teacher forcing and each token must be the greedy choice within `logit_margin`.

pub mod api;
pub mod federation;
pub mod scoring;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boltensor_client::{ClientConfig, PayingClient, PaymentOutcome};
use boltensor_contracts::BondProof;
use boltensor_coordinator::items::Registration;
use boltensor_ln::LnNode;
use boltensor_miner::backend::{Backend, MiniLm, SmolLm};
use boltensor_protocol::weights::{max_upscale_u16, SignedWeights, WeightVector};
use boltensor_protocol::Role;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use secp256k1::{Keypair, SecretKey, SECP256K1};
use serde_json::{json, Value};

use federation::{Delivery, FederationClient, FederationError, FundedBond};
use scoring::{Kind, MinerRecord, Observation, ScoringParams};

const MINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("miners");
const EPOCHS: TableDefinition<u64, &[u8]> = TableDefinition::new("epochs");
/// The bond proof (hex) in the data directory.
const BOND_FILE: &str = "bond.proof";

/// Model ids the validator challenges (the shipped models, pinned by their files' sha256).
pub const EMBED_MODEL: &str = "all-minilm-l6-v2";
/// See [`EMBED_MODEL`].
pub const CHAT_MODEL: &str = "smollm2-135m-instruct";

/// Why the validator could not start or sign.
#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    /// Its store failed.
    #[error("validator store: {0}")]
    Store(String),
    /// Its key could not be read or made.
    #[error("validator key: {0}")]
    Key(String),
    /// A reference model is missing.
    #[error("reference model {0} not loaded")]
    Model(&'static str),
}

fn store_err<E: std::fmt::Display>(e: E) -> ValidatorError {
    ValidatorError::Store(e.to_string())
}

/// What a validator does.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// Miner base URLs: the list used when no coordinator is configured or none answers.
    pub miners: Vec<String>,
    /// Coordinator API URLs (configure more than f of the federation's members): the miners come from
    /// their registry and each epoch's signed vector goes to every one of them.
    pub coordinators: Vec<String>,
    /// Store and key live here.
    pub data_dir: PathBuf,
    /// The formula's parameters.
    pub scoring: ScoringParams,
    /// Minimum cosine similarity between the miner's embedding and the validator's.
    pub embed_tolerance: f32,
    /// How far below the best logit a returned token may be and still count as the greedy choice.
    pub logit_margin: f32,
    /// `max_tokens` of chat challenges.
    pub chat_max_tokens: u32,
    /// Most a single challenge may cost.
    pub max_price_msat: u64,
    /// Total challenge budget.
    pub budget_msat: u64,
    /// Most the validator commits to one miner's challenges in one epoch (a miner is skipped for the
    /// rest of the epoch once the next challenge could exceed it). Default 2,000,000 msat (20 × the
    /// default `max_price_msat`).
    pub per_miner_epoch_msat: u64,
    /// Longest back-off, in rounds, of a miner whose challenges fail or are refuted: after n failures in
    /// a row it is skipped for the rest of that round and min(2^(n−1), this) rounds more, each skipped
    /// challenge counting as a failed one (unpaid). Default 16; 0 turns the back-off off.
    pub max_backoff_rounds: u64,
    /// Challenge spend that follows income (docs/economics.md, "Validators' net"): None spends up to
    /// the caps above whatever the validator earns.
    pub spend: Option<SpendPolicy>,
}

/// A validator's challenge spend, bounded by what it earned: everything its node has paid out (challenge
/// prices and routing fees, in-flight payments included) stays within
/// max(`bootstrap_msat`, `income_share_ppm` × the dividends its node received). Each challenge is paid
/// only if its price, with a routing fee as large as the last one paid, fits in what is left (a dearer
/// 402 is not paid). Once its dividends reach `bootstrap_msat`, its net (dividends − challenge spend) can
/// no longer fall below zero; before, it can lose at most `bootstrap_msat` (plus any routing fee above the
/// last one). The cost is sampling that follows demand: with little paid traffic (small pools, small
/// dividends) it challenges rarely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendPolicy {
    /// What it may spend before it has earned anything (its first scores), msat.
    pub bootstrap_msat: u64,
    /// The share of the dividends received that it may spend on challenges, ppm (at most 1,000,000).
    pub income_share_ppm: u64,
}

impl SpendPolicy {
    /// What the policy allows in total, given the dividends received so far.
    pub fn allowance_msat(&self, income_msat: u64) -> u64 {
        let earned =
            u128::from(income_msat) * u128::from(self.income_share_ppm.min(1_000_000)) / 1_000_000;
        self.bootstrap_msat.max(earned as u64)
    }
}

impl ValidatorConfig {
    /// Defaults around `miners` and `data_dir`.
    pub fn new(miners: Vec<String>, data_dir: impl Into<PathBuf>) -> Self {
        ValidatorConfig {
            miners,
            coordinators: Vec::new(),
            data_dir: data_dir.into(),
            scoring: ScoringParams::default(),
            embed_tolerance: 0.9999,
            logit_margin: 0.5,
            chat_max_tokens: 12,
            max_price_msat: 100_000,
            budget_msat: 100_000_000,
            per_miner_epoch_msat: 2_000_000,
            max_backoff_rounds: 16,
            spend: None,
        }
    }
}

/// A challenge answered with quality below this counts as refuted (for the back-off).
pub const REFUTED_BELOW: f64 = 0.25;

/// A miner the validator challenges: its API URL and, when the federation's registry lists it, the
/// node id it registered. That node is the only payee its challenges pay, and its score is kept under
/// that node id, so a registration naming someone else's URL earns nothing from that one's answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// API base URL.
    pub url: String,
    /// Registered Lightning node id (hex); `None` for a configured URL (learned from its quote).
    pub node_id: Option<String>,
}

impl Target {
    /// The key its record is kept under: the registered node id, else the URL.
    pub fn key(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| self.url.clone())
    }
}

/// Whether a record key is a node id (33 bytes, hex) rather than a URL.
fn is_node_id(key: &str) -> bool {
    key.len() == 66 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What the validator spent on one miner this epoch, and its back-off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MinerSpend {
    /// The epoch `spent_msat` counts.
    pub epoch: u64,
    /// Committed to its challenges in that epoch (paid or in flight), msat.
    pub spent_msat: u64,
    /// Failed or refuted challenges in a row.
    pub failures: u32,
    /// Skipped until this round.
    pub skip_until_round: u64,
}

/// Whether a miner's next challenge goes ahead.
enum Admit {
    Go,
    BackedOff,
    OverCap,
    OverBudget,
}

/// A running validator.
pub struct Validator {
    cfg: ValidatorConfig,
    client: PayingClient,
    minilm: Arc<MiniLm>,
    smollm: Arc<SmolLm>,
    db: Database,
    keypair: Keypair,
    node: Arc<LnNode>,
    miners: Mutex<Vec<Target>>,
    records: Mutex<BTreeMap<String, MinerRecord>>,
    /// Node ids of configured miners (by URL), learned from their quotes.
    node_ids: Mutex<BTreeMap<String, String>>,
    /// Per record key: spend this epoch and back-off.
    spending: Mutex<BTreeMap<String, MinerSpend>>,
    round: AtomicU64,
    epoch: AtomicU64,
    challenge_spend: AtomicU64,
    seq: AtomicU64,
    http: reqwest::Client,
    metrics: Counters,
}

/// How many latencies the summaries keep (the most recent ones).
const LATENCY_WINDOW: usize = 512;

/// What [`Validator::metrics`] reads: counters since start and recent latencies.
#[derive(Default)]
struct Counters {
    /// Per [`Kind`] (embedding, chat): challenges attempted, paid (settled), failed (not answered,
    /// not paid or not settled), and recent latencies of answered ones.
    sent: [AtomicU64; 2],
    paid: [AtomicU64; 2],
    failed: [AtomicU64; 2],
    latencies: Mutex<[VecDeque<Duration>; 2]>,
    /// Weight vectors signed (one per epoch), delivered to the federation, delivery failures.
    signed: AtomicU64,
    submitted: AtomicU64,
    submit_failures: AtomicU64,
    /// The last epoch delivered, plus one (0: none).
    last_submitted: AtomicU64,
    submit_latencies: Mutex<VecDeque<Duration>>,
    /// Challenges not sent: the miner was backed off / its epoch cap was reached / the spend policy's
    /// allowance was used up.
    backed_off: AtomicU64,
    over_cap: AtomicU64,
    over_budget: AtomicU64,
    /// The routing fee of the last settled challenge, msat.
    last_fee: AtomicU64,
    /// The price each kind of challenge was last quoted (in its 402), msat: a challenge is not asked for
    /// while the spend policy leaves less (no unpaid 402s at every round).
    last_price: [AtomicU64; 2],
}

fn kind_index(kind: Kind) -> usize {
    match kind {
        Kind::Embedding => 0,
        Kind::Chat => 1,
    }
}

fn push_latency(window: &mut VecDeque<Duration>, d: Duration) {
    if window.len() == LATENCY_WINDOW {
        window.pop_front();
    }
    window.push_back(d);
}

/// Quantiles of recent latencies, in seconds (0 when there are none).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    /// How many latencies the quantiles are over (the most recent, at most 512).
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl LatencySummary {
    fn of(window: &VecDeque<Duration>) -> Self {
        let mut v: Vec<Duration> = window.iter().copied().collect();
        v.sort();
        let q = |q: f64| {
            v.get(((v.len() as f64 - 1.0) * q).round().max(0.0) as usize)
                .map_or(0.0, Duration::as_secs_f64)
        };
        LatencySummary {
            count: v.len(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
        }
    }
}

/// One kind of challenge in [`ValidatorMetrics`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ChallengeMetrics {
    /// Challenges attempted.
    pub sent: u64,
    /// Challenges whose payment settled.
    pub paid: u64,
    /// Challenges that failed (no answer, an error, not paid or refunded, a failed check excluded:
    /// that is a quality of 0 on an answered challenge).
    pub failed: u64,
    /// Latency of answered challenges (request to checked answer).
    pub latency: LatencySummary,
}

/// What a validator has done since it started (`GET /metrics`, `GET /v1/scores`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ValidatorMetrics {
    /// Embedding challenges.
    pub embedding: ChallengeMetrics,
    /// Chat challenges.
    pub chat: ChallengeMetrics,
    /// Sum of the prices of settled challenges, msat.
    pub spent_msat: u64,
    /// Routing fees on settled challenges, msat.
    pub fees_msat: u64,
    /// Challenge payments failed back by the miner (refunded in full).
    pub refunded: u64,
    /// Weight vectors signed (one per epoch).
    pub epochs_signed: u64,
    /// Weight vectors delivered to the federation (resubmissions of an epoch included).
    pub epochs_submitted: u64,
    /// Deliveries that failed.
    pub submit_failures: u64,
    /// The last epoch delivered.
    pub last_submitted_epoch: Option<u64>,
    /// Time to deliver a vector to the federation.
    pub submit_latency: LatencySummary,
    /// Challenges not sent because the miner was backed off after failed or refuted answers.
    pub backed_off: u64,
    /// Challenges not sent because the miner's spend cap for the epoch was reached.
    pub over_cap: u64,
    /// Challenges not sent because the spend policy's allowance was used up ([`SpendPolicy`]).
    pub over_budget: u64,
    /// The spend policy's books, when one is set.
    pub books: Option<SpendBooks>,
}

/// A validator's books under its [`SpendPolicy`], from its node's payment store (so across restarts).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SpendBooks {
    /// Dividends received (keysend payments into its node), msat.
    pub income_msat: u64,
    /// Everything its node paid out, in-flight payments and routing fees included, msat.
    pub spent_msat: u64,
    /// What the policy allows in total now, msat.
    pub allowance_msat: u64,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("miners", &*lock(&self.miners))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

const PROMPTS: [&str; 8] = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Write one sentence about the ocean.",
    "What is the largest planet in our solar system?",
    "Give me a synonym for happy.",
    "Explain what a computer is in one sentence.",
    "What do bees make?",
    "Say something kind about mornings.",
];

const WORDS: [&str; 24] = [
    "bitcoin",
    "river",
    "model",
    "quiet",
    "market",
    "lightning",
    "green",
    "mountain",
    "paper",
    "signal",
    "window",
    "garden",
    "engine",
    "silver",
    "letter",
    "forest",
    "bridge",
    "cloud",
    "music",
    "stone",
    "harbor",
    "winter",
    "candle",
    "orbit",
];

impl Validator {
    /// A validator paying from `node`, checking with the reference models in `backends`.
    pub fn new(
        cfg: ValidatorConfig,
        node: Arc<LnNode>,
        backends: &HashMap<String, Backend>,
    ) -> Result<Self, ValidatorError> {
        let minilm = match backends.get(EMBED_MODEL) {
            Some(Backend::MiniLm(m)) => Arc::clone(m),
            _ => return Err(ValidatorError::Model(EMBED_MODEL)),
        };
        let smollm = match backends.get(CHAT_MODEL) {
            Some(Backend::SmolLm(m)) => Arc::clone(m),
            _ => return Err(ValidatorError::Model(CHAT_MODEL)),
        };
        std::fs::create_dir_all(&cfg.data_dir).map_err(store_err)?;
        let db = Database::create(cfg.data_dir.join("validator.redb")).map_err(store_err)?;
        let mut records = BTreeMap::new();
        {
            let txn = db.begin_write().map_err(store_err)?;
            txn.open_table(MINERS).map_err(store_err)?;
            txn.open_table(EPOCHS).map_err(store_err)?;
            txn.commit().map_err(store_err)?;
            let txn = db.begin_read().map_err(store_err)?;
            let t = txn.open_table(MINERS).map_err(store_err)?;
            for item in t.iter().map_err(store_err)? {
                let (k, v) = item.map_err(store_err)?;
                let rec: MinerRecord = serde_json::from_slice(v.value()).map_err(store_err)?;
                records.insert(k.value().to_owned(), rec);
            }
        }
        let keypair = load_keypair(&cfg.data_dir)?;
        let mut ccfg = ClientConfig::new(cfg.miners.clone());
        ccfg.max_price_msat = cfg.max_price_msat;
        ccfg.budget_msat = cfg.budget_msat;
        ccfg.request_timeout = Duration::from_secs(60);
        Ok(Validator {
            client: PayingClient::new(ccfg, Arc::clone(&node)),
            node,
            miners: Mutex::new(
                cfg.miners
                    .iter()
                    .map(|u| Target {
                        url: u.trim_end_matches('/').to_owned(),
                        node_id: None,
                    })
                    .collect(),
            ),
            spending: Mutex::new(BTreeMap::new()),
            round: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            cfg,
            minilm,
            smollm,
            db,
            keypair,
            records: Mutex::new(records),
            node_ids: Mutex::new(BTreeMap::new()),
            challenge_spend: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            metrics: Counters::default(),
        })
    }

    /// Counters since start and recent latencies.
    pub fn metrics(&self) -> ValidatorMetrics {
        let m = &self.metrics;
        let latencies = lock(&m.latencies);
        let kind = |i: usize| ChallengeMetrics {
            sent: m.sent[i].load(Ordering::Relaxed),
            paid: m.paid[i].load(Ordering::Relaxed),
            failed: m.failed[i].load(Ordering::Relaxed),
            latency: LatencySummary::of(&latencies[i]),
        };
        let spend = self.client.spend();
        ValidatorMetrics {
            embedding: kind(0),
            chat: kind(1),
            spent_msat: spend.spent_msat,
            fees_msat: spend.fees_msat,
            refunded: spend.refunded,
            epochs_signed: m.signed.load(Ordering::Relaxed),
            epochs_submitted: m.submitted.load(Ordering::Relaxed),
            submit_failures: m.submit_failures.load(Ordering::Relaxed),
            last_submitted_epoch: m.last_submitted.load(Ordering::Relaxed).checked_sub(1),
            submit_latency: LatencySummary::of(&lock(&m.submit_latencies)),
            backed_off: m.backed_off.load(Ordering::Relaxed),
            over_cap: m.over_cap.load(Ordering::Relaxed),
            over_budget: m.over_budget.load(Ordering::Relaxed),
            books: self.books(),
        }
    }

    /// The spend policy's books (None without a policy).
    pub fn books(&self) -> Option<SpendBooks> {
        let policy = self.cfg.spend?;
        let income_msat = self.node.received_keysend_msat();
        Some(SpendBooks {
            income_msat,
            spent_msat: self.node.spent_msat(),
            allowance_msat: policy.allowance_msat(income_msat),
        })
    }

    /// What the spend policy (if any) leaves for the next challenge, msat: the allowance less what the node
    /// has paid out and a routing fee as large as the last one paid (`u64::MAX` without a policy, 0 when
    /// nothing is left).
    fn headroom(&self) -> u64 {
        let Some(books) = self.books() else {
            return u64::MAX;
        };
        let fee = self.metrics.last_fee.load(Ordering::Relaxed);
        books
            .allowance_msat
            .saturating_sub(books.spent_msat)
            .saturating_sub(fee)
    }

    /// The Lightning node the validator pays from.
    pub fn node(&self) -> &LnNode {
        &self.node
    }

    /// Node ids of the configured miners, by base URL, as far as known (from their quotes).
    pub fn node_ids(&self) -> BTreeMap<String, String> {
        lock(&self.node_ids).clone()
    }

    /// The node id a record key stands for: the key itself for a registered miner, the quoted node id
    /// for a configured URL.
    pub fn node_id_of(&self, key: &str) -> Option<String> {
        if is_node_id(key) {
            Some(key.to_owned())
        } else {
            lock(&self.node_ids).get(key).cloned()
        }
    }

    /// The epoch per-miner spend is counted in ([`Validator::run`] sets it from the federation, or
    /// from local time).
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    /// Per record key: what was committed to the miner this epoch, and its back-off.
    pub fn miner_spend(&self) -> BTreeMap<String, MinerSpend> {
        lock(&self.spending).clone()
    }

    /// The validator's signing key (x-only, hex): its identity in weight vectors.
    pub fn key(&self) -> String {
        hex::encode(self.keypair.x_only_public_key().0.serialize())
    }

    /// The miners challenged now (base URLs).
    pub fn miners(&self) -> Vec<String> {
        lock(&self.miners).iter().map(|t| t.url.clone()).collect()
    }

    /// The miners challenged now, with their registered node ids.
    pub fn targets(&self) -> Vec<Target> {
        lock(&self.miners).clone()
    }

    /// Takes the miners from the federation's registry (merged over the members by majority,
    /// [`FederationClient::miners`]): every registered miner with an API, as one target per registrant
    /// (two registrations naming one URL are two targets; each is paid and scored only as its own node).
    /// If the federation lists none (or does not answer, an error), the list stays as it was: at
    /// start, the configured one.
    pub async fn sync_miners(&self, fed: &FederationClient) -> Result<usize, FederationError> {
        let listed: Vec<Target> = fed
            .miners()
            .await?
            .into_iter()
            .filter_map(|m| {
                Some(Target {
                    url: m.api?.trim_end_matches('/').to_owned(),
                    node_id: Some(m.node_id.to_ascii_lowercase()),
                })
            })
            .collect();
        if listed.is_empty() {
            return Ok(0);
        }
        let n = listed.len();
        *lock(&self.miners) = listed;
        Ok(n)
    }

    /// This validator's signed registration for `federation`: its weights key, its node (which signs
    /// too) and its bond proof.
    pub fn registration(&self, federation: [u8; 32], bond: Option<&BondProof>) -> Registration {
        federation::registration(&self.keypair, &self.node, federation, bond)
    }

    /// The bond proof stored in the data directory, if any.
    pub fn bond_proof(&self) -> Result<Option<BondProof>, ValidatorError> {
        load_bond_proof(&self.cfg.data_dir)
    }

    /// Registers with the federation ([`enroll`]), funding a bond first if `bond` asks for one and
    /// none is stored yet.
    pub async fn register(
        &self,
        fed: &FederationClient,
        bond: Option<BondRequest>,
    ) -> Result<(Registration, Delivery), FederationError> {
        enroll(fed, &self.node, &self.cfg.data_dir, bond).await
    }

    /// Signs the vector of the epoch the federation collects (once per epoch: the stored vector after
    /// that) and delivers it to the coordinators, retrying for up to `timeout`.
    pub async fn submit_epoch(
        &self,
        fed: &FederationClient,
        timeout: Duration,
    ) -> Result<(SignedWeights, Delivery), FederationError> {
        let started = Instant::now();
        let result = fed
            .submit_epoch(|epoch| self.close_epoch(epoch), timeout)
            .await;
        let m = &self.metrics;
        match &result {
            Ok((signed, _)) => {
                m.submitted.fetch_add(1, Ordering::Relaxed);
                m.last_submitted
                    .fetch_max(signed.vector.epoch + 1, Ordering::Relaxed);
                push_latency(&mut lock(&m.submit_latencies), started.elapsed());
            }
            Err(_) => {
                m.submit_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    /// The paying client (its [`boltensor_client::Spend`] is the validator's challenge spend).
    pub fn client(&self) -> &PayingClient {
        &self.client
    }

    /// Sum of the prices of settled challenges.
    pub fn challenge_spend_msat(&self) -> u64 {
        self.challenge_spend.load(Ordering::Relaxed)
    }

    /// Current records by key: a registered miner's node id, a configured miner's URL.
    pub fn records(&self) -> BTreeMap<String, MinerRecord> {
        lock(&self.records).clone()
    }

    /// Current scores by key: a registered miner's node id, a configured miner's URL.
    pub fn scores(&self) -> BTreeMap<String, f64> {
        lock(&self.records)
            .iter()
            .map(|(url, r)| (url.clone(), r.score(&self.cfg.scoring)))
            .collect()
    }

    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
            ^ u64::from_le_bytes(boltensor_miner::random_bytes())
    }

    /// One round: an embedding and a chat challenge to every miner, each paid (only to the miner's own
    /// node), checked and scored. A miner whose challenges failed or were refuted is backed off
    /// exponentially (each skipped challenge counts as failed, unpaid), and no miner is committed more
    /// than `per_miner_epoch_msat` in an epoch: so many miners answering garbage cost at most that
    /// times their number per epoch.
    pub async fn challenge_round(&self) -> Vec<(String, Observation)> {
        let mut out = Vec::new();
        let mut targets = lock(&self.miners).clone();
        let round = self.round.fetch_add(1, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Relaxed);
        let mut kinds = [Kind::Embedding, Kind::Chat];
        if self.cfg.spend.is_some() && !targets.is_empty() {
            // A tight allowance buys a few challenges a round: start each round at another miner and
            // alternate which kind goes first, so every miner and kind gets its turn.
            let start = (round % targets.len() as u64) as usize;
            targets.rotate_left(start);
            if round % 2 == 1 {
                kinds.reverse();
            }
        }
        for target in targets {
            let url = target.url.clone();
            let key = target.key();
            let node_id = match &target.node_id {
                Some(id) => Some(id.clone()),
                None => {
                    self.learn_node_id(&url).await;
                    lock(&self.node_ids).get(&url).cloned()
                }
            };
            for kind in kinds {
                let i = kind_index(kind);
                let headroom = self.headroom();
                let admit = match self.admit(&key, epoch, round) {
                    Admit::Go
                        if headroom == 0
                            || headroom < self.metrics.last_price[i].load(Ordering::Relaxed) =>
                    {
                        Admit::OverBudget
                    }
                    a => a,
                };
                let o = match admit {
                    Admit::OverBudget => {
                        self.metrics.over_budget.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(miner = %url, kind = ?kind, "spend allowance used up; not challenged");
                        continue;
                    }
                    Admit::OverCap => {
                        self.metrics.over_cap.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(miner = %url, key = %key, epoch, "spend cap for the epoch reached; not challenged");
                        continue;
                    }
                    Admit::BackedOff => {
                        self.metrics.backed_off.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(miner = %url, key = %key, round, "backed off; counted as failed");
                        Observation {
                            kind,
                            ok: false,
                            quality: 0.0,
                            latency: Duration::ZERO,
                        }
                    }
                    Admit::Go => {
                        self.metrics.sent[i].fetch_add(1, Ordering::Relaxed);
                        let Some((o, committed)) = self
                            .challenge(&url, node_id.as_deref(), kind, headroom)
                            .await
                        else {
                            // Dearer than what the spend policy has left: nothing was paid.
                            self.metrics.sent[i].fetch_sub(1, Ordering::Relaxed);
                            self.metrics.over_budget.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(miner = %url, kind = ?kind, headroom, "challenge dearer than the spend allowance left; not paid");
                            continue;
                        };
                        if o.ok {
                            push_latency(&mut lock(&self.metrics.latencies)[i], o.latency);
                        } else {
                            self.metrics.failed[i].fetch_add(1, Ordering::Relaxed);
                        }
                        self.account(
                            &key,
                            epoch,
                            round,
                            committed,
                            !o.ok || o.quality < REFUTED_BELOW,
                        );
                        o
                    }
                };
                tracing::info!(miner = %url, key = %key, kind = ?kind, ok = o.ok, quality = o.quality, latency_ms = o.latency.as_millis() as u64, "challenge");
                let rec = {
                    let mut records = lock(&self.records);
                    let rec = records.entry(key.clone()).or_insert_with(|| MinerRecord {
                        url: url.clone(),
                        ..MinerRecord::default()
                    });
                    rec.url = url.clone();
                    rec.observe(&self.cfg.scoring, o);
                    rec.last = Some(format!(
                        "{kind:?}: {} quality {:.3} in {} ms",
                        if o.ok { "answered" } else { "FAILED" },
                        o.quality,
                        o.latency.as_millis()
                    ));
                    rec.clone()
                };
                if let Err(e) = self.save_record(&key, &rec) {
                    tracing::error!(error = %e, "cannot store the score history");
                }
                out.push((key.clone(), o));
            }
        }
        out
    }

    /// Whether `key`'s next challenge goes ahead this round and epoch.
    fn admit(&self, key: &str, epoch: u64, round: u64) -> Admit {
        let mut spending = lock(&self.spending);
        let s = spending.entry(key.to_owned()).or_default();
        if s.epoch != epoch {
            s.epoch = epoch;
            s.spent_msat = 0;
        }
        if round < s.skip_until_round {
            return Admit::BackedOff;
        }
        if s.spent_msat.saturating_add(self.cfg.max_price_msat) > self.cfg.per_miner_epoch_msat {
            return Admit::OverCap;
        }
        Admit::Go
    }

    /// Books a challenge's committed price and, if it failed or was refuted, backs the miner off for
    /// min(2^(failures−1), max) rounds after this one.
    fn account(&self, key: &str, epoch: u64, round: u64, committed_msat: u64, bad: bool) {
        let mut spending = lock(&self.spending);
        let s = spending.entry(key.to_owned()).or_default();
        if s.epoch == epoch {
            s.spent_msat = s.spent_msat.saturating_add(committed_msat);
        }
        if bad && self.cfg.max_backoff_rounds > 0 {
            s.failures = s.failures.saturating_add(1);
            let rounds = 1u64
                .checked_shl(s.failures.saturating_sub(1))
                .unwrap_or(u64::MAX)
                .min(self.cfg.max_backoff_rounds);
            s.skip_until_round = round + 1 + rounds;
        } else {
            s.failures = 0;
        }
    }

    async fn learn_node_id(&self, url: &str) {
        if lock(&self.node_ids).contains_key(url) {
            return;
        }
        if let Ok(r) = self.http.get(format!("{url}/v1/quote")).send().await {
            if let Ok(v) = r.json::<Value>().await {
                if let Some(id) = v["node_id"].as_str() {
                    lock(&self.node_ids).insert(url.to_owned(), id.to_owned());
                }
            }
        }
    }

    /// One paid challenge: its observation and the price committed to it (0: nothing was paid); `None`
    /// when its price is above `cap_msat` (what the spend policy has left; nothing was paid).
    async fn challenge(
        &self,
        url: &str,
        node_id: Option<&str>,
        kind: Kind,
        cap_msat: u64,
    ) -> Option<(Observation, u64)> {
        let n = self.next();
        let failed = |latency| {
            (
                Observation {
                    kind,
                    ok: false,
                    quality: 0.0,
                    latency,
                },
                0,
            )
        };
        let started = Instant::now();
        let (path, body, prompt) = match kind {
            Kind::Embedding => {
                let text: Vec<&str> = (0..8)
                    .map(|i| WORDS[((n >> (i * 5)) as usize) % WORDS.len()])
                    .collect();
                let text = text.join(" ");
                (
                    "/v1/embeddings",
                    json!({"model": EMBED_MODEL, "input": text}),
                    text,
                )
            }
            Kind::Chat => {
                let prompt = PROMPTS[(n as usize) % PROMPTS.len()].to_owned();
                (
                    "/v1/chat/completions",
                    json!({
                        "model": CHAT_MODEL,
                        "messages": [{"role": "user", "content": prompt}],
                        "max_tokens": self.cfg.chat_max_tokens,
                        "temperature": 0,
                    }),
                    prompt,
                )
            }
        };
        let mut paid = match self
            .client
            .post_to_node_capped(url, node_id, path, body.to_string().into_bytes(), cap_msat)
            .await
        {
            Ok(p) => p,
            Err(boltensor_client::ClientError::PriceTooHigh {
                max_msat,
                price_msat,
            }) if max_msat == cap_msat => {
                self.metrics.last_price[kind_index(kind)].store(price_msat, Ordering::Relaxed);
                return None;
            }
            Err(e) => {
                tracing::debug!(miner = %url, error = %e, "challenge not sent");
                return Some(failed(started.elapsed()));
            }
        };
        self.metrics.last_price[kind_index(kind)].store(paid.price_msat, Ordering::Relaxed);
        let status = paid.response.status();
        let outcome = paid.outcome().await;
        let answer: Option<Value> = paid.response.json().await.ok();
        let latency = started.elapsed();
        let settled = matches!(outcome, Some(PaymentOutcome::Settled { .. }));
        if settled {
            self.challenge_spend
                .fetch_add(paid.price_msat, Ordering::Relaxed);
            if let Some(PaymentOutcome::Settled { fee_msat, .. }) = &outcome {
                self.metrics.last_fee.store(*fee_msat, Ordering::Relaxed);
            }
            self.metrics.paid[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
        }
        let committed = paid.price_msat;
        let Some(answer) = answer.filter(|_| status.is_success() && settled) else {
            return Some((failed(latency).0, committed));
        };
        let quality = match kind {
            Kind::Embedding => self.check_embedding(&prompt, &answer).await,
            Kind::Chat => self.check_chat(&prompt, &answer).await,
        };
        Some((
            Observation {
                kind,
                ok: true,
                quality,
                latency,
            },
            committed,
        ))
    }

    async fn check_embedding(&self, text: &str, answer: &Value) -> f64 {
        let theirs: Vec<f32> = answer["data"][0]["embedding"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(0.0) as f32).collect())
            .unwrap_or_default();
        let m = Arc::clone(&self.minilm);
        let text = text.to_owned();
        let ours = match tokio::task::spawn_blocking(move || m.embed(&text)).await {
            Ok(Ok(v)) => v,
            _ => return 0.0,
        };
        if theirs.len() != ours.len() {
            return 0.0;
        }
        let dot: f32 = theirs.iter().zip(&ours).map(|(a, b)| a * b).sum();
        let norm: f32 = theirs.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cosine = dot / norm.max(f32::EPSILON);
        if cosine >= self.cfg.embed_tolerance {
            1.0
        } else {
            0.0
        }
    }

    async fn check_chat(&self, prompt: &str, answer: &Value) -> f64 {
        let text = answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let stopped = answer["choices"][0]["finish_reason"] == "stop";
        let m = Arc::clone(&self.smollm);
        let full_prompt = SmolLm::prompt(&[("user".to_owned(), prompt.to_owned())]);
        let margin = self.cfg.logit_margin;
        match tokio::task::spawn_blocking(move || {
            m.verify_greedy(&full_prompt, &text, stopped, margin)
        })
        .await
        {
            Ok(Ok(check)) => check.score().powi(2),
            _ => 0.0,
        }
    }

    fn save_record(&self, key: &str, rec: &MinerRecord) -> Result<(), ValidatorError> {
        let txn = self.db.begin_write().map_err(store_err)?;
        {
            let mut t = txn.open_table(MINERS).map_err(store_err)?;
            let bytes = serde_json::to_vec(rec).map_err(store_err)?;
            t.insert(key, bytes.as_slice()).map_err(store_err)?;
        }
        txn.commit().map_err(store_err)
    }

    /// The weight vector of the current scores for `epoch` (miners keyed by node id; miners whose id is
    /// not known yet are left out; a node scored under several keys gets the best of them).
    pub fn weights(&self, epoch: u64) -> WeightVector {
        let mut scores: BTreeMap<String, f64> = BTreeMap::new();
        for (key, s) in self.scores() {
            if let Some(id) = self.node_id_of(&key) {
                let e = scores.entry(id).or_insert(0.0);
                *e = e.max(s);
            }
        }
        WeightVector {
            epoch,
            validator: self.keypair.x_only_public_key().0.serialize(),
            weights: max_upscale_u16(&scores),
        }
    }

    /// Signs this epoch's vector and stores it. Signing the same epoch twice returns the stored vector:
    /// two different signed vectors for one epoch are slashable evidence.
    pub fn close_epoch(&self, epoch: u64) -> Result<SignedWeights, ValidatorError> {
        if let Some(done) = self.signed(epoch)? {
            return Ok(done);
        }
        let signed = self.weights(epoch).sign(&self.keypair);
        let txn = self.db.begin_write().map_err(store_err)?;
        {
            let mut t = txn.open_table(EPOCHS).map_err(store_err)?;
            let bytes = serde_json::to_vec(&signed).map_err(store_err)?;
            t.insert(epoch, bytes.as_slice()).map_err(store_err)?;
        }
        txn.commit().map_err(store_err)?;
        self.metrics.signed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(epoch, weights = ?signed.vector.weights, "signed weight vector");
        Ok(signed)
    }

    /// The stored signed vector of `epoch`.
    pub fn signed(&self, epoch: u64) -> Result<Option<SignedWeights>, ValidatorError> {
        let txn = self.db.begin_read().map_err(store_err)?;
        let t = txn.open_table(EPOCHS).map_err(store_err)?;
        let got = t.get(epoch).map_err(store_err)?;
        got.map(|v| serde_json::from_slice(v.value()).map_err(store_err))
            .transpose()
    }

    /// The most recent signed vector in the store.
    pub fn last_signed(&self) -> Result<Option<SignedWeights>, ValidatorError> {
        let txn = self.db.begin_read().map_err(store_err)?;
        let t = txn.open_table(EPOCHS).map_err(store_err)?;
        let last = t.last().map_err(store_err)?;
        last.map(|(_, v)| serde_json::from_slice(v.value()).map_err(store_err))
            .transpose()
    }

    /// Challenges every `round` until `stop` resolves. With coordinators configured, each round first
    /// takes the miners from the federation's registry, and afterwards delivers the signed vector of
    /// the epoch the federation collects (signed at the first round that sees the epoch, with at least
    /// one miner scored; resubmitted unchanged each round, which is idempotent). Without coordinators it
    /// signs a vector every `epoch` of local time and keeps it in the store.
    pub async fn run(
        self: Arc<Self>,
        round: Duration,
        epoch: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let start = Instant::now();
        let mut last_epoch = 0;
        let fed = (!self.cfg.coordinators.is_empty())
            .then(|| FederationClient::new(self.cfg.coordinators.clone()));
        loop {
            if let Some(fed) = &fed {
                match self.sync_miners(fed).await {
                    Ok(n) => tracing::debug!(registered = n, "miners from the federation"),
                    Err(e) => tracing::warn!(error = %e, "cannot read the federation's miners"),
                }
                if let Ok(e) = fed.epoch().await {
                    self.set_epoch(e);
                }
            } else {
                self.set_epoch(start.elapsed().as_secs() / epoch.as_secs().max(1));
            }
            self.challenge_round().await;
            if let Some(fed) = &fed {
                self.deliver(fed, round).await;
            } else {
                let e = start.elapsed().as_secs() / epoch.as_secs().max(1);
                if e > last_epoch {
                    last_epoch = e;
                    if let Err(err) = self.close_epoch(e) {
                        tracing::error!(error = %err, "cannot sign the epoch's weights");
                    }
                }
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(round) => {}
            }
        }
    }
}

impl Validator {
    /// One delivery in [`Validator::run`]: nothing while no miner is scored and nothing is signed.
    async fn deliver(&self, fed: &FederationClient, timeout: Duration) {
        let epoch = match fed.epoch().await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the federation's epoch");
                return;
            }
        };
        let commit_reveal = fed.status().await.is_ok_and(|s| s.commit_reveal());
        if commit_reveal {
            // Last epoch's vector is revealed now (what it committed to), whatever this epoch holds.
            self.reveal(fed, epoch).await;
        }
        let signed = matches!(self.signed(epoch), Ok(Some(_)));
        if !signed && self.weights(epoch).weights.is_empty() {
            tracing::info!(epoch, "no miner scored yet; nothing to sign");
            return;
        }
        let delivered = if commit_reveal {
            self.commit(fed, epoch).await.map(|_| ())
        } else {
            self.submit_epoch(fed, timeout).await.map(|_| ())
        };
        if let Err(e) = delivered {
            tracing::error!(error = %e, "weights not delivered to the federation");
        }
    }

    /// The salt of this validator's commitment for `epoch`: derived from its secret key, so a restart
    /// between commit and reveal still opens the commit, and nobody else can compute it.
    fn commit_salt(&self, federation: [u8; 32], epoch: u64) -> [u8; 32] {
        use bitcoin::hashes::{sha256, Hash, HashEngine};
        let mut e = sha256::Hash::engine();
        e.input(b"boltensor/commit-salt/v1");
        e.input(&self.keypair.secret_bytes());
        e.input(&federation);
        e.input(&epoch.to_be_bytes());
        sha256::Hash::from_engine(e).to_byte_array()
    }

    /// Commit-reveal: signs this epoch's vector (once, as without it) and submits its commitment.
    async fn commit(
        &self,
        fed: &FederationClient,
        epoch: u64,
    ) -> Result<Delivery, FederationError> {
        let started = Instant::now();
        let federation = fed.federation_id().await?;
        let signed = self
            .close_epoch(epoch)
            .map_err(|e| FederationError::Sign(e.to_string()))?;
        let salt = self.commit_salt(federation, epoch);
        let commit = boltensor_coordinator::items::WeightsCommit::new(
            &self.keypair,
            federation,
            &signed.vector,
            &salt,
        );
        let result = fed
            .submit_item(&boltensor_coordinator::ConsensusItem::Commit(commit))
            .await;
        let m = &self.metrics;
        match &result {
            Ok(d) => {
                tracing::info!(epoch, holders = d.holders(), "weights committed");
                m.submitted.fetch_add(1, Ordering::Relaxed);
                m.last_submitted.fetch_max(epoch + 1, Ordering::Relaxed);
                push_latency(&mut lock(&m.submit_latencies), started.elapsed());
            }
            Err(_) => {
                m.submit_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    /// Commit-reveal: reveals the vector committed in the epoch before `epoch`, if one was signed.
    async fn reveal(&self, fed: &FederationClient, epoch: u64) {
        let Some(prev) = epoch
            .checked_sub(1)
            .and_then(|e| self.signed(e).ok().flatten())
        else {
            return;
        };
        let Ok(federation) = fed.federation_id().await else {
            return;
        };
        let salt = self.commit_salt(federation, prev.vector.epoch);
        let reveal = boltensor_coordinator::items::WeightsReveal {
            weights: prev,
            salt: hex::encode(salt),
        };
        match fed
            .submit_item(&boltensor_coordinator::ConsensusItem::Reveal(reveal))
            .await
        {
            Ok(d) => tracing::debug!(epoch = epoch - 1, holders = d.holders(), "weights revealed"),
            // Refused when it was never committed (signed too late, say): that epoch has no vector.
            Err(e) => tracing::debug!(epoch = epoch - 1, error = %e, "weights not revealed"),
        }
    }
}

/// The validator's signing key (weights and registration; also its bond's owner key), in
/// `data_dir/validator.key` (0600), created on first use.
pub fn load_keypair(data_dir: &std::path::Path) -> Result<Keypair, ValidatorError> {
    std::fs::create_dir_all(data_dir).map_err(store_err)?;
    let secret = boltensor_miner::load_or_create_secret(&data_dir.join("validator.key"))
        .map_err(|e| ValidatorError::Key(e.to_string()))?;
    let sk = SecretKey::from_slice(&secret).map_err(|e| ValidatorError::Key(e.to_string()))?;
    Ok(Keypair::from_secret_key(SECP256K1, &sk))
}

/// The bond proof (hex) stored in `data_dir/bond.proof` by [`enroll`], if any.
pub fn load_bond_proof(data_dir: &std::path::Path) -> Result<Option<BondProof>, ValidatorError> {
    let path = data_dir.join(BOND_FILE);
    match std::fs::read_to_string(&path) {
        Ok(hex) => BondProof::from_hex(hex.trim())
            .map(Some)
            .map_err(|e| ValidatorError::Store(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(store_err(e)),
    }
}

/// A bond to fund from the validator's node when it registers.
#[derive(Debug, Clone)]
pub struct BondRequest {
    /// The validator's own bitcoind (finds the bond output of the funding transaction).
    pub rpc: boltensor_contracts::BitcoindRpc,
    /// The bond's amount.
    pub amount: bitcoin::Amount,
    /// Its timelock T (default: [`federation::default_timelock`]).
    pub timelock: Option<u16>,
    /// The chain.
    pub network: bitcoin::Network,
}

/// The bond proof stored in `data_dir/bond.proof`; if there is none and `bond` is given, first funds
/// that bond from `node`'s on-chain wallet (owner: `keypair`, also the registration key; slashable by
/// the federation's n − f members, whose keys come from the coordinators), proves it for a registrant
/// of `role` and stores the proof, so a restart does not fund a second bond. Validators and miners
/// (when the federation's `miner_bond_min_sat` asks for a bond) both register with it.
pub async fn load_or_fund_bond(
    fed: &FederationClient,
    node: &LnNode,
    data_dir: &std::path::Path,
    keypair: &Keypair,
    role: Role,
    bond: Option<BondRequest>,
) -> Result<Option<BondProof>, FederationError> {
    let proof = load_bond_proof(data_dir).map_err(|e| FederationError::Bond(e.to_string()))?;
    let (None, Some(req)) = (&proof, bond) else {
        return Ok(proof);
    };
    let config = fed.federation().await?;
    let timelock = req
        .timelock
        .unwrap_or_else(|| federation::default_timelock(&config));
    let funded: FundedBond = federation::fund_bond(
        node,
        &req.rpc,
        keypair,
        &config,
        req.amount,
        timelock,
        req.network,
    )
    .await?;
    let p = funded.prove(keypair, role, node.node_id(), keypair)?;
    std::fs::write(data_dir.join(BOND_FILE), p.to_hex())
        .map_err(|e| FederationError::Bond(format!("storing the proof: {e}")))?;
    tracing::info!(outpoint = %funded.outpoint, ?role, "bond funded; proof stored");
    Ok(Some(p))
}

/// Registers the validator whose key and bond live in `data_dir` and whose Lightning node is `node`.
/// If no bond proof is stored and `bond` is given, first funds that bond from the node's on-chain
/// wallet (owner: the validator key; slashable by the federation's n − f members, whose keys come
/// from the coordinators), proves it for this validator and stores the proof in `bond.proof` (so a
/// restart does not fund a second bond). The bond counts once more than f members see it confirmed.
pub async fn enroll(
    fed: &FederationClient,
    node: &LnNode,
    data_dir: &std::path::Path,
    bond: Option<BondRequest>,
) -> Result<(Registration, Delivery), FederationError> {
    let keypair = load_keypair(data_dir).map_err(|e| FederationError::Sign(e.to_string()))?;
    let proof = load_or_fund_bond(fed, node, data_dir, &keypair, Role::Validator, bond).await?;
    let federation_id = fed.federation_id().await?;
    let registration = federation::registration(&keypair, node, federation_id, proof.as_ref());
    let delivery = fed.register(&registration).await?;
    Ok((registration, delivery))
}

/// What `boltensor validator weights` shows: read from a validator's store (it may be running).
#[derive(Debug, Clone, serde::Serialize)]
pub struct WeightsReport {
    /// Per miner URL: its record and score under the default parameters.
    pub miners: BTreeMap<String, (MinerRecord, f64)>,
    /// The last signed vector, if any.
    pub last_signed: Option<SignedWeights>,
}

/// Reads a validator's store. redb allows one process at a time: stop the validator, or read a copy.
pub fn report(data_dir: &std::path::Path) -> Result<WeightsReport, ValidatorError> {
    let path = data_dir.join("validator.redb");
    let db = Database::open(&path).map_err(|e| {
        ValidatorError::Store(format!(
            "{}: {e} (no validator here, or it is running: redb allows one process)",
            path.display()
        ))
    })?;
    let txn = db.begin_read().map_err(store_err)?;
    let params = ScoringParams::default();
    let mut miners = BTreeMap::new();
    for item in txn
        .open_table(MINERS)
        .map_err(store_err)?
        .iter()
        .map_err(store_err)?
    {
        let (k, v) = item.map_err(store_err)?;
        let rec: MinerRecord = serde_json::from_slice(v.value()).map_err(store_err)?;
        let score = rec.score(&params);
        miners.insert(k.value().to_owned(), (rec, score));
    }
    let epochs = txn.open_table(EPOCHS).map_err(store_err)?;
    let last_signed = match epochs.last().map_err(store_err)? {
        Some((_, v)) => Some(serde_json::from_slice(v.value()).map_err(store_err)?),
        None => None,
    };
    Ok(WeightsReport {
        miners,
        last_signed,
    })
}

/// A terminal rendering of a [`WeightsReport`].
pub fn render_report(r: &WeightsReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:>7} {:>7} {:>7} {:>7}  last challenge",
        "miner", "score", "avail", "quality", "speed"
    );
    for (url, (rec, score)) in &r.miners {
        let n = rec.kinds.len().max(1) as f64;
        let mean = |f: fn(&scoring::KindStats) -> f64| rec.kinds.values().map(f).sum::<f64>() / n;
        let _ = writeln!(
            out,
            "{url:<28} {score:>7.3} {:>7.3} {:>7.3} {:>7.3}  {}",
            mean(|k| k.availability),
            mean(|k| k.quality),
            mean(|k| k.speed),
            rec.last.as_deref().unwrap_or("-")
        );
    }
    match &r.last_signed {
        Some(s) => {
            let _ = writeln!(
                out,
                "
last signed vector: epoch {} by {}",
                s.vector.epoch,
                hex::encode(s.vector.validator)
            );
            for (miner, w) in &s.vector.weights {
                let _ = writeln!(out, "  {miner} {w}");
            }
        }
        None => {
            let _ = writeln!(
                out,
                "
no epoch signed yet"
            );
        }
    }
    out
}
