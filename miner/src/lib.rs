//! The miner: real models behind an OpenAI-compatible API, paid per request with L402 hold invoices.
//!
//! One paid request (docs/paid-requests.md): an unpaid request gets `402` with a hold invoice and a signed
//! token; the client pays (the HTLC is held here), repeats the request with `Authorization: L402 <token>`,
//! the miner runs the model, stores the result, **claims the payment only when it has the result**, and
//! returns it. If the model fails, times out or the miner stops, the payment is failed back.
//!
//! # Layout
//! - [`backend`]: candle models (MiniLM embeddings, SmolLM2 chat) and the external OpenAI-compatible backend.
//! - [`config`]: [`MinerConfig`], models and prices.
//! - [`store`]: the crash-safe record of requests and credit notes (redb).
//! - [`api`]: the axum router, the payment state machine and [`api::ApiError`].
//! - [`Miner`]: ties them to an [`LnNode`]; [`Miner::run`] serves until shutdown and resolves every held
//!   payment, also after a crash.

pub mod api;
pub mod backend;
pub mod config;
pub mod store;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boltensor_ln::{LnEvent, LnNode, PaymentHash, PaymentPreimage, PaymentState};
use tokio::net::TcpListener;

pub use backend::{Backend, ModelError, ModelKind};
pub use config::{MinerConfig, Misbehaviour, ModelSource, ModelSpec, Price};
use store::{Status, Store, StoreError};

