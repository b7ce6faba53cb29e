//! The consensus engine, after Fedimint's: sessions of aleph-bft. In each session the members order
//! batches of items for a fixed number of rounds; every member applies the ordered items to its state
//! (one redb transaction each); then each signs the session header — the items' digest and, when the
//! session ends an epoch, the epoch result's digest — and submits that signature through the same
//! session; n − f valid signatures finish it. A member that fell behind fetches signed sessions from
//! its peers' APIs, re-applies their items and checks the signatures against its own recomputation.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aleph_bft::{NetworkData, NodeIndex, OrderedUnit, Recipient, Terminator};
use bitcoin::hashes::{sha256, Hash, HashEngine};
use parity_scale_codec::{Decode, Encode};
use tokio::sync::{broadcast, mpsc, watch};

use crate::config::CoordinatorConfig;
use crate::items::{ConsensusItem, MAX_ITEM_BYTES};
use crate::keychain::{Keychain, Sha256Hasher, Sig};
use crate::net::{Inbound, P2p};
use crate::state::State;
use crate::store::{AcceptedItem, SignedEpoch, SignedSession, Store, StoreError};

/// The largest batch a member puts in one unit.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Rounds of exponential slow-down after the session's rounds, while signatures are collected.
const SLOWDOWN_ROUNDS: u16 = 1000;

/// What a unit carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum UnitData {
    /// A JSON array of encoded items.
    Batch(Vec<u8>),
    /// The creator's signature over the session header.
    Signature(Sig),
}

type Data = NetworkData<Sha256Hasher, UnitData, Sig, aleph_bft::NodeMap<Sig>>;

/// Items one registration key (or validator key) may have waiting to be ordered at this member.
pub const PENDING_PER_KEY: usize = 4;
/// Items one client IP may have waiting to be ordered at this member.
pub const PENDING_PER_IP: usize = 64;
/// Items waiting to be ordered at this member, all senders together.
pub const PENDING_TOTAL: usize = 2048;

/// How a submitted item was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Queued for ordering.
    Queued,
    /// An identical item is already queued here: nothing more to do (idempotent).
    AlreadyQueued,
}

/// Why a submitted item was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The item is invalid against the current state (or too large).
    #[error("{0}")]
    Invalid(String),
    /// An identical item is already in effect (ordered before).
    #[error("duplicate: an identical {0} item is already in effect")]
    Duplicate(&'static str),
    /// The sender (its key or its IP) has as many items waiting as it may.
    #[error("{0}")]
    SenderBusy(String),
    /// This member's mempool is full.
    #[error("the mempool is full ({0} items waiting); retry later")]
    Full(usize),
}

/// Items submitted through the API and not ordered yet: by digest, with their sender's key and IP.
#[derive(Debug, Default)]
struct Pending {
    items: HashMap<[u8; 32], (Option<String>, Option<IpAddr>)>,
    per_key: HashMap<String, usize>,
    per_ip: HashMap<IpAddr, usize>,
    high_water: usize,
}

impl Pending {
    fn admit(
        &self,
        digest: &[u8; 32],
        key: Option<&String>,
        ip: Option<IpAddr>,
    ) -> Result<Option<Submitted>, SubmitError> {
        if self.items.contains_key(digest) {
            return Ok(Some(Submitted::AlreadyQueued));
        }
        if self.items.len() >= PENDING_TOTAL {
            return Err(SubmitError::Full(self.items.len()));
        }
        if key.is_some_and(|k| self.per_key.get(k).copied().unwrap_or(0) >= PENDING_PER_KEY) {
            return Err(SubmitError::SenderBusy(format!(
                "this key has {PENDING_PER_KEY} items waiting to be ordered; retry once they are"
            )));
        }
        if ip.is_some_and(|ip| self.per_ip.get(&ip).copied().unwrap_or(0) >= PENDING_PER_IP) {
            return Err(SubmitError::SenderBusy(format!(
                "this client has {PENDING_PER_IP} items waiting to be ordered; retry once they are"
            )));
        }
        Ok(None)
    }

    fn insert(&mut self, digest: [u8; 32], key: Option<String>, ip: Option<IpAddr>) {
        if let Some(k) = &key {
            *self.per_key.entry(k.clone()).or_default() += 1;
        }
        if let Some(ip) = ip {
            *self.per_ip.entry(ip).or_default() += 1;
        }
        self.items.insert(digest, (key, ip));
        self.high_water = self.high_water.max(self.items.len());
    }

