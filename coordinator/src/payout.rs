//! Epoch payouts over Lightning. Each epoch's pool is paid by one member, chosen round robin
//! ([`crate::state::payer`]); it pays every payee of the signed result by keysend, then proposes a
//! receipt that consensus records, removing the payout from what is owed.
//!
//! A payout is never made twice: its preimage — hence payment hash and ldk-node payment id — is derived
//! from the payer's key, the epoch and the payee, so after a crash or restart ldk-node's persisted payment
//! store refuses to send a pending or succeeded payment again (`DuplicatePayment`); only a failed one is
//! retried. Receipts in consensus make the payout visible to every member and auditor.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::XOnlyPublicKey;
use boltensor_ln::PublicKey;
use boltensor_ln::{LnNode, PaymentPreimage, PaymentState};

use crate::engine::Engine;
use crate::items::{ConsensusItem, PayoutReceipt};
use crate::state::payer;

/// How long a failed payout waits before the next attempt.
const RETRY: Duration = Duration::from_secs(15);

/// The preimage of member `secret`'s payout of `epoch` to `key`.
pub fn payout_preimage(secret: &[u8; 32], epoch: u64, key: &XOnlyPublicKey) -> [u8; 32] {
    let mut e = sha256::Hash::engine();
    e.input(b"boltensor/payout-preimage/v1");
    e.input(secret);
    e.input(&epoch.to_be_bytes());
    e.input(&key.serialize());
    sha256::Hash::from_engine(e).to_byte_array()
}

/// Pays what this member owes, whenever an epoch closes and every `every`.
pub async fn pay_epochs(engine: Arc<Engine>, ln: Arc<LnNode>, every: Duration) {
    let me = engine.config().index;
    let n = engine.config().federation.n();
    let secret = engine.config().keypair.secret_bytes();
    let mut events = engine.subscribe();
    let mut tick = tokio::time::interval(every);
    let mut last_try: BTreeMap<String, Instant> = BTreeMap::new();
    let mut receipted: BTreeMap<String, Instant> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = events.recv() => {}
        }
        let state = engine.state();
        // Each owed epoch's signed result, read once per pass.
        let mut results: BTreeMap<u64, Option<Vec<crate::state::Payout>>> = BTreeMap::new();
        for (slot, &msat) in &state.owed {
            let Some((epoch, key)) = slot.split_once(':') else {
                continue;
            };
            let (Ok(epoch), Ok(key)) = (epoch.parse::<u64>(), key.parse::<XOnlyPublicKey>()) else {
                continue;
            };
            if payer(epoch, n) != me {
                continue;
            }
            let payouts = results.entry(epoch).or_insert_with(|| {
                engine
                    .store()
                    .epoch(epoch)
                    .ok()
                    .flatten()
                    .map(|e| e.result.payouts)
            });
            let Some(node_id) = payouts
                .as_ref()
                .and_then(|ps| ps.iter().find(|p| p.key == key))
                .and_then(|p| p.node_id.parse::<PublicKey>().ok())
            else {
                continue;
            };
            let preimage = PaymentPreimage(payout_preimage(&secret, epoch, &key));
            let hash = boltensor_ln::PaymentHash::from(preimage);
            match ln.payment_state(hash) {
                Some(PaymentState::Succeeded) => {
                    // Propose the receipt (again after a while if it has not been ordered yet).
                    let due = receipted
                        .get(slot)
                        .is_none_or(|t| t.elapsed() > Duration::from_secs(30));
                    if due {
                        receipted.insert(slot.clone(), Instant::now());
                        engine.propose(ConsensusItem::Receipt(PayoutReceipt {
                            epoch,
                            key,
                            msat,
                            payment: hex::encode(hash.0),
                        }));
                    }
                }
                Some(PaymentState::Pending) => {}
                Some(PaymentState::Failed) | None => {
                    if last_try.get(slot).is_some_and(|t| t.elapsed() < RETRY) {
                        continue;
                    }
                    last_try.insert(slot.clone(), Instant::now());
                    match ln.keysend(node_id, msat, preimage) {
                        Ok(_) => tracing::info!(epoch, %node_id, msat, "epoch payout sent"),
                        Err(e) => tracing::warn!(epoch, %node_id, msat, "epoch payout failed: {e}"),
                    }
                }
            }
        }
    }
}
