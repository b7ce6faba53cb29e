//! What each design paid whom, per epoch, in sats (the token design's alpha and TAO valued at the
//! pool's spot price and the run's TAO/BTC rate), and the metrics computed from it.

use serde::Serialize;

use crate::metagraph::Metagraph;
use crate::world::{AgentKind, ValidatorRole, World};

/// Slippage and fee on one sale of alpha.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sale {
    /// Swap fee, sats.
    pub fee_sats: f64,
    /// Price impact, sats.
    pub slippage_sats: f64,
}

/// One miner's account.
#[derive(Debug, Clone, Serialize)]
pub struct AgentAccount {
    /// Income per epoch, sats.
    pub income: Vec<f64>,
    /// Registered during each epoch.
    pub registered: Vec<bool>,
    /// Income from per-request payments (clients and validator challenges), sats.
    pub request_income: f64,
    /// Income from the epoch pool / emission, sats.
    pub epoch_income: f64,
    /// Client requests routed to it.
    pub requests: u64,
    /// The most client requests routed to it in one epoch.
    pub peak_requests_per_epoch: u64,
    /// Answered.
    pub delivered: u64,
    /// Σ quality over answered requests.
    pub useful: f64,
    /// Its compute cost for answered requests, sats.
    pub cost: f64,
    /// Lost selling alpha: fee, sats.
    pub fees: f64,
    /// Lost selling alpha: slippage, sats.
    pub slippage: f64,
    /// Capital burned (token) or bonded (Lightning) to enter, sats.
    pub entry_capital: f64,
    /// Of it, what comes back, sats.
    pub entry_returned: f64,
    /// The epoch it was deregistered, if it was.
    pub pruned_at: Option<usize>,
}

/// A design's books.
#[derive(Debug, Clone, Serialize)]
pub struct Ledger {
    /// `token` or `lightning`.
    pub design: &'static str,
    /// Per agent.
    pub agents: Vec<AgentAccount>,
    /// Per validator, per epoch: income, sats.
    pub validator_income: Vec<Vec<f64>>,
    /// Per validator: spent on paid challenges, sats (Lightning only).
    pub validator_challenge_spend: Vec<f64>,
    /// What clients paid, sats.
    pub client_spend_sats: f64,
    /// Held and refunded to clients (failed requests), sats.
    pub client_refunds_sats: f64,
    /// Requests that found no miner with capacity.
    pub dropped: u64,
    /// Value of the emission minted (token), at spot, sats.
    pub emission_value_sats: f64,
    /// Per epoch, per validator: stake value, sats (token only).
    pub validator_stake_value: Vec<Vec<f64>>,
    /// Per epoch: the miner slots' incentive (u16) after the epoch, by agent id (0 if absent).
    pub incentive_by_agent: Vec<Vec<u16>>,
    epochs: usize,
}

impl Ledger {
    /// Empty books for a world.
    pub fn new(world: &World, design: &'static str) -> Ledger {
        let epochs = world.epochs.len();
        Ledger {
            design,
            agents: world
                .agents
                .iter()
                .map(|_| AgentAccount {
                    income: vec![0.0; epochs],
                    registered: vec![false; epochs],
                    request_income: 0.0,
                    epoch_income: 0.0,
                    requests: 0,
                    peak_requests_per_epoch: 0,
                    delivered: 0,
                    useful: 0.0,
                    cost: 0.0,
                    fees: 0.0,
                    slippage: 0.0,
                    entry_capital: 0.0,
                    entry_returned: 0.0,
                    pruned_at: None,
                })
                .collect(),
            validator_income: vec![vec![0.0; epochs]; world.roles.len()],
            validator_challenge_spend: vec![0.0; world.roles.len()],
            client_spend_sats: 0.0,
            client_refunds_sats: 0.0,
            dropped: 0,
            emission_value_sats: 0.0,
            validator_stake_value: Vec::new(),
            incentive_by_agent: Vec::new(),
            epochs,
        }
    }

    /// Client requests routed to `agent`.
    pub fn client_request(
        &mut self,
        agent: usize,
        _e: usize,
        n: u64,
        delivered: u64,
        quality: f64,
        cost: f64,
    ) {
        let a = &mut self.agents[agent];
        a.requests += n;
        a.peak_requests_per_epoch = a.peak_requests_per_epoch.max(n);
        a.delivered += delivered;
        a.useful += delivered as f64 * quality;
        a.cost += delivered as f64 * cost;
    }

