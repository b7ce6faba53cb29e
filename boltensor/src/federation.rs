//! `boltensor coordinator …` and `boltensor epoch verify`.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use boltensor_coordinator::config::{federation_on_hosts, write_member_dir, ConsensusTiming};
use boltensor_coordinator::params::Params;
use boltensor_coordinator::store::SignedEpoch;
use boltensor_coordinator::{CoordinatorConfig, FederationConfig, Options};
use clap::{Args, Subcommand};

use crate::bond::ChainArgs;

#[derive(Debug, Subcommand)]
pub enum CoordinatorCommand {
    /// Write the configuration of an N-member federation (loopback addresses, or one address per member
    /// with --hosts; random keys, or keys derived from --seed on regtest): one directory per member with
    /// federation.json, identity.json and a 0600 secret.key, to copy to each member's machine. A
    /// federation whose members never share a machine writes the same files from keys and addresses
    /// exchanged out of band.
    Init(InitArgs),
    /// Run one member: consensus with its peers, the registry, epochs, the public API.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Members (at least 4: Byzantine tolerance needs n ≥ 3f + 1).
    #[arg(long, default_value_t = 4)]
    members: usize,
    /// Where to write member-0 … member-(N−1).
    #[arg(long)]
    dir: PathBuf,
    /// Member i listens for peers on base + 2i and serves its API on base + 2i + 1.
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
    /// Each member's IP address, comma-separated, one per member in order (members on separate machines
    /// or network namespaces; each binds its own address). Default: every member on 127.0.0.1.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    hosts: Vec<std::net::IpAddr>,
    /// Derive every member key from this seed instead of the OS's randomness — regtest only: anyone
    /// who knows the seed holds every member key (signs the bonds' k-of-n leaf, sweeps every bond).
    #[arg(long)]
    seed: Option<String>,
    /// The Bitcoin network the federation's bonds live on (a --seed is refused unless regtest).
    #[arg(long, default_value = "regtest", value_parser = crate::bond::parse_network)]
    network: bitcoin::Network,
    /// Consensus sessions per epoch.
    #[arg(long, default_value_t = 3)]
    epoch_sessions: u64,
    /// Rounds per session.
    #[arg(long, default_value_t = 8)]
    rounds_per_session: u16,
    /// Milliseconds between a member's units.
    #[arg(long, default_value_t = 60)]
    round_delay_ms: u64,
    /// The bond a miner registers with, in sat: registration's price (ADR 0012); a miner is listed,
    /// weighed and paid once more than f members attested it. 0 lets miners register for free.
    /// [default: 100000; 0 on regtest, where local setups run miners without a bond]
    #[arg(long)]
    miner_bond_min_sat: Option<u64>,
    /// The share of each member's forwarding fees paid out as the epoch pool, in ppm (ADR 0015): the
    /// pool is what the network earned, each member paying its part. 0: a fixed pool of
    /// epoch_pool_msat paid by the epoch's round-robin payer from its own balance.
    /// [default: 500000; 0 on regtest, where local setups pay a fixed pool without traffic]
    #[arg(long)]
    pool_fee_share_ppm: Option<u64>,
}

/// The share of fees `coordinator init` pays out as the pool off regtest (ADR 0015).
pub const DEFAULT_POOL_FEE_SHARE_PPM: u64 = 500_000;

/// The miner bond `coordinator init` asks for off regtest (ADR 0012).
pub const DEFAULT_MINER_BOND_SAT: u64 = 100_000;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The member's directory (federation.json, identity.json, secret.key; the ledger goes here too).
    #[arg(long)]
    dir: PathBuf,
    #[command(flatten)]
    chain: ChainArgs,
    /// Run this member's Lightning node (ldk-node, in <dir>/ln) listening here: it routes clients'
    /// payments to miners as their service provider and pays the epochs this member is the payer of.
    /// Without it the member takes part in consensus but pays nothing (its epochs stay owed).
    #[arg(long)]
    ln_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum EpochCommand {
    /// Fetch a signed epoch result from a coordinator and check it independently: recompute Yuma and
    /// the payouts from the published inputs (every validator's signed weights) and check that a
    /// threshold of the federation's members signed it.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A coordinator's API, e.g. http://127.0.0.1:7101.
    #[arg(long)]
    from: String,
    /// The epoch [default: the latest signed one].
    #[arg(long)]
    epoch: Option<u64>,
    /// The federation config to check signatures against [default: fetched from --from; pin your own
    /// copy to not trust the server for the member keys].
    #[arg(long)]
    federation: Option<PathBuf>,
}