    fn remove(&mut self, digest: &[u8; 32]) {
        let Some((key, ip)) = self.items.remove(digest) else {
            return;
        };
        if let Some(k) = key {
            if let Some(c) = self.per_key.get_mut(&k) {
                *c -= 1;
                if *c == 0 {
                    self.per_key.remove(&k);
                }
            }
        }
        if let Some(ip) = ip {
            if let Some(c) = self.per_ip.get_mut(&ip) {
                *c -= 1;
                if *c == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
    }
}

/// The mempool's figures (`/metrics`; the flooding test reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolStats {
    /// Submitted items waiting to be ordered.
    pub pending: usize,
    /// The most that ever waited at once.
    pub high_water: usize,
    /// Ordered items this member applied.
    pub ordered_accepted: u64,
    /// Ordered items this member dropped as invalid (each cost a state copy and a check).
    pub ordered_rejected: u64,
    /// Submissions answered as duplicates (queued already, or in effect).
    pub duplicates: u64,
}

/// The digest the mempool knows an item by.
fn item_digest(item: &ConsensusItem) -> [u8; 32] {
    sha256::Hash::hash(&item.encode()).to_byte_array()
}

/// The key that signed an item submitted through the API (the sender the mempool bounds).
fn sender_key(item: &ConsensusItem) -> Option<String> {
    match item {
        ConsensusItem::Register(r) => Some(r.key.to_string()),
        ConsensusItem::Deregister(d) => Some(d.key.to_string()),
        ConsensusItem::Weights(sw) => Some(hex::encode(sw.vector.validator)),
        ConsensusItem::Commit(c) => Some(c.validator.to_string()),
        ConsensusItem::Reveal(r) => Some(hex::encode(r.weights.vector.validator)),
        _ => None,
    }
}

/// What the engine reports to the API and dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A session finished.
    Session(u64),
    /// An epoch closed with a signed result.
    Epoch(u64),
}

/// Errors that stop the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The ledger failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This member's recomputation disagrees with a threshold of its peers: it must not go on.
    #[error("consensus failure in session {session}: {reason}")]
    ConsensusFailure {
        /// The session.
        session: u64,
        /// What disagreed.
        reason: String,
    },
    /// aleph-bft stopped unexpectedly.
    #[error("aleph-bft session {0} ended before it was complete")]
    AlephStopped(u64),
}

/// One coordinator's consensus engine.
#[derive(Debug)]
pub struct Engine {
    cfg: CoordinatorConfig,
    keychain: Keychain,
    p2p: Arc<P2p>,
    store: Arc<Store>,
    state: Mutex<State>,
    mempool_tx: mpsc::UnboundedSender<ConsensusItem>,
    mempool_rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<ConsensusItem>>>,
    future_frames: Arc<Mutex<Vec<Inbound>>>,
    events: broadcast::Sender<Event>,
    http: reqwest::Client,
    pending: Mutex<Pending>,
    ordered_accepted: AtomicU64,
    ordered_rejected: AtomicU64,
    duplicates: AtomicU64,
    /// The last session was adopted from a peer (this member is behind): the next one asks the peers at
    /// once instead of after 2 s, so a laggard catches up at the speed of HTTP, not one session per 2 s
    /// (slower than the federation's sessions: seen on the namespace harness, a member cut off for a
    /// minute never caught up). True at start: a restarted member may be behind.
    lagging: std::sync::atomic::AtomicBool,
}

impl Engine {
    /// Opens the ledger and links to the peers.
    pub async fn new(cfg: CoordinatorConfig) -> Result<Arc<Engine>, crate::Error> {
        let fed = &cfg.federation;
        let keychain = Keychain::new(
            cfg.index,
            fed.keys(),
            cfg.keypair,
            fed.id(),
            fed.threshold(),
        );
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| crate::Error::Io {
            what: format!("creating {}", cfg.data_dir.display()),
            source: e,
        })?;
        let store = Arc::new(Store::open(&cfg.data_dir.join("ledger.redb"))?);
        let state = match store.state()? {
            Some(s) => s,
            None => {
                let mut s = State::genesis(fed.params.clone(), fed.n());
                s.member_keys = fed.keys();
                store.put_state(&s)?;
                s
            }
        };
        let listen = fed.members[cfg.index].p2p;
        let peers = fed.members.iter().map(|m| m.p2p).collect();
        let p2p = P2p::start(listen, peers, keychain.clone(), fed.id())
            .await
            .map_err(|e| crate::Error::Io {
                what: format!("p2p listen on {listen}"),
                source: e,
            })?;
        let (mempool_tx, mempool_rx) = mpsc::unbounded_channel();
        Ok(Arc::new(Engine {
            cfg,
            keychain,
            p2p,
            store,
            state: Mutex::new(state),
            mempool_tx,
            mempool_rx: Arc::new(tokio::sync::Mutex::new(mempool_rx)),
            future_frames: Arc::new(Mutex::new(Vec::new())),
            events: broadcast::channel(256).0,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("a reqwest client builds"),
            pending: Mutex::new(Pending::default()),
            ordered_accepted: AtomicU64::new(0),
            ordered_rejected: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            lagging: std::sync::atomic::AtomicBool::new(true),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.cfg
    }

    /// The ledger.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether nothing but the engine itself holds the ledger (after a stop, before reopening it).
    pub fn ledger_released(&self) -> bool {
        Arc::strong_count(&self.store) == 1
    }

    /// A copy of the current state.
    pub fn state(&self) -> State {
        self.state.lock().expect("not poisoned").clone()
    }

    /// Reads the current state without copying it.
    pub fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().expect("not poisoned"))
    }

    /// What the peer links saw (handshakes and frames accepted and refused).
    pub fn link_stats(&self) -> &crate::net::LinkStats {
        self.p2p.stats()
    }

