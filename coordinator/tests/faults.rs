//! Fault injection on the federation, in process (issue 10; the process-based kills are in
//! boltensor/tests/faults_federation.rs): a Byzantine member that sends garbage on the peer links and
//! serves forged signed sessions; a validator that signs two weight vectors for one epoch; a reorg of
//! the block that confirmed a bond. Each ends with the ledger audit and a row of the fault table
//! (`boltensor_audit::fault::record`; docs/reliability.md).
//!
//! These tests move no Lightning money (no member has a node), so the audit checks the federation's
//! receipts (none may appear without a payment) and each test checks the money rule of its own fault:
//! no signed epoch pays a stake that is gone (slashed, or a bond reorganised out of the chain) once every
//! member dropped it, and none ever pays a bond a reorg shallower than `bond_min_confirmations` removed.

mod common;
use common::init_tracing;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::{Amount, FeeRate, Network};
use boltensor_audit::fault::{record, FaultRow, StaleStake};
use boltensor_audit::{check_settled, AuditReport, Ledger, Payout};
use boltensor_contracts::{KeyWallet, Utxo};
use boltensor_coordinator::engine::{items_digest, session_header, signed_session_signatures};
use boltensor_coordinator::keychain::Keychain;
use boltensor_coordinator::store::{AcceptedItem, SignedEpoch, SignedSession};
use boltensor_testenv::wait_for;
use common::{
    bond_claims, key, miner_registration, signed, submit_weights, weights, Net, Node, Result,
};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The audit over the federation's receipts as member `i` serves them (`GET /v1/payouts`).
async fn audit(net: &Net, i: usize) -> Result<AuditReport> {
    let p = net.get(i, "/v1/payouts").await?.ok_or("no /v1/payouts")?;
    let receipts: BTreeMap<String, String> = serde_json::from_value(p["receipts"].clone())?;
    let ledger = Ledger {
        payouts: Payout::from_receipts(&receipts)?,
        ..Ledger::default()
    };
    Ok(check_settled(&ledger))
}

/// `label`'s registry entry at member `i`.
async fn registrant(net: &Net, i: usize, label: &str) -> Option<Value> {
    let k = key(label).x_only_public_key().0.to_string();
    let reg = net.get(i, "/v1/registry").await.ok().flatten()?;
    reg["registry"]
        .as_array()?
        .iter()
        .find(|n| n["key"].as_str() == Some(k.as_str()))
        .cloned()
}

async fn stake(net: &Net, i: usize, label: &str) -> Option<u64> {
    registrant(net, i, label).await?["stake_sat"].as_u64()
}

/// What epoch `e` pays `label` (0 when nothing).
fn paid(e: &SignedEpoch, label: &str) -> u64 {
    let k = key(label).x_only_public_key().0;
    e.result
        .payouts
        .iter()
        .find(|p| p.key == k)
        .map_or(0, |p| p.msat)
}

/// The stake epoch `e` counted for `label`.
fn stake_in(e: &SignedEpoch, label: &str) -> u64 {
    let k = key(label).x_only_public_key().0;
    e.result
        .inputs
        .neurons
        .iter()
        .flatten()
        .find(|n| n.key == k)
        .map_or(0, |n| n.stake_sat)
}

async fn epoch_now(net: &Net, i: usize) -> Result<u64> {
    Ok(net.status(i).await?["epoch"]
        .as_u64()
        .ok_or("status without epoch")?)
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    boltensor_coordinator::net::fill_random(&mut b);
    b
}

fn random_vec(max: usize) -> Vec<u8> {
    let len = 1 + u16::from_be_bytes(random::<2>()) as usize % max;
    let mut b = vec![0u8; len];
    boltensor_coordinator::net::fill_random(&mut b);
    b
}

