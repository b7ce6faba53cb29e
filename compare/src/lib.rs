//! `boltensor bench compare`: the Lightning design and the token design side by side on one
//! simulated workload (issue 6, "The comparison"). Both designs run the same Yuma epoch — the
//! bit-faithful port of subtensor in `boltensor_protocol::yuma` — on the same validators' weights;
//! they differ in what stake is, where the money comes from and how it reaches miners.
//!
//! # Layout
//! - [`world`]: the shared workload — miners (hidden quality, cost), validators (stake, roles),
//!   demand over time, entrants, every validator's scores.
//! - [`metagraph`]: uids, weights, permits and bonds around `yuma::epoch`; routing by incentive.
//! - [`token`]: subtensor's emission, subnet pool, registration burn.
//! - [`lightning`]: per-request hold-invoice payments, forwarding fees, the epoch pool, bonds.
//! - [`ledger`]: who got what, and the metrics.
//! - [`report`]: JSON, Markdown and SVG plots.

pub mod chain;
pub mod channels;
pub mod costs;
pub mod ledger;
pub mod lightning;
pub mod metagraph;
pub mod report;
pub mod svg;
pub mod sweep;
pub mod token;
pub mod world;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use ledger::DesignMetrics;
use world::{ValidatorRole, World, EPOCH_SECS};

/// The Lightning inputs measured on this machine by `boltensor bench paid` (docs/paid-requests.md,
/// "Measured"), read from the JSON that command writes (`--json-out`), never typed into code. The default
/// is the committed run, docs/data/bench-paid.json; `bench compare --lightning-inputs FILE` reads another.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Bare 2-hop Lightning payment, client → coordinator → miner, p50 ms.
    pub payment_p50_ms: f64,
    /// Its p99.
    pub payment_p99_ms: f64,
    /// Paid minus unpaid embedding request, p50 ms.
    pub paid_overhead_embedding_p50_ms: f64,
    /// Paid minus unpaid 16-token chat, p50 ms (the model runs while the HTLC travels).
    pub paid_overhead_chat_p50_ms: f64,
    /// A paid 16-token chat, p50 ms (how long its HTLC is held).
    pub paid_chat_p50_ms: f64,
    /// Result ready → payment settled at the miner, p50 ms.
    pub settle_p50_ms: f64,
    /// Its p99.
    pub settle_p99_ms: f64,
    /// Settled paid requests per second on one miner (at `bench paid`'s concurrency).
    pub settled_rps_one_miner: f64,
}

/// The committed `bench paid` run.
pub const COMMITTED_BENCH_PAID: &str = include_str!("../../docs/data/bench-paid.json");

impl Measured {
    /// Reads `bench paid`'s JSON.
    pub fn from_bench_paid(json: &str) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("bench paid JSON: {e}"))?;
        let f = |series: &str, field: &str| -> Result<f64, String> {
            v[series][field]
                .as_f64()
                .ok_or_else(|| format!("bench paid JSON: no {series}.{field}"))
        };
        Ok(Measured {
            payment_p50_ms: f("bare_payment", "p50_ms")?,
            payment_p99_ms: f("bare_payment", "p99_ms")?,
            paid_overhead_embedding_p50_ms: f("paid_embedding", "p50_ms")?
                - f("unpaid_embedding", "p50_ms")?,
            paid_overhead_chat_p50_ms: f("paid_chat", "p50_ms")? - f("unpaid_chat", "p50_ms")?,
            paid_chat_p50_ms: f("paid_chat", "p50_ms")?,
            settle_p50_ms: f("settle", "p50_ms")?,
            settle_p99_ms: f("settle", "p99_ms")?,
            settled_rps_one_miner: v["settled_per_sec"]
                .as_f64()
                .ok_or("bench paid JSON: no settled_per_sec")?,
        })
    }

    /// The committed run (docs/data/bench-paid.json).
    pub fn committed() -> Self {
        Self::from_bench_paid(COMMITTED_BENCH_PAID)
            .expect("docs/data/bench-paid.json is bench paid's JSON (checked by a test)")
    }
}

impl Default for Measured {
    fn default() -> Self {
        Self::committed()
    }
}

