//! What running each design costs its participants beyond what the ledgers pay: the capital validators
//! tie up (bonded sats, or alpha stake), the servers miners rent (and who would quit when income stays
//! below that), and in the Lightning design the inbound channel capital a miner needs to be paid.

use serde::Serialize;

use crate::ledger::{ratio, Ledger};
use crate::world::{ValidatorRole, World, EPOCH_SECS};
use crate::Config;

/// Seconds in a year.
const YEAR_SECS: f64 = 365.25 * 86_400.0;

/// One design's costs.
#[derive(Debug, Clone, Serialize)]
pub struct DesignCosts {
    /// The time value of the validators' capital over the run (`capital_cost_per_year` on the bonds, or
    /// on the stake's mean value), all validators, sats.
    pub validator_capital_cost_sats: f64,
    /// Honest validators' income − paid challenges − capital cost, per 1 % of stake, sats.
    pub honest_net_after_capital_per_pct_sats: f64,
    /// Miners present the whole run whose income fell below their costs (server + answers) over some
    /// window of `quit_window_epochs`: they would have quit.
    pub miners_below_cost: usize,
    /// Miners present the whole run.
    pub miners_counted: usize,
    /// Of them, those whose income fell below costs over a window starting once clients pay (at
    /// `zero_demand_epochs`).
    pub miners_below_cost_once_paying: usize,
    /// The first epoch such a window ends, median over the miners who would quit.
    pub quit_epoch_median: Option<usize>,
    /// Lightning: the inbound capacity a miner needs to receive a window's income before it sweeps,
    /// median over miners present the whole run, sats (0 for the token design).
    pub channel_capital_per_miner_p50_sats: f64,
    /// The largest of them, sats.
    pub channel_capital_per_miner_max_sats: f64,
    /// The coordinators' inbound capital to every miner present the whole run, sats.
    pub channel_capital_total_sats: f64,
    /// Its time value over the run / miner income.
    pub channel_capital_cost_share_of_miner_income: f64,
}

/// The run's length in years.
pub fn run_years(config: &Config) -> f64 {
    config.epochs as f64 * EPOCH_SECS / YEAR_SECS
}

/// Costs of one design's run. `stake_value_sats[v]`: validator v's capital, sats (bond, or mean stake
/// value); `channels`: whether miners are paid over channels (the Lightning design).
pub fn of(
    config: &Config,
    world: &World,
    ledger: &Ledger,
    stake_value_sats: &[f64],
    channels: bool,
) -> DesignCosts {
    let years = run_years(config);
    let capital: Vec<f64> = stake_value_sats
        .iter()
        .map(|s| s * config.capital_cost_per_year * years)
        .collect();
    let (mut honest_net, mut honest_stake) = (0.0, 0.0);
    for (v, role) in world.roles.iter().enumerate() {
        if *role == ValidatorRole::Honest {
            honest_net += ledger.validator_income[v].iter().sum::<f64>()
                - ledger.validator_challenge_spend[v]
                - capital[v];
            honest_stake += world.stake_share[v];
        }
    }
    let window = config.quit_window_epochs.max(1);
    let mut quit_epochs = Vec::new();
    let mut quit_once_paying = 0;
    let mut counted = 0;
    let mut inbound = Vec::new();
    for acc in &ledger.agents {
        if !acc.registered.iter().all(|&r| r) {
            continue;
        }
        counted += 1;
        // The answers' cost, spread evenly over the run (the ledger keeps it as a total).
        let answer_cost_per_epoch = acc.cost / acc.income.len().max(1) as f64;
        let cost =
            (config.miner_server_cost_sats_per_epoch + answer_cost_per_epoch) * window as f64;
        let sums: Vec<f64> = acc.income.windows(window).map(|w| w.iter().sum()).collect();
        if let Some(i) = sums.iter().position(|&s| s < cost) {
            quit_epochs.push(i + window - 1);
        }
        if sums
            .iter()
            .skip(config.zero_demand_epochs)
            .any(|&s| s < cost)
        {
            quit_once_paying += 1;
        }
        inbound.push(sums.iter().copied().fold(0.0, f64::max));
    }
    quit_epochs.sort_unstable();
    inbound.sort_by(f64::total_cmp);
    let (p50, max, total) = if channels && !inbound.is_empty() {
        (
            inbound[inbound.len() / 2],
            inbound[inbound.len() - 1],
            inbound.iter().sum::<f64>(),
        )
    } else {
        (0.0, 0.0, 0.0)
    };
    DesignCosts {
        validator_capital_cost_sats: capital.iter().sum(),
        honest_net_after_capital_per_pct_sats: ratio(honest_net, honest_stake) / 100.0,
        miners_below_cost: quit_epochs.len(),
        miners_below_cost_once_paying: quit_once_paying,
        miners_counted: counted,
        quit_epoch_median: quit_epochs.get(quit_epochs.len() / 2).copied(),
        channel_capital_per_miner_p50_sats: p50,
        channel_capital_per_miner_max_sats: max,
        channel_capital_total_sats: total,
        channel_capital_cost_share_of_miner_income: ratio(
            total * config.capital_cost_per_year * years,
            ledger.miner_income_total(),
        ),
    }
}
