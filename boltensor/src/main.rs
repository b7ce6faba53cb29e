//! `boltensor`: parse arguments, set up tracing, call the role's `run`. Nothing else lives here.

mod bond;
mod federation;
mod roles;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

/// Decentralised AI inference paid in bitcoin over Lightning.
#[derive(Debug, Parser)]
#[command(name = "boltensor", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a whole regtest network on this machine (bitcoind + a Lightning node per role member).
    #[command(subcommand)]
    Devnet(DevnetCommand),
    /// Run a coordinator (federation member): consensus, registry, epochs, routing, payouts.
    #[command(subcommand)]
    Coordinator(federation::CoordinatorCommand),
    /// Audit the federation: recompute a signed epoch result and check its signatures.
    #[command(subcommand)]
    Epoch(federation::EpochCommand),
    /// Run a miner: serve inference behind an OpenAI-compatible API, paid per request.
    #[command(subcommand)]
    Miner(roles::MinerCommand),
    /// Run a validator: pay miners for challenges, score them, sign weights each epoch.
    #[command(subcommand)]
    Validator(roles::ValidatorCommand),
    /// Pay per inference: local OpenAI-compatible proxy and one-shot commands.
    #[command(subcommand)]
    Client(roles::ClientCommand),
    /// A role's Lightning node while its daemon is stopped: address to fund it, balances, channels,
    /// opening a channel.
    #[command(subcommand)]
    Node(roles::NodeCommand),
    /// Create, show, prove, verify, withdraw or slash bonds (Bitcoin Script contracts on your bitcoind).
    #[command(subcommand)]
    Bond(bond::BondCommand),
    /// Benchmarks: paid inference, and Lightning design vs token design.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run Yuma consensus epochs on a scenario file (docs/yuma.md); prints the results as JSON.
    Yuma(YumaArgs),
}