/// The run's parameters. Defaults are documented in docs/benchmarks.md with their sources.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// RNG seed: the same seed gives the same report.
    pub seed: u64,
    /// Epochs (one tempo: 360 blocks × 12 s = 72 min each).
    pub epochs: usize,
    /// Miner slots.
    pub miners: usize,
    /// Validators.
    pub validators: usize,
    /// Validators in the colluding group.
    pub colluders: usize,
    /// The colluding group's share of validator stake.
    pub collusion_stake: f64,
    /// Whether the colluding validators collude (false: same stake, honest weights).
    pub collude: bool,
    /// Epochs at the start without any client (a new subnet).
    pub zero_demand_epochs: usize,
    /// Client requests per second at full demand (network-wide, before the day cycle).
    pub demand_rps: f64,
    /// A new miner arrives every this many epochs (0: none).
    pub entry_interval: usize,
    /// Challenge rounds per validator per epoch (one paid request per miner each).
    pub rounds_per_epoch: u32,
    /// Requests per second one miner settles (default: `measured.settled_rps_one_miner`).
    pub miner_capacity_rps: f64,
    /// The Lightning figures measured by `bench paid` (latency, settlement, throughput).
    pub measured: Measured,
    /// Price per request, sats (both designs: what a client pays for an answer).
    pub price_sats: f64,
    /// Coordinator's forwarding fee per paid request, msat (LDK's default base fee, 1 sat).
    pub forwarding_fee_msat: u64,
    /// Share of forwarding fees that funds the epoch pool (a governed parameter).
    pub pool_share: f64,
    /// Validator bonds, total, sats.
    pub validator_bond_sats: f64,
    /// A new miner's bond, sats.
    pub miner_bond_sats: f64,
    /// Bond timelock, blocks.
    pub bond_lock_blocks: u64,
    /// The fee rate on-chain transactions pay, sat/vB (the report also shows 2 to 100).
    pub fee_rate_sat_vb: f64,
    /// Transaction sizes measured by the contracts tests (docs/data/contracts.json).
    pub chain: chain::ChainSizes,
    /// Hop latency and HTLC slots measured by `bench lightning` (docs/data/bench-lightning.json).
    pub channels: channels::ChannelFacts,
    /// Yearly cost of capital for bonded sats (and, in the token design, for staked alpha).
    pub capital_cost_per_year: f64,
    /// What a miner's server costs per epoch, sats, whether or not anyone asks it anything (assumed:
    /// 600 sat = $0.50 an hour at $100,000 per BTC).
    pub miner_server_cost_sats_per_epoch: f64,
    /// A miner whose income over this many epochs stays below its costs would quit (20: a day).
    pub quit_window_epochs: usize,
    /// Sats per TAO at the start (then it moves with `tao_btc_volatility`).
    pub sats_per_tao: f64,
    /// Annual volatility of TAO's price in BTC (driftless geometric Brownian motion, per epoch); 0 fixes
    /// the rate. Assumed, not fitted: no price series is reachable from this machine.
    pub tao_btc_volatility: f64,
    /// Alpha emitted per block (subtensor's block emission for a young subnet's alpha issuance).
    pub alpha_per_block: f64,
    /// TAO emitted per block, network-wide (`DefaultBlockEmission` halved once: issuance is past 10.5 M
    /// TAO, `get_block_emission_for_issuance`). The subnet's part follows its moving price.
    pub tao_block_emission: f64,
    /// Σ over the other subnets of moving price × (1 − miner emission burned), TAO: the rest of the
    /// network in `get_shares` (assumed; above 1, root alpha is sold, `get_network_root_sell_flag`).
    pub other_subnets_moving_price: f64,
    /// Blocks since the subnet's `start_call` when the run begins (its moving price has had that long to
    /// follow the spot price, `update_moving_price`); 0 for a brand-new subnet.
    pub subnet_age_blocks: f64,
    /// TAO staked on root (the root proportion's numerator with `tao_weight`; assumed).
    pub root_tao: f64,
    /// `TaoWeight` (`SubtensorInitialTaoWeight` / u64::MAX).
    pub tao_weight: f64,
    /// Share of miner incentive the subnet owner directs to its own hotkey, which subtensor burns
    /// (`distribute_dividends_and_incentives`), and which lowers the subnet's emission share
    /// (`MinerBurned` in `get_shares`).
    pub owner_burn_share: f64,
    /// Pool TAO reserve at the start.
    pub pool_tao: f64,
    /// Alpha price at the start, TAO.
    pub alpha_price: f64,
    /// Validators' alpha stake at the start, valued in TAO.
    pub validator_stake_tao: f64,
    /// Share of the token design's client revenue used to buy back (and burn) alpha (of what is left
    /// after `token_revenue_share`).
    pub token_buyback_share: f64,
    /// Share of each client payment the token design pays straight to the miner that served it (0: as
    /// subtensor does, clients pay the subnet and miners earn only emission). The report also runs the
    /// token design with 1 ("token + per-request revenue") to separate the payment cadence from the asset.
    pub token_revenue_share: f64,
    /// Stake shares for the collusion sweep (empty: none).
    pub collusion_sweep: Vec<f64>,
    /// Validators commit their weights one epoch and reveal them in the next (subtensor's commit-reveal,
    /// ADR 0014), in both designs.
    #[serde(default)]
    pub commit_reveal: bool,
    /// Also run the same world with commit-reveal the other way, for the weight copier's figures.
    #[serde(default)]
    pub copier_comparison: bool,
    /// Also run the token design with per-request revenue on the same world (the "payment cadence vs
    /// asset" table).
    pub revenue_variant: bool,
}

