//! The federation's replicated state and its deterministic transition function.
//!
//! Every member applies the same ordered items to the same state with [`State::apply`]; an item that
//! fails a check is dropped identically everywhere (the error is only logged). At an epoch boundary
//! [`State::close_epoch`] runs the Yuma epoch (the protocol crate's port of subtensor) with stake =
//! attested bonded sats, and returns an [`EpochResult`] that carries every input it was computed from,
//! so anyone can recompute it ([`EpochResult::recompute`]).

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::XOnlyPublicKey;
use boltensor_contracts::BondProof;
use boltensor_protocol::weights::SignedWeights;
use boltensor_protocol::yuma::{self, EpochInput, EpochOutput, EpochParams};
use boltensor_protocol::Role;
use serde::{Deserialize, Serialize};
use substrate_fixed::types::I64F64;

use crate::items::{ConsensusItem, FeeReport, Registration};
use crate::params::Params;

/// A registered miner or validator (a "neuron" in subtensor's words), at its uid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neuron {
    /// Its registration.
    pub registration: Registration,
    /// The bond's outpoint and amount, when the registration carried a well-formed proof.
    pub bond: Option<BondInfo>,
    /// Members whose bitcoind saw the bond unspent and counting.
    pub attested_ok: BTreeSet<usize>,
    /// Members whose bitcoind saw the bond spent or no longer counting.
    pub attested_gone: BTreeSet<usize>,
    /// The epoch it registered in.
    pub registered_epoch: u64,
    /// The session it registered in (Yuma's `BlockAtRegistration`: a session is a block).
    pub registered_session: u64,
    /// The last epoch's incentive (u16).
    pub last_incentive: u16,
    /// The last epoch's emission to it, msat: incentive (miners) plus dividends (validators) — what a full
    /// registry prunes by, as subtensor's pruning score.
    #[serde(default)]
    pub last_emission: u64,
    /// Caught misbehaving (two different signed vectors for one epoch): no stake, no weights, and its
    /// bond is due to be slashed.
    #[serde(default)]
    pub slashed: bool,
}

/// A bond as its proof states it (checked against the chain by the members' attestations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondInfo {
    /// `txid:vout`.
    pub outpoint: String,
    /// Its amount in sat.
    pub amount_sat: u64,
}

impl Neuron {
    /// The stake it gives: the bond amount once more than f members attested it and fewer than f + 1
    /// reported it gone.
    pub fn stake_sat(&self, f: usize) -> u64 {
        match &self.bond {
            _ if self.slashed => 0,
            Some(b) if self.attested_ok.len() > f && self.attested_gone.len() <= f => b.amount_sat,
            _ => 0,
        }
    }
}

/// Two different weight vectors signed by one validator for one epoch: slashable evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquivocationRecord {
    /// The first vector ordered.
    pub first: SignedWeights,
    /// The conflicting one.
    pub second: SignedWeights,
}

/// The replicated state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Federation size.
    pub members: usize,
    /// Sessions finished.
    pub session: u64,
    /// The epoch whose weights are being collected.
    pub epoch: u64,
    /// The session the current epoch started at.
    pub epoch_start_session: u64,
    /// Parameters in force.
    pub params: Params,
    /// Parameters that take effect at the next epoch boundary.
    pub pending_params: Option<Params>,
    /// Votes this epoch: (name, value) → members.
    pub votes: BTreeMap<String, BTreeSet<usize>>,
    /// uid → neuron (`None`: a free uid).
    pub uids: Vec<Option<Neuron>>,
    /// A validator's latest weights (by uid), the epoch they were for and the session they were
    /// ordered in.
    pub weights: BTreeMap<u16, (u64, u64, SignedWeights)>,
    /// Yuma's carried state per uid: validator permits.
    pub permits: Vec<bool>,
    /// Yuma's carried state per uid: bond rows.
    pub bonds: Vec<Vec<(u16, u16)>>,
    /// Equivocations seen (evidence for slashing).
    pub equivocations: Vec<EquivocationRecord>,
    /// Epoch payouts with a receipt: (epoch, payee key hex) → payment id.
    pub receipts: BTreeMap<String, String>,
    /// Payouts owed: (epoch, payee key hex) → msat, until receipted.
    pub owed: BTreeMap<String, u64>,
    /// Member keys (for slash signatures).
    #[serde(default)]
    pub member_keys: Vec<XOnlyPublicKey>,
    /// Epoch payouts receipted so far, per payee key (hex): msat.
    #[serde(default)]
    pub paid_msat: BTreeMap<String, u64>,
    /// Bonds being slashed: outpoint → job.
    #[serde(default)]
    pub slashes: BTreeMap<String, crate::slash::SlashJob>,
    /// The last sequence number seen per registration key (hex), kept after deregistration: a
    /// registration or deregistration must carry a greater one (no replay).
    #[serde(default)]
    pub sequences: BTreeMap<String, u64>,
    /// Registration keys (hex) caught equivocating: slashed for good, whatever they register as next.
    #[serde(default)]
    pub slashed_keys: BTreeSet<String>,
    /// Bond outpoints of slashed registrants: a bond that backed a slashed registrant gives no stake to
    /// anyone again.
    #[serde(default)]
    pub slashed_outpoints: BTreeSet<String>,
    /// Commit-reveal: each validator's open commitment, `"<uid>:<epoch>"` → hash (hex), until revealed
    /// in the next epoch or dropped when that epoch closes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub commits: BTreeMap<String, String>,
    /// Each member's books of its forwarding income and the fee-funded pool (ADR 0015), by member index.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pool_books: BTreeMap<usize, PoolBooks>,
}

/// One member's books of its forwarding income and of a fee-funded pool (ADR 0015; `GET /v1/payouts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolBooks {
    /// Its latest fee report (running totals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<FeeReport>,
    /// The part of the reported fees closed epochs accounted for, msat: an epoch's income is the report
    /// minus this.
    pub accounted_msat: u64,
    /// The sum of its parts of every epoch's pool (`pool_fee_share_ppm` of its income then), msat.
    pub pool_msat: u64,
    /// The sum of the payouts it owes or owed, msat (≤ its parts: each payee's share is rounded down).
    pub owed_msat: u64,
    /// The sum of its receipted payouts, msat.
    pub paid_msat: u64,
}

/// What [`State::plan`] found an item changes (each found while checking, so the commit cannot fail).
enum Change {
    Register(RegisterPlan),
    Deregister(u16),
    Weights { uid: u16, equivocation: bool },
    Commit(u16),
    Reveal(u16),
    Attest(u16),
    Vote(Box<Params>),
    Other,
}

struct RegisterPlan {
    bond: Option<BondInfo>,
    slashed: bool,
    slot: Slot,
}

/// Where a registration goes.
enum Slot {
    /// The key is registered at this uid: an update.
    Existing(usize),
    /// A free uid.
    Free(usize),
    /// A new uid at the end (the registry is below `max_uids`).
    Append,
    /// The registry is full: this registrant is pruned.
    Evict(usize),
}

impl State {
    /// The state at genesis.
    pub fn genesis(params: Params, members: usize) -> Self {
        State {
            members,
            session: 0,
            epoch: 0,
            epoch_start_session: 0,
            params,
            pending_params: None,
            votes: BTreeMap::new(),
            uids: Vec::new(),
            weights: BTreeMap::new(),
            permits: Vec::new(),
            bonds: Vec::new(),
            equivocations: Vec::new(),
            receipts: BTreeMap::new(),
            owed: BTreeMap::new(),
            member_keys: Vec::new(),
            paid_msat: BTreeMap::new(),
            slashes: BTreeMap::new(),
            sequences: BTreeMap::new(),
            slashed_keys: BTreeSet::new(),
            slashed_outpoints: BTreeSet::new(),
            commits: BTreeMap::new(),
            pool_books: BTreeMap::new(),
        }
    }

    /// The federation id ([`crate::config::federation_id`] of the member keys) that registry items
    /// must name.
    pub fn federation_id(&self) -> [u8; 32] {
        crate::config::federation_id(&self.member_keys)
    }

    /// Refuses an item of `key` that names another federation or does not advance its sequence.
    fn check_fresh(
        &self,
        what: &str,
        key: &XOnlyPublicKey,
        federation: &str,
        sequence: u64,
    ) -> Result<(), String> {
        let ours = hex::encode(self.federation_id());
        if federation != ours {
            return Err(format!(
                "{what} for federation {federation}, this is federation {ours}"
            ));
        }
        if let Some(last) = self.sequences.get(&key.to_string()) {
            if sequence <= *last {
                return Err(format!(
                    "stale {what}: sequence {sequence}, key {key} is at sequence {last} (replayed?)"
                ));
            }
        }
        Ok(())
    }

    /// The uid of a registration key.
    pub fn uid_of(&self, key: &XOnlyPublicKey) -> Option<u16> {
        self.uids
            .iter()
            .position(|n| n.as_ref().is_some_and(|n| n.registration.key == *key))
            .map(|u| u as u16)
    }

