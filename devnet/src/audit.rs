//! `boltensor devnet audit`: the ledger invariant ([`boltensor_audit`]) over every node of the running devnet.
//!
//! The launcher holds every node, every miner's request store and a view of the federation, so it collects
//! the [`Ledger`] itself and answers `GET /audit` on its control API; `boltensor devnet audit` asks it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boltensor_audit::{AuditReport, Ledger, MemberBooks, NodeLedger, Payout};
use serde::{Deserialize, Serialize};

use crate::{read, Shared, TestEnvError};

/// What `GET /audit` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevnetAudit {
    /// The checker's report.
    pub report: AuditReport,
    /// Nodes, miners' request records and receipts looked at.
    pub nodes: usize,
    /// Miner request records.
    pub requests: usize,
    /// Where the receipts came from (a coordinator's API), or why there are none.
    pub receipts_from: String,
}

impl DevnetAudit {
    /// The text `boltensor devnet audit` prints.
    pub fn render(&self) -> String {
        let r = &self.report;
        let mut out = format!(
            "ledger audit over {} nodes, {} paid-request records, receipts from {}\n\
             client spend      {:>14} msat\n\
             = miner income    {:>14} msat\n\
             + routing fees    {:>14} msat\n\
             refunded          {:>14} msat\n\
             in flight         {:>14} msat\n\
             requests          {} delivered, {} failed back, {} expired, {} open, {} unpaid challenges\n\
             epoch payouts     {} msat sent, {} msat received, {} receipts, {} msat awaiting a receipt\n",
            self.nodes,
            self.requests,
            self.receipts_from,
            r.client_spend_msat,
            r.miner_income_msat,
            r.routing_fees_msat,
            r.refunded_msat,
            r.in_flight_msat,
            r.requests.delivered,
            r.requests.failed_back,
            r.requests.expired,
            r.requests.open,
            r.requests.unpaid,
            r.pool_sent_msat,
            r.pool_received_msat,
            r.receipts,
            r.unreceipted_msat,
        );
        if r.fees_accounted_msat > 0 || r.pool_msat > 0 {
            out.push_str(&format!(
                "pool from fees    {} msat paid ≤ {} msat pool ≤ share of {} msat fees accounted; {} msat earned by the hubs\n",
                r.pool_paid_msat, r.pool_msat, r.fees_accounted_msat, r.fees_earned_msat
            ));
        }
        if r.forwards_compared {
            out.push_str(&format!(
                "routing fees      {} msat paid on succeeded payments, {} msat earned by the hubs' forwards\n",
                r.fees_paid_msat, r.fees_forwarded_msat
            ));
        } else {
            out.push_str("routing fees      not compared with the hubs' forwards (no quiet moment: payments in flight)\n");
        }
        if r.holds() {
            out.push_str("every rule holds: 0 msat lost\n");
        } else {
            out.push_str(&format!(
                "{} VIOLATIONS, {} msat lost:\n",
                r.violations.len(),
                r.lost_msat()
            ));
            for v in &r.violations {
                out.push_str(&format!("  {v}\n"));
            }
        }
        out
    }
}

/// How long a snapshot must stay unchanged, with nothing pending, for its forward records to be
/// compared with the fees paid: longer than a hub takes to record a forward after the payer's record
/// succeeded (its forward event goes through ldk-node's event queue and two fsyncs).
const QUIET: Duration = Duration::from_millis(300);
/// How long the audit looks for such a moment before it answers without comparing fees.
const QUIET_WITHIN: Duration = Duration::from_secs(4);

/// Every node's payments and forward record, now.
fn nodes_now(shared: &Shared) -> Vec<NodeLedger> {
    read(&shared.nodes)
        .iter()
        .map(|(e, n)| NodeLedger {
            name: e.name.clone(),
            role: e.role,
            node_id: n.node_id().to_string(),
            payments: n.payments(),
            forwarded: Some(n.forwarded()),
        })
        .collect()
}