impl Config {
    /// The default parameters, then the JSON object in `file` (any subset of the fields, by name), then
    /// each `KEY=VALUE` of `sets` (the value as JSON, or else as a string). An unknown name is an error
    /// that lists the known ones.
    pub fn load(file: Option<&std::path::Path>, sets: &[String]) -> Result<Config, String> {
        Config::default().with(file, sets)
    }

    /// These parameters, then `file` and `sets` as [`Config::load`] applies them.
    pub fn with(&self, file: Option<&std::path::Path>, sets: &[String]) -> Result<Config, String> {
        let mut v = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let known: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let unknown = |k: &str| {
            format!(
                "unknown parameter `{k}`; the parameters are: {}",
                known.join(", ")
            )
        };
        let obj = v.as_object_mut().ok_or("the config is not an object")?;
        if let Some(file) = file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("reading {}: {e}", file.display()))?;
            let patch: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a JSON object of parameters: {e}", file.display()))?;
            for (k, val) in patch {
                if !obj.contains_key(&k) {
                    return Err(format!("{}: {}", file.display(), unknown(&k)));
                }
                obj.insert(k, val);
            }
        }
        for set in sets {
            let (k, val) = set
                .split_once('=')
                .ok_or_else(|| format!("`--set {set}`: expected KEY=VALUE"))?;
            if !obj.contains_key(k) {
                return Err(format!("`--set {set}`: {}", unknown(k)));
            }
            let val = serde_json::from_str(val)
                .unwrap_or_else(|_| serde_json::Value::String(val.to_owned()));
            obj.insert(k.to_owned(), val);
        }
        serde_json::from_value(v).map_err(|e| format!("the parameters: {e}"))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 6,
            epochs: 120,
            miners: 32,
            validators: 8,
            colluders: 2,
            collusion_stake: 0.25,
            collude: true,
            zero_demand_epochs: 20,
            demand_rps: 4.0,
            entry_interval: 6,
            rounds_per_epoch: 4,
            miner_capacity_rps: Measured::committed().settled_rps_one_miner,
            measured: Measured::committed(),
            price_sats: 10.0,
            forwarding_fee_msat: 1000,
            pool_share: 0.5,
            validator_bond_sats: 1e9,
            miner_bond_sats: 1_000_000.0,
            bond_lock_blocks: 2016,
            fee_rate_sat_vb: 2.0,
            chain: chain::ChainSizes::committed(),
            channels: channels::ChannelFacts::committed(),
            capital_cost_per_year: 0.05,
            miner_server_cost_sats_per_epoch: 600.0,
            quit_window_epochs: 20,
            sats_per_tao: 400_000.0,
            tao_btc_volatility: 0.9,
            alpha_per_block: 1.0,
            tao_block_emission: 0.5,
            other_subnets_moving_price: 1.5,
            subnet_age_blocks: 2_629_800.0,
            root_tao: 3_000_000.0,
            tao_weight: 971_718_665_099_567_868.0 / 18_446_744_073_709_551_615.0,
            owner_burn_share: 0.0,
            pool_tao: 20_000.0,
            alpha_price: 0.01,
            validator_stake_tao: 5_000.0,
            token_buyback_share: 1.0,
            token_revenue_share: 0.0,
            collusion_sweep: vec![0.1, 0.2, 0.3, 0.4, 0.45, 0.55, 0.6, 0.7],
            commit_reveal: true,
            copier_comparison: true,
            revenue_variant: true,
        }
    }
}