    /// Income to a miner.
    pub fn miner_income(
        &mut self,
        agent: usize,
        e: usize,
        sats: f64,
        sale: Sale,
        per_request: bool,
    ) {
        let a = &mut self.agents[agent];
        a.income[e] += sats;
        if per_request {
            a.request_income += sats;
        } else {
            a.epoch_income += sats;
        }
        a.fees += sale.fee_sats;
        a.slippage += sale.slippage_sats;
    }

    /// Income to a validator.
    pub fn validator_income(&mut self, v: usize, e: usize, sats: f64) {
        self.validator_income[v][e] += sats;
    }

    /// A miner's entry: capital burned or bonded, and what comes back.
    pub fn entry_capital(&mut self, agent: usize, capital: f64, returned: f64) {
        self.agents[agent].entry_capital += capital;
        self.agents[agent].entry_returned += returned;
    }

    /// A miner deregistered.
    pub fn pruned(&mut self, agent: usize, e: usize) {
        self.agents[agent].pruned_at = Some(e);
    }

    /// Marks who was registered and records the ranking.
    pub fn end_epoch(&mut self, mg: &Metagraph, e: usize) {
        let mut inc = vec![0u16; self.agents.len()];
        for (s, &agent) in mg.slots.iter().enumerate() {
            self.agents[agent].registered[e] = true;
            if let Some(out) = &mg.last {
                inc[agent] = out.incentive[mg.v + s];
            }
        }
        self.incentive_by_agent.push(inc);
    }

    /// Total miner income per epoch.
    pub fn miner_income_by_epoch(&self) -> Vec<f64> {
        (0..self.epochs)
            .map(|e| self.agents.iter().map(|a| a.income[e]).sum())
            .collect()
    }

    /// Sum of all miners' income.
    pub fn miner_income_total(&self) -> f64 {
        self.agents
            .iter()
            .map(|a| a.income.iter().sum::<f64>())
            .sum()
    }