/// Every node's payments, with the forward records only from a quiet moment: nothing pending and
/// nothing changed (payments or forwards) over [`QUIET`]. The devnet's traffic never stops, and a hub
/// records a forward a little after its payer's record succeeded, so a snapshot taken mid-payment would
/// set fees paid against fees not yet recorded. Without such a moment within [`QUIET_WITHIN`], the
/// records are left out and the audit does not compare fees (rule 4 of `boltensor_audit`).
async fn quiet_nodes(shared: &Shared) -> Vec<NodeLedger> {
    let pending = |nodes: &[NodeLedger]| {
        nodes
            .iter()
            .flat_map(|n| &n.payments)
            .any(|p| !p.inbound && p.state == boltensor_audit::PaymentState::Pending)
    };
    let same = |a: &[NodeLedger], b: &[NodeLedger]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(a, b)| a.payments == b.payments && a.forwarded == b.forwarded)
    };
    let deadline = Instant::now() + QUIET_WITHIN;
    let mut nodes = nodes_now(shared);
    while Instant::now() + QUIET <= deadline {
        if pending(&nodes) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            nodes = nodes_now(shared);
            continue;
        }
        tokio::time::sleep(QUIET).await;
        let again = nodes_now(shared);
        if same(&nodes, &again) {
            return again;
        }
        nodes = again;
    }
    for n in &mut nodes {
        n.forwarded = None;
    }
    nodes
}

/// Collects the ledger from the running devnet and checks it.
pub(crate) async fn collect(shared: &Arc<Shared>) -> DevnetAudit {
    let nodes = quiet_nodes(shared).await;
    let mut requests = Vec::new();
    for (name, miner) in read(&shared.miners).iter() {
        match miner.store().audit(name) {
            Ok(r) => requests.extend(r),
            Err(e) => tracing::warn!(miner = %name, error = %e, "cannot read the miner's requests"),
        }
    }
    let urls: Vec<String> = read(&shared.federation)
        .as_ref()
        .map(|(f, _)| {
            (0..f.n())
                .map(|i| crate::federation::api_url(f, i))
                .collect()
        })
        .unwrap_or_default();
    let (payouts, mut pool, receipts_from) = receipts(&urls).await;
    // What each reporting member's node earned: member i reports hub i's node (members beyond the hubs
    // share a hub and report nothing).
    if let Some((_, hubs)) = read(&shared.federation).as_ref() {
        let nodes = read(&shared.nodes);
        for b in &mut pool {
            b.earned_msat = hubs
                .get(usize::from(b.member))
                .and_then(|hub| nodes.iter().find(|(e, _)| e.name == *hub))
                .map(|(_, n)| n.forwarded().fee_msat);
        }
    }
    let ledger = Ledger {
        nodes,
        requests,
        payouts,
        pool,
    };
    DevnetAudit {
        report: boltensor_audit::check(&ledger),
        nodes: ledger.nodes.len(),
        requests: ledger.requests.len(),
        receipts_from,
    }
}

/// The federation's payout receipts and, when the pool is funded by fees, each member's books (all but
/// what its node earned), from the first member that answers.
async fn receipts(urls: &[String]) -> (Vec<Payout>, Vec<MemberBooks>, String) {
    #[derive(Deserialize)]
    struct Payouts {
        receipts: BTreeMap<String, String>,
        #[serde(default)]
        pool_fee_share_ppm: u64,
        #[serde(default)]
        members: Vec<MemberBooks>,
    }
    if urls.is_empty() {
        return (Vec::new(), Vec::new(), "nowhere (no federation)".into());
    }
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("a reqwest client builds");
    for url in urls {
        let got = async {
            http.get(format!("{url}/v1/payouts"))
                .send()
                .await?
                .error_for_status()?
                .json::<Payouts>()
                .await
        }
        .await;
        match got {
            Ok(p) => match Payout::from_receipts(&p.receipts) {
                Ok(list) => {
                    let books = if p.pool_fee_share_ppm == 0 {
                        Vec::new()
                    } else {
                        p.members
                            .into_iter()
                            .map(|b| MemberBooks {
                                share_ppm: p.pool_fee_share_ppm,
                                ..b
                            })
                            .collect()
                    };
                    return (list, books, url.clone());
                }
                Err(e) => tracing::warn!(%url, error = %e, "bad receipts"),
            },
            Err(e) => tracing::debug!(%url, error = %e, "no payouts from this member"),
        }
    }
    (
        Vec::new(),
        Vec::new(),
        "nowhere (no member answered)".into(),
    )
}

/// Asks the running devnet in `data_dir` for its audit.
pub async fn audit(data_dir: &Path) -> Result<DevnetAudit, TestEnvError> {
    let url = crate::control_url(data_dir)?;
    let resp = reqwest::Client::new()
        .get(format!("{url}/audit"))
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .map_err(|e| crate::not_running(data_dir, &url, e))?;
    resp.json()
        .await
        .map_err(|e| TestEnvError::Devnet(format!("the devnet's audit answer: {e}")))
}
