//! The ledger invariant, checked across every node of a Boltensor network.
//!
//! Boltensor moves other people's bitcoin, so one checker states what "no sat lost" means and every fault
//! test, the load benchmark and `boltensor devnet audit` run it:
//!
//! 1. **One outcome per paid request.** Every payment a client or validator sent to a miner either
//!    succeeded — the miner's node received exactly that amount under the same hash *and* the miner's
//!    request store says the result was delivered — or failed back, and then the miner received nothing.
//!    A payment still pending is *in flight* (a refund or a settlement not yet done), never lost.
//! 2. **Conservation.** Client spend (amount + routing fees of every succeeded payment) = miner income +
//!    routing fees; what failed back is the refunds; what is pending is in flight. It is checked payment
//!    by payment — every succeeded payment matched to exactly its amount at a miner, every miner receipt
//!    to a payer — so it holds whenever rule 1 does; the report carries the sums.
//! 3. **No epoch paid twice.** Every epoch payout (keysend) a node received carries a receipt in the
//!    federation's state for one (epoch, payee), the payer's node sent exactly that payment, and no payee
//!    received a payout without a receipt.
//!
//! 4. **Fees paid = fees earned.** The routing fees the nodes in the ledger paid on their succeeded
//!    payments equal the fees the forwarding nodes' own forward ledgers ([`Forwards`], from
//!    `LnNode::forwarded`) say they earned; a difference is a violation carrying it. Fees paid are summed
//!    over *every* outgoing payment of every node in the ledger that succeeded — the payers' requests, and
//!    also a coordinator's keysend payouts, whose fees a hub earns when a payout goes through another hub —
//!    and fees earned over every [`NodeLedger::forwarded`] given. The rule applies only when the two can
//!    be compared, exactly when (a) at least one node carries its forward record, (b) every coordinator
//!    (the routing nodes) in the ledger does, and (c) no outgoing payment of any node in the ledger is
//!    pending: a forward is recorded when its hub claims it upstream, before the payer's record turns
//!    `Succeeded` and so before its fee is known there. Otherwise the report says the fees were not
//!    compared ([`AuditReport::forwards_compared`]). What the checker cannot see is for the collector: the
//!    ledger must hold every node that forwarded its nodes' payments (a payment routed through a node not
//!    in the ledger pays a fee nobody in it earned) and every node whose payments the recorded forwarders
//!    routed (a hub's fee from a payer outside the ledger was paid by nobody in it: the federation fault
//!    tests' coordinator routes clients they do not collect, so they give it no record), the forward records must cover the same span as the
//!    payments (both are cumulative since a node's creation; a collector that keeps only a window of the
//!    payments passes the growth of the forward totals over that window), and a hub killed between
//!    recording a forward and marking its event handled counts that forward twice (ln/src/forwards.rs):
//!    an over-count the rule reports, since the member would report those fees to the federation.
//!
//! The epoch pool is paid from the payer coordinator's own node, not carved out of client spend
//! (docs/economics.md), so it is accounted for separately: pool sent = pool received = Σ receipts.
//!
//! The checker is pure: collect a [`Ledger`] (every node's [`PaymentRecord`]s from
//! `LnNode::payments`, every miner's request outcomes, the federation's receipts) and call [`check`].
//! A violation carries the msat it puts at risk; [`AuditReport::lost_msat`] sums them and must be 0.

pub mod fault;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use boltensor_ln::{Forwards, PaymentRecord, PaymentState};
use boltensor_protocol::Role;
use serde::{Deserialize, Serialize};

/// Everything the checker looks at.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ledger {
    /// Every node's payments.
    pub nodes: Vec<NodeLedger>,
    /// Every miner's paid requests and their outcomes.
    pub requests: Vec<MinerRequest>,
    /// The federation's epoch payout receipts.
    pub payouts: Vec<Payout>,
    /// Each member's books of a fee-funded pool (empty when the pool is fixed).
    #[serde(default)]
    pub pool: Vec<MemberBooks>,
}

/// One coordinator member's books of a fee-funded pool (ADR 0015): what its node earned forwarding, what
/// it reported to the federation, its parts of the epochs' pools, and what it owes and paid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberBooks {
    /// The member's index.
    pub member: u16,
    /// What its node's forward ledger says it earned, msat (`None`: the node is another member's, or not
    /// known to the auditor).
    pub earned_msat: Option<u64>,
    /// Its last fee report (a running total), msat.
    pub reported_msat: u64,
    /// The part of the report closed epochs accounted for, msat.
    pub accounted_msat: u64,
    /// The sum of its parts of the epochs' pools (`pool_fee_share_ppm` of its income in each), msat.
    pub pool_msat: u64,
    /// The sum of the payouts it owes or owed, msat.
    pub owed_msat: u64,
    /// The sum of its receipted payouts, msat.
    pub paid_msat: u64,
    /// The share of fees paid out in force, ppm (for the bound `pool ≤ share × accounted`).
    pub share_ppm: u64,
}

/// One Lightning node's payments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeLedger {
    /// A name for reports (`miner-0`, `client-1`, …).
    pub name: String,
    /// Its role: clients and validators pay miners; coordinators route and pay epochs.
    pub role: Role,
    /// Lightning node id (hex).
    pub node_id: String,
    /// From `LnNode::payments`.
    pub payments: Vec<PaymentRecord>,
    /// Its forward ledger's totals (`LnNode::forwarded`), over the same span as `payments`; `None`: not
    /// known to the collector (then rule 4 is not checked if the node is a coordinator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<Forwards>,
}

