//! Argument types and start-up for the miner and client commands: parse, build the node, call `run`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use boltensor_ln::{ChainSource, LnNode, Network, NodeConfig};
use clap::{Args, Subcommand};

/// How a role's Lightning node reaches the chain and its peers.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Data directory (Lightning node state, store, keys).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Bitcoin network: regtest, signet, testnet or bitcoin.
    #[arg(long, default_value = "regtest")]
    pub network: Network,
    /// Lightning peer address to listen on.
    #[arg(long, default_value = "127.0.0.1:9735")]
    pub ln_listen: SocketAddr,
    /// bitcoind RPC address (your own node).
    #[arg(long, default_value = "127.0.0.1:18443")]
    pub bitcoind_rpc: String,
    /// bitcoind RPC user.
    #[arg(long, env = "BOLTENSOR_BITCOIND_RPC_USER", default_value = "boltensor")]
    pub bitcoind_rpc_user: String,
    /// bitcoind RPC password.
    #[arg(
        long,
        env = "BOLTENSOR_BITCOIND_RPC_PASSWORD",
        hide_env_values = true,
        default_value = ""
    )]
    pub bitcoind_rpc_password: String,
    /// Use an Esplora API instead of bitcoind (e.g. https://mempool.space/signet/api).
    #[arg(long)]
    pub esplora: Option<String>,
    /// Accept inbound channels from this node without keeping 25,000 sat on-chain per channel (your
    /// Lightning service provider, e.g. a coordinator). Repeatable.
    #[arg(long = "trusted-peer")]
    pub trusted_peers: Vec<boltensor_ln::PublicKey>,
}

impl NodeArgs {
    fn node_config(&self, alias: &str) -> anyhow::Result<NodeConfig> {
        let chain = match &self.esplora {
            Some(url) => ChainSource::Esplora { url: url.clone() },
            None => {
                let (host, port) = self
                    .bitcoind_rpc
                    .rsplit_once(':')
                    .context("--bitcoind-rpc must be host:port")?;
                ChainSource::BitcoindRpc {
                    host: host.to_owned(),
                    port: port.parse().context("--bitcoind-rpc port")?,
                    user: self.bitcoind_rpc_user.clone(),
                    password: self.bitcoind_rpc_password.clone(),
                }
            }
        };
        Ok(NodeConfig {
            alias: alias.to_owned(),
            storage_dir: self.data_dir.join("ln"),
            network: self.network,
            listen: self.ln_listen,
            chain,
            trusted_peers_no_reserve: self.trusted_peers.clone(),
            liquidity_provider: false,
        })
    }

    /// Locks the data dir and starts the node, silently.
    async fn start_node(&self, alias: &str) -> anyhow::Result<Arc<LnNode>> {
        lock_data_dir(&self.data_dir)?;
        Ok(Arc::new(LnNode::start(self.node_config(alias)?).await?))
    }

    async fn start(&self, alias: &str) -> anyhow::Result<Arc<LnNode>> {
        let node = self.start_node(alias).await?;
        println!(
            "lightning node {} listening on {}",
            node.node_id(),
            node.listen_addr()
        );
        Ok(node)
    }
}

