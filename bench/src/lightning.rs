//! `boltensor bench lightning`: the Lightning side alone, measured on a real regtest network.
//!
//! - **Hops.** One chain of nodes `n0 → n1 → … → miner`, channels opened by the left node. "Hops" are the
//!   channels a payment crosses: `n_i` paying the miner crosses `routers + 1 − i` of them, so one chain of
//!   `routers + 2` nodes gives every hop count from 1 to `routers + 1`. The channels between routers are
//!   announced (a payer needs them in its gossip graph to route more than two hops); the miner's own
//!   channel is unannounced, as in production, and reached through the invoice's route hint, so the last
//!   router forwards into it as a coordinator does (an LSPS2 node). For each hop count: wait until the
//!   route carries a payment (polled with a deadline), then `payments` sequential normal invoices.
//! - **HTLC slots.** Over the last channel alone (last router → miner), hold-invoice payments are sent one
//!   after another and *kept pending*, as the miner keeps a paid request's HTLC while the model runs, until
//!   `extra` of them have failed: how many are held at the miner is the channel's slot count, and how the
//!   ones beyond it end (error, time) is what a client sees. While the channel is full, one payment from
//!   one hop further out shows what a client behind a coordinator sees. Then half the held payments are
//!   claimed and the rest failed back, and the balances are checked to move by exactly what was claimed.
//!   Run once with a non-dust amount and once with a dust one (a paid chat's price is a few sats: dust).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bitcoin::hashes::{sha256, Hash};
use boltensor_ln::{LnError, LnNode, PaymentHash, PaymentPreimage};
use boltensor_testenv::{wait_for, TestEnvError, TestNet};
use serde::Serialize;

use crate::paid::Series;

/// What to run.
#[derive(Debug, Clone)]
pub struct LightningBenchConfig {
    /// Routing nodes between the first payer and the miner: hop counts 1 to `routers + 1` are measured.
    pub routers: usize,
    /// Sequential payments per hop count.
    pub payments: usize,
    /// Amount of each of those payments, msat.
    pub payment_msat: u64,
    /// Capacity of every channel, sats.
    pub channel_sats: u64,
    /// Pushed to the miner when its channel opens, sats: a balance above the dust limit, or LDK counts
    /// the miner's side of the channel as 0 (its output would be trimmed) and the balance check fails.
    pub miner_push_sats: u64,
    /// Amounts of the held payments, one slot run each, msat.
    pub hold_msat: Vec<u64>,
    /// Failed payments after which a slot run stops sending.
    pub extra: usize,
    /// A slot run sends at most this many (above BOLT 2's 483, so a missing limit shows).
    pub max_htlcs: usize,
    /// Chat durations to turn the slot count into paid chats/s per channel: (ms, where it comes from).
    pub chat_durations: Vec<(f64, String)>,
}

impl Default for LightningBenchConfig {
    fn default() -> Self {
        LightningBenchConfig {
            routers: 3,
            payments: 30,
            payment_msat: 10_000,
            channel_sats: 5_000_000,
            miner_push_sats: 50_000,
            hold_msat: vec![2_000_000, 3_000],
            extra: 5,
            max_htlcs: 500,
            chat_durations: Vec::new(),
        }
    }
}

/// Latency of payments over one hop count.
#[derive(Debug, Clone, Serialize)]
pub struct HopFigures {
    /// Channels on the route (payer → routers → miner).
    pub hops: usize,
    /// Send → settled (preimage back at the payer), sequential payments.
    pub latency: Series,
    /// Mean routing fee paid per payment, msat.
    pub mean_fee_msat: f64,
    /// From the start of the wait until the route first carried a payment, ms (gossip of the announced
    /// channels; 0-ish for one hop).
    pub route_ready_ms: f64,
}

/// How one payment beyond the slots ended.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// The error, without the payment hash.
    pub error: String,
    /// Whether the payer's `send` itself returned it (no route found at the payer, nothing sent), rather
    /// than a payment failure that came back later.
    pub at_send: bool,
    /// Send → error, ms.
    pub ms: f64,
}