/// Where a miner's paid request ended, from the miner's request store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOutcome {
    /// Challenge issued, not paid (yet): no money involved.
    Unpaid,
    /// Paid and not yet ended: serving or settling.
    Open,
    /// The result was stored for the client and the payment claimed (or being claimed).
    Delivered,
    /// The held payment was failed back: the client has its funds.
    FailedBack,
    /// Never paid before the token expired.
    Expired,
}

/// One paid request in a miner's store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MinerRequest {
    /// The miner's [`NodeLedger::name`].
    pub miner: String,
    /// The hold invoice's payment hash (hex in JSON).
    #[serde(with = "hex::serde")]
    pub payment_hash: [u8; 32],
    /// The invoice amount.
    pub price_msat: u64,
    /// Where it ended.
    pub outcome: RequestOutcome,
}

/// One epoch payout receipt in the federation's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payout {
    /// The epoch paid.
    pub epoch: u64,
    /// The payee's registration key (hex).
    pub payee: String,
    /// The keysend payment's hash (hex in JSON).
    #[serde(with = "hex::serde")]
    pub payment_hash: [u8; 32],
    /// The member that paid its share of a fee-funded pool (`None`: the epoch's round-robin payer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<u16>,
}

impl Payout {
    /// Parses the federation's `receipts` map (`GET /v1/payouts`: `"epoch:key"` or, for a member's share
    /// of a fee-funded pool, `"epoch:member:key"` → payment hash hex).
    pub fn from_receipts<'a>(
        receipts: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<Vec<Payout>, String> {
        receipts
            .into_iter()
            .map(|(k, v)| {
                let bad = || format!("receipt key {k:?} is not epoch:key or epoch:member:key");
                let parts: Vec<&str> = k.split(':').collect();
                let (epoch, payer, payee) = match parts[..] {
                    [e, key] => (e, None, key),
                    [e, m, key] => (e, Some(m.parse::<u16>().map_err(|_| bad())?), key),
                    _ => return Err(bad()),
                };
                let epoch = epoch
                    .parse()
                    .map_err(|e| format!("receipt key {k:?}: epoch: {e}"))?;
                let payment_hash = hex::decode(v)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| format!("receipt {k:?}: payment {v:?} is not 32 hex bytes"))?;
                Ok(Payout {
                    epoch,
                    payee: payee.to_string(),
                    payment_hash,
                    payer,
                })
            })
            .collect()
    }
}

/// What went wrong, and how much it puts at risk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Which rule.
    pub rule: Rule,
    /// msat a party lost (or would lose) because of it.
    pub msat: u64,
    /// Payment hash (hex) or other key.
    pub key: String,
    /// What the checker saw.
    pub detail: String,
}

/// The rules, for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A payer's payment succeeded but no miner node in the ledger received it (or a different amount).
    PaidNotReceived,
    /// A payer's payment succeeded but the miner has no delivered result for it.
    PaidNotDelivered,
    /// A payer's payment failed but the miner received it.
    FailedButReceived,
    /// A miner received a payment no payer in the ledger sent.
    ReceivedFromNobody,
    /// A miner delivered but its payment failed or was never claimed.
    DeliveredNotPaid,
    /// A miner received a payment for a request it failed back or never knew.
    ReceivedWithoutRequest,
    /// The same payment hash was received twice.
    ReceivedTwice,
    /// A payout receipt with no matching keysend received, or a different amount than sent.
    ReceiptWithoutPayment,
    /// A keysend payout received (or sent) with no receipt: an epoch paid twice or off the books.
    PayoutWithoutReceipt,
    /// Two receipts for one (epoch, payee), or one receipt with several payments; its msat is what was
    /// paid beyond the first payment.
    EpochPaidTwice,
    /// A receipt names a paying member the federation's books do not know (no member with that index
    /// has a part of the pool), when the ledger carries the books.
    UnknownPayer,
    /// A member's payouts exceed its parts of the pool, or its parts exceed the share of the fees it
    /// reported, or its report exceeds what its node earned: a sat paid out that the network did not earn.
    PoolBeyondFees,
    /// The routing fees the nodes in the ledger paid on succeeded payments differ from the fees the
    /// forwarding nodes' own ledgers say they earned (rule 4); its msat is the difference.
    FeesPaidNotEarned,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {} ({} msat): {}",
            self.rule, self.key, self.msat, self.detail
        )
    }
}

/// Request counts by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Challenges not paid (yet).
    pub unpaid: u64,
    /// Paid and delivered.
    pub delivered: u64,
    /// Failed back.
    pub failed_back: u64,
    /// Expired unpaid.
    pub expired: u64,
    /// Not yet ended.
    pub open: u64,
}

