//! A paid-inference network on the real daemons: regtest bitcoind, a client, a coordinator (LSP) and a
//! miner node, channels client → coordinator → miner, a miner serving the real models on a free port.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use boltensor_client::{ClientConfig, PayingClient};
use boltensor_ln::LnNode;
use boltensor_miner::backend::{Backend, ModelKind};
use boltensor_miner::config::{default_models, default_models_dir, ModelSource, ModelSpec, Price};
use boltensor_miner::{Miner, MinerConfig};
use boltensor_testenv::{wait_for, TestEnvError, TestNet};
use tokio::sync::watch;

pub const CHANNEL_SATS: u64 = 2_000_000;
pub const MINER_START_SATS: u64 = 100_000;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "warn,boltensor=info,ldk_node::chain::bitcoind=off,ldk_node::liquidity=off".into()
            }),
        )
        .with_test_writer()
        .try_init();
}

/// The real models, loaded once per test binary, priced in whole sats so that balances (which
/// ldk-node reports in sats) move by exact amounts.
pub fn models() -> (Vec<ModelSpec>, HashMap<String, Backend>) {
    static LOADED: OnceLock<(Vec<ModelSpec>, HashMap<String, Backend>)> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let dir = default_models_dir();
            assert!(
                dir.join("all-minilm-l6-v2").exists(),
                "models missing in {}: run scripts/fetch-models.sh",
                dir.display()
            );
            let mut specs = default_models(&dir);
            for s in &mut specs {
                s.price = Price {
                    per_request_msat: 10_000,
                    per_token_msat: 1_000,
                };
            }
            let backends = boltensor_miner::load_backends(&specs).expect("models load");
            (specs, backends)
        })
        .clone()
}

