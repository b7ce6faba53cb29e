//! `boltensor bench load`: a bounded load test on loopback (a fixed count of work, a maximum duration),
//! in two parts, each reporting throughput, latency percentiles, memory and that nothing was lost.
//!
//! 1. **Paid requests against one miner** on a regtest network (client node → hub → miner node, as
//!    `bench paid` builds it, real models): a fixed number of paid embeddings and chat completions from
//!    `concurrency` workers. Every request must end with exactly one outcome (settled with a 2xx answer,
//!    or refunded), agree with the miner's store, and the money must balance: what the client's node
//!    sent equals what the miner's node received plus the hub's forwarding fees, with no payment left
//!    pending on any node (polled until settled, with a deadline).
//! 2. **Weight submissions against a federation** of four in-process coordinators (real TCP between
//!    them, a regtest bitcoind for the bonds): `validators` bonded validators and `miners` miners
//!    register over the HTTP API; each epoch every validator signs a vector over all miners and posts it
//!    to every member (as `FederationClient` does). Every vector a member accepted must be in the signed
//!    epoch result of every member exactly once, ordered once in the epoch's sessions, and the result
//!    must verify (recomputed, threshold-signed).
//!
//! Everything runs in this process, so "memory" is this process's: `VmRSS` before and after each part,
//! the largest `VmRSS` sampled every 50 ms during its load phase, and `VmHWM` (the process's peak so far).
//! Timing figures are printed, never asserted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{Keypair, SecretKey, SECP256K1};
use bitcoin::{Amount, FeeRate, Network};
use boltensor_client::{ClientConfig, PayingClient, PaymentOutcome};
use boltensor_contracts::{BitcoindRpc, Bond, BondClaims, Federation, KeyWallet, RpcAuth};
use boltensor_coordinator::config::ConsensusTiming;
use boltensor_coordinator::items::{ConsensusItem, Registration};
use boltensor_coordinator::params::Params;
use boltensor_coordinator::store::SignedEpoch;
use boltensor_coordinator::{start, CoordinatorConfig, FederationConfig, Options, Running};
use boltensor_ln::{ChainSource, LnError, LnEvent, LnNode, PaymentRecord};
use boltensor_miner::backend::Backend;
use boltensor_miner::config::{default_models, default_models_dir};
use boltensor_miner::store::Status;
use boltensor_miner::{Miner, MinerConfig};
use boltensor_protocol::weights::{SignedWeights, WeightVector};
use boltensor_protocol::Role;
use boltensor_testenv::{wait_for, TestEnvError, TestNet};
use serde::Serialize;

const EMBEDDING_MODEL: &str = "all-minilm-l6-v2";
const CHAT_MODEL: &str = "smollm2-135m-instruct";
/// How long the end of a run may take to settle every payment (or order every vector) before the
/// leftovers are reported as lost.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the load bench could not run (a lost request or vector is a figure in the report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The regtest network (bitcoind, nodes, channels) or a wait with a deadline.
    #[error(transparent)]
    Env(#[from] TestEnvError),
    /// A Lightning node.
    #[error(transparent)]
    Ln(#[from] LnError),
    /// The models or the miner.
    #[error("miner: {0} (run scripts/fetch-models.sh if the models are missing)")]
    Miner(String),
    /// A coordinator could not start or its ledger failed.
    #[error("coordinator: {0}")]
    Coordinator(String),
    /// A bond could not be funded or proved.
    #[error("bond: {0}")]
    Bond(String),
    /// A registration was refused by every member.
    #[error("registration refused: {0}")]
    Registration(String),
    /// Local IO (a listener, a task).
    #[error("{0}")]
    Io(String),
}

fn io_err(e: impl std::fmt::Display) -> LoadError {
    LoadError::Io(e.to_string())
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The paid-requests part (`None`: skipped).
    pub paid: Option<PaidLoadConfig>,
    /// The weight-submissions part (`None`: skipped).
    pub federation: Option<FederationLoadConfig>,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            paid: Some(PaidLoadConfig::default()),
            federation: Some(FederationLoadConfig::default()),
        }
    }
}

/// Paid requests against one miner.
#[derive(Debug, Clone)]
pub struct PaidLoadConfig {
    /// Paid embedding requests.
    pub embeddings: usize,
    /// Paid chat completions (16 tokens, greedy), interleaved with the embeddings.
    pub chats: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// No request starts after this long (the rest are reported as not started).
    pub max_duration: Duration,
    /// Parallel channels on each hop (HTLC slots per channel limit concurrency).
    pub channels_per_hop: usize,
}

impl Default for PaidLoadConfig {
    fn default() -> Self {
        PaidLoadConfig {
            embeddings: 400,
            chats: 40,
            concurrency: 16,
            max_duration: Duration::from_secs(300),
            channels_per_hop: 2,
        }
    }
}

/// Weight submissions against a federation of four.
#[derive(Debug, Clone)]
pub struct FederationLoadConfig {
    /// Bonded validators, each submitting one signed vector per epoch to every member.
    pub validators: usize,
    /// Registered miners (each vector weighs all of them).
    pub miners: usize,
    /// Epochs measured.
    pub epochs: u64,
    /// Validators submitting at once.
    pub concurrency: usize,
    /// Consensus sessions per epoch (the window in which an epoch's vectors must be ordered).
    pub epoch_sessions: u64,
    /// Consensus timing of the federation.
    pub timing: ConsensusTiming,
    /// No epoch starts after this long.
    pub max_duration: Duration,
}

impl Default for FederationLoadConfig {
    fn default() -> Self {
        FederationLoadConfig {
            validators: 64,
            miners: 256,
            epochs: 3,
            concurrency: 16,
            epoch_sessions: 5,
            timing: ConsensusTiming {
                rounds_per_session: 10,
                round_delay_ms: 50,
            },
            max_duration: Duration::from_secs(300),
        }
    }
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank).
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    /// The percentiles of `v`.
    pub fn of(mut v: Vec<Duration>) -> Self {
        if v.is_empty() {
            return Latency::default();
        }
        v.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let rank = |q: f64| {
            let i = (q * v.len() as f64).ceil() as usize;
            ms(v[i.clamp(1, v.len()) - 1])
        };
        Latency {
            n: v.len(),
            p50_ms: rank(0.5),
            p99_ms: rank(0.99),
            max_ms: ms(v[v.len() - 1]),
            mean_ms: v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64,
        }
    }
}

/// This process's memory (KiB, from `/proc/self/status`; 0 where unavailable).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    /// `VmRSS` when the load phase started (set-up done: nodes up, models loaded).
    pub rss_before_kib: u64,
    /// `VmRSS` when it ended (everything settled).
    pub rss_after_kib: u64,
    /// The largest `VmRSS` sampled every 50 ms during the load phase.
    pub rss_peak_kib: u64,
    /// `VmHWM` at the end: the process's peak RSS so far (includes earlier parts and set-up).
    pub hwm_kib: u64,
}