/// The checker's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Amount + fees of every payer payment that succeeded, msat.
    pub client_spend_msat: u64,
    /// What miners received from those payments, msat.
    pub miner_income_msat: u64,
    /// Routing fees the payers paid (earned by the hubs), msat.
    pub routing_fees_msat: u64,
    /// Payer payments that failed: the funds are back with the payer, msat.
    pub refunded_msat: u64,
    /// Payer payments still pending (settlement or refund in flight), msat.
    pub in_flight_msat: u64,
    /// Payer payments (any state).
    pub payments: u64,
    /// Epoch payouts sent by payer coordinators (keysend, succeeded), msat.
    pub pool_sent_msat: u64,
    /// Epoch payouts received (keysend, succeeded), msat.
    pub pool_received_msat: u64,
    /// Payout attempts a payee recorded received that the payer's node failed for good: the channel was
    /// force-closed with the HTLC on it, and it was left to the miners' fee (below the dust limit) or timed
    /// out back to the payer on chain, so the payee's record is not income; the payer pays such a payout
    /// again with a new attempt. Not in `pool_received_msat`. msat.
    pub pool_reverted_msat: u64,
    /// Receipts in the federation's state.
    pub receipts: u64,
    /// Keysend payouts sent but not yet receipted (the receipt is on its way through consensus), msat.
    pub unreceipted_msat: u64,
    /// Fee-funded pools: forwarding fees the members' nodes earned (where known), msat.
    #[serde(default)]
    pub fees_earned_msat: u64,
    /// Fee-funded pools: fees the members reported and closed epochs accounted for, msat.
    #[serde(default)]
    pub fees_accounted_msat: u64,
    /// Fee-funded pools: the sum of the epochs' pools, msat.
    #[serde(default)]
    pub pool_msat: u64,
    /// Fee-funded pools: payouts receipted, msat.
    #[serde(default)]
    pub pool_paid_msat: u64,
    /// Routing fees every node in the ledger paid on its succeeded outgoing payments (invoice payments
    /// and keysends), msat: rule 4's side of the payers.
    #[serde(default)]
    pub fees_paid_msat: u64,
    /// Fees the forward records in the ledger say their nodes earned, msat: rule 4's side of the hubs.
    #[serde(default)]
    pub fees_forwarded_msat: u64,
    /// Whether rule 4 applied (see the module doc for when it does).
    #[serde(default)]
    pub forwards_compared: bool,
    /// The miners' requests by outcome.
    pub requests: Outcomes,
    /// What broke a rule.
    pub violations: Vec<Violation>,
}

impl AuditReport {
    /// msat lost: the sum over violations. Must be 0.
    pub fn lost_msat(&self) -> u64 {
        self.violations.iter().map(|v| v.msat).sum()
    }

    /// Every rule holds (things may still be in flight).
    pub fn holds(&self) -> bool {
        self.violations.is_empty()
    }

    /// Every rule holds and nothing is in flight: no pending payment, no open request, every payout
    /// receipted. What a fault test waits for after recovery.
    pub fn settled(&self) -> bool {
        self.holds()
            && self.in_flight_msat == 0
            && self.requests.open == 0
            && self.unreceipted_msat == 0
    }

    /// One line for logs and test output.
    pub fn summary(&self) -> String {
        let forwards = if self.forwards_compared {
            format!(
                "; routing fees paid {}, earned by the hubs {}",
                self.fees_paid_msat, self.fees_forwarded_msat
            )
        } else {
            String::new()
        };
        format!(
            "spend {} = income {} + fees {} (refunded {}, in flight {}); requests {} delivered, {} failed back, \
             {} expired, {} open; pool sent {} received {} ({} receipts, {} unreceipted, {} reverted on chain); {} violations, \
             lost {} msat{forwards}",
            self.client_spend_msat,
            self.miner_income_msat,
            self.routing_fees_msat,
            self.refunded_msat,
            self.in_flight_msat,
            self.requests.delivered,
            self.requests.failed_back,
            self.requests.expired,
            self.requests.open,
            self.pool_sent_msat,
            self.pool_received_msat,
            self.receipts,
            self.unreceipted_msat,
            self.pool_reverted_msat,
            self.violations.len(),
            self.lost_msat(),
        )
    }
}

impl AuditReport {
    fn violate(&mut self, rule: Rule, msat: u64, key: String, detail: String) {
        self.violations.push(Violation {
            rule,
            msat,
            key,
            detail,
        });
    }
}

/// The rule of a fee-funded pool, per member and so in total: paid ≤ owed ≤ pool parts ≤ share ×
/// accounted fees, accounted ≤ reported ≤ earned (where the node's ledger is known).
fn check_pool(books: &[MemberBooks], r: &mut AuditReport) {
    for b in books {
        r.fees_earned_msat += b.earned_msat.unwrap_or(0);
        r.fees_accounted_msat += b.accounted_msat;
        r.pool_msat += b.pool_msat;
        r.pool_paid_msat += b.paid_msat;
        let share = (u128::from(b.accounted_msat) * u128::from(b.share_ppm) / 1_000_000) as u64;
        let mut broken = Vec::new();
        if b.paid_msat > b.owed_msat {
            broken.push(format!("paid {} > owed {}", b.paid_msat, b.owed_msat));
        }
        if b.owed_msat > b.pool_msat {
            broken.push(format!(
                "owed {} > its pool parts {}",
                b.owed_msat, b.pool_msat
            ));
        }
        if b.share_ppm > 0 && b.pool_msat > share {
            broken.push(format!(
                "pool parts {} > {} ppm of the {} msat of fees accounted",
                b.pool_msat, b.share_ppm, b.accounted_msat
            ));
        }
        if b.accounted_msat > b.reported_msat {
            broken.push(format!(
                "accounted {} > reported {}",
                b.accounted_msat, b.reported_msat
            ));
        }
        if let Some(earned) = b.earned_msat.filter(|e| b.reported_msat > *e) {
            broken.push(format!(
                "reported {} > its node earned {earned}",
                b.reported_msat
            ));
        }
        if !broken.is_empty() {
            let over = b
                .paid_msat
                .saturating_sub(share.min(b.earned_msat.unwrap_or(u64::MAX)));
            r.violate(
                Rule::PoolBeyondFees,
                over,
                format!("member-{}", b.member),
                broken.join("; "),
            );
        }
    }
}