/// An external "model server" stand-in: `/v1/chat/completions` answers 500 after `delay`, or hangs
/// forever when `delay` is `None`.
pub async fn broken_model_server(delay: Option<Duration>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move || async move {
            match delay {
                Some(d) => {
                    tokio::time::sleep(d).await;
                    (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        "model crashed",
                    )
                }
                None => std::future::pending().await,
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A working external OpenAI-compatible server stand-in (what llama.cpp or Ollama would answer).
pub async fn working_model_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route(
        "/v1/chat/completions",
        post(|axum::Json(req): axum::Json<serde_json::Value>| async move {
            axum::Json(serde_json::json!({
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "created": 0,
                "model": req["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the big model."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
            }))
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/v1")
}

pub fn external_chat(id: &str, base_url: &str) -> ModelSpec {
    ModelSpec {
        id: id.into(),
        source: ModelSource::External {
            base_url: base_url.into(),
            remote_model: "whatever".into(),
            model_kind: ModelKind::Chat,
            api_key: None,
        },
        price: Price {
            per_request_msat: 10_000,
            per_token_msat: 1_000,
        },
        max_input_tokens: 1024,
        max_output_tokens: 64,
        default_max_tokens: 8,
    }
}

/// Fields drop in order: the nodes and the miner before `net` (which deletes their directory).
pub struct PaidNet {
    pub client_node: Arc<LnNode>,
    pub coordinator: Arc<LnNode>,
    pub miner_node: Arc<LnNode>,
    pub miner: Option<Arc<Miner>>,
    pub miner_url: String,
    stop_miner: Option<watch::Sender<bool>>,
    miner_task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub net: TestNet,
}

impl PaidNet {
    /// The network with a miner serving the real models plus `extra` models, configured by `tune`.
    pub async fn start(
        extra: Vec<ModelSpec>,
        tune: impl FnOnce(&mut MinerConfig),
    ) -> Result<Self, TestEnvError> {
        init_tracing();
        let net = TestNet::start().await?;
        let client_node = Arc::new(net.node("client").await?);
        let mut coord_cfg = net.node_config("coordinator")?;
        coord_cfg.liquidity_provider = true;
        let coordinator = Arc::new(LnNode::start(coord_cfg).await?);
        let miner_node = Arc::new(net.node("miner").await?);
        net.fund(&[&client_node, &coordinator, &miner_node], 1)
            .await?;
        net.open_channel(&client_node, &coordinator, CHANNEL_SATS, 0)
            .await?;
        // Push the miner a starting balance: balances are reported in sats excluding dust outputs, so a
        // balance of a few sats would read as 0 and hide exact movements.
        net.open_channel(
            &coordinator,
            &miner_node,
            CHANNEL_SATS,
            MINER_START_SATS * 1000,
        )
        .await?;
        let mut me = PaidNet {
            net,
            client_node,
            coordinator,
            miner_node,
            miner: None,
            miner_url: String::new(),
            stop_miner: None,
            miner_task: None,
        };
        me.start_miner(extra, tune).await;
        Ok(me)
    }

    pub async fn start_miner(
        &mut self,
        extra: Vec<ModelSpec>,
        tune: impl FnOnce(&mut MinerConfig),
    ) {
        let (mut specs, mut backends) = models();
        for spec in extra {
            backends.insert(spec.id.clone(), spec.load().expect("external backend"));
            specs.push(spec);
        }
        let mut cfg = MinerConfig::new(specs, self.net.dir().join("miner-data"));
        tune(&mut cfg);
        let miner = Miner::new(cfg, Arc::clone(&self.miner_node), &backends).expect("miner");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        self.miner_url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, mut rx) = watch::channel(false);
        let task = tokio::spawn(Arc::clone(&miner).run(listener, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        self.miner = Some(miner);
        self.stop_miner = Some(tx);
        self.miner_task = Some(task);
    }

    pub fn client(&self, tune: impl FnOnce(&mut ClientConfig)) -> PayingClient {
        let mut cfg = ClientConfig::new(vec![self.miner_url.clone()]);
        tune(&mut cfg);
        PayingClient::new(cfg, Arc::clone(&self.client_node))
    }

    pub fn miner(&self) -> &Arc<Miner> {
        self.miner.as_ref().expect("miner running")
    }

    /// Brings every node of the path up to bitcoind's tip now. After a test mines blocks (funding a
    /// node mines 100), a node that has not polled its chain source yet builds routes from an old
    /// height: its HTLC's expiry is then too soon for the hop that has seen the new blocks
    /// (`OutgoingCLTVTooSoon`), and the payment fails.
    pub fn sync_all(&self) -> Result<(), TestEnvError> {
        for n in [&self.client_node, &self.coordinator, &self.miner_node] {
            n.sync()
                .map_err(|e| TestEnvError::Devnet(format!("{}: {e}", n.alias())))?;
        }
        Ok(())
    }

    /// Lightning balances (client, miner), sats.
    pub fn balances(&self) -> (u64, u64) {
        (
            self.client_node.balances().lightning_sats,
            self.miner_node.balances().lightning_sats,
        )
    }

    /// Waits until the balances are exactly `(client, miner)`.
    pub async fn wait_balances(&self, want: (u64, u64)) -> Result<(), TestEnvError> {
        wait_for(
            &format!("balances (client, miner) to be {want:?}"),
            Duration::from_secs(30),
            || async {
                let got = self.balances();
                Ok((got == want).then_some(()))
            },
        )
        .await
        .map_err(|e| TestEnvError::Devnet(format!("{e}; they are {:?}", self.balances())))
    }

    /// Runs a test case, then stops everything in order, also when the case fails or panics.
    pub async fn run(
        self,
        case: impl AsyncFnOnce(&PaidNet) -> Result<(), TestEnvError>,
    ) -> Result<(), TestEnvError> {
        use futures_util::FutureExt as _;
        let outcome = std::panic::AssertUnwindSafe(case(&self))
            .catch_unwind()
            .await;
        self.stop().await;
        match outcome {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop_miner.take() {
            let _ = tx.send(true);
        }
        if let Some(task) = self.miner_task.take() {
            let _ = task.await;
        }
        self.miner = None;
        self.client_node.stop().await;
        self.coordinator.stop().await;
        self.miner_node.stop().await;
    }
}