    /// The uid of a miner's Lightning node id.
    pub fn miner_uid(&self, node_id: &str) -> Option<u16> {
        self.uids
            .iter()
            .position(|n| {
                n.as_ref().is_some_and(|n| {
                    n.registration.role == Role::Miner && n.registration.node_id == node_id
                })
            })
            .map(|u| u as u16)
    }

    /// Faulty members tolerated.
    pub fn max_faulty(&self) -> usize {
        self.members.saturating_sub(1) / 3
    }

    /// Members' votes needed.
    pub fn threshold(&self) -> usize {
        self.members - self.max_faulty()
    }

    /// Applies one ordered item carried by member `peer`'s unit. An error leaves the state unchanged:
    /// every check runs on `&self` ([`State::check`]) before the first change, so a refused item costs
    /// no copy of the state.
    pub fn apply(&mut self, item: &ConsensusItem, peer: usize) -> Result<(), String> {
        let change = self.plan(item, peer)?;
        self.commit(item, peer, change);
        Ok(())
    }

    /// The state after `item`, as a new value (this one unchanged); the copy is made only once the item
    /// passed every check. What a member writes to its store before it replaces its state.
    pub fn applied(&self, item: &ConsensusItem, peer: usize) -> Result<State, String> {
        let change = self.plan(item, peer)?;
        let mut next = self.clone();
        next.commit(item, peer, change);
        Ok(next)
    }

    /// Whether [`State::apply`] would accept `item` from member `peer`'s unit, without changing the
    /// state (what the API checks a submitted item against).
    pub fn check(&self, item: &ConsensusItem, peer: usize) -> Result<(), String> {
        self.plan(item, peer).map(|_| ())
    }

    /// Every check of [`State::apply`], read-only; what it found that the change needs.
    fn plan(&self, item: &ConsensusItem, peer: usize) -> Result<Change, String> {
        match item {
            ConsensusItem::Register(r) => self.plan_register(r).map(Change::Register),
            ConsensusItem::Deregister(d) => {
                d.verify()?;
                self.check_fresh("deregistration", &d.key, &d.federation, d.sequence)?;
                let uid = self.uid_of(&d.key).ok_or("not registered")?;
                Ok(Change::Deregister(uid))
            }
            ConsensusItem::Weights(sw) => {
                if self.params.commit_reveal != 0 {
                    return Err("commit-reveal is on: commit the vector's hash this epoch (type \"commit\") \
                         and reveal it in the next (type \"reveal\")"
                        .into());
                }
                self.plan_weights(sw)
            }
            ConsensusItem::Commit(c) => self.plan_commit(c),
            ConsensusItem::Reveal(r) => self.plan_reveal(r),
            ConsensusItem::Attest(a) => {
                let uid = self
                    .uid_of(&a.key)
                    .ok_or("attestation for an unregistered key")?;
                let n = self.uids[uid as usize].as_ref().expect("uid_of found it");
                let bond = n
                    .bond
                    .as_ref()
                    .ok_or("attestation for a registrant without bond")?;
                if bond.outpoint != a.outpoint {
                    return Err("attestation for another outpoint".into());
                }
                let set = if a.ok {
                    &n.attested_ok
                } else {
                    &n.attested_gone
                };
                if set.contains(&peer) {
                    return Err("duplicate attestation".into());
                }
                Ok(Change::Attest(uid))
            }
            ConsensusItem::Vote(v) => {
                let base = self.pending_params.as_ref().unwrap_or(&self.params);
                let next = base.with(&v.name, v.value)?;
                if self
                    .votes
                    .get(&format!("{}={}", v.name, v.value))
                    .is_some_and(|voters| voters.contains(&peer))
                {
                    return Err("duplicate vote".into());
                }
                Ok(Change::Vote(Box::new(next)))
            }
            ConsensusItem::SlashSignature(s) => {
                let job = self
                    .slashes
                    .get(&s.outpoint)
                    .ok_or("no slash under way for this bond")?;
                if job.signatures.contains_key(&peer) {
                    return Err("this member already signed".into());
                }
                if job.signatures.len() >= self.threshold() {
                    return Err("enough signatures already".into());
                }
                let proof = BondProof::from_hex(&job.proof).map_err(|e| e.to_string())?;
                crate::slash::verify_slash_signature(
                    &proof,
                    &self.member_keys,
                    peer,
                    &s.signature,
                )?;
                Ok(Change::Other)
            }
            ConsensusItem::Receipt(r) => {
                let slot = payout_slot(r.epoch, &r.key, r.payer);
                let owed = *self.owed.get(&slot).ok_or("no payout owed")?;
                if owed != r.msat {
                    return Err(format!("receipt for {} msat, {owed} owed", r.msat));
                }
                let by = r
                    .payer
                    .map_or_else(|| payer(r.epoch, self.members), usize::from);
                if by != peer {
                    return Err("receipt from a member that does not owe this payout".into());
                }
                Ok(Change::Other)
            }
            ConsensusItem::Fees(f) => {
                if peer >= self.members {
                    return Err("fee reports come from members only".into());
                }
                let last = self.pool_books.get(&peer).and_then(|b| b.report.as_ref());
                if last.is_some_and(|l| f.fee_msat <= l.fee_msat || f.forwards < l.forwards)
                    || (last.is_none() && f.fee_msat == 0)
                {
                    return Err("a fee report only grows: nothing new since the last one".into());
                }
                Ok(Change::Other)
            }
        }
    }

    /// Makes the change [`State::plan`] found; infallible (all checks are done).
    fn commit(&mut self, item: &ConsensusItem, peer: usize, change: Change) {
        match (item, change) {
            (ConsensusItem::Register(r), Change::Register(plan)) => self.commit_register(r, plan),
            (ConsensusItem::Deregister(d), Change::Deregister(uid)) => {
                self.free_uid(uid);
                self.sequences.insert(d.key.to_string(), d.sequence);
            }
            (ConsensusItem::Weights(sw), Change::Weights { uid, equivocation }) => {
                self.commit_weights(sw, uid, equivocation)
            }
            (ConsensusItem::Commit(c), Change::Commit(uid)) => {
                self.commits
                    .insert(format!("{uid}:{}", c.epoch), c.hash.clone());
            }
            (ConsensusItem::Reveal(r), Change::Reveal(uid)) => {
                self.commits
                    .remove(&format!("{uid}:{}", r.weights.vector.epoch));
                // Used by this epoch's Yuma: the vector of the epoch before, now that it is known.
                self.weights
                    .insert(uid, (self.epoch, self.session, r.weights.clone()));
            }
            (ConsensusItem::Attest(a), Change::Attest(uid)) => {
                let n = self.uids[uid as usize].as_mut().expect("planned");
                let (set, other) = if a.ok {
                    (&mut n.attested_ok, &mut n.attested_gone)
                } else {
                    (&mut n.attested_gone, &mut n.attested_ok)
                };
                set.insert(peer);
                other.remove(&peer);
            }
            (ConsensusItem::Vote(v), Change::Vote(next)) => {
                let threshold = self.threshold();
                let voters = self
                    .votes
                    .entry(format!("{}={}", v.name, v.value))
                    .or_default();
                voters.insert(peer);
                if voters.len() == threshold {
                    self.pending_params = Some(*next);
                }
            }
            (ConsensusItem::SlashSignature(s), Change::Other) => {
                self.slashes
                    .get_mut(&s.outpoint)
                    .expect("planned")
                    .signatures
                    .insert(peer, s.signature.clone());
            }
            (ConsensusItem::Fees(f), Change::Other) => {
                self.pool_books.entry(peer).or_default().report = Some(f.clone());
            }
            (ConsensusItem::Receipt(r), Change::Other) => {
                let slot = payout_slot(r.epoch, &r.key, r.payer);
                self.owed.remove(&slot);
                self.receipts.insert(slot, r.payment.clone());
                if let Some(m) = r.payer {
                    let b = self.pool_books.entry(usize::from(m)).or_default();
                    b.paid_msat = b.paid_msat.saturating_add(r.msat);
                }
                *self.paid_msat.entry(r.key.to_string()).or_default() += r.msat;
            }
            _ => unreachable!("plan returns the change of its item's kind"),
        }
    }