pub async fn coordinator(cmd: CoordinatorCommand) -> anyhow::Result<()> {
    match cmd {
        CoordinatorCommand::Init(a) => {
            let params = Params {
                epoch_sessions: a.epoch_sessions,
                miner_bond_min_sat: a.miner_bond_min_sat.unwrap_or(
                    if a.network == bitcoin::Network::Regtest {
                        0
                    } else {
                        DEFAULT_MINER_BOND_SAT
                    },
                ),
                pool_fee_share_ppm: a.pool_fee_share_ppm.unwrap_or(
                    if a.network == bitcoin::Network::Regtest {
                        0
                    } else {
                        DEFAULT_POOL_FEE_SHARE_PPM
                    },
                ),
                ..Params::default()
            };
            params.validate().map_err(anyhow::Error::msg)?;
            let timing = ConsensusTiming {
                rounds_per_session: a.rounds_per_session,
                round_delay_ms: a.round_delay_ms,
            };
            if a.seed.is_some() && a.network != bitcoin::Network::Regtest {
                bail!(
                    "--seed derives every member key from a string: anyone who knows it can sign the \
                     bonds' k-of-n leaf and sweep them, so it is refused on {} (regtest only); omit \
                     --seed for random keys",
                    a.network
                );
            }
            let hosts = match a.hosts.len() {
                0 => vec![std::net::IpAddr::from([127, 0, 0, 1]); a.members],
                n if n == a.members => a.hosts.clone(),
                n => bail!(
                    "--hosts names {n} addresses for {} members: give one per member, in order",
                    a.members
                ),
            };
            let (fed, keys) = federation_on_hosts(
                a.seed.as_ref().map(String::as_bytes),
                &hosts,
                a.base_port,
                timing,
                params,
            );
            fed.validate()?;
            for (i, kp) in keys.iter().enumerate() {
                let dir = a.dir.join(format!("member-{i}"));
                write_member_dir(&dir, &fed, i, kp)?;
                println!(
                    "member {i}: {} (p2p {}, api http://{})",
                    dir.display(),
                    fed.members[i].p2p,
                    fed.members[i].api
                );
            }
            println!(
                "federation {} — {} members, {} signatures make a result final; {}",
                hex::encode(fed.id()),
                fed.n(),
                fed.threshold(),
                match fed.params.miner_bond_min_sat {
                    0 => "miners register without a bond (--miner-bond-min-sat)".to_string(),
                    sat => format!("miners register with a bond of at least {sat} sat"),
                }
            );
            println!(
                "epoch pool: {}",
                match fed.params.pool_fee_share_ppm {
                    0 => format!(
                        "a fixed {} msat paid by each epoch's round-robin payer (--pool-fee-share-ppm)",
                        fed.params.epoch_pool_msat
                    ),
                    ppm => format!(
                        "{} % of each member's forwarding fees, paid by that member",
                        ppm as f64 / 10_000.0
                    ),
                }
            );
            Ok(())
        }
        CoordinatorCommand::Run(a) => {
            let cfg = CoordinatorConfig::load(&a.dir)?;
            let rpc = a
                .chain
                .connect()
                .await
                .context("the coordinator checks bonds on its own bitcoind")?;
            let index = cfg.index;
            let ln = match a.ln_listen {
                Some(listen) => Some(std::sync::Arc::new(
                    ln_node(&a.chain, &a.dir, index, listen).await?,
                )),
                None => None,
            };
            if let Some(node) = &ln {
                println!(
                    "coordinator member {index}: Lightning node {}@{}",
                    node.node_id(),
                    node.listen_addr()
                );
            }
            let mut running = boltensor_coordinator::start(
                cfg,
                Options {
                    rpc: Some(rpc),
                    bond_check_every: None,
                    ln_shared: false,
                    ln: ln.clone(),
                    dashboard_annex: None,
                },
            )
            .await?;
            println!(
                "coordinator member {index}: API http://{} (admin token in {})",
                running.api,
                a.dir.join("admin.token").display()
            );
            let result = tokio::select! {
                e = running.wait() => Err(e.into()),
                _ = tokio::signal::ctrl_c() => Ok(()),
            };
            running.shutdown().await;
            if let Some(node) = ln {
                node.stop().await;
            }
            result
        }
    }
}