    /// Session and epoch events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Checks `item` and queues it for ordering, `from` the client's IP if known. An item identical to
    /// one already queued here is not queued again ([`Submitted::AlreadyQueued`]), nor one already in
    /// effect ([`SubmitError::Duplicate`]); each sender key and IP may have a few items waiting
    /// ([`PENDING_PER_KEY`], [`PENDING_PER_IP`]), the mempool [`PENDING_TOTAL`]. The check against the
    /// state is advisory (the state may change before the item is ordered); the ordered item is checked
    /// again by everyone. Signatures are checked before the state is copied for the check.
    pub fn submit(
        &self,
        item: ConsensusItem,
        from: Option<IpAddr>,
    ) -> Result<Submitted, SubmitError> {
        let encoded = item.encode();
        if encoded.len() > MAX_ITEM_BYTES {
            return Err(SubmitError::Invalid(format!(
                "item of {} bytes is too large",
                encoded.len()
            )));
        }
        let digest = item_digest(&item);
        let key = sender_key(&item);
        let duplicate = |r: Result<Option<Submitted>, SubmitError>| {
            if matches!(r, Ok(Some(_))) {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            r
        };
        if let Some(done) = duplicate(self.pending.lock().expect("not poisoned").admit(
            &digest,
            key.as_ref(),
            from,
        ))? {
            return Ok(done);
        }
        match &item {
            ConsensusItem::Register(r) => r.verify().map_err(SubmitError::Invalid)?,
            ConsensusItem::Deregister(d) => d.verify().map_err(SubmitError::Invalid)?,
            ConsensusItem::Weights(sw) => sw
                .verify()
                .map_err(|e| SubmitError::Invalid(e.to_string()))?,
            ConsensusItem::Commit(c) => c.verify().map_err(SubmitError::Invalid)?,
            ConsensusItem::Reveal(r) => r
                .weights
                .verify()
                .map_err(|e| SubmitError::Invalid(e.to_string()))?,
            _ => {}
        }
        {
            let state = self.state.lock().expect("not poisoned");
            if in_effect(&state, &item) {
                drop(state);
                self.duplicates.fetch_add(1, Ordering::Relaxed);
                return Err(SubmitError::Duplicate(item.kind()));
            }
            // Read-only: a refused item costs no copy of the state.
            state
                .check(&item, self.cfg.index)
                .map_err(SubmitError::Invalid)?;
        }
        let mut pending = self.pending.lock().expect("not poisoned");
        // Checked again: another request may have queued the same item or filled the sender's share.
        if let Some(done) = duplicate(pending.admit(&digest, key.as_ref(), from))? {
            return Ok(done);
        }
        pending.insert(digest, key, from);
        drop(pending);
        self.propose(item);
        Ok(Submitted::Queued)
    }

    /// The mempool's figures.
    pub fn mempool_stats(&self) -> MempoolStats {
        let p = self.pending.lock().expect("not poisoned");
        MempoolStats {
            pending: p.items.len(),
            high_water: p.high_water,
            ordered_accepted: self.ordered_accepted.load(Ordering::Relaxed),
            ordered_rejected: self.ordered_rejected.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
        }
    }

    /// Queues an item without checking it (the member's own attestations, votes and receipts).
    pub fn propose(&self, item: ConsensusItem) {
        let _ = self.mempool_tx.send(item);
    }

    /// Runs sessions until an error.
    pub async fn run(self: Arc<Self>) -> Result<(), EngineError> {
        loop {
            let session = self.state.lock().expect("not poisoned").session;
            self.run_session(session).await?;
        }
    }

    fn header(&self, session: u64, items_digest: &[u8; 32], epoch: Option<[u8; 32]>) -> [u8; 32] {
        session_header(&self.cfg.federation.id(), session, items_digest, epoch)
    }

    async fn run_session(self: &Arc<Self>, session: u64) -> Result<(), EngineError> {
        let fed = &self.cfg.federation;
        let rounds = fed.timing.rounds_per_session;
        let round_delay = fed.timing.round_delay_ms as f64;
        let mut delay = aleph_bft::default_delay_config();
        delay.unit_creation_delay = Arc::new(move |round| {
            let factor = 1.05f64.powf(round.saturating_sub(rounds as usize) as f64);
            Duration::from_millis((round_delay * factor).min(3_600_000.0) as u64)
        });
        delay.unit_rebroadcast_interval_min = Duration::from_millis(1000);
        delay.unit_rebroadcast_interval_max = Duration::from_millis(2000);
        delay.parent_request_delay = Arc::new(|_| Duration::from_millis(500));
        delay.newest_request_delay = Arc::new(|_| Duration::from_millis(1000));
        let config = aleph_bft::create_config(
            aleph_bft::NodeCount(fed.n()),
            NodeIndex(self.cfg.index),
            session,
            rounds + SLOWDOWN_ROUNDS,
            delay,
            Duration::ZERO,
        )
        .map_err(|_| EngineError::AlephStopped(session))?;

        let (unit_tx, mut unit_rx) = mpsc::unbounded_channel();
        let (sig_tx, sig_rx) = watch::channel(None);
        let (exit_tx, exit_rx) = futures::channel::oneshot::channel();
        let backup = self.store.backup(session)?;
        // Items this member put into units; those whose unit is not processed in this session (ordered
        // after the session's last round, or never) go back to the mempool when the session ends.
        let taken: Arc<Mutex<Vec<ConsensusItem>>> = Arc::new(Mutex::new(Vec::new()));
        let io = aleph_bft::LocalIO::new_with_unit_finalization_handler(
            Provider {
                mempool: self.mempool_rx.clone(),
                signature: sig_rx,
                leftover: None,
                taken: taken.clone(),
            },
            Finalizer { tx: unit_tx },
            BackupWriter {
                store: self.store.clone(),
                session,
                buf: Vec::new(),
            },
            futures::io::Cursor::new(backup),
        );
        let (direct_tx, mut direct_rx) = mpsc::unbounded_channel();
        let network = SessionNetwork {
            p2p: self.p2p.clone(),
            session,
            future: self.future_frames.clone(),
            pending: std::collections::VecDeque::new(),
            direct: direct_tx,
            direct_seen: Default::default(),
        };
        let spawner = Spawner::default();
        let aleph = tokio::spawn(aleph_bft::run_session(
            config,
            io,
            network,
            self.keychain.clone(),
            spawner.clone(),
            Terminator::create_root(exit_rx, "session"),
        ));
        // If this future is dropped (the coordinator is stopped), aleph-bft's tasks go with it.
        let _guard = AbortOnDrop {
            root: aleph.abort_handle(),
            spawner,
        };
        let requeue = {
            let taken = taken.clone();
            let mempool = self.mempool_tx.clone();
            move || {
                for item in taken.lock().expect("not poisoned").drain(..) {
                    let _ = mempool.send(item);
                }
            }
        };
        let stop = move |exit_tx: futures::channel::oneshot::Sender<()>| async move {
            let _ = exit_tx.send(());
            let _ = aleph.await;
            requeue();
        };

        // Items accepted before a crash in this session: aleph-bft replays them from its backup.
        let replay = self.store.accepted()?;
        let mut index = 0u64;
        // Every 2 s, ask the peers whether they already signed this session (a member that fell behind
        // adopts it). The asking runs beside the session, never inside this loop: a peer that does not
        // answer must not hold up the units (seen on the namespace harness: a cut-off member stalled the
        // other three while each ask waited out its timeout).
        let mut fetch = tokio::time::interval(Duration::from_secs(2));
        fetch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        fetch.tick().await;
        let (fetched_tx, mut fetched_rx) = mpsc::channel::<Option<SignedSession>>(1);
        let mut fetching = false;
        let ask = |fetching: &mut bool| {
            if !*fetching {
                *fetching = true;
                let me = self.clone();
                let tx = fetched_tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(me.fetch_session(session).await).await;
                });
            }
        };
        if self.lagging.load(Ordering::Relaxed) {
            ask(&mut fetching);
        }