/// A session member 3 made up: an item the federation never ordered, member 3's own valid signature over
/// that header (a second header for the session) and two garbage "signatures" to reach the count.
fn forged_session(
    fed: &boltensor_coordinator::FederationConfig,
    byz: &Keychain,
    session: u64,
) -> SignedSession {
    let items = vec![AcceptedItem {
        peer: 3,
        item: miner_registration("forged-miner"),
    }];
    let header = session_header(&fed.id(), session, &items_digest(&items), None);
    let mut signatures = BTreeMap::new();
    signatures.insert(0, hex::encode(random::<64>()));
    signatures.insert(1, hex::encode(random::<64>()));
    signatures.insert(3, hex::encode(byz.sign_bytes(&header).0));
    SignedSession {
        session,
        items,
        epoch_digest: None,
        signatures,
    }
}

/// Opens a peer link to `addr` as member `me` (the p2p handshake of coordinator/src/net.rs).
async fn dial_as(
    addr: std::net::SocketAddr,
    to: usize,
    kc: &Keychain,
    fed: &[u8; 32],
) -> std::result::Result<boltensor_coordinator::net::Outbound, boltensor_coordinator::net::LinkError>
{
    boltensor_coordinator::net::dial(addr, to, kc, fed).await
}

/// Frames (session number, then the SCALE-encoded aleph-bft message) of requests with out-of-range member
/// indices: `Units(NewestRequest(1000, salt))` and `Units(CoordRequest(3, {round 0, creator 1000}))`.
fn bogus_requests(session: u64) -> Vec<Vec<u8>> {
    let frame = |msg: Vec<u8>| {
        let mut f = session.to_be_bytes().to_vec();
        f.extend(msg);
        f
    };
    let mut newest = vec![0u8, 4];
    newest.extend(1000u64.to_le_bytes());
    newest.extend(7u64.to_le_bytes());
    let mut coord = vec![0u8, 1];
    coord.extend(3u64.to_le_bytes());
    coord.extend(0u16.to_le_bytes());
    coord.extend(1000u64.to_le_bytes());
    vec![frame(newest), frame(coord)]
}

