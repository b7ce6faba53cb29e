//! The miner's crash-safe record of every paid request and credit note (redb, ADR 0003).
//!
//! Each state change is one write transaction, committed before its effect is visible outside: a request
//! is `Serving` before the model runs, its result is stored (`Settling`) before the payment is claimed.
//! After a crash, [`Store::unresolved`] tells the miner what to finish: claim `Settling` payments, fail
//! back `Serving` ones.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

const REQUESTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("requests");
const CREDITS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("credits");

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (disk full, corruption, ...).
    #[error("store: {0}")]
    Db(String),
    /// No request with this payment hash.
    #[error("unknown payment hash")]
    Unknown,
    /// The request is not in the state the operation needs (a replayed token, for example).
    #[error("request is {0:?}")]
    WrongState(Status),
    /// The credit note was spent or never issued.
    #[error("credit note already spent or unknown")]
    CreditUnavailable,
}

fn db<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Db(e.to_string())
}

/// Where a paid request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Challenge issued; waiting for the client to pay and come back.
    AwaitingPayment,
    /// Payment held, the model is running.
    Serving,
    /// Result stored; claiming the payment.
    Settling,
    /// Paid and delivered.
    Settled,
    /// The held payment was failed back (model failed, timeout, shutdown): the client has its funds.
    FailedBack,
    /// Never paid before the token expired.
    Expired,
}

/// One paid request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Payment hash.
    pub payment_hash: [u8; 32],
    /// Its preimage: revealed only by claiming.
    pub preimage: [u8; 32],
    /// The invoice amount.
    pub price_msat: u64,
    /// What the full price was before a credit note.
    pub gross_price_msat: u64,
    /// Token expiry, unix seconds.
    pub expires_at: u64,
    /// The model.
    pub model: String,
    /// State.
    pub status: Status,
    /// The response body, once there is one (kept for re-fetch with token + preimage).
    pub result: Option<Vec<u8>>,
    /// Content type of `result`.
    pub result_content_type: Option<String>,
    /// Credit note redeemed by this request.
    pub credit_id: Option<[u8; 16]>,
    /// New credit note issued with the result (token), and its value.
    pub new_credit: Option<(String, u64)>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
}

/// A credit note the miner issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditRecord {
    /// Value.
    pub amount_msat: u64,
    /// Expiry, unix seconds.
    pub expires_at: u64,
    /// Spent by this payment hash.
    pub spent_by: Option<[u8; 32]>,
}

/// The miner's store.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(db)?;
        }
        let database = Database::create(path).map_err(db)?;
        let txn = database.begin_write().map_err(db)?;
        txn.open_table(REQUESTS).map_err(db)?;
        txn.open_table(CREDITS).map_err(db)?;
        txn.commit().map_err(db)?;
        Ok(Store { db: database })
    }

    /// Records a new challenge.
    pub fn insert(&self, rec: &RequestRecord) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut t = txn.open_table(REQUESTS).map_err(db)?;
            let bytes = serde_json::to_vec(rec).map_err(db)?;
            t.insert(rec.payment_hash.as_slice(), bytes.as_slice())
                .map_err(db)?;
        }
        txn.commit().map_err(db)
    }

    /// The request with this payment hash.
    pub fn get(&self, hash: &[u8; 32]) -> Result<Option<RequestRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(REQUESTS).map_err(db)?;
        let got = t.get(hash.as_slice()).map_err(db)?;
        got.map(|v| serde_json::from_slice(v.value()).map_err(db))
            .transpose()
    }

    /// Applies `f` to the request in one transaction; `f` may refuse with an error.
    pub fn update<T>(
        &self,
        hash: &[u8; 32],
        f: impl FnOnce(&mut RequestRecord, &mut CreditTable<'_>) -> Result<T, StoreError>,
    ) -> Result<(T, RequestRecord), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let out;
        let rec;
        {
            let mut t = txn.open_table(REQUESTS).map_err(db)?;
            let mut r: RequestRecord = {
                let got = t.get(hash.as_slice()).map_err(db)?;
                let got = got.ok_or(StoreError::Unknown)?;
                serde_json::from_slice(got.value()).map_err(db)?
            };
            let mut credits = CreditTable {
                table: txn.open_table(CREDITS).map_err(db)?,
            };
            out = f(&mut r, &mut credits)?;
            let bytes = serde_json::to_vec(&r).map_err(db)?;
            t.insert(hash.as_slice(), bytes.as_slice()).map_err(db)?;
            rec = r;
        }
        txn.commit().map_err(db)?;
        Ok((out, rec))
    }

    /// Requests not finished: `AwaitingPayment`, `Serving` or `Settling`.
    pub fn unresolved(&self) -> Result<Vec<RequestRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(REQUESTS).map_err(db)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db)? {
            let (_, v) = item.map_err(db)?;
            let r: RequestRecord = serde_json::from_slice(v.value()).map_err(db)?;
            if matches!(
                r.status,
                Status::AwaitingPayment | Status::Serving | Status::Settling
            ) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Every request's outcome, for the ledger audit (`boltensor_audit`); `miner` names this miner's node.
    pub fn audit(&self, miner: &str) -> Result<Vec<boltensor_audit::MinerRequest>, StoreError> {
        use boltensor_audit::RequestOutcome as O;
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(REQUESTS).map_err(db)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db)? {
            let (_, v) = item.map_err(db)?;
            let r: RequestRecord = serde_json::from_slice(v.value()).map_err(db)?;
            out.push(boltensor_audit::MinerRequest {
                miner: miner.to_string(),
                payment_hash: r.payment_hash,
                price_msat: r.price_msat,
                outcome: match r.status {
                    Status::AwaitingPayment => O::Unpaid,
                    Status::Serving | Status::Settling => O::Open,
                    Status::Settled => O::Delivered,
                    Status::FailedBack => O::FailedBack,
                    Status::Expired => O::Expired,
                },
            });
        }
        Ok(out)
    }

    /// The credit note with this id.
    pub fn credit(&self, id: &[u8; 16]) -> Result<Option<CreditRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(CREDITS).map_err(db)?;
        let got = t.get(id.as_slice()).map_err(db)?;
        got.map(|v| serde_json::from_slice(v.value()).map_err(db))
            .transpose()
    }

    /// Counts of requests by status, for metrics and tests.
    pub fn counts(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(REQUESTS).map_err(db)?;
        let mut out = std::collections::BTreeMap::new();
        for item in t.iter().map_err(db)? {
            let (_, v) = item.map_err(db)?;
            let r: RequestRecord = serde_json::from_slice(v.value()).map_err(db)?;
            *out.entry(format!("{:?}", r.status)).or_insert(0) += 1;
        }
        Ok(out)
    }
}

