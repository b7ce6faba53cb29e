//! Epoch payouts over Lightning. A fixed pool (`epoch_pool_msat`) is paid by one member, chosen round
//! robin ([`crate::state::payer`]); a pool funded by fees (`pool_fee_share_ppm`, ADR 0015) by every
//! member that earned fees in the epoch, each its own part ([`crate::state::Payout::payer`]). A payer
//! pays each of its payouts of the signed result by keysend, then proposes a receipt that consensus
//! records, removing the payout from what is owed.
//!
//! A payout is never made twice: its preimage — hence payment hash and ldk-node payment id — is derived
//! from the payer's key, the epoch, the payee and an attempt number, so after a crash or restart the
//! payer finds every attempt it made in ldk-node's persisted payment store. Attempt `a + 1` is sent only
//! once attempt `a` has failed for good at the payer's node — LDK reports a payment failed only when no
//! HTLC of it is pending any more, off chain or on chain — and a pending or succeeded attempt is never
//! followed by another. A failed attempt is not resent with its own hash: the payee's node refuses a
//! second keysend with a hash it has seen, and it may have claimed an HTLC that the payer's node then
//! failed when the channel closed: after a force-close, an HTLC below the dust limit (354 sat) is no
//! output of the commitment transaction, its value goes to the miners' fee and LDK fails it once the
//! commitment confirms; a larger one the payee did not claim on chain in time times out back to the
//! payer. The payee's record says received either way. Receipts in consensus name the attempt that
//! succeeded and make the payout visible to every member and auditor.
//!
//! ldk-node records a keysend in its payment store only after handing it to LDK, so a kill in between
//! leaves an HTLC that may be out with no record of it. The payer therefore records each attempt in its
//! own store before sending it ([`crate::store::Store::record_payout_send`]); an attempt recorded as
//! sent that the node has no record of is *in doubt*: it is sent again under the same hash (LDK refuses
//! it while it still tracks the first, the payee refuses it if the first reached it) and is never
//! followed by a new attempt — if the resend fails it is resent again later ([`Next::Resend`]), since
//! the first send may have paid; a payout whose first send did pay stays owed, never paid twice.
//!
//! A payer that comes back without a usable channel to a payee — LDK force-closes every channel whose
//! monitor is ahead of a lazily persisted ChannelManager after a kill -9 — sees its payout fail with no
//! route, and opens a new channel to that payee (a peer it knows the address of) from its on-chain funds;
//! the payout is retried once the channel is ready. A payout whose HTLC was in flight on a force-closed
//! channel stays pending until it resolves on chain, so it is still paid at most once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::XOnlyPublicKey;
use boltensor_ln::PublicKey;
use boltensor_ln::{LnNode, PaymentPreimage, PaymentState};

use crate::engine::Engine;
use crate::items::{ConsensusItem, FeeReport, PayoutReceipt};
use crate::state::{parse_payout_slot, payer};

/// How long a failed payout waits before the next attempt.
const RETRY: Duration = Duration::from_secs(15);
/// The smallest channel a payer opens to a payee it cannot reach.
const REOPEN_MIN_SATS: u64 = 200_000;
/// On-chain funds kept aside when reopening (fees, the anchor reserve).
const REOPEN_RESERVE_SATS: u64 = 50_000;
/// How long after opening a channel to a payee before the payer would open another one.
const REOPEN_AGAIN: Duration = Duration::from_secs(600);

/// Attempts per payout before the payer gives up on it (a payee unreachable for days); the delay
/// between attempts grows to [`RETRY_MAX`], so this is weeks.
pub const MAX_ATTEMPTS: u32 = 5_000;
/// The longest wait between two attempts of one payout.
const RETRY_MAX: Duration = Duration::from_secs(600);

/// The preimage of member `secret`'s `attempt`-th payout of `epoch` to `key` (attempts count from 0;
/// attempt 0's preimage is the one payers before attempts derived).
pub fn payout_preimage(
    secret: &[u8; 32],
    epoch: u64,
    key: &XOnlyPublicKey,
    attempt: u32,
) -> [u8; 32] {
    let mut e = sha256::Hash::engine();
    e.input(b"boltensor/payout-preimage/v1");
    e.input(secret);
    e.input(&epoch.to_be_bytes());
    e.input(&key.serialize());
    if attempt > 0 {
        // Fixed-length fields: a longer message, never another attempt's.
        e.input(&attempt.to_be_bytes());
    }
    sha256::Hash::from_engine(e).to_byte_array()
}

