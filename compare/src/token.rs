//! The token design as Bittensor runs it (opentensor/subtensor at the commit docs/benchmarks.md
//! names): alpha emission every block split 18 % owner / 41 % miners / 41 % validators less the root
//! proportion of the validators' half, TAO emission shared by the subnets' moving prices (less what
//! owners burn of miner emission), TAO injected up to the root-proportion cap and the excess spent on
//! chain buys, a Yuma epoch every tempo, miners selling their alpha through the subnet pool,
//! registration by burn.

use serde::Serialize;

use crate::ledger::{Ledger, Sale};
use crate::metagraph::{route, Metagraph};
use crate::world::{World, EPOCH_SECS, TEMPO};
use crate::Config;

/// Rao per alpha or TAO.
pub const RAO: f64 = 1e9;
/// `SubtensorInitialSubnetOwnerCut` = 11796/65535 ≈ 18 % (`runtime/src/lib.rs`).
pub const OWNER_CUT: f64 = 11_796.0 / 65_535.0;
/// Swap fee, `DefaultFeeRate` = 33/65535 ≈ 0.05 % (`pallets/swap/src/pallet/mod.rs`).
pub const SWAP_FEE: f64 = 33.0 / 65_535.0;
/// `DefaultBurnHalfLife` (blocks), `pallets/subtensor/src/lib.rs`.
pub const BURN_HALF_LIFE: f64 = 360.0;
/// `DefaultBurnIncreaseMult`.
pub const BURN_INCREASE_MULT: f64 = 1.26;
/// `SubtensorInitialMinBurn`, TAO.
pub const MIN_BURN: f64 = 0.0005;
/// `SubtensorInitialMaxBurn`, TAO.
pub const MAX_BURN: f64 = 100.0;
/// `DefaultMovingAlpha` (`pallets/subtensor/src/lib.rs`): the moving price's per-block weight.
pub const MOVING_ALPHA: f64 = 0.000_003;
/// `InitialEmaPriceHalvingPeriod` (`runtime/src/lib.rs`), blocks.
pub const EMA_PRICE_HALVING: f64 = 201_600.0;

/// The moving price's weight at block `b` since `start_call` (`update_moving_price`).
fn moving_alpha(b: f64) -> f64 {
    MOVING_ALPHA * b / (b + EMA_PRICE_HALVING)
}

/// The moving price after `age` blocks of a constant spot `price`, from 0: 1 − Π(1 − αᵦ) ≈
/// 1 − exp(−Σ αᵦ), with Σ b/(b + h) = age − h·ln((age + h)/h) (the sum as an integral).
fn moving_price_after(age: f64, price: f64) -> f64 {
    if age <= 0.0 {
        return 0.0;
    }
    let h = EMA_PRICE_HALVING;
    let sum = MOVING_ALPHA * (age - h * ((age + h) / h).ln());
    price.min(1.0) * (1.0 - (-sum).exp())
}

/// The subnet pool: constant product (subtensor's balancer pool with both weights at ½, which
/// proportional protocol injections keep), fee taken from the input.
#[derive(Debug, Clone, Serialize)]
pub struct Pool {
    /// TAO reserve.
    pub tao: f64,
    /// Alpha reserve.
    pub alpha: f64,
}

impl Pool {
    /// TAO per alpha.
    pub fn price(&self) -> f64 {
        self.tao / self.alpha
    }
    /// Sells `alpha`; returns (TAO out, fee in TAO at spot, slippage in TAO).
    pub fn sell(&mut self, alpha: f64) -> (f64, f64, f64) {
        if alpha <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let spot = alpha * self.price();
        let net = alpha * (1.0 - SWAP_FEE);
        let out = self.tao * net / (self.alpha + net);
        self.alpha += alpha;
        self.tao -= out;
        let fee = spot * SWAP_FEE;
        (out, fee, spot - fee - out)
    }
    /// Buys alpha with `tao`; returns alpha out.
    pub fn buy(&mut self, tao: f64) -> f64 {
        if tao <= 0.0 {
            return 0.0;
        }
        let net = tao * (1.0 - SWAP_FEE);
        let out = self.alpha * net / (self.tao + net);
        self.tao += tao;
        self.alpha -= out;
        out
    }
}

