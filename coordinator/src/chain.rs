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
    let mut slash_signed: BTreeMap<String, std::time::Instant> = BTreeMap::new();
    let mut slash_sent: BTreeMap<String, std::time::Instant> = BTreeMap::new();
    let keypair = engine.config().keypair;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let state = engine.state();
        let Some(policy) = bond_policy(keys.clone(), &state.params) else {
            tracing::warn!("the federation's bond parameters do not form a valid policy");
            continue;
        };
        // Bonds being slashed: sign once, and once k signatures are in consensus, assemble and broadcast.
        for (outpoint, job) in &state.slashes {
            let Ok(proof) = BondProof::from_hex(&job.proof) else {
                continue;
            };
            let recent = |m: &BTreeMap<String, std::time::Instant>| {
                m.get(outpoint)
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(30))
            };
            if job.signatures.len() < state.threshold() {
                if !job.signatures.contains_key(&me) && !recent(&slash_signed) {
                    match crate::slash::sign_slash(&proof, &state.member_keys, &keypair) {
                        Ok(signature) => {
                            slash_signed.insert(outpoint.clone(), std::time::Instant::now());
                            engine.propose(ConsensusItem::SlashSignature(
                                crate::items::SlashSignature {
                                    outpoint: outpoint.clone(),
                                    signature,
                                },
                            ));
                        }
                        Err(e) => tracing::warn!(%outpoint, "cannot sign the slash: {e}"),
                    }
                }
                continue;
            }
            if recent(&slash_sent) {
                continue;
            }
            if !matches!(rpc.tx_out(&proof.claims.outpoint).await, Ok(Some(_))) {
                continue; // spent already (slashed, or withdrawn), or bitcoind unreachable
            }
            match crate::slash::assemble(&proof, &state.member_keys, &job.signatures) {
                Ok(tx) => match rpc.broadcast(&tx).await {
                    Ok(txid) => {
                        slash_sent.insert(outpoint.clone(), std::time::Instant::now());
                        tracing::info!(%outpoint, %txid, "slash transaction broadcast");
                    }
                    Err(e) => tracing::warn!(%outpoint, "slash broadcast refused: {e}"),
                },
                Err(e) => tracing::warn!(%outpoint, "cannot assemble the slash: {e}"),
            }
        }
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