/// Where member `secret`'s payout of `epoch` to `key` stands at its node `ln`: the first attempt that
/// has not failed for good, its preimage and its state (`None`: not sent yet); `None` once
/// [`MAX_ATTEMPTS`] attempts failed.
pub fn payout_attempt(
    ln: &LnNode,
    secret: &[u8; 32],
    epoch: u64,
    key: &XOnlyPublicKey,
) -> Option<(u32, PaymentPreimage, Option<PaymentState>)> {
    (0..MAX_ATTEMPTS).find_map(|attempt| {
        let preimage = PaymentPreimage(payout_preimage(secret, epoch, key, attempt));
        match ln.payment_state(boltensor_ln::PaymentHash::from(preimage)) {
            Some(PaymentState::Failed) => None,
            state => Some((attempt, preimage, state)),
        }
    })
}

/// What to do next about one payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The attempt succeeded: propose its receipt.
    Receipt,
    /// The attempt is pending (on its way, or an HTLC resolving on chain): wait.
    Wait,
    /// Send the attempt, for the first time.
    Send,
    /// Send this attempt again under its own hash: it is in doubt (handed to the node, which has no
    /// record of it: killed in between), or it was and its resend failed. Never a new attempt after it.
    Resend(u32),
}

/// The step for a payout whose first attempt not failed at the node is `attempt`, in `state` there
/// (`None`: the node has no record of it), given what this member recorded handing to its node (`sent`:
/// the highest attempt and whether it was handed again in doubt).
pub fn next_step(attempt: u32, state: Option<PaymentState>, sent: Option<(u32, bool)>) -> Next {
    match (state, sent) {
        (Some(PaymentState::Succeeded), _) => Next::Receipt,
        (Some(PaymentState::Pending | PaymentState::Failed), _) => Next::Wait,
        (None, Some((s, true))) if attempt > 0 && s == attempt - 1 => Next::Resend(s),
        (None, Some((s, _))) if s >= attempt => Next::Resend(attempt),
        (None, _) => Next::Send,
    }
}