/// Takes an exclusive lock on `<data_dir>/node.lock` for the rest of the process: two processes running
/// one Lightning node (same keys, same channels) would broadcast conflicting states and lose funds.
pub(crate) fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<()> {
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join("node.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another boltensor process runs the Lightning node in {} (stop it first: one node, one process)",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
    HELD.lock().unwrap_or_else(|p| p.into_inner()).push(file);
    Ok(())
}

/// `boltensor node …`
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// The node's id, a fresh on-chain address to fund it, its balances and channels. Runs the node from
    /// its data dir for a moment: stop the role's daemon first (a lock refuses otherwise).
    Info {
        #[command(flatten)]
        node: NodeArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Open a channel from the node's on-chain funds to a peer (e.g. a coordinator), wait until the
    /// funding transaction is broadcast, and stop. Start the role's daemon afterwards: the channel is
    /// usable once confirmed (6 blocks) with both nodes online.
    OpenChannel(Box<OpenChannelArgs>),
}

/// `boltensor node open-channel`
#[derive(Debug, Args)]
pub struct OpenChannelArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The peer: NODE_ID@HOST:PORT (a coordinator's node id and Lightning address).
    #[arg(long)]
    pub peer: String,
    /// The channel's capacity, sat (funded from this node's on-chain wallet).
    #[arg(long)]
    pub sats: u64,
    /// Give the peer this much of it at opening, msat (it becomes the peer's balance: this node's
    /// inbound liquidity).
    #[arg(long, default_value_t = 0)]
    pub push_msat: u64,
}

pub async fn node(cmd: NodeCommand) -> anyhow::Result<()> {
    match cmd {
        NodeCommand::Info { node: args, json } => {
            let node = args.start_node("boltensor-node").await?;
            let result = async {
                node.sync().context("syncing with the chain")?;
                let address = node.new_address()?;
                let b = node.balances();
                let channels = node.channels();
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({
                            "node_id": node.node_id().to_string(),
                            "listen": node.listen_addr().to_string(),
                            "address": address.to_string(),
                            "onchain_sats": b.onchain_sats,
                            "spendable_onchain_sats": b.spendable_onchain_sats,
                            "lightning_sats": b.lightning_sats,
                            "channels": channels.iter().map(|c| serde_json::json!({
                                "channel_id": c.channel_id,
                                "counterparty": c.counterparty.to_string(),
                                "capacity_sats": c.capacity_sats,
                                "outbound_msat": c.outbound_msat,
                                "inbound_msat": c.inbound_msat,
                                "is_outbound": c.is_outbound,
                                "is_usable": c.is_usable,
                                "confirmations": c.confirmations,
                            })).collect::<Vec<_>>(),
                        }))?
                    );
                } else {
                    println!("node {}@{}", node.node_id(), node.listen_addr());
                    println!("address to fund it: {address}");
                    println!(
                        "on-chain: {} sat ({} spendable now), lightning: {} sat",
                        b.onchain_sats, b.spendable_onchain_sats, b.lightning_sats
                    );
                    for c in &channels {
                        println!(
                            "channel {} {} {}: {} sat, can send {} sat, can receive {} sat, {} confirmations, {}",
                            c.channel_id,
                            if c.is_outbound { "to" } else { "from" },
                            c.counterparty,
                            c.capacity_sats,
                            c.outbound_msat / 1000,
                            c.inbound_msat / 1000,
                            c.confirmations.unwrap_or(0),
                            if c.is_usable { "usable" } else { "not usable now" }
                        );
                    }
                }
                anyhow::Ok(())
            }
            .await;
            node.stop().await;
            result
        }
        NodeCommand::OpenChannel(args) => {
            let (id, addr) = args
                .peer
                .split_once('@')
                .context("--peer NODE_ID@HOST:PORT")?;
            let peer: boltensor_ln::PublicKey = id.parse().context("--peer: the node id")?;
            let addr = std::net::ToSocketAddrs::to_socket_addrs(addr)
                .with_context(|| format!("--peer: resolving {addr}"))?
                .next()
                .with_context(|| format!("--peer: no address for {addr}"))?;
            let node = args.node.start_node("boltensor-node").await?;
            let result = async {
                node.sync().context("syncing with the chain")?;
                let (_, txid) = node
                    .open_channel(peer, addr, args.sats, args.push_msat)
                    .await
                    .context(
                        "opening the channel (enough confirmed on-chain funds? the peer online?)",
                    )?;
                println!(
                    "channel of {} sat to {peer} opening: funding transaction {txid} broadcast",
                    args.sats
                );
                println!(
                    "start the role's daemon now: the channel is usable once confirmed (6 blocks)"
                );
                anyhow::Ok(())
            }
            .await;
            node.stop().await;
            result
        }
    }
}