    fn plan_register(&self, r: &Registration) -> Result<RegisterPlan, String> {
        let node_id = crate::items::node_key(&r.node_id)?;
        r.verify()?;
        self.check_fresh("registration", &r.key, &r.federation, r.sequence)?;
        if !matches!(r.role, Role::Miner | Role::Validator) {
            return Err("only miners and validators register".into());
        }
        let bond = match &r.bond {
            None => None,
            Some(hex_proof) => {
                let proof =
                    BondProof::from_hex(hex_proof).map_err(|e| format!("bond proof: {e}"))?;
                proof
                    .verify_signature()
                    .map_err(|e| format!("bond proof: {e}"))?;
                let c = &proof.claims;
                if c.registration_key != r.key || c.node_id != node_id || c.role != r.role {
                    return Err("the bond proof is for another key, node or role".into());
                }
                if c.amount.to_sat() < self.params.bond_min_sat {
                    return Err(format!(
                        "bond of {} sat is below the minimum {}",
                        c.amount.to_sat(),
                        self.params.bond_min_sat
                    ));
                }
                Some(BondInfo {
                    outpoint: c.outpoint.to_string(),
                    amount_sat: c.amount.to_sat(),
                })
            }
        };
        let priced = self.params.miner_bond_min_sat > 0;
        if priced && r.role == Role::Miner {
            let ok = bond
                .as_ref()
                .is_some_and(|b| b.amount_sat >= self.params.miner_bond_min_sat);
            if !ok {
                return Err(format!(
                    "a miner registers with a bond of at least {} sat (miner_bond_min_sat)",
                    self.params.miner_bond_min_sat
                ));
            }
        }
        if priced && bond.is_none() {
            // A validator without a bond has no stake and no say; when registration has a price it
            // would only be a free registry slot.
            return Err(format!(
                "registration is priced with a bond (miner_bond_min_sat = {}): a validator registers with \
                 one of at least {} sat (bond_min_sat)",
                self.params.miner_bond_min_sat, self.params.bond_min_sat
            ));
        }
        // One bond, one node, one URL: each backs or names at most one registrant.
        let api = r.api.as_deref().map(normalise_url);
        for other in self.uids.iter().flatten() {
            let o = &other.registration;
            if o.key == r.key {
                continue;
            }
            if let (Some(b), Some(ob)) = (&bond, &other.bond) {
                if b.outpoint == ob.outpoint {
                    return Err(format!(
                        "conflict: bond {} already backs registrant {}",
                        b.outpoint, o.key
                    ));
                }
            }
            if o.node_id == r.node_id {
                return Err(format!(
                    "conflict: node id {} is already registered by {}",
                    r.node_id, o.key
                ));
            }
            if api.is_some() && o.api.as_deref().map(normalise_url) == api {
                return Err(format!(
                    "conflict: API URL {} is already registered by {}",
                    r.api.as_deref().unwrap_or_default(),
                    o.key
                ));
            }
        }
        let slashed = self.slashed_keys.contains(&r.key.to_string())
            || bond
                .as_ref()
                .is_some_and(|b| self.slashed_outpoints.contains(&b.outpoint));
        let slot = if let Some(uid) = self.uid_of(&r.key) {
            Slot::Existing(uid as usize)
        } else if let Some(free) = self.uids.iter().position(Option::is_none) {
            Slot::Free(free)
        } else if self.uids.len() < self.params.max_uids as usize {
            Slot::Append
        } else {
            // Full: prune the registrant past its immunity with the lowest emission (incentive plus
            // dividends: a validator's incentive is always 0), then the lowest stake, then the lowest uid.
            // When registration is priced, immunity needs a bond that counts: claims that never confirm
            // (free to sign) cannot keep the registry full of immune registrants.
            let f = self.max_faulty();
            let immune = |n: &Neuron| {
                n.registered_epoch + self.params.immunity_epochs > self.epoch
                    && (!priced || n.stake_sat(f) > 0)
            };
            let victim = self
                .uids
                .iter()
                .enumerate()
                .filter_map(|(u, n)| n.as_ref().map(|n| (u, n)))
                .filter(|(_, n)| !immune(n))
                .min_by_key(|(u, n)| (n.last_emission, n.stake_sat(f), *u))
                .map(|(u, _)| u)
                .ok_or("registry full and every registrant is immune")?;
            Slot::Evict(victim)
        };
        Ok(RegisterPlan {
            bond,
            slashed,
            slot,
        })
    }

    fn commit_register(&mut self, r: &Registration, plan: RegisterPlan) {
        let RegisterPlan {
            bond,
            slashed,
            slot,
        } = plan;
        self.sequences.insert(r.key.to_string(), r.sequence);
        let uid = match slot {
            Slot::Existing(uid) => {
                // A re-registration updates how to reach the registrant; a new bond needs new attestations.
                let n = self.uids[uid].as_mut().expect("planned");
                if n.bond != bond {
                    n.attested_ok.clear();
                    n.attested_gone.clear();
                    n.bond = bond;
                }
                let serves_otherwise = serves_otherwise(&n.registration, r);
                n.registration = r.clone();
                n.slashed |= slashed;
                if serves_otherwise {
                    // Subtensor's bonds reset (`do_reset_bonds`, BondsResetOn): a miner that now serves
                    // other models or another endpoint is a new miner to the validators, so no validator
                    // keeps the bond — and the dividends — it built on what the miner served before.
                    let column = uid as u16;
                    for row in &mut self.bonds {
                        row.retain(|(j, _)| *j != column);
                    }
                }
                return;
            }
            Slot::Free(uid) => uid,
            Slot::Append => {
                self.uids.push(None);
                self.permits.push(false);
                self.bonds.push(Vec::new());
                self.uids.len() - 1
            }
            Slot::Evict(victim) => {
                self.free_uid(victim as u16);
                victim
            }
        };
        self.uids[uid] = Some(Neuron {
            registration: r.clone(),
            bond,
            attested_ok: BTreeSet::new(),
            attested_gone: BTreeSet::new(),
            registered_epoch: self.epoch,
            registered_session: self.session,
            last_incentive: 0,
            last_emission: 0,
            slashed,
        });
    }

    fn free_uid(&mut self, uid: u16) {
        let u = uid as usize;
        self.uids[u] = None;
        self.permits[u] = false;
        self.bonds[u].clear();
        for row in &mut self.bonds {
            row.retain(|(j, _)| *j != uid);
        }
        self.weights.remove(&uid);
        let prefix = format!("{uid}:");
        self.commits.retain(|k, _| !k.starts_with(&prefix));
    }

    fn plan_weights(&self, sw: &SignedWeights) -> Result<Change, String> {
        sw.verify().map_err(|e| e.to_string())?;
        let key = XOnlyPublicKey::from_slice(&sw.vector.validator).map_err(|e| e.to_string())?;
        let uid = self.weighing_validator(&key)?;
        if sw.vector.epoch != self.epoch {
            return Err(format!(
                "weights for epoch {}, collecting epoch {}",
                sw.vector.epoch, self.epoch
            ));
        }
        let mut equivocation = false;
        if let Some((epoch, _, prev)) = self.weights.get(&uid) {
            if *epoch == self.epoch {
                if prev == sw {
                    return Err("duplicate weights".into());
                }
                equivocation = true;
            }
        }
        Ok(Change::Weights { uid, equivocation })
    }

    /// The uid of a validator that may take part in this epoch's weights (registered as a validator,
    /// not caught equivocating).
    fn weighing_validator(&self, key: &XOnlyPublicKey) -> Result<u16, String> {
        let uid = self
            .uid_of(key)
            .ok_or("weights from an unregistered validator")?;
        let n = self.uids[uid as usize].as_ref().expect("found");
        if n.registration.role != Role::Validator {
            return Err("weights from a registrant that is not a validator".into());
        }
        if n.slashed {
            return Err("weights from a validator caught equivocating".into());
        }
        Ok(uid)
    }

    fn plan_commit(&self, c: &crate::items::WeightsCommit) -> Result<Change, String> {
        if self.params.commit_reveal == 0 {
            return Err("commit-reveal is off: submit the weights themselves".into());
        }
        c.verify()?;
        let ours = hex::encode(self.federation_id());
        if c.federation != ours {
            return Err(format!(
                "commit for federation {}, this is federation {ours}",
                c.federation
            ));
        }
        let uid = self.weighing_validator(&c.validator)?;
        if c.epoch != self.epoch {
            return Err(format!(
                "commit for epoch {}, collecting epoch {}",
                c.epoch, self.epoch
            ));
        }
        if hex::decode(&c.hash).map_or(true, |h| h.len() != 32) {
            return Err("the commitment is not 32 bytes of hex".into());
        }
        if self.commits.contains_key(&format!("{uid}:{}", c.epoch)) {
            return Err(format!("duplicate commit: epoch {} is committed", c.epoch));
        }
        Ok(Change::Commit(uid))
    }

    fn plan_reveal(&self, r: &crate::items::WeightsReveal) -> Result<Change, String> {
        if self.params.commit_reveal == 0 {
            return Err("commit-reveal is off: submit the weights themselves".into());
        }
        let sw = &r.weights;
        sw.verify().map_err(|e| e.to_string())?;
        let key = XOnlyPublicKey::from_slice(&sw.vector.validator).map_err(|e| e.to_string())?;
        let uid = self.weighing_validator(&key)?;
        let epoch = sw.vector.epoch;
        if epoch.checked_add(1) != Some(self.epoch) {
            return Err(format!(
                "a reveal of epoch {epoch}'s weights is ordered while epoch {} collects; collecting epoch {}",
                epoch.saturating_add(1),
                self.epoch
            ));
        }
        let committed = self.commits.get(&format!("{uid}:{epoch}")).ok_or(format!(
            "no open commit of this validator for epoch {epoch}"
        ))?;
        if r.commitment()? != *committed {
            return Err("the reveal does not open the commit (another vector or salt)".into());
        }
        Ok(Change::Reveal(uid))
    }