/// A payment over a route whose last channel is full.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Channels on its route.
    pub hops: usize,
    /// Whether it settled (it should not).
    pub settled: bool,
    /// The error it ended with.
    pub error: Option<String>,
    /// Send → outcome, ms.
    pub ms: f64,
}

/// One slot run over one channel.
#[derive(Debug, Clone, Serialize)]
pub struct SlotFigures {
    /// Amount of each held payment, msat.
    pub hold_msat: u64,
    /// Payments sent.
    pub sent: usize,
    /// Held at the miner (claimable) at once: the channel's slot count at this amount.
    pub held: usize,
    /// Payments that failed while the others were held.
    pub refused: usize,
    /// How the first one beyond the slots ended.
    pub first_refusal: Option<Refusal>,
    /// Send → error of every refused payment.
    pub refused_latency: Series,
    /// Send → held at the miner, of the held ones.
    pub hold_latency: Series,
    /// A payment one hop further out (through the last router) while the channel was full.
    pub probe: Option<Probe>,
    /// Held payments claimed afterwards (the first half).
    pub claimed: usize,
    /// Held payments failed back afterwards (the rest).
    pub failed_back: usize,
    /// Payer outcomes that matched (claimed → settled, failed back → failed).
    pub outcomes_matched: usize,
    /// What the claims moved: sats.
    pub claimed_sats: u64,
    /// The payer's Lightning balance change, sats (expected: −claimed_sats).
    pub payer_delta_sats: i64,
    /// The miner's Lightning balance change, sats (expected: +claimed_sats).
    pub miner_delta_sats: i64,
    /// The probe's payer's change, sats (expected: 0).
    pub probe_payer_delta_sats: i64,
    /// payer's loss − miner's gain + probe payer's loss: what went missing, sats.
    pub lost_sats: i64,
    /// Whether every balance came to its expected value before the deadline.
    pub balances_returned: bool,
}

/// The slot count turned into a throughput ceiling for long requests.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// Duration of one paid chat (its HTLC is held that long), ms.
    pub chat_ms: f64,
    /// Where that duration comes from.
    pub source: String,
    /// HTLC slots of one channel (the smallest `held` of the slot runs).
    pub slots: usize,
    /// slots / duration: paid chats per second one channel can carry.
    pub chats_per_sec: f64,
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct LightningReport {
    /// Capacity of every channel, sats.
    pub channel_sats: u64,
    /// Amount of the latency payments, msat.
    pub payment_msat: u64,
    /// Latency per hop count.
    pub hops: Vec<HopFigures>,
    /// HTLC slot runs.
    pub slots: Vec<SlotFigures>,
    /// What the slots allow for long chats.
    pub ceilings: Vec<Ceiling>,
}

impl LightningReport {
    /// A human table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "payment latency by hops ({} msat payments, {} sat channels)",
            self.payment_msat, self.channel_sats
        );
        let _ = writeln!(
            out,
            "{:>5} {:>5} {:>9} {:>9} {:>9} {:>9} {:>12}",
            "hops", "n", "p50 ms", "p99 ms", "mean ms", "fee msat", "route ready"
        );
        for h in &self.hops {
            let _ = writeln!(
                out,
                "{:>5} {:>5} {:>9.1} {:>9.1} {:>9.1} {:>9.0} {:>10.1} s",
                h.hops,
                h.latency.n,
                h.latency.p50_ms,
                h.latency.p99_ms,
                h.latency.mean_ms,
                h.mean_fee_msat,
                h.route_ready_ms / 1000.0
            );
        }
        for s in &self.slots {
            let _ = writeln!(
                out,
                "\nHTLC slots, one channel, held payments of {} msat: sent {}, held at once {}, refused {}",
                s.hold_msat, s.sent, s.held, s.refused
            );
            let _ = writeln!(
                out,
                "  send -> held at the miner: p50 {:.1} ms, p99 {:.1} ms",
                s.hold_latency.p50_ms, s.hold_latency.p99_ms
            );
            if let Some(r) = &s.first_refusal {
                let _ = writeln!(
                    out,
                    "  first refused: after {:.1} ms{}: {} (all refused: p50 {:.1} ms, p99 {:.1} ms)",
                    r.ms,
                    if r.at_send { ", by the payer's send" } else { "" },
                    r.error,
                    s.refused_latency.p50_ms,
                    s.refused_latency.p99_ms
                );
            }
            if let Some(p) = &s.probe {
                let _ = writeln!(
                    out,
                    "  a {}-hop payment while the channel is full: {} after {:.1} ms",
                    p.hops,
                    if p.settled {
                        "settled".to_owned()
                    } else {
                        format!("failed ({})", p.error.as_deref().unwrap_or("?"))
                    },
                    p.ms
                );
            }
            let _ = writeln!(
                out,
                "  then {} claimed, {} failed back ({} payer outcomes as expected); balances: payer {:+} sat, miner {:+} sat, probe payer {:+} sat; lost {} sat{}",
                s.claimed,
                s.failed_back,
                s.outcomes_matched,
                s.payer_delta_sats,
                s.miner_delta_sats,
                s.probe_payer_delta_sats,
                s.lost_sats,
                if s.balances_returned { "" } else { " (NOT as expected)" }
            );
        }
        if !self.ceilings.is_empty() {
            let _ = writeln!(out, "\nceiling per channel (slots / chat duration):");
            for c in &self.ceilings {
                let _ = writeln!(
                    out,
                    "  {} slots / {:.0} ms = {:.1} paid chats/s  ({})",
                    c.slots, c.chat_ms, c.chats_per_sec, c.source
                );
            }
        }
        out
    }
}