/// Time from work done to the miner holding spendable value, value-weighted, seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Spendable {
    /// Median.
    pub p50_s: f64,
    /// 90th percentile.
    pub p90_s: f64,
    /// 99th percentile.
    pub p99_s: f64,
}

/// A gain above this counts as collusion paying (1 %).
pub const COLLUSION_PAYS: f64 = 1.01;

/// The weight copier's income per stake relative to an honest validator's, gross, in one run.
#[derive(Debug, Clone, Serialize)]
pub struct CopierPoint {
    /// Whether validators committed and revealed their weights.
    pub commit_reveal: bool,
    /// Token design.
    pub token: f64,
    /// Lightning design.
    pub lightning: f64,
}

/// One point of the collusion sweep.
#[derive(Debug, Clone, Serialize)]
pub struct CollusionPoint {
    /// The group's stake share.
    pub stake: f64,
    /// Token: the group's take (validators' income + its miner's) colluding / acting honestly.
    pub token_gain: f64,
    /// Lightning: the same.
    pub lightning_gain: f64,
    /// Token: the colluders' miner's share of miner income when colluding.
    pub token_miner_share: f64,
    /// Lightning: the same.
    pub lightning_miner_share: f64,
}

/// The token design with one parameter changed, on the same world.
#[derive(Debug, Clone, Serialize)]
pub struct TokenVariant {
    /// What changed.
    pub name: String,
    /// The parameter and its value (`--set` syntax).
    pub set: String,
    /// Its metrics.
    pub metrics: DesignMetrics,
    /// Its accounts.
    pub accounts: token::TokenAccounts,
}

/// The token variants the report runs: a brand-new subnet, an owner burning half the miner emission, no
/// root stake, and a fixed TAO injection instead of the moving-price share.
pub fn token_variant_sets(config: &Config) -> Vec<(&'static str, String)> {
    vec![
        (
            "a brand-new subnet (moving price from 0)",
            "subnet_age_blocks=0".to_owned(),
        ),
        (
            "the owner burns half the miner emission",
            "owner_burn_share=0.5".to_owned(),
        ),
        ("no root stake (root proportion 0)", "root_tao=0".to_owned()),
        (
            "TAO emission share doubled (others' moving prices halved; their sum falls below 1, so root \
             alpha is recycled, not sold, and the epoch splits only the miners' and validators' part)",
            format!(
                "other_subnets_moving_price={}",
                config.other_subnets_moving_price / 2.0
            ),
        ),
    ]
}

/// Everything one run produces.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The parameters.
    pub config: Config,
    /// Validator roles and stake shares.
    pub validators: Vec<(ValidatorRole, f64)>,
    /// Token design metrics.
    pub token: DesignMetrics,
    /// Lightning design metrics.
    pub lightning: DesignMetrics,
    /// Token accounts.
    pub token_accounts: token::TokenAccounts,
    /// Lightning accounts.
    pub lightning_accounts: lightning::LightningAccounts,
    /// The token design with every client payment going to the miner that served it, on the same world
    /// (emission unchanged): what per-request payment adds without giving up the token.
    pub token_with_revenue: Option<DesignMetrics>,
    /// The token design with one of subtensor's mechanisms changed at a time, on the same world (with
    /// `revenue_variant`): what each contributes.
    pub token_variants: Vec<TokenVariant>,
    /// The busiest Lightning miner's peak, client requests/s (its busiest epoch).
    pub peak_rps_one_miner: f64,
    /// HTLC slots against request durations.
    pub slots: Vec<channels::SlotRow>,
    /// On-chain costs at fee rates from 2 to 100 sat/vB.
    pub chain_fees: Vec<chain::FeeRow>,
    /// Token: capital, servers, would-be quitters.
    pub token_costs: costs::DesignCosts,
    /// Lightning: the same, and channel capital.
    pub lightning_costs: costs::DesignCosts,
    /// Time to spendable value, token.
    pub token_spendable: Spendable,
    /// Time to spendable value, Lightning.
    pub lightning_spendable: Spendable,
    /// Routing fees on client requests / client spend (Lightning).
    pub lightning_fee_share_of_client_spend: f64,
    /// Latency a paid request adds, ms (Lightning; the token design adds none per request).
    pub lightning_latency_overhead_ms: (f64, f64),
    /// Collusion sweep.
    pub collusion: Vec<CollusionPoint>,
    /// The weight copier without and with commit-reveal (the same world).
    pub copier: Vec<CopierPoint>,
    /// Per-epoch series for plots.
    pub series: Series,
}