        // 1. Order and apply items for `rounds` rounds.
        loop {
            tokio::select! {
                unit = unit_rx.recv() => {
                    let Some((creator, round, data)) = unit else {
                        return Err(EngineError::AlephStopped(session));
                    };
                    if round >= rounds {
                        break;
                    }
                    if let Some(UnitData::Batch(bytes)) = data {
                        for item in decode_batch(&bytes) {
                            if creator == self.cfg.index {
                                let mut taken = taken.lock().expect("not poisoned");
                                if let Some(pos) = taken.iter().position(|t| *t == item) {
                                    taken.remove(pos);
                                }
                            }
                            self.process(session, &replay, &mut index, creator, item)?;
                        }
                    }
                }
                _ = fetch.tick() => ask(&mut fetching),
                Some(fetched) = fetched_rx.recv() => {
                    fetching = false;
                    if let Some(signed) = fetched {
                        stop(exit_tx).await;
                        self.lagging.store(true, Ordering::Relaxed);
                        return self.adopt(signed);
                    }
                }
            }
        }

        // 2. Sign the header; collect n − f signatures through the same session.
        let (items, epoch, header, items_digest) = self.outcome(session)?;
        let own = self.keychain.sign_bytes(&header);
        self.p2p.broadcast(session | DIRECT_SIGNATURE, &own.0);
        let mut signatures = BTreeMap::new();
        signatures.insert(self.cfg.index, hex::encode(own.0));
        let _ = sig_tx.send(Some(own));
        while signatures.len() < fed.threshold() {
            tokio::select! {
                Some((from, sig)) = direct_rx.recv() => {
                    if signatures.contains_key(&from) {
                        continue;
                    }
                    if self.keychain.verify_bytes(&header, &sig, from) {
                        signatures.insert(from, hex::encode(sig.0));
                    } else {
                        tracing::warn!(session, member = from, "a member sent a signature over a different session header");
                    }
                }
                unit = unit_rx.recv() => {
                    let Some((creator, _, data)) = unit else {
                        return Err(EngineError::AlephStopped(session));
                    };
                    if let Some(UnitData::Signature(sig)) = data {
                        if self.keychain.verify_bytes(&header, &sig, creator) {
                            signatures.insert(creator, hex::encode(sig.0));
                        } else {
                            tracing::warn!(session, member = creator, "a member signed a different session header");
                        }
                    }
                }
                _ = fetch.tick() => ask(&mut fetching),
                Some(fetched) = fetched_rx.recv() => {
                    fetching = false;
                    if let Some(signed) = fetched {
                        stop(exit_tx).await;
                        self.lagging.store(true, Ordering::Relaxed);
                        return self.adopt(signed);
                    }
                }
            }
        }
        stop(exit_tx).await;
        let signed = SignedSession {
            session,
            items,
            epoch_digest: epoch.as_ref().map(|r| hex::encode(r.digest())),
            signatures,
        };
        self.lagging.store(false, Ordering::Relaxed);
        self.finish(signed, epoch, items_digest)
    }

    fn process(
        &self,
        session: u64,
        replay: &[AcceptedItem],
        index: &mut u64,
        peer: usize,
        item: ConsensusItem,
    ) -> Result<(), EngineError> {
        if let Some(prev) = replay.get(*index as usize) {
            // Replayed after a crash: the state already holds it; a different item here was rejected.
            if prev.peer == peer && prev.item == item {
                *index += 1;
            }
            return Ok(());
        }
        // Ordered (by whichever member): no longer waiting here, whether it applies or not.
        self.pending
            .lock()
            .expect("not poisoned")
            .remove(&item_digest(&item));
        let mut state = self.state.lock().expect("not poisoned");
        // Only an accepted item pays for the copy that is written to the store before it replaces the
        // state; a refused one is checked on the state itself.
        match state.applied(&item, peer) {
            Ok(next) => {
                let accepted = AcceptedItem { peer, item };
                self.store.accept(*index, &accepted, &next)?;
                tracing::debug!(session, peer, kind = accepted.item.kind(), "item accepted");
                *state = next;
                *index += 1;
                self.ordered_accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(reason) => {
                self.ordered_rejected.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(session, peer, kind = item.kind(), %reason, "item rejected")
            }
        }
        Ok(())
    }

    /// The session's accepted items, the epoch result it closes (if any), its header and items digest.
    #[allow(clippy::type_complexity)]
    fn outcome(
        &self,
        session: u64,
    ) -> Result<
        (
            Vec<AcceptedItem>,
            Option<crate::state::EpochResult>,
            [u8; 32],
            [u8; 32],
        ),
        EngineError,
    > {
        let items = self.store.accepted()?;
        let items_digest = items_digest(&items);
        let state = self.state();
        let fed = &self.cfg.federation;
        let epoch = state
            .closes_epoch()
            .then(|| state.epoch_result(fed.id(), fed.max_faulty(), fed.n()));
        let header = self.header(session, &items_digest, epoch.as_ref().map(|e| e.digest()));
        Ok((items, epoch, header, items_digest))
    }

    fn finish(
        &self,
        signed: SignedSession,
        epoch: Option<crate::state::EpochResult>,
        items_digest: [u8; 32],
    ) -> Result<(), EngineError> {
        let mut state = self.state.lock().expect("not poisoned");
        let mut next = state.clone();
        let signed_epoch = epoch.map(|result| {
            next.apply_epoch(&result);
            SignedEpoch {
                result,
                session: signed.session,
                items_digest: hex::encode(items_digest),
                signatures: signed.signatures.clone(),
            }
        });
        next.session += 1;
        self.store
            .complete_session(&signed, signed_epoch.as_ref(), &next)?;
        *state = next;
        drop(state);
        tracing::info!(
            session = signed.session,
            items = signed.items.len(),
            "session complete"
        );
        let _ = self.events.send(Event::Session(signed.session));
        if let Some(e) = signed_epoch {
            tracing::info!(
                epoch = e.result.inputs.epoch,
                payouts = e.result.payouts.len(),
                "epoch closed"
            );
            let _ = self.events.send(Event::Epoch(e.result.inputs.epoch));
        }
        Ok(())
    }

    /// Takes a session a threshold of peers signed: applies the items this member has not, recomputes
    /// the outcome and checks the signatures against it.
    fn adopt(&self, signed: SignedSession) -> Result<(), EngineError> {
        let session = signed.session;
        let failure = |reason: String| EngineError::ConsensusFailure { session, reason };
        let mine = self.store.accepted()?;
        if signed.items.len() < mine.len() || signed.items[..mine.len()] != mine[..] {
            return Err(failure(
                "the federation's items disagree with the ones this member accepted".into(),
            ));
        }
        for (i, accepted) in signed.items.iter().enumerate().skip(mine.len()) {
            let mut state = self.state.lock().expect("not poisoned");
            let next = state.applied(&accepted.item, accepted.peer).map_err(|e| {
                failure(format!(
                    "item {i} signed by the federation is invalid here: {e}"
                ))
            })?;
            self.store.accept(i as u64, accepted, &next)?;
            *state = next;
        }
        let (items, epoch, header, items_digest) = self.outcome(session)?;
        let fed = &self.cfg.federation;
        let valid =
            crate::keychain::count_valid(&fed.id(), &fed.keys(), &header, &signed.signatures);
        if valid < self.cfg.federation.threshold() {
            return Err(failure(format!(
                "{valid} valid signatures over this member's recomputed header; {} needed",
                self.cfg.federation.threshold()
            )));
        }
        tracing::info!(session, "caught up from a peer's signed session");
        self.finish(
            SignedSession {
                session,
                items,
                epoch_digest: epoch.as_ref().map(|r| hex::encode(r.digest())),
                signatures: signed.signatures,
            },
            epoch,
            items_digest,
        )
    }

    /// A signed session `session` from any peer's API, checked (a threshold of valid signatures): asks
    /// every peer at once and takes the first valid answer, so a peer that does not answer (cut off, not
    /// refusing: its requests hang until the client's timeout) delays nothing.
    async fn fetch_session(&self, session: u64) -> Option<SignedSession> {
        use futures::stream::{FuturesUnordered, StreamExt};
        let mut asks: FuturesUnordered<_> = self
            .cfg
            .federation
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.cfg.index)
            .map(|(i, m)| async move { (i, self.ask_session(&m.api, session).await) })
            .collect();
        while let Some((i, answer)) = asks.next().await {
            let Some(signed) = answer else { continue };
            // Check the signatures over the header the session claims before touching the ledger:
            // a faulty peer's API may serve a forged session, which must neither be applied nor
            // stop this member (only a recomputation that disagrees with a real threshold does).
            let valid = signed_session_signatures(&self.cfg.federation, &signed);
            if valid >= self.cfg.federation.threshold() {
                return Some(signed);
            }
            tracing::warn!(
                session,
                member = i,
                valid,
                "a peer served a signed session without a threshold of valid signatures; ignored"
            );
        }
        None
    }

    /// One peer's `GET /v1/sessions/{session}`, if it claims a threshold of signatures.
    async fn ask_session(&self, api: &std::net::SocketAddr, session: u64) -> Option<SignedSession> {
        let url = format!("http://{api}/v1/sessions/{session}");
        let resp = self.http.get(&url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let signed = resp.json::<SignedSession>().await.ok()?;
        (signed.session == session && signed.signatures.len() >= self.cfg.federation.threshold())
            .then_some(signed)
    }
}