/// Percentiles of `v` (nearest rank on the sorted samples, as `bench paid` computes them).
pub fn series(mut v: Vec<Duration>) -> Series {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| {
        if v.is_empty() {
            return 0.0;
        }
        ms(v[((v.len() as f64 - 1.0) * q).round() as usize])
    };
    Series {
        n: v.len(),
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        mean_ms: if v.is_empty() {
            0.0
        } else {
            v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64
        },
    }
}

/// slots / duration for each duration.
pub fn ceilings(slots: usize, durations: &[(f64, String)]) -> Vec<Ceiling> {
    durations
        .iter()
        .filter(|(ms, _)| *ms > 0.0)
        .map(|(ms, source)| Ceiling {
            chat_ms: *ms,
            source: source.clone(),
            slots,
            chats_per_sec: slots as f64 / (ms / 1000.0),
        })
        .collect()
}

/// The median paid chat latency of a `bench paid --json-out` file (`paid_chat.p50_ms`), if it has one.
pub fn paid_chat_ms(bench_paid_json: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(bench_paid_json).ok()?;
    v["paid_chat"]["p50_ms"].as_f64().filter(|ms| *ms > 0.0)
}

fn err(e: impl std::fmt::Display) -> TestEnvError {
    TestEnvError::Devnet(e.to_string())
}

/// An error as a reader needs it: the kind and reason, no payment hash.
fn describe(e: &LnError) -> String {
    match e {
        LnError::PaymentFailed { reason, .. } => format!("payment failed: {reason}"),
        LnError::Node { op, source } => format!("{op}: {source} ({source:?})"),
        other => other.to_string(),
    }
}

fn progress(msg: impl std::fmt::Display) {
    eprintln!("bench lightning: {msg}");
}

/// A fresh preimage (unique within the process) and its hash.
fn preimage(tag: u64) -> (PaymentPreimage, PaymentHash) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let bytes = sha256::Hash::hash(format!("bench lightning {nanos} {tag}").as_bytes());
    let p = PaymentPreimage(bytes.to_byte_array());
    (p, PaymentHash::from(p))
}

/// Waits until `node`'s Lightning balance has not changed for a second (HTLCs settle a moment after
/// the payer learns the outcome), then returns it.
async fn settled_balance(node: &LnNode) -> Result<u64, TestEnvError> {
    let mut last = (node.balances().lightning_sats, Instant::now());
    wait_for(
        &format!("{}'s Lightning balance to settle", node.alias()),
        Duration::from_secs(30),
        || {
            let now = node.balances().lightning_sats;
            let r = if now != last.0 {
                last = (now, Instant::now());
                None
            } else {
                (last.1.elapsed() >= Duration::from_secs(1)).then_some(now)
            };
            async move { Ok(r) }
        },
    )
    .await
}

