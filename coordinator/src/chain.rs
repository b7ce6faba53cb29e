//! The member's eye on the chain: for every registered bond, check the proof against this member's own
//! bitcoind and propose an attestation when the verdict changes. A bond gives stake once more than f
//! members attested it (so at least one honest member saw it) — the chain view needs no agreement on
//! block heights, only on attestations, which consensus orders like any item.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::Amount;
use boltensor_contracts::chain::BitcoindRpc;
use boltensor_contracts::{BondPolicy, BondProof, Federation};

use crate::engine::Engine;
use crate::items::{Attestation, ConsensusItem};
use crate::params::Params;

/// The bond policy the federation's parameters describe.
pub fn bond_policy(
    keys: Vec<bitcoin::secp256k1::XOnlyPublicKey>,
    params: &Params,
) -> Option<BondPolicy> {
    let federation = Federation::byzantine(keys).ok()?;
    BondPolicy::new(
        federation,
        params.bond_min_timelock,
        params.bond_margin,
        params.bond_min_confirmations,
        Amount::from_sat(params.bond_min_sat),
    )
    .ok()
}

/// Watches registered bonds every `every` and proposes attestations.
pub async fn watch_bonds(engine: Arc<Engine>, rpc: BitcoindRpc, every: Duration) {
    let me = engine.config().index;
    let keys = engine.config().federation.keys();
    // What this member last proposed per (key, outpoint), so it does not repeat itself every tick.
    let mut proposed: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let state = engine.state();
        let Some(policy) = bond_policy(keys.clone(), &state.params) else {
            tracing::warn!("the federation's bond parameters do not form a valid policy");
            continue;
        };
        for n in state.uids.iter().flatten() {
            let (Some(bond), Some(hex_proof)) = (&n.bond, &n.registration.bond) else {
                continue;
            };
            let Ok(proof) = BondProof::from_hex(hex_proof) else {
                continue;
            };
            let verdict = rpc.verify_bond_proof(&proof, &policy).await;
            tracing::debug!(key = %n.registration.key, ?verdict, "bond check");
            let ok = match verdict {
                Ok(_) => true,
                Err(e) => {
                    if matches!(e, boltensor_contracts::chain::VerifyError::Chain(_)) {
                        tracing::warn!("bitcoind: {e}");
                        continue;
                    }
                    tracing::debug!(key = %n.registration.key, "bond does not count: {e}");
                    false
                }
            };
            let on_record = if n.attested_ok.contains(&me) {
                Some(true)
            } else if n.attested_gone.contains(&me) {
                Some(false)
            } else {
                None
            };
            let slot = (n.registration.key.to_string(), bond.outpoint.clone());
            if on_record == Some(ok) {
                proposed.remove(&slot);
                continue;
            }
            if proposed.get(&slot) == Some(&ok) {
                continue; // proposed, not yet ordered
            }
            proposed.insert(slot, ok);
            engine.propose(ConsensusItem::Attest(Attestation {
                key: n.registration.key,
                outpoint: bond.outpoint.clone(),
                ok,
            }));
        }
    }
}
