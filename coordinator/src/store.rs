//! The ledger on disk (redb: ACID, fsync on commit — ADR 0003). One write transaction per accepted
//! item (the item and the state after it), one per finished session (the signed outcome, the signed
//! epoch result, the state after the epoch), and aleph-bft's unit backup so a member that crashes
//! mid-session replays its own units instead of equivocating.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::state::{EpochResult, State};

const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const ACCEPTED: TableDefinition<u64, &[u8]> = TableDefinition::new("accepted_items");
const SESSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("signed_sessions");
const EPOCHS: TableDefinition<u64, &[u8]> = TableDefinition::new("signed_epochs");
const BACKUP: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("aleph_backup");
/// Epoch payouts this member handed to its Lightning node, by slot (`epoch:key`): the highest attempt
/// and whether it was handed again while in doubt (`payout.rs`).
const PAYOUT_SENDS: TableDefinition<&str, (u32, bool)> = TableDefinition::new("payout_sends");

/// An item ordered and accepted in a session, with the member whose unit carried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedItem {
    /// The member whose unit carried it.
    pub peer: usize,
    /// The item.
    pub item: crate::items::ConsensusItem,
}

/// A finished session: its accepted items, the epoch result it closed (if any) and the members'
/// signatures over its header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedSession {
    /// The session index.
    pub session: u64,
    /// Its accepted items, in order.
    pub items: Vec<AcceptedItem>,
    /// The digest of the epoch result it closed (hex), if any.
    pub epoch_digest: Option<String>,
    /// member index → BIP-340 signature over the header (hex).
    pub signatures: std::collections::BTreeMap<usize, String>,
}

/// A signed epoch result: what `GET /v1/epochs/{n}` serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEpoch {
    /// The result with all its inputs.
    pub result: EpochResult,
    /// The session that closed it.
    pub session: u64,
    /// That session's items digest (hex), part of the signed header.
    pub items_digest: String,
    /// member index → BIP-340 signature over the session header (hex).
    pub signatures: std::collections::BTreeMap<usize, String>,
}

impl SignedEpoch {
    /// What the signatures certify: the result, the session that closed it and its items digest. Honest
    /// members hold the same, though each may hold a different set of n − f valid signatures over it (a
    /// member counts the first n − f it receives, ADR 0017).
    pub fn certified(&self) -> (&EpochResult, u64, &str) {
        (&self.result, self.session, &self.items_digest)
    }
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[error("ledger: {0}")]
pub struct StoreError(String);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// The coordinator's ledger.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(err)?;
        let tx = db.begin_write().map_err(err)?;
        {
            tx.open_table(STATE).map_err(err)?;
            tx.open_table(ACCEPTED).map_err(err)?;
            tx.open_table(SESSIONS).map_err(err)?;
            tx.open_table(EPOCHS).map_err(err)?;
            tx.open_table(BACKUP).map_err(err)?;
            tx.open_table(PAYOUT_SENDS).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(Store { db })
    }