/// Runs the benchmark and returns its figures. Every node is stopped and bitcoind killed at the end.
pub async fn run(cfg: LightningBenchConfig) -> Result<LightningReport, TestEnvError> {
    let net = TestNet::start().await?;
    let routers = cfg.routers;
    let mut nodes = Vec::new();
    for i in 0..=routers {
        let mut c = net.node_config(&format!("n{i}"))?;
        // The last router forwards into the miner's unannounced channel, as a coordinator does.
        c.liquidity_provider = i == routers;
        nodes.push(LnNode::start(c).await?);
    }
    nodes.push(net.node("miner").await?);
    let result = measure(&net, &nodes, &cfg).await;
    for n in &nodes {
        n.stop().await;
    }
    drop(nodes);
    drop(net);
    progress("stopped every node and bitcoind");
    result
}

async fn measure(
    net: &TestNet,
    nodes: &[LnNode],
    cfg: &LightningBenchConfig,
) -> Result<LightningReport, TestEnvError> {
    let routers = cfg.routers;
    let miner = &nodes[routers + 1];
    progress(format!(
        "{} nodes started; funding and opening {} channels of {} sat",
        nodes.len(),
        routers + 1,
        cfg.channel_sats
    ));
    net.fund(&nodes.iter().collect::<Vec<_>>(), 1).await?;
    let mut txids = Vec::new();
    for i in 0..=routers {
        let (from, to) = (&nodes[i], &nodes[i + 1]);
        let (_, txid) = if i == routers {
            let push = cfg.miner_push_sats * 1000;
            from.open_channel(to.node_id(), to.listen_addr(), cfg.channel_sats, push)
                .await?
        } else {
            from.open_announced_channel(to.node_id(), to.listen_addr(), cfg.channel_sats, 0)
                .await?
        };
        txids.push(txid);
    }
    for txid in txids {
        net.bitcoind
            .wait_for_tx(txid, boltensor_testenv::net::STEP_TIMEOUT)
            .await?;
    }
    net.bitcoind
        .mine(boltensor_testenv::net::CHANNEL_CONFIRMATIONS)
        .await?;
    let pairs: Vec<(&LnNode, &LnNode)> = nodes.windows(2).map(|w| (&w[0], &w[1])).collect();
    net.wait_usable(&pairs).await?;
    progress("channels usable");

    // Hops: from the nearest payer outwards, so each wait for gossip overlaps the previous series.
    let mut hops = Vec::new();
    for k in 1..=routers + 1 {
        let payer = &nodes[routers + 1 - k];
        let t = Instant::now();
        wait_for(
            &format!("a {k}-hop route {} -> miner", payer.alias()),
            Duration::from_secs(180),
            || async {
                let invoice = miner.invoice(cfg.payment_msat, "route check", 600)?;
                Ok(payer
                    .pay(&invoice, Duration::from_secs(30))
                    .await
                    .ok()
                    .map(|_| ()))
            },
        )
        .await?;
        let route_ready = t.elapsed();
        progress(format!(
            "{k} hops: route ready after {:.1} s; {} payments",
            route_ready.as_secs_f64(),
            cfg.payments
        ));
        let mut samples = Vec::new();
        let mut fees = 0u64;
        for _ in 0..cfg.payments {
            let invoice = miner.invoice(cfg.payment_msat, "bench", 600)?;
            let t = Instant::now();
            let sent = payer.pay(&invoice, Duration::from_secs(60)).await?;
            samples.push(t.elapsed());
            fees += sent.fee_paid_msat;
        }
        let latency = series(samples);
        progress(format!(
            "{k} hops: p50 {:.1} ms, p99 {:.1} ms",
            latency.p50_ms, latency.p99_ms
        ));
        hops.push(HopFigures {
            hops: k,
            latency,
            mean_fee_msat: fees as f64 / cfg.payments.max(1) as f64,
            route_ready_ms: route_ready.as_secs_f64() * 1000.0,
        });
    }

    let payer = &nodes[routers];
    let prober = routers.checked_sub(1).map(|i| &nodes[i]);
    let mut slots = Vec::new();
    for &amount in &cfg.hold_msat {
        slots.push(slot_run(payer, prober, miner, amount, cfg).await?);
    }
    let min_held = slots.iter().map(|s| s.held).min().unwrap_or(0);
    Ok(LightningReport {
        channel_sats: cfg.channel_sats,
        payment_msat: cfg.payment_msat,
        hops,
        slots,
        ceilings: ceilings(min_held, &cfg.chat_durations),
    })
}