/// `boltensor miner …`
#[derive(Debug, Subcommand)]
pub enum MinerCommand {
    /// Serve the models behind the OpenAI-compatible API, paid per request.
    Run(MinerRunArgs),
}

/// `boltensor miner run`
#[derive(Debug, Args)]
pub struct MinerRunArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// HTTP API address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Where the shipped models are (scripts/fetch-models.sh puts them in ~/.cache/boltensor/models).
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// Serve only these of the shipped models (default: all).
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// Also serve a model of an external OpenAI-compatible server: ID=URL#REMOTE_NAME#chat|embedding.
    #[arg(long = "external")]
    pub external: Vec<String>,
    /// Price per request, msat.
    #[arg(long, default_value_t = 1_000)]
    pub per_request_msat: u64,
    /// Chat price per token, msat (embeddings: a tenth of it).
    #[arg(long, default_value_t = 100)]
    pub per_token_msat: u64,
    /// Longest a payment is held while the model runs, seconds.
    #[arg(long, default_value_t = 60)]
    pub hold_timeout_secs: u64,
    /// Most paid requests per model at once (payment held, waiting for the model or running); beyond it
    /// a request gets 429 with Retry-After before any invoice is issued.
    #[arg(long, default_value_t = 8)]
    pub max_queue: usize,
    /// Register with the coordinator federation through this member's API URL (repeat: give more than
    /// f members), so clients route to this miner by score and validators challenge it. The
    /// registration key is `<data-dir>/registration.key`; registering again updates the URL and models.
    #[arg(long = "coordinator")]
    pub coordinators: Vec<String>,
    /// The API's public base URL, as clients and validators reach it (e.g. https://miner.example:8081)
    /// [default: http://<--listen>].
    #[arg(long)]
    pub public_url: Option<String>,
    /// Fund a bond of this many sat from the node's on-chain wallet before registering, unless a bond
    /// proof is already stored in the data directory (bond.proof). A federation whose
    /// miner_bond_min_sat is above 0 lists, weighs and pays a miner only once such a bond counts.
    #[arg(long)]
    pub bond_sat: Option<u64>,
    /// The bond's timelock T in blocks [default: the federation's bond_min_timelock + 1008].
    #[arg(long)]
    pub bond_timelock: Option<u16>,
}

