//! The workload both designs share: miners with hidden quality and cost, validators with stake and
//! their scoring, client demand over time, entrants. Every random draw is made here, once, from the
//! run's seed, and both designs read the same draws.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::Config;

/// Seconds per block on subtensor (`pallets/subtensor`: 12 s blocks).
pub const BLOCK_SECS: f64 = 12.0;
/// Blocks per epoch (`runtime/src/lib.rs` `INITIAL_SUBNET_TEMPO` = 360).
pub const TEMPO: u64 = 360;
/// Seconds per epoch.
pub const EPOCH_SECS: f64 = BLOCK_SECS * TEMPO as f64;

/// What a miner is, hidden from every validator and client.
#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    /// Index in [`World::agents`].
    pub id: usize,
    /// Honest, the bad miner, or the colluders' own miner.
    pub kind: AgentKind,
    /// True quality of its answers (0..1) before `switch_epoch`.
    pub quality: f64,
    /// True quality from `switch_epoch` on.
    pub quality_after: f64,
    /// The epoch its quality changes, if it does.
    pub switch_epoch: Option<usize>,
    /// Share of requests answered.
    pub availability: f64,
    /// Seconds to answer.
    pub latency_s: f64,
    /// What one answer costs it, sats (compute).
    pub cost_sats: f64,
    /// The epoch it arrives.
    pub arrives: usize,
}

/// Roles among miners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// Serves the model it claims.
    Honest,
    /// Honest at first, then switches to a cheap model that answers badly.
    Bad,
    /// Low quality, owned by the colluding validators.
    Colluders,
}

impl Agent {
    /// Quality in an epoch.
    pub fn quality_at(&self, epoch: usize) -> f64 {
        match self.switch_epoch {
            Some(s) if epoch >= s => self.quality_after,
            _ => self.quality,
        }
    }
}

/// What a validator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidatorRole {
    /// Challenges every miner and weights by its own scores.
    Honest,
    /// Sets the previous epoch's public consensus as its weights; never challenges.
    Copier,
    /// Scores honestly, but gives the colluders' miner the top weight.
    Colluder,
}

/// One epoch of shared draws.
#[derive(Debug, Clone)]
pub struct EpochDraws {
    /// Client requests this epoch, network-wide.
    pub requests: u64,
    /// Per validator, per agent: the scoring formula's score after this epoch's challenges
    /// (docs/scoring.md), 0 for agents not yet arrived.
    pub scores: Vec<Vec<f64>>,
    /// Per validator, per agent: challenges answered this epoch (each paid in the Lightning design).
    pub answered: Vec<Vec<u32>>,
    /// Per validator, per agent: challenges sent this epoch.
    pub sent: Vec<Vec<u32>>,
    /// An agent that arrives and registers this epoch.
    pub entrant: Option<usize>,
}

/// The whole shared workload.
#[derive(Debug, Clone)]
pub struct World {
    /// Every miner ever, the first `config.miners` present from the start.
    pub agents: Vec<Agent>,
    /// Per validator.
    pub roles: Vec<ValidatorRole>,
    /// Per validator, its share of all validator stake at the start.
    pub stake_share: Vec<f64>,
    /// Per epoch.
    pub epochs: Vec<EpochDraws>,
    /// Per epoch, the client request rate (req/s, mean over the epoch).
    pub demand_rps: Vec<f64>,
    /// Per epoch, TAO's price in sats: a driftless geometric Brownian motion from `sats_per_tao` with
    /// annual volatility `tao_btc_volatility` (its own random stream, so the other draws do not move).
    pub sats_per_tao: Vec<f64>,
}

/// A standard normal draw (Box–Muller), so the output does not depend on `rand_distr`.
pub fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn new_agent(rng: &mut StdRng, id: usize, arrives: usize) -> Agent {
    let quality = rng.gen_range(0.55..1.0);
    Agent {
        id,
        kind: AgentKind::Honest,
        quality,
        quality_after: quality,
        switch_epoch: None,
        availability: rng.gen_range(0.97..0.999),
        latency_s: rng.gen_range(0.3..1.6),
        cost_sats: rng.gen_range(2.0..5.0),
        arrives,
    }
}

/// The scoring formula of docs/scoring.md (`validator/src/scoring.rs`), one challenge kind.
#[derive(Debug, Clone, Copy)]
struct Ema {
    availability: f64,
    quality: f64,
    speed: f64,
}

impl Ema {
    const ALPHA: f64 = 0.3;
    const NEW: Ema = Ema {
        availability: 1.0,
        quality: 1.0,
        speed: 1.0,
    };
    fn update(&mut self, ok: bool, quality: f64, latency_s: f64) {
        let a = Self::ALPHA;
        self.availability = (1.0 - a) * self.availability + a * if ok { 1.0 } else { 0.0 };
        if ok {
            self.quality = (1.0 - a) * self.quality + a * quality;
            self.speed = (1.0 - a) * self.speed + a * (1.0 / latency_s).min(1.0);
        }
    }
    fn score(&self) -> f64 {
        let s = self.availability * self.quality * self.quality * (0.7 + 0.3 * self.speed);
        if s < 0.01 {
            0.0
        } else {
            s
        }
    }
}

