//! One row of the fault table (docs/reliability.md): what a fault test injected and how the network came back.
//!
//! Every fault test ends with [`record`]: it prints the row as one `FAULT-ROW {json}` line (run the tests
//! with `--nocapture` to see it) and, when `BOLTENSOR_FAULT_REPORT` names a file, appends the JSON there —
//! `scripts/faults.sh` runs every fault test that way and renders the table.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::AuditReport;

/// One fault and its outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRow {
    /// What was injected, e.g. "kill -9 of a miner holding an HTLC, before the model finished".
    pub fault: String,
    /// The network recovered: every rule holds, nothing in flight, service answers again.
    pub recovered: bool,
    /// Seconds from the fault (or the restart, see `detail`) until recovered.
    pub recover_secs: f64,
    /// msat lost according to the ledger audit (must be 0).
    pub lost_msat: u64,
    /// Whether any Lightning money moved in the test (a paid request, a payout or a receipt): without
    /// it, "0 msat lost" says nothing and the table shows n/a.
    #[serde(default = "yes")]
    pub money_moved: bool,
    /// Payouts the federation signed with the stake of a bond whose funding transaction had left the
    /// chain (a reorg), before every member dropped that stake (`None`: the test has no such bond).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_stake: Option<StaleStake>,
    /// The audit's summary line and anything else worth a reader's time.
    pub detail: String,
    /// The test that produced the row (`file::test_name`).
    pub test: String,
}

impl FaultRow {
    /// A row from the final audit.
    pub fn new(
        test: &str,
        fault: &str,
        recovered: bool,
        recover_secs: f64,
        audit: &AuditReport,
    ) -> Self {
        FaultRow {
            fault: fault.to_string(),
            recovered: recovered && audit.holds(),
            recover_secs,
            lost_msat: audit.lost_msat(),
            money_moved: audit.client_spend_msat > 0
                || audit.pool_sent_msat > 0
                || audit.pool_received_msat > 0
                || audit.receipts > 0
                || audit.lost_msat() > 0,
            stale_stake: None,
            detail: audit.summary(),
            test: test.to_string(),
        }
    }
}

/// Signed epochs that paid a bond's validator while the bond's funding transaction was out of the chain
/// and not every member had dropped its stake yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleStake {
    /// Such epochs (each pays the validator once).
    pub payouts: u64,
    /// What they paid it, msat.
    pub msat: u64,
}

fn yes() -> bool {
    true
}

/// Prints the row and appends it to `$BOLTENSOR_FAULT_REPORT` (if set).
pub fn record(row: &FaultRow) {
    let json = serde_json::to_string(row).expect("a fault row serialises");
    println!("FAULT-ROW {json}");
    if let Some(path) = std::env::var_os("BOLTENSOR_FAULT_REPORT") {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{json}"));
        if let Err(e) = appended {
            eprintln!("cannot append the fault row to {path:?}: {e}");
        }
    }
}
