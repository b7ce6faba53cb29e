//! The demand sweep: both designs over a range of client demand, each point run on many seeds (many
//! worlds), so every figure comes with its uncertainty instead of one lucky draw.
//!
//! For each demand and seed the world is drawn afresh (miners, validators, scores, demand noise) and both
//! designs run on it, exactly as the default run does (without its collusion sweep, copier comparison and
//! revenue variant, which the default run reports). Each metric is reported as the mean over the seeds with a 95 %
//! confidence interval of that mean (Student's t, n − 1 degrees of freedom), and the 2.5–97.5 % range of
//! the seeds' values is kept in the JSON.

use serde::{Deserialize, Serialize};

use crate::{ledger, run, Config};

/// The sweep's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SweepConfig {
    /// Client demand at full ramp, requests/s, one point each.
    pub demand_rps: Vec<f64>,
    /// Seeds per point (`seed`, `seed + 1`, … of the base config).
    pub seeds: u64,
}

impl Default for SweepConfig {
    /// 0.4 to 400 requests/s, a factor √10 apart; 30 seeds.
    fn default() -> Self {
        SweepConfig {
            demand_rps: vec![0.4, 1.26, 4.0, 12.6, 40.0, 126.0, 400.0],
            seeds: 30,
        }
    }
}

/// A mean with its 95 % confidence interval, and the spread of the values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Mean over the seeds.
    pub mean: f64,
    /// 95 % confidence interval of the mean, low end.
    pub lo: f64,
    /// Its high end.
    pub hi: f64,
    /// 2.5 % quantile of the seeds' values.
    pub p2_5: f64,
    /// 97.5 % quantile.
    pub p97_5: f64,
}

impl Interval {
    /// Of `values` (at least one).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return Interval::default();
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let half = if n > 1 {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            t975(n - 1) * (var / n as f64).sqrt()
        } else {
            0.0
        };
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let i = p * (n - 1) as f64;
            let (a, b) = (i.floor() as usize, i.ceil() as usize);
            sorted[a] + (sorted[b] - sorted[a]) * (i - a as f64)
        };
        Interval {
            mean,
            lo: mean - half,
            hi: mean + half,
            p2_5: q(0.025),
            p97_5: q(0.975),
        }
    }
}

/// Student's t, 97.5 % quantile, for `df` degrees of freedom (table to 30, then the normal's 1.96 with
/// the usual correction).
fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        _ => 1.96 + 2.4 / df as f64,
    }
}

/// One demand level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Client demand at full ramp, requests/s.
    pub demand_rps: f64,
    /// Lightning miners' income over the run / token miners' (sats; alpha valued at its sale).
    pub miner_income_ratio: Interval,
    /// Client spend per useful unit, token design, sats.
    pub token_client_per_useful: Interval,
    /// The same, Lightning.
    pub lightning_client_per_useful: Interval,
    /// Client spend + emission minted (at spot) per useful unit, token design, sats.
    pub token_all_in_per_useful: Interval,
    /// The same, Lightning (no emission: = client spend).
    pub lightning_all_in_per_useful: Interval,
    /// Honest validators' income net of paid challenges and capital cost per 1 % of stake, token, sats.
    pub token_validator_net: Interval,
    /// The same, Lightning.
    pub lightning_validator_net: Interval,
    /// Share of miners present the whole run whose income fell below their costs over a window once
    /// clients pay, token.
    pub token_miners_below_cost: Interval,
    /// The same, Lightning.
    pub lightning_miners_below_cost: Interval,
    /// Median coefficient of variation of honest miners' per-epoch income, token.
    pub token_income_cv: Interval,
    /// The same, Lightning.
    pub lightning_income_cv: Interval,
    /// Client requests dropped for lack of capacity / requested (Lightning; the token design routes the same).
    pub dropped_share: Interval,
    /// The busiest Lightning miner's peak, client requests/s.
    pub peak_rps_one_miner: Interval,
    /// Channels it needs at its peak when each paid request holds its HTLC 60 s (a long chat).
    pub channels_needed_60s: Interval,
    /// Time from work to spendable value, p50, seconds, token.
    pub token_spendable_p50_s: Interval,
    /// The same, Lightning.
    pub lightning_spendable_p50_s: Interval,
    /// Extra miner income per client sat, token.
    pub token_client_to_miners: Interval,
    /// The same, Lightning.
    pub lightning_client_to_miners: Interval,
    /// Miner income before any client pays, sats, token.
    pub token_zero_demand_income: Interval,
    /// The same, Lightning.
    pub lightning_zero_demand_income: Interval,
    /// The bad miner's income after its switch / an honest miner's, token.
    pub token_bad_miner_vs_honest: Interval,
    /// The same, Lightning.
    pub lightning_bad_miner_vs_honest: Interval,
    /// The weight copier's gross income per stake / an honest validator's, token.
    pub token_copier_vs_honest: Interval,
    /// The same, Lightning.
    pub lightning_copier_vs_honest: Interval,
    /// Correlation of miner income with true quality (Spearman), token.
    pub token_quality_spearman: Interval,
    /// The same, Lightning.
    pub lightning_quality_spearman: Interval,
    /// Client sats refunded / client sats held (Lightning; the token design refunds nothing).
    pub lightning_refunded_share: Interval,
    /// Emission minted, at spot, sats (token; the Lightning design mints none).
    pub token_emission_sats: Interval,
}