    /// Computes the metrics.
    pub fn metrics(&self, world: &World, zero_demand_epochs: usize) -> DesignMetrics {
        let epochs = self.epochs;
        let miner_total = self.miner_income_total();
        let validator_total: f64 = self.validator_income.iter().flatten().sum();
        let income_of = |kind: AgentKind| -> f64 {
            world
                .agents
                .iter()
                .filter(|a| a.kind == kind)
                .map(|a| self.agents[a.id].income.iter().sum::<f64>())
                .sum()
        };
        // Income per registered epoch vs mean true quality while registered.
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for agent in &world.agents {
            let acc = &self.agents[agent.id];
            let reg: Vec<usize> = (0..epochs).filter(|&e| acc.registered[e]).collect();
            if reg.len() < 3 {
                continue;
            }
            let q = reg.iter().map(|&e| agent.quality_at(e)).sum::<f64>() / reg.len() as f64;
            let inc = reg.iter().map(|&e| acc.income[e]).sum::<f64>() / reg.len() as f64;
            xs.push(q);
            ys.push(inc);
        }
        let quality_income_correlation = pearson(&xs, &ys);
        let spearman = pearson(&ranks(&xs), &ranks(&ys));

        let stake_of = |role: ValidatorRole| -> f64 {
            world
                .roles
                .iter()
                .zip(&world.stake_share)
                .filter(|(r, _)| **r == role)
                .map(|(_, s)| s)
                .sum()
        };
        let income_of_role = |role: ValidatorRole, net: bool| -> f64 {
            world
                .roles
                .iter()
                .enumerate()
                .filter(|(_, r)| **r == role)
                .map(|(v, _)| {
                    self.validator_income[v].iter().sum::<f64>()
                        - if net {
                            self.validator_challenge_spend[v]
                        } else {
                            0.0
                        }
                })
                .sum()
        };
        let per_stake = |role: ValidatorRole, net: bool| -> f64 {
            let s = stake_of(role);
            if s > 0.0 {
                income_of_role(role, net) / s
            } else {
                0.0
            }
        };
        let honest_ps = per_stake(ValidatorRole::Honest, false);
        let copier_vs_honest = ratio(per_stake(ValidatorRole::Copier, false), honest_ps);
        let adversary_share = ratio(
            income_of(AgentKind::Bad) + income_of(AgentKind::Colluders),
            miner_total,
        );
        let colluder_validators_vs_stake = ratio(
            ratio(
                income_of_role(ValidatorRole::Colluder, false),
                validator_total,
            ),
            stake_of(ValidatorRole::Colluder),
        );

        // The bad miner: income after the switch vs the honest miners' mean, and time to punish.
        let bad = world.agents.iter().find(|a| a.kind == AgentKind::Bad);
        let (bad_vs_honest_after_switch, epochs_to_punish) =
            match bad.and_then(|b| b.switch_epoch.map(|s| (b, s))) {
                Some((b, s)) if s > 0 => {
                    let acc = &self.agents[b.id];
                    let honest: Vec<&AgentAccount> = world
                        .agents
                        .iter()
                        .filter(|a| a.kind == AgentKind::Honest && a.arrives == 0)
                        .map(|a| &self.agents[a.id])
                        .collect();
                    let honest_mean = |e: usize| -> f64 {
                        let v: Vec<f64> = honest
                            .iter()
                            .filter(|a| a.registered[e])
                            .map(|a| a.income[e])
                            .collect();
                        if v.is_empty() {
                            0.0
                        } else {
                            v.iter().sum::<f64>() / v.len() as f64
                        }
                    };
                    let after: f64 = (s..epochs).map(|e| acc.income[e]).sum();
                    let honest_after: f64 = (s..epochs).map(honest_mean).sum();
                    // Punished: its income in an epoch falls below half an honest miner's mean.
                    let punished = (s..epochs)
                        .find(|&e| acc.income[e] < 0.5 * honest_mean(e) || !acc.registered[e]);
                    (ratio(after, honest_after), punished.map(|e| e - s))
                }
                _ => (0.0, None),
            };

        // Income variance: coefficient of variation of per-epoch income during the demand phase,
        // median over honest miners present the whole run.
        let mut cvs: Vec<f64> = world
            .agents
            .iter()
            .filter(|a| a.kind == AgentKind::Honest && a.arrives == 0)
            .map(|a| &self.agents[a.id])
            .filter(|acc| acc.registered.iter().all(|&r| r))
            .map(|acc| cv(&acc.income[zero_demand_epochs.min(epochs)..]))
            .filter(|c| c.is_finite())
            .collect();
        cvs.sort_by(f64::total_cmp);
        let income_cv_median = cvs.get(cvs.len() / 2).copied().unwrap_or(0.0);

        let zero_phase: f64 = (0..zero_demand_epochs.min(epochs))
            .map(|e| self.agents.iter().map(|a| a.income[e]).sum::<f64>())
            .sum();
        let useful: f64 = self.agents.iter().map(|a| a.useful).sum();
        let delivered: u64 = self.agents.iter().map(|a| a.delivered).sum();
        let fees: f64 = self.agents.iter().map(|a| a.fees).sum();
        let slippage: f64 = self.agents.iter().map(|a| a.slippage).sum();
        let request_income: f64 = self.agents.iter().map(|a| a.request_income).sum();
        let entrants: Vec<&AgentAccount> = world
            .agents
            .iter()
            .filter(|a| a.arrives > 0)
            .map(|a| &self.agents[a.id])
            .collect();
        let mean_entry = if entrants.is_empty() {
            0.0
        } else {
            entrants.iter().map(|a| a.entry_capital).sum::<f64>() / entrants.len() as f64
        };
        let mean_returned = if entrants.is_empty() {
            0.0
        } else {
            entrants.iter().map(|a| a.entry_returned).sum::<f64>() / entrants.len() as f64
        };
        let pruned = self.agents.iter().filter(|a| a.pruned_at.is_some()).count();
        let bad_pruned_after = bad.and_then(|b| {
            let s = b.switch_epoch?;
            self.agents[b.id].pruned_at.map(|p| p.saturating_sub(s))
        });
        DesignMetrics {
            miner_income_sats: miner_total,
            validator_income_sats: validator_total,
            miner_income_from_requests_share: ratio(request_income, miner_total),
            client_to_miners_share: 0.0,
            miner_income_zero_demand_sats: zero_phase,
            client_spend_sats: self.client_spend_sats,
            client_refunds_sats: self.client_refunds_sats,
            delivered_requests: delivered,
            dropped_requests: self.dropped,
            useful_units: useful,
            client_sats_per_useful_unit: ratio(self.client_spend_sats, useful),
            all_in_sats_per_useful_unit: ratio(
                self.client_spend_sats + self.emission_value_sats,
                useful,
            ),
            emission_value_sats: self.emission_value_sats,
            quality_income_pearson: quality_income_correlation,
            quality_income_spearman: spearman,
            adversary_reward_share: adversary_share,
            copier_per_stake_vs_honest: copier_vs_honest,
            copier_net_per_pct_stake_sats: per_stake(ValidatorRole::Copier, true) / 100.0,
            honest_net_per_pct_stake_sats: per_stake(ValidatorRole::Honest, true) / 100.0,
            colluder_validators_income_vs_stake: colluder_validators_vs_stake,
            colluder_miner_income_share: ratio(income_of(AgentKind::Colluders), miner_total),
            bad_miner_income_vs_honest_after_switch: bad_vs_honest_after_switch,
            epochs_to_punish_bad_miner: epochs_to_punish,
            epochs_to_deregister_bad_miner: bad_pruned_after,
            income_cv_median,
            miner_sale_fees_sats: fees,
            miner_sale_slippage_sats: slippage,
            validator_challenge_spend_sats: self.validator_challenge_spend.iter().sum(),
            entry_capital_mean_sats: mean_entry,
            entry_returned_mean_sats: mean_returned,
            miners_deregistered: pruned,
        }
    }
}