#[derive(Debug, Args)]
struct YumaArgs {
    /// The scenario: parameters, stake, permits and one weight matrix per epoch (docs/yuma.md).
    #[arg(long)]
    input: PathBuf,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Paid inference on a regtest network: unpaid vs paid latency, a bare payment, throughput,
    /// settlement time. Build with --release for meaningful figures.
    Paid {
        /// Sequential requests per latency series.
        #[arg(long, default_value_t = 100)]
        requests: usize,
        /// Sequential chat completions per series.
        #[arg(long, default_value_t = 10)]
        chats: usize,
        /// max_tokens of each chat (the prompt asks for a long answer; the tokens generated are shown).
        #[arg(long, default_value_t = 64)]
        chat_tokens: u32,
        /// Concurrent clients in the throughput run.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds of the throughput run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Parallel channels per hop.
        #[arg(long, default_value_t = 2)]
        channels_per_hop: usize,
        /// Also print the figures as JSON.
        #[arg(long)]
        json: bool,
        /// Also write the figures as JSON to this file (`bench compare` reads its Lightning inputs from
        /// docs/data/bench-paid.json, written this way).
        #[arg(long)]
        json_out: Option<std::path::PathBuf>,
    },
    /// The Lightning side alone on a regtest network: payment latency over 1 to routers+1 hops, and
    /// how many hold-invoice payments (paid requests in flight) one channel holds at once, how the ones
    /// beyond fail, and that settling them all loses nothing. Build with --release.
    Lightning {
        /// Routing nodes in the chain (hop counts 1 to routers+1 are measured).
        #[arg(long, default_value_t = 3)]
        routers: usize,
        /// Sequential payments per hop count.
        #[arg(long, default_value_t = 30)]
        payments: usize,
        /// Amount of each latency payment, msat.
        #[arg(long, default_value_t = 10_000)]
        payment_msat: u64,
        /// Amounts of the held payments, msat, one slot run each (a non-dust one, and a dust one like
        /// a paid chat's few sats).
        #[arg(long, value_delimiter = ',', default_value = "2000000,3000")]
        hold_msat: Vec<u64>,
        /// A slot run stops after this many payments failed.
        #[arg(long, default_value_t = 5)]
        extra: usize,
        /// The paid chat latency (`paid_chat.p50_ms`) is read from this `bench paid --json-out` file to
        /// turn the slot count into paid chats/s per channel.
        #[arg(long, default_value = "docs/data/bench-paid.json")]
        paid_json: PathBuf,
        /// Longer chat durations, seconds, for the same ceiling (assumed, not measured).
        #[arg(long, value_delimiter = ',', default_value = "10,60")]
        chat_secs: Vec<f64>,
        /// Also print the figures as JSON.
        #[arg(long)]
        json: bool,
        /// Also write the figures as JSON to this file (docs/data/bench-lightning.json is written this
        /// way).
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// One Yuma epoch on state with full bonds, original and Yuma3 + liquid alpha, at 256 × 64 and
    /// 4096 × 256 (docs/yuma.md): ms per epoch and Yuma3 / original. Build with --release.
    Yuma {
        /// Also print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Coordinators on loopback agreeing on epochs (first signed epoch, then one every …), and one
    /// epoch result and its recomputation at 256 miners × 64 validators (docs/federation.md). Build with
    /// --release.
    Federation {
        /// Federation sizes to run.
        #[arg(long, value_delimiter = ',', default_value = "4,7")]
        members: Vec<usize>,
        /// Epochs to wait for at each size.
        #[arg(long, default_value_t = 4)]
        epochs: u64,
        /// Also print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The Lightning design vs the token design on one simulated workload: JSON, Markdown and
    /// SVG plots (docs/benchmarks.md).
    Compare(CompareArgs),
    /// A bounded load test on loopback: paid requests against one miner, weight submissions against a
    /// federation of four; throughput, p99, memory, and that nothing was lost.
    Load(LoadArgs),
    /// Every benchmark one after another in one process (yuma, federation, embed, paid, lightning; load
    /// with --load), each with its defaults; a table of each figure as a ratio to its baseline measured in
    /// the same run, with the goals of issue 21 (docs/performance.md). Build with --release.
    All(AllArgs),
    /// Embedding throughput with concurrent clients: one forward pass per text vs the miner's
    /// batcher, on the real all-MiniLM-L6-v2; and how close batched vectors are to single ones.
    Embed {
        /// Concurrent clients.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds per mode.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Where the models are (default: ~/.cache/boltensor/models).
        #[arg(long)]
        models_dir: Option<PathBuf>,
        /// Also print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct AllArgs {
    /// Write every bench's figures as one JSON object to this file (docs/data/bench-all.json).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Regenerate the table of this file between its `<!-- begin performance … -->` and
    /// `<!-- end performance -->` lines (docs/performance.md); the whole file if it does not exist.
    #[arg(long)]
    docs: Option<PathBuf>,
    /// Exit non-zero when a measured goal is not met, or a bench failed (after writing the files).
    #[arg(long)]
    check_goals: bool,
    /// Also run `bench load` with its defaults (minutes).
    #[arg(long)]
    load: bool,
    /// Benches not to run: yuma, federation, embed, paid, lightning, load.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Where the models are (default: ~/.cache/boltensor/models).
    #[arg(long)]
    models_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// Paid embedding requests.
    #[arg(long, default_value_t = 400)]
    requests: usize,
    /// Paid chat completions (16 tokens), interleaved.
    #[arg(long, default_value_t = 40)]
    chats: usize,
    /// Paid requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Longest load phase of each part, seconds (no request or epoch starts after it).
    #[arg(long, default_value_t = 300)]
    max_secs: u64,
    /// Validators submitting weights.
    #[arg(long, default_value_t = 64)]
    validators: usize,
    /// Miners each weight vector covers.
    #[arg(long, default_value_t = 256)]
    miners: usize,
    /// Epochs measured.
    #[arg(long, default_value_t = 3)]
    epochs: u64,
    /// Consensus sessions per epoch.
    #[arg(long, default_value_t = 5)]
    epoch_sessions: u64,
    /// Skip the paid-requests part.
    #[arg(long)]
    skip_paid: bool,
    /// Skip the weight-submissions part.
    #[arg(long)]
    skip_federation: bool,
    /// Also print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// A JSON object of parameters (any of them, by name: demand_rps, price_sats, sats_per_tao,
    /// pool_share, token_buyback_share, capital_cost_per_year, forwarding_fee_msat, …); the defaults,
    /// with their sources, are in docs/benchmarks.md. Flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// One parameter, KEY=VALUE (repeat): e.g. `--set demand_rps=40 --set price_sats=5`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// The Lightning figures (latency, settlement, throughput) from this `bench paid --json-out` file
    /// [default: the committed run, docs/data/bench-paid.json].
    #[arg(long)]
    lightning_inputs: Option<PathBuf>,
    /// RNG seed: the same seed gives the same report [default: 6].
    #[arg(long)]
    seed: Option<u64>,
    /// Epochs of 360 blocks × 12 s [default: 120].
    #[arg(long)]
    epochs: Option<usize>,
    /// Miner slots [default: 32].
    #[arg(long)]
    miners: Option<usize>,
    /// Validators (the second copies weights, the last two collude) [default: 8].
    #[arg(long)]
    validators: Option<usize>,
    /// The colluding group's share of validator stake [default: 0.25].
    #[arg(long)]
    collusion_stake: Option<f64>,
    /// Validators commit their weights one epoch and reveal them in the next, in both designs (the
    /// weight copier's figures are also shown the other way, on the same world) [default: true].
    #[arg(long, action = clap::ArgAction::Set)]
    commit_reveal: Option<bool>,
    /// Where to write report.json, summary.md and img/*.svg.
    #[arg(long, default_value = "target/bench-compare")]
    out: PathBuf,
    /// Also regenerate the results section of this Markdown file and its img/ plots
    /// (`--docs docs/benchmarks.md`).
    #[arg(long)]
    docs: Option<PathBuf>,
    /// With `--docs`: write nothing, exit 1 if the committed file or its plots differ from this run's.
    #[arg(long, requires = "docs")]
    check: bool,
    /// Also run the demand sweep: 0.4 to 400 requests/s, each level on `--sweep-seeds` worlds, means with
    /// 95 % confidence intervals (tables and plots; the sweep section of `--docs`).
    #[arg(long)]
    sweep: bool,
    /// Seeds (worlds) per demand level in the sweep.
    #[arg(long, default_value_t = boltensor_compare::sweep::SweepConfig::default().seeds)]
    sweep_seeds: u64,
    /// With `--sweep`: also regenerate the per-claim figures of this file (`--claims
    /// docs/counterargument.md`; with `--check`, compare instead).
    #[arg(long, requires = "sweep")]
    claims: Option<PathBuf>,
}

impl CompareArgs {
    fn config(&self) -> anyhow::Result<boltensor_compare::Config> {
        let mut c = boltensor_compare::Config::load(self.config.as_deref(), &self.sets)
            .map_err(anyhow::Error::msg)?;
        if let Some(file) = &self.lightning_inputs {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            c.measured = boltensor_compare::Measured::from_bench_paid(&text)
                .map_err(anyhow::Error::msg)
                .with_context(|| file.display().to_string())?;
            c.miner_capacity_rps = c.measured.settled_rps_one_miner;
        }
        c.seed = self.seed.unwrap_or(c.seed);
        c.epochs = self.epochs.unwrap_or(c.epochs);
        c.miners = self.miners.unwrap_or(c.miners);
        c.validators = self.validators.unwrap_or(c.validators);
        c.collusion_stake = self.collusion_stake.unwrap_or(c.collusion_stake);
        c.commit_reveal = self.commit_reveal.unwrap_or(c.commit_reveal);
        Ok(c)
    }
}

#[derive(Debug, Subcommand)]
enum DevnetCommand {
    /// Start (or resume) the devnet and keep it up until Ctrl-C.
    Up(UpArgs),
    /// Show the running devnet's nodes, channels and balances.
    Status {
        #[command(flatten)]
        dir: DataDir,
        /// Print JSON (every node's ports and URLs), for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Check the ledger invariant across every node of the running devnet: each paid request has one
    /// outcome, client spend = miner income + routing fees (+ refunds, + in flight), no epoch paid twice.
    /// Exits 1 on a violation.
    Audit {
        #[command(flatten)]
        dir: DataDir,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a running devnet; with --wipe also delete its data dir.
    Down {
        #[command(flatten)]
        dir: DataDir,
        /// Delete the data dir (chain, node keys, channels) after stopping.
        #[arg(long)]
        wipe: bool,
    },
}

#[derive(Debug, Args)]
struct DataDir {
    /// Where the devnet keeps its state.
    #[arg(long, env = "BOLTENSOR_DEVNET_DIR", default_value_os_t = default_devnet_dir())]
    data_dir: PathBuf,
}

#[derive(Debug, Args)]
struct UpArgs {
    #[command(flatten)]
    dir: DataDir,
    /// Number of coordinators (Lightning hubs). The federation runs max(4, this) members; with fewer
    /// hubs, members share the hubs' nodes to pay epochs.
    #[arg(long, default_value_t = 4)]
    coordinators: usize,
    /// Number of miners.
    #[arg(long, default_value_t = 3)]
    miners: usize,
    /// Number of validators.
    #[arg(long, default_value_t = 2)]
    validators: usize,
    /// Number of clients.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// bitcoind binary (default: $BITCOIND_EXE, the build cache, then $PATH).
    #[arg(long)]
    bitcoind: Option<PathBuf>,
    /// Where the models are (default: ~/.cache/boltensor/models, filled by scripts/fetch-models.sh).
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Pause between the client's generated paid requests, ms (0: no traffic). The default demand,
    /// about 0.6 paid requests a second, funds the validators' challenges (docs/economics.md).
    #[arg(long, default_value_t = 1000)]
    traffic_interval_ms: u64,
    /// Seconds between validators' challenge rounds (0: validators idle).
    #[arg(long, default_value_t = 15)]
    validator_round_secs: u64,
    /// Validators spend on challenges at most this share (ppm) of the dividends they received, after
    /// a bootstrap of --validator-bootstrap-msat (0: no such bound, only the per-miner caps).
    #[arg(long, default_value_t = boltensor_devnet::VALIDATOR_SPEND.income_share_ppm)]
    validator_income_share_ppm: u64,
    /// What a validator may spend on challenges before any dividend arrived, msat.
    #[arg(long, default_value_t = boltensor_devnet::VALIDATOR_SPEND.bootstrap_msat)]
    validator_bootstrap_msat: u64,
    /// About how many seconds a federation epoch lasts (each validator submits a weight vector, the
    /// federation signs the result and pays the pool). Fixed when the federation is created.
    #[arg(long, default_value_t = 45)]
    epoch_secs: u64,
    /// Seconds between blocks mined on a timer (0: none).
    #[arg(long, default_value_t = 30)]
    block_interval_secs: u64,
    /// Local port of the control API (/status, /metrics, /shutdown).
    #[arg(long, default_value_t = boltensor_devnet::DEFAULT_CONTROL_PORT)]
    control_port: u16,
}

fn default_devnet_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".boltensor").join("devnet")
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // ldk-node's LSPS2 service (coordinators run it to forward into miners' unannounced channels, see
    // docs/adr/0005) logs an ERROR for every ordinary forward it does not track: silence that target.
    let mut default_filter =
        "info,ldk_node=warn,ldk_node::liquidity=off,lightning=warn,lightning_block_sync=warn"
            .to_owned();
    if matches!(cli.command, Command::Devnet(_) | Command::Bench(_)) {
        // On regtest bitcoind has no fee estimates and ldk-node logs an ERROR on every sync before
        // falling back to 1 sat/vB: harmless there, noise in the devnet's output.
        default_filter.push_str(",ldk_node::chain::bitcoind=off");
    }
    if matches!(
        cli.command,
        Command::Devnet(_)
            | Command::Coordinator(_)
            | Command::Bench(BenchCommand::Load(_) | BenchCommand::All(_))
    ) {
        // aleph-bft logs several INFO lines per session (every few seconds): they drown everything else.
        // RUST_LOG=AlephBFT=info brings them back.
        default_filter.push_str(",AlephBFT=warn");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Devnet(cmd) => devnet(cmd).await,
        Command::Coordinator(cmd) => federation::coordinator(cmd).await,
        Command::Epoch(cmd) => federation::epoch(cmd).await,
        Command::Miner(cmd) => roles::miner(cmd).await,
        Command::Validator(cmd) => roles::validator(cmd).await,
        Command::Client(cmd) => roles::client(cmd).await,
        Command::Node(cmd) => roles::node(cmd).await,
        Command::Bond(cmd) => bond::run(cmd).await,
        Command::Bench(BenchCommand::Compare(args)) => {
            let config = args.config()?;
            let report = boltensor_compare::run(&config);
            let sweep = args.sweep.then(|| {
                let shape = boltensor_compare::sweep::SweepConfig {
                    seeds: args.sweep_seeds,
                    ..Default::default()
                };
                eprintln!(
                    "sweep: {} demand levels × {} seeds…",
                    shape.demand_rps.len(),
                    shape.seeds
                );
                boltensor_compare::sweep::sweep(&config, &shape)
            });
            if args.check {
                let docs = args.docs.as_deref().context("--check needs --docs")?;
                let mut differ =
                    boltensor_compare::report::check_docs(&report, sweep.as_ref(), docs)
                        .with_context(|| format!("reading {}", docs.display()))?;
                if let (Some(file), Some(sw)) = (&args.claims, &sweep) {
                    differ.extend(
                        boltensor_compare::report::check_claims(sw, config.demand_rps, file)
                            .with_context(|| format!("reading {}", file.display()))?,
                    );
                }
                if differ.is_empty() {
                    eprintln!("{} and its plots are this run's", docs.display());
                    return Ok(());
                }
                for d in &differ {
                    eprintln!("{d}");
                }
                anyhow::bail!(
                    "the committed figures are not what this run gives: regenerate with `boltensor bench compare --sweep --docs {} --claims docs/counterargument.md`",
                    docs.display()
                );
            }
            boltensor_compare::report::write(&report, sweep.as_ref(), &args.out)
                .with_context(|| format!("writing {}", args.out.display()))?;
            if let Some(docs) = &args.docs {
                boltensor_compare::report::write_docs(&report, sweep.as_ref(), docs)
                    .with_context(|| format!("writing {}", docs.display()))?;
            }
            if let (Some(file), Some(sw)) = (&args.claims, &sweep) {
                boltensor_compare::report::write_claims(sw, config.demand_rps, file)
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            print!("{}", boltensor_compare::report::markdown(&report, "img"));
            if let Some(sw) = &sweep {
                print!("\n{}", boltensor_compare::report::sweep_markdown(sw, "img"));
            }
            eprintln!(
                "wrote {}/report.json, summary.md, img/*.svg{}",
                args.out.display(),
                if sweep.is_some() { ", sweep.json" } else { "" }
            );
            Ok(())
        }
        Command::Bench(BenchCommand::Yuma { json }) => {
            if cfg!(debug_assertions) {
                eprintln!("note: a debug build; run `cargo run --release -p boltensor -- bench yuma` for real figures");
            }
            let figures = boltensor_bench::yuma::run(&boltensor_bench::yuma::SIZES)
                .map_err(anyhow::Error::msg)?;
            print!("{}", figures.render());
            if json {
                println!("{}", serde_json::to_string_pretty(&figures)?);
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Federation {
            members,
            epochs,
            json,
        }) => {
            if cfg!(debug_assertions) {
                eprintln!("note: a debug build; run `cargo run --release -p boltensor -- bench federation` for real figures");
            }
            if members.iter().any(|&n| n < 4) || epochs < 2 {
                anyhow::bail!(
                    "--members takes sizes of 4 or more (3f + 1 with f ≥ 1), --epochs 2 or more"
                );
            }
            let figures = boltensor_bench::federation::run(&members, epochs).await?;
            print!("{}", boltensor_bench::federation::markdown(&figures));
            if json {
                println!("{}", serde_json::to_string_pretty(&figures)?);
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Embed {
            concurrency,
            seconds,
            models_dir,
            json,
        }) => {
            let dir = models_dir
                .unwrap_or_else(boltensor_miner::config::default_models_dir)
                .join("all-minilm-l6-v2");
            let figures = boltensor_bench::embed::run(&dir, concurrency, seconds)
                .await
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("the embedding model in {}", dir.display()))?;
            print!("{}", figures.render());
            if json {
                println!("{}", serde_json::to_string_pretty(&figures)?);
            }
            Ok(())
        }
        Command::Bench(BenchCommand::All(a)) => {
            use boltensor_bench::all;
            if let Some(bad) = a.skip.iter().find(|s| !all::BENCHES.contains(&s.as_str())) {
                anyhow::bail!(
                    "--skip {bad}: not a bench (yuma, federation, embed, paid, lightning, load)"
                );
            }
            if cfg!(debug_assertions) {
                eprintln!("note: a debug build; run `cargo run --release -p boltensor -- bench all` for real figures");
            }
            let figures = all::run(all::AllConfig {
                models_dir: a
                    .models_dir
                    .unwrap_or_else(boltensor_miner::config::default_models_dir),
                load: a.load,
                skip: a.skip,
            })
            .await;
            print!("{}", all::markdown(&figures));
            if let Some(file) = &a.json {
                std::fs::write(file, serde_json::to_string_pretty(&figures)? + "\n")
                    .with_context(|| format!("writing {}", file.display()))?;
                eprintln!("wrote {}", file.display());
            }
            if let Some(file) = &a.docs {
                all::write_docs(file, &figures).map_err(anyhow::Error::msg)?;
                eprintln!("wrote {}", file.display());
            }
            let failed = figures.failed();
            for f in &failed {
                eprintln!("bench {} failed: {}", f.bench, f.reason);
            }
            let not_met = all::goals_not_met(&figures);
            for r in &not_met {
                let goal = r.goal.as_ref().map_or("", |g| g.text.as_str());
                eprintln!("goal not met: {}: {} ({goal})", r.measure, r.figure);
            }
            if !failed.is_empty() {
                anyhow::bail!(
                    "{} bench(es) failed (their rows say not measured)",
                    failed.len()
                );
            }
            if a.check_goals && !not_met.is_empty() {
                anyhow::bail!("{} measured goal(s) not met", not_met.len());
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Load(a)) => {
            use boltensor_bench::load;
            let max = std::time::Duration::from_secs(a.max_secs);
            let report = load::run(load::LoadConfig {
                paid: (!a.skip_paid).then(|| load::PaidLoadConfig {
                    embeddings: a.requests,
                    chats: a.chats,
                    concurrency: a.concurrency,
                    max_duration: max,
                    ..load::PaidLoadConfig::default()
                }),
                federation: (!a.skip_federation).then(|| load::FederationLoadConfig {
                    validators: a.validators,
                    miners: a.miners,
                    epochs: a.epochs,
                    epoch_sessions: a.epoch_sessions,
                    max_duration: max,
                    ..load::FederationLoadConfig::default()
                }),
            })
            .await?;
            println!("{}", report.render());
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Paid {
            requests,
            chats,
            chat_tokens,
            concurrency,
            seconds,
            channels_per_hop,
            json,
            json_out,
        }) => {
            if cfg!(debug_assertions) {
                eprintln!("note: a debug build; run `cargo run --release -p boltensor -- bench paid` for real figures");
            }
            let report = boltensor_bench::paid::run(boltensor_bench::paid::PaidBenchConfig {
                requests,
                chats,
                chat_tokens,
                concurrency,
                duration: std::time::Duration::from_secs(seconds),
                channels_per_hop,
            })
            .await?;
            println!("{}", report.render());
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            if let Some(file) = json_out {
                std::fs::write(&file, serde_json::to_string_pretty(&report)? + "\n")
                    .with_context(|| format!("writing {}", file.display()))?;
                eprintln!("wrote {}", file.display());
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Lightning {
            routers,
            payments,
            payment_msat,
            hold_msat,
            extra,
            paid_json,
            chat_secs,
            json,
            json_out,
        }) => {
            use boltensor_bench::lightning;
            if cfg!(debug_assertions) {
                eprintln!("note: a debug build; run `cargo run --release -p boltensor -- bench lightning` for real figures");
            }
            let mut chat_durations = Vec::new();
            match std::fs::read_to_string(&paid_json)
                .ok()
                .and_then(|t| lightning::paid_chat_ms(&t))
            {
                Some(ms) => chat_durations.push((
                    ms,
                    format!(
                        "paid 16-token chat, p50, measured by bench paid ({})",
                        paid_json.display()
                    ),
                )),
                None => eprintln!(
                    "note: no paid_chat.p50_ms in {}; only the assumed chat durations are used",
                    paid_json.display()
                ),
            }
            for s in chat_secs {
                chat_durations.push((s * 1000.0, format!("a {s} s chat (assumed)")));
            }
            let report = lightning::run(lightning::LightningBenchConfig {
                routers,
                payments,
                payment_msat,
                hold_msat,
                extra,
                chat_durations,
                ..lightning::LightningBenchConfig::default()
            })
            .await?;
            println!("{}", report.render());
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            if let Some(file) = json_out {
                std::fs::write(&file, serde_json::to_string_pretty(&report)? + "\n")
                    .with_context(|| format!("writing {}", file.display()))?;
                eprintln!("wrote {}", file.display());
            }
            Ok(())
        }
        Command::Yuma(args) => {
            let input = std::fs::read_to_string(&args.input)
                .with_context(|| format!("reading {}", args.input.display()))?;
            let output = boltensor_protocol::yuma::run_scenario_json(&input)
                .with_context(|| format!("running {}", args.input.display()))?;
            println!("{output}");
            Ok(())
        }
    }
}

async fn devnet(cmd: DevnetCommand) -> anyhow::Result<()> {
    use boltensor_devnet as devnet;
    match cmd {
        DevnetCommand::Up(args) => {
            let cfg = devnet::DevnetConfig {
                data_dir: args.dir.data_dir,
                coordinators: args.coordinators,
                miners: args.miners,
                validators: args.validators,
                clients: args.clients,
                bitcoind: args.bitcoind,
                control_port: args.control_port,
                models_dir: args.models_dir,
                traffic_interval: (args.traffic_interval_ms > 0)
                    .then(|| std::time::Duration::from_millis(args.traffic_interval_ms)),
                validator_round: (args.validator_round_secs > 0)
                    .then(|| std::time::Duration::from_secs(args.validator_round_secs)),
                validator_spend: (args.validator_income_share_ppm > 0).then_some(
                    boltensor_devnet::SpendPolicy {
                        bootstrap_msat: args.validator_bootstrap_msat,
                        income_share_ppm: args.validator_income_share_ppm.min(1_000_000),
                    },
                ),
                epoch: std::time::Duration::from_secs(args.epoch_secs.max(1)),
                block_interval: (args.block_interval_secs > 0)
                    .then(|| std::time::Duration::from_secs(args.block_interval_secs)),
            };
            let ctrl_c = async {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("\nCtrl-C: stopping the devnet cleanly…");
            };
            devnet::up(cfg, ctrl_c, |report| {
                println!("{}", report.render());
                let proxy = report
                    .nodes
                    .iter()
                    .find(|n| n.role == boltensor_protocol::Role::Client)
                    .and_then(|n| Some((n.api_url.clone()?, n.api_key_file.clone()?)));
                if let Some((proxy, key_file)) = proxy {
                    let key_file = key_file.display();
                    println!("Pay a miner per request through client-1's proxy (any OpenAI SDK; its API key is in {key_file}):");
                    println!("  export BOLTENSOR_PROXY_KEY=$(cat {key_file})");
                    println!(
                        "  curl -s {proxy}/chat/completions -H \"authorization: Bearer $BOLTENSOR_PROXY_KEY\" \\\n    \
                         -H 'content-type: application/json' -D - \\\n    \
                         -d '{{\"model\":\"smollm2-135m-instruct\",\"messages\":[{{\"role\":\"user\",\"content\":\"What is the capital of France?\"}}],\"max_tokens\":16}}'"
                    );
                    println!(
                        "  python3 -c \"import os; from openai import OpenAI; c = OpenAI(base_url='{proxy}', api_key=os.environ['BOLTENSOR_PROXY_KEY']); \
                         print(c.chat.completions.create(model='smollm2-135m-instruct', messages=[{{'role': 'user', 'content': 'Hi'}}], max_tokens=16).choices[0].message.content)\""
                    );
                    println!("  boltensor client chat 'What is the capital of France?' --proxy {proxy} --key-file {key_file}");
                    println!(
                        "  MCP hosts: streamable HTTP at {}/mcp, header 'Authorization: Bearer $BOLTENSOR_PROXY_KEY' (tools chat, embed, quote, spend)",
                        proxy.trim_end_matches("/v1")
                    );
                }
                let wallet = report.nodes.iter().find_map(|n| n.agent_wallet_url.clone());
                let miner = report
                    .nodes
                    .iter()
                    .find(|n| n.role == boltensor_protocol::Role::Miner)
                    .and_then(|n| n.api_url.clone());
                if let (Some(wallet), Some(miner)) = (wallet, miner) {
                    println!("Or pay a miner directly as an L402 agent (PyPI l402-requests, paying from client-1's node):");
                    println!(
                        "  python3 -c \"import os; from l402_requests import L402Client, LndWallet; \
                         c = L402Client(wallet=LndWallet(host='{wallet}', macaroon_hex=os.environ['BOLTENSOR_PROXY_KEY'])); \
                         print(c.post('{miner}/embeddings', json={{'model': 'all-minilm-l6-v2', 'input': 'Hi'}}).json()['data'][0]['embedding'][:4])\""
                    );
                }
                println!(
                    "devnet ready. `boltensor devnet status` shows this again; Ctrl-C stops it."
                );
            })
            .await?;
            Ok(())
        }
        DevnetCommand::Status { dir, json } => {
            let report = devnet::status(&dir.data_dir).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(())
        }
        DevnetCommand::Audit { dir, json } => {
            let audit = devnet::audit::audit(&dir.data_dir).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&audit)?);
            } else {
                print!("{}", audit.render());
            }
            if !audit.report.holds() {
                std::process::exit(1);
            }
            Ok(())
        }
        DevnetCommand::Down { dir, wipe } => {
            let was_running = match devnet::DevnetState::load(&dir.data_dir)? {
                Some(_) => devnet::down(&dir.data_dir).await?,
                None => false,
            };
            println!(
                "{}",
                if was_running {
                    "devnet stopped"
                } else {
                    "devnet was not running"
                }
            );
            if wipe && dir.data_dir.exists() {
                std::fs::remove_dir_all(&dir.data_dir)
                    .with_context(|| format!("removing {}", dir.data_dir.display()))?;
                println!("removed {}", dir.data_dir.display());
            }
            Ok(())
        }
    }
}