pub async fn epoch(cmd: EpochCommand) -> anyhow::Result<()> {
    let EpochCommand::Verify(a) = cmd;
    let base = a.from.trim_end_matches('/');
    let http = reqwest::Client::new();
    let federation: FederationConfig = match &a.federation {
        Some(path) => FederationConfig::load(path)?,
        None => http
            .get(format!("{base}/v1/federation"))
            .send()
            .await
            .with_context(|| format!("fetching {base}/v1/federation"))?
            .error_for_status()?
            .json()
            .await
            .context("the federation config does not parse")?,
    };
    let which = a.epoch.map_or("latest".to_string(), |e| e.to_string());
    let resp = http
        .get(format!("{base}/v1/epochs/{which}"))
        .send()
        .await
        .with_context(|| format!("fetching {base}/v1/epochs/{which}"))?;
    if !resp.status().is_success() {
        bail!(
            "{base}/v1/epochs/{which}: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    let signed: SignedEpoch = resp.json().await.context("the epoch does not parse")?;
    let valid = boltensor_coordinator::verify_epoch(&signed, &federation)
        .with_context(|| format!("epoch {} REFUSED", signed.result.inputs.epoch))?;
    let r = &signed.result;
    println!(
        "OK: epoch {} recomputed from {} signed weight vectors over {} registrants; {valid} of {} members signed (threshold {})",
        r.inputs.epoch,
        r.inputs.weights.len(),
        r.inputs.neurons.iter().flatten().count(),
        federation.n(),
        federation.threshold()
    );
    let total: u64 = r.payouts.iter().map(|p| p.msat).sum();
    println!(
        "payouts: {} msat to {} payees (payer: member {})",
        total,
        r.payouts.len(),
        r.payer
    );
    for p in &r.payouts {
        println!("  uid {:>3}  {:>12} msat  {}", p.uid, p.msat, p.node_id);
    }
    Ok(())
}

/// The member's ldk-node on the same bitcoind as its chain checks (user and password, or the cookie's).
async fn ln_node(
    chain: &ChainArgs,
    dir: &std::path::Path,
    index: usize,
    listen: std::net::SocketAddr,
) -> anyhow::Result<boltensor_ln::LnNode> {
    // `boltensor node info|open-channel --data-dir <member dir>` runs the same node: never both at once.
    crate::roles::lock_data_dir(dir)?;
    let url = chain.url();
    let hostport = url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let (host, port) = hostport
        .rsplit_once(':')
        .context("--rpc-url must name a port, e.g. http://127.0.0.1:38332")?;
    // ldk-node takes a user and password: read them from the cookie when that is the credential.
    let (user, password) = match chain.auth()? {
        boltensor_contracts::RpcAuth::UserPass { user, password } => (user, password),
        boltensor_contracts::RpcAuth::Cookie(cookie) => {
            let text = std::fs::read_to_string(&cookie)
                .with_context(|| format!("reading the RPC cookie {}", cookie.display()))?;
            let (u, p) = text
                .trim()
                .split_once(':')
                .context("the RPC cookie is not user:password")?;
            (u.to_owned(), p.to_owned())
        }
    };
    let config = boltensor_ln::NodeConfig {
        alias: format!("coordinator-{index}"),
        storage_dir: dir.join("ln"),
        network: chain.network,
        listen,
        chain: boltensor_ln::ChainSource::BitcoindRpc {
            host: host.to_owned(),
            port: port.parse().context("--rpc-url port")?,
            user,
            password,
        },
        trusted_peers_no_reserve: vec![],
        // Coordinators are the miners' Lightning service providers (ADR 0005).
        liquidity_provider: true,
    };
    Ok(boltensor_ln::LnNode::start(config).await?)
}