/// The figures the report compares, per design.
#[derive(Debug, Clone, Serialize)]
pub struct DesignMetrics {
    /// Paid to miners over the run, sats.
    pub miner_income_sats: f64,
    /// Paid to validators, sats (token: dividends valued at spot when staked).
    pub validator_income_sats: f64,
    /// Share of miner income paid per request (the rest from the epoch pool or emission).
    pub miner_income_from_requests_share: f64,
    /// Extra miner income per client sat: (miner income − miner income of the same run without
    /// clients) / client spend.
    pub client_to_miners_share: f64,
    /// Miner income while clients paid nothing (the first `zero_demand_epochs`), sats.
    pub miner_income_zero_demand_sats: f64,
    /// Client spend, sats.
    pub client_spend_sats: f64,
    /// Held and refunded for failed requests, sats.
    pub client_refunds_sats: f64,
    /// Client requests answered.
    pub delivered_requests: u64,
    /// Client requests no miner had capacity for.
    pub dropped_requests: u64,
    /// Σ true quality over answered client requests.
    pub useful_units: f64,
    /// Client spend / useful units.
    pub client_sats_per_useful_unit: f64,
    /// (client spend + emission minted, at spot) / useful units.
    pub all_in_sats_per_useful_unit: f64,
    /// Emission minted, at spot, sats (token).
    pub emission_value_sats: f64,
    /// Pearson correlation of a miner's income per registered epoch with its true quality.
    pub quality_income_pearson: f64,
    /// Spearman (rank) correlation of the same.
    pub quality_income_spearman: f64,
    /// Share of miner income to the adversarial miners (the bad miner, the colluders' miner).
    pub adversary_reward_share: f64,
    /// Copier's income per unit of stake / an honest validator's.
    pub copier_per_stake_vs_honest: f64,
    /// Copier's income net of challenge spend per 1 % of validator stake, sats (it sends none).
    pub copier_net_per_pct_stake_sats: f64,
    /// Honest validators' income net of challenge spend per 1 % of validator stake, sats.
    pub honest_net_per_pct_stake_sats: f64,
    /// Colluding validators' share of validator income / their share of stake.
    pub colluder_validators_income_vs_stake: f64,
    /// Colluders' miner's share of miner income.
    pub colluder_miner_income_share: f64,
    /// Bad miner's income after its switch / an honest miner's mean over the same epochs.
    pub bad_miner_income_vs_honest_after_switch: f64,
    /// Epochs from the switch until its income falls below half an honest miner's.
    pub epochs_to_punish_bad_miner: Option<usize>,
    /// Epochs from the switch until it is deregistered.
    pub epochs_to_deregister_bad_miner: Option<usize>,
    /// Median coefficient of variation of honest miners' per-epoch income once clients pay.
    pub income_cv_median: f64,
    /// Swap fees miners paid selling alpha, sats.
    pub miner_sale_fees_sats: f64,
    /// Slippage miners lost selling alpha, sats.
    pub miner_sale_slippage_sats: f64,
    /// Validators' spend on paid challenges, sats.
    pub validator_challenge_spend_sats: f64,
    /// Mean capital a new miner burned (token) or bonded (Lightning), sats.
    pub entry_capital_mean_sats: f64,
    /// Mean of it that comes back, sats.
    pub entry_returned_mean_sats: f64,
    /// Miners deregistered over the run.
    pub miners_deregistered: usize,
}

/// a / b, 0 when b is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return 0.0;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx).powi(2);
        syy += (y[i] - my).powi(2);
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    for (rank, &i) in idx.iter().enumerate() {
        r[i] = rank as f64;
    }
    r
}

fn cv(x: &[f64]) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    let m = x.iter().sum::<f64>() / x.len() as f64;
    if m == 0.0 {
        return f64::NAN;
    }
    let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64;
    var.sqrt() / m
}
