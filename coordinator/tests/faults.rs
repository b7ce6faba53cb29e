//! Fault injection on the federation, in process (issue 10; the process-based kills are in
//! boltensor/tests/faults_federation.rs): a Byzantine member that sends garbage on the peer links and
//! serves forged signed sessions; a validator that signs two weight vectors for one epoch; a reorg of
//! the block that confirmed a bond. Each ends with the ledger audit and a row of the fault table
//! (`boltensor_audit::fault::record`; docs/reliability.md).
//!
//! These tests move no Lightning money (no member has a node), so the audit checks the federation's
//! receipts (none may appear without a payment) and each test checks the money rule of its own fault:
//! no signed epoch pays a stake that is gone (slashed, or a bond reorganised out of the chain).

mod common;
use common::init_tracing;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::{Amount, FeeRate, Network};
use boltensor_audit::fault::{record, FaultRow};
use boltensor_audit::{check_settled, AuditReport, Ledger, Payout};
use boltensor_contracts::{KeyWallet, Utxo};
use boltensor_coordinator::engine::{items_digest, session_header, signed_session_signatures};
use boltensor_coordinator::keychain::Keychain;
use boltensor_coordinator::store::{AcceptedItem, SignedEpoch, SignedSession};
use boltensor_testenv::wait_for;
use common::{key, miner_registration, submit_weights, weights, Net, Result};
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
            r == &first[0] || r == &results[0],
            "honest members published different results"
        );
    }
    assert_eq!(results[1], results[0]);
    assert_eq!(results[2], results[0]);
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
        assert_eq!(r, &after[0]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_reorg_of_the_block_that_confirmed_a_bond() -> Result {
    init_tracing();
    let long = Duration::from_secs(60);
    let net = Net::start().await?;
    // All members check bonds against one bitcoind here (as on the devnet), so one invalidateblock is
    // every member's view of the reorg.
    let block = two_bonded_validators(&net, long).await?;
    let submitter = submit_weights(&net, 0, &["validator-1", "validator-2"], W);
    let e0 = epoch_now(&net, 0).await?;
    first_paying(&net, e0, "validator-2", long).await?;

    // The fault: the block holding both bonds' funding transactions is reorganised out.
    let height_before = net.bitcoind().height().await?;
    let t0 = Instant::now();
    let _: Value = net
        .bitcoind()
        .rpc()
        .call("invalidateblock", serde_json::json!([block]))
        .await?;
    for i in 0..4 {
        wait_for(
            &format!("member {i} to withdraw both stakes"),
            long,
            || async {
                let a = stake(&net, i, "validator-1").await.unwrap_or(1);
                let b = stake(&net, i, "validator-2").await.unwrap_or(1);
                Ok((a == 0 && b == 0).then_some(()))
            },
        )
        .await?;
    }
    let withdrawn_secs = t0.elapsed().as_secs_f64();
    let e_withdrawn = epoch_now(&net, 0).await?;

    // validator-2 double-spends its bond's input while it is unconfirmed (replace-by-fee); validator-1's
    // bond confirms again in the next block.
    // (scantxoutset reads the confirmed UTXO set, where the coin is unspent again after the reorg.)
    let wallet = KeyWallet::new(key("validator-2"), Network::Regtest);
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
    net.bitcoind().mine(1).await?;
    assert_eq!(
        net.bitcoind().height().await?,
        height_before,
        "the new tip replaces the invalidated block"
    );
    let reg = registrant(&net, 0, "validator-2")
        .await
        .ok_or("validator-2")?;
    let gone: bitcoin::OutPoint = reg["bond"]["outpoint"].as_str().ok_or("bond")?.parse()?;
    assert!(
        net.rpc.tx_out(&gone).await?.is_none(),
        "validator-2's bond no longer exists"
    );
    assert!(
        net.rpc.tx_out(&away.outpoint).await?.is_some(),
        "its double-spend confirmed"
    );
    for i in 0..4 {
        wait_for(
            &format!("member {i} to count validator-1's re-confirmed bond"),
            long,
            || async {
                Ok((stake(&net, i, "validator-1").await.unwrap_or(0) == 300_000).then_some(()))
            },
        )
        .await?;
    }
    let recover_secs = t0.elapsed().as_secs_f64();
    let e_back = epoch_now(&net, 0).await?;

    // validator-2's stake never comes back; no epoch computed without its stake pays it; validator-1 earns
    // again once its stake is back.
    let last = e_back + 3;
    net.wait_epoch(&[0, 1, 2, 3], last, long).await?;
    submitter.abort();
    for i in 0..4 {
        assert_eq!(stake(&net, i, "validator-2").await, Some(0), "member {i}");
    }
    let mut misallocated = 0;
    let mut lag_paid = 0;
    for e in e0..=last {
        let r = net.wait_epoch(&[0], e, long).await?.remove(0);
        boltensor_coordinator::verify_epoch(&r, &net.federation)?;
        if e > e_withdrawn {
            assert_eq!(stake_in(&r, "validator-2"), 0, "epoch {e}");
            misallocated += paid(&r, "validator-2");
        } else if e > e0 && stake_in(&r, "validator-2") > 0 && paid(&r, "validator-2") > 0 {
            lag_paid = e; // closed before every member had withdrawn the stake
        }
    }
    let later = net.wait_epoch(&[0, 1, 2, 3], last, long).await?;
    for r in &later[1..] {
        assert_eq!(r, &later[0]);
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
        "a reorg of the block that confirmed two bonds: one confirms again, the other is double-spent away",
        misallocated == 0,
        recover_secs,
        &report,
    );
    row.detail = format!(
        "stakes withdrawn by all 4 members {withdrawn_secs:.1} s after invalidateblock; re-confirmed bond counted again \
         after {recover_secs:.1} s; the double-spent bond's validator paid {misallocated} msat in epochs {}..={last} \
         (last epoch paying it before the withdrawal: {lag_paid}); {}",
        e_withdrawn + 1,
        row.detail
    );
    record(&row);
    assert_eq!(misallocated, 0, "a bond that no longer exists was paid");
    assert_eq!(row.lost_msat, 0);
    assert!(row.recovered);
    for m in net.members.iter().flatten() {
        m.stop();
    }
    Ok(())
}
