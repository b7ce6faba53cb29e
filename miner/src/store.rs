//! The miner's crash-safe record of every paid request and credit note (redb, ADR 0003).
//!
//! Each state change is one write transaction, committed before its effect is visible outside: a request
//! is `Serving` before the model runs, its result is stored (`Settling`) before the payment is claimed.
//! After a crash, [`Store::unresolved`] tells the miner what to finish: claim `Settling` payments, fail
//! back `Serving` ones.
//!
//! The store stays the size of its useful history: a challenge that expires unpaid is deleted
//! ([`Store::prune_unpaid`]), and what the sweep and `/metrics` read is kept apart from the history — an
//! index of the open requests (`open`) and per-state counters (`counts`), both updated in the same
//! transaction as the record they describe, so neither grows with the settled requests kept for the
//! audit (docs/security.md, row 11).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

const REQUESTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("requests");
const CREDITS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("credits");
/// Payment hashes of the requests not finished (`AwaitingPayment`, `Serving`, `Settling`).
const OPEN: TableDefinition<&[u8], ()> = TableDefinition::new("open");
/// Requests by state (the `Debug` name of the [`Status`]).
const COUNTS: TableDefinition<&str, u64> = TableDefinition::new("counts");
/// Store metadata: `index` is set once `open` and `counts` describe every record.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

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
    /// The model was already started once for this token before its payment was held (the early start
    /// of docs/adr/0008): a retry of the token runs the model only once the payment is held.
    #[serde(default)]
    pub early_run: bool,
    /// Served because its payment came first (the kept request ran).
    #[serde(default)]
    pub paid_first: bool,
    /// That run's result went to the token's own request (once, as in the concurrent flow).
    #[serde(default)]
    pub handed_to_token: bool,
}

impl Status {
    /// Not finished: the sweep and recovery look at it.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::AwaitingPayment | Status::Serving | Status::Settling
        )
    }

    fn name(self) -> String {
        format!("{self:?}")
    }
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
    /// Request records read (deserialised) so far: how tests see what a scan costs.
    records_read: std::sync::atomic::AtomicU64,
}

/// The request tables inside one write transaction, kept consistent with each other.
struct RequestTables<'txn> {
    requests: redb::Table<'txn, &'static [u8], &'static [u8]>,
    open: redb::Table<'txn, &'static [u8], ()>,
    counts: redb::Table<'txn, &'static str, u64>,
}

impl RequestTables<'_> {
    fn open(txn: &redb::WriteTransaction) -> Result<RequestTables<'_>, StoreError> {
        Ok(RequestTables {
            requests: txn.open_table(REQUESTS).map_err(db)?,
            open: txn.open_table(OPEN).map_err(db)?,
            counts: txn.open_table(COUNTS).map_err(db)?,
        })
    }

    fn bump(&mut self, status: Status, up: bool) -> Result<(), StoreError> {
        let name = status.name();
        let n = self
            .counts
            .get(name.as_str())
            .map_err(db)?
            .map_or(0, |v| v.value());
        let n = if up { n + 1 } else { n.saturating_sub(1) };
        if n == 0 {
            self.counts.remove(name.as_str()).map_err(db)?;
        } else {
            self.counts.insert(name.as_str(), n).map_err(db)?;
        }
        Ok(())
    }

    /// Writes `rec`, which was in state `old` (`None`: new), keeping the index and counters in step.
    fn put(&mut self, old: Option<Status>, rec: &RequestRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(rec).map_err(db)?;
        self.requests
            .insert(rec.payment_hash.as_slice(), bytes.as_slice())
            .map_err(db)?;
        if old != Some(rec.status) {
            if let Some(old) = old {
                self.bump(old, false)?;
            }
            self.bump(rec.status, true)?;
        }
        if rec.status.is_open() {
            self.open
                .insert(rec.payment_hash.as_slice(), ())
                .map_err(db)?;
        } else {
            self.open.remove(rec.payment_hash.as_slice()).map_err(db)?;
        }
        Ok(())
    }

    fn get(&self, hash: &[u8; 32]) -> Result<Option<RequestRecord>, StoreError> {
        let got = self.requests.get(hash.as_slice()).map_err(db)?;
        got.map(|v| serde_json::from_slice(v.value()).map_err(db))
            .transpose()
    }
}

