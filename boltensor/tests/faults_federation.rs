//! Fault injection on the federation with real processes (issue 10): `kill -9` of a `boltensor
//! coordinator run` process during epoch agreement and, for the epoch's payer, in the middle of its
//! keysend payouts; then a restart on the same directory. Each test ends with the ledger audit
//! (boltensor-audit) and a row of the fault table (docs/reliability.md). In-process faults (garbage,
//! forged sessions, an equivocating validator, a bond reorg) are in coordinator/tests/faults.rs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use boltensor_audit::fault::{record, FaultRow};
use boltensor_audit::{check_settled, AuditReport, Ledger};
use boltensor_coordinator::payout::payout_preimage;
use boltensor_coordinator::state::payer;
use boltensor_coordinator::CoordinatorConfig;
use boltensor_ln::{LnNode, PaymentRecord, PaymentState};
use boltensor_protocol::Role;
use boltensor_testenv::{free_port, wait_for, TestNet};

mod fedproc;
use fedproc::payees::{
    fund_validator_bond, key, ledger, miner_registration, payer_node_config, register_all,
    submit_weights,
};
use fedproc::{Federation, Result};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_kill_coordinator_during_epoch_agreement() -> Result {
    let long = Duration::from_secs(60);
    let testnet = TestNet::start().await?;
    let dir = tempfile::tempdir()?;
    let (mut fed, _) = Federation::init(dir.path(), &testnet.bitcoind, &["--epoch-sessions", "1"])?;
    for i in 0..4 {
        fed.spawn(i)?;
    }
    fed.wait_epoch(&[0, 1, 2, 3], 1, long).await?;

    // The fault: member 2 (f = 1 of 4) is killed in the middle of a session (every session closes an
    // epoch here, so it dies while the members order items or collect signatures for an epoch result).
    let victim = 2;
    let (s0, _) = fed.status(victim).await.ok_or("member 2's status")?;
    wait_for("member 2 to start its next session", long, || async {
        Ok(fed.status(victim).await.filter(|(s, _)| *s > s0))
    })
    .await?;
    fed.kill(victim);
    let t_kill = Instant::now();
    let (_, e_kill) = fed.status(0).await.ok_or("member 0's status")?;

    // The others keep signing epochs; a registration submitted meanwhile is ordered without member 2.
    let node = key("miner-late-node");
    let miner = node.public_key().to_string();
    let item = miner_registration(fed.config()?.id(), "miner-late", &miner, |m| {
        boltensor_ln::sign_message_with_key(m, &node.secret_key())
    });
    assert_eq!(
        fed.post(0, "/v1/items", &serde_json::to_value(item)?)
            .await?,
        202
    );
    let during = fed.wait_epoch(&[0, 1, 3], e_kill + 3, long).await?;
    let continued_secs = t_kill.elapsed().as_secs_f64();
    assert_eq!(during[0], during[1]);
    assert_eq!(during[0], during[2]);
    assert!(boltensor_coordinator::verify_epoch(&during[0], &fed.config()?)? >= 3);

    // Restart member 2 on its directory: it catches up from its peers and publishes the same results.
    fed.spawn(victim)?;
    let t_restart = Instant::now();
    let (target, e_target) = fed.status(0).await.ok_or("member 0's status")?;
    wait_for(
        "member 2 to catch up with the others' session",
        long,
        || async { Ok(fed.status(victim).await.filter(|(s, _)| *s >= target)) },
    )
    .await
    .map_err(|e| format!("{e}; member 2's log:\n{}", fed.log_tail(victim)))?;
    let recover_secs = t_restart.elapsed().as_secs_f64();
    let cfg = fed.config()?;
    for e in e_kill..e_target {
        let theirs = fed.wait_epoch(&[0], e, long).await?.remove(0);
        let mine = fed.wait_epoch(&[victim], e, long).await?.remove(0);
        assert_eq!(
            mine.certified(),
            theirs.certified(),
            "epoch {e} differs on the restarted member"
        );
        boltensor_coordinator::verify_epoch(&mine, &cfg)?;
    }
    let reg = fed.get(victim, "/v1/registry").await.ok_or("registry")?;
    let miner_key = key("miner-late").x_only_public_key().0.to_string();
    assert!(
        reg["registry"].as_array().is_some_and(|l| l
            .iter()
            .any(|n| n["key"].as_str() == Some(miner_key.as_str()))),
        "the registration ordered while member 2 was down is in its registry"
    );
    // And it takes part again: the next epochs are signed by all four.
    let (_, now) = fed.status(0).await.ok_or("status")?;
    let next = fed.wait_epoch(&[0, 1, 2, 3], now + 1, long).await?;
    for r in &next[1..] {
        assert_eq!(r.certified(), next[0].certified());
        boltensor_coordinator::verify_epoch(r, &cfg)?;
    }

    // No Lightning money moves in this test: the audit checks the receipts (none without a payment).
    let report = check_settled(&Ledger {
        payouts: fed.receipts(victim).await?,
        ..Ledger::default()
    });
    let mut row = FaultRow::new(
        "boltensor/tests/faults_federation.rs::fault_kill_coordinator_during_epoch_agreement",
        "kill -9 of a coordinator process during epoch agreement (f = 1 of 4), then a restart",
        true,
        recover_secs,
        &report,
    );
    row.detail = format!(
        "the other 3 signed epochs {}..={} meanwhile ({continued_secs:.1} s after the kill); restarted, it caught up \
         {} sessions in {recover_secs:.1} s with identical signed epochs {e_kill}..{e_target}; {}",
        e_kill + 1,
        e_kill + 3,
        target.saturating_sub(s0),
        row.detail
    );
    record(&row);
    assert_eq!(row.lost_msat, 0);
    assert!(row.recovered);
    drop(fed);
    Ok(())
}