    fn commit_weights(&mut self, sw: &SignedWeights, uid: u16, equivocation: bool) {
        if !equivocation {
            self.weights
                .insert(uid, (self.epoch, self.session, sw.clone()));
            return;
        }
        // Accepted as evidence: both vectors are signed by the validator, so anyone can check it. The
        // validator loses its stake and its weights at once; its bond is due for slashing.
        let (_, _, prev) = self
            .weights
            .remove(&uid)
            .expect("planned: weights this epoch");
        self.equivocations.push(EquivocationRecord {
            first: prev,
            second: sw.clone(),
        });
        let n = self.uids[uid as usize].as_mut().expect("planned");
        let key = n.registration.key;
        self.slashed_keys.insert(key.to_string());
        n.slashed = true;
        if let Some(b) = &n.bond {
            self.slashed_outpoints.insert(b.outpoint.clone());
        }
        if let (Some(b), Some(proof)) = (&n.bond, &n.registration.bond) {
            self.slashes
                .entry(b.outpoint.clone())
                .or_insert_with(|| crate::slash::SlashJob {
                    key,
                    proof: proof.clone(),
                    signatures: BTreeMap::new(),
                });
        }
    }

    /// Whether the session that just finished (`self.session` before increment) ends the epoch.
    pub fn closes_epoch(&self) -> bool {
        self.session + 1 - self.epoch_start_session >= self.params.epoch_sessions
    }

    /// Member `m`'s forwarding income not yet in any epoch: its last report minus what closed epochs
    /// accounted for.
    pub fn fee_income(&self, m: usize) -> u64 {
        self.pool_books.get(&m).map_or(0, |b| {
            b.report
                .as_ref()
                .map_or(0, |r| r.fee_msat.saturating_sub(b.accounted_msat))
        })
    }

    /// Runs the epoch on the current state and returns its result (the state is not changed: apply it
    /// with [`State::apply_epoch`]).
    pub fn epoch_result(&self, federation: [u8; 32], f: usize, n_members: usize) -> EpochResult {
        let neurons = self
            .uids
            .iter()
            .enumerate()
            .map(|(uid, n)| {
                n.as_ref().map(|n| EpochNeuron {
                    uid: uid as u16,
                    key: n.registration.key,
                    role: n.registration.role,
                    node_id: n.registration.node_id.clone(),
                    stake_sat: n.stake_sat(f),
                    registered_epoch: n.registered_epoch,
                    registered_block: n.registered_session,
                })
            })
            .collect::<Vec<_>>();
        let weights = self
            .weights
            .iter()
            .map(|(uid, (epoch, session, sw))| EpochWeights {
                uid: *uid,
                epoch: *epoch,
                block: session + 1,
                signed: sw.clone(),
            })
            .collect();
        let fees_msat = if self.params.pool_fee_share_ppm > 0 {
            (0..n_members).map(|m| self.fee_income(m)).collect()
        } else {
            Vec::new()
        };
        let inputs = EpochInputs {
            fees_msat,
            federation: hex::encode(federation),
            epoch: self.epoch,
            block: self.session + 1,
            last_step_block: self.epoch_start_session,
            params: self.params.clone(),
            neurons,
            weights,
            permits: self.permits.clone(),
            bonds: self.bonds.clone(),
        };
        let (output, payouts) = inputs.compute();
        EpochResult {
            payer: payer(self.epoch, n_members),
            inputs,
            output,
            payouts,
        }
    }

    /// Applies an epoch result: carries Yuma's state forward, records what is owed, starts the next
    /// epoch with the parameters voted in.
    pub fn apply_epoch(&mut self, result: &EpochResult) {
        for (u, bonds) in result.output.bonds.iter().enumerate() {
            if let Some(row) = bonds {
                self.bonds[u] = row.clone();
            }
        }
        self.permits = result.output.validator_permits.clone();
        for (u, n) in self.uids.iter_mut().enumerate() {
            if let Some(n) = n {
                n.last_incentive = result.output.incentive[u];
                n.last_emission = result.output.server_emission[u]
                    .saturating_add(result.output.validator_emission[u]);
            }
        }
        for p in &result.payouts {
            self.owed
                .insert(payout_slot(result.inputs.epoch, &p.key, p.payer), p.msat);
            if let Some(m) = p.payer {
                let b = self.pool_books.entry(usize::from(m)).or_default();
                b.owed_msat = b.owed_msat.saturating_add(p.msat);
            }
        }
        // Every member's income so far is accounted for: in this epoch's pool when the pool is funded
        // by fees (the figures the result carries), else in no pool.
        let parts = result.inputs.member_pools();
        for (m, b) in self.pool_books.iter_mut() {
            match result.inputs.fees_msat.get(*m) {
                Some(f) => {
                    b.accounted_msat = b.accounted_msat.saturating_add(*f);
                    b.pool_msat = b.pool_msat.saturating_add(parts[*m]);
                }
                None if result.inputs.fees_msat.is_empty() => {
                    b.accounted_msat = b.report.as_ref().map_or(0, |r| r.fee_msat);
                }
                None => {}
            }
        }
        self.epoch += 1;
        self.epoch_start_session = self.session + 1;
        // A commit is revealed while the next epoch collects, or never.
        let epoch = self.epoch;
        self.commits.retain(|k, _| {
            k.split_once(':')
                .and_then(|(_, e)| e.parse::<u64>().ok())
                .is_some_and(|e| e.saturating_add(1) >= epoch)
        });
        if let Some(p) = self.pending_params.take() {
            self.params = p;
        }
        self.votes.clear();
    }
}

/// Whether a miner's re-registration `new` serves something else than `old`: another endpoint (as
/// [`normalise_url`] compares them) or another set of models.
fn serves_otherwise(old: &Registration, new: &Registration) -> bool {
    if new.role != Role::Miner {
        return false;
    }
    let models = |r: &Registration| r.models.iter().cloned().collect::<BTreeSet<String>>();
    old.api.as_deref().map(normalise_url) != new.api.as_deref().map(normalise_url)
        || models(old) != models(new)
}

/// A miner API URL as the registry compares them: trimmed, lower case, without trailing `/` or `/v1`
/// (so `HTTP://Miner:80/v1/` and `http://miner:80` are one URL).
pub fn normalise_url(url: &str) -> String {
    let mut u = url.trim().to_ascii_lowercase();
    loop {
        let t = u.trim_end_matches('/');
        let t = t.strip_suffix("/v1").unwrap_or(t);
        if t.len() == u.len() {
            return u;
        }
        u = t.to_owned();
    }
}

/// The key under which a payout is owed and receipted: `"<epoch>:<payee key>"` when the epoch's
/// round-robin payer owes it, `"<epoch>:<member>:<payee key>"` when member `payer` pays its share of a
/// fee-funded pool.
pub fn payout_slot(epoch: u64, key: &XOnlyPublicKey, payer: Option<u16>) -> String {
    match payer {
        None => format!("{epoch}:{key}"),
        Some(m) => format!("{epoch}:{m}:{key}"),
    }
}

/// A payout slot's parts (see [`payout_slot`]).
pub fn parse_payout_slot(slot: &str) -> Option<(u64, Option<u16>, XOnlyPublicKey)> {
    let mut parts = slot.split(':');
    let epoch = parts.next()?.parse().ok()?;
    let (payer, key) = match (parts.next()?, parts.next(), parts.next()) {
        (key, None, None) => (None, key),
        (m, Some(key), None) => (Some(m.parse().ok()?), key),
        _ => return None,
    };
    Some((epoch, payer, key.parse().ok()?))
}

/// The member that pays epoch `epoch`'s pool: round robin.
pub fn payer(epoch: u64, n_members: usize) -> usize {
    (epoch % n_members.max(1) as u64) as usize
}

/// A neuron as an epoch saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochNeuron {
    /// Its uid.
    pub uid: u16,
    /// Its registration key.
    pub key: XOnlyPublicKey,
    /// Miner or validator.
    pub role: Role,
    /// Its Lightning node id.
    pub node_id: String,
    /// Attested bonded sats (its stake).
    pub stake_sat: u64,
    /// The epoch it registered in.
    pub registered_epoch: u64,
    /// The block (session) it registered in.
    pub registered_block: u64,
}

/// A validator's stored weights as an epoch used them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochWeights {
    /// The validator's uid.
    pub uid: u16,
    /// The epoch they were submitted for.
    pub epoch: u64,
    /// Yuma's `LastUpdate`: the block (session + 1) they were ordered in.
    pub block: u64,
    /// The signed vector.
    pub signed: SignedWeights,
}

/// Everything an epoch is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochInputs {
    /// When the pool is funded by fees (`pool_fee_share_ppm` > 0): each member's forwarding income in
    /// this epoch (reported minus accounted), msat, by member index. Empty otherwise (and then not
    /// serialised, so results signed before it keep their digest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fees_msat: Vec<u64>,
    /// The federation id (hex).
    pub federation: String,
    /// The epoch.
    pub epoch: u64,
    /// Yuma's current block: sessions are blocks, this is the closing session + 1.
    pub block: u64,
    /// Yuma's `LastMechansimStepBlock`: the session the epoch started at.
    pub last_step_block: u64,
    /// The parameters in force.
    pub params: Params,
    /// uid → neuron (`null`: a free uid).
    pub neurons: Vec<Option<EpochNeuron>>,
    /// The validators' stored weights.
    pub weights: Vec<EpochWeights>,
    /// Validator permits carried from the previous epoch.
    pub permits: Vec<bool>,
    /// Bond rows carried from the previous epoch.
    pub bonds: Vec<Vec<(u16, u16)>>,
}