/// Rule 4: the fees the nodes paid on succeeded payments = the fees the forwarding nodes earned, when
/// the ledger lets them be compared (module doc).
fn check_forwards(ledger: &Ledger, r: &mut AuditReport) {
    let outgoing = || {
        ledger
            .nodes
            .iter()
            .flat_map(|n| n.payments.iter().map(move |p| (n, p)))
            .filter(|(_, p)| !p.inbound)
    };
    r.fees_paid_msat = outgoing()
        .filter(|(_, p)| p.state == PaymentState::Succeeded)
        .map(|(_, p)| p.fee_msat)
        .sum();
    let records: Vec<(&NodeLedger, &Forwards)> = ledger
        .nodes
        .iter()
        .filter_map(|n| n.forwarded.as_ref().map(|f| (n, f)))
        .collect();
    r.fees_forwarded_msat = records.iter().map(|(_, f)| f.fee_msat).sum();
    r.forwards_compared = !records.is_empty()
        && ledger
            .nodes
            .iter()
            .all(|n| n.role != Role::Coordinator || n.forwarded.is_some())
        && !outgoing().any(|(_, p)| p.state == PaymentState::Pending);
    if r.forwards_compared && r.fees_paid_msat != r.fees_forwarded_msat {
        let earned: Vec<String> = records
            .iter()
            .filter(|(_, f)| f.fee_msat > 0 || f.count > 0)
            .map(|(n, f)| format!("{} {} msat over {} forwards", n.name, f.fee_msat, f.count))
            .collect();
        r.violate(
            Rule::FeesPaidNotEarned,
            r.fees_paid_msat.abs_diff(r.fees_forwarded_msat),
            "forwards".into(),
            format!(
                "the nodes paid {} msat of routing fees on succeeded payments; the forwarding nodes' ledgers say they earned {} msat ({})",
                r.fees_paid_msat,
                r.fees_forwarded_msat,
                if earned.is_empty() { "no forwards".to_string() } else { earned.join(", ") }
            ),
        );
    }
}

fn is_payer(role: Role) -> bool {
    matches!(role, Role::Client | Role::Validator)
}