/// A payout of the killed epoch, with the hashes of its first attempts.
struct KilledPayout {
    node_id: String,
    key: String,
    msat: u64,
    hashes: Vec<[u8; 32]>,
}

/// How one payout ended, read from the ledger.
#[derive(Debug)]
struct PayoutOutcome {
    /// The attempt receipted.
    attempt: usize,
    /// Earlier attempts the payee recorded received, the payer failed (timed out on chain), and their msat.
    reverted: usize,
    reverted_msat: u64,
    /// Of those, how many were below the dust limit (354 sat): no output of the commitment transaction.
    reverted_dust: usize,
}

/// Whether payout `k` of `epoch` was paid exactly once: a receipt names attempt `a`, which succeeded at
/// the payer and was received once by the payee for the signed amount; every earlier attempt failed for
/// good at the payer, no later one was made; an earlier attempt the payee recorded received is one the
/// payer failed (an HTLC of a force-closed channel: dust left to the miners' fee, or timed out on chain).
fn payout_outcome(
    l: &Ledger,
    epoch: u64,
    k: &KilledPayout,
) -> std::result::Result<PayoutOutcome, String> {
    let payer_state = |h: &[u8; 32]| {
        l.nodes
            .iter()
            .filter(|n| n.role == Role::Coordinator)
            .flat_map(|n| &n.payments)
            .find(|p| !p.inbound && p.hash == Some(*h))
            .map(|p| p.state)
    };
    let received = |h: &[u8; 32]| -> Vec<&PaymentRecord> {
        l.nodes
            .iter()
            .filter(|n| n.node_id == k.node_id)
            .flat_map(|n| &n.payments)
            .filter(|p| p.inbound && p.hash == Some(*h) && p.state == PaymentState::Succeeded)
            .collect()
    };
    let receipt = l
        .payouts
        .iter()
        .find(|r| r.epoch == epoch && r.payee == k.key)
        .ok_or("no receipt yet")?;
    let attempt = k
        .hashes
        .iter()
        .position(|h| *h == receipt.payment_hash)
        .ok_or("the receipt names no attempt of this payout")?;
    let h = &k.hashes[attempt];
    if payer_state(h) != Some(PaymentState::Succeeded) {
        return Err(format!(
            "attempt {attempt} receipted, {:?} at the payer",
            payer_state(h)
        ));
    }
    match received(h).as_slice() {
        [r] if r.amount_msat == k.msat => {}
        got => return Err(format!("attempt {attempt} received {} times", got.len())),
    }
    let mut reverted = 0;
    let mut reverted_msat = 0;
    let mut reverted_dust = 0;
    for (a, h) in k.hashes.iter().enumerate().filter(|(a, _)| *a != attempt) {
        let at_payer = payer_state(h);
        if a < attempt && at_payer != Some(PaymentState::Failed) {
            return Err(format!(
                "attempt {a} before the receipted {attempt}: {at_payer:?} at the payer"
            ));
        }
        if a > attempt && at_payer.is_some() {
            return Err(format!(
                "attempt {a} after the receipted {attempt}: {at_payer:?} at the payer"
            ));
        }
        let got = received(h);
        reverted += got.len();
        reverted_msat += got.iter().map(|r| r.amount_msat).sum::<u64>();
        reverted_dust += got.iter().filter(|r| r.amount_msat < 354_000).count();
    }
    Ok(PayoutOutcome {
        attempt,
        reverted,
        reverted_msat,
        reverted_dust,
    })
}