pub async fn miner(cmd: MinerCommand) -> anyhow::Result<()> {
    use boltensor_miner::backend::ModelKind;
    use boltensor_miner::config::{default_models, default_models_dir, ModelSource, ModelSpec};
    let MinerCommand::Run(args) = cmd;
    let dir = args.models_dir.clone().unwrap_or_else(default_models_dir);
    let mut specs: Vec<ModelSpec> = default_models(&dir)
        .into_iter()
        .filter(|s| args.models.is_empty() || args.models.contains(&s.id))
        .collect();
    for spec in &mut specs {
        spec.price.per_request_msat = args.per_request_msat;
        spec.price.per_token_msat = match spec.source {
            ModelSource::MiniLm { .. } => (args.per_token_msat / 10).max(1),
            _ => args.per_token_msat,
        };
    }
    for ext in &args.external {
        let (id, rest) = ext.split_once('=').context("--external ID=URL#NAME#KIND")?;
        let parts: Vec<&str> = rest.split('#').collect();
        let [url, name, kind] = parts[..] else {
            anyhow::bail!("--external {ext}: expected ID=URL#REMOTE_NAME#chat|embedding");
        };
        let model_kind = match kind {
            "chat" => ModelKind::Chat,
            "embedding" => ModelKind::Embedding,
            other => anyhow::bail!("--external kind {other:?}: chat or embedding"),
        };
        specs.push(ModelSpec {
            id: id.to_owned(),
            source: ModelSource::External {
                base_url: url.to_owned(),
                remote_model: name.to_owned(),
                model_kind,
                api_key: std::env::var("BOLTENSOR_EXTERNAL_API_KEY").ok(),
            },
            price: boltensor_miner::Price {
                per_request_msat: args.per_request_msat,
                per_token_msat: args.per_token_msat,
            },
            max_input_tokens: 4096,
            max_output_tokens: 1024,
            default_max_tokens: 256,
        });
    }
    anyhow::ensure!(!specs.is_empty(), "no models to serve");
    let backends = boltensor_miner::load_backends(&specs).with_context(|| {
        format!(
            "loading models (run scripts/fetch-models.sh to fetch them into {})",
            dir.display()
        )
    })?;
    let node = args.node.start("boltensor-miner").await?;
    let model_ids: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
    let mut cfg = boltensor_miner::MinerConfig::new(specs, &args.node.data_dir);
    cfg.hold_timeout = std::time::Duration::from_secs(args.hold_timeout_secs);
    cfg.max_queue = args.max_queue.max(1);
    let miner = boltensor_miner::Miner::new(cfg, Arc::clone(&node), &backends)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {} (in use?)", args.listen))?;
    println!("miner API on http://{}/v1", args.listen);
    if !args.coordinators.is_empty() {
        let api = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.listen));
        let api = api.trim_end_matches('/').trim_end_matches("/v1").to_owned();
        let keypair = boltensor_devnet::federation::miner_keypair(&args.node.data_dir)?;
        let timeout = std::time::Duration::from_secs(30);
        // A federation that is down does not stop the miner from serving: say so and go on.
        let bond = bond_request(&args.node, args.bond_sat, args.bond_timelock)?;
        let submitted = async {
            let fed_id =
                boltensor_devnet::federation::federation_id(&args.coordinators, timeout).await?;
            let fed =
                boltensor_validator::federation::FederationClient::new(args.coordinators.clone());
            let proof = boltensor_validator::load_or_fund_bond(
                &fed,
                &node,
                &args.node.data_dir,
                &keypair,
                boltensor_protocol::Role::Miner,
                bond,
            )
            .await
            .map_err(|e| anyhow::anyhow!("the miner's bond: {e}"))?;
            let item = boltensor_devnet::federation::miner_registration(
                &keypair,
                node.node_id().to_string(),
                |m| node.sign_message(m),
                fed_id,
                api.clone(),
                model_ids,
                proof.as_ref(),
            );
            let queued =
                boltensor_devnet::federation::submit(&args.coordinators, &item, timeout).await?;
            anyhow::Ok((queued, proof.is_some()))
        };
        match submitted.await {
            Ok((queued, bonded)) => println!(
                "registered with the federation as {api}{} (key {}; queued by {queued} of {} coordinators)",
                if bonded { " with a bond" } else { "" },
                keypair.x_only_public_key().0,
                args.coordinators.len()
            ),
            Err(e) => eprintln!("warning: not registered with the federation: {e}"),
        }
    }
    miner.run(listener, shutdown_signal()).await?;
    node.stop().await;
    Ok(())
}

/// `boltensor client …`
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Run a local OpenAI-compatible endpoint that pays miners per request from your node (also an
    /// MCP server at /mcp, streamable HTTP, behind the same key).
    Proxy(Box<ProxyArgs>),
    /// Run an MCP server on stdin/stdout (for an MCP host: an agent IDE, a chat app) whose tools
    /// (chat, embed, quote, spend) pay miners per call from your node. Logs go to stderr.
    Mcp(Box<McpArgs>),
    /// Embed a text through a running proxy and print the vector's first values and the price.
    Embed(OneShotArgs),
    /// Ask a chat model through a running proxy and print the answer and the price.
    Chat(OneShotArgs),
}

/// `boltensor client proxy`
#[derive(Debug, Args)]
pub struct ProxyArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Address for the OpenAI-compatible endpoint (and the MCP endpoint, `/mcp`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub paying: PayingArgs,
}

/// `boltensor client mcp`
#[derive(Debug, Args)]
pub struct McpArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub paying: PayingArgs,
}

