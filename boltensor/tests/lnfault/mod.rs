//! Harness for the Lightning-side fault tests (`faults_ln.rs`, `miner_crash.rs`): `boltensor` processes
//! that are killed on drop, a model server the test holds and releases, a regtest network of an
//! in-process coordinator (the hub) and client, a miner process behind the hub, and the ledger audit
//! (crate `boltensor-audit`) over every node.
//!
//! A process's node and store are read after it stopped (gracefully): its redb store and ldk-node storage
//! are opened in this process, the node with the same seed and config as the process used.
#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use boltensor_audit::fault::{record, FaultRow};
use boltensor_audit::{AuditReport, Ledger, MinerRequest, NodeLedger};
use boltensor_ln::{ChainSource, LnNode, NodeConfig, PublicKey};
use boltensor_protocol::Role;
use boltensor_testenv::{free_port, wait_for, TestEnvError, TestNet};
use tokio::sync::{mpsc, watch};

/// What the miner process logs: info for the miner, Lightning events (to see a payment held), no noise.
const MINER_LOG: &str =
    "warn,boltensor_miner=info,boltensor_ln::node=debug,ldk_node::chain::bitcoind=off";
/// Generous deadlines: a loaded 2-core machine, debug builds.
pub const STEP: Duration = Duration::from_secs(60);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,ldk_node::chain::bitcoind=off,ldk_node::liquidity=off")
        .with_test_writer()
        .try_init();
}

/// A `boltensor` child process; SIGKILLed on drop so a failing test leaves nothing behind. Its stdout
/// and stderr lines are echoed (prefixed with its name) and can be waited for.
pub struct Proc {
    name: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line received so far.
    seen: Vec<String>,
}