/// Alpha and TAO accounting over the run (the conservation the tests check).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TokenAccounts {
    /// Alpha minted as `alpha_out` (emission), total.
    pub alpha_minted: f64,
    /// To the owner (18 %).
    pub alpha_to_owner: f64,
    /// To root stakers (the root proportion of the validators' half): sold into the pool when root sells,
    /// recycled otherwise.
    pub alpha_to_root: f64,
    /// Miner incentive the owner directed to its own hotkey, burned.
    pub alpha_burned_by_owner: f64,
    /// To miners by incentive.
    pub alpha_to_miners: f64,
    /// To validators by dividends.
    pub alpha_to_validators: f64,
    /// Pending miner alpha not paid (rounding, or epochs without incentive where it went to
    /// validators — counted there).
    pub alpha_unallocated: f64,
    /// TAO injected into the pool by the protocol (`tao_in`).
    pub tao_injected: f64,
    /// TAO emission above the alpha-injection cap, spent buying alpha for the protocol (`excess_tao`).
    pub tao_excess_buys: f64,
    /// TAO paid to root stakers for the root alpha they sold.
    pub tao_to_root: f64,
    /// The subnet's share of TAO emission: at the start and the end.
    pub emission_share_start: f64,
    /// At the end.
    pub emission_share_end: f64,
    /// Root proportion at the start and the end.
    pub root_proportion_start: f64,
    /// At the end.
    pub root_proportion_end: f64,
    /// TAO paid in registration burns (swapped for alpha that is burned).
    pub tao_burned_for_registration: f64,
    /// TAO from client revenue used to buy back alpha.
    pub tao_buybacks: f64,
    /// TAO paid out to sellers.
    pub tao_sold_out: f64,
    /// Pool TAO at the start and end.
    pub pool_tao_start: f64,
    /// Pool TAO at the end.
    pub pool_tao_end: f64,
    /// Spot price at the start, TAO/alpha.
    pub price_start: f64,
    /// Spot price at the end.
    pub price_end: f64,
}

/// Per-epoch series for plots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TokenSeries {
    /// Alpha spot price at epoch end, TAO.
    pub price: Vec<f64>,
    /// Registration burn at epoch end, TAO.
    pub burn: Vec<f64>,
}