type Outcome = tokio::task::JoinHandle<(Result<(), String>, Duration)>;

/// Holds payments `payer → miner` (one channel) until `cfg.extra` fail, probes, then settles them all.
async fn slot_run(
    payer: &LnNode,
    prober: Option<&LnNode>,
    miner: &LnNode,
    amount_msat: u64,
    cfg: &LightningBenchConfig,
) -> Result<SlotFigures, TestEnvError> {
    progress(format!(
        "HTLC slots at {amount_msat} msat: holding payments {} -> {} until {} fail",
        payer.alias(),
        miner.alias(),
        cfg.extra
    ));
    let payer_before = settled_balance(payer).await?;
    let miner_before = settled_balance(miner).await?;
    let prober_before = match prober {
        Some(p) => Some(settled_balance(p).await?),
        None => None,
    };

    // (preimage, hash, amount held, the payer's outcome)
    let mut held: Vec<(PaymentPreimage, PaymentHash, u64, Outcome)> = Vec::new();
    let mut refusals: Vec<Refusal> = Vec::new();
    let mut refused_latency = Vec::new();
    let mut hold_latency = Vec::new();
    let mut sent = 0;
    while refusals.len() < cfg.extra && sent < cfg.max_htlcs {
        sent += 1;
        let (preimage, hash) = preimage(sent as u64);
        let invoice = miner.hold_invoice(hash, amount_msat, "slot", 3600)?;
        let t = Instant::now();
        let pending = match payer.send(&invoice) {
            Ok(p) => p,
            Err(e) => {
                refused_latency.push(t.elapsed());
                refusals.push(Refusal {
                    error: describe(&e),
                    at_send: true,
                    ms: t.elapsed().as_secs_f64() * 1000.0,
                });
                continue;
            }
        };
        let outcome: Outcome = tokio::spawn(async move {
            let r = pending.outcome(Duration::from_secs(600)).await;
            (r.map(|_| ()).map_err(|e| describe(&e)), t.elapsed())
        });
        // Held at the miner, or failed at the payer: whichever comes first.
        let done = wait_for(
            &format!("payment {} to be held or fail", held.len() + refusals.len()),
            Duration::from_secs(60),
            || {
                let r = if let Some(c) = miner.claimable(hash) {
                    Some(Ok(c.amount_msat))
                } else if outcome.is_finished() {
                    Some(Err(()))
                } else {
                    None
                };
                async move { Ok(r) }
            },
        )
        .await?;
        match done {
            Ok(amount) => {
                hold_latency.push(t.elapsed());
                held.push((preimage, hash, amount, outcome));
            }
            Err(()) => {
                let (r, took) = outcome.await.map_err(err)?;
                refused_latency.push(took);
                refusals.push(Refusal {
                    error: r.err().unwrap_or_else(|| "settled?".into()),
                    at_send: false,
                    ms: took.as_secs_f64() * 1000.0,
                });
            }
        }
        if held.len().is_multiple_of(10) && refusals.is_empty() {
            progress(format!("  {} held", held.len()));
        }
    }
    progress(format!(
        "  {} held, {} refused (first: {})",
        held.len(),
        refusals.len(),
        refusals.first().map_or("none", |r| r.error.as_str())
    ));

    let probe = match prober {
        Some(p) => {
            let invoice = miner.invoice(cfg.payment_msat, "probe", 600)?;
            let t = Instant::now();
            let r = p.pay(&invoice, Duration::from_secs(120)).await;
            let probe = Probe {
                hops: 2,
                settled: r.is_ok(),
                error: r.err().map(|e| describe(&e)),
                ms: t.elapsed().as_secs_f64() * 1000.0,
            };
            progress(format!(
                "  2-hop payment while full: {} after {:.0} ms",
                probe.error.as_deref().unwrap_or("settled"),
                probe.ms
            ));
            Some(probe)
        }
        None => None,
    };

    // Settle everything: claim the first half, fail back the rest.
    let n_held = held.len();
    let claim_n = n_held / 2;
    let mut claimed_msat = 0;
    for (i, (preimage, hash, amount, _)) in held.iter().enumerate() {
        if i < claim_n {
            miner.claim(*hash, *preimage, *amount)?;
            claimed_msat += amount;
        } else {
            miner.fail(*hash)?;
        }
    }
    let mut matched = 0;
    for (i, (_, _, _, outcome)) in held.into_iter().enumerate() {
        let (r, _) = outcome.await.map_err(err)?;
        if r.is_ok() == (i < claim_n) {
            matched += 1;
        }
    }
    let claimed_sats = claimed_msat / 1000;
    progress(format!(
        "  {claim_n} claimed, {} failed back; waiting for the balances",
        n_held - claim_n
    ));
    let deltas = || {
        let p = payer.balances().lightning_sats as i64 - payer_before as i64;
        let m = miner.balances().lightning_sats as i64 - miner_before as i64;
        let q = match (prober, prober_before) {
            (Some(n), Some(b)) => n.balances().lightning_sats as i64 - b as i64,
            _ => 0,
        };
        (p, m, q)
    };
    let returned = wait_for(
        "the balances to move by what was claimed",
        Duration::from_secs(60),
        || {
            let (p, m, q) = deltas();
            let ok = p == -(claimed_sats as i64) && m == claimed_sats as i64 && q == 0;
            async move { Ok(ok.then_some(())) }
        },
    )
    .await
    .is_ok();
    let (p, m, q) = deltas();
    let refused = refusals.len();
    Ok(SlotFigures {
        hold_msat: amount_msat,
        sent,
        held: n_held,
        refused,
        first_refusal: refusals.into_iter().next(),
        refused_latency: series(refused_latency),
        hold_latency: series(hold_latency),
        probe,
        claimed: claim_n,
        failed_back: n_held - claim_n,
        outcomes_matched: matched,
        claimed_sats,
        payer_delta_sats: p,
        miner_delta_sats: m,
        probe_payer_delta_sats: q,
        lost_sats: -p - m - q,
        balances_returned: returned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_picks_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = series(v);
        assert_eq!(s.n, 100);
        assert_eq!(s.p50_ms, 51.0); // index round(99 × 0.5) = 50
        assert_eq!(s.p99_ms, 99.0); // index round(99 × 0.99) = 98
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
        let empty = series(Vec::new());
        assert_eq!((empty.n, empty.p50_ms, empty.mean_ms), (0, 0.0, 0.0));
    }

    #[test]
    fn ceiling_is_slots_over_duration() {
        let c = ceilings(50, &[(500.0, "a".into()), (0.0, "skipped".into())]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].chats_per_sec, 100.0);
    }

    #[test]
    fn paid_chat_ms_reads_bench_paid_json() {
        assert_eq!(
            paid_chat_ms(r#"{"paid_chat": {"n": 10, "p50_ms": 384.5}}"#),
            Some(384.5)
        );
        assert_eq!(paid_chat_ms(r#"{"bare_payment": {}}"#), None);
        assert_eq!(paid_chat_ms("not json"), None);
    }

    #[test]
    fn report_serializes_and_renders() {
        let report = LightningReport {
            channel_sats: 1,
            payment_msat: 2,
            hops: vec![HopFigures {
                hops: 1,
                latency: series(vec![Duration::from_millis(5)]),
                mean_fee_msat: 0.0,
                route_ready_ms: 1.0,
            }],
            slots: Vec::new(),
            ceilings: ceilings(3, &[(1000.0, "x".into())]),
        };
        let v = serde_json::to_value(&report).expect("serializes");
        assert_eq!(v["hops"][0]["latency"]["p50_ms"], 5.0);
        assert_eq!(v["ceilings"][0]["chats_per_sec"], 3.0);
        assert!(report
            .render()
            .contains("3 slots / 1000 ms = 3.0 paid chats/s"));
    }
}