/// Which miners a paying client asks and what it may spend (`client proxy`, `client mcp`).
#[derive(Debug, Args)]
pub struct PayingArgs {
    /// Miner base URL (repeat for several). With `--coordinator`, the fallback when no coordinator
    /// answers.
    #[arg(long = "miner", required_unless_present = "coordinators")]
    pub miners: Vec<String>,
    /// Coordinator base URL to pick miners from by the federation's score (repeat: give more than the
    /// federation's faulty members; scores are merged by median).
    #[arg(long = "coordinator")]
    pub coordinators: Vec<String>,
    /// Weight added to every miner's score (0..1) so unscored miners get a little traffic.
    #[arg(long, default_value_t = 0.02)]
    pub score_floor: f64,
    /// Seconds a miner that failed is skipped.
    #[arg(long, default_value_t = 30)]
    pub miner_backoff_secs: u64,
    /// Refuse requests priced above this, msat.
    #[arg(long, default_value_t = 100_000)]
    pub max_price_msat: u64,
    /// Stop paying once this much is spent, msat.
    #[arg(long, default_value_t = 10_000_000)]
    pub budget_msat: u64,
}

impl PayingArgs {
    fn client(&self, node: Arc<LnNode>) -> boltensor_client::PayingClient {
        let mut cfg = boltensor_client::ClientConfig::new(self.miners.clone());
        cfg.max_price_msat = self.max_price_msat;
        cfg.budget_msat = self.budget_msat;
        cfg.directory.coordinators = self.coordinators.clone();
        cfg.directory.score_floor = self.score_floor;
        cfg.directory.backoff = std::time::Duration::from_secs(self.miner_backoff_secs);
        boltensor_client::PayingClient::new(cfg, node)
    }
}

/// `boltensor client embed|chat`
#[derive(Debug, Args)]
pub struct OneShotArgs {
    /// The text or prompt.
    pub text: String,
    /// The proxy's base URL (`boltensor client proxy`, or the devnet's).
    #[arg(
        long,
        env = "BOLTENSOR_PROXY",
        default_value = "http://127.0.0.1:8080/v1"
    )]
    pub proxy: String,
    /// The proxy's API key (printed by `boltensor client proxy`; in its `<data-dir>/proxy.key`).
    #[arg(long, env = "BOLTENSOR_PROXY_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Read the proxy's API key from this file (its `<data-dir>/proxy.key`).
    #[arg(long, conflicts_with = "key")]
    pub key_file: Option<std::path::PathBuf>,
    /// Model id (default: the shipped model of that kind).
    #[arg(long)]
    pub model: Option<String>,
    /// Most tokens to generate (chat).
    #[arg(long, default_value_t = 64)]
    pub max_tokens: u32,
}