/// ldk-node's store (SQLite) of a node in `storage_dir`: its ChannelManager, as persisted.
fn read_manager(storage_dir: &std::path::Path) -> Result<Vec<u8>> {
    let db = rusqlite::Connection::open_with_flags(
        storage_dir.join("ldk_node_data.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    db.busy_timeout(Duration::from_secs(10))?;
    Ok(db.query_row(
        "SELECT value FROM ldk_node_data WHERE primary_namespace = '' AND secondary_namespace = '' AND key = 'manager'",
        [],
        |r| r.get(0),
    )?)
}

/// Puts an older ChannelManager back under newer channel monitors: what a kill -9 between persisting a
/// monitor update and the lazily persisted manager leaves behind. LDK then force-closes every channel
/// whose monitor is ahead of the manager when the node starts.
fn write_manager(storage_dir: &std::path::Path, manager: &[u8]) -> Result {
    let db = rusqlite::Connection::open_with_flags(
        storage_dir.join("ldk_node_data.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
    )?;
    let n = db.execute(
        "UPDATE ldk_node_data SET value = ?1 WHERE primary_namespace = '' AND secondary_namespace = '' AND key = 'manager'",
        [manager],
    )?;
    assert_eq!(n, 1, "one ChannelManager in the store");
    Ok(())
}

/// The payer is killed mid-way through an epoch's payouts and comes back with its channels as they
/// were (whether LDK found its lazily persisted manager stale is chance here: the output says which path
/// it took).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_kill_payer_coordinator_during_payouts() -> Result {
    kill_payer_during_payouts(false, false).await
}

/// The same kill with the pool funded by fees (ADR 0015): a client pays through the payer's node, the
/// payer reports its forwarding fees, and each epoch's pool is half of them, paid by the member that
/// earned them — member 0, the only member with a node, pays every epoch's payouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_kill_fee_funded_payer_during_payouts() -> Result {
    kill_payer_during_payouts(false, true).await
}

/// The same kill, with the payer's ChannelManager rolled back to as it was persisted just before the killed
/// epoch's payouts, so LDK force-closes the channels at the restart: the payer cannot route, opens new
/// channels to its payees and pays every later payout. Ignored: the payouts of the killed epoch that were in
/// flight fail at the payer when the channel closes (below the dust limit they are no output of the
/// commitment and go to the miners' fee; larger ones are claimed on chain or time out), while the payee's
/// record says received; the payer then pays each with its next attempt, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_kill_payer_coordinator_stale_channel_manager() -> Result {
    kill_payer_during_payouts(true, false).await
}