/// Checks the ledger invariant. Pure: the same ledger always gives the same report.
pub fn check(ledger: &Ledger) -> AuditReport {
    let mut r = AuditReport::default();
    check_pool(&ledger.pool, &mut r);
    check_forwards(ledger, &mut r);

    // Miner side: inbound invoice payments by hash, and request outcomes by hash.
    let miners: BTreeSet<&str> = ledger
        .nodes
        .iter()
        .filter(|n| n.role == Role::Miner)
        .map(|n| n.name.as_str())
        .collect();
    let mut received: BTreeMap<[u8; 32], Vec<(&str, &PaymentRecord)>> = BTreeMap::new();
    for n in ledger.nodes.iter().filter(|n| n.role == Role::Miner) {
        for p in n.payments.iter().filter(|p| p.inbound && !p.keysend) {
            if let Some(h) = p.hash {
                received.entry(h).or_default().push((n.name.as_str(), p));
            }
        }
    }
    let requests: BTreeMap<[u8; 32], &MinerRequest> = ledger
        .requests
        .iter()
        .map(|q| (q.payment_hash, q))
        .collect();
    for q in &ledger.requests {
        match q.outcome {
            RequestOutcome::Unpaid => r.requests.unpaid += 1,
            RequestOutcome::Open => r.requests.open += 1,
            RequestOutcome::Delivered => r.requests.delivered += 1,
            RequestOutcome::FailedBack => r.requests.failed_back += 1,
            RequestOutcome::Expired => r.requests.expired += 1,
        }
    }
    let succeeded_at_miner = |h: &[u8; 32]| -> Vec<&PaymentRecord> {
        received
            .get(h)
            .map(|v| {
                v.iter()
                    .filter(|(_, p)| p.state == PaymentState::Succeeded)
                    .map(|(_, p)| *p)
                    .collect()
            })
            .unwrap_or_default()
    };

    // Payer side: every invoice payment a client or validator sent.
    let mut sent: BTreeSet<[u8; 32]> = BTreeSet::new();
    for n in ledger.nodes.iter().filter(|n| is_payer(n.role)) {
        for p in n.payments.iter().filter(|p| !p.inbound && !p.keysend) {
            let Some(h) = p.hash else { continue };
            sent.insert(h);
            r.payments += 1;
            let key = hex::encode(h);
            let at_miner = succeeded_at_miner(&h);
            match p.state {
                PaymentState::Succeeded => {
                    r.client_spend_msat += p.amount_msat + p.fee_msat;
                    r.routing_fees_msat += p.fee_msat;
                    match at_miner.as_slice() {
                        [m] if m.amount_msat == p.amount_msat => {}
                        [m] => r.violate(
                            Rule::PaidNotReceived,
                            p.amount_msat.abs_diff(m.amount_msat),
                            key.clone(),
                            format!(
                                "{} paid {} msat, the miner received {} msat",
                                n.name, p.amount_msat, m.amount_msat
                            ),
                        ),
                        [] => r.violate(
                            Rule::PaidNotReceived,
                            p.amount_msat,
                            key.clone(),
                            format!("{} paid, no miner received it", n.name),
                        ),
                        _ => {} // ReceivedTwice, reported below.
                    }
                    match requests.get(&h).map(|q| q.outcome) {
                        Some(RequestOutcome::Delivered) => {}
                        Some(RequestOutcome::Open) => {} // Settling: the result is on its way.
                        other => r.violate(
                            Rule::PaidNotDelivered,
                            p.amount_msat,
                            key,
                            format!("{} paid; the miner's request is {other:?}", n.name),
                        ),
                    }
                }
                PaymentState::Failed => {
                    r.refunded_msat += p.amount_msat;
                    if let Some(m) = at_miner.first() {
                        r.violate(
                            Rule::FailedButReceived,
                            m.amount_msat,
                            key,
                            format!("{}'s payment failed but a miner received it", n.name),
                        );
                    }
                }
                PaymentState::Pending => r.in_flight_msat += p.amount_msat,
            }
        }
    }

    // Miner side again: income with no payer, payments received twice, delivered but unpaid.
    for (h, recs) in &received {
        let key = hex::encode(h);
        let ok: Vec<_> = recs
            .iter()
            .filter(|(_, p)| p.state == PaymentState::Succeeded)
            .collect();
        for (miner, p) in &ok {
            r.miner_income_msat += p.amount_msat;
            if !sent.contains(h) {
                r.violate(
                    Rule::ReceivedFromNobody,
                    p.amount_msat,
                    key.clone(),
                    format!("{miner} received a payment no payer in the ledger sent"),
                );
            }
            match requests.get(h).map(|q| q.outcome) {
                Some(RequestOutcome::Delivered) | Some(RequestOutcome::Open) => {}
                other => r.violate(
                    Rule::ReceivedWithoutRequest,
                    p.amount_msat,
                    key.clone(),
                    format!("{miner} received a payment for a request that is {other:?}"),
                ),
            }
        }
        if ok.len() > 1 {
            r.violate(
                Rule::ReceivedTwice,
                ok.iter().skip(1).map(|(_, p)| p.amount_msat).sum(),
                key,
                format!("received {} times", ok.len()),
            );
        }
    }
    for q in ledger
        .requests
        .iter()
        .filter(|q| q.outcome == RequestOutcome::Delivered)
    {
        let recs = received.get(&q.payment_hash);
        let states: Vec<PaymentState> = recs
            .map(|v| v.iter().map(|(_, p)| p.state).collect())
            .unwrap_or_default();
        if states.contains(&PaymentState::Succeeded) {
            continue;
        }
        if states.contains(&PaymentState::Pending) {
            // Claimed, the claim is still settling: in flight on the miner's side.
            continue;
        }
        if miners.contains(q.miner.as_str()) {
            r.violate(
                Rule::DeliveredNotPaid,
                q.price_msat,
                hex::encode(q.payment_hash),
                format!("{} delivered a result its payment never settled", q.miner),
            );
        }
    }
    // Epoch payouts. Second receipts for one (epoch, payer, payee) or one payment are violations once
    // their amounts are known (below).
    let mut receipted: BTreeMap<[u8; 32], &Payout> = BTreeMap::new();
    let mut per_epoch: BTreeSet<(u64, Option<u16>, &str)> = BTreeSet::new();
    let mut second_receipts: Vec<&Payout> = Vec::new();
    let mut unknown_payers: Vec<&Payout> = Vec::new();
    let books: BTreeSet<u16> = ledger.pool.iter().map(|b| b.member).collect();
    for p in &ledger.payouts {
        r.receipts += 1;
        if !per_epoch.insert((p.epoch, p.payer, p.payee.as_str()))
            || receipted.contains_key(&p.payment_hash)
        {
            second_receipts.push(p);
        }
        // With no books at all (the auditor was not given the federation's), there is nothing to
        // check a payer against.
        if p.payer
            .is_some_and(|m| !books.is_empty() && !books.contains(&m))
        {
            unknown_payers.push(p);
        }
        receipted.insert(p.payment_hash, p);
    }
    let mut keysend_in: BTreeMap<[u8; 32], Vec<&PaymentRecord>> = BTreeMap::new();
    let mut keysend_out: BTreeMap<[u8; 32], Vec<&PaymentRecord>> = BTreeMap::new();
    // Keysends a payer's node failed for good.
    let failed_out: std::collections::BTreeSet<[u8; 32]> = ledger
        .nodes
        .iter()
        .flat_map(|n| &n.payments)
        .filter(|p| p.keysend && !p.inbound && p.state == PaymentState::Failed)
        .filter_map(|p| p.hash)
        .collect();
    for n in &ledger.nodes {
        for p in n
            .payments
            .iter()
            .filter(|p| p.keysend && p.state == PaymentState::Succeeded)
        {
            let Some(h) = p.hash else { continue };
            if p.inbound && failed_out.contains(&h) && !receipted.contains_key(&h) {
                r.pool_reverted_msat += p.amount_msat;
            } else if p.inbound {
                r.pool_received_msat += p.amount_msat;
                keysend_in.entry(h).or_default().push(p);
            } else {
                r.pool_sent_msat += p.amount_msat;
                keysend_out.entry(h).or_default().push(p);
            }
        }
    }
    // What a payment hash moved: sent by a payer in the ledger, else received by a payee.
    let moved = |h: &[u8; 32]| -> u64 {
        keysend_out
            .get(h)
            .or_else(|| keysend_in.get(h))
            .map_or(0, |ps| ps.iter().map(|p| p.amount_msat).sum())
    };
    for p in second_receipts {
        r.violate(
            Rule::EpochPaidTwice,
            moved(&p.payment_hash),
            format!("{}:{}", p.epoch, p.payee),
            "two receipts for one epoch and payee".into(),
        );
    }
    for p in unknown_payers {
        let m = p.payer.unwrap_or_default();
        r.violate(
            Rule::UnknownPayer,
            moved(&p.payment_hash),
            format!("{}:{m}:{}", p.epoch, p.payee),
            format!("a receipt paid by member {m}, which has no part of any pool"),
        );
    }
    for (h, p) in &receipted {
        let key = format!("{}:{}", p.epoch, p.payee);
        match (
            keysend_out.get(h).map(Vec::as_slice),
            keysend_in.get(h).map(Vec::as_slice),
        ) {
            (Some([o]), Some([i])) if o.amount_msat == i.amount_msat => {}
            (Some([o]), Some([i])) => r.violate(
                Rule::ReceiptWithoutPayment,
                o.amount_msat.abs_diff(i.amount_msat),
                key,
                format!(
                    "sent {} msat, received {} msat",
                    o.amount_msat, i.amount_msat
                ),
            ),
            (Some([o]), None) => r.violate(
                Rule::ReceiptWithoutPayment,
                o.amount_msat,
                key,
                "the payer sent it; the payee's node has no such payment".into(),
            ),
            (None, _) => {} // The payer's node is not in the ledger, or the payment is still pending.
            (Some(outs), _) => {
                // Every payment beyond the first was paid twice.
                let extra: u64 = outs.iter().skip(1).map(|p| p.amount_msat).sum();
                r.violate(
                    Rule::EpochPaidTwice,
                    extra,
                    key,
                    format!("one receipt, {} payments", outs.len()),
                )
            }
        }
    }
    for (h, ins) in &keysend_in {
        if !receipted.contains_key(h) {
            let msat: u64 = ins.iter().map(|p| p.amount_msat).sum();
            if keysend_out.contains_key(h) {
                // Sent and received, the receipt still on its way through consensus.
                r.unreceipted_msat += msat;
            } else {
                r.violate(
                    Rule::PayoutWithoutReceipt,
                    msat,
                    hex::encode(h),
                    "a keysend payout received that no payer in the ledger sent or receipted"
                        .into(),
                );
            }
        }
    }
    for (h, outs) in &keysend_out {
        if !receipted.contains_key(h) && !keysend_in.contains_key(h) {
            r.unreceipted_msat += outs.iter().map(|p| p.amount_msat).sum::<u64>();
        }
    }
    r
}