/// Whether `item` is already in effect: the registry holds exactly this registration, or this validator's
/// weights for the epoch being collected are exactly these. Read from the state without copying it.
fn in_effect(state: &State, item: &ConsensusItem) -> bool {
    match item {
        ConsensusItem::Register(r) => state
            .uid_of(&r.key)
            .and_then(|u| state.uids[u as usize].as_ref())
            .is_some_and(|n| n.registration == *r),
        ConsensusItem::Weights(sw) => {
            bitcoin::secp256k1::XOnlyPublicKey::from_slice(&sw.vector.validator)
                .ok()
                .and_then(|k| state.uid_of(&k))
                .and_then(|u| state.weights.get(&u))
                .is_some_and(|(epoch, _, held)| *epoch == state.epoch && held == sw)
        }
        ConsensusItem::Commit(c) => state
            .uid_of(&c.validator)
            .and_then(|u| state.commits.get(&format!("{u}:{}", c.epoch)))
            .is_some_and(|h| *h == c.hash),
        ConsensusItem::Reveal(r) => {
            bitcoin::secp256k1::XOnlyPublicKey::from_slice(&r.weights.vector.validator)
                .ok()
                .and_then(|k| state.uid_of(&k))
                .and_then(|u| state.weights.get(&u))
                .is_some_and(|(epoch, _, held)| *epoch == state.epoch && *held == r.weights)
        }
        _ => false,
    }
}