async fn kill_payer_during_payouts(stale_manager: bool, fee_funded: bool) -> Result {
    let long = Duration::from_secs(90);
    let testnet = TestNet::start().await?;
    let dir = tempfile::tempdir()?;
    let mut init_args = vec!["--epoch-sessions", "1"];
    if fee_funded {
        init_args.extend(["--pool-fee-share-ppm", "500000"]);
    }
    let (mut fed, _) = Federation::init(dir.path(), &testnet.bitcoind, &init_args)?;
    let cfg = fed.config()?;

    // Member 0's Lightning node, prepared on its storage dir (funded, a channel to each payee), then
    // stopped: `coordinator run --ln-listen` opens the same node. Payees: two miners and a validator.
    let listen: std::net::SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let miner_a = Arc::new(testnet.node("miner-a").await?);
    let miner_b = Arc::new(testnet.node("miner-b").await?);
    let validator = Arc::new(testnet.node("validator-1").await?);
    // With a fee-funded pool: a client paying a sink through the payer's node, which earns the forwarding
    // fees (neither is in the audited ledger: their payments are no requests of a miner).
    let traffic = if fee_funded {
        Some((
            Arc::new(testnet.node("client").await?),
            Arc::new(testnet.node("sink").await?),
        ))
    } else {
        None
    };
    let outcome = async {
        {
            let payer = LnNode::start(payer_node_config(&fed, &testnet.bitcoind, listen)).await?;
            // The payees hold on-chain coins too, as anchor channels need: after a force-close a payee
            // claims an HTLC it was paid on chain, paying the fee from its wallet.
            testnet.fund(&[&payer, &miner_a, &miner_b, &validator], 1).await?;
            for to in [&miner_a, &miner_b, &validator] {
                testnet.open_channel(&payer, to, 1_000_000, 0).await?;
            }
            if let Some((client, sink)) = &traffic {
                testnet.fund(&[client.as_ref(), sink.as_ref()], 1).await?;
                testnet.open_channel(client, &payer, 1_000_000, 0).await?;
                testnet.open_channel(&payer, sink, 1_000_000, 0).await?;
            }
            payer.stop().await;
        }
        let storage_dir = payer_node_config(&fed, &testnet.bitcoind, listen).storage_dir;
        let channel_ids = |n: &LnNode| -> Vec<String> { n.channels().into_iter().map(|c| c.channel_id).collect() };
        let first_channels: Vec<String> = [&miner_a, &miner_b, &validator].iter().flat_map(|n| channel_ids(n)).collect();

        // validator-1's bond (the default parameters: 6 confirmations, timelock ≥ 1008).
        let (owner, proof) = fund_validator_bond(&testnet, &fed, &validator).await?;

        fed.extra[0] = vec![format!("--ln-listen={listen}")];
        for i in 0..4 {
            fed.spawn(i)?;
        }
        fed.wait_epoch(&[0, 1, 2, 3], 1, long).await?;
        let token = std::fs::read_to_string(fed.member_dir(0).join("admin.token"))?.trim().to_string();
        let miners = [("miner-a", &*miner_a), ("miner-b", &*miner_b)];
        register_all(&fed, 1, miners, &validator, &owner, &proof).await?;
        // The client's payments through the payer (while it is up): 1 sat of forwarding fee each.
        let paying = traffic.as_ref().map(|(client, sink)| {
            let (client, sink) = (Arc::clone(client), Arc::clone(sink));
            tokio::spawn(async move {
                loop {
                    if let Ok(invoice) = sink.invoice(10_000, "fee-funded pool traffic", 600) {
                        let _ = client.pay(&invoice, Duration::from_secs(20)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        });
        // The validator submits its weights every epoch (to two members).
        let submitter = submit_weights(&fed, &[1, 2], &miner_a, &miner_b);

        // The fault: the moment the first payout reaches a payee, member 0 (the payer of every 4th epoch)
        // is killed with its other keysends of that epoch in flight or not yet sent.
        let payees: [(&str, Role, &LnNode); 3] = [
            ("miner-a", Role::Miner, &miner_a),
            ("miner-b", Role::Miner, &miner_b),
            ("validator-1", Role::Validator, &validator),
        ];
        let arrived = || -> Vec<[u8; 32]> {
            payees
                .iter()
                .flat_map(|(_, _, n)| n.payments())
                .filter(|p| p.inbound && p.keysend)
                .filter_map(|p| p.hash)
                .collect()
        };
        // Arm once the epochs pay all three payees (the validator holds a permit), so the killed epoch has
        // several keysends.
        wait_for("an epoch paying all three payees", long, || async {
            let Some((_, e)) = fed.status(1).await else { return Ok(None) };
            let e = e.saturating_sub(1);
            Ok(fed.epoch(1, e).await.filter(|s| s.result.payouts.len() == 3).map(|_| ()))
        })
        .await?;
        // The payer's ChannelManager as persisted now, just before the killed epoch's payouts: the stale
        // copy put back after the kill, as if the process had died before persisting it again while the
        // channel monitors went on (what LDK's lazily persisted manager leaves after a real kill -9).
        let old_manager = read_manager(&storage_dir)?;
        let before = arrived();
        let deadline = Instant::now() + long;
        while arrived().len() == before.len() {
            if Instant::now() > deadline {
                return Err(format!("no payout arrived; member 0's log:\n{}", fed.log_tail(0)).into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        fed.kill(0);
        let t_kill = Instant::now();
        let at_kill: Vec<[u8; 32]> = arrived().into_iter().filter(|h| !before.contains(h)).collect();
        // Which epoch was being paid: the payer-0 epoch whose payouts include what arrived.
        let secret = CoordinatorConfig::load(&fed.member_dir(0))?.keypair.secret_bytes();
        let (_, e_now) = fed.status(1).await.ok_or("status")?;
        let mut paid_epoch = None;
        // (With a fee-funded pool member 0, the only member earning fees, pays every epoch.)
        for e in (0..=e_now).rev().filter(|e| fee_funded || payer(*e, 4) == 0) {
            let Some(signed) = fed.epoch(1, e).await else { continue };
            let hashes: Vec<[u8; 32]> = signed
                .result
                .payouts
                .iter()
                .map(|p| {
                    let pre = boltensor_ln::PaymentPreimage(payout_preimage(&secret, e, &p.key, 0));
                    boltensor_ln::PaymentHash::from(pre).0
                })
                .collect();
            if at_kill.iter().any(|h| hashes.contains(h)) {
                paid_epoch = Some((e, signed.result.payouts.len()));
                break;
            }
        }
        let (e_paid, n_payouts) = paid_epoch.ok_or("the arrived payout belongs to no signed epoch of member 0")?;

        // The others go on without the payer; then it restarts on the same directory and node.
        fed.wait_epoch(&[1, 2, 3], e_now + 2, long).await?;
        if stale_manager {
            write_manager(&storage_dir, &old_manager)?;
        }
        fed.spawn(0)?;
        let t_restart = Instant::now();
        // Blocks keep coming while the payer recovers: a new channel confirms, and an HTLC left on a
        // force-closed channel resolves on chain (claimed by the payee, timed out back to the payer, or, below
        // the dust limit, failed once the commitment confirmed).
        let mut last_block = Instant::now();
        let last = std::sync::Mutex::new(AuditReport::default());
        // The killed epoch's payouts: payee node, registration key, amount and the hashes of its first
        // attempts (an attempt that failed for good is followed by the next one, with its own hash).
        let signed = fed.epoch(1, e_paid).await.ok_or("the killed epoch")?;
        boltensor_coordinator::verify_epoch(&signed, &cfg)?;
        let killed: Vec<KilledPayout> = signed
            .result
            .payouts
            .iter()
            .map(|p| KilledPayout {
                node_id: p.node_id.clone(),
                key: p.key.to_string(),
                msat: p.msat,
                hashes: (0..16)
                    .map(|a| {
                        let pre = boltensor_ln::PaymentPreimage(payout_preimage(&secret, e_paid, &p.key, a));
                        boltensor_ln::PaymentHash::from(pre).0
                    })
                    .collect(),
            })
            .collect();
        // An HTLC of the killed epoch still waiting on chain at a payee (a force-closed channel).
        let htlcs_on_chain = || -> Vec<String> {
            payees
                .iter()
                .flat_map(|(name, _, n)| n.on_chain_htlcs().into_iter().map(move |h| (name, h)))
                .filter(|(_, h)| killed.iter().any(|k| k.hashes.contains(&h.payment_hash)))
                .map(|(name, h)| format!("{name}: {} sat {}", h.amount_sats, h.kind))
                .collect()
        };
        let recover_wait = if stale_manager { long * 3 } else { long };
        let settled = wait_for("every payout of the killed epoch paid once, receipted, the ledger settled", recover_wait, || {
            let mine = last_block.elapsed() > Duration::from_millis(500);
            if mine {
                last_block = Instant::now();
            }
            let (fed, testnet, payees, token, last, killed, htlcs_on_chain) =
                (&fed, &testnet, &payees, &token, &last, &killed, &htlcs_on_chain);
            async move {
                if mine {
                    testnet.bitcoind.mine(1).await?;
                }
                let Ok(l) = ledger(fed, payees, token, Vec::new()).await else { return Ok(None) };
                let r = check_settled(&l);
                *last.lock().expect("not poisoned") = r.clone();
                let outcomes: std::result::Result<Vec<PayoutOutcome>, String> =
                    killed.iter().map(|k| payout_outcome(&l, e_paid, k)).collect();
                let done = r.settled() && htlcs_on_chain().is_empty();
                Ok(outcomes.ok().filter(|_| done).map(|o| (r, l, o)))
            }
        })
        .await;
        let (report, l, outcomes) = match settled {
            Ok(x) => x,
            Err(e) => {
                let last = last.lock().expect("not poisoned").clone();
                // The whole log outlives the test's temporary directory.
                let kept = std::env::temp_dir().join(format!("boltensor-payer-kill-member0-{}.log", std::process::id()));
                let _ = std::fs::copy(fed.log(0), &kept);
                let owed = fed.owed(1).await.unwrap_or_default();
                let l = ledger(&fed, &payees, &token, Vec::new()).await;
                let why: Vec<String> = match &l {
                    Ok(l) => killed.iter().map(|k| format!("{:?}", payout_outcome(l, e_paid, k).map(|o| o.attempt))).collect(),
                    Err(e) => vec![e.to_string()],
                };
                let states: Vec<String> = l
                    .map(|l| {
                        l.nodes
                            .iter()
                            .flat_map(|n| n.payments.iter().map(move |p| (n.name.clone(), p)))
                            .filter(|(_, p)| p.keysend)
                            .map(|(n, p)| format!("{n} {} {:?} {:?}", p.inbound, p.state, p.hash.map(hex::encode)))
                            .collect()
                    })
                    .unwrap_or_default();
                return Err(format!(
                    "{e}; epoch {e_paid} killed; its payouts: {why:?}; HTLCs on chain: {:?}; owed: {owed:?}; keysends: \
                     {states:#?}; last audit: {} {:?}; member 0's log (all of it in {}):\n{}",
                    htlcs_on_chain(),
                    last.summary(),
                    last.violations,
                    kept.display(),
                    fed.log_tail(0)
                )
                .into());
            }
        };
        // Which path the restart took: the payees' first channels to the payer still open, or closed
        // (LDK found the manager stale) and replaced by channels the payer opened.
        let now_channels: Vec<String> = [&miner_a, &miner_b, &validator].iter().flat_map(|n| channel_ids(n)).collect();
        let closed = first_channels.iter().filter(|c| !now_channels.contains(c)).count();
        let reopened = now_channels.iter().filter(|c| !first_channels.contains(c)).count();
        let path = if closed == 0 {
            "channels kept across the restart".to_string()
        } else {
            format!("{closed} channels force-closed at the restart (stale ChannelManager), {reopened} opened anew by the payer")
        };
        println!("payer-kill path: {path}");
        // Exactly once: each payout of the killed epoch has one attempt that succeeded at the payer,
        // received once by its payee for the signed amount and receipted; every earlier attempt failed for
        // good at the payer (those the payee had recorded received were on a force-closed channel).
        let retried = outcomes.iter().filter(|o| o.attempt > 0).count();
        let reverted: usize = outcomes.iter().map(|o| o.reverted).sum();
        let reverted_msat: u64 = outcomes.iter().map(|o| o.reverted_msat).sum();
        let reverted_dust: usize = outcomes.iter().map(|o| o.reverted_dust).sum();
        let paid_as = format!(
            "every payout of epoch {e_paid} paid once and receipted ({retried} of {} on a later attempt; {reverted} \
             earlier attempts the payee had recorded received, {reverted_msat} msat, {reverted_dust} of them below the \
             354-sat dust limit, failed at the payer when its force-closed channel resolved)",
            outcomes.len()
        );
        println!("payer-kill payouts: {paid_as}");
        if stale_manager {
            assert!(closed > 0, "a stale ChannelManager force-closes the payer's channels");
            assert!(reopened > 0, "the payer opened a new channel to pay");
        }
        let recover_secs = t_kill.elapsed().as_secs_f64();
        let restart_secs = t_restart.elapsed().as_secs_f64();
        submitter.abort();
        let epochs_paid: std::collections::BTreeSet<u64> = l.payouts.iter().map(|p| p.epoch).collect();

        if let Some(p) = &paying {
            p.abort();
        }
        let (test, fault) = if fee_funded {
            (
                "boltensor/tests/faults_federation.rs::fault_kill_fee_funded_payer_during_payouts",
                "kill -9 of a member paying its part of a fee-funded pool (ADR 0015) mid-way through an epoch's keysend payouts, then a restart",
            )
        } else if stale_manager {
            (
                "boltensor/tests/faults_federation.rs::fault_kill_payer_coordinator_stale_channel_manager",
                "kill -9 of the payer coordinator mid-way through an epoch's keysend payouts, restarted with a stale ChannelManager (its channels force-closed)",
            )
        } else {
            (
                "boltensor/tests/faults_federation.rs::fault_kill_payer_coordinator_during_payouts",
                "kill -9 of the payer coordinator (its ldk-node inside) mid-way through an epoch's keysend payouts, then a restart",
            )
        };
        let mut row = FaultRow::new(test, fault, true, recover_secs, &report);
        row.detail = format!(
            "killed when {} of epoch {e_paid}'s {n_payouts} payouts had reached a payee; restarted after {:.1} s; \
             {paid_as}, the ledger settled {restart_secs:.1} s after the restart; {path}; epochs receipted: \
             {epochs_paid:?}; {}",
            at_kill.len(),
            (t_restart - t_kill).as_secs_f64(),
            row.detail
        );
        record(&row);
        assert_eq!(row.lost_msat, 0);
        assert!(row.recovered);
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    }
    .await;
    drop(fed);
    miner_a.stop().await;
    miner_b.stop().await;
    validator.stop().await;
    if let Some((client, sink)) = traffic {
        client.stop().await;
        sink.stop().await;
    }
    outcome
}