/// Per-epoch series.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Client requests per second.
    pub demand_rps: Vec<f64>,
    /// Miner income per epoch, token, sats.
    pub token_miner_income: Vec<f64>,
    /// Miner income per epoch, Lightning, sats.
    pub lightning_miner_income: Vec<f64>,
    /// Bad miner's income per epoch, token.
    pub token_bad_miner: Vec<f64>,
    /// Bad miner's income per epoch, Lightning.
    pub lightning_bad_miner: Vec<f64>,
    /// Alpha price, TAO.
    pub alpha_price: Vec<f64>,
    /// Registration burn, TAO.
    pub burn: Vec<f64>,
    /// Per miner present from the start: (true mean quality, token income, Lightning income), sats.
    pub quality_income: Vec<(f64, f64, f64)>,
}

struct Both {
    world: World,
    token: ledger::Ledger,
    token_acc: token::TokenAccounts,
    token_series: token::TokenSeries,
    ln: ledger::Ledger,
    ln_acc: lightning::LightningAccounts,
}

fn run_both(config: &Config) -> Both {
    let mut world = World::new(config);
    if !config.collude {
        for r in world.roles.iter_mut() {
            if *r == ValidatorRole::Colluder {
                *r = ValidatorRole::Honest;
            }
        }
    }
    let (token, token_acc, token_series) = token::run(config, &world);
    let (ln, ln_acc, _) = lightning::run(config, &world);
    Both {
        world,
        token,
        token_acc,
        token_series,
        ln,
        ln_acc,
    }
}

/// The colluding group's take: its validators' income plus its miner's.
fn group_take(world: &World, colluders: &[usize], l: &ledger::Ledger) -> f64 {
    // Gross: the group pays the same challenges whether it colludes or not.
    let v: f64 = colluders
        .iter()
        .map(|&v| l.validator_income[v].iter().sum::<f64>())
        .sum();
    let m: f64 = world
        .agents
        .iter()
        .filter(|a| a.kind == world::AgentKind::Colluders)
        .map(|a| l.agents[a.id].income.iter().sum::<f64>())
        .sum();
    v + m
}

fn spendable(samples: &mut [f64]) -> Spendable {
    samples.sort_by(f64::total_cmp);
    let q = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    Spendable {
        p50_s: q(0.5),
        p90_s: q(0.9),
        p99_s: q(0.99),
    }
}

