//! The node's forwarding income: every payment it forwarded and the fee it earned, kept in
//! `<storage_dir>/forwards.json` (ldk-node keeps no record of forwards, only an event).
//!
//! The dispatcher records a `PaymentForwarded` event here *before* telling ldk-node the event is
//! handled, and an event it could not record is not marked handled, so ldk-node delivers it again: no
//! forward is missed, even across a kill -9. The file is replaced atomically (write a temporary file,
//! fsync, rename, fsync the directory), so it is always one whole ledger. A kill between the record and
//! `event_handled` makes ldk-node replay that one event, which counts it twice: the ledger can be
//! ahead by the fees of the forwards in flight at a crash, never behind. A coordinator reports this
//! total to the federation, which pays a share of it out as the epoch pool (docs/economics.md): an
//! over-count costs the member that reports it, never another.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// What a node has forwarded since its ledger was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwards {
    /// Payments forwarded.
    pub count: u64,
    /// Fees earned, msat.
    pub fee_msat: u64,
    /// Amounts passed on to the next hop, msat.
    pub forwarded_msat: u64,
}

/// The ledger file and its current totals.
#[derive(Debug)]
pub(crate) struct ForwardLedger {
    path: PathBuf,
    totals: Mutex<Forwards>,
}

impl ForwardLedger {
    /// Opens the ledger in `dir` (all zero if there is none yet); the error says what is wrong with it.
    pub(crate) fn open(dir: &Path) -> Result<Self, String> {
        let path = dir.join("forwards.json");
        let totals = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not a forward ledger: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Forwards::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(ForwardLedger {
            path,
            totals: Mutex::new(totals),
        })
    }

    /// The totals.
    pub(crate) fn totals(&self) -> Forwards {
        *self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds one forward and writes the ledger; on an error nothing is counted.
    pub(crate) fn record(&self, fee_msat: u64, forwarded_msat: u64) -> std::io::Result<Forwards> {
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let next = Forwards {
            count: totals.count.saturating_add(1),
            fee_msat: totals.fee_msat.saturating_add(fee_msat),
            forwarded_msat: totals.forwarded_msat.saturating_add(forwarded_msat),
        };
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(&next).expect("totals serialise"))?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        *totals = next;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let l = ForwardLedger::open(dir.path()).expect("opens");
        assert_eq!(l.totals(), Forwards::default());
        l.record(1_000, 50_000).expect("records");
        l.record(1_010, 10_000).expect("records");
        let again = ForwardLedger::open(dir.path()).expect("opens");
        assert_eq!(
            again.totals(),
            Forwards {
                count: 2,
                fee_msat: 2_010,
                forwarded_msat: 60_000
            }
        );
        std::fs::write(dir.path().join("forwards.json"), b"{").expect("writes");
        assert!(ForwardLedger::open(dir.path()).is_err());
    }
}