/// The sweep's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepReport {
    /// Its shape.
    pub sweep: SweepConfig,
    /// One point per demand level.
    pub points: Vec<SweepPoint>,
    /// HTLC slots per channel (measured, `bench lightning`).
    pub htlc_slots: f64,
}

/// Runs the sweep from `base` (its seed is the first seed).
pub fn sweep(base: &Config, shape: &SweepConfig) -> SweepReport {
    let points = shape
        .demand_rps
        .iter()
        .map(|&demand| {
            let runs: Vec<crate::Report> = (0..shape.seeds.max(1))
                .map(|i| {
                    run(&Config {
                        seed: base.seed.wrapping_add(i),
                        demand_rps: demand,
                        collusion_sweep: Vec::new(),
                        copier_comparison: false,
                        revenue_variant: false,
                        ..base.clone()
                    })
                })
                .collect();
            let of = |f: &dyn Fn(&crate::Report) -> f64| {
                Interval::of(&runs.iter().map(f).collect::<Vec<_>>())
            };
            SweepPoint {
                demand_rps: demand,
                miner_income_ratio: of(&|r| {
                    crate::ledger::ratio(r.lightning.miner_income_sats, r.token.miner_income_sats)
                }),
                token_client_per_useful: of(&|r| r.token.client_sats_per_useful_unit),
                lightning_client_per_useful: of(&|r| r.lightning.client_sats_per_useful_unit),
                token_all_in_per_useful: of(&|r| r.token.all_in_sats_per_useful_unit),
                lightning_all_in_per_useful: of(&|r| r.lightning.all_in_sats_per_useful_unit),
                token_validator_net: of(&|r| r.token_costs.honest_net_after_capital_per_pct_sats),
                lightning_validator_net: of(&|r| {
                    r.lightning_costs.honest_net_after_capital_per_pct_sats
                }),
                token_miners_below_cost: of(&|r| {
                    ledger::ratio(
                        r.token_costs.miners_below_cost_once_paying as f64,
                        r.token_costs.miners_counted as f64,
                    )
                }),
                lightning_miners_below_cost: of(&|r| {
                    ledger::ratio(
                        r.lightning_costs.miners_below_cost_once_paying as f64,
                        r.lightning_costs.miners_counted as f64,
                    )
                }),
                token_income_cv: of(&|r| r.token.income_cv_median),
                lightning_income_cv: of(&|r| r.lightning.income_cv_median),
                token_spendable_p50_s: of(&|r| r.token_spendable.p50_s),
                lightning_spendable_p50_s: of(&|r| r.lightning_spendable.p50_s),
                token_client_to_miners: of(&|r| r.token.client_to_miners_share),
                lightning_client_to_miners: of(&|r| r.lightning.client_to_miners_share),
                token_zero_demand_income: of(&|r| r.token.miner_income_zero_demand_sats),
                lightning_zero_demand_income: of(&|r| r.lightning.miner_income_zero_demand_sats),
                token_bad_miner_vs_honest: of(&|r| r.token.bad_miner_income_vs_honest_after_switch),
                lightning_bad_miner_vs_honest: of(&|r| {
                    r.lightning.bad_miner_income_vs_honest_after_switch
                }),
                token_copier_vs_honest: of(&|r| r.token.copier_per_stake_vs_honest),
                lightning_copier_vs_honest: of(&|r| r.lightning.copier_per_stake_vs_honest),
                token_quality_spearman: of(&|r| r.token.quality_income_spearman),
                lightning_quality_spearman: of(&|r| r.lightning.quality_income_spearman),
                lightning_refunded_share: of(&|r| {
                    let l = &r.lightning;
                    crate::ledger::ratio(
                        l.client_refunds_sats,
                        l.client_spend_sats + l.client_refunds_sats,
                    )
                }),
                token_emission_sats: of(&|r| r.token.emission_value_sats),
                peak_rps_one_miner: of(&|r| r.peak_rps_one_miner),
                channels_needed_60s: of(&|r| r.slots.last().map_or(0.0, |s| s.channels_needed)),
                dropped_share: of(&|r| {
                    let l = &r.lightning;
                    crate::ledger::ratio(
                        l.dropped_requests as f64,
                        (l.delivered_requests + l.dropped_requests) as f64,
                    )
                }),
            }
        })
        .collect();
    SweepReport {
        sweep: shape.clone(),
        points,
        htlc_slots: base.channels.htlc_slots,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        let i = Interval::of(&[1.0, 2.0, 3.0]);
        assert_eq!(i.mean, 2.0);
        // sd 1, n 3: half-width 4.303 / √3.
        assert!((i.hi - 2.0 - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!((i.p2_5, i.p97_5), (1.05, 2.95));
        assert_eq!(Interval::of(&[5.0]).lo, 5.0);
    }
}