pub async fn client(cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Proxy(args) => {
            let node = args.node.start("boltensor-client").await?;
            let client = args.paying.client(Arc::clone(&node));
            let listener = tokio::net::TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("binding {} (in use?)", args.listen))?;
            let listen = listener.local_addr().unwrap_or(args.listen);
            let (auth, key_file) =
                boltensor_client::proxy::ProxyAuth::load_or_create(&args.node.data_dir, listen)
                    .with_context(|| {
                        format!("writing the proxy key in {}", args.node.data_dir.display())
                    })?;
            println!("OpenAI-compatible proxy on http://{listen}/v1 (MCP: http://{listen}/mcp)");
            println!(
                "API key (give it to your OpenAI SDK as api_key, or send `Authorization: Bearer <key>`): in {} (mode 0600)",
                key_file.display()
            );
            if !args.paying.coordinators.is_empty() {
                println!(
                    "routing by the federation's score from {} coordinator(s); see /v1/directory",
                    args.paying.coordinators.len()
                );
            }
            boltensor_client::proxy::serve(listener, client, auth, shutdown_signal()).await?;
            node.stop().await;
            Ok(())
        }
        ClientCommand::Mcp(args) => {
            // stdout is the protocol: the node starts silently, and what it says goes to stderr.
            let node = args.node.start_node("boltensor-client").await?;
            eprintln!(
                "MCP server on stdio; lightning node {} listening on {}",
                node.node_id(),
                node.listen_addr()
            );
            let client = args.paying.client(Arc::clone(&node));
            let served = tokio::select! {
                r = boltensor_client::mcp::serve_stdio(client) => r.map_err(anyhow::Error::from),
                _ = shutdown_signal() => Ok(()),
            };
            node.stop().await;
            served
        }
        ClientCommand::Embed(args) => {
            let body = serde_json::json!({
                "model": args.model.as_deref().unwrap_or("all-minilm-l6-v2"),
                "input": args.text,
            });
            let (v, price, fee) = one_shot(&args, "embeddings", &body).await?;
            let emb = v["data"][0]["embedding"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let head: Vec<String> = emb
                .iter()
                .take(6)
                .map(|x| format!("{:.4}", x.as_f64().unwrap_or(0.0)))
                .collect();
            println!("{} dims: [{}, …]", emb.len(), head.join(", "));
            println!("paid {price} msat + {fee} msat routing fee");
            Ok(())
        }
        ClientCommand::Chat(args) => {
            let body = serde_json::json!({
                "model": args.model.as_deref().unwrap_or("smollm2-135m-instruct"),
                "messages": [{"role": "user", "content": args.text}],
                "max_tokens": args.max_tokens,
            });
            let (v, price, fee) = one_shot(&args, "chat/completions", &body).await?;
            println!(
                "{}",
                v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap_or_default()
            );
            println!("paid {price} msat + {fee} msat routing fee");
            Ok(())
        }
    }
}