/// How many of a signed session's signatures are valid over the header its own items and epoch digest
/// give (what a member checks before adopting a session from a peer).
pub fn signed_session_signatures(
    federation: &crate::FederationConfig,
    signed: &SignedSession,
) -> usize {
    let epoch = match signed.epoch_digest.as_deref().map(hex::decode) {
        None => None,
        Some(Ok(b)) => match <[u8; 32]>::try_from(b) {
            Ok(d) => Some(d),
            Err(_) => return 0,
        },
        Some(Err(_)) => return 0,
    };
    let header = session_header(
        &federation.id(),
        signed.session,
        &items_digest(&signed.items),
        epoch,
    );
    crate::keychain::count_valid(
        &federation.id(),
        &federation.keys(),
        &header,
        &signed.signatures,
    )
}

/// The header members sign for a session.
pub fn session_header(
    federation: &[u8; 32],
    session: u64,
    items_digest: &[u8; 32],
    epoch: Option<[u8; 32]>,
) -> [u8; 32] {
    let mut e = sha256::Hash::engine();
    e.input(b"boltensor/session-header/v1");
    e.input(federation);
    e.input(&session.to_be_bytes());
    e.input(items_digest);
    e.input(&epoch.unwrap_or([0; 32]));
    sha256::Hash::from_engine(e).to_byte_array()
}

/// The items digest a session header commits to.
pub fn items_digest(items: &[AcceptedItem]) -> [u8; 32] {
    let mut e = sha256::Hash::engine();
    for a in items {
        let bytes = a.item.encode();
        e.input(&(a.peer as u32).to_be_bytes());
        e.input(&(bytes.len() as u64).to_be_bytes());
        e.input(&bytes);
    }
    sha256::Hash::from_engine(e).to_byte_array()
}