/// Runs the comparison.
pub fn run(config: &Config) -> Report {
    let both = run_both(config);
    let world = &both.world;
    let mut token = both.token.metrics(world, config.zero_demand_epochs);
    let mut lightning = both.ln.metrics(world, config.zero_demand_epochs);
    // Capital: the token validators' mean stake value, the Lightning validators' bonds.
    let epochs_run = both.token.validator_stake_value.len().max(1) as f64;
    let token_stake: Vec<f64> = (0..world.roles.len())
        .map(|v| {
            both.token
                .validator_stake_value
                .iter()
                .map(|e| e[v])
                .sum::<f64>()
                / epochs_run
        })
        .collect();
    let bonds: Vec<f64> = world
        .stake_share
        .iter()
        .map(|s| s * config.validator_bond_sats)
        .collect();
    let token_costs = costs::of(config, world, &both.token, &token_stake, false);
    let miner_income_mean = ledger::ratio(
        both.ln.miner_income_total(),
        both.ln
            .agents
            .iter()
            .filter(|a| a.registered.iter().any(|&r| r))
            .count() as f64,
    );
    let peak_rps_one_miner = both
        .ln
        .agents
        .iter()
        .map(|a| a.peak_requests_per_epoch)
        .max()
        .unwrap_or(0) as f64
        / EPOCH_SECS;
    let slots = [
        (
            "a 16-token chat (paid, p50, measured by bench paid)".to_owned(),
            config.measured.paid_chat_p50_ms / 1000.0,
        ),
        ("a 10 s chat (assumed)".to_owned(), 10.0),
        ("a 60 s chat (assumed)".to_owned(), 60.0),
    ]
    .into_iter()
    .map(|(what, hold_s)| {
        let per_channel_rps = config.channels.htlc_slots / hold_s;
        channels::SlotRow {
            what,
            hold_s,
            per_channel_rps,
            channels_needed: (peak_rps_one_miner / per_channel_rps).ceil().max(1.0),
        }
    })
    .collect();
    let chain_fees = chain::FEE_RATES
        .iter()
        .map(|&rate| {
            let bond = config.chain.bond_fees_sats(rate);
            let channel = rate * config.chain.channel_funding_vb as f64;
            chain::FeeRow {
                rate,
                bond_sats: bond,
                channel_sats: channel,
                slash_sats: rate * config.chain.bond_slash_vb as f64,
                entry_share_of_miner_income: ledger::ratio(bond + channel, miner_income_mean),
            }
        })
        .collect();
    let lightning_costs = costs::of(config, world, &both.ln, &bonds, true);
    // What clients add to miners' income: the same run without any client.
    let idle = run_both(&Config {
        demand_rps: 0.0,
        collusion_sweep: Vec::new(),
        ..config.clone()
    });
    token.client_to_miners_share = ledger::ratio(
        token.miner_income_sats - idle.token.miner_income_total(),
        token.client_spend_sats,
    );
    lightning.client_to_miners_share = ledger::ratio(
        lightning.miner_income_sats - idle.ln.miner_income_total(),
        lightning.client_spend_sats,
    );
    // The token design with per-request revenue, on the same world.
    let token_with_revenue = config.revenue_variant.then(|| {
        let revenue_config = Config {
            token_revenue_share: 1.0,
            ..config.clone()
        };
        let mut m = token::run(&revenue_config, world)
            .0
            .metrics(world, config.zero_demand_epochs);
        let idle_revenue = token::run(
            &Config {
                demand_rps: 0.0,
                ..revenue_config
            },
            &idle.world,
        )
        .0;
        m.client_to_miners_share = ledger::ratio(
            m.miner_income_sats - idle_revenue.miner_income_total(),
            m.client_spend_sats,
        );
        m
    });
    let token_variants = if config.revenue_variant {
        token_variant_sets(config)
            .into_iter()
            .map(|(name, set)| {
                let c = config
                    .with(None, std::slice::from_ref(&set))
                    .expect("a known parameter");
                let (ledger, accounts, _) = token::run(&c, world);
                TokenVariant {
                    name: name.to_owned(),
                    set,
                    metrics: ledger.metrics(world, config.zero_demand_epochs),
                    accounts,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let lightning_fee_share_of_client_spend = ledger::ratio(
        lightning.delivered_requests as f64 * config.forwarding_fee_msat as f64 / 1000.0,
        lightning.client_spend_sats,
    );

    // Time to spendable value, weighted by value: token income arrives at the epoch's end (work is
    // spread evenly over the epoch) and is sold in the next block; Lightning per-request income
    // settles in the measured settle time, pool income at the epoch's end plus one payment.
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x5eed);
    let sigma = (config.measured.settle_p99_ms / config.measured.settle_p50_ms).ln() / 2.326;
    let n = 20_000;
    let mut tok = Vec::with_capacity(n);
    let mut ln = Vec::with_capacity(n);
    for _ in 0..n {
        let wait = rng.gen_range(0.0..EPOCH_SECS);
        tok.push(wait + world::BLOCK_SECS);
        if rng.gen_range(0.0..1.0) < lightning.miner_income_from_requests_share {
            ln.push(
                config.measured.settle_p50_ms / 1000.0 * (sigma * world::normal(&mut rng)).exp(),
            );
        } else {
            ln.push(wait + config.measured.payment_p50_ms / 1000.0);
        }
    }

    // Collusion sweep: the same world with the group at each stake share, colluding vs honest.
    let colluders: Vec<usize> = world
        .roles
        .iter()
        .enumerate()
        .filter(|(_, r)| **r == ValidatorRole::Colluder)
        .map(|(v, _)| v)
        .collect();
    let collusion = config
        .collusion_sweep
        .iter()
        .map(|&x| {
            let mut c = config.clone();
            c.collusion_stake = x;
            c.collusion_sweep = Vec::new();
            c.collude = true;
            let bad = run_both(&c);
            c.collude = false;
            let good = run_both(&c);
            let tm = bad.token.metrics(&bad.world, c.zero_demand_epochs);
            let lm = bad.ln.metrics(&bad.world, c.zero_demand_epochs);
            CollusionPoint {
                stake: x,
                token_gain: ledger::ratio(
                    group_take(&bad.world, &colluders, &bad.token),
                    group_take(&good.world, &colluders, &good.token),
                ),
                lightning_gain: ledger::ratio(
                    group_take(&bad.world, &colluders, &bad.ln),
                    group_take(&good.world, &colluders, &good.ln),
                ),
                token_miner_share: tm.colluder_miner_income_share,
                lightning_miner_share: lm.colluder_miner_income_share,
            }
        })
        .collect();

    // The weight copier with commit-reveal off and on: this run, and the same world the other way.
    let copier = if config.copier_comparison {
        let other = run_both(&Config {
            commit_reveal: !config.commit_reveal,
            collusion_sweep: Vec::new(),
            copier_comparison: false,
            ..config.clone()
        });
        let to = other.token.metrics(&other.world, config.zero_demand_epochs);
        let lo = other.ln.metrics(&other.world, config.zero_demand_epochs);
        let mut points = vec![
            CopierPoint {
                commit_reveal: config.commit_reveal,
                token: token.copier_per_stake_vs_honest,
                lightning: lightning.copier_per_stake_vs_honest,
            },
            CopierPoint {
                commit_reveal: !config.commit_reveal,
                token: to.copier_per_stake_vs_honest,
                lightning: lo.copier_per_stake_vs_honest,
            },
        ];
        points.sort_by_key(|p| p.commit_reveal);
        points
    } else {
        Vec::new()
    };

    let bad_id = world
        .agents
        .iter()
        .find(|a| a.kind == world::AgentKind::Bad)
        .map(|a| a.id)
        .unwrap_or(0);
    let quality_income = world
        .agents
        .iter()
        .filter(|a| a.arrives == 0)
        .map(|a| {
            let q = (0..config.epochs).map(|e| a.quality_at(e)).sum::<f64>()
                / config.epochs.max(1) as f64;
            (
                q,
                both.token.agents[a.id].income.iter().sum(),
                both.ln.agents[a.id].income.iter().sum(),
            )
        })
        .collect();
    Report {
        config: config.clone(),
        validators: world
            .roles
            .iter()
            .copied()
            .zip(world.stake_share.iter().copied())
            .collect(),
        series: Series {
            demand_rps: world.demand_rps.clone(),
            token_miner_income: both.token.miner_income_by_epoch(),
            lightning_miner_income: both.ln.miner_income_by_epoch(),
            token_bad_miner: both.token.agents[bad_id].income.clone(),
            lightning_bad_miner: both.ln.agents[bad_id].income.clone(),
            alpha_price: both.token_series.price.clone(),
            burn: both.token_series.burn.clone(),
            quality_income,
        },
        token,
        lightning,
        token_with_revenue,
        token_variants,
        peak_rps_one_miner,
        slots,
        chain_fees,
        token_costs,
        lightning_costs,
        token_accounts: both.token_acc,
        lightning_accounts: both.ln_acc,
        token_spendable: spendable(&mut tok),
        lightning_spendable: spendable(&mut ln),
        lightning_fee_share_of_client_spend,
        lightning_latency_overhead_ms: (
            config.measured.paid_overhead_embedding_p50_ms,
            config.measured.paid_overhead_chat_p50_ms,
        ),
        collusion,
        copier,
    }
}
