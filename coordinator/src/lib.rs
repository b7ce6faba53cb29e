//! The coordinator: one member of the federation that keeps the registry, orders validators' signed
//! weights with aleph-bft (Byzantine-tolerant, n ≥ 3f + 1), runs the Yuma epoch on bonded-BTC stake,
//! publishes recomputable signed results, routes clients to miners by score and pays epoch pools.
//!
//! Layout: [`config`] (federation and member files), [`keychain`] (aleph-bft's signatures),
//! [`net`] (authenticated peer links), [`items`] (what is ordered), [`state`] (the deterministic
//! transition function and the epoch), [`store`] (redb ledger), [`engine`] (sessions), [`api`] (HTTP).

pub mod api;
pub mod chain;
pub mod config;
pub mod dashboard;
pub mod engine;
pub mod items;
pub mod keychain;
pub mod net;
pub mod params;
pub mod payout;
pub mod slash;
pub mod state;
pub mod store;

pub use config::{CoordinatorConfig, FederationConfig};
pub use engine::Engine;
pub use items::ConsensusItem;
pub use state::{EpochResult, State};

/// Errors starting or running a coordinator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration problem.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The ledger.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// IO.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The consensus engine stopped.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
}

/// How to run a coordinator beyond its config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// This member's bitcoind, for bond attestations (none: this member attests nothing).
    pub rpc: Option<boltensor_contracts::BitcoindRpc>,
    /// How often to check bonds against the chain (default 2 s).
    pub bond_check_every: Option<std::time::Duration>,
    /// This member's Lightning node, to pay the epochs it is the payer of (none: it pays nothing, and
    /// its epochs stay owed).
    pub ln: Option<std::sync::Arc<boltensor_ln::LnNode>>,
    /// `ln` is shared with a member of a lower index (a devnet with fewer hubs than members): this member
    /// does not report the node's forwarding fees, which that member already reports.
    pub ln_shared: bool,
    /// Figures the hosting process adds to the dashboard's validators table (the devnet: each
    /// validator's own books).
    pub dashboard_annex: Option<dashboard::DashboardAnnex>,
}

/// A running coordinator: consensus engine, API server and chain watcher. Stops when dropped.
#[derive(Debug)]
pub struct Running {
    /// The engine.
    pub engine: std::sync::Arc<Engine>,
    /// Where the API listens.
    pub api: std::net::SocketAddr,
    engine_task: tokio::task::JoinHandle<Result<(), engine::EngineError>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Waits until the engine stops (it only stops on an error) and returns that error.
    pub async fn wait(&mut self) -> Error {
        match (&mut self.engine_task).await {
            Ok(Err(e)) => Error::Engine(e),
            Ok(Ok(())) => Error::Engine(engine::EngineError::AlephStopped(0)),
            Err(e) => Error::Io {
                what: "the consensus task".into(),
                source: std::io::Error::other(e.to_string()),
            },
        }
    }

    /// Stops everything and waits until the ledger is closed (so the same data dir can be reopened).
    pub async fn shutdown(mut self) {
        self.stop();
        let _ = (&mut self.engine_task).await;
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.engine.ledger_released() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let engine = self.engine.clone();
        drop(self);
        while std::sync::Arc::strong_count(&engine) > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stops everything.
    pub fn stop(&self) {
        self.engine_task.abort();
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a coordinator: opens its ledger, links to its peers, serves its API, runs consensus.
pub async fn start(cfg: CoordinatorConfig, opts: Options) -> Result<Running, Error> {
    let api_addr = cfg.federation.members[cfg.index].api;
    let token = admin_token(&cfg.data_dir)?;
    let engine = Engine::new(cfg).await?;
    let listener = net::bind_retrying(api_addr).await.map_err(|e| Error::Io {
        what: format!("API listen on {api_addr}"),
        source: e,
    })?;
    let api = listener.local_addr().map_err(|e| Error::Io {
        what: "API address".into(),
        source: e,
    })?;
    let router = api::router(
        engine.clone(),
        token.clone(),
        opts.rpc.clone(),
        opts.dashboard_annex.clone(),
    );
    let router = match &opts.ln {
        Some(ln) => router.merge(api::ledger_router(ln.clone(), token)),
        None => router,
    };
    let mut tasks = vec![tokio::spawn(async move {
        let _ = boltensor_http::serve(
            listener,
            router,
            &api::limits(),
            std::future::pending::<()>(),
        )
        .await;
    })];
    if let Some(rpc) = opts.rpc {
        let every = opts
            .bond_check_every
            .unwrap_or(std::time::Duration::from_secs(2));
        tasks.push(tokio::spawn(chain::watch_bonds(engine.clone(), rpc, every)));
    }
    if let Some(ln) = opts.ln {
        if !opts.ln_shared {
            tasks.push(tokio::spawn(payout::report_fees(
                engine.clone(),
                ln.clone(),
                std::time::Duration::from_secs(5),
            )));
        }
        tasks.push(tokio::spawn(payout::pay_epochs(
            engine.clone(),
            ln,
            std::time::Duration::from_secs(2),
        )));
    }
    let engine_task = tokio::spawn(engine.clone().run());
    Ok(Running {
        engine,
        api,
        engine_task,
        tasks,
    })
}

/// The admin bearer token in `data_dir/admin.token` (0600), created on first start (an existing one
/// readable by others is made 0600).
pub fn admin_token(data_dir: &std::path::Path) -> Result<String, Error> {
    let path = data_dir.join("admin.token");
    let io = |source| Error::Io {
        what: format!("admin token {}", path.display()),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    boltensor_ln::secret_file::tighten_permissions(&path).map_err(io)?;
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_string());
    }
    let mut raw = [0u8; 24];
    net::fill_random(&mut raw);
    let token = hex::encode(raw);
    config::write_secret(&path, &token).map_err(io)?;
    Ok(token)
}

/// Why a published epoch fails an independent check.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The result does not follow from its inputs.
    #[error("recomputation failed: {0}")]
    Recompute(#[from] state::RecomputeError),
    /// The result is for another federation.
    #[error("the result names federation {found}, the config is federation {expected}")]
    WrongFederation {
        /// In the config.
        expected: String,
        /// In the result.
        found: String,
    },
    /// Too few members signed it.
    #[error("{valid} valid member signatures, {needed} needed")]
    TooFewSignatures {
        /// Valid signatures found.
        valid: usize,
        /// The threshold.
        needed: usize,
    },
}

/// Checks a signed epoch independently: recomputes Yuma and the payouts from the published inputs
/// (every weight vector's signature included), and checks that a threshold of the federation's members
/// signed the session header that commits to this result. Returns the number of valid signatures.
pub fn verify_epoch(
    signed: &store::SignedEpoch,
    federation: &FederationConfig,
) -> Result<usize, VerifyError> {
    let expected = hex::encode(federation.id());
    if signed.result.inputs.federation != expected {
        return Err(VerifyError::WrongFederation {
            expected,
            found: signed.result.inputs.federation.clone(),
        });
    }
    signed.result.recompute()?;
    let items_digest = hex::decode(&signed.items_digest)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .unwrap_or([0; 32]);
    let header = engine::session_header(
        &federation.id(),
        signed.session,
        &items_digest,
        Some(signed.result.digest()),
    );
    let valid = keychain::count_valid(
        &federation.id(),
        &federation.keys(),
        &header,
        &signed.signatures,
    );
    if valid < federation.threshold() {
        return Err(VerifyError::TooFewSignatures {
            valid,
            needed: federation.threshold(),
        });
    }
    Ok(valid)
}
