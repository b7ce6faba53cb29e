//! The Lightning design as Boltensor runs it: clients and validators pay miners per request with
//! hold invoices through a coordinator (which keeps a forwarding fee), failed requests are failed
//! back (refunded), a share of the forwarding fees makes each epoch's pool, and the same Yuma epoch
//! on bonded sats splits the pool to miners (incentive) and validators (dividends). Entry is a bond.

use serde::Serialize;

use crate::ledger::{Ledger, Sale};
use crate::metagraph::{route, Metagraph};
use crate::world::{World, EPOCH_SECS, TEMPO};
use crate::Config;

/// Every msat that moved, exactly (the conservation the tests check).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LightningAccounts {
    /// Clients' HTLCs held at miners, msat (settled + failed back).
    pub client_held_msat: u64,
    /// Settled: the clients' spend, msat.
    pub client_settled_msat: u64,
    /// Failed back to clients, msat.
    pub client_refunded_msat: u64,
    /// Validators' challenge HTLCs settled, msat.
    pub challenge_settled_msat: u64,
    /// Validators' challenges failed back, msat.
    pub challenge_refunded_msat: u64,
    /// To miners per request (clients and challenges), msat.
    pub miners_per_request_msat: u64,
    /// Forwarding fees the coordinators kept, msat.
    pub coordinator_fees_msat: u64,
    /// Forwarding fees put in the epoch pool, msat.
    pub pool_in_msat: u64,
    /// Pool paid to miners, msat.
    pub pool_to_miners_msat: u64,
    /// Pool paid to validators, msat.
    pub pool_to_validators_msat: u64,
    /// Pool left over (rounding) at the end, msat.
    pub pool_left_msat: u64,
}

/// Per-epoch series for plots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LightningSeries {
    /// Pool per epoch, sats.
    pub pool: Vec<f64>,
}

/// Runs the Lightning design over the world.
pub fn run(config: &Config, world: &World) -> (Ledger, LightningAccounts, LightningSeries) {
    let m = config.miners.max(3);
    let mut mg = Metagraph::new(world, m, config.commit_reveal);
    let mut ledger = Ledger::new(world, "lightning");
    let mut acc = LightningAccounts::default();
    let mut series = LightningSeries::default();
    let bonds: Vec<u64> = world
        .stake_share
        .iter()
        .map(|s| (s * config.validator_bond_sats) as u64)
        .collect();
    let price = (config.price_sats * 1000.0).round() as u64;
    let fee = config.forwarding_fee_msat;
    let pool_share_ppm = (config.pool_share * 1e6).round() as u64;
    let capacity = (config.miner_capacity_rps * EPOCH_SECS) as u64;
    let mut pool: u64 = 0;
    // One forwarded HTLC: the miner gets the price, the coordinator the fee, the pool its share.
    let settle = |acc: &mut LightningAccounts, pool: &mut u64, count: u64| -> (u64, u64) {
        let to_miner = price * count;
        let fees = fee * count;
        let to_pool = fees * pool_share_ppm / 1_000_000;
        acc.miners_per_request_msat += to_miner;
        acc.coordinator_fees_msat += fees - to_pool;
        acc.pool_in_msat += to_pool;
        *pool += to_pool;
        (to_miner, (price + fee) * count)
    };
    for (e, draws) in world.epochs.iter().enumerate() {
        let first = e as u64 * TEMPO + 1;
        let last = (e as u64 + 1) * TEMPO;
        if let Some(agent) = draws.entrant {
            // A bond, not a burn: locked for the timelock, returned in full unless slashed; the
            // cost is the chain fees of creating and withdrawing it and the capital's time value.
            let lock_years = config.bond_lock_blocks as f64 * 600.0 / (365.25 * 86400.0);
            let cost = config.chain.bond_fees_sats(config.fee_rate_sat_vb)
                + config.miner_bond_sats * config.capital_cost_per_year * lock_years;
            ledger.entry_capital(agent, config.miner_bond_sats, config.miner_bond_sats - cost);
            let slot = mg.slot_to_prune(first + 1).unwrap_or(0);
            ledger.pruned(mg.slots[slot], e);
            mg.register(slot, agent, first + 1);
        }
        // Clients pay the miners the ranking sends them to.
        let (routed, dropped) = route(draws.requests, &mg.routing_weights(), capacity);
        ledger.dropped += dropped;
        for (s, n) in routed.iter().enumerate() {
            let agent_id = mg.slots[s];
            let agent = &world.agents[agent_id];
            let delivered = (*n as f64 * agent.availability).round() as u64;
            let failed = n - delivered;
            let (to_miner, paid) = settle(&mut acc, &mut pool, delivered);
            let refunded = (price + fee) * failed;
            acc.client_settled_msat += paid;
            acc.client_refunded_msat += refunded;
            acc.client_held_msat += paid + refunded;
            ledger.client_spend_sats += paid as f64 / 1000.0;
            ledger.client_refunds_sats += refunded as f64 / 1000.0;
            ledger.client_request(
                agent_id,
                e,
                *n,
                delivered,
                agent.quality_at(e),
                agent.cost_sats,
            );
            ledger.miner_income(agent_id, e, to_miner as f64 / 1000.0, Sale::default(), true);
        }
        // Validators pay for their challenges like any client (the copier sends none).
        for v in 0..mg.v {
            for &agent_id in &mg.slots {
                let answered = u64::from(draws.answered[v][agent_id]);
                let failed = u64::from(draws.sent[v][agent_id]) - answered;
                let (to_miner, paid) = settle(&mut acc, &mut pool, answered);
                acc.challenge_settled_msat += paid;
                acc.challenge_refunded_msat += (price + fee) * failed;
                ledger.validator_challenge_spend[v] += paid as f64 / 1000.0;
                ledger.miner_income(agent_id, e, to_miner as f64 / 1000.0, Sale::default(), true);
            }
        }
        // The epoch: Yuma on bonded sats; the pool (msat) split by its emission.
        let weights = mg.weights(world, draws);
        let out = mg.step(last, &bonds, weights, pool);
        let mut paid = 0u64;
        for (s, &agent_id) in mg.slots.iter().enumerate() {
            let x = out.server_emission[mg.v + s];
            paid += x;
            acc.pool_to_miners_msat += x;
            ledger.miner_income(agent_id, e, x as f64 / 1000.0, Sale::default(), false);
        }
        for v in 0..mg.v {
            let x = out.validator_emission[v];
            paid += x;
            acc.pool_to_validators_msat += x;
            ledger.validator_income(v, e, x as f64 / 1000.0);
        }
        series.pool.push(pool as f64 / 1000.0);
        pool -= paid.min(pool);
        ledger.end_epoch(&mg, e);
    }
    acc.pool_left_msat = pool;
    (ledger, acc, series)
}