/// One payout of an epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    /// The payee's uid.
    pub uid: u16,
    /// Its registration key.
    pub key: XOnlyPublicKey,
    /// Its Lightning node id.
    pub node_id: String,
    /// Incentive (miners) plus dividends (validators) share of the pool, msat.
    pub msat: u64,
    /// The member that pays it out of its own fee income, when the pool is funded by fees (`None`: the
    /// epoch's round-robin payer; not serialised then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<u16>,
}

impl EpochInputs {
    /// Runs subtensor's epoch on these inputs: blocks are sessions (tempo = sessions per epoch),
    /// stake is bonded sats, the emission is the pool in msat. Returns Yuma's output and the payouts.
    pub fn compute(&self) -> (EpochOutput, Vec<Payout>) {
        let n = self.neurons.len();
        let block = self.block;
        let mut last_update = vec![0u64; n];
        let mut rows: Vec<Vec<(u16, u16)>> = vec![Vec::new(); n];
        for w in &self.weights {
            let u = w.uid as usize;
            if u >= n {
                continue;
            }
            last_update[u] = w.block;
            // Miners by node id → uid (its position: a published `uid` field that disagrees is refused by
            // `recompute`, and never indexes out of range here); unknown ids are ignored, and so is a
            // miner whose bond does not count (yet) for `miner_bond_min_sat`; uid order as subtensor
            // stores rows.
            let mut row: Vec<(u16, u16)> = w
                .signed
                .vector
                .weights
                .iter()
                .filter_map(|(node, weight)| {
                    self.neurons.iter().enumerate().find_map(|(j, nn)| {
                        nn.as_ref()
                            .is_some_and(|nn| {
                                nn.role == Role::Miner
                                    && nn.node_id == *node
                                    && bonded_enough(&self.params, nn.stake_sat)
                            })
                            .then_some((j as u16, *weight))
                    })
                })
                .filter(|(_, w)| *w > 0)
                .collect();
            row.sort_unstable();
            rows[u] = row;
        }
        // Validators' bonds are Yuma's stake. A miner's bond is the price of its registration (ADR 0012):
        // miners submit no weights, so their stake would only count as votes for nobody.
        let stake: Vec<I64F64> = self
            .neurons
            .iter()
            .map(|nn| {
                I64F64::from_num(
                    nn.as_ref()
                        .filter(|nn| nn.role == Role::Validator)
                        .map_or(0, |nn| nn.stake_sat),
                )
            })
            .collect();
        let block_at_registration = self
            .neurons
            .iter()
            .map(|nn| nn.as_ref().map_or(0, |nn| nn.registered_block))
            .collect();
        let mut permits = self.permits.clone();
        permits.resize(n, false);
        let mut bonds = self.bonds.clone();
        bonds.resize(n, Vec::new());
        let params = EpochParams {
            kappa: self.params.kappa,
            max_allowed_validators: self.params.max_uids,
            activity_cutoff: self
                .params
                .activity_cutoff_epochs
                .saturating_mul(self.params.epoch_sessions),
            tempo: self.params.epoch_sessions,
            ..EpochParams::default()
        };
        let input = EpochInput {
            current_block: block,
            last_mechanism_step_block: self.last_step_block,
            stake,
            last_update,
            block_at_registration,
            validator_permits: permits,
            weights: rows,
            bonds,
            rao_emission: self.pool_msat(),
        };
        let output = match yuma::epoch(&params, &input) {
            Ok(o) => o,
            Err(_) => return (empty_output(n), Vec::new()),
        };
        let payouts: Vec<Payout> = self
            .neurons
            .iter()
            .enumerate()
            .filter_map(|(u, nn)| Some((u, nn.as_ref()?)))
            .filter_map(|(u, nn)| {
                let msat = output.server_emission[u].saturating_add(output.validator_emission[u]);
                (msat > 0).then(|| Payout {
                    uid: nn.uid,
                    key: nn.key,
                    node_id: nn.node_id.clone(),
                    msat,
                    payer: None,
                })
            })
            .collect();
        if self.params.pool_fee_share_ppm == 0 {
            return (output, payouts);
        }
        // Funded by fees: member m pays each payee its share of m's part of the pool, rounded down, so
        // m pays at most its part, and its part is at most the fees it earned.
        let pool = u128::from(self.pool_msat());
        let mut split = Vec::new();
        for (m, part) in self.member_pools().into_iter().enumerate() {
            for p in &payouts {
                let msat = (u128::from(p.msat) * u128::from(part) / pool.max(1)) as u64;
                if msat > 0 {
                    split.push(Payout {
                        msat,
                        payer: Some(m as u16),
                        ..p.clone()
                    });
                }
            }
        }
        (output, split)
    }

    /// Each member's part of a fee-funded pool: `pool_fee_share_ppm` of its income this epoch, msat, at
    /// most `u64::MAX / members` — so the parts add up without overflow, and a member reporting an
    /// absurd income (found by the fuzzer: parts that saturated the pool made the payouts exceed it) cannot
    /// shrink another member's part.
    pub fn member_pools(&self) -> Vec<u64> {
        let cap = u64::MAX / self.fees_msat.len().max(1) as u64;
        self.fees_msat
            .iter()
            .map(|f| {
                ((u128::from(*f) * u128::from(self.params.pool_fee_share_ppm.min(1_000_000))
                    / 1_000_000) as u64)
                    .min(cap)
            })
            .collect()
    }

    /// The epoch's pool, msat: the sum of the members' parts when funded by fees, else the fixed
    /// `epoch_pool_msat`.
    pub fn pool_msat(&self) -> u64 {
        if self.params.pool_fee_share_ppm == 0 {
            self.params.epoch_pool_msat
        } else {
            self.member_pools().into_iter().sum()
        }
    }
}

/// Whether a miner with `stake_sat` of attested bond may be weighed (and so paid) and listed: always when
/// `miner_bond_min_sat` is 0, else once more than f members attested a bond of at least that much. A
/// registration only *claims* its bond; without this a proof naming an outpoint that does not exist
/// would register a miner for free.
pub fn bonded_enough(params: &Params, stake_sat: u64) -> bool {
    params.miner_bond_min_sat == 0 || stake_sat >= params.miner_bond_min_sat
}

fn empty_output(n: usize) -> EpochOutput {
    EpochOutput {
        stake_weight: vec![0; n],
        active: vec![false; n],
        consensus: vec![0; n],
        validator_trust: vec![0; n],
        incentive: vec![0; n],
        dividends: vec![0; n],
        validator_permits: vec![false; n],
        server_emission: vec![0; n],
        validator_emission: vec![0; n],
        emission: vec![0; n],
        bonds: vec![None; n],
    }
}

/// An epoch's result: its inputs, Yuma's output and the payouts, and who pays them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochResult {
    /// What it was computed from.
    pub inputs: EpochInputs,
    /// Yuma's output.
    pub output: EpochOutput,
    /// The pool's split, msat.
    pub payouts: Vec<Payout>,
    /// The member that pays.
    pub payer: usize,
}

/// Why a recomputation disagrees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecomputeError {
    /// A weight vector's signature fails.
    #[error("the weights of uid {uid} do not verify: {reason}")]
    BadWeights {
        /// The validator's uid.
        uid: u16,
        /// Why.
        reason: String,
    },
    /// The inputs are not a shape any member produces (a neuron's `uid` is not its position).
    #[error("malformed epoch inputs: {0}")]
    Malformed(String),
    /// A weight vector's key is not the neuron's.
    #[error("the weights at uid {0} are signed by another key than that uid's validator")]
    WrongSigner(u16),
    /// Yuma's output differs.
    #[error("recomputed Yuma output differs from the published one")]
    OutputDiffers,
    /// The payouts differ.
    #[error("recomputed payouts differ from the published ones")]
    PayoutsDiffer,
}

/// One registrant's figures in an epoch result (u16, as Yuma stores them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scores {
    /// Incentive.
    pub incentive: u16,
    /// Consensus weight.
    pub consensus: u16,
    /// Dividends.
    pub dividends: u16,
    /// Validator trust.
    pub trust: u16,
}

impl EpochResult {
    /// The figures of the registrant `key` at `uid`, if this result saw that key there (a uid freed and
    /// reused since shows nothing).
    pub fn scores_of(&self, uid: usize, key: &XOnlyPublicKey) -> Option<Scores> {
        let nn = self.inputs.neurons.get(uid)?.as_ref()?;
        let o = &self.output;
        // A result read from outside may have output vectors shorter than its neurons (found by the
        // `epoch` fuzzer): no figures then, never a panic.
        (nn.key == *key).then_some(())?;
        Some(Scores {
            incentive: *o.incentive.get(uid)?,
            consensus: *o.consensus.get(uid)?,
            dividends: *o.dividends.get(uid)?,
            trust: *o.validator_trust.get(uid)?,
        })
    }