/// The wait before attempt `attempt` (≥ 1) of a payout: [`RETRY`], growing after the first few attempts
/// up to [`RETRY_MAX`], so a payee offline for a day costs the payer's store a few hundred records.
fn retry_after(attempt: u32) -> Duration {
    RETRY.saturating_mul(1 + attempt / 4).min(RETRY_MAX)
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
    let mut reopened: BTreeMap<PublicKey, Instant> = BTreeMap::new();
    let opening = Arc::new(AtomicBool::new(false));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = events.recv() => {}
        }
        let state = engine.state();
        // Each owed epoch's signed result, read once per pass.
        let mut results: BTreeMap<u64, Option<Vec<crate::state::Payout>>> = BTreeMap::new();
        for (slot, &msat) in &state.owed {
            let Some((epoch, by, key)) = parse_payout_slot(slot) else {
                continue;
            };
            if by.map_or_else(|| payer(epoch, n), usize::from) != me {
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
                .and_then(|ps| ps.iter().find(|p| p.key == key && p.payer == by))
                .and_then(|p| p.node_id.parse::<PublicKey>().ok())
            else {
                continue;
            };
            let Some((attempt, preimage, paid)) = payout_attempt(&ln, &secret, epoch, &key) else {
                if last_try.get(slot).is_none_or(|t| t.elapsed() > RETRY_MAX) {
                    last_try.insert(slot.clone(), Instant::now());
                    tracing::error!(epoch, %node_id, msat, "epoch payout: {MAX_ATTEMPTS} attempts failed; not trying again");
                }
                continue;
            };
            let hash = boltensor_ln::PaymentHash::from(preimage);
            // What this member handed to its node matters only for an attempt the node has no record
            // of: read it from the store then, not on every pass over pending and paid payouts.
            let sent = match paid {
                Some(_) => None,
                None => match engine.store().payout_sent(slot) {
                    Ok(sent) => sent,
                    Err(e) => {
                        tracing::error!(epoch, %node_id, "epoch payout: cannot read the payout record: {e}");
                        continue;
                    }
                },
            };
            let step = next_step(attempt, paid, sent);
            match step {
                Next::Receipt => {
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
                            payer: by,
                        }));
                    }
                }
                Next::Wait => {}
                Next::Send | Next::Resend(_) => {
                    let (attempt, preimage, in_doubt) = match step {
                        Next::Resend(a) => (
                            a,
                            PaymentPreimage(payout_preimage(&secret, epoch, &key, a)),
                            true,
                        ),
                        _ => (attempt, preimage, false),
                    };
                    if (attempt > 0 || in_doubt)
                        && last_try
                            .get(slot)
                            .is_some_and(|t| t.elapsed() < retry_after(attempt.max(1)))
                    {
                        continue;
                    }
                    last_try.insert(slot.clone(), Instant::now());
                    // A failed attempt and no channel to the payee that could carry it (force-closed
                    // after a crash, say): open one, and retry once it is ready.
                    if (attempt > 0 || in_doubt) && !has_channel(&ln, node_id, msat) {
                        // One channel opened at a time, each once the previous funding confirmed:
                        // concurrent fundings from one wallet spend the same coins, and all but one
                        // never reach the mempool.
                        let due = reopened
                            .get(&node_id)
                            .is_none_or(|t| t.elapsed() > REOPEN_AGAIN);
                        if due && !funding_in_flight(&ln, &opening) {
                            let owed_to: u64 = state
                                .owed
                                .iter()
                                .filter(|(s, _)| s.ends_with(&format!(":{key}")))
                                .map(|(_, m)| *m)
                                .sum();
                            if reopen(&ln, node_id, owed_to, &opening) {
                                reopened.insert(node_id, Instant::now());
                            }
                        }
                        continue;
                    }
                    if in_doubt {
                        tracing::warn!(epoch, %node_id, msat, attempt, "epoch payout in doubt (handed to the node once with no record of it there): sending it again under the same hash, never a new one");
                    }
                    // Recorded before the node is asked: a kill in between leaves it in doubt, never
                    // forgotten.
                    if let Err(e) = engine.store().record_payout_send(slot, attempt, in_doubt) {
                        tracing::error!(epoch, %node_id, "epoch payout not sent: cannot record it: {e}");
                        continue;
                    }
                    match ln.keysend(node_id, msat, preimage) {
                        Ok(_) => {
                            tracing::info!(epoch, %node_id, msat, attempt, "epoch payout sent")
                        }
                        Err(e) => {
                            tracing::warn!(epoch, %node_id, msat, attempt, "epoch payout failed: {e}")
                        }
                    }
                }
            }
        }
    }
}

/// Reports this member's forwarding income to the federation every `every` while it grew: its node's
/// fee ledger ([`LnNode::forwarded`]) as a [`FeeReport`], which consensus accepts only if it grew.
pub async fn report_fees(engine: Arc<Engine>, ln: Arc<LnNode>, every: Duration) {
    let me = engine.config().index;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let now = ln.forwarded();
        // Read under the state's lock: no copy of the whole state every few seconds.
        let grew = engine.with_state(|st| {
            st.pool_books
                .get(&me)
                .and_then(|b| b.report.as_ref())
                .map_or(now.fee_msat > 0, |last| {
                    now.fee_msat > last.fee_msat && now.count >= last.forwards
                })
        });
        if grew {
            tracing::debug!(
                fee_msat = now.fee_msat,
                forwards = now.count,
                "reporting forwarding income"
            );
            engine.propose(ConsensusItem::Fees(FeeReport {
                fee_msat: now.fee_msat,
                forwards: now.count,
            }));
        }
    }
}

/// Whether `ln` has a channel to `peer` that can carry `msat` now, or one still opening (not ready
/// yet, or its peer offline): then there is nothing to open.
fn has_channel(ln: &LnNode, peer: PublicKey, msat: u64) -> bool {
    ln.channels()
        .iter()
        .any(|c| c.counterparty == peer && (!c.is_usable || c.outbound_msat >= msat))
}