/// `VmRSS` and `VmHWM` of this process, KiB.
pub fn proc_memory() -> (u64, u64) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (0, 0);
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Samples `VmRSS` every 50 ms until stopped.
struct MemorySampler {
    before: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl MemorySampler {
    fn start() -> Self {
        let before = proc_memory().0;
        let peak = Arc::new(AtomicU64::new(before));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (peak, stop) = (peak.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(proc_memory().0, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        MemorySampler {
            before,
            peak,
            stop,
            task,
        }
    }

    async fn finish(self) -> Memory {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let (after, hwm) = proc_memory();
        Memory {
            rss_before_kib: self.before,
            rss_after_kib: after,
            rss_peak_kib: self.peak.load(Ordering::Relaxed).max(after),
            hwm_kib: hwm,
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Whether this binary was built with debug assertions (figures from a debug build are not speeds).
    pub debug_build: bool,
    /// Paid requests against one miner.
    pub paid: Option<PaidLoadReport>,
    /// Weight submissions against the federation.
    pub federation: Option<FederationLoadReport>,
}

/// How each paid request ended (from the client's side).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcomes {
    /// 2xx answer and the payment settled (preimage in hand).
    pub settled: usize,
    /// Non-2xx answer and the payment failed back (the client has its funds).
    pub refunded: usize,
    /// Refused or failed before a payment outcome was known (no route, miner unreachable, …).
    pub client_error: usize,
    /// Neither settled nor failed back, even after the drain.
    pub pending: usize,
    /// Settled with a failed answer, or refunded with a 2xx answer, or a 2xx answer with no payment.
    pub inconsistent: usize,
    /// A worker task died with the request.
    pub panicked: usize,
    /// Of the settled and refunded: outcomes that came after the client's payment timeout (the
    /// client's node's payment store has them; the miner had failed the payment back, or settled it).
    pub resolved_late: usize,
}

impl Outcomes {
    /// Requests with an outcome of any kind.
    pub fn total(&self) -> usize {
        self.settled
            + self.refunded
            + self.client_error
            + self.pending
            + self.inconsistent
            + self.panicked
    }
}

/// The money of the load phase, msat, from the nodes' own payment stores (records created after the
/// warm-up) and the hub's forwarding events.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ledger {
    /// Outgoing payments of the client's node that succeeded: count.
    pub client_payments: usize,
    /// Their amounts.
    pub client_sent_msat: u64,
    /// Their routing fees.
    pub client_fees_msat: u64,
    /// Outgoing payments of the client's node that failed (funds back).
    pub client_failed: usize,
    /// Incoming payments of the miner's node that succeeded: count.
    pub miner_payments: usize,
    /// Their amounts.
    pub miner_received_msat: u64,
    /// Forwards at the hub.
    pub hub_forwards: usize,
    /// Fees the hub earned on them.
    pub hub_fees_msat: u64,
    /// Payments still pending on the client's or the miner's node at the end.
    pub pending_payments: usize,
    /// The client library's own count: settled prices, fees.
    pub client_spend_msat: u64,
    /// The client library's fees.
    pub client_spend_fees_msat: u64,
    /// The miner's store: prices of the records settled in the load phase.
    pub miner_store_settled_msat: u64,
    /// The miner's store: records settled in the load phase.
    pub miner_store_settled: usize,
    /// Paid requests whose client outcome disagrees with the miner's record (settled vs failed back).
    pub disagreements: usize,
    /// Miner records still `Serving` or `Settling`, or awaiting a payment the client made, at the end.
    pub unresolved_records: usize,
    /// The ledger invariant (`boltensor-audit` `check`) over the client's, hub's and miner's payments
    /// of the load phase and the miner's records of them: its one-line summary.
    pub audit: String,
    /// Its violations (must be none), and whether anything was still in flight.
    pub audit_violations: Vec<String>,
    /// The audit found nothing in flight and no violation.
    pub audit_settled: bool,
    /// client sent + fees == miner received + hub fees, every count agrees, and the audit holds settled.
    pub balanced: bool,
    /// What does not balance, if anything.
    pub problems: Vec<String>,
}

/// The paid-requests part.
#[derive(Debug, Clone, Serialize)]
pub struct PaidLoadReport {
    /// Requests planned (embeddings + chats).
    pub planned: usize,
    /// Requests started before the maximum duration.
    pub started: usize,
    /// Concurrency.
    pub concurrency: usize,
    /// From the first request to the last outcome, seconds.
    pub elapsed_secs: f64,
    /// Settled requests per second over that time.
    pub settled_per_sec: f64,
    /// Every request, whole (402, payment, retry, answer, settlement).
    pub latency_all: Latency,
    /// Embeddings.
    pub latency_embedding: Latency,
    /// Chat completions.
    pub latency_chat: Latency,
    /// Outcomes.
    pub outcomes: Outcomes,
    /// The first failure, if any.
    pub first_failure: Option<String>,
    /// The money.
    pub ledger: Ledger,
    /// From the last outcome until nothing was pending on any node, seconds.
    pub drain_secs: f64,
    /// This process's memory (client, hub and miner nodes and the miner's models all live in it).
    pub memory: Memory,
    /// Nothing lost: one outcome per started request, none pending or inconsistent, the ledger balances.
    pub nothing_lost: bool,
}

/// One epoch of the federation part.
#[derive(Debug, Clone, Serialize)]
pub struct EpochFigures {
    /// The epoch.
    pub epoch: u64,
    /// From the first POST to the last answer, ms.
    pub submit_ms: f64,
    /// From the first POST until every accepted vector is in every member's state (ordered), ms.
    pub ordered_ms: f64,
    /// From the first POST until every member stored the signed epoch result, ms.
    pub signed_ms: f64,
    /// Independent verification of member 0's signed result (recompute Yuma, every signature), ms.
    pub verify_ms: f64,
    /// Vectors accepted (202 or "duplicate" from at least one member).
    pub delivered: usize,
    /// Accepted vectors present exactly once in the signed result of every member.
    pub included: usize,
}

/// The weight-submissions part.
#[derive(Debug, Clone, Serialize)]
pub struct FederationLoadReport {
    /// Members.
    pub members: usize,
    /// Validators.
    pub validators: usize,
    /// Miners.
    pub miners: usize,
    /// Epochs measured.
    pub epochs: usize,
    /// Sessions per epoch.
    pub epoch_sessions: u64,
    /// Set-up (bonds, registrations, attestations), seconds.
    pub setup_secs: f64,
    /// HTTP POSTs of weight vectors (validators × members × epochs).
    pub posts: usize,
    /// Answered 202.
    pub accepted_202: usize,
    /// Answered "duplicate" (that member had already ordered it).
    pub duplicate: usize,
    /// Refused otherwise.
    pub refused: usize,
    /// No answer.
    pub unreachable: usize,
    /// The first refusal.
    pub first_refusal: Option<String>,
    /// Vectors signed.
    pub vectors: usize,
    /// Vectors accepted by at least one member.
    pub delivered: usize,
    /// Accepted vectors per second of submission (validators' vectors, each posted to every member).
    pub delivered_per_sec: f64,
    /// 202 answers per second of submission.
    pub accepted_posts_per_sec: f64,
    /// One POST /v1/weights, answer read.
    pub post_latency: Latency,
    /// Per epoch.
    pub per_epoch: Vec<EpochFigures>,
    /// Accepted vectors missing from a member's signed epoch result.
    pub lost: usize,
    /// Vectors present (or ordered) more than once in an epoch.
    pub counted_twice: usize,
    /// Vectors in a signed result that nobody here submitted.
    pub unexpected: usize,
    /// Every member signed the same result for each epoch, and it verifies.
    pub results_agree: bool,
    /// This process's memory (four coordinators and the submitting validators live in it).
    pub memory: Memory,
    /// Nothing lost: every accepted vector in every member's result exactly once, results agree.
    pub nothing_lost: bool,
}

/// Runs the parts configured, one after the other.
pub async fn run(cfg: LoadConfig) -> Result<LoadReport, LoadError> {
    let paid = match cfg.paid {
        Some(p) => Some(paid_load(p).await?),
        None => None,
    };
    let federation = match cfg.federation {
        Some(f) => Some(federation_load(f).await?),
        None => None,
    };
    Ok(LoadReport {
        debug_build: cfg!(debug_assertions),
        paid,
        federation,
    })
}

// ---------------------------------------------------------------------------------------------------
// Part 1: paid requests against one miner.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Embedding,
    Chat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Settled,
    Refunded,
    ClientError,
    Pending,
    Inconsistent,
}

#[derive(Debug)]
struct Done {
    kind: Kind,
    /// A 2xx answer, body read.
    answered_ok: bool,
    latency: Duration,
    class: Class,
    hash: Option<String>,
    detail: Option<String>,
}

fn request_body(kind: Kind, i: usize) -> (&'static str, Vec<u8>) {
    match kind {
        Kind::Embedding => (
            "/v1/embeddings",
            serde_json::json!({"model": EMBEDDING_MODEL, "input": format!("load test sentence number {i}")})
                .to_string()
                .into_bytes(),
        ),
        Kind::Chat => (
            "/v1/chat/completions",
            serde_json::json!({
                "model": CHAT_MODEL,
                "messages": [{"role": "user", "content": format!("Name a colour ({i}).")}],
                "max_tokens": 16,
            })
            .to_string()
            .into_bytes(),
        ),
    }
}

async fn one_request(client: &PayingClient, kind: Kind, i: usize) -> Done {
    let started = Instant::now();
    let (path, body) = request_body(kind, i);
    let done = |class, hash, detail: Option<String>| Done {
        kind,
        answered_ok: false,
        latency: started.elapsed(),
        class,
        hash,
        detail,
    };
    let mut paid = match client.post(path, body).await {
        Ok(p) => p,
        Err(e) => return done(Class::ClientError, None, Some(e.to_string())),
    };
    let status = paid.response.status();
    let hash = paid.payment_hash.clone();
    let outcome_task = paid.take_outcome();
    let body = paid.response.bytes().await;
    let outcome = match outcome_task {
        Some(task) => Some(task.await.unwrap_or(PaymentOutcome::Pending)),
        None => None,
    };
    let ok = status.is_success() && body.is_ok();
    let done = |class, hash, detail| Done {
        answered_ok: ok,
        ..done(class, hash, detail)
    };
    match outcome {
        Some(PaymentOutcome::Settled { .. }) if ok => done(Class::Settled, hash, None),
        Some(PaymentOutcome::Refunded { reason }) if !ok => {
            done(Class::Refunded, hash, Some(format!("{status}: {reason}")))
        }
        Some(PaymentOutcome::Pending) => done(Class::Pending, hash, Some(format!("{status}"))),
        other => done(
            Class::Inconsistent,
            hash,
            Some(format!("HTTP {status}, payment {other:?}")),
        ),
    }
}

/// Runs part 1 and returns its figures.
pub async fn paid_load(cfg: PaidLoadConfig) -> Result<PaidLoadReport, LoadError> {
    let net = TestNet::start().await?;
    let client_node = Arc::new(net.node("client").await?);
    let mut hub_cfg = net.node_config("hub")?;
    hub_cfg.liquidity_provider = true;
    let hub = LnNode::start(hub_cfg).await?;
    let miner_node = Arc::new(net.node("miner").await?);
    let hops = cfg.channels_per_hop.max(1) as u64;
    net.fund(&[&client_node, &hub, &miner_node], hops + 1)
        .await?;
    for _ in 0..hops {
        net.open_channel(&client_node, &hub, 5_000_000, 0).await?;
        net.open_channel(&hub, &miner_node, 5_000_000, 0).await?;
    }

    // Only the models the run uses (the chat model takes a while to load in a debug build).
    let dir = default_models_dir();
    let specs: Vec<_> = default_models(&dir)
        .into_iter()
        .filter(|s| s.id == EMBEDDING_MODEL || (cfg.chats > 0 && s.id == CHAT_MODEL))
        .collect();
    let backends: HashMap<String, Backend> = {
        let specs = specs.clone();
        tokio::task::spawn_blocking(move || boltensor_miner::load_backends(&specs))
            .await
            .map_err(io_err)?
            .map_err(|e| LoadError::Miner(e.to_string()))?
    };
    let miner = Miner::new(
        {
            // The bench measures the payment path at `concurrency` clients: admit them all (a real
            // miner turns requests beyond `max_queue` away with 429 before any invoice).
            let mut m = MinerConfig::new(specs, net.dir().join("miner-data"));
            m.max_queue = m.max_queue.max(cfg.concurrency);
            m
        },
        Arc::clone(&miner_node),
        &backends,
    )
    .map_err(|e| LoadError::Miner(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io_err)?;
    let url = format!("http://{}", listener.local_addr().map_err(io_err)?);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let served = tokio::spawn(Arc::clone(&miner).run(listener, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let mut ccfg = ClientConfig::new(vec![url]);
    ccfg.budget_msat = u64::MAX / 2;
    let client = PayingClient::new(ccfg, Arc::clone(&client_node));

    // The hub's forwards, counted from before the warm-up: its forward event can come after the payer's
    // success, so the warm-up's forwards are waited for and then taken off.
    let forwards = Arc::new(AtomicUsize::new(0));
    let fees = Arc::new(AtomicU64::new(0));
    let mut hub_events = hub.subscribe();
    let hub_watch = tokio::spawn({
        let (forwards, fees) = (forwards.clone(), fees.clone());
        async move {
            loop {
                match hub_events.recv().await {
                    Ok(LnEvent::PaymentForwarded {
                        fee_earned_msat, ..
                    }) => {
                        fees.fetch_add(fee_earned_msat.unwrap_or(0), Ordering::Relaxed);
                        forwards.fetch_add(1, Ordering::Release);
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::error!(missed = n, "hub events lagged: forward counts are short");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        }
    });
    // Warm up (the first payment after start waits out LDK's start-up), then start the books.
    const WARM_UP: usize = 2;
    for i in 0..WARM_UP {
        let d = one_request(&client, Kind::Embedding, usize::MAX - i).await;
        if d.class != Class::Settled {
            return Err(LoadError::Miner(format!(
                "warm-up request failed: {:?}",
                d.detail
            )));
        }
    }
    wait_for(
        "the hub to report the warm-up's forwards",
        Duration::from_secs(30),
        || {
            let forwards = forwards.clone();
            async move { Ok((forwards.load(Ordering::Acquire) >= WARM_UP).then_some(())) }
        },
    )
    .await?;
    let forwards_before = forwards.load(Ordering::Acquire);
    // The hub's forward ledger at the same moment: the audit compares its growth over the load phase
    // with the fees the load phase's payments paid.
    let hub_ledger_before = hub.forwarded();
    let fees_before = fees.load(Ordering::Relaxed);
    let client_before: HashSet<[u8; 32]> = client_node.payments().iter().map(|p| p.id).collect();
    let miner_before: HashSet<[u8; 32]> = miner_node.payments().iter().map(|p| p.id).collect();
    let spend_before = client.spend();

    // The jobs: the chats spread evenly among the embeddings.
    let planned = cfg.embeddings + cfg.chats;
    let jobs: Arc<Vec<Kind>> = Arc::new(
        (0..planned)
            .map(|i| {
                let chats_before = |j: usize| (j * cfg.chats).div_ceil(planned.max(1));
                if chats_before(i + 1) > chats_before(i) {
                    Kind::Chat
                } else {
                    Kind::Embedding
                }
            })
            .collect(),
    );
    tracing::info!(
        planned,
        chats = cfg.chats,
        concurrency = cfg.concurrency,
        "paid load"
    );
    let memory = MemorySampler::start();
    let started = Instant::now();
    let deadline = started + cfg.max_duration;
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..cfg.concurrency.max(1) {
        let (client, jobs, next) = (client.clone(), jobs.clone(), next.clone());
        workers.spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(kind) = jobs.get(i) else { break };
                // A request that panics is counted: the task's other results go with it, so catch it.
                let fut = std::panic::AssertUnwindSafe(one_request(&client, *kind, i));
                match futures_util::FutureExt::catch_unwind(fut).await {
                    Ok(d) => out.push(Ok(d)),
                    Err(_) => out.push(Err(i)),
                }
            }
            out
        });
    }
    let mut done = Vec::new();
    let mut outcomes = Outcomes::default();
    while let Some(r) = workers.join_next().await {
        for d in r.map_err(io_err)? {
            match d {
                Ok(d) => done.push(d),
                Err(_) => outcomes.panicked += 1,
            }
        }
    }
    let elapsed = started.elapsed();
    let started_count = next.load(Ordering::Relaxed).min(planned);

    // Drain: wait until no payment of the load phase is pending on the client's or the miner's node and
    // the miner has no record in flight.
    let drain_started = Instant::now();
    let new_records = |node: &LnNode, before: &HashSet<[u8; 32]>| -> Vec<PaymentRecord> {
        node.payments()
            .into_iter()
            .filter(|p| !before.contains(&p.id))
            .collect()
    };
    let paid_hashes: HashSet<String> = done.iter().filter_map(|d| d.hash.clone()).collect();
    let unresolved = |miner: &Miner| -> Result<usize, TestEnvError> {
        let open = miner
            .store()
            .unresolved()
            .map_err(|e| TestEnvError::Devnet(e.to_string()))?;
        Ok(open
            .iter()
            .filter(|r| {
                r.status != Status::AwaitingPayment
                    || paid_hashes.contains(&hex::encode(r.payment_hash))
            })
            .count())
    };
    let drained = wait_for("every payment to settle or fail", DRAIN_TIMEOUT, || async {
        let pending = new_records(&client_node, &client_before)
            .iter()
            .chain(new_records(&miner_node, &miner_before).iter())
            .filter(|p| p.state == boltensor_ln::PaymentState::Pending)
            .count();
        Ok((pending == 0 && unresolved(&miner)? == 0).then_some(()))
    })
    .await;
    if let Err(e) = &drained {
        tracing::warn!(error = %e, "payments still pending at the end: reported as lost");
    }
    // Forwarding events are emitted when the hub's inbound HTLC is claimed: wait for them, bounded.
    let settled_out = new_records(&client_node, &client_before)
        .iter()
        .filter(|p| !p.inbound && p.state == boltensor_ln::PaymentState::Succeeded)
        .count();
    let _ = wait_for(
        "the hub to report its forwards",
        Duration::from_secs(30),
        || {
            let forwards = forwards.clone();
            async move {
                Ok(
                    (forwards.load(Ordering::Acquire) >= forwards_before + settled_out)
                        .then_some(()),
                )
            }
        },
    )
    .await;
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let memory = memory.finish().await;

    // A payment still open when the client stopped waiting (its payment timeout) ended since: take the
    // outcome from the client node's payment store.
    let final_state: HashMap<String, boltensor_ln::PaymentState> =
        new_records(&client_node, &client_before)
            .iter()
            .filter(|p| !p.inbound)
            .filter_map(|p| p.hash.map(|h| (hex::encode(h), p.state)))
            .collect();
    for d in done.iter_mut().filter(|d| d.class == Class::Pending) {
        let state = d.hash.as_ref().and_then(|h| final_state.get(h));
        d.class = match state {
            Some(boltensor_ln::PaymentState::Failed) if !d.answered_ok => Class::Refunded,
            Some(boltensor_ln::PaymentState::Succeeded) if d.answered_ok => Class::Settled,
            Some(boltensor_ln::PaymentState::Pending) | None => continue,
            Some(_) => Class::Inconsistent,
        };
        outcomes.resolved_late += 1;
    }
    let mut first_failure = None;
    for d in &done {
        match d.class {
            Class::Settled => outcomes.settled += 1,
            Class::Refunded => outcomes.refunded += 1,
            Class::ClientError => outcomes.client_error += 1,
            Class::Pending => outcomes.pending += 1,
            Class::Inconsistent => outcomes.inconsistent += 1,
        }
        if d.class != Class::Settled && first_failure.is_none() {
            first_failure = d.detail.clone();
        }
    }

    let ledger = ledger(LedgerInputs {
        client_id: client_node.node_id().to_string(),
        hub_id: hub.node_id().to_string(),
        miner_id: miner_node.node_id().to_string(),
        client_records: new_records(&client_node, &client_before),
        hub_records: new_records(&hub, &HashSet::new()),
        miner_records: new_records(&miner_node, &miner_before),
        hub_forwards: forwards.load(Ordering::Acquire) - forwards_before,
        hub_fees_msat: fees.load(Ordering::Relaxed) - fees_before,
        hub_ledger: {
            let now = hub.forwarded();
            boltensor_ln::Forwards {
                count: now.count - hub_ledger_before.count,
                fee_msat: now.fee_msat - hub_ledger_before.fee_msat,
                forwarded_msat: now.forwarded_msat - hub_ledger_before.forwarded_msat,
            }
        },
        spend_before: &spend_before,
        spend_after: &client.spend(),
        done: &done,
        miner: &miner,
        unresolved_records: unresolved(&miner).unwrap_or(usize::MAX),
    });
    let lat = |k: Option<Kind>| {
        Latency::of(
            done.iter()
                .filter(|d| k.is_none_or(|k| d.kind == k))
                .map(|d| d.latency)
                .collect(),
        )
    };
    let nothing_lost = outcomes.total() == started_count
        && outcomes.pending == 0
        && outcomes.inconsistent == 0
        && outcomes.panicked == 0
        && ledger.balanced;
    let report = PaidLoadReport {
        planned,
        started: started_count,
        concurrency: cfg.concurrency,
        elapsed_secs: elapsed.as_secs_f64(),
        settled_per_sec: outcomes.settled as f64 / elapsed.as_secs_f64(),
        latency_all: lat(None),
        latency_embedding: lat(Some(Kind::Embedding)),
        latency_chat: lat(Some(Kind::Chat)),
        outcomes,
        first_failure,
        ledger,
        drain_secs,
        memory,
        nothing_lost,
    };

    let _ = stop_tx.send(true);
    let _ = served.await;
    hub_watch.abort();
    drop(miner);
    client_node.stop().await;
    hub.stop().await;
    miner_node.stop().await;
    Ok(report)
}

struct LedgerInputs<'a> {
    client_id: String,
    hub_id: String,
    miner_id: String,
    client_records: Vec<PaymentRecord>,
    hub_records: Vec<PaymentRecord>,
    miner_records: Vec<PaymentRecord>,
    hub_forwards: usize,
    hub_fees_msat: u64,
    /// The growth of the hub's forward ledger over the load phase.
    hub_ledger: boltensor_ln::Forwards,
    spend_before: &'a boltensor_client::Spend,
    spend_after: &'a boltensor_client::Spend,
    done: &'a [Done],
    miner: &'a Miner,
    unresolved_records: usize,
}

/// Balances the load phase's books: the nodes' payment stores, the hub's forwards, the client library's
/// spend and the miner's request records must all tell the same story.
fn ledger(i: LedgerInputs<'_>) -> Ledger {
    use boltensor_ln::PaymentState::{Failed, Pending, Succeeded};
    let mut l = Ledger {
        hub_forwards: i.hub_forwards,
        hub_fees_msat: i.hub_fees_msat,
        unresolved_records: i.unresolved_records,
        ..Ledger::default()
    };
    for p in &i.client_records {
        match (p.inbound, p.state) {
            (false, Succeeded) => {
                l.client_payments += 1;
                l.client_sent_msat += p.amount_msat;
                l.client_fees_msat += p.fee_msat;
            }
            (false, Failed) => l.client_failed += 1,
            (_, Pending) => l.pending_payments += 1,
            _ => {}
        }
    }
    for p in &i.miner_records {
        match (p.inbound, p.state) {
            (true, Succeeded) => {
                l.miner_payments += 1;
                l.miner_received_msat += p.amount_msat;
            }
            (_, Pending) => l.pending_payments += 1,
            _ => {}
        }
    }
    l.client_spend_msat = i.spend_after.spent_msat - i.spend_before.spent_msat;
    l.client_spend_fees_msat = i.spend_after.fees_msat - i.spend_before.fees_msat;
    let mut problems = Vec::new();
    for d in i.done {
        let Some(hash) = &d.hash else { continue };
        let record = <[u8; 32]>::try_from(hex::decode(hash).unwrap_or_default())
            .ok()
            .and_then(|h| i.miner.store().get(&h).ok().flatten());
        let Some(record) = record else {
            l.disagreements += 1;
            problems.push(format!("payment {hash} has no record at the miner"));
            continue;
        };
        let agrees = match d.class {
            Class::Settled => record.status == Status::Settled,
            Class::Refunded => matches!(record.status, Status::FailedBack | Status::Expired),
            _ => true,
        };
        if record.status == Status::Settled {
            l.miner_store_settled += 1;
            l.miner_store_settled_msat += record.price_msat;
        }
        if !agrees {
            l.disagreements += 1;
            problems.push(format!(
                "payment {hash}: client {:?}, miner {:?}",
                d.class, record.status
            ));
        }
    }
    let settled_requests = i.done.iter().filter(|d| d.class == Class::Settled).count();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    check(
        l.client_sent_msat + l.client_fees_msat == l.miner_received_msat + l.hub_fees_msat,
        format!(
            "client sent {} + fees {} != miner received {} + hub fees {}",
            l.client_sent_msat, l.client_fees_msat, l.miner_received_msat, l.hub_fees_msat
        ),
    );
    check(
        l.client_sent_msat == l.miner_received_msat,
        format!(
            "client sent {} msat, miner received {} msat",
            l.client_sent_msat, l.miner_received_msat
        ),
    );
    check(
        l.client_payments == l.miner_payments && l.miner_payments == l.hub_forwards,
        format!(
            "payments: client {}, miner {}, hub forwards {}",
            l.client_payments, l.miner_payments, l.hub_forwards
        ),
    );
    check(
        l.client_payments == settled_requests && l.miner_store_settled == settled_requests,
        format!(
            "settled: {} requests, {} client payments, {} miner records",
            settled_requests, l.client_payments, l.miner_store_settled
        ),
    );
    check(
        l.client_spend_msat == l.client_sent_msat
            && l.client_spend_fees_msat == l.client_fees_msat
            && l.miner_store_settled_msat == l.miner_received_msat,
        format!(
            "books: client library {} + {} fees, node {} + {}; miner store {}, node {}",
            l.client_spend_msat,
            l.client_spend_fees_msat,
            l.client_sent_msat,
            l.client_fees_msat,
            l.miner_store_settled_msat,
            l.miner_received_msat
        ),
    );
    check(
        l.pending_payments == 0,
        format!("{} payments pending", l.pending_payments),
    );
    check(
        l.unresolved_records == 0,
        format!("{} miner records unresolved", l.unresolved_records),
    );
    check(
        l.disagreements == 0,
        format!("{} client/miner disagreements", l.disagreements),
    );
    let audit = audit(&i);
    l.audit = audit.summary();
    l.audit_violations = audit.violations.iter().map(ToString::to_string).collect();
    l.audit_settled = audit.settled();
    if !l.audit_settled {
        problems.push(format!("audit: {}", l.audit));
    }
    l.balanced = problems.is_empty();
    l.problems = problems;
    l
}

/// The shared ledger invariant over the load phase: the three nodes' new payments and the miner's
/// record of every payment hash either side saw.
fn audit(i: &LedgerInputs<'_>) -> boltensor_audit::AuditReport {
    use boltensor_audit::NodeLedger;
    let node = |name: &str, role, id: &str, payments: &[PaymentRecord]| NodeLedger {
        name: name.into(),
        role,
        node_id: id.into(),
        payments: payments.to_vec(),
        forwarded: None,
    };
    let hashes: BTreeSet<[u8; 32]> = i
        .client_records
        .iter()
        .chain(&i.miner_records)
        .filter(|p| !p.keysend)
        .filter_map(|p| p.hash)
        .collect();
    // The miner's own view of those requests (the warm-up's are left out with its payments).
    let requests = match i.miner.store().audit("miner") {
        Ok(all) => all
            .into_iter()
            .filter(|q| hashes.contains(&q.payment_hash))
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "the miner's store cannot be read for the audit");
            Vec::new()
        }
    };
    boltensor_audit::check(&boltensor_audit::Ledger {
        nodes: vec![
            node("client", Role::Client, &i.client_id, &i.client_records),
            NodeLedger {
                forwarded: Some(i.hub_ledger),
                ..node("hub", Role::Coordinator, &i.hub_id, &i.hub_records)
            },
            node("miner", Role::Miner, &i.miner_id, &i.miner_records),
        ],
        requests,
        payouts: Vec::new(),
        pool: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------------
// Part 2: weight submissions against the federation.

/// A deterministic key for `label` number `i`.
fn key(label: &str, i: usize) -> Keypair {
    let mut e = sha256::Hash::engine();
    e.input(b"boltensor/bench-load/v1");
    e.input(label.as_bytes());
    e.input(&(i as u64).to_be_bytes());
    let secret = SecretKey::from_slice(&sha256::Hash::from_engine(e).to_byte_array())
        .expect("a SHA-256 output is a valid key with overwhelming probability");
    Keypair::from_secret_key(SECP256K1, &secret)
}

/// What one member answered to one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Accepted,
    Duplicate,
    Refused(String),
    Unreachable(String),
}

struct Federated {
    net: TestNet,
    federation: FederationConfig,
    members: Vec<Running>,
    http: reqwest::Client,
}

impl Federated {
    fn api(&self, i: usize) -> String {
        format!("http://{}", self.federation.members[i].api)
    }

    async fn post(&self, i: usize, path: &str, body: Vec<u8>) -> (Answer, Duration) {
        let t = Instant::now();
        let answer = match self
            .http
            .post(format!("{}{path}", self.api(i)))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
        {
            Err(e) => Answer::Unreachable(e.to_string()),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                if status == 202 {
                    Answer::Accepted
                } else if text.contains("duplicate") {
                    Answer::Duplicate
                } else {
                    Answer::Refused(format!("HTTP {status}: {text}"))
                }
            }
        };
        (answer, t.elapsed())
    }

    /// Waits until every member has stored signed epoch `epoch`.
    async fn wait_signed(&self, epoch: u64, timeout: Duration) -> Result<(), LoadError> {
        wait_for(
            &format!("every member to sign epoch {epoch}"),
            timeout,
            || async {
                for m in &self.members {
                    let got = m
                        .engine
                        .store()
                        .epoch(epoch)
                        .map_err(|e| TestEnvError::Devnet(e.to_string()))?;
                    if got.is_none() {
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            },
        )
        .await?;
        Ok(())
    }

    fn signed(&self, member: usize, epoch: u64) -> Result<SignedEpoch, LoadError> {
        self.members[member]
            .engine
            .store()
            .epoch(epoch)
            .map_err(|e| LoadError::Coordinator(e.to_string()))?
            .ok_or_else(|| LoadError::Coordinator(format!("member {member} has no epoch {epoch}")))
    }
}

/// Starts four members on loopback with a regtest bitcoind for their bond checks.
async fn start_federation(cfg: &FederationLoadConfig) -> Result<Federated, LoadError> {
    let net = TestNet::start().await?;
    let ChainSource::BitcoindRpc {
        port,
        user,
        password,
        ..
    } = net.bitcoind.chain_source()
    else {
        return Err(LoadError::Coordinator(
            "the test network's chain source is not bitcoind RPC".into(),
        ));
    };
    let rpc = BitcoindRpc::new(
        format!("http://127.0.0.1:{port}"),
        RpcAuth::UserPass { user, password },
    );
    let max_uids = u16::try_from(cfg.validators + cfg.miners)
        .map_err(|_| LoadError::Coordinator("more than 65535 registrants".into()))?
        .max(2);
    let (federation, keys) = boltensor_coordinator::config::loopback_federation(
        "bench-load",
        b"bench-load",
        4,
        cfg.timing.clone(),
        Params {
            epoch_sessions: cfg.epoch_sessions.max(1),
            bond_min_timelock: 50,
            bond_margin: 5,
            bond_min_confirmations: 1,
            bond_min_sat: 10_000,
            max_uids,
            ..Params::default()
        },
        boltensor_testenv::free_port,
    )
    .map_err(io_err)?;
    federation
        .validate()
        .map_err(|e| LoadError::Coordinator(e.to_string()))?;
    let mut running = Vec::new();
    for (i, kp) in keys.iter().enumerate() {
        let started = start(
            CoordinatorConfig {
                federation: federation.clone(),
                index: i,
                keypair: *kp,
                data_dir: net.dir().join("federation").join(format!("member-{i}")),
            },
            Options {
                rpc: Some(rpc.clone()),
                bond_check_every: Some(Duration::from_millis(500)),
                ..Options::default()
            },
        )
        .await
        .map_err(|e| LoadError::Coordinator(e.to_string()))?;
        running.push(started);
    }
    Ok(Federated {
        net,
        federation,
        members: running,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(io_err)?,
    })
}

/// The validators' bonds on chain and their signed registrations.
async fn bonded_validators(fed: &Federated, n: usize) -> Result<Vec<ConsensusItem>, LoadError> {
    let ChainSource::BitcoindRpc {
        port,
        user,
        password,
        ..
    } = fed.net.bitcoind.chain_source()
    else {
        return Err(LoadError::Bond("no bitcoind RPC".into()));
    };
    let rpc = BitcoindRpc::new(
        format!("http://127.0.0.1:{port}"),
        RpcAuth::UserPass { user, password },
    );
    let bitcoind = &fed.net.bitcoind;
    for v in 0..n {
        let wallet = KeyWallet::new(key("validator", v), Network::Regtest);
        bitcoind.mine_to(1, &wallet.address()).await?;
    }
    bitcoind.mine(100).await?;
    let federation =
        Federation::byzantine(fed.federation.keys()).map_err(|e| LoadError::Bond(e.to_string()))?;
    let mut out = Vec::new();
    for v in 0..n {
        let owner = key("validator", v);
        let node = key("validator-node", v).public_key();
        let wallet = KeyWallet::new(owner, Network::Regtest);
        let bond = Bond::new(owner.x_only_public_key().0, federation.clone(), 200)
            .map_err(|e| LoadError::Bond(e.to_string()))?;
        let sats = 100_000 + 1_000 * v as u64;
        let funding = wallet
            .fund(
                &rpc,
                bond.script_pubkey(),
                Amount::from_sat(sats),
                FeeRate::from_sat_per_vb(2).expect("a small fee rate"),
            )
            .await
            .map_err(|e| LoadError::Bond(e.to_string()))?;
        let proof = BondClaims {
            outpoint: funding.outpoint,
            amount: Amount::from_sat(sats),
            timelock: 200,
            owner: owner.x_only_public_key().0,
            role: Role::Validator,
            node_id: node,
            registration_key: owner.x_only_public_key().0,
        }
        .sign(&owner)
        .map_err(|e| LoadError::Bond(e.to_string()))?;
        let node_key = key("validator-node", v);
        let mut reg = Registration::new(
            Role::Validator,
            owner.x_only_public_key().0,
            node.to_string(),
            fed.federation.id(),
        );
        reg.bond = Some(proof.to_hex());
        out.push(ConsensusItem::Register(
            reg.sign_node(|m| boltensor_ln::sign_message_with_key(m, &node_key.secret_key()))
                .sign(&owner),
        ));
        if v % 20 == 19 {
            // Keep the mempool's chains short.
            bitcoind.mine(1).await?;
        }
    }
    bitcoind.mine(1).await?;
    Ok(out)
}

fn miner_node_id(m: usize) -> String {
    key("miner-node", m).public_key().to_string()
}

fn miner_registration(fed: [u8; 32], m: usize) -> ConsensusItem {
    let kp = key("miner", m);
    let node = key("miner-node", m);
    let mut reg = Registration::new(Role::Miner, kp.x_only_public_key().0, miner_node_id(m), fed);
    reg.api = Some(format!("http://127.0.0.1:1/miner-{m}"));
    reg.models = vec![EMBEDDING_MODEL.into()];
    ConsensusItem::Register(
        reg.sign_node(|msg| boltensor_ln::sign_message_with_key(msg, &node.secret_key()))
            .sign(&kp),
    )
}

fn weight_vector(v: usize, epoch: u64, miners: &[String]) -> SignedWeights {
    let kp = key("validator", v);
    let weights: BTreeMap<String, u16> = miners
        .iter()
        .enumerate()
        .map(|(m, node)| {
            let w = (m * 7919 + v * 104_729 + epoch as usize * 31) % 65_535 + 1;
            (node.clone(), w as u16)
        })
        .collect();
    WeightVector {
        epoch,
        validator: kp.x_only_public_key().0.serialize(),
        weights,
    }
    .sign(&kp)
}

#[derive(Debug, Default)]
struct Tally {
    posts: usize,
    accepted: usize,
    duplicate: usize,
    refused: usize,
    unreachable: usize,
    first_refusal: Option<String>,
    latencies: Vec<Duration>,
    submit_time: Duration,
}

/// Runs part 2 and returns its figures.
pub async fn federation_load(cfg: FederationLoadConfig) -> Result<FederationLoadReport, LoadError> {
    let setup = Instant::now();
    let fed = Arc::new(start_federation(&cfg).await?);
    let n = fed.members.len();

    // Registrations through the API: validators with bonds, then miners; each to one member.
    let validators = bonded_validators(&fed, cfg.validators).await?;
    let registrations: Vec<ConsensusItem> = validators
        .into_iter()
        .chain((0..cfg.miners).map(|m| miner_registration(fed.federation.id(), m)))
        .collect();
    let total = registrations.len();
    for (i, item) in registrations.iter().enumerate() {
        let (answer, _) = fed.post(i % n, "/v1/items", item.encode()).await;
        if !matches!(answer, Answer::Accepted) {
            return Err(LoadError::Registration(format!("{answer:?}")));
        }
    }
    wait_for(
        "every registration ordered and every bond attested at every member",
        Duration::from_secs(180),
        || async {
            for m in &fed.members {
                let st = m.engine.state();
                let f = st.max_faulty();
                let registered = st.uids.iter().flatten().count();
                let staked = st
                    .uids
                    .iter()
                    .flatten()
                    .filter(|n| n.registration.role == Role::Validator && n.stake_sat(f) > 0)
                    .count();
                if registered < total || staked < cfg.validators {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    )
    .await?;
    // Start on a fresh epoch: wait for the next boundary, signed at every member.
    let now = fed.members[0].engine.state().epoch;
    fed.wait_signed(now, Duration::from_secs(120)).await?;
    let first_epoch = now + 1;
    let setup_secs = setup.elapsed().as_secs_f64();
    let miners: Vec<String> = (0..cfg.miners).map(miner_node_id).collect();

    tracing::info!(
        validators = cfg.validators,
        miners = cfg.miners,
        epochs = cfg.epochs,
        "federation load"
    );
    let memory = MemorySampler::start();
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut per_epoch = Vec::new();
    let mut delivered_by_epoch: BTreeMap<u64, Vec<SignedWeights>> = BTreeMap::new();
    let mut vectors = 0usize;
    for k in 0..cfg.epochs {
        if started.elapsed() >= cfg.max_duration {
            break;
        }
        let epoch = first_epoch + k;
        // Epoch − 1 is signed everywhere, so every member collects `epoch`.
        fed.wait_signed(epoch - 1, Duration::from_secs(120)).await?;
        let signed: Vec<(usize, SignedWeights, Vec<u8>)> = (0..cfg.validators)
            .map(|v| {
                let sw = weight_vector(v, epoch, &miners);
                let body = serde_json::to_vec(&sw).expect("weights serialise");
                (v, sw, body)
            })
            .collect();
        vectors += signed.len();
        let t0 = Instant::now();
        let sem = Arc::new(tokio::sync::Semaphore::new(cfg.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for (_, sw, body) in signed {
            let (fed, sem) = (fed.clone(), sem.clone());
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let answers = futures_util::future::join_all(
                    (0..fed.members.len()).map(|i| fed.post(i, "/v1/weights", body.clone())),
                )
                .await;
                (sw, answers)
            });
        }
        let mut delivered = Vec::new();
        while let Some(r) = tasks.join_next().await {
            let (sw, answers) = r.map_err(io_err)?;
            let mut held = false;
            for (a, lat) in answers {
                tally.posts += 1;
                tally.latencies.push(lat);
                match a {
                    Answer::Accepted => {
                        tally.accepted += 1;
                        held = true;
                    }
                    Answer::Duplicate => {
                        tally.duplicate += 1;
                        held = true;
                    }
                    Answer::Refused(m) => {
                        tally.refused += 1;
                        tally.first_refusal.get_or_insert(m);
                    }
                    Answer::Unreachable(m) => {
                        tally.unreachable += 1;
                        tally.first_refusal.get_or_insert(m);
                    }
                }
            }
            if held {
                delivered.push(sw);
            }
        }
        let submit = t0.elapsed();
        tally.submit_time += submit;
        // Ordered: every accepted vector in every member's state (or the epoch closed meanwhile).
        let keys: BTreeSet<[u8; 32]> = delivered.iter().map(|sw| sw.vector.validator).collect();
        let ordered = wait_for(
            &format!("epoch {epoch}'s vectors to be ordered"),
            DRAIN_TIMEOUT,
            || async {
                for m in &fed.members {
                    let st = m.engine.state();
                    if st.epoch > epoch {
                        return Ok(Some(t0.elapsed()));
                    }
                    let have = st
                        .weights
                        .values()
                        .filter(|(e, _, sw)| *e == epoch && keys.contains(&sw.vector.validator))
                        .count();
                    if have < keys.len() {
                        return Ok(None);
                    }
                }
                Ok(Some(t0.elapsed()))
            },
        )
        .await?;
        fed.wait_signed(epoch, DRAIN_TIMEOUT).await?;
        let signed_after = t0.elapsed();
        let result = fed.signed(0, epoch)?;
        let t = Instant::now();
        let verified = boltensor_coordinator::verify_epoch(&result, &fed.federation);
        let verify_ms = t.elapsed().as_secs_f64() * 1e3;
        if let Err(e) = verified {
            tracing::error!(epoch, error = %e, "member 0's signed epoch does not verify");
        }
        per_epoch.push(EpochFigures {
            epoch,
            submit_ms: submit.as_secs_f64() * 1e3,
            ordered_ms: ordered.as_secs_f64() * 1e3,
            signed_ms: signed_after.as_secs_f64() * 1e3,
            verify_ms,
            delivered: delivered.len(),
            included: 0,
        });
        delivered_by_epoch.insert(epoch, delivered);
    }
    let memory = memory.finish().await;

    // The books: every accepted vector once in every member's signed result and once in the sessions.
    let mut lost = 0;
    let mut counted_twice = 0;
    let mut unexpected = 0;
    let mut results_agree = true;
    for fig in &mut per_epoch {
        let epoch = fig.epoch;
        let delivered = &delivered_by_epoch[&epoch];
        let mut included_everywhere: BTreeMap<[u8; 32], usize> = BTreeMap::new();
        let mut digests = BTreeSet::new();
        for m in 0..n {
            let signed = fed.signed(m, epoch)?;
            digests.insert(signed.result.digest());
            if boltensor_coordinator::verify_epoch(&signed, &fed.federation).is_err() {
                results_agree = false;
            }
            let inputs: Vec<&SignedWeights> = signed
                .result
                .inputs
                .weights
                .iter()
                .filter(|w| w.epoch == epoch)
                .map(|w| &w.signed)
                .collect();
            for sw in delivered {
                match inputs.iter().filter(|x| **x == sw).count() {
                    0 => {}
                    1 => *included_everywhere.entry(sw.vector.validator).or_default() += 1,
                    _ => counted_twice += 1,
                }
            }
            unexpected += inputs
                .iter()
                .filter(|x| !delivered.iter().any(|sw| sw == **x))
                .count();
            // Ordered once: the weights items of this epoch in the sessions since the previous epoch.
            let previous = fed.signed(m, epoch - 1)?.session;
            let mut ordered: BTreeMap<[u8; 32], usize> = BTreeMap::new();
            for s in previous + 1..=signed.session {
                let session = fed.members[m]
                    .engine
                    .store()
                    .session(s)
                    .map_err(|e| LoadError::Coordinator(e.to_string()))?
                    .ok_or_else(|| {
                        LoadError::Coordinator(format!("member {m} lacks session {s}"))
                    })?;
                for a in &session.items {
                    if let ConsensusItem::Weights(sw) = &a.item {
                        if sw.vector.epoch == epoch {
                            *ordered.entry(sw.vector.validator).or_default() += 1;
                        }
                    }
                }
            }
            counted_twice += ordered.values().filter(|c| **c > 1).count();
        }
        if digests.len() != 1 {
            results_agree = false;
        }
        fig.included = included_everywhere.values().filter(|c| **c == n).count();
        lost += delivered.len() - fig.included;
    }
    let delivered: usize = per_epoch.iter().map(|e| e.delivered).sum();
    let submit_secs = tally.submit_time.as_secs_f64().max(1e-9);
    let report = FederationLoadReport {
        members: n,
        validators: cfg.validators,
        miners: cfg.miners,
        epochs: per_epoch.len(),
        epoch_sessions: cfg.epoch_sessions,
        setup_secs,
        posts: tally.posts,
        accepted_202: tally.accepted,
        duplicate: tally.duplicate,
        refused: tally.refused,
        unreachable: tally.unreachable,
        first_refusal: tally.first_refusal,
        vectors,
        delivered,
        delivered_per_sec: delivered as f64 / submit_secs,
        accepted_posts_per_sec: tally.accepted as f64 / submit_secs,
        post_latency: Latency::of(tally.latencies),
        per_epoch,
        lost,
        counted_twice,
        unexpected,
        results_agree,
        memory,
        nothing_lost: lost == 0 && counted_twice == 0 && unexpected == 0 && results_agree,
    };
    match Arc::try_unwrap(fed) {
        Ok(fed) => {
            for m in fed.members {
                m.shutdown().await;
            }
            fed.net.bitcoind.stop().await;
        }
        Err(_) => tracing::warn!("a submission task still holds the federation; dropping it"),
    }
    Ok(report)
}

// ---------------------------------------------------------------------------------------------------
// Rendering.

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn memory_line(out: &mut String, m: &Memory) {
    let _ = writeln!(
        out,
        "  memory (this process, VmRSS): {:.0} MiB before, {:.0} MiB after, {:.0} MiB peak sampled; VmHWM {:.0} MiB",
        mib(m.rss_before_kib),
        mib(m.rss_after_kib),
        mib(m.rss_peak_kib),
        mib(m.hwm_kib)
    );
}

fn latency_line(out: &mut String, name: &str, l: &Latency) {
    let _ = writeln!(
        out,
        "  {name:<34} n {:>5}  p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
        l.n, l.p50_ms, l.p99_ms, l.max_ms
    );
}

impl LoadReport {
    /// A human table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.debug_build {
            let _ = writeln!(out, "(debug build: the timings are not speeds)\n");
        }
        let yes = |b: bool| if b { "yes" } else { "NO" };
        if let Some(p) = &self.paid {
            let o = &p.outcomes;
            let l = &p.ledger;
            let _ = writeln!(
                out,
                "paid requests against one miner (client -> hub -> miner, regtest, {} at once)",
                p.concurrency
            );
            let _ = writeln!(
                out,
                "  requests: {} planned, {} started, {} settled, {} refunded, {} client errors, {} pending, {} inconsistent, {} panicked ({} resolved after the client's payment timeout)",
                p.planned, p.started, o.settled, o.refunded, o.client_error, o.pending, o.inconsistent, o.panicked, o.resolved_late
            );
            let _ = writeln!(
                out,
                "  throughput: {:.1} settled requests/s over {:.1} s",
                p.settled_per_sec, p.elapsed_secs
            );
            latency_line(&mut out, "all requests", &p.latency_all);
            latency_line(&mut out, "embeddings", &p.latency_embedding);
            latency_line(&mut out, "chat completions (16 tokens)", &p.latency_chat);
            let _ = writeln!(
                out,
                "  money: client sent {} + fees {} msat = miner received {} + hub fees {} msat ({} / {} / {} payments / forwards); pending at end: {}; drained in {:.1} s",
                l.client_sent_msat, l.client_fees_msat, l.miner_received_msat, l.hub_fees_msat,
                l.client_payments, l.miner_payments, l.hub_forwards, l.pending_payments, p.drain_secs
            );
            let _ = writeln!(out, "  audit (boltensor-audit check): {}", l.audit);
            memory_line(&mut out, &p.memory);
            for problem in &l.problems {
                let _ = writeln!(out, "  PROBLEM: {problem}");
            }
            if let Some(f) = &p.first_failure {
                let _ = writeln!(out, "  first failure: {f}");
            }
            let _ = writeln!(out, "  nothing lost: {}\n", yes(p.nothing_lost));
        }
        if let Some(f) = &self.federation {
            let _ = writeln!(
                out,
                "weight submissions against {} coordinators (loopback, {} validators x {} miners, {} epochs of {} sessions)",
                f.members, f.validators, f.miners, f.epochs, f.epoch_sessions
            );
            let _ = writeln!(
                out,
                "  set-up (bonds, {} registrations, attestations): {:.1} s",
                f.validators + f.miners,
                f.setup_secs
            );
            let _ = writeln!(
                out,
                "  POST /v1/weights: {} posts, {} accepted (202), {} duplicate, {} refused, {} unreachable",
                f.posts, f.accepted_202, f.duplicate, f.refused, f.unreachable
            );
            let _ = writeln!(
                out,
                "  throughput: {:.1} vectors accepted/s ({:.1} accepted POSTs/s)",
                f.delivered_per_sec, f.accepted_posts_per_sec
            );
            latency_line(&mut out, "one POST (HTTP, answer read)", &f.post_latency);
            let _ = writeln!(
                out,
                "  {:>6} {:>10} {:>12} {:>12} {:>11} {:>10} {:>9}",
                "epoch",
                "submit ms",
                "ordered ms",
                "signed ms",
                "verify ms",
                "accepted",
                "included"
            );
            for e in &f.per_epoch {
                let _ = writeln!(
                    out,
                    "  {:>6} {:>10.0} {:>12.0} {:>12.0} {:>11.1} {:>10} {:>9}",
                    e.epoch,
                    e.submit_ms,
                    e.ordered_ms,
                    e.signed_ms,
                    e.verify_ms,
                    e.delivered,
                    e.included
                );
            }
            let _ = writeln!(
                out,
                "  (ordered / signed: from the epoch's first POST until every member holds every vector / stored the signed result)"
            );
            let _ = writeln!(
                out,
                "  accounting: {} vectors, {} accepted, {} lost, {} counted twice, {} unexpected; results agree and verify: {}",
                f.vectors,
                f.delivered,
                f.lost,
                f.counted_twice,
                f.unexpected,
                yes(f.results_agree)
            );
            memory_line(&mut out, &f.memory);
            if let Some(r) = &f.first_refusal {
                let _ = writeln!(out, "  first refusal: {r}");
            }
            let _ = writeln!(out, "  nothing lost: {}", yes(f.nothing_lost));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let l = Latency::of((1..=100).map(Duration::from_millis).collect());
        assert_eq!(l.n, 100);
        assert_eq!(l.p50_ms, 50.0);
        assert_eq!(l.p99_ms, 99.0);
        assert_eq!(l.max_ms, 100.0);
        assert_eq!(Latency::of(vec![]).n, 0);
        let one = Latency::of(vec![Duration::from_millis(7)]);
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
    }

    #[test]
    fn memory_is_read_from_proc() {
        let (rss, hwm) = proc_memory();
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(rss > 0 && hwm >= rss, "rss {rss} hwm {hwm}");
        }
    }
}