impl World {
    /// Draws the workload of a run.
    pub fn new(config: &Config) -> World {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let m = config.miners.max(3);
        let v = config.validators.max(3);
        let mut agents: Vec<Agent> = (0..m).map(|id| new_agent(&mut rng, id, 0)).collect();
        // The bad miner: good until a third of the run, then a cheap model that answers badly.
        let bad = &mut agents[m - 1];
        bad.kind = AgentKind::Bad;
        bad.quality = 0.9;
        bad.quality_after = 0.15;
        bad.availability = 0.9;
        bad.switch_epoch = Some(config.epochs / 3);
        // The colluders' miner: a weak model that the colluding validators push to the top.
        let col = &mut agents[m - 2];
        col.kind = AgentKind::Colluders;
        col.quality = 0.35;
        col.quality_after = 0.35;
        col.cost_sats = 1.0;

        // Validators: the last ones collude, the second is the copier; stakes log-normal, then the
        // colluding group rescaled to `collusion_stake` of the total.
        let n_col = config.colluders.min(v - 2);
        let mut roles = vec![ValidatorRole::Honest; v];
        roles[1] = ValidatorRole::Copier;
        for role in roles.iter_mut().skip(v - n_col) {
            *role = ValidatorRole::Colluder;
        }
        let raw: Vec<f64> = (0..v).map(|_| (0.6 * normal(&mut rng)).exp()).collect();
        let col_raw: f64 = raw
            .iter()
            .zip(&roles)
            .filter(|(_, r)| **r == ValidatorRole::Colluder)
            .map(|(s, _)| s)
            .sum();
        let other_raw: f64 = raw.iter().sum::<f64>() - col_raw;
        let x = config.collusion_stake.clamp(0.0, 0.95);
        let stake_share: Vec<f64> = raw
            .iter()
            .zip(&roles)
            .map(|(s, r)| {
                if *r == ValidatorRole::Colluder {
                    if col_raw > 0.0 {
                        s / col_raw * x
                    } else {
                        0.0
                    }
                } else {
                    s / other_raw * if n_col > 0 { 1.0 - x } else { 1.0 }
                }
            })
            .collect();

        // Demand: none for the first `zero_demand_epochs` (a new subnet before any client pays),
        // then a ramp to `demand_rps` over as many epochs, a day-night cycle and noise.
        let mut demand_rps = Vec::with_capacity(config.epochs);
        for e in 0..config.epochs {
            let rps = if e < config.zero_demand_epochs {
                0.0
            } else {
                let since = (e - config.zero_demand_epochs) as f64;
                let ramp = (0.25 + 0.75 * since / config.zero_demand_epochs.max(1) as f64).min(1.0);
                let hour = (e as f64 * EPOCH_SECS / 3600.0) % 24.0;
                let day = 1.0 + 0.5 * (std::f64::consts::TAU * hour / 24.0).sin();
                let noise = (0.2 * normal(&mut rng)).exp();
                config.demand_rps * ramp * day * noise
            };
            demand_rps.push(rps);
        }

        let mut emas: Vec<Vec<Ema>> = vec![Vec::new(); v];
        let mut epochs = Vec::with_capacity(config.epochs);
        for (e, rps) in demand_rps.iter().enumerate() {
            let entrant = if config.entry_interval > 0 && e > 0 && e % config.entry_interval == 0 {
                let id = agents.len();
                agents.push(new_agent(&mut rng, id, e));
                Some(id)
            } else {
                None
            };
            let n = agents.len();
            let mut scores = vec![vec![0.0; n]; v];
            let mut answered = vec![vec![0u32; n]; v];
            let mut sent = vec![vec![0u32; n]; v];
            for vi in 0..v {
                emas[vi].resize(n, Ema::NEW);
                for (ai, agent) in agents.iter().enumerate() {
                    if agent.arrives > e {
                        continue;
                    }
                    let q = agent.quality_at(e);
                    for _ in 0..config.rounds_per_epoch {
                        let ok = rng.gen_range(0.0..1.0) < agent.availability;
                        let sample = (q + 0.08 * normal(&mut rng)).clamp(0.0, 1.0);
                        let lat = agent.latency_s * (0.15 * normal(&mut rng)).exp();
                        if roles[vi] != ValidatorRole::Copier {
                            emas[vi][ai].update(ok, sample, lat);
                            sent[vi][ai] += 1;
                            answered[vi][ai] += u32::from(ok);
                        }
                    }
                    scores[vi][ai] = emas[vi][ai].score();
                }
            }
            epochs.push(EpochDraws {
                requests: (rps * EPOCH_SECS).round() as u64,
                scores,
                answered,
                sent,
                entrant,
            });
        }
        let mut price_rng = StdRng::seed_from_u64(config.seed ^ 0x7a0_b7c);
        let dt = EPOCH_SECS / (365.25 * 86400.0);
        let step = config.tao_btc_volatility * dt.sqrt();
        let mut price = config.sats_per_tao;
        let sats_per_tao = (0..config.epochs)
            .map(|_| {
                let now = price;
                // A martingale: E[next] = now.
                price *= (step * normal(&mut price_rng) - step * step / 2.0).exp();
                now
            })
            .collect();
        World {
            agents,
            roles,
            stake_share,
            epochs,
            demand_rps,
            sats_per_tao,
        }
    }
}