    /// The stored state, if any.
    pub fn state(&self) -> Result<Option<State>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(STATE).map_err(err)?;
        match t.get("state").map_err(err)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(err)?)),
            None => Ok(None),
        }
    }

    /// Saves `state` (genesis).
    pub fn put_state(&self, state: &State) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut t = tx.open_table(STATE).map_err(err)?;
            t.insert("state", serde_json::to_vec(state).map_err(err)?.as_slice())
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The items accepted so far in the running session.
    pub fn accepted(&self) -> Result<Vec<AcceptedItem>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(ACCEPTED).map_err(err)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(err)? {
            let (_, v) = row.map_err(err)?;
            out.push(serde_json::from_slice(v.value()).map_err(err)?);
        }
        Ok(out)
    }

    /// Records accepted item number `index` and the state after it, atomically.
    pub fn accept(&self, index: u64, item: &AcceptedItem, state: &State) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut a = tx.open_table(ACCEPTED).map_err(err)?;
            a.insert(index, serde_json::to_vec(item).map_err(err)?.as_slice())
                .map_err(err)?;
            let mut s = tx.open_table(STATE).map_err(err)?;
            s.insert("state", serde_json::to_vec(state).map_err(err)?.as_slice())
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Finishes a session: its signed outcome, the signed epoch (if it closed one), the state after it;
    /// clears the session's accepted items and unit backup.
    pub fn complete_session(
        &self,
        signed: &SignedSession,
        epoch: Option<&SignedEpoch>,
        state: &State,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut s = tx.open_table(SESSIONS).map_err(err)?;
            if s.get(signed.session).map_err(err)?.is_some() {
                return Err(StoreError(format!(
                    "session {} is already complete",
                    signed.session
                )));
            }
            s.insert(
                signed.session,
                serde_json::to_vec(signed).map_err(err)?.as_slice(),
            )
            .map_err(err)?;
            if let Some(e) = epoch {
                let mut t = tx.open_table(EPOCHS).map_err(err)?;
                t.insert(
                    e.result.inputs.epoch,
                    serde_json::to_vec(e).map_err(err)?.as_slice(),
                )
                .map_err(err)?;
            }
            let mut st = tx.open_table(STATE).map_err(err)?;
            st.insert("state", serde_json::to_vec(state).map_err(err)?.as_slice())
                .map_err(err)?;
            let mut a = tx.open_table(ACCEPTED).map_err(err)?;
            a.retain(|_, _| false).map_err(err)?;
            let mut b = tx.open_table(BACKUP).map_err(err)?;
            b.retain(|_, _| false).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// A finished session.
    pub fn session(&self, index: u64) -> Result<Option<SignedSession>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(SESSIONS).map_err(err)?;
        match t.get(index).map_err(err)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(err)?)),
            None => Ok(None),
        }
    }

    /// A signed epoch.
    pub fn epoch(&self, epoch: u64) -> Result<Option<SignedEpoch>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(EPOCHS).map_err(err)?;
        match t.get(epoch).map_err(err)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(err)?)),
            None => Ok(None),
        }
    }

    /// The newest signed epoch.
    pub fn latest_epoch(&self) -> Result<Option<SignedEpoch>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(EPOCHS).map_err(err)?;
        let last = t.last().map_err(err)?;
        match last {
            Some((_, v)) => Ok(Some(serde_json::from_slice(v.value()).map_err(err)?)),
            None => Ok(None),
        }
    }

    /// The highest attempt of payout `slot` (`epoch:key`) handed to the Lightning node, and whether it
    /// was handed again in doubt.
    pub fn payout_sent(&self, slot: &str) -> Result<Option<(u32, bool)>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(PAYOUT_SENDS).map_err(err)?;
        Ok(t.get(slot).map_err(err)?.map(|v| v.value()))
    }

    /// Records, durably and before the node is asked, that attempt `attempt` of payout `slot` is handed
    /// to the Lightning node (`in_doubt`: again, the node having no record of it).
    pub fn record_payout_send(
        &self,
        slot: &str,
        attempt: u32,
        in_doubt: bool,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut t = tx.open_table(PAYOUT_SENDS).map_err(err)?;
            t.insert(slot, (attempt, in_doubt)).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Appends a chunk of aleph-bft's unit backup for `session`.
    pub fn backup_append(&self, session: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut t = tx.open_table(BACKUP).map_err(err)?;
            let next = t
                .range((session, 0)..=(session, u64::MAX))
                .map_err(err)?
                .next_back()
                .transpose()
                .map_err(err)?
                .map_or(0, |(k, _)| k.value().1 + 1);
            t.insert((session, next), bytes).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// aleph-bft's unit backup for `session`, concatenated.
    pub fn backup(&self, session: u64) -> Result<Vec<u8>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(BACKUP).map_err(err)?;
        let mut out = Vec::new();
        for row in t.range((session, 0)..=(session, u64::MAX)).map_err(err)? {
            let (_, v) = row.map_err(err)?;
            out.extend_from_slice(v.value());
        }
        Ok(out)
    }
}