async fn one_shot(
    args: &OneShotArgs,
    path: &str,
    body: &serde_json::Value,
) -> anyhow::Result<(serde_json::Value, String, String)> {
    let key = match (&args.key, &args.key_file) {
        (Some(k), _) => k.trim().to_owned(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading the proxy key from {}", f.display()))?
            .trim()
            .to_owned(),
        (None, None) => anyhow::bail!(
            "the proxy needs its API key: --key-file <proxy data dir>/proxy.key, or --key / $BOLTENSOR_PROXY_KEY"
        ),
    };
    let url = format!("{}/{path}", args.proxy.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .post(&url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .with_context(|| format!("no proxy at {url}: start one with `boltensor client proxy` or `boltensor devnet up`"))?;
    let header = |h: &str| {
        resp.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_owned()
    };
    let (price, fee) = (
        header("x-boltensor-price-msat"),
        header("x-boltensor-fee-msat"),
    );
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.context("reading the answer")?;
    anyhow::ensure!(
        status.is_success(),
        "{status}: {}",
        v["error"]["message"].as_str().unwrap_or("error")
    );
    Ok((v, price, fee))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    eprintln!("stopping…");
}

/// `boltensor validator …`
#[derive(Debug, Subcommand)]
pub enum ValidatorCommand {
    /// Challenge miners (paying for each request), score them, sign a weight vector every epoch; with
    /// --coordinator, register, take the miners from the federation and submit each epoch's vector.
    Run(Box<ValidatorRunArgs>),
    /// Register with the coordinator federation (funding a bond from the node's wallet with
    /// --bond-sat, once) and wait until the registry lists the validator (with stake if bonded).
    Register(Box<ValidatorRegisterArgs>),
    /// Show the current scores and the last signed weight vector, and why.
    Weights {
        /// The validator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `boltensor validator run`
#[derive(Debug, Args)]
pub struct ValidatorRunArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Miner base URL (repeat): challenged when no --coordinator is given, or while the federation
    /// lists no miner.
    #[arg(long = "miner", required_unless_present = "coordinators")]
    pub miners: Vec<String>,
    #[command(flatten)]
    pub federation: ValidatorFederationArgs,
    /// Seconds between challenge rounds.
    #[arg(long, default_value_t = 30)]
    pub round_secs: u64,
    /// Seconds per epoch (a signed weight vector each).
    #[arg(long, default_value_t = 300)]
    pub epoch_secs: u64,
    /// Where the reference models are.
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// Serve GET /metrics (Prometheus text) and GET /v1/scores (JSON) on this HTTP address
    /// (e.g. 127.0.0.1:9102). Off by default.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Spend on challenges at most this share (ppm) of the dividends the node received, after a
    /// bootstrap of --bootstrap-msat (docs/economics.md, "Validators' net"); without it, challenges
    /// are bounded only by the per-miner caps.
    #[arg(long)]
    pub income_share_ppm: Option<u64>,
    /// With --income-share-ppm: what may be spent before any dividend arrived, msat.
    #[arg(long, default_value_t = 50_000, requires = "income_share_ppm")]
    pub bootstrap_msat: u64,
}

/// The coordinator federation and the bond, for `validator run` and `validator register`.
#[derive(Debug, Args)]
pub struct ValidatorFederationArgs {
    /// A coordinator's API URL (repeat; give more than f of the federation's members, so a crashed or
    /// Byzantine member cannot drop the validator's weights).
    #[arg(long = "coordinator")]
    pub coordinators: Vec<String>,
    /// Fund a bond of this many sat from the node's on-chain wallet before registering, unless a bond
    /// proof is already stored in the data directory (bond.proof).
    #[arg(long)]
    pub bond_sat: Option<u64>,
    /// The bond's timelock T in blocks [default: the federation's bond_min_timelock + 1008].
    #[arg(long)]
    pub bond_timelock: Option<u16>,
}

/// `boltensor validator register`
#[derive(Debug, Args)]
pub struct ValidatorRegisterArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub federation: ValidatorFederationArgs,
    /// Seconds to wait until the registry lists the validator (with stake, if bonded).
    #[arg(long, default_value_t = 600)]
    pub wait_secs: u64,
}

fn bond_request(
    node: &NodeArgs,
    bond_sat: Option<u64>,
    bond_timelock: Option<u16>,
) -> anyhow::Result<Option<boltensor_validator::BondRequest>> {
    let Some(sat) = bond_sat else {
        return Ok(None);
    };
    if node.esplora.is_some() {
        anyhow::bail!("--bond-sat needs --bitcoind-rpc (the bond output is looked up there)");
    }
    Ok(Some(boltensor_validator::BondRequest {
        rpc: boltensor_contracts::BitcoindRpc::new(
            format!("http://{}", node.bitcoind_rpc),
            boltensor_contracts::RpcAuth::UserPass {
                user: node.bitcoind_rpc_user.clone(),
                password: node.bitcoind_rpc_password.clone(),
            },
        ),
        amount: bitcoin::Amount::from_sat(sat),
        timelock: bond_timelock,
        network: node.network,
    }))
}

async fn validator_register(
    node: &Arc<LnNode>,
    args: &NodeArgs,
    fed_args: &ValidatorFederationArgs,
) -> anyhow::Result<boltensor_validator::federation::FederationClient> {
    let fed = boltensor_validator::federation::FederationClient::new(fed_args.coordinators.clone());
    let status = fed
        .status()
        .await
        .context("reading the federation's status")?;
    if fed_args.coordinators.len() <= status.max_faulty() {
        eprintln!(
            "warning: {} coordinator URL(s) for a federation tolerating {} faulty members: give more than {}",
            fed_args.coordinators.len(),
            status.max_faulty(),
            status.max_faulty()
        );
    }
    let (registration, delivery) = boltensor_validator::enroll(
        &fed,
        node,
        &args.data_dir,
        bond_request(args, fed_args.bond_sat, fed_args.bond_timelock)?,
    )
    .await
    .context("registering with the federation")?;
    println!(
        "validator {} (node {}) registered{} with {} of {} coordinators",
        registration.key,
        registration.node_id,
        if registration.bond.is_some() {
            " with a bond"
        } else {
            ""
        },
        delivery.holders(),
        fed_args.coordinators.len()
    );
    Ok(fed)
}

pub async fn validator(cmd: ValidatorCommand) -> anyhow::Result<()> {
    use boltensor_validator::{Validator, ValidatorConfig};
    match cmd {
        ValidatorCommand::Register(args) => {
            if args.federation.coordinators.is_empty() {
                anyhow::bail!("give at least one --coordinator");
            }
            let node = args.node.start("boltensor-validator").await?;
            let result = async {
                let fed = validator_register(&node, &args.node, &args.federation).await?;
                let key = boltensor_validator::load_keypair(&args.node.data_dir)?
                    .x_only_public_key()
                    .0
                    .to_string();
                let bonded = boltensor_validator::load_bond_proof(&args.node.data_dir)?.is_some();
                let me = fed
                    .wait_registered(&key, bonded, std::time::Duration::from_secs(args.wait_secs))
                    .await?;
                println!(
                    "registered as uid {} with {} sat of stake",
                    me.uid, me.stake_sat
                );
                anyhow::Ok(())
            }
            .await;
            node.stop().await;
            result
        }
        ValidatorCommand::Run(args) => {
            let dir = args
                .models_dir
                .clone()
                .unwrap_or_else(boltensor_miner::config::default_models_dir);
            let backends =
                boltensor_miner::load_backends(&boltensor_miner::config::default_models(&dir))
                    .context(
                        "loading the reference models (scripts/fetch-models.sh fetches them)",
                    )?;
            let node = args.node.start("boltensor-validator").await?;
            let mut cfg = ValidatorConfig::new(args.miners.clone(), &args.node.data_dir);
            cfg.coordinators = args.federation.coordinators.clone();
            if let Some(share) = args.income_share_ppm {
                anyhow::ensure!(
                    share <= 1_000_000,
                    "--income-share-ppm is a share in ppm: at most 1000000, got {share}"
                );
                cfg.spend = Some(boltensor_validator::SpendPolicy {
                    bootstrap_msat: args.bootstrap_msat,
                    income_share_ppm: share,
                });
            }
            let v = Arc::new(Validator::new(cfg, Arc::clone(&node), &backends)?);
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let api = match args.listen {
                Some(addr) => {
                    let listener = tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("binding {addr} (in use?)"))?;
                    println!("validator API on http://{addr} (/metrics, /v1/scores)");
                    let router = boltensor_validator::api::router(Arc::clone(&v));
                    let mut stopped = stopped.clone();
                    Some(tokio::spawn(async move {
                        axum::serve(listener, router)
                            .with_graceful_shutdown(async move {
                                let _ = stopped.wait_for(|s| *s).await;
                            })
                            .await
                    }))
                }
                None => None,
            };
            if !args.federation.coordinators.is_empty() {
                validator_register(&node, &args.node, &args.federation).await?;
            }
            println!(
                "validator {} challenging {} configured miners{}",
                v.key(),
                args.miners.len(),
                if args.federation.coordinators.is_empty() {
                    String::new()
                } else {
                    format!(
                        " and the registered miners of {} coordinators",
                        args.federation.coordinators.len()
                    )
                }
            );
            Arc::clone(&v)
                .run(
                    std::time::Duration::from_secs(args.round_secs),
                    std::time::Duration::from_secs(args.epoch_secs),
                    shutdown_signal(),
                )
                .await;
            let _ = stop.send(true);
            if let Some(api) = api {
                api.await
                    .context("validator API task")?
                    .context("validator API")?;
            }
            drop(stopped);
            node.stop().await;
            Ok(())
        }
        ValidatorCommand::Weights { data_dir, json } => {
            let report = boltensor_validator::report(&data_dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", boltensor_validator::render_report(&report));
            }
            Ok(())
        }
    }
}