/// Member 3 turned Byzantine on the peer links: outsiders' noise instead of a handshake, then, as the
/// authenticated member 3, frames of random bytes for the current and next sessions, a frame too short
/// to hold a session number and a length beyond the limit. Returns the frames sent when `stop` is set.
async fn garbage_links(
    fed: boltensor_coordinator::FederationConfig,
    byz: Keychain,
    engine: Arc<boltensor_coordinator::Engine>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) {
    while !stop.load(Ordering::Relaxed) {
        for to in 0..3 {
            let addr = fed.members[to].p2p;
            if let Ok(mut s) = TcpStream::connect(addr).await {
                let _ = s.write_all(&random_vec(4096)).await;
            }
            if let Ok(mut link) = dial_as(addr, to, &byz, &fed.id()).await {
                let session = engine.state().session;
                for k in 0..30u64 {
                    let mut frame = (session + k % 3).to_be_bytes().to_vec();
                    frame.extend(random_vec(3000));
                    if link.send_frame(&frame).await.is_err() {
                        break;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                // Well-formed aleph-bft requests naming a member index that does not exist (the
                // requester of a NewestRequest, the creator of a CoordRequest's unit).
                for crafted in bogus_requests(session) {
                    if link.send_frame(&crafted).await.is_err() {
                        break;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                // An authenticated frame too short to hold a session number.
                let _ = link.send_frame(&[1, 2, 3]).await;
            }
            if let Ok(mut link) = dial_as(addr, to, &byz, &fed.id()).await {
                let (s, _) = link.parts();
                let _ = s.write_u32(u32::MAX).await;
                let _ = s.write_all(&random_vec(1000)).await;
            }
        }
        // Pace the injector (not a wait for a condition).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_byzantine_member_sends_garbage_and_forged_sessions() -> Result {
    init_tracing();
    let long = Duration::from_secs(60);
    let mut net = Net::new().await?;
    // Members 0–2 are honest; member 3 (f = 1) is played by this test.
    for i in 0..3 {
        net.members[i] = Some(net.start_member(i).await?);
    }
    let fed = net.federation.clone();
    let byz = Keychain::new(3, fed.keys(), net.keys[3], fed.id(), fed.threshold());
    assert_eq!(
        signed_session_signatures(&fed, &forged_session(&fed, &byz, 5)),
        1,
        "member 3's signature is valid over its forged header, the others are garbage"
    );
    let (status, body) = net
        .post(
            0,
            "/v1/items",
            &serde_json::to_value(miner_registration("miner-a"))?,
        )
        .await?;
    assert_eq!(status, 202, "{body}");
    let e0 = epoch_now(&net, 0).await?;
    net.wait_epoch(&[0, 1, 2], e0, long).await?;

    // The fault: member 3's API serves a forged signed session for whatever session is asked (honest
    // members poll their peers' APIs for the session they are in, to catch up), and its links send noise.
    let served = Arc::new(AtomicU64::new(0));
    let api = {
        let addr = fed.members[3].api;
        let fed = fed.clone();
        let byz = byz.clone();
        let served = served.clone();
        let app = axum::Router::new().route(
            "/v1/sessions/{n}",
            axum::routing::get(move |axum::extract::Path(n): axum::extract::Path<u64>| {
                let session = forged_session(&fed, &byz, n);
                served.fetch_add(1, Ordering::Relaxed);
                async move { axum::Json(session) }
            }),
        );
        let listener = boltensor_coordinator::net::bind_retrying(addr).await?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let frames = Arc::new(AtomicU64::new(0));
    let links = tokio::spawn(garbage_links(
        fed.clone(),
        byz.clone(),
        net.members[0].as_ref().expect("running").engine.clone(),
        stop.clone(),
        frames.clone(),
    ));
    // Sessions take about a second, and a member asks its peers' APIs only when a session runs past 2 s or
    // when it may be behind (after adopting a session, and at start: ADR 0018). Restart member 2, so that it
    // asks at once — member 3's forged API included.
    net.members[2].take().expect("running").shutdown().await;
    net.members[2] = Some(net.start_member(2).await?);
    let t0 = Instant::now();
    let start_session = net.status(0).await?["session"].as_u64().ok_or("session")?;
    let e1 = epoch_now(&net, 0).await? + 1;
    let first = net.wait_epoch(&[0, 1, 2], e1, long).await?;
    let recover_secs = t0.elapsed().as_secs_f64();
    let results = net.wait_epoch(&[0, 1, 2], e1 + 1, long).await?;
    stop.store(true, Ordering::Relaxed);
    let _ = links.await;
    api.abort();

    for r in first[1..].iter().chain(&results[1..]) {
        assert!(
            r.certified() == first[0].certified() || r.certified() == results[0].certified(),
            "honest members published different results"
        );
    }
    assert_eq!(results[1].certified(), results[0].certified());
    assert_eq!(results[2].certified(), results[0].certified());
    let valid = boltensor_coordinator::verify_epoch(&results[0], &fed)?;
    assert_eq!(valid, 3, "exactly the three honest members signed");
    for i in 0..3 {
        let s = net.status(i).await?["session"].as_u64().ok_or("session")?;
        assert!(
            s > start_session + 4,
            "member {i} kept finishing sessions ({start_session} → {s})"
        );
        assert!(registrant(&net, i, "miner-a").await.is_some());
        assert!(
            registrant(&net, i, "forged-miner").await.is_none(),
            "member {i} applied a forged session"
        );
    }
    let served = served.load(Ordering::Relaxed);
    let frames = frames.load(Ordering::Relaxed);
    assert!(
        served > 0,
        "the honest members asked the Byzantine member for sessions"
    );
    assert!(frames > 0);

    let report = audit(&net, 0).await?;
    assert!(report.settled(), "{}", report.summary());
    let mut row = FaultRow::new(
        "coordinator/tests/faults.rs::fault_byzantine_member_sends_garbage_and_forged_sessions",
        "a Byzantine coordinator (f = 1 of 4): noise and garbage frames on the peer links, forged signed sessions \
         (its own signature over a second header) served to peers catching up",
        true,
        recover_secs,
        &report,
    );
    row.detail = format!(
        "{served} forged sessions served, {frames} garbage frames sent; epochs {e1}..={} signed by the 3 honest \
         members, identical, verified; no forged item applied; {}",
        e1 + 1,
        row.detail
    );
    record(&row);
    assert_eq!(row.lost_msat, 0);
    assert!(row.recovered);
    for m in net.members.iter().flatten() {
        m.stop();
    }
    Ok(())
}

const W: &[(&str, u16)] = &[("miner-a", 60_000), ("miner-b", 30_000)];

/// Registers two miners and two bonded validators and waits until every member counts both stakes.
/// Returns the best block hash right after the bonds confirmed (the block holding both funding txs).
async fn two_bonded_validators(net: &Net, long: Duration) -> Result<String> {
    for (i, m) in ["miner-a", "miner-b"].iter().enumerate() {
        let (status, body) = net
            .post(
                i,
                "/v1/items",
                &serde_json::to_value(miner_registration(m))?,
            )
            .await?;
        assert_eq!(status, 202, "{body}");
    }
    let regs = net
        .bonded_registrations(&[("validator-1", 300_000), ("validator-2", 100_000)])
        .await?;
    let block: String = net
        .bitcoind()
        .rpc()
        .call("getbestblockhash", serde_json::json!([]))
        .await?;
    for (i, r) in regs.iter().enumerate() {
        let (status, body) = net
            .post(i + 1, "/v1/items", &serde_json::to_value(r)?)
            .await?;
        assert_eq!(status, 202, "{body}");
    }
    for i in 0..4 {
        wait_for(&format!("member {i} to count both bonds"), long, || async {
            let a = stake(net, i, "validator-1").await.unwrap_or(0);
            let b = stake(net, i, "validator-2").await.unwrap_or(0);
            Ok((a > 0 && b > 0).then_some(()))
        })
        .await?;
    }
    Ok(block)
}

/// Waits for the first signed epoch from `from` on that pays `label`.
async fn first_paying(net: &Net, from: u64, label: &str, long: Duration) -> Result<SignedEpoch> {
    let deadline = Instant::now() + long * 2;
    let mut e = from;
    loop {
        let r = net.wait_epoch(&[0], e, long).await?.remove(0);
        if paid(&r, label) > 0 {
            return Ok(r);
        }
        assert!(
            Instant::now() < deadline,
            "no epoch paid {label} (up to epoch {e})"
        );
        e += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_validator_submits_two_weight_vectors_for_one_epoch() -> Result {
    init_tracing();
    let long = Duration::from_secs(60);
    let net = Net::start().await?;
    two_bonded_validators(&net, long).await?;
    let submitter = submit_weights(&net, 0, &["validator-1", "validator-2"], W);
    let e0 = epoch_now(&net, 0).await?;
    first_paying(&net, e0, "validator-2", long).await?;
    submitter.abort();
    let honest = submit_weights(&net, 0, &["validator-1"], W);

    // The fault: validator-2 signs a second, different vector for the epoch and sends it to another member.
    let other: &[(&str, u16)] = &[("miner-b", 65_535)];
    let t0 = Instant::now();
    let e_fault = epoch_now(&net, 1).await?;
    wait_for(
        "validator-2's equivocation to be recorded by every member",
        long,
        || async {
            if let Ok(e) = epoch_now(&net, 1).await {
                let _ = net
                    .post(1, "/v1/weights", &weights("validator-2", e, W))
                    .await;
                let _ = net
                    .post(2, "/v1/weights", &weights("validator-2", e, other))
                    .await;
            }
            for i in 0..4 {
                let n = registrant(&net, i, "validator-2").await;
                let caught = n.is_some_and(|n| {
                    n["slashed"].as_bool() == Some(true) && n["stake_sat"].as_u64() == Some(0)
                });
                if !caught {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    )
    .await?;
    let detected_secs = t0.elapsed().as_secs_f64();
    let e_caught = epoch_now(&net, 0).await?;
    let reg = registrant(&net, 0, "validator-2")
        .await
        .ok_or("validator-2 registered")?;
    let outpoint: bitcoin::OutPoint = reg["bond"]["outpoint"].as_str().ok_or("a bond")?.parse()?;
    wait_for("the slash transaction to spend the bond", long, || async {
        Ok(matches!(net.rpc.tx_out(&outpoint).await, Ok(None)).then_some(()))
    })
    .await?;
    let recover_secs = t0.elapsed().as_secs_f64();
    net.bitcoind().mine(1).await?;
    let treasury = boltensor_contracts::Treasury::new(boltensor_contracts::Federation::byzantine(
        net.federation.keys(),
    )?)?;
    let in_treasury: u64 = net
        .rpc
        .scan_script(&treasury.script_pubkey())
        .await?
        .iter()
        .map(|u| u.txout.value.to_sat())
        .sum();
    assert!(
        in_treasury > 99_000 && in_treasury < 100_000,
        "the bond less the fee is in the treasury: {in_treasury}"
    );
    let (status, _) = net
        .post(
            0,
            "/v1/weights",
            &weights("validator-2", epoch_now(&net, 0).await?, W),
        )
        .await?;
    assert_eq!(status, 400, "a caught validator's weights are refused");

    // No epoch computed after the detection pays the equivocator; the honest validator goes on earning.
    let after = net.wait_epoch(&[0, 1, 2, 3], e_caught + 2, long).await?;
    honest.abort();
    for r in &after[1..] {
        assert_eq!(r.certified(), after[0].certified());
    }
    let mut misallocated = 0;
    for e in e_caught + 1..=e_caught + 2 {
        let r = net.wait_epoch(&[0], e, long).await?.remove(0);
        boltensor_coordinator::verify_epoch(&r, &net.federation)?;
        assert_eq!(stake_in(&r, "validator-2"), 0);
        misallocated += paid(&r, "validator-2");
    }
    assert_eq!(
        misallocated, 0,
        "epochs after the detection paid the slashed validator"
    );
    assert!(
        paid(&after[0], "validator-1") > 0,
        "the honest validator still earns"
    );

    let report = audit(&net, 0).await?;
    let mut row = FaultRow::new(
        "coordinator/tests/faults.rs::fault_validator_submits_two_weight_vectors_for_one_epoch",
        "a validator submits two different signed weight vectors for one epoch (to two members)",
        misallocated == 0,
        recover_secs,
        &report,
    );
    row.detail = format!(
        "equivocation in epoch {e_fault} recorded by all 4 members after {detected_secs:.1} s (stake 0, weights refused); \
         slash tx spent the bond after {recover_secs:.1} s, {in_treasury} sat in the treasury; epochs {}..={} pay it 0 msat; {}",
        e_caught + 1,
        e_caught + 2,
        row.detail
    );
    record(&row);
    assert_eq!(row.lost_msat, 0);
    assert!(row.recovered, "{}", row.detail);
    for m in net.members.iter().flatten() {
        m.stop();
    }
    Ok(())
}

/// The confirmations a bond needs to count in the reorg test (`bond_min_confirmations`; ADR 0007's stake
/// window): a reorg shallower than this cannot take away a bond whose stake counts.
const REORG_MIN_CONF: u32 = 2;

/// A bond registration of `label` (a validator) for the bond funded at `outpoint`.
fn bond_registration(
    net: &Net,
    label: &str,
    outpoint: bitcoin::OutPoint,
    sats: u64,
) -> Result<boltensor_coordinator::items::ConsensusItem> {
    let owner = key(label);
    let node = Node::of(label);
    let proof = bond_claims(&owner, &owner, node.id(), outpoint, sats).sign(&owner)?;
    let mut reg = boltensor_coordinator::items::Registration::new(
        boltensor_protocol::Role::Validator,
        owner.x_only_public_key().0,
        node.id().to_string(),
        net.federation.id(),
    );
    reg.bond = Some(proof.to_hex());
    Ok(signed(reg, node, &owner))
}

/// Spends `label`'s coin back to itself (replace-by-fee over its unconfirmed bond funding, if any) and
/// returns the new outpoint. (scantxoutset reads the confirmed UTXO set, where the coin is unspent again
/// after a reorg took the bond's funding out of the chain.)
async fn double_spend(net: &Net, label: &str) -> Result<bitcoin::OutPoint> {
    let wallet = KeyWallet::new(key(label), Network::Regtest);
    let desc = format!("raw({})", wallet.script_pubkey().to_hex_string());
    let scan: Value = net
        .bitcoind()
        .rpc()
        .call("scantxoutset", serde_json::json!(["start", [desc]]))
        .await?;
    let coins: Vec<Utxo> = scan["unspents"]
        .as_array()
        .ok_or("no unspents")?
        .iter()
        .map(|u| -> Result<Utxo> {
            Ok(Utxo {
                outpoint: bitcoin::OutPoint {
                    txid: u["txid"].as_str().ok_or("txid")?.parse()?,
                    vout: u["vout"].as_u64().ok_or("vout")? as u32,
                },
                txout: bitcoin::TxOut {
                    value: Amount::from_btc(u["amount"].as_f64().ok_or("amount")?)?,
                    script_pubkey: wallet.script_pubkey(),
                },
            })
        })
        .collect::<Result<_>>()?;
    let away = wallet.build(
        &coins,
        wallet.script_pubkey(),
        Amount::from_sat(90_000),
        FeeRate::from_sat_per_vb(50).ok_or("fee rate")?,
    )?;
    net.rpc.broadcast(&away.tx).await?;
    Ok(away.outpoint)
}

async fn best_block(net: &Net) -> Result<String> {
    Ok(net
        .bitcoind()
        .rpc()
        .call("getbestblockhash", serde_json::json!([]))
        .await?)
}

/// Two reorgs under two bonded validators, with bonds counting from [`REORG_MIN_CONF`] confirmations:
///
/// 1. **Shallower than the confirmations a bond needs.** validator-2's bond is one block deep; that block
///    is replaced by one that double-spends the bond's input. The design promises that no epoch ever
///    counted (so paid) that bond: 0 payouts, asserted. validator-1's bond, deeper, keeps counting.
/// 2. **As deep as a counting bond.** The block that confirmed validator-1's bond (3 deep) is
///    reorganised out; its funding transaction waits in the mempool. Every member drops the stake when
///    its bitcoind no longer shows the confirmations; the epochs the federation signed in between paid
///    the validator with a stake whose bond was out of the chain. That exposure is measured (the row's
///    `stale_stake`), not promised away: it is what the confirmation depth is for. No epoch after every
///    member dropped it pays it, and once the transaction confirms again the stake counts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_reorg_of_the_block_that_confirmed_a_bond() -> Result {
    init_tracing();
    let long = Duration::from_secs(60);
    let net = Net::start_with(|p| p.bond_min_confirmations = REORG_MIN_CONF).await?;
    // All members check bonds against one bitcoind here (as on the devnet), so one invalidateblock is
    // every member's view of a reorg.
    for (i, m) in ["miner-a", "miner-b"].iter().enumerate() {
        let (status, body) = net
            .post(
                i,
                "/v1/items",
                &serde_json::to_value(miner_registration(m))?,
            )
            .await?;
        assert_eq!(status, 202, "{body}");
    }
    for label in ["validator-1", "validator-2"] {
        let wallet = KeyWallet::new(key(label), Network::Regtest);
        net.bitcoind().mine_to(1, &wallet.address()).await?;
    }
    net.bitcoind().mine(100).await?;
    // validator-1's bond: REORG_MIN_CONF + 1 confirmations when the bonds register; validator-2's: one.
    let bond_1 = net.fund_bond(&key("validator-1"), 300_000).await?;
    net.bitcoind().mine(1).await?;
    let block_1 = best_block(&net).await?;
    net.bitcoind().mine(u64::from(REORG_MIN_CONF) - 1).await?;
    let bond_2 = net.fund_bond(&key("validator-2"), 100_000).await?;
    net.bitcoind().mine(1).await?;
    let block_2 = best_block(&net).await?;
    for (i, r) in [
        bond_registration(&net, "validator-1", bond_1, 300_000)?,
        bond_registration(&net, "validator-2", bond_2, 100_000)?,
    ]
    .iter()
    .enumerate()
    {
        let (status, body) = net
            .post(i + 1, "/v1/items", &serde_json::to_value(r)?)
            .await?;
        assert_eq!(status, 202, "{body}");
    }
    for i in 0..4 {
        wait_for(
            &format!("member {i} to count validator-1's bond and to have every member's verdict on validator-2's"),
            long,
            || async {
                let v2 = registrant(&net, i, "validator-2").await;
                let checked = v2.is_some_and(|n| {
                    n["attested"].as_u64().unwrap_or(0) + n["attested_gone"].as_u64().unwrap_or(0)
                        == 4
                });
                let counted = stake(&net, i, "validator-1").await == Some(300_000);
                Ok((checked && counted).then_some(()))
            },
        )
        .await?;
    }
    let submitter = submit_weights(&net, 0, &["validator-1", "validator-2"], W);
    let e0 = epoch_now(&net, 0).await?;
    let e_paying = first_paying(&net, e0, "validator-1", long)
        .await?
        .result
        .inputs
        .epoch;
    net.wait_epoch(&[0], e_paying + 1, long).await?;

    // Fault 1, shallower than REORG_MIN_CONF: validator-2's bond's block is replaced by one in which the
    // bond's input is spent elsewhere.
    let e_shallow = epoch_now(&net, 0).await?;
    let height_before = net.bitcoind().height().await?;
    let _: Value = net
        .bitcoind()
        .rpc()
        .call("invalidateblock", serde_json::json!([block_2]))
        .await?;
    let away = double_spend(&net, "validator-2").await?;
    net.bitcoind().mine(1).await?;
    assert_eq!(
        net.bitcoind().height().await?,
        height_before,
        "the new tip replaces the invalidated block"
    );
    assert!(
        net.rpc.tx_out(&bond_2).await?.is_none(),
        "validator-2's bond no longer exists"
    );
    assert!(
        net.rpc.tx_out(&away).await?.is_some(),
        "its double-spend confirmed"
    );
    let e_after_shallow = epoch_now(&net, 0).await? + 1;
    net.wait_epoch(&[0], e_after_shallow, long).await?;

    // Fault 2, as deep as validator-1's counting bond: its block and the two above it are reorganised out.
    let e_deep = epoch_now(&net, 0).await?;
    let t0 = Instant::now();
    let _: Value = net
        .bitcoind()
        .rpc()
        .call("invalidateblock", serde_json::json!([block_1]))
        .await?;
    for i in 0..4 {
        wait_for(
            &format!("member {i} to drop validator-1's stake"),
            long,
            || async { Ok((stake(&net, i, "validator-1").await == Some(0)).then_some(())) },
        )
        .await?;
    }
    let withdrawn_secs = t0.elapsed().as_secs_f64();
    let e_withdrawn = epoch_now(&net, 0).await?;
    // One epoch signed without the stake; then its funding transaction (back in the mempool) confirms
    // again, REORG_MIN_CONF deep.
    net.wait_epoch(&[0], e_withdrawn + 1, long).await?;
    let e_remined = epoch_now(&net, 0).await?;
    let t1 = Instant::now();
    net.bitcoind().mine(u64::from(REORG_MIN_CONF)).await?;
    assert!(
        net.rpc.tx_out(&bond_1).await?.is_some(),
        "validator-1's bond confirmed again"
    );
    for i in 0..4 {
        wait_for(
            &format!("member {i} to count validator-1's re-confirmed bond"),
            long,
            || async { Ok((stake(&net, i, "validator-1").await == Some(300_000)).then_some(())) },
        )
        .await?;
    }
    // Time to recover: invalidateblock → every member dropped the stake, plus the re-confirming blocks →
    // every member counts it again (the test's own wait for an epoch in between left out).
    let recount_secs = t1.elapsed().as_secs_f64();
    let recover_secs = withdrawn_secs + recount_secs;
    let e_back = epoch_now(&net, 0).await?;
    let last = e_back + 3;
    net.wait_epoch(&[0, 1, 2, 3], last, long).await?;
    submitter.abort();
    for i in 0..4 {
        assert_eq!(stake(&net, i, "validator-2").await, Some(0), "member {i}");
    }

    // The tally. Shallow: epochs that counted (and paid) validator-2's bond, which is now double-spent.
    // Deep: epochs from the fault to the one open when every member had dropped the stake that paid
    // validator-1 with it; then the epochs closed before its bond was back, which must pay it nothing.
    let mut shallow = StaleStake::default();
    let mut deep = StaleStake::default();
    let mut misallocated = 0;
    for e in e0..=last {
        let r = net.wait_epoch(&[0], e, long).await?.remove(0);
        boltensor_coordinator::verify_epoch(&r, &net.federation)?;
        if stake_in(&r, "validator-2") > 0 && paid(&r, "validator-2") > 0 {
            shallow.payouts += 1;
            shallow.msat += paid(&r, "validator-2");
        }
        let v1 = (stake_in(&r, "validator-1"), paid(&r, "validator-1"));
        if (e_paying..e_deep).contains(&e) {
            assert_eq!(
                v1.0, 300_000,
                "epoch {e}: a shallower reorg leaves the deeper bond counting"
            );
        } else if (e_deep..=e_withdrawn).contains(&e) && v1.0 > 0 && v1.1 > 0 {
            deep.payouts += 1;
            deep.msat += v1.1;
        } else if e > e_withdrawn && e < e_remined {
            assert_eq!(v1.0, 0, "epoch {e}: a stake every member dropped counts");
            misallocated += v1.1;
        }
    }
    let later = net.wait_epoch(&[0, 1, 2, 3], last, long).await?;
    for r in &later[1..] {
        assert_eq!(r.certified(), later[0].certified());
    }
    assert!(
        stake_in(&later[0], "validator-1") == 300_000,
        "validator-1's stake is back"
    );
    assert!(
        paid(&later[0], "validator-1") > 0,
        "validator-1 earns again"
    );

    let report = audit(&net, 0).await?;
    let mut row = FaultRow::new(
        "coordinator/tests/faults.rs::fault_reorg_of_the_block_that_confirmed_a_bond",
        &format!(
            "reorgs of the blocks that confirmed two bonds (bonds count from {REORG_MIN_CONF} confirmations): \
             1 block deep, the bond there double-spent away; then 3 deep under a counting bond, which confirms again"
        ),
        shallow.payouts == 0 && misallocated == 0,
        recover_secs,
        &report,
    );
    row.stale_stake = Some(deep);
    row.detail = format!(
        "shallow reorg (epoch {e_shallow}): the double-spent bond, at 1 confirmation, had {} payouts ({} msat) \
         with its stake in epochs {e0}..={last}; the deeper bond kept counting. Deep reorg (epoch {e_deep}): stake dropped \
         by all 4 members {withdrawn_secs:.1} s after invalidateblock; {} epochs in {e_deep}..={e_withdrawn} paid it {} msat \
         with its bond out of the chain; epochs closed after that and before it confirmed again paid it {misallocated} msat; \
         counted again by all 4 members {recount_secs:.1} s after its transaction confirmed again; {}",
        shallow.payouts,
        shallow.msat,
        deep.payouts,
        deep.msat,
        row.detail
    );
    record(&row);
    assert_eq!(
        shallow,
        StaleStake::default(),
        "a bond reorganised out shallower than bond_min_confirmations was paid: {}",
        row.detail
    );
    assert_eq!(misallocated, 0, "a stake every member dropped was paid");
    assert_eq!(row.lost_msat, 0);
    assert!(row.recovered);
    for m in net.members.iter().flatten() {
        m.stop();
    }
    Ok(())
}