/// Whether a channel this node opened is still being opened or waits for its funding to confirm.
fn funding_in_flight(ln: &LnNode, opening: &AtomicBool) -> bool {
    opening.load(Ordering::SeqCst)
        || ln
            .channels()
            .iter()
            .any(|c| c.is_outbound && c.confirmations.unwrap_or(0) == 0)
}

/// Opens a channel to `peer` large enough for `owed_msat` (twice it, at least [`REOPEN_MIN_SATS`]) in
/// the background, if the node knows the peer's address and has the on-chain funds. Whether it tried.
fn reopen(ln: &Arc<LnNode>, peer: PublicKey, owed_msat: u64, opening: &Arc<AtomicBool>) -> bool {
    let Some(addr) = ln
        .peers()
        .into_iter()
        .filter(|p| p.node_id == peer)
        .find_map(|p| p.addr)
    else {
        tracing::warn!(%peer, "no channel to pay the payee and no known address to open one");
        return false;
    };
    let want = (owed_msat / 1000).saturating_mul(2).max(REOPEN_MIN_SATS);
    let spendable = ln.balances().spendable_onchain_sats;
    if spendable < want + REOPEN_RESERVE_SATS {
        tracing::warn!(%peer, spendable, want, "no channel to pay the payee and too little on chain to open one");
        return false;
    }
    tracing::warn!(%peer, %addr, sats = want, "no channel can carry the payout: opening a new channel to the payee");
    let ln = Arc::clone(ln);
    let opening = Arc::clone(opening);
    opening.store(true, Ordering::SeqCst);
    tokio::spawn(async move {
        match ln.open_channel(peer, addr, want, 0).await {
            Ok((_, txid)) => {
                tracing::info!(%peer, %txid, "payout channel funded; payouts resume once it confirms")
            }
            Err(e) => tracing::warn!(%peer, "opening a payout channel failed: {e}"),
        }
        opening.store(false, Ordering::SeqCst);
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentState::*;

    #[test]
    fn a_payout_is_sent_once_per_attempt_and_never_past_an_attempt_in_doubt() {
        // First attempt, nothing recorded: send it.
        assert_eq!(next_step(0, None, None), Next::Send);
        // Recorded as handed to the node, which has no record (killed in between): same hash again.
        assert_eq!(next_step(0, None, Some((0, false))), Next::Resend(0));
        assert_eq!(next_step(0, None, Some((0, true))), Next::Resend(0));
        // At the node: wait, or receipt.
        assert_eq!(next_step(0, Some(Pending), Some((0, false))), Next::Wait);
        assert_eq!(
            next_step(2, Some(Succeeded), Some((2, true))),
            Next::Receipt
        );
        // Attempt 0 failed for good (sent normally): attempt 1 is sent.
        assert_eq!(next_step(1, None, Some((0, false))), Next::Send);
        // Attempt 0 failed after an in-doubt resend: its first send may have paid, so no attempt 1:
        // attempt 0 again (refused by the payee if it has it).
        assert_eq!(next_step(1, None, Some((0, true))), Next::Resend(0));
        // A store from before the record (attempt 0 sent by an older payer): as before.
        assert_eq!(next_step(1, None, None), Next::Send);
    }

    #[test]
    fn attempts_have_distinct_preimages_and_attempt_0_is_the_old_one() {
        let key =
            bitcoin::secp256k1::Keypair::from_seckey_slice(bitcoin::secp256k1::SECP256K1, &[7; 32])
                .expect("key")
                .x_only_public_key()
                .0;
        let secret = [9; 32];
        let mut e = sha256::Hash::engine();
        e.input(b"boltensor/payout-preimage/v1");
        e.input(&secret);
        e.input(&5u64.to_be_bytes());
        e.input(&key.serialize());
        let old = sha256::Hash::from_engine(e).to_byte_array();
        assert_eq!(payout_preimage(&secret, 5, &key, 0), old);
        let all: std::collections::BTreeSet<[u8; 32]> = (0..100)
            .map(|a| payout_preimage(&secret, 5, &key, a))
            .collect();
        assert_eq!(all.len(), 100);
        assert!((0..100).all(|a| payout_preimage(&secret, 6, &key, a) != old));
    }
}