impl Proc {
    pub fn spawn(name: &str, args: &[String], env: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_boltensor"));
        cmd.args(args)
            .env("RUST_LOG", MINER_LOG)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the boltensor binary runs");
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        fn pump(name: String, from: impl Read + Send + 'static, tx: mpsc::UnboundedSender<String>) {
            std::thread::spawn(move || {
                for line in BufReader::new(from).lines().map_while(Result::ok) {
                    eprintln!("[{name}] {line}");
                    let _ = tx.send(line);
                }
            });
        }
        pump(name.to_owned(), stdout, tx.clone());
        pump(name.to_owned(), stderr, tx);
        Proc {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to [`STEP`]) for the next output line containing `needle` and returns it.
    pub async fn line(&mut self, needle: &str) -> String {
        let from = self.seen.len();
        self.wait_until(needle, |seen| {
            seen[from..].iter().find(|l| l.contains(needle)).cloned()
        })
        .await
    }

    /// Waits (up to [`STEP`]) until `n` output lines since the start contain `needle`.
    pub async fn count(&mut self, needle: &str, n: usize) {
        self.wait_until(needle, |seen| {
            (seen.iter().filter(|l| l.contains(needle)).count() >= n).then_some(String::new())
        })
        .await;
    }

    async fn wait_until(
        &mut self,
        needle: &str,
        done: impl Fn(&[String]) -> Option<String>,
    ) -> String {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            if let Some(found) = done(&self.seen) {
                return found;
            }
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => self.seen.push(line),
                Ok(None) => panic!("{} exited before printing {needle:?}", self.name),
                Err(_) => panic!("{} did not print {needle:?} within {STEP:?}", self.name),
            }
        }
    }

    /// Whether a line received so far (without waiting) contains `needle`.
    pub fn saw(&mut self, needle: &str) -> bool {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.iter().any(|l| l.contains(needle))
    }

    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (the daemons' graceful shutdown) and wait for the exit; SIGKILL after [`STEP`].
    pub async fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + STEP;
        let mut exited = Err(());
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = Ok(());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if exited.is_err() {
            eprintln!("{} ignored SIGTERM; killing it", self.name);
            self.kill9();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The chat "model" behind the miner: an OpenAI-compatible server that reports each request and answers
/// only once released.
pub struct ModelServer {
    pub url: String,
    arrived: tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>,
    release: watch::Sender<bool>,
}

impl ModelServer {
    pub async fn start(released: bool) -> Self {
        let (arrived_tx, arrived) = mpsc::unbounded_channel::<()>();
        let (release, released_rx) = watch::channel(released);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the model server");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            post(move || {
                let _ = arrived_tx.send(());
                let mut released = released_rx.clone();
                async move {
                    let _ = released.wait_for(|r| *r).await;
                    axum::Json(serde_json::json!({
                        "id": "chatcmpl-fault", "object": "chat.completion", "created": 0, "model": "fault",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "the answer is 42"},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
                    }))
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ModelServer {
            url,
            arrived: tokio::sync::Mutex::new(arrived),
            release,
        }
    }

    /// Waits until the miner ran the model (a request reached this server).
    pub async fn arrived(&self) {
        tokio::time::timeout(STEP, self.arrived.lock().await.recv())
            .await
            .expect("the miner ran the model")
            .expect("model server alive");
    }

    /// Lets every waiting and future request answer.
    pub fn release(&self) {
        let _ = self.release.send(true);
    }
}

/// bitcoind, the coordinator (the hub, in-process, a liquidity provider), a funded client node with a
/// 1,000,000 sat channel to the coordinator, and the model server.
pub struct LnNet {
    pub coordinator: Arc<LnNode>,
    pub client: Arc<LnNode>,
    pub client_cfg: NodeConfig,
    pub model: ModelServer,
    /// Last: dropped (bitcoind killed, the directory removed) after the nodes stopped.
    pub net: TestNet,
}

impl LnNet {
    /// With `client_dir`, the client node lives in `<client_dir>/ln` as a `boltensor client proxy` with
    /// `--data-dir client_dir` would keep it (so a proxy process can take it over).
    pub async fn start(
        client_dir: Option<&Path>,
        model_released: bool,
    ) -> Result<Self, TestEnvError> {
        let net = TestNet::start().await?;
        let client_cfg = match client_dir {
            Some(dir) => {
                let port = free_port().expect("port");
                NodeConfig::regtest(
                    "boltensor-client",
                    dir.join("ln"),
                    SocketAddr::from(([127, 0, 0, 1], port)),
                    net.bitcoind.chain_source(),
                )
            }
            None => net.node_config("client")?,
        };
        let client = Arc::new(LnNode::start(client_cfg.clone()).await?);
        let mut coord_cfg = net.node_config("coordinator")?;
        coord_cfg.liquidity_provider = true;
        let coordinator = Arc::new(LnNode::start(coord_cfg).await?);
        net.fund(&[&client, &coordinator], 2).await?;
        net.open_channel(&client, &coordinator, 1_000_000, 0)
            .await?;
        let model = ModelServer::start(model_released).await;
        Ok(LnNet {
            coordinator,
            client,
            client_cfg,
            model,
            net,
        })
    }

    /// The node arguments (`NodeArgs`) of a role process with its data in `data_dir`, on this bitcoind.
    pub fn node_args(&self, data_dir: &Path, ln_listen: SocketAddr) -> Vec<String> {
        let ChainSource::BitcoindRpc {
            port,
            user,
            password,
            ..
        } = self.net.bitcoind.chain_source()
        else {
            unreachable!("regtest uses bitcoind RPC");
        };
        [
            "--data-dir",
            &data_dir.display().to_string(),
            "--network",
            "regtest",
            "--ln-listen",
            &ln_listen.to_string(),
            "--bitcoind-rpc",
            &format!("127.0.0.1:{port}"),
            "--bitcoind-rpc-user",
            &user,
            "--bitcoind-rpc-password",
            &password,
            "--trusted-peer",
            &self.coordinator.node_id().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// The config ldk-node had in a role process (`NodeArgs::node_config`), to open its node here.
    pub fn process_node_config(
        &self,
        alias: &str,
        data_dir: &Path,
        listen: SocketAddr,
    ) -> NodeConfig {
        let mut cfg = NodeConfig::regtest(
            alias,
            data_dir.join("ln"),
            listen,
            self.net.bitcoind.chain_source(),
        );
        cfg.trusted_peers_no_reserve = vec![self.coordinator.node_id()];
        cfg
    }

    /// Starts a miner process serving MiniLM embeddings and the chat model `hang` (the model server),
    /// opens a 1,000,000 sat channel coordinator → miner and waits until it is usable.
    pub async fn spawn_miner(&self, env: &[(&str, String)]) -> Result<MinerProc, TestEnvError> {
        self.spawn_miner_holding(env, 600).await
    }

    /// [`LnNet::spawn_miner`] with `--hold-timeout-secs hold_secs` (a request interrupted before its
    /// payment arrived is closed after twice that).
    pub async fn spawn_miner_holding(
        &self,
        env: &[(&str, String)],
        hold_secs: u64,
    ) -> Result<MinerProc, TestEnvError> {
        let data_dir = self.net.dir().join("miner-process");
        let ln_addr = SocketAddr::from(([127, 0, 0, 1], free_port().expect("port")));
        let api_port = free_port().expect("port");
        let mut args: Vec<String> = vec!["miner".into(), "run".into()];
        args.extend(self.node_args(&data_dir, ln_addr));
        args.extend(
            [
                "--listen",
                &format!("127.0.0.1:{api_port}"),
                "--model",
                "all-minilm-l6-v2",
                "--external",
                &format!("hang={}#anything#chat", self.model.url),
                "--hold-timeout-secs",
                &hold_secs.to_string(),
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        let mut proc = Proc::spawn("miner", &args, env);
        let line = proc.line("listening on").await; // "lightning node <id> listening on <addr>"
        let node_id: PublicKey = line
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .expect("node id on the first line");
        proc.line("miner API on").await;
        let miner = MinerProc {
            args,
            data_dir,
            ln_addr,
            api: format!("http://127.0.0.1:{api_port}"),
            node_id,
            proc: Some(proc),
        };
        let (_, txid) = self
            .coordinator
            .open_channel(node_id, ln_addr, 1_000_000, 0)
            .await?;
        self.net.bitcoind.wait_for_tx(txid, STEP).await?;
        self.net.bitcoind.mine(6).await?;
        self.wait_usable_to(node_id, ln_addr, true).await?;
        Ok(miner)
    }

    /// Reconnects the coordinator to `peer` (a restarted process) until their channel is usable, and
    /// with `sending` until the coordinator can send an HTLC over it (to a miner).
    pub async fn wait_usable_to(
        &self,
        peer: PublicKey,
        addr: SocketAddr,
        sending: bool,
    ) -> Result<(), TestEnvError> {
        wait_for(
            &format!("the coordinator's channel to {peer} to be usable"),
            STEP,
            || async {
                let usable = self.coordinator.channels().iter().any(|c| {
                    c.counterparty == peer
                        && c.is_usable
                        && (!sending || c.next_htlc_limit_msat > 0)
                });
                if !usable {
                    let _ = self.coordinator.connect(peer, addr, true);
                    let _ = self.coordinator.sync();
                }
                Ok(usable.then_some(()))
            },
        )
        .await
    }
}

/// A miner process and how to restart it on the same data dir and ports.
pub struct MinerProc {
    pub args: Vec<String>,
    pub data_dir: PathBuf,
    pub ln_addr: SocketAddr,
    /// The API base URL (`http://127.0.0.1:PORT`).
    pub api: String,
    pub node_id: PublicKey,
    pub proc: Option<Proc>,
}

impl MinerProc {
    pub fn proc(&mut self) -> &mut Proc {
        self.proc.as_mut().expect("the miner process runs")
    }

    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    /// Starts it again from its data dir and waits until the API listens and the hub's channel is usable.
    pub async fn restart(&mut self, net: &LnNet) -> Result<(), TestEnvError> {
        self.kill9();
        let mut proc = Proc::spawn("miner", &self.args, &[]);
        proc.line("miner API on").await;
        self.proc = Some(proc);
        net.wait_usable_to(self.node_id, self.ln_addr, true).await
    }

    /// Requests by state from the running miner's `GET /metrics` (`Serving`, `Settled`, …).
    pub async fn request_states(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        let Ok(resp) = reqwest::get(format!("{}/metrics", self.api)).await else {
            return out;
        };
        let text = resp.text().await.unwrap_or_default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("boltensor_miner_requests{state=\"") {
                if let Some((state, n)) = rest.split_once("\"} ") {
                    out.insert(state.to_owned(), n.trim().parse().unwrap_or(0));
                }
            }
        }
        out
    }

    /// Waits until the running miner has no request left open (`Serving` or `Settling`) and `done`
    /// requests ended settled or failed back: it resolved everything itself, before any shutdown.
    pub async fn wait_resolved(&self, done: u64) -> Result<(), TestEnvError> {
        wait_for("the miner to resolve every paid request", STEP, || async {
            let s = self.request_states().await;
            let get = |k: &str| s.get(k).copied().unwrap_or(0);
            let open = get("Serving") + get("Settling");
            let ended = get("Settled") + get("FailedBack");
            Ok((open == 0 && ended >= done).then_some(()))
        })
        .await
    }

    /// Stops the process gracefully, then reads its request outcomes from its store and starts its
    /// Lightning node here (same seed, same config) for the audit.
    pub async fn stop_and_open(
        &mut self,
        net: &LnNet,
    ) -> Result<(Vec<MinerRequest>, Arc<LnNode>), TestEnvError> {
        if let Some(mut p) = self.proc.take() {
            p.terminate().await;
        }
        let store = boltensor_miner::store::Store::open(&self.data_dir.join("miner.redb"))
            .expect("the stopped miner's store opens");
        let requests = store.audit("miner").expect("the store lists its requests");
        drop(store);
        let cfg = net.process_node_config("boltensor-miner", &self.data_dir, self.ln_addr);
        let node = Arc::new(LnNode::start(cfg).await?);
        Ok((requests, node))
    }
}

/// Audits the ledger of `nodes` and `requests` until it is settled (every rule holds, nothing in flight)
/// or [`STEP`] passed, reconnecting the coordinator to every other node meanwhile. Returns the last
/// report and when it settled.
pub async fn audit_until_settled(
    coordinator: &LnNode,
    nodes: &[(&str, Role, &LnNode)],
    requests: &[MinerRequest],
) -> (AuditReport, Option<Instant>) {
    let deadline = Instant::now() + STEP;
    loop {
        let ledger = Ledger {
            nodes: nodes
                .iter()
                .map(|(name, role, node)| NodeLedger {
                    name: name.to_string(),
                    role: *role,
                    node_id: node.node_id().to_string(),
                    payments: node.payments(),
                    forwarded: Some(node.forwarded()),
                })
                .collect(),
            requests: requests.to_vec(),
            payouts: Vec::new(),
            pool: Vec::new(),
        };
        let report = boltensor_audit::check_settled(&ledger);
        if report.settled() {
            return (report, Some(Instant::now()));
        }
        if Instant::now() >= deadline {
            return (report, None);
        }
        for (_, _, node) in nodes {
            if node.node_id() != coordinator.node_id() {
                let _ = coordinator.connect(node.node_id(), node.listen_addr(), true);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Records the fault row and asserts the network recovered with nothing lost.
pub fn finish(
    test: &str,
    fault: &str,
    recovered: bool,
    recover_secs: f64,
    report: &AuditReport,
    note: &str,
) {
    let mut row = FaultRow::new(test, fault, recovered, recover_secs, report);
    if !note.is_empty() {
        row.detail = format!("{note}; {}", row.detail);
    }
    record(&row);
    assert_eq!(
        report.lost_msat(),
        0,
        "msat lost: {:?}\n{}",
        report.violations,
        report.summary()
    );
    assert!(
        row.recovered && report.settled(),
        "not recovered: {}",
        report.summary()
    );
}