impl Store {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(db)?;
        }
        let database = Database::create(path).map_err(db)?;
        let txn = database.begin_write().map_err(db)?;
        txn.open_table(CREDITS).map_err(db)?;
        {
            let mut meta = txn.open_table(META).map_err(db)?;
            let indexed = meta.get("index").map_err(db)?.is_some();
            let mut t = RequestTables::open(&txn)?;
            if !indexed {
                // A store written before the index: build it once from the records.
                let mut all = Vec::new();
                for item in t.requests.iter().map_err(db)? {
                    let (_, v) = item.map_err(db)?;
                    all.push(serde_json::from_slice::<RequestRecord>(v.value()).map_err(db)?);
                }
                for r in &all {
                    t.put(None, r)?;
                }
                meta.insert("index", 1).map_err(db)?;
            }
        }
        txn.commit().map_err(db)?;
        Ok(Store {
            db: database,
            records_read: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Request records read from disk so far (by lookups and scans).
    pub fn records_read(&self) -> u64 {
        self.records_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn read(&self, n: u64) {
        self.records_read
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records a new challenge.
    pub fn insert(&self, rec: &RequestRecord) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut t = RequestTables::open(&txn)?;
            let old = t.get(&rec.payment_hash)?.map(|r| r.status);
            t.put(old, rec)?;
        }
        txn.commit().map_err(db)
    }

    /// Deletes a request that never had a payment (a challenge that expired unpaid): it is no part of
    /// the audit, and keeping it would let anyone grow the store without paying. Refuses a record that
    /// is not `AwaitingPayment` or `Expired` (returns false, keeps it).
    pub fn prune_unpaid(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let pruned = {
            let mut t = RequestTables::open(&txn)?;
            match t.get(hash)? {
                Some(r) if matches!(r.status, Status::AwaitingPayment | Status::Expired) => {
                    t.requests.remove(hash.as_slice()).map_err(db)?;
                    t.open.remove(hash.as_slice()).map_err(db)?;
                    t.bump(r.status, false)?;
                    true
                }
                _ => false,
            }
        };
        txn.commit().map_err(db)?;
        Ok(pruned)
    }

    /// How many request records the store holds.
    pub fn len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(REQUESTS).map_err(db)?;
        t.len().map_err(db)
    }

    /// Whether the store holds no request.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// The request with this payment hash.
    pub fn get(&self, hash: &[u8; 32]) -> Result<Option<RequestRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(REQUESTS).map_err(db)?;
        let got = t.get(hash.as_slice()).map_err(db)?;
        self.read(u64::from(got.is_some()));
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
            let mut t = RequestTables::open(&txn)?;
            let mut r = t.get(hash)?.ok_or(StoreError::Unknown)?;
            self.read(1);
            let old = r.status;
            let mut credits = CreditTable {
                table: txn.open_table(CREDITS).map_err(db)?,
            };
            out = f(&mut r, &mut credits)?;
            t.put(Some(old), &r)?;
            rec = r;
        }
        txn.commit().map_err(db)?;
        Ok((out, rec))
    }

    /// Requests not finished: `AwaitingPayment`, `Serving` or `Settling`. Reads only those (through the
    /// index), however many finished requests the store keeps.
    pub fn unresolved(&self) -> Result<Vec<RequestRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let open = txn.open_table(OPEN).map_err(db)?;
        let t = txn.open_table(REQUESTS).map_err(db)?;
        let mut out = Vec::new();
        for item in open.iter().map_err(db)? {
            let (k, _) = item.map_err(db)?;
            let Some(v) = t.get(k.value()).map_err(db)? else {
                continue;
            };
            let r: RequestRecord = serde_json::from_slice(v.value()).map_err(db)?;
            out.push(r);
        }
        self.read(out.len() as u64);
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
            self.read(1);
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

    /// Counts of requests by status, for metrics and tests: read from counters kept with the records,
    /// so it costs the same whatever the history.
    pub fn counts(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = txn.open_table(COUNTS).map_err(db)?;
        let mut out = std::collections::BTreeMap::new();
        for item in t.iter().map_err(db)? {
            let (k, v) = item.map_err(db)?;
            out.insert(k.value().to_owned(), v.value());
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

    /// Returns a note to unspent because the request `by` that spent it was not paid: only the request
    /// that spent a note can give it back (a request that merely named the note, and was refused or
    /// failed back, cannot free a note another request spent). The caller makes sure `by`'s payment was
    /// never claimed. Returns whether the note was returned.
    pub fn unspend(&mut self, id: &[u8; 16], by: [u8; 32]) -> Result<bool, StoreError> {
        let rec: Option<CreditRecord> = {
            let got = self.table.get(id.as_slice()).map_err(db)?;
            got.map(|v| serde_json::from_slice(v.value()).map_err(db))
                .transpose()?
        };
        match rec {
            Some(mut rec) if rec.spent_by == Some(by) => {
                rec.spent_by = None;
                self.issue(id, &rec)?;
                Ok(true)
            }
            _ => Ok(false),
        }
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
            early_run: false,
            paid_first: false,
            handed_to_token: false,
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

    #[test]
    fn only_the_spender_returns_a_note() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&dir.path().join("miner.redb")).expect("open");
        store.insert(&record(1)).expect("insert");
        store.insert(&record(2)).expect("insert");
        let note = [9; 16];
        store
            .update(&[1; 32], |_, c| {
                c.issue(
                    &note,
                    &CreditRecord {
                        amount_msat: 10,
                        expires_at: u64::MAX,
                        spent_by: None,
                    },
                )
            })
            .expect("issue");
        store
            .update(&[1; 32], |_, c| c.spend(&note, [1; 32]))
            .expect("spend");
        // Request 2 named the same note and is failed back: the note stays spent by 1.
        let (returned, _) = store
            .update(&[2; 32], |_, c| c.unspend(&note, [2; 32]))
            .expect("unspend");
        assert!(!returned);
        assert_eq!(
            store.credit(&note).expect("read").map(|r| r.spent_by),
            Some(Some([1; 32]))
        );
        let (returned, _) = store
            .update(&[1; 32], |_, c| c.unspend(&note, [1; 32]))
            .expect("unspend");
        assert!(returned);
    }

    #[test]
    fn counts_and_the_open_index_follow_the_records_and_survive_pruning() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("miner.redb");
        let store = Store::open(&path).expect("open");
        for h in 1..=3 {
            store.insert(&record(h)).expect("insert");
        }
        store
            .update(&[1; 32], |r, _| {
                r.status = Status::Settled;
                Ok(())
            })
            .expect("settle");
        let counts = store.counts().expect("counts");
        assert_eq!(counts.get("AwaitingPayment"), Some(&2));
        assert_eq!(counts.get("Settled"), Some(&1));
        assert_eq!(store.unresolved().expect("open").len(), 2);
        assert!(store.prune_unpaid(&[2; 32]).expect("prune"));
        assert!(!store.prune_unpaid(&[1; 32]).expect("settled is kept"));
        assert_eq!(store.len().expect("len"), 2);
        drop(store);
        let store = Store::open(&path).expect("reopen");
        let counts = store.counts().expect("counts");
        assert_eq!(counts.get("AwaitingPayment"), Some(&1));
        assert_eq!(counts.get("Settled"), Some(&1));
        assert_eq!(store.unresolved().expect("open").len(), 1);
    }
}