/// Checks the ledger with the rule that an unreceipted keysend left after the network settled is an
/// epoch paid off the books: for tests that wait until everything settled.
pub fn check_settled(ledger: &Ledger) -> AuditReport {
    let mut r = check(ledger);
    if r.unreceipted_msat > 0 {
        let msat = r.unreceipted_msat;
        r.violations.push(Violation {
            rule: Rule::PayoutWithoutReceipt,
            msat,
            key: "payouts".into(),
            detail: "keysend payouts with no receipt after the network settled".into(),
        });
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pay(hash: u8, inbound: bool, state: PaymentState, msat: u64, fee: u64) -> PaymentRecord {
        PaymentRecord {
            id: [hash; 32],
            hash: Some([hash; 32]),
            inbound,
            keysend: false,
            state,
            amount_msat: msat,
            fee_msat: fee,
            updated_at: 0,
        }
    }

    fn keysend(hash: u8, inbound: bool, msat: u64) -> PaymentRecord {
        PaymentRecord {
            keysend: true,
            ..pay(hash, inbound, PaymentState::Succeeded, msat, 0)
        }
    }

    fn node(name: &str, role: Role, payments: Vec<PaymentRecord>) -> NodeLedger {
        NodeLedger {
            name: name.into(),
            role,
            node_id: format!("{name}-id"),
            payments,
            forwarded: None,
        }
    }

    fn forwards(fee_msat: u64) -> Option<Forwards> {
        Some(Forwards {
            count: 2,
            fee_msat,
            forwarded_msat: 3_000,
        })
    }

    /// `healthy()` with its hub's forward record: it earned the 8 msat the client paid.
    fn with_forwards() -> Ledger {
        let mut l = healthy();
        l.nodes[2].forwarded = forwards(8);
        l
    }

    #[test]
    fn fees_paid_are_the_fees_the_hubs_earned() {
        let r = check_settled(&with_forwards());
        assert!(r.settled(), "{}: {:?}", r.summary(), r.violations);
        assert!(r.forwards_compared);
        assert_eq!((r.fees_paid_msat, r.fees_forwarded_msat), (8, 8));
        // A hub that earned less, or more, than the payers paid.
        let mut l = with_forwards();
        l.nodes[2].forwarded = forwards(6);
        assert_violation(&l, Rule::FeesPaidNotEarned, 2);
        assert_eq!(check(&l).lost_msat(), 2);
        l.nodes[2].forwarded = forwards(11);
        assert_violation(&l, Rule::FeesPaidNotEarned, 3);
        // Two hubs share the fees; a payout routed through the second pays it a fee too.
        let mut l = with_forwards();
        l.nodes[2].forwarded = forwards(5);
        l.nodes[2].payments[0].fee_msat = 2;
        l.nodes.push(NodeLedger {
            forwarded: forwards(5),
            ..node("h2", Role::Coordinator, vec![])
        });
        let r = check(&l);
        assert!(r.holds() && r.forwards_compared, "{:?}", r.violations);
        assert_eq!((r.fees_paid_msat, r.fees_forwarded_msat), (10, 10));
        // Without the payout's fee, the second hub earned 2 msat nobody paid.
        l.nodes[2].payments[0].fee_msat = 0;
        assert_violation(&l, Rule::FeesPaidNotEarned, 2);
    }

    #[test]
    fn fees_are_compared_only_when_the_ledger_can_tell() {
        let not_compared = |l: &Ledger| {
            let r = check(l);
            assert!(r.holds(), "{:?}", r.violations);
            assert!(!r.forwards_compared);
        };
        // No forward records at all (the ledger of old JSON, or a collector that has none).
        let mut l = healthy();
        assert_eq!(check(&l).fees_paid_msat, 8);
        not_compared(&l);
        // A coordinator without its record: its earnings are unknown.
        l = with_forwards();
        l.nodes[2].forwarded = forwards(0);
        l.nodes.push(node("h2", Role::Coordinator, vec![]));
        not_compared(&l);
        // A payment in flight: a hub records its forward before the payer knows its fee.
        l = with_forwards();
        l.nodes[2].forwarded = forwards(12);
        l.nodes[0]
            .payments
            .push(pay(5, false, PaymentState::Pending, 400, 0));
        not_compared(&l);
        l.nodes[0].payments[3].state = PaymentState::Succeeded;
        l.nodes[0].payments[3].fee_msat = 4;
        l.nodes[1]
            .payments
            .push(pay(5, true, PaymentState::Succeeded, 400, 0));
        l.requests.push(req(5, 400, RequestOutcome::Delivered));
        let r = check_settled(&l);
        assert!(r.settled() && r.forwards_compared, "{:?}", r.violations);
    }

    #[test]
    fn a_ledger_without_forward_records_still_parses() {
        let json = serde_json::to_string(&healthy()).expect("serialises");
        assert!(!json.contains("forwarded"), "{json}");
        let l: Ledger = serde_json::from_str(&json).expect("parses");
        assert!(l.nodes.iter().all(|n| n.forwarded.is_none()));
        let json = serde_json::to_string(&with_forwards()).expect("serialises");
        let l: Ledger = serde_json::from_str(&json).expect("parses");
        assert_eq!(l.nodes[2].forwarded, forwards(8));
    }

    fn req(hash: u8, msat: u64, outcome: RequestOutcome) -> MinerRequest {
        MinerRequest {
            miner: "m".into(),
            payment_hash: [hash; 32],
            price_msat: msat,
            outcome,
        }
    }

    fn healthy() -> Ledger {
        use PaymentState::*;
        Ledger {
            nodes: vec![
                node(
                    "c",
                    Role::Client,
                    vec![
                        pay(1, false, Succeeded, 1000, 3),
                        pay(2, false, Failed, 500, 0),
                        pay(3, false, Succeeded, 2000, 5),
                    ],
                ),
                node(
                    "m",
                    Role::Miner,
                    vec![
                        pay(1, true, Succeeded, 1000, 0),
                        pay(2, true, Failed, 500, 0),
                        pay(3, true, Succeeded, 2000, 0),
                        keysend(9, true, 777),
                    ],
                ),
                node("h", Role::Coordinator, vec![keysend(9, false, 777)]),
            ],
            requests: vec![
                req(1, 1000, RequestOutcome::Delivered),
                req(2, 500, RequestOutcome::FailedBack),
                req(3, 2000, RequestOutcome::Delivered),
                req(4, 100, RequestOutcome::Expired),
            ],
            payouts: vec![Payout {
                epoch: 1,
                payee: "k".into(),
                payment_hash: [9; 32],
                payer: None,
            }],
            pool: vec![MemberBooks {
                member: 0,
                earned_msat: Some(5_000),
                reported_msat: 4_000,
                accounted_msat: 3_000,
                pool_msat: 1_500,
                owed_msat: 1_490,
                paid_msat: 1_000,
                share_ppm: 500_000,
            }],
        }
    }

    #[test]
    fn a_pool_is_paid_only_out_of_fees_earned() {
        let r = check_settled(&healthy());
        assert_eq!(
            (
                r.fees_earned_msat,
                r.fees_accounted_msat,
                r.pool_msat,
                r.pool_paid_msat
            ),
            (5_000, 3_000, 1_500, 1_000)
        );
        let broken = |f: fn(&mut MemberBooks)| {
            let mut l = healthy();
            f(&mut l.pool[0]);
            check(&l)
                .violations
                .iter()
                .filter(|v| v.rule == Rule::PoolBeyondFees)
                .count()
        };
        assert_eq!(broken(|_| {}), 0);
        assert_eq!(broken(|b| b.paid_msat = 1_491), 1, "paid beyond owed");
        assert_eq!(broken(|b| b.owed_msat = 1_501), 1, "owed beyond the pool");
        assert_eq!(broken(|b| b.pool_msat = 1_501), 1, "pool beyond the share");
        assert_eq!(
            broken(|b| b.accounted_msat = 4_001),
            1,
            "accounted beyond reported"
        );
        assert_eq!(
            broken(|b| b.earned_msat = Some(3_999)),
            1,
            "reported beyond earned"
        );
        assert_eq!(
            broken(|b| b.earned_msat = None),
            0,
            "a shared node: not known"
        );
    }

    #[test]
    fn a_healthy_ledger_settles() {
        let r = check_settled(&healthy());
        assert!(r.settled(), "{}", r.summary());
        assert_eq!(r.client_spend_msat, 3008);
        assert_eq!(r.miner_income_msat, 3000);
        assert_eq!(r.routing_fees_msat, 8);
        assert_eq!(r.refunded_msat, 500);
        assert_eq!(r.pool_sent_msat, 777);
        assert_eq!(r.pool_received_msat, 777);
        assert_eq!(
            r.requests,
            Outcomes {
                unpaid: 0,
                delivered: 2,
                failed_back: 1,
                expired: 1,
                open: 0
            }
        );
        assert_eq!(r.lost_msat(), 0);
    }

    #[test]
    fn paid_without_a_result_is_lost() {
        let mut l = healthy();
        l.requests[0].outcome = RequestOutcome::FailedBack;
        let r = check(&l);
        assert!(r
            .violations
            .iter()
            .any(|v| v.rule == Rule::PaidNotDelivered && v.msat == 1000));
        assert_eq!(r.lost_msat(), 2000, "{:?}", r.violations); // and the miner kept it
    }

    #[test]
    fn a_failed_payment_the_miner_received_is_lost() {
        let mut l = healthy();
        l.nodes[1].payments[1].state = PaymentState::Succeeded;
        let r = check(&l);
        assert!(r
            .violations
            .iter()
            .any(|v| v.rule == Rule::FailedButReceived));
        assert!(r.lost_msat() >= 500);
    }

    #[test]
    fn pending_is_in_flight_not_lost() {
        let mut l = healthy();
        l.nodes[0].payments[1].state = PaymentState::Pending;
        l.nodes[1].payments[1].state = PaymentState::Pending;
        l.requests[1].outcome = RequestOutcome::Open;
        let r = check(&l);
        assert!(r.holds(), "{:?}", r.violations);
        assert!(!r.settled());
        assert_eq!(r.in_flight_msat, 500);
    }

    #[test]
    fn a_payout_attempt_the_payer_failed_is_reverted_not_income() {
        // Attempt 0 (hash 10): the payee recorded it received, the payer's node failed it (timed out
        // back on chain); attempt 1 (hash 9, receipted) paid it.
        let mut l = healthy();
        l.nodes[1].payments.push(keysend(10, true, 777));
        l.nodes[2].payments.push(PaymentRecord {
            state: PaymentState::Failed,
            ..keysend(10, false, 777)
        });
        let r = check_settled(&l);
        assert!(r.settled(), "{}: {:?}", r.summary(), r.violations);
        assert_eq!(r.pool_reverted_msat, 777);
        assert_eq!(r.pool_received_msat, 777);
        // Without the payer's failed record, the same payee record is a payout off the books.
        l.nodes[2].payments.pop();
        let r = check_settled(&l);
        assert!(r
            .violations
            .iter()
            .any(|v| v.rule == Rule::PayoutWithoutReceipt));
    }

    #[test]
    fn an_epoch_paid_twice_is_caught() {
        let mut l = healthy();
        l.nodes[1].payments.push(keysend(10, true, 777));
        l.nodes[2].payments.push(keysend(10, false, 777));
        let r = check_settled(&l);
        assert!(r
            .violations
            .iter()
            .any(|v| v.rule == Rule::PayoutWithoutReceipt));
        // A second receipt for epoch 1's payee, its payment made: the double payout has its amount.
        let mut l = healthy();
        l.nodes[1].payments.push(keysend(10, true, 777));
        l.nodes[2].payments.push(keysend(10, false, 777));
        l.payouts.push(Payout {
            epoch: 1,
            payee: "k".into(),
            payment_hash: [10; 32],
            payer: None,
        });
        assert_violation(&l, Rule::EpochPaidTwice, 777);
        // One receipt, its payment sent twice: the second one is the amount paid twice.
        let mut l = healthy();
        l.nodes[2].payments.push(keysend(9, false, 777));
        assert_violation(&l, Rule::EpochPaidTwice, 777);
    }

    /// `check` reports `rule` with exactly `msat` at risk.
    fn assert_violation(l: &Ledger, rule: Rule, msat: u64) {
        let r = check(l);
        assert!(
            r.violations
                .iter()
                .any(|v| v.rule == rule && v.msat == msat),
            "no {rule:?} of {msat} msat in {:?}",
            r.violations
        );
    }

    #[test]
    fn a_receipt_from_a_payer_the_books_do_not_know_is_refused() {
        // Member 0 has books; a receipt says member 5 paid.
        let mut l = healthy();
        l.payouts[0].payer = Some(5);
        assert_violation(&l, Rule::UnknownPayer, 777);
        l.payouts[0].payer = Some(0);
        assert!(check(&l).holds(), "{:?}", check(&l).violations);
        // Without the federation's books the auditor has nothing to check a payer against.
        l.payouts[0].payer = Some(5);
        l.pool.clear();
        assert!(check(&l).holds(), "{:?}", check(&l).violations);
    }

    #[test]
    fn income_from_nowhere_and_wrong_amounts_are_caught() {
        let mut l = healthy();
        l.nodes[1].payments[2].amount_msat = 1999;
        assert!(check(&l)
            .violations
            .iter()
            .any(|v| v.rule == Rule::PaidNotReceived && v.msat == 1));
        let mut l = healthy();
        l.nodes[0].payments.remove(2);
        assert!(check(&l)
            .violations
            .iter()
            .any(|v| v.rule == Rule::ReceivedFromNobody));
    }

    #[test]
    fn receipts_parse() {
        let mut m = BTreeMap::new();
        m.insert("3:abcd".to_string(), hex::encode([7u8; 32]));
        let p = Payout::from_receipts(&m).expect("parses");
        assert_eq!((p[0].epoch, p[0].payee.as_str()), (3, "abcd"));
        m.insert("x".to_string(), "zz".to_string());
        assert!(Payout::from_receipts(&m).is_err());
    }
}