/// The credit table inside an [`Store::update`] transaction.
pub struct CreditTable<'txn> {
    table: redb::Table<'txn, &'static [u8], &'static [u8]>,
}

impl std::fmt::Debug for CreditTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CreditTable")
    }
}

impl CreditTable<'_> {
    /// Issues a note.
    pub fn issue(&mut self, id: &[u8; 16], rec: &CreditRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(rec).map_err(db)?;
        self.table
            .insert(id.as_slice(), bytes.as_slice())
            .map_err(db)?;
        Ok(())
    }

    /// Marks a note spent by `by`; refuses one already spent or unknown.
    pub fn spend(&mut self, id: &[u8; 16], by: [u8; 32]) -> Result<CreditRecord, StoreError> {
        let mut rec: CreditRecord = {
            let got = self.table.get(id.as_slice()).map_err(db)?;
            let got = got.ok_or(StoreError::CreditUnavailable)?;
            serde_json::from_slice(got.value()).map_err(db)?
        };
        if rec.spent_by.is_some_and(|h| h != by) {
            return Err(StoreError::CreditUnavailable);
        }
        rec.spent_by = Some(by);
        self.issue(id, &rec)?;
        Ok(rec)
    }

    /// Returns a note to unspent (its request was failed back).
    pub fn unspend(&mut self, id: &[u8; 16]) -> Result<(), StoreError> {
        let rec: Option<CreditRecord> = {
            let got = self.table.get(id.as_slice()).map_err(db)?;
            got.map(|v| serde_json::from_slice(v.value()).map_err(db))
                .transpose()?
        };
        if let Some(mut rec) = rec {
            rec.spent_by = None;
            self.issue(id, &rec)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hash: u8) -> RequestRecord {
        RequestRecord {
            payment_hash: [hash; 32],
            preimage: [0; 32],
            price_msat: 1,
            gross_price_msat: 1,
            expires_at: 0,
            model: "m".into(),
            status: Status::AwaitingPayment,
            result: None,
            result_content_type: None,
            credit_id: None,
            new_credit: None,
            error: None,
            created_at: 0,
        }
    }

    #[test]
    fn state_changes_survive_reopen_and_refuse_replays() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("miner.redb");
        {
            let store = Store::open(&path).expect("open");
            store.insert(&record(1)).expect("insert");
            let serve = |r: &mut RequestRecord, _: &mut CreditTable<'_>| {
                if r.status != Status::AwaitingPayment {
                    return Err(StoreError::WrongState(r.status));
                }
                r.status = Status::Serving;
                Ok(())
            };
            store.update(&[1; 32], serve).expect("first use");
            assert!(matches!(
                store.update(&[1; 32], serve),
                Err(StoreError::WrongState(Status::Serving))
            ));
            store
                .update(&[1; 32], |_, credits| {
                    credits.issue(
                        &[5; 16],
                        &CreditRecord {
                            amount_msat: 10,
                            expires_at: 0,
                            spent_by: None,
                        },
                    )
                })
                .expect("issue");
        }
        let store = Store::open(&path).expect("reopen");
        assert_eq!(store.unresolved().expect("list")[0].status, Status::Serving);
        store.insert(&record(2)).expect("insert");
        store
            .update(&[2; 32], |_, c| c.spend(&[5; 16], [2; 32]))
            .expect("spend");
        store.insert(&record(3)).expect("insert");
        assert!(matches!(
            store.update(&[3; 32], |_, c| c.spend(&[5; 16], [3; 32])),
            Err(StoreError::CreditUnavailable)
        ));
    }
}