/// The items of an ordered unit's batch (a JSON array of items); items that do not parse are skipped.
/// Public only for the fuzz targets (fuzz/).
#[doc(hidden)]
pub fn decode_batch(bytes: &[u8]) -> Vec<ConsensusItem> {
    // A batch that does not parse as a whole is dropped (identically by every member).
    serde_json::from_slice::<Vec<serde_json::Value>>(bytes)
        .map(|values| {
            values
                .into_iter()
                .filter_map(|v| serde_json::from_value(v).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Decodes a peer's frame payload as aleph-bft network data, as the session's network does: the bytes
/// consumed and the data re-encoded, or `None` if it does not decode. Public only for the fuzz targets
/// (fuzz/).
#[doc(hidden)]
pub fn decode_network_data(bytes: &[u8]) -> Option<(usize, Vec<u8>)> {
    let mut rest = bytes;
    let data = Data::decode(&mut rest).ok()?;
    Some((bytes.len() - rest.len(), data.encode()))
}

struct Provider {
    mempool: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<ConsensusItem>>>,
    signature: watch::Receiver<Option<Sig>>,
    leftover: Option<ConsensusItem>,
    taken: Arc<Mutex<Vec<ConsensusItem>>>,
}

#[async_trait::async_trait]
impl aleph_bft::DataProvider for Provider {
    type Output = UnitData;

    async fn get_data(&mut self) -> Option<UnitData> {
        if let Some(sig) = self.signature.borrow().clone() {
            return Some(UnitData::Signature(sig));
        }
        let mut items: Vec<ConsensusItem> = self.leftover.take().into_iter().collect();
        let from_leftover = items.len();
        let mut size: usize = items.iter().map(|i| i.encode().len() + 1).sum();
        if let Ok(mut rx) = self.mempool.try_lock() {
            while let Ok(item) = rx.try_recv() {
                let len = item.encode().len() + 1;
                if size + len > MAX_BATCH_BYTES {
                    self.taken.lock().expect("not poisoned").push(item.clone());
                    self.leftover = Some(item);
                    break;
                }
                size += len;
                items.push(item);
            }
        }
        if items.is_empty() {
            return None;
        }
        // (A leftover is already in `taken`: it was recorded when it was set aside.)
        self.taken
            .lock()
            .expect("not poisoned")
            .extend(items.iter().skip(from_leftover).cloned());
        Some(UnitData::Batch(
            serde_json::to_vec(&items).expect("items serialise"),
        ))
    }
}

struct Finalizer {
    tx: mpsc::UnboundedSender<(usize, u16, Option<UnitData>)>,
}

impl aleph_bft::UnitFinalizationHandler for Finalizer {
    type Data = UnitData;
    type Hasher = Sha256Hasher;

    fn batch_finalized(&mut self, batch: Vec<OrderedUnit<UnitData, Sha256Hasher>>) {
        for unit in batch {
            let _ = self.tx.send((unit.creator.0, unit.round, unit.data));
        }
    }
}

struct BackupWriter {
    store: Arc<Store>,
    session: u64,
    buf: Vec<u8>,
}

impl futures::io::AsyncWrite for BackupWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.get_mut().buf.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.buf.is_empty() {
            let chunk = std::mem::take(&mut this.buf);
            if let Err(e) = this.store.backup_append(this.session, &chunk) {
                return std::task::Poll::Ready(Err(std::io::Error::other(e.to_string())));
            }
        }
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

struct SessionNetwork {
    p2p: Arc<P2p>,
    session: u64,
    future: Arc<Mutex<Vec<Inbound>>>,
    pending: std::collections::VecDeque<Data>,
    /// Session signatures sent directly by peers (frames for `session | DIRECT_SIGNATURE`), to the engine.
    direct: mpsc::UnboundedSender<(usize, Sig)>,
    /// Members whose direct signature for this session was passed on: one per member and session, so a
    /// peer cannot make this member verify a flood of them.
    direct_seen: std::collections::BTreeSet<usize>,
}

/// The session number's top bit marks a frame that carries a member's signature over the session's header
/// (64 bytes), broadcast as soon as it signs, beside the same signature in its next unit. The header binds
/// the federation, the session, the items and the epoch result, so the frame cannot be replayed elsewhere;
/// it is checked against the sender's key like the one in a unit. Waiting for the unit alone costs the
/// rounds aleph-bft needs to order it.
pub const DIRECT_SIGNATURE: u64 = 1 << 63;

#[async_trait::async_trait]
impl aleph_bft::Network<Data> for SessionNetwork {
    fn send(&self, data: Data, recipient: Recipient) {
        let bytes = data.encode();
        match recipient {
            Recipient::Everyone => self.p2p.broadcast(self.session, &bytes),
            Recipient::Node(i) => self.p2p.send(i.0, self.session, &bytes),
        }
    }

    async fn next_event(&mut self) -> Option<Data> {
        {
            // Frames that arrived for this session while the previous one was still running.
            let mut future = self.future.lock().expect("not poisoned");
            let session = self.session;
            future.retain(|(_, s, _)| *s >= session);
            let (now, later): (Vec<_>, Vec<_>) =
                future.drain(..).partition(|(_, s, _)| *s == session);
            *future = later;
            let n = self.p2p.members();
            for (from, _, bytes) in now {
                if !indices_in_range(&bytes, from, n) {
                    continue;
                }
                if let Ok(d) = Data::decode(&mut bytes.as_slice()) {
                    self.pending.push_back(d);
                }
            }
        }
        if let Some(d) = self.pending.pop_front() {
            return Some(d);
        }
        loop {
            let (from, session, bytes) = self.p2p.recv().await?;
            if session & DIRECT_SIGNATURE != 0 {
                if session & !DIRECT_SIGNATURE == self.session && self.direct_seen.insert(from) {
                    if let Ok(sig) = <[u8; 64]>::try_from(bytes.as_slice()) {
                        let _ = self.direct.send((from, Sig(sig)));
                    }
                }
                continue;
            }
            if !indices_in_range(&bytes, from, self.p2p.members()) {
                tracing::warn!(
                    session,
                    member = from,
                    "a peer sent an aleph-bft request naming another or no member; dropped"
                );
                continue;
            }
            if session == self.session {
                match Data::decode(&mut bytes.as_slice()) {
                    Ok(d) => return Some(d),
                    Err(_) => continue,
                }
            } else if session > self.session && session <= self.session + 2 {
                // Frames for the next sessions wait here; bounded per sender in count and bytes, so a
                // faulty member can neither exhaust memory nor crowd out the honest members' frames.
                let mut future = self.future.lock().expect("not poisoned");
                let (count, held) = future
                    .iter()
                    .filter(|(f, _, _)| *f == from)
                    .fold((0usize, 0usize), |(c, b), (_, _, x)| (c + 1, b + x.len()));
                if count < FUTURE_FRAMES_PER_MEMBER && held + bytes.len() <= FUTURE_BYTES_PER_MEMBER
                {
                    future.push((from, session, bytes));
                }
            }
        }
    }
}

/// Frames a member may have waiting for a later session (the next two), in count and in bytes. A dropped
/// frame is not lost for good: aleph-bft requests missing units again.
const FUTURE_FRAMES_PER_MEMBER: usize = 2_500;
const FUTURE_BYTES_PER_MEMBER: usize = 32 << 20;

/// Whether an encoded aleph-bft message from member `from` names only members that exist, where aleph-bft
/// would index its per-member tables with the index unchecked (and panic, stopping the session): the
/// requester of a unit request or an alert request and the sender of an RMC message must be the member
/// the link authenticated, the creator of a requested unit coordinate one of the `n` members. SCALE layout
/// (aleph-bft 0.45): `NetworkData` = `Units(UnitMessage)` (0) | `Alert(AlertMessage)` (1); `UnitMessage` =
/// `Unit` (0) | `CoordRequest(NodeIndex, UnitCoord { round: u16, creator: NodeIndex })` (1) |
/// `ParentsRequest(NodeIndex, Hash)` (2) | `ParentsResponse` (3) | `NewestRequest(NodeIndex, u64)` (4) |
/// `NewestResponse` (5); `AlertMessage` = `ForkAlert` (0) | `RmcMessage(NodeIndex, …)` (1) |
/// `AlertRequest(NodeIndex, Hash)` (2); a `NodeIndex` is a little-endian u64. Signed content (units,
/// alerts, responses) is checked by aleph-bft against the keychain, which refuses unknown indices.
pub fn indices_in_range(bytes: &[u8], from: usize, n: usize) -> bool {
    let index = |at: usize| {
        bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    match (bytes.first(), bytes.get(1)) {
        (Some(0), Some(1)) => {
            index(2) == Some(from as u64) && index(12).is_some_and(|c| c < n as u64)
        }
        (Some(0), Some(2 | 4)) | (Some(1), Some(1 | 2)) => index(2) == Some(from as u64),
        _ => true,
    }
}

/// Spawns aleph-bft's tasks on tokio and remembers them, so a stopped session leaves nothing behind.
#[derive(Clone, Default)]
struct Spawner {
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Spawner {
    fn track(&self, handle: &tokio::task::JoinHandle<()>) {
        let mut tasks = self.tasks.lock().expect("not poisoned");
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle.abort_handle());
    }
}

impl aleph_bft::SpawnHandle for Spawner {
    fn spawn(&self, _name: &'static str, task: impl futures::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.track(&handle);
    }

    fn spawn_essential(
        &self,
        _name: &'static str,
        task: impl futures::Future<Output = ()> + Send + 'static,
    ) -> aleph_bft::TaskHandle {
        let handle = tokio::spawn(task);
        self.track(&handle);
        Box::pin(async move { handle.await.map_err(|_| ()) })
    }
}

struct AbortOnDrop {
    root: tokio::task::AbortHandle,
    spawner: Spawner,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.root.abort();
        for t in self.spawner.tasks.lock().expect("not poisoned").drain(..) {
            t.abort();
        }
    }
}