/// Why a miner could not start.
#[derive(Debug, thiserror::Error)]
pub enum MinerError {
    /// A model failed to load.
    #[error("model {id}: {source}")]
    Model {
        /// Model id.
        id: String,
        /// Why.
        source: ModelError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The L402 key file could not be read or written.
    #[error("L402 key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Loads every model of `specs` (a model shared by several in-process miners is loaded once by the caller
/// and the map cloned: backends are reference-counted).
pub fn load_backends(specs: &[ModelSpec]) -> Result<HashMap<String, Backend>, MinerError> {
    let mut out = HashMap::new();
    for spec in specs {
        let started = Instant::now();
        let backend = spec.load().map_err(|source| MinerError::Model {
            id: spec.id.clone(),
            source,
        })?;
        tracing::info!(model = %spec.id, kind = ?backend.kind(), load_ms = started.elapsed().as_millis() as u64, "model loaded");
        out.insert(spec.id.clone(), backend);
    }
    Ok(out)
}

/// A running miner: its node, models, store and L402 key.
pub struct Miner {
    cfg: MinerConfig,
    node: Arc<LnNode>,
    store: Store,
    key: [u8; 32],
    node_id: [u8; 33],
    models: HashMap<String, (ModelSpec, Backend)>,
    /// Requests this process is serving right now (a `Serving` record not in here was interrupted).
    serving: Mutex<HashSet<[u8; 32]>>,
    /// When each held payment awaiting its request was first seen.
    held_since: Mutex<HashMap<[u8; 32], Instant>>,
    /// When each claim was made, until the payment is reported received.
    claimed_at: Mutex<HashMap<[u8; 32], Instant>>,
    /// Result ready (claim) → payment settled at this node, most recent last (bounded).
    settle_latencies: Mutex<std::collections::VecDeque<Duration>>,
    /// Paid requests served, for [`config::Misbehaviour::DropEveryThird`].
    served_count: std::sync::atomic::AtomicU64,
    /// Compute spent before payment (docs/security.md, row 8).
    compute: Arc<backend::ComputeStats>,
    /// Sweeps done (for tests).
    sweeps: std::sync::atomic::AtomicU64,
    /// Payments held for a kept request whose pay-first run is going on ([`Miner::serve_kept`]).
    pay_first_running: Mutex<HashSet<[u8; 32]>>,
    /// Requests kept with their challenges for pay-first clients.
    pub(crate) kept: Mutex<KeptRequests>,
    /// Pay-first runs started.
    pub(crate) metrics_pay_first: std::sync::atomic::AtomicU64,
    /// Permits for model runs started before their payment is held ([`MinerConfig::max_unpaid_runs`]).
    unpaid_runs: Arc<tokio::sync::Semaphore>,
    /// Per model: paid requests admitted now ([`MinerConfig::max_queue`]), and requests turned away
    /// with 429 because the queue was full.
    admission: HashMap<String, Arc<Admission>>,
}

/// One model's admission counters.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    /// Paid requests admitted (payment held: waiting for the model, or running).
    pub(crate) admitted: std::sync::atomic::AtomicUsize,
    /// Requests answered 429 because `admitted` was at the limit.
    pub(crate) refused: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Miner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Miner")
            .field("node", &self.node)
            .field("models", &self.models.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Miner {
    /// A miner serving `backends` (from [`load_backends`]) for the models of `cfg`, paid through `node`.
    pub fn new(
        cfg: MinerConfig,
        node: Arc<LnNode>,
        backends: &HashMap<String, Backend>,
    ) -> Result<Arc<Self>, MinerError> {
        let store = Store::open(&cfg.data_dir.join("miner.redb"))?;
        let key = load_or_create_secret(&cfg.data_dir.join("l402.key"))?;
        let mut models = HashMap::new();
        for spec in &cfg.models {
            let backend = backends
                .get(&spec.id)
                .cloned()
                .ok_or_else(|| MinerError::Model {
                    id: spec.id.clone(),
                    source: ModelError::Inference("not loaded".into()),
                })?;
            models.insert(spec.id.clone(), (spec.clone(), backend));
        }
        let cfg_unpaid = cfg.max_unpaid_runs;
        Ok(Arc::new(Miner {
            node_id: node.node_id().serialize(),
            cfg,
            node,
            store,
            key,
            serving: Mutex::new(HashSet::new()),
            held_since: Mutex::new(HashMap::new()),
            claimed_at: Mutex::new(HashMap::new()),
            settle_latencies: Mutex::new(std::collections::VecDeque::new()),
            served_count: std::sync::atomic::AtomicU64::new(0),
            compute: Arc::new(backend::ComputeStats::default()),
            sweeps: std::sync::atomic::AtomicU64::new(0),
            pay_first_running: Mutex::new(HashSet::new()),
            kept: Mutex::new(KeptRequests::default()),
            metrics_pay_first: std::sync::atomic::AtomicU64::new(0),
            unpaid_runs: Arc::new(tokio::sync::Semaphore::new(cfg_unpaid)),
            admission: models
                .keys()
                .map(|id| (id.clone(), Arc::new(Admission::default())))
                .collect(),
            models,
        }))
    }

    /// The miner's Lightning node.
    pub fn node(&self) -> &Arc<LnNode> {
        &self.node
    }

    /// Time from a result being ready (the claim) to the payment settled at this node, for the most
    /// recent payments (up to 10,000).
    pub fn settle_latencies(&self) -> Vec<Duration> {
        lock(&self.settle_latencies).iter().copied().collect()
    }

    /// Model compute spent on runs started before their payment was held.
    pub fn compute_stats(&self) -> backend::ComputeSnapshot {
        self.compute.snapshot()
    }

    /// Per model: paid requests admitted now, and requests turned away with 429 so far.
    pub fn admission(&self) -> BTreeMap<String, (usize, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        self.admission
            .iter()
            .map(|(id, a)| {
                (
                    id.clone(),
                    (a.admitted.load(Relaxed), a.refused.load(Relaxed)),
                )
            })
            .collect()
    }

    /// Sweeps of the open requests done so far.
    pub fn sweeps(&self) -> u64 {
        self.sweeps.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The store (for status pages and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves the API on `listener` until `shutdown` resolves, resolving held payments in the background;
    /// then fails back every payment held for a request that was not delivered.
    pub async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.recover();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let resolver = tokio::spawn(Arc::clone(&self).resolve_loop(stop_rx));
        let router = api::router(Arc::clone(&self));
        tracing::info!(addr = %listener.local_addr()?, node_id = %self.node.node_id(), "miner API listening");
        let served =
            boltensor_http::serve(listener, router, &self.cfg.http_limits(), shutdown).await;
        let _ = stop_tx.send(true);
        let _ = resolver.await;
        self.fail_back_all_undelivered("miner shut down");
        served
    }

    /// Finishes what a previous run left open (after a crash or kill -9): a stored result is claimed, a
    /// request that was being served or waiting for its payment is failed back. LDK does not replay
    /// `PaymentClaimable` for a payment already reported, so this works from our own records.
    fn recover(&self) {
        let records = match self.store.unresolved() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "recovery: cannot list open requests");
                return;
            }
        };
        for r in records {
            match r.status {
                Status::Settling => match self.claim(&r.payment_hash, r.preimage) {
                    Ok(()) => {
                        tracing::info!(payment_hash = %hex::encode(r.payment_hash), "recovery: claimed a delivered result")
                    }
                    Err(e) => {
                        tracing::warn!(payment_hash = %hex::encode(r.payment_hash), error = %e, "recovery: claim failed")
                    }
                },
                Status::Serving => self.fail_back(
                    &r.payment_hash,
                    "the miner restarted while serving this request",
                    Status::FailedBack,
                ),
                // Its token is refused from now on; a payment still on its way finds no record and is
                // failed back (`on_claimable`).
                Status::AwaitingPayment => self.prune_expired(&r.payment_hash),
                _ => {}
            }
        }
    }

    fn fail_back_all_undelivered(&self, reason: &str) {
        match self.store.unresolved() {
            Ok(records) => {
                for r in records {
                    if matches!(r.status, Status::AwaitingPayment | Status::Serving)
                        && self.node.claimable(PaymentHash(r.payment_hash)).is_some()
                    {
                        self.fail_back(&r.payment_hash, reason, Status::FailedBack);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list open requests at shutdown"),
        }
    }

    /// Fails a held payment back (if held) and records why. Idempotent.
    pub(crate) fn fail_back(&self, hash: &[u8; 32], reason: &str, status: Status) {
        lock(&self.kept).remove(hash);
        match self.node.fail(PaymentHash(*hash)) {
            Ok(()) => {
                tracing::info!(payment_hash = %hex::encode(hash), reason, "held payment failed back")
            }
            Err(e) => {
                tracing::debug!(payment_hash = %hex::encode(hash), error = %e, "nothing to fail back")
            }
        }
        lock(&self.held_since).remove(hash);
        let res = self.store.update(hash, |r, credits| {
            // The note goes back only if this request spent it and its payment was never claimed: a
            // request that merely named a note another request spent gives nothing back (row 7 of
            // docs/security.md: otherwise one note pays for chat after chat).
            if let Some(id) = r.credit_id {
                if !matches!(r.status, Status::Settled | Status::Settling) {
                    credits.unspend(&id, r.payment_hash)?;
                }
            }
            if !matches!(r.status, Status::Settled | Status::Settling) {
                r.status = status;
                r.error = Some(reason.to_owned());
            }
            Ok(())
        });
        if let Err(e) = res {
            tracing::error!(payment_hash = %hex::encode(hash), error = %e, "cannot record failed-back payment");
        }
    }

    /// Claims a held payment whose result is stored, and marks it settled.
    pub(crate) fn claim(&self, hash: &[u8; 32], preimage: [u8; 32]) -> Result<(), String> {
        // After a restart the held amount is not reported again: fall back on the invoice amount.
        let amount_msat = match self.node.claimable(PaymentHash(*hash)) {
            Some(held) => held.amount_msat,
            None => {
                self.store
                    .get(hash)
                    .map_err(|e| e.to_string())?
                    .ok_or("unknown request")?
                    .price_msat
            }
        };
        lock(&self.claimed_at).insert(*hash, Instant::now());
        self.node
            .claim(PaymentHash(*hash), PaymentPreimage(preimage), amount_msat)
            .map_err(|e| {
                lock(&self.claimed_at).remove(hash);
                e.to_string()
            })?;
        self.store
            .update(hash, |r, _| {
                r.status = Status::Settled;
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        tracing::info!(payment_hash = %hex::encode(hash), amount_msat, "payment claimed");
        Ok(())
    }

    /// Resolves held payments that no request handler owns: a payment for an expired or failed request,
    /// one whose client never came back, and, after a restart, `Serving` (fail back) and `Settling`
    /// (claim) records.
    async fn resolve_loop(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut events = self.node.subscribe();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                ev = events.recv() => match ev {
                    Ok(LnEvent::PaymentClaimable(c)) => {
                        self.on_claimable(&c.payment_hash.0);
                        self.pay_first(c.payment_hash.0);
                    }
                    Ok(LnEvent::PaymentReceived { payment_hash, .. }) => {
                        if let Some(t) = lock(&self.claimed_at).remove(&payment_hash.0) {
                            let mut l = lock(&self.settle_latencies);
                            if l.len() == 10_000 {
                                l.pop_front();
                            }
                            l.push_back(t.elapsed());
                        }
                    }
                    _ => {}
                },
                _ = tick.tick() => self.sweep(),
            }
        }
    }

    /// Runs the request kept with challenge `hash` now that its payment is held ([`Miner::serve_kept`]),
    /// once at a time per payment.
    fn pay_first(self: &Arc<Self>, hash: [u8; 32]) {
        if lock(&self.serving).contains(&hash) || !lock(&self.pay_first_running).insert(hash) {
            return;
        }
        let miner = Arc::clone(self);
        tokio::spawn(async move {
            miner.serve_kept(hash).await;
            lock(&miner.pay_first_running).remove(&hash);
        });
    }

    fn on_claimable(&self, hash: &[u8; 32]) {
        let r = match self.store.get(hash) {
            Ok(Some(r)) => r,
            Ok(None) => {
                // A held payment with no record: a challenge pruned after it expired unpaid (only this
                // miner makes hold invoices on its node). Without a record there is no preimage, so it
                // can never be claimed: fail it back now rather than let the payer wait for the timeout.
                if let Err(e) = self.node.fail(PaymentHash(*hash)) {
                    tracing::debug!(payment_hash = %hex::encode(hash), error = %e, "unknown held payment: nothing to fail back");
                } else {
                    tracing::info!(payment_hash = %hex::encode(hash), "held payment for an unknown (pruned) request failed back");
                }
                return;
            }
            Err(e) => {
                tracing::error!(payment_hash = %hex::encode(hash), error = %e, "cannot read the request of a held payment");
                return;
            }
        };
        match r.status {
            Status::FailedBack | Status::Expired => {
                self.fail_back(hash, "payment arrived for a closed request", r.status)
            }
            Status::Settling if !lock(&self.serving).contains(hash) => {
                if let Err(e) = self.claim(hash, r.preimage) {
                    tracing::warn!(payment_hash = %hex::encode(hash), error = %e, "recovery claim failed");
                }
            }
            Status::Serving if !lock(&self.serving).contains(hash) => self.fail_back(
                hash,
                "no handler is serving this request (the client went away, or the miner restarted)",
                Status::FailedBack,
            ),
            Status::AwaitingPayment => {
                lock(&self.held_since)
                    .entry(*hash)
                    .or_insert_with(Instant::now);
            }
            // Delivered and claimed, yet the payment is offered (again): a claim made while the node did
            // not hold the payment — right after a restart, before LDK replayed it — is a silent no-op in
            // LDK (`claim_funds` on an unknown hash). Claim again, or the HTLC times out and the client
            // keeps both the result and its money. Claiming twice is harmless.
            Status::Settled
                if self.node.payment_state(PaymentHash(*hash)) != Some(PaymentState::Succeeded) =>
            {
                tracing::info!(payment_hash = %hex::encode(hash), "held payment of a delivered request offered again: claiming it again");
                if let Err(e) = self.claim(hash, r.preimage) {
                    tracing::warn!(payment_hash = %hex::encode(hash), error = %e, "repeat claim failed");
                }
            }
            _ => {}
        }
    }

    /// Resolves the open requests (reading only those: the store keeps an index of them).
    fn sweep(self: &Arc<Self>) {
        self.sweeps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let records = match self.store.unresolved() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "sweep: cannot list open requests");
                return;
            }
        };
        let now = unix_now();
        for r in records {
            let hash = r.payment_hash;
            let held = self.node.claimable(PaymentHash(hash)).is_some();
            match r.status {
                Status::AwaitingPayment
                    if held && r.expires_at > now && lock(&self.kept).contains(&hash) =>
                {
                    // Paid first and the event missed: the kept request runs.
                    self.pay_first(hash)
                }
                Status::AwaitingPayment if held => {
                    let since = *lock(&self.held_since)
                        .entry(hash)
                        .or_insert_with(Instant::now);
                    if since.elapsed() > self.cfg.hold_timeout {
                        self.fail_back(
                            &hash,
                            "paid, but the request never came back in time",
                            Status::Expired,
                        );
                    }
                }
                Status::AwaitingPayment if r.expires_at <= now => self.prune_expired(&hash),
                Status::Serving | Status::Settling if held => self.on_claimable(&hash),
                Status::Serving
                    if !lock(&self.serving).contains(&hash)
                        && r.created_at + self.cfg.hold_timeout.as_secs() * 2 < now =>
                {
                    self.fail_back(&hash, "interrupted and no longer held", Status::FailedBack)
                }
                _ => {}
            }
        }
    }
}

impl Miner {
    /// A challenge that expired without a payment: its invoice is cancelled and forgotten by the node,
    /// its record deleted (nothing was paid, so there is nothing to audit). If a payment is held after
    /// all, it is failed back and the record kept.
    fn prune_expired(&self, hash: &[u8; 32]) {
        if self.node.claimable(PaymentHash(*hash)).is_some() {
            self.fail_back(hash, "token expired", Status::Expired);
            return;
        }
        lock(&self.held_since).remove(hash);
        lock(&self.kept).remove(hash);
        match self.store.prune_unpaid(hash) {
            Ok(true) => {
                self.node.forget_invoice(PaymentHash(*hash));
                tracing::debug!(payment_hash = %hex::encode(hash), "unpaid challenge expired: pruned");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(payment_hash = %hex::encode(hash), error = %e, "cannot prune an expired challenge")
            }
        }
    }
}

/// A request kept with its challenge, to be run when its payment arrives first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeptRequest {
    /// `/v1/embeddings` or `/v1/chat/completions`.
    pub path: &'static str,
    /// The JSON body, as sent.
    pub body: Vec<u8>,
}