/// Runs the token design over the world.
pub fn run(config: &Config, world: &World) -> (Ledger, TokenAccounts, TokenSeries) {
    let m = config.miners.max(3);
    let mut mg = Metagraph::new(world, m, config.commit_reveal);
    let mut ledger = Ledger::new(world, "token");
    let mut acc = TokenAccounts::default();
    let mut series = TokenSeries::default();
    let mut pool = Pool {
        tao: config.pool_tao,
        alpha: config.pool_tao / config.alpha_price,
    };
    acc.pool_tao_start = pool.tao;
    acc.price_start = pool.price();
    let total_stake_alpha = config.validator_stake_tao / config.alpha_price;
    let mut stake: Vec<f64> = world
        .stake_share
        .iter()
        .map(|s| s * total_stake_alpha)
        .collect();
    let mut burn = 0.1; // `SubtensorInitialBurn`, TAO
                        // Alpha issuance (`SubnetAlphaIn` + `SubnetAlphaOut`): the pool's reserve and the validators' stake.
    let mut issuance = pool.alpha + total_stake_alpha;
    let mut moving = moving_price_after(config.subnet_age_blocks, pool.price());
    // `MinerBurned`: the share of last tempo's miner incentive withheld by the owner.
    let mut miner_burned = 0.0;
    let root_tao_weight = config.root_tao * config.tao_weight;
    let root_proportion = |issuance: f64| root_tao_weight / (root_tao_weight + issuance);
    let share = |moving: f64, burned: f64| {
        let w = moving * (1.0 - burned);
        if w + config.other_subnets_moving_price > 0.0 {
            w / (w + config.other_subnets_moving_price)
        } else {
            0.0
        }
    };
    acc.emission_share_start = share(moving, miner_burned);
    acc.root_proportion_start = root_proportion(issuance);
    let decay = 0.5f64.powf(1.0 / BURN_HALF_LIFE);
    let capacity = (config.miner_capacity_rps * EPOCH_SECS) as u64;
    for (e, draws) in world.epochs.iter().enumerate() {
        // TAO's price in sats this epoch (constant within it).
        let sats = world.sats_per_tao[e];
        let first = e as u64 * TEMPO + 1;
        let last = (e as u64 + 1) * TEMPO;
        // Clients, served through the validators' API by the ranking; revenue in sats.
        let (routed, dropped) = route(draws.requests, &mg.routing_weights(), capacity);
        let mut client_sats = 0.0;
        let mut shared_sats = 0.0;
        for (s, n) in routed.iter().enumerate() {
            let agent = &world.agents[mg.slots[s]];
            let delivered = (*n as f64 * agent.availability).round();
            client_sats += delivered * config.price_sats;
            // The variant with per-request revenue: the serving miner gets its share at once.
            let share = delivered * config.price_sats * config.token_revenue_share;
            if share > 0.0 {
                shared_sats += share;
                ledger.miner_income(mg.slots[s], e, share, Sale::default(), true);
            }
            ledger.client_request(
                mg.slots[s],
                e,
                *n,
                delivered as u64,
                agent.quality_at(e),
                agent.cost_sats,
            );
        }
        ledger.dropped += dropped;
        ledger.client_spend_sats += client_sats;
        let buyback_per_block =
            (client_sats - shared_sats) * config.token_buyback_share / sats / TEMPO as f64;
        let (mut pend_server, mut pend_validator, mut pend_root) = (0.0, 0.0, 0.0);
        for block in first..=last {
            if block > 1 {
                burn = (burn * decay).clamp(MIN_BURN, MAX_BURN);
            }
            // `get_subnet_block_emissions`: the subnet's share of TAO emission follows its moving
            // price × (1 − MinerBurned) against the rest of the network (`get_shares`).
            let tao_emission = config.tao_block_emission * share(moving, miner_burned);
            // `get_subnet_terms`: alpha_in = tao / price, capped at the root proportion of the alpha
            // emission; the TAO above the cap buys alpha for the protocol (`inject_and_maybe_swap`).
            let out = config.alpha_per_block;
            let rp = root_proportion(issuance);
            let mut alpha_in = tao_emission / pool.price();
            let mut tao_in = tao_emission;
            if alpha_in > rp * out {
                alpha_in = rp * out;
                tao_in = alpha_in * pool.price();
            }
            pool.tao += tao_in;
            pool.alpha += alpha_in;
            issuance += alpha_in;
            acc.tao_injected += tao_in;
            let excess = tao_emission - tao_in;
            if excess > 0.0 {
                pool.buy(excess); // the protocol's alpha: issued, held, not staked
                acc.tao_excess_buys += excess;
            }
            // `emit_to_subnets`: alpha_out, the owner cut, then root alpha out of the validators' half.
            acc.alpha_minted += out;
            issuance += out;
            let owner = out * OWNER_CUT;
            acc.alpha_to_owner += owner;
            let rest = out - owner;
            let root = rp * rest * 0.5;
            pend_server += rest * 0.5;
            pend_validator += rest - rest * 0.5 - root;
            pend_root += root;
            // `update_moving_price`, after the emission.
            let b = config.subnet_age_blocks + block as f64;
            let a = moving_alpha(b);
            moving = a * pool.price().min(1.0) + (1.0 - a) * moving;
            if buyback_per_block > 0.0 {
                issuance -= pool.buy(buyback_per_block); // bought back and burned
                acc.tao_buybacks += buyback_per_block;
            }
            if block == first + 1 {
                if let Some(agent) = draws.entrant {
                    // burned_register: the burn is swapped for alpha, which is burned; then the
                    // price rises by `BurnIncreaseMult`.
                    issuance -= pool.buy(burn);
                    acc.tao_burned_for_registration += burn;
                    ledger.entry_capital(agent, burn * sats, 0.0);
                    let slot = mg.slot_to_prune(block).unwrap_or(0);
                    ledger.pruned(mg.slots[slot], e);
                    mg.register(slot, agent, block);
                    burn = (burn * BURN_INCREASE_MULT).clamp(MIN_BURN, MAX_BURN);
                }
            }
        }
        // Root alpha: root stakers sell it when the network's moving prices sum above 1
        // (`get_network_root_sell_flag`); otherwise it is recycled.
        acc.alpha_to_root += pend_root;
        let root_sells = moving + config.other_subnets_moving_price > 1.0;
        if root_sells {
            let (tao, _, _) = pool.sell(pend_root);
            acc.tao_to_root += tao;
        } else {
            issuance -= pend_root;
        }
        // The epoch: Yuma on alpha stake, emission = pending server + validator (+ root, when it is
        // sold) alpha (`distribute_emission`): miners' incentive is half of it, the pending server alpha.
        let weights = mg.weights(world, draws);
        let stake_rao: Vec<u64> = stake.iter().map(|s| (s * RAO) as u64).collect();
        let epoch_alpha = pend_server + pend_validator + if root_sells { pend_root } else { 0.0 };
        let emission_rao = (epoch_alpha * RAO) as u64;
        let out = mg.step(last, &stake_rao, weights, emission_rao);
        let incentive_sum: u64 = out.incentive.iter().map(|&i| u64::from(i)).sum();
        let validator_alpha = if incentive_sum > 0 {
            pend_validator
        } else {
            pend_validator + pend_server
        };
        let vsum: u64 = out.validator_emission[..mg.v].iter().sum();
        let mut paid_validators = 0.0;
        for (vi, s) in stake.iter_mut().enumerate() {
            let share = if vsum > 0 {
                out.validator_emission[vi] as f64 / vsum as f64
            } else {
                0.0
            };
            let a = validator_alpha * share;
            *s += a; // dividends are staked to the validator's hotkey
            paid_validators += a;
            ledger.validator_income(vi, e, a * pool.price() * sats);
        }
        acc.alpha_to_validators += paid_validators;
        let mut paid_miners = 0.0;
        let mut burned_by_owner = 0.0;
        if incentive_sum > 0 {
            for s in 0..mg.slots.len() {
                let mut a = out.server_emission[mg.v + s] as f64 / RAO;
                // The owner's burn UID takes its share of the incentive; subtensor burns it.
                let withheld = a * config.owner_burn_share;
                burned_by_owner += withheld;
                a -= withheld;
                paid_miners += a;
                // Miners sell their alpha for TAO at once (they pay their costs in money).
                let (tao, fee, slip) = pool.sell(a);
                acc.tao_sold_out += tao;
                ledger.miner_income(
                    mg.slots[s],
                    e,
                    tao * sats,
                    Sale {
                        fee_sats: fee * sats,
                        slippage_sats: slip * sats,
                    },
                    false,
                );
            }
        }
        acc.alpha_to_miners += paid_miners;
        acc.alpha_burned_by_owner += burned_by_owner;
        issuance -= burned_by_owner;
        miner_burned = if incentive_sum > 0 {
            config.owner_burn_share
        } else {
            0.0
        };
        acc.alpha_unallocated +=
            pend_server + pend_validator - paid_miners - burned_by_owner - paid_validators;
        ledger
            .validator_stake_value
            .push(stake.iter().map(|s| s * pool.price() * sats).collect());
        ledger.emission_value_sats +=
            (pend_server + pend_validator + pend_root) / (1.0 - OWNER_CUT) * pool.price() * sats;
        series.price.push(pool.price());
        series.burn.push(burn);
        ledger.end_epoch(&mg, e);
    }
    acc.pool_tao_end = pool.tao;
    acc.price_end = pool.price();
    acc.emission_share_end = share(moving, miner_burned);
    acc.root_proportion_end = root_proportion(issuance);
    (ledger, acc, series)
}