    /// The digest members sign: SHA-256 over the canonical JSON.
    pub fn digest(&self) -> [u8; 32] {
        let mut e = sha256::Hash::engine();
        e.input(b"boltensor/epoch-result/v1");
        e.input(&serde_json::to_vec(self).expect("serialisable"));
        sha256::Hash::from_engine(e).to_byte_array()
    }

    /// Recomputes the result from its inputs: every weight vector's signature, Yuma, the payouts.
    pub fn recompute(&self) -> Result<(), RecomputeError> {
        for (u, nn) in self.inputs.neurons.iter().enumerate() {
            if let Some(nn) = nn {
                if usize::from(nn.uid) != u {
                    return Err(RecomputeError::Malformed(format!(
                        "the neuron at position {u} says it is uid {}",
                        nn.uid
                    )));
                }
            }
        }
        for w in &self.inputs.weights {
            w.signed.verify().map_err(|e| RecomputeError::BadWeights {
                uid: w.uid,
                reason: e.to_string(),
            })?;
            let signer_ok = self
                .inputs
                .neurons
                .get(w.uid as usize)
                .and_then(Option::as_ref)
                .is_some_and(|nn| nn.key.serialize() == w.signed.vector.validator);
            if !signer_ok {
                return Err(RecomputeError::WrongSigner(w.uid));
            }
        }
        let (output, payouts) = self.inputs.compute();
        if output != self.output {
            return Err(RecomputeError::OutputDiffers);
        }
        if payouts != self.payouts {
            return Err(RecomputeError::PayoutsDiffer);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::secp256k1::{Keypair, SecretKey, SECP256K1};

    use super::*;
    use crate::items::{Attestation, Deregistration};

    fn kp(i: u64) -> Keypair {
        let mut b = [3u8; 32];
        b[..8].copy_from_slice(&(i + 1).to_be_bytes());
        Keypair::from_secret_key(SECP256K1, &SecretKey::from_slice(&b).expect("valid"))
    }

    fn miner(i: u64) -> ConsensusItem {
        let k = kp(i);
        let node = kp(1000 + i);
        let mut r = Registration::new(
            Role::Miner,
            k.x_only_public_key().0,
            node.public_key().to_string(),
            crate::config::federation_id(&[]),
        );
        r.api = Some(format!("http://m{i}"));
        r.models = vec!["m".into()];
        r.sequence = i + 1;
        ConsensusItem::Register(
            r.sign_node(|m| boltensor_ln::sign_message_with_key(m, &node.secret_key()))
                .sign(&k),
        )
    }

    fn state(max_uids: u16, immunity: u64) -> State {
        State::genesis(
            Params {
                max_uids,
                immunity_epochs: immunity,
                ..Params::default()
            },
            4,
        )
    }

    #[test]
    fn a_full_registry_prunes_the_lowest_emission_registrant_past_immunity() {
        let mut st = state(3, 2);
        for i in 0..3 {
            st.apply(&miner(i), 0).expect("room");
        }
        // Everyone is immune in epoch 0: a fourth registration is refused.
        let err = st.apply(&miner(3), 0).expect_err("full and immune");
        assert!(err.contains("immune"), "{err}");
        // Two epochs later, with incentives 500, 100, 900: uid 1 (lowest) makes room.
        st.epoch = 2;
        for (u, emission) in [(0usize, 500u64), (1, 100), (2, 900)] {
            st.uids[u].as_mut().expect("registered").last_emission = emission;
        }
        st.apply(&miner(3), 0).expect("prunes uid 1");
        assert_eq!(st.uid_of(&kp(3).x_only_public_key().0), Some(1));
        assert_eq!(st.uid_of(&kp(1).x_only_public_key().0), None, "pruned");
        // The newcomer is immune now: the next one replaces uid 0 (incentive 500), not the newcomer (0).
        st.apply(&miner(4), 0).expect("prunes uid 0");
        assert_eq!(st.uid_of(&kp(0).x_only_public_key().0), None);
        assert!(st.uid_of(&kp(3).x_only_public_key().0).is_some());
    }

    #[test]
    fn a_miner_that_serves_otherwise_loses_the_validators_bonds_to_it() {
        let mut st = state(8, 0);
        st.apply(&miner(0), 0).expect("registers");
        st.apply(&miner(1), 0).expect("registers");
        // Validator rows (uid 5 and 6 stand for validators here) hold bonds to both miners.
        st.bonds = vec![Vec::new(); 7];
        st.bonds[5] = vec![(0, 30_000), (1, 20_000)];
        st.bonds[6] = vec![(0, 10_000)];
        let again = |models: &[&str], api: &str, sequence: u64| {
            let ConsensusItem::Register(r) = miner(0) else {
                unreachable!()
            };
            let mut r = r;
            r.models = models.iter().map(|m| m.to_string()).collect();
            r.api = Some(api.into());
            r.sequence = sequence;
            let (k, node) = (kp(0), kp(1000));
            ConsensusItem::Register(
                r.sign_node(|m| boltensor_ln::sign_message_with_key(m, &node.secret_key()))
                    .sign(&k),
            )
        };
        // The same endpoint (spelled otherwise) and models: the bonds stay.
        st.apply(&again(&["m"], "HTTP://M0/v1/", 10), 0)
            .expect("re-registers");
        assert_eq!(st.bonds[5], vec![(0, 30_000), (1, 20_000)]);
        assert_eq!(st.bonds[6], vec![(0, 10_000)]);
        // Another model: every validator's bond to miner 0 goes, the bonds to miner 1 stay.
        st.apply(&again(&["other"], "http://m0", 11), 0)
            .expect("re-registers");
        assert_eq!(st.bonds[5], vec![(1, 20_000)]);
        assert!(st.bonds[6].is_empty());
        // Another endpoint, after the bonds grew back.
        st.bonds[5].push((0, 5_000));
        st.apply(&again(&["other"], "http://elsewhere", 12), 0)
            .expect("re-registers");
        assert_eq!(st.bonds[5], vec![(1, 20_000)]);
    }

    #[test]
    fn a_priced_registry_gives_no_immunity_to_a_bond_that_does_not_count() {
        // Miners with bond claims at outpoints that were never attested (what anyone can sign).
        let priced = |i: u64| {
            let ConsensusItem::Register(mut r) = miner(i) else {
                unreachable!()
            };
            let (k, node) = (kp(i), kp(1000 + i));
            let claims = boltensor_contracts::BondClaims {
                outpoint: bitcoin::OutPoint {
                    txid: bitcoin::Txid::from_byte_array([i as u8 + 1; 32]),
                    vout: 0,
                },
                amount: bitcoin::Amount::from_sat(50_000),
                timelock: 2_000,
                owner: k.x_only_public_key().0,
                role: Role::Miner,
                node_id: node.public_key(),
                registration_key: k.x_only_public_key().0,
            };
            r.bond = Some(claims.sign(&k).expect("signs").to_hex());
            ConsensusItem::Register(
                r.sign_node(|m| boltensor_ln::sign_message_with_key(m, &node.secret_key()))
                    .sign(&k),
            )
        };
        let mut st = state(3, 5);
        st.params.miner_bond_min_sat = 50_000;
        for i in 0..3 {
            st.apply(&priced(i), 0).expect("room");
        }
        // All registered this epoch (within immunity), none attested: the newcomer takes uid 0.
        st.apply(&priced(3), 0)
            .expect("no immunity without a counted bond");
        assert_eq!(st.uid_of(&kp(3).x_only_public_key().0), Some(0));
        // Once more than f = 1 members attest uid 1's bond, it is immune; the unattested ones are not.
        st.apply(&attest_for(&st, 1), 0).expect("attests");
        st.apply(&attest_for(&st, 1), 1).expect("attests");
        st.apply(&priced(4), 0).expect("prunes the unattested one");
        assert!(st.uid_of(&kp(1).x_only_public_key().0).is_some(), "immune");
        // A validator without a bond is refused outright when registration is priced.
        let v = kp(9);
        let r = Registration::new(
            Role::Validator,
            v.x_only_public_key().0,
            kp(1009).public_key().to_string(),
            crate::config::federation_id(&[]),
        );
        let item = ConsensusItem::Register(
            r.sign_node(|m| boltensor_ln::sign_message_with_key(m, &kp(1009).secret_key()))
                .sign(&v),
        );
        let err = st.apply(&item, 0).expect_err("priced");
        assert!(err.contains("priced"), "{err}");
    }

    /// An attestation that uid `uid`'s bond counts (the member is the peer it is applied from).
    fn attest_for(st: &State, uid: usize) -> ConsensusItem {
        let n = st.uids[uid].as_ref().expect("registered");
        ConsensusItem::Attest(Attestation {
            key: n.registration.key,
            outpoint: n.bond.as_ref().expect("bonded").outpoint.clone(),
            ok: true,
        })
    }

    #[test]
    fn commit_reveal_uses_the_vector_revealed_in_the_next_epoch() {
        use crate::items::{WeightsCommit, WeightsReveal};
        use boltensor_protocol::weights::WeightVector;
        let mut st = state(8, 0);
        st.params.commit_reveal = 1;
        let fed = st.federation_id();
        st.apply(&miner(0), 0).expect("miner");
        let (v, vnode) = (kp(50), kp(1050));
        let reg = Registration::new(
            Role::Validator,
            v.x_only_public_key().0,
            vnode.public_key().to_string(),
            fed,
        );
        st.apply(
            &ConsensusItem::Register(
                reg.sign_node(|m| boltensor_ln::sign_message_with_key(m, &vnode.secret_key()))
                    .sign(&v),
            ),
            0,
        )
        .expect("validator");
        let vector = |epoch: u64, w: u16| WeightVector {
            epoch,
            validator: v.x_only_public_key().0.serialize(),
            weights: [(kp(1000).public_key().to_string(), w)]
                .into_iter()
                .collect(),
        };
        let salt = [9u8; 32];
        let reveal = |vec: WeightVector, salt: [u8; 32]| {
            ConsensusItem::Reveal(WeightsReveal {
                weights: vec.sign(&v),
                salt: hex::encode(salt),
            })
        };
        let err = st
            .apply(&ConsensusItem::Weights(vector(0, 1).sign(&v)), 0)
            .expect_err("plain weights");
        assert!(err.contains("commit-reveal is on"), "{err}");
        let commit = ConsensusItem::Commit(WeightsCommit::new(&v, fed, &vector(0, 65_535), &salt));
        st.apply(&commit, 0).expect("commits");
        assert!(st
            .apply(&commit, 1)
            .expect_err("once")
            .contains("duplicate"));
        let other_fed =
            ConsensusItem::Commit(WeightsCommit::new(&v, [1; 32], &vector(0, 1), &salt));
        assert!(
            st.check(&other_fed, 0).is_err(),
            "another federation's commit"
        );
        let far = st
            .check(&reveal(vector(u64::MAX, 1), salt), 0)
            .expect_err("no such epoch");
        assert!(far.contains("collecting epoch 0"), "{far}");
        let early = st
            .apply(&reveal(vector(0, 65_535), salt), 0)
            .expect_err("same epoch");
        assert!(early.contains("while epoch 1 collects"), "{early}");
        let uid = st.uid_of(&v.x_only_public_key().0).expect("registered");
        assert!(!st.weights.contains_key(&uid), "nothing to use in epoch 0");
        let r = st.epoch_result(fed, 1, 4);
        st.apply_epoch(&r);
        // Epoch 1: only the committed vector with its salt opens the commit.
        assert!(st
            .apply(&reveal(vector(0, 65_535), [8; 32]), 0)
            .expect_err("salt")
            .contains("does not open"));
        assert!(st
            .apply(&reveal(vector(0, 7), salt), 0)
            .expect_err("vector")
            .contains("does not open"));
        st.apply(&reveal(vector(0, 65_535), salt), 0)
            .expect("reveals");
        let (epoch, _, held) = st.weights.get(&uid).expect("in use");
        assert_eq!(
            (*epoch, held.vector.epoch),
            (1, 0),
            "epoch 0's vector counts in epoch 1"
        );
        assert!(st.commits.is_empty(), "the commit is spent");
        // A commit never revealed is gone once the epoch it could be revealed in closes.
        st.apply(
            &ConsensusItem::Commit(WeightsCommit::new(&v, fed, &vector(1, 3), &salt)),
            0,
        )
        .expect("commits epoch 1");
        for _ in 0..2 {
            let r = st.epoch_result(fed, 1, 4);
            st.apply_epoch(&r);
        }
        assert!(st.commits.is_empty(), "{:?}", st.commits);
    }

    #[test]
    fn a_fee_funded_pool_is_a_share_of_each_members_income_paid_by_that_member() {
        use crate::items::{FeeReport, PayoutReceipt};
        use boltensor_protocol::weights::WeightVector;
        let mut st = state(8, 0);
        st.params.pool_fee_share_ppm = 500_000;
        let fed = st.federation_id();
        st.apply(&miner(0), 0).expect("miner");
        st.apply(
            &ConsensusItem::Register(registrant(1, Role::Validator, 1, Some((1, 7)))),
            0,
        )
        .expect("validator");
        let vuid = st.uid_of(&kp(1).x_only_public_key().0).expect("registered");
        for m in 0..2 {
            st.apply(&attest_for(&st, vuid as usize), m)
                .expect("attests");
        }
        let weights = WeightVector {
            epoch: 0,
            validator: kp(1).x_only_public_key().0.serialize(),
            weights: [(kp(1000).public_key().to_string(), 65_535)]
                .into_iter()
                .collect(),
        };
        st.apply(&ConsensusItem::Weights(weights.sign(&kp(1))), 0)
            .expect("weights");
        let fees = |fee_msat, forwards| ConsensusItem::Fees(FeeReport { fee_msat, forwards });
        // Reports are running totals that only grow, from members only.
        assert!(st.apply(&fees(0, 0), 0).is_err(), "nothing earned");
        st.apply(&fees(40_000, 40), 0).expect("member 0");
        st.apply(&fees(10_001, 10), 2).expect("member 2");
        assert!(st.apply(&fees(40_000, 41), 0).is_err(), "not more");
        assert!(st.apply(&fees(50_000, 39), 0).is_err(), "fewer forwards");
        assert!(st.apply(&fees(1, 1), 4).is_err(), "not a member");
        st.apply(&fees(60_000, 60), 0).expect("member 0 again");
        let r = st.epoch_result(fed, 1, 4);
        assert_eq!(r.inputs.fees_msat, vec![60_000, 0, 10_001, 0]);
        assert_eq!(r.inputs.member_pools(), vec![30_000, 0, 5_000, 0]);
        assert_eq!(r.inputs.pool_msat(), 35_000);
        r.recompute().expect("recomputes");
        // Each paying member pays every payee its part, rounded down: never more than its part.
        let by = |m: u16| -> u64 {
            r.payouts
                .iter()
                .filter(|p| p.payer == Some(m))
                .map(|p| p.msat)
                .sum()
        };
        assert!(r.payouts.iter().all(|p| matches!(p.payer, Some(0 | 2))));
        assert!(by(0) <= 30_000 && by(0) > 29_990, "{}", by(0));
        assert!(by(2) <= 5_000 && by(2) > 4_990, "{}", by(2));
        // One payee (a first epoch pays the validator by stake, subtensor's fallback), paid by both.
        assert_eq!(r.payouts.len(), 2, "{:?}", r.payouts);
        st.apply_epoch(&r);
        assert_eq!(st.fee_income(0), 0, "accounted");
        assert_eq!(st.pool_books[&0].pool_msat, 30_000);
        assert_eq!(st.pool_books[&0].owed_msat, by(0));
        // Only the member that owes a payout receipts it.
        let p = r
            .payouts
            .iter()
            .find(|p| p.payer == Some(2))
            .expect("member 2 pays");
        let receipt = ConsensusItem::Receipt(PayoutReceipt {
            epoch: 0,
            key: p.key,
            msat: p.msat,
            payment: "00".repeat(32),
            payer: Some(2),
        });
        assert!(st.check(&receipt, 0).is_err(), "another member");
        st.apply(&receipt, 2).expect("its payer");
        assert_eq!(st.pool_books[&2].paid_msat, p.msat);
        assert!(st.check(&receipt, 2).is_err(), "once");
        // The next epoch's income is what came after.
        st.apply(&fees(61_000, 61), 0).expect("more");
        assert_eq!(st.fee_income(0), 1_000);
        // A slot names its payer.
        let slot = payout_slot(0, &p.key, Some(2));
        assert_eq!(parse_payout_slot(&slot), Some((0, Some(2), p.key)));
        assert_eq!(
            parse_payout_slot(&payout_slot(3, &p.key, None)),
            Some((3, None, p.key))
        );
        assert_eq!(parse_payout_slot("1:2:3:4"), None);
    }

    #[test]
    fn deregistration_frees_the_uid_and_needs_the_key() {
        let mut st = state(8, 0);
        st.apply(&miner(0), 0).expect("registers");
        let fed = st.federation_id();
        let mut forged = Deregistration::with_sequence(&kp(9), fed, 10);
        forged.key = kp(0).x_only_public_key().0;
        assert!(st.apply(&ConsensusItem::Deregister(forged), 0).is_err());
        st.apply(
            &ConsensusItem::Deregister(Deregistration::with_sequence(&kp(0), fed, 10)),
            0,
        )
        .expect("signed by its key");
        assert_eq!(st.uids.iter().flatten().count(), 0);
        // The free uid is reused.
        st.apply(&miner(1), 0).expect("registers");
        assert_eq!(st.uid_of(&kp(1).x_only_public_key().0), Some(0));
    }

    #[test]
    fn a_bond_counts_with_more_than_f_attestations_and_stops_when_reported_gone() {
        let mut st = state(8, 0);
        let k = kp(0).x_only_public_key().0;
        st.apply(&miner(0), 0).expect("registers");
        let n = st.uids[0].as_mut().expect("registered");
        n.bond = Some(BondInfo {
            outpoint: "ab:0".into(),
            amount_sat: 50_000,
        });
        let attest = |ok| {
            ConsensusItem::Attest(Attestation {
                key: k,
                outpoint: "ab:0".into(),
                ok,
            })
        };
        let stake = |st: &State| st.uids[0].as_ref().expect("registered").stake_sat(1);
        st.apply(&attest(true), 0).expect("member 0");
        assert_eq!(stake(&st), 0, "one member (f = 1) is not enough");
        assert!(st.apply(&attest(true), 0).is_err(), "a member attests once");
        st.apply(&attest(true), 1).expect("member 1");
        assert_eq!(stake(&st), 50_000);
        // The bond is spent or aged out: more than f members report it gone.
        st.apply(&attest(false), 2).expect("member 2");
        assert_eq!(stake(&st), 50_000, "one report is not enough");
        st.apply(&attest(false), 0)
            .expect("member 0 changes its view");
        assert_eq!(stake(&st), 0);
        // Attestations for another outpoint are refused.
        let other = ConsensusItem::Attest(Attestation {
            key: k,
            outpoint: "cd:1".into(),
            ok: true,
        });
        assert!(st.apply(&other, 3).is_err());
    }

    /// Registrant `i` (node key `1000 + i`) as `role`, sequence `seq`, backed by `bond` = (owner, txid byte)
    /// if given.
    fn registrant(i: u64, role: Role, seq: u64, bond: Option<(u64, u8)>) -> Registration {
        let k = kp(i);
        let node = kp(1000 + i);
        let mut r = Registration::new(
            role,
            k.x_only_public_key().0,
            node.public_key().to_string(),
            crate::config::federation_id(&[]),
        );
        r.sequence = seq;
        r.bond = bond.map(|(owner, txid)| {
            let owner = kp(owner);
            boltensor_contracts::BondClaims {
                outpoint: bitcoin::OutPoint {
                    txid: <bitcoin::Txid as Hash>::from_byte_array([txid; 32]),
                    vout: 0,
                },
                amount: bitcoin::Amount::from_sat(100_000),
                timelock: 1008,
                owner: owner.x_only_public_key().0,
                role,
                node_id: node.public_key(),
                registration_key: k.x_only_public_key().0,
            }
            .sign(&owner)
            .expect("owner signs")
            .to_hex()
        });
        r.sign_node(|m| boltensor_ln::sign_message_with_key(m, &node.secret_key()))
            .sign(&k)
    }

    #[test]
    fn one_bond_outpoint_backs_one_registrant() {
        let mut st = state(8, 0);
        let reg =
            |i, seq| ConsensusItem::Register(registrant(i, Role::Validator, seq, Some((77, 5))));
        st.apply(&reg(0, 1), 0).expect("first claim");
        let err = st.apply(&reg(1, 1), 0).expect_err("second claim");
        assert!(err.contains("already backs"), "{err}");
        // Its own key may re-register with it; once it leaves, the bond is free again.
        st.apply(&reg(0, 2), 0).expect("same registrant");
        let fed = st.federation_id();
        st.apply(
            &ConsensusItem::Deregister(Deregistration::with_sequence(&kp(0), fed, 3)),
            0,
        )
        .expect("leaves");
        st.apply(&reg(1, 2), 0).expect("the bond is free");
    }

    #[test]
    fn a_node_id_needs_the_node_signature_and_names_one_registrant() {
        let mut st = state(8, 0);
        // Signed by the registration key, but the node signature is another node's.
        let mut r = registrant(0, Role::Miner, 1, None);
        r.node_id = kp(1001).public_key().to_string();
        let r = r.sign(&kp(0));
        let err = st
            .apply(&ConsensusItem::Register(r), 0)
            .expect_err("unproven node");
        assert!(err.contains("node signature"), "{err}");
        // One registration per node id and per API URL.
        let mut a = registrant(0, Role::Miner, 1, None);
        a.api = Some("http://victim:8080/v1".into());
        let node = kp(1000);
        let a = a
            .sign_node(|m| boltensor_ln::sign_message_with_key(m, &node.secret_key()))
            .sign(&kp(0));
        st.apply(&ConsensusItem::Register(a), 0)
            .expect("the victim");
        let mut b = registrant(1, Role::Miner, 1, None);
        b.api = Some("HTTP://victim:8080/".into());
        let node = kp(1001);
        let b = b
            .sign_node(|m| boltensor_ln::sign_message_with_key(m, &node.secret_key()))
            .sign(&kp(1));
        let err = st
            .apply(&ConsensusItem::Register(b), 0)
            .expect_err("same URL");
        assert!(err.contains("API URL"), "{err}");
    }

    #[test]
    fn stale_and_foreign_registry_items_are_refused() {
        let mut st = state(8, 0);
        let fed = st.federation_id();
        let old_reg = ConsensusItem::Register(registrant(0, Role::Miner, 5, None));
        st.apply(&old_reg, 0).expect("registers");
        let old_dereg = ConsensusItem::Deregister(Deregistration::with_sequence(&kp(0), fed, 6));
        st.apply(&old_dereg, 0).expect("leaves");
        st.apply(
            &ConsensusItem::Register(registrant(0, Role::Miner, 7, None)),
            0,
        )
        .expect("comes back");
        let err = st
            .apply(&old_dereg, 0)
            .expect_err("replayed deregistration");
        assert!(err.contains("stale"), "{err}");
        let err = st.apply(&old_reg, 0).expect_err("replayed registration");
        assert!(err.contains("stale"), "{err}");
        let foreign = ConsensusItem::Deregister(Deregistration::with_sequence(&kp(0), [9; 32], 99));
        let err = st.apply(&foreign, 0).expect_err("another federation");
        assert!(err.contains("federation"), "{err}");
    }

    #[test]
    fn a_miner_registers_with_a_bond_when_the_federation_asks_for_one() {
        let mut st = state(8, 0);
        st.params.miner_bond_min_sat = 50_000;
        let err = st
            .apply(
                &ConsensusItem::Register(registrant(0, Role::Miner, 1, None)),
                0,
            )
            .expect_err("no bond");
        assert!(err.contains("miner_bond_min_sat"), "{err}");
        st.apply(
            &ConsensusItem::Register(registrant(0, Role::Miner, 2, Some((77, 5)))),
            0,
        )
        .expect("bonded");
    }

    #[test]
    fn slashing_survives_deregistration_and_re_registration() {
        let mut st = state(8, 0);
        let fed = st.federation_id();
        st.apply(
            &ConsensusItem::Register(registrant(0, Role::Validator, 1, Some((77, 5)))),
            0,
        )
        .expect("registers");
        let key = kp(0).x_only_public_key().0;
        let vector = |w| {
            boltensor_protocol::weights::WeightVector {
                epoch: 0,
                validator: key.serialize(),
                weights: [("n".to_string(), w)].into_iter().collect(),
            }
            .sign(&kp(0))
        };
        st.apply(&ConsensusItem::Weights(vector(1)), 0)
            .expect("first");
        st.apply(&ConsensusItem::Weights(vector(2)), 0)
            .expect("evidence");
        assert!(st.uids[0].as_ref().expect("registered").slashed);
        st.apply(
            &ConsensusItem::Deregister(Deregistration::with_sequence(&kp(0), fed, 2)),
            0,
        )
        .expect("leaves");
        st.apply(
            &ConsensusItem::Register(registrant(0, Role::Validator, 3, Some((77, 5)))),
            0,
        )
        .expect("comes back");
        let n = st.uids[0].as_ref().expect("registered");
        assert!(n.slashed, "the key stays slashed");
        // Another key with the slashed bond gets no stake from it either.
        st.apply(
            &ConsensusItem::Deregister(Deregistration::with_sequence(&kp(0), fed, 4)),
            0,
        )
        .expect("leaves");
        st.apply(
            &ConsensusItem::Register(registrant(1, Role::Validator, 1, Some((77, 5)))),
            0,
        )
        .expect("registers");
        assert!(st.uids[0].as_ref().expect("registered").slashed);
    }

    #[test]
    fn a_published_result_whose_uid_is_not_its_position_is_refused_without_a_panic() {
        // Found by fuzz/epoch_inputs: compute() indexed Yuma's output by the published `uid` field, so
        // a coordinator serving this from GET /v1/epochs/{n} crashed `verify_epoch` (the auditors' check).
        let mut st = state(8, 0);
        st.apply(&miner(0), 0).expect("registers");
        st.apply(&miner(1), 0).expect("registers");
        let mut result = st.epoch_result([0; 32], 1, 4);
        result.inputs.neurons[1].as_mut().expect("uid 1").uid = 27_499;
        let (output, _) = result.inputs.compute();
        assert_eq!(output.incentive.len(), 2);
        assert!(matches!(
            result.recompute(),
            Err(RecomputeError::Malformed(_))
        ));
    }
}