/// The kept requests, by payment hash, and their bytes in all (bounded by
/// [`MinerConfig::pay_first_max_kept_bytes`]).
#[derive(Debug, Default)]
pub(crate) struct KeptRequests {
    by_hash: HashMap<[u8; 32], KeptRequest>,
    bytes: usize,
}

impl KeptRequests {
    /// Keeps `req` for `hash` if it fits in `budget` bytes with the others.
    pub fn keep(&mut self, hash: [u8; 32], req: KeptRequest, budget: usize) -> bool {
        let len = req.body.len();
        if self.bytes.saturating_add(len) > budget {
            return false;
        }
        self.bytes += len;
        if let Some(old) = self.by_hash.insert(hash, req) {
            self.bytes -= old.body.len();
        }
        true
    }

    /// Whether a request is kept for `hash`.
    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The request kept for `hash`.
    pub fn get(&self, hash: &[u8; 32]) -> Option<KeptRequest> {
        self.by_hash.get(hash).cloned()
    }

    /// Drops the request kept for `hash`, if any.
    pub fn remove(&mut self, hash: &[u8; 32]) {
        if let Some(old) = self.by_hash.remove(hash) {
            self.bytes -= old.body.len();
        }
    }

    /// Bytes kept now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `N` random bytes from the OS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read;
    let mut out = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .expect("the OS random source is readable");
    out
}

/// Reads a 32-byte secret from `path` (tightening the file to 0600 if others may read it), or creates one
/// there (mode 0600) if the file does not exist.
pub fn load_or_create_secret(path: &Path) -> Result<[u8; 32], MinerError> {
    let err = |reason: String| MinerError::Key {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            // A key file others may read (made by hand, restored from a backup) is tightened to 0600.
            boltensor_ln::secret_file::tighten_permissions(path).map_err(|e| err(e.to_string()))?;
            bytes.try_into().map_err(|_| {
                err(
                    "not 32 bytes; delete it to make a new one (outstanding tokens then fail)"
                        .into(),
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = random_bytes();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            }
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| err(e.to_string()))?;
            f.write_all(&key)
                .and_then(|()| f.sync_all())
                .map_err(|e| err(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}
