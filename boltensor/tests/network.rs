//! The federation across hosts with a real network between them (issue 19): four `boltensor coordinator
//! run` processes, each in its own network namespace with its own address (`coordinator init --hosts`),
//! every packet between them delayed 50 ms ± 10 ms and 1 % of them lost (testenv::netem, a user-space
//! switch: this kernel has no sch_netem), and bitcoind on the hub behind a forwarder. Then scripted
//! partitions: one member cut off, a 2 | 2 split, a flapping link, and the epoch's payer cut off while it
//! pays. Member 0 pays its epochs' pools over Lightning (`--ln-listen` on its own address) to two miners
//! and a bonded validator whose nodes sit on the hub: every payout crosses the switch.
//!
//! Each scenario reports a row (`NETNS-ROW {json}`, appended to `$BOLTENSOR_NETNS_REPORT` when set;
//! `scripts/netns.sh` renders docs/reliability.md's table from them): new epochs signed during the fault,
//! seconds from healing until every member holds an epoch signed after the heal, and — checked over the
//! whole run — conflicting signed results (different results certified for one epoch; must be 0), and
//! from the ledger audit of every payment the payer and the payees made (boltensor-audit): payouts made
//! twice (0) and msat lost (0), once every payout of member 0's signed epochs is receipted.
//! `BOLTENSOR_NETNS_FAULT_SECS` sets how long each fault lasts (default 15; the script uses 60).
//! Needs root (ip netns, /dev/net/tun).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use boltensor_audit::{check_settled, Rule};
use boltensor_coordinator::state::payer;
use boltensor_testenv::netem::{EmuNet, Forwarder, LinkSpec};
use boltensor_testenv::{free_port, wait_for, TestNet};
use serde::Serialize;

mod fedproc;
use fedproc::payees::{ledger, Payees};
use fedproc::{Federation, Result};

/// One scenario's outcome: a row of docs/reliability.md's network table.
#[derive(Debug, Serialize)]
struct Row {
    scenario: String,
    /// How long the fault lasted, s.
    fault_secs: f64,
    /// Epochs newly signed (at any member) while the fault lasted.
    epochs_during: u64,
    /// Seconds from healing until every member holds an epoch signed after the heal.
    recover_secs: f64,
    /// Epochs for which two members hold different certified results (the same for every row: the
    /// check runs once, over every epoch of the run).
    conflicts: u64,
    /// Epochs compared in that check.
    epochs_checked: u64,
    /// Packets the switch delivered, lost at random and dropped at a cut link, during the scenario.
    packets: [u64; 3],
    /// Payouts receipted (in consensus) during the scenario.
    payouts: u64,
    /// Over the whole run (like `conflicts`): payouts made twice (audit rules EpochPaidTwice and
    /// PayoutWithoutReceipt) and msat lost (every audit rule), once every payout is receipted.
    paid_twice: u64,
    lost_msat: u64,
    link: String,
}

impl Row {
    /// A scenario's row; the conflict count is filled in at the end, from the check over every epoch.
    fn new(
        scenario: &str,
        fault_secs: f64,
        epochs_during: u64,
        recover_secs: f64,
        packets: [u64; 3],
        payouts: u64,
    ) -> Row {
        Row {
            scenario: scenario.into(),
            fault_secs,
            epochs_during,
            recover_secs,
            conflicts: 0,
            epochs_checked: 0,
            packets,
            payouts,
            paid_twice: 0,
            lost_msat: 0,
            link: "50 ms ± 10 ms one way, 1 % loss".into(),
        }
    }
}

async fn last_signed(fed: &Federation, i: usize) -> Option<u64> {
    fed.get(i, "/v1/status").await?["last_signed_epoch"].as_u64()
}

/// The highest epoch signed at any of `who` (members that do not answer are skipped).
async fn highest(fed: &Federation, who: &[usize]) -> u64 {
    let mut top = 0;
    for &i in who {
        top = top.max(last_signed(fed, i).await.unwrap_or(0));
    }
    top
}

/// Waits until every member holds an epoch above `above`; returns the seconds since `since`.
async fn every_member_past(fed: &Federation, above: u64, since: Instant) -> Result<f64> {
    for i in 0..4 {
        wait_for(
            &format!("member {i} to sign an epoch above {above}"),
            Duration::from_secs(180),
            || async { Ok(last_signed(fed, i).await.filter(|&e| e > above)) },
        )
        .await
        .map_err(|e| format!("{e}; member {i}'s log:\n{}", fed.log_tail(i)))?;
    }
    Ok(since.elapsed().as_secs_f64())
}

/// Receipts in consensus (at member 1, which no scenario cuts off from the test).
async fn receipted(fed: &Federation) -> u64 {
    fed.receipts(1).await.map_or(0, |r| r.len() as u64)
}

/// What the switch counted since `before`.
fn packets(net: &EmuNet, before: boltensor_testenv::netem::SwitchStats) -> [u64; 3] {
    let now = net.stats();
    [
        now.forwarded - before.forwarded,
        now.lost - before.lost,
        now.cut - before.cut,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_over_an_emulated_network() -> Result {
    let fault = Duration::from_secs(
        std::env::var("BOLTENSOR_NETNS_FAULT_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(15),
    );
    let link = LinkSpec {
        delay: Duration::from_millis(50),
        jitter: Duration::from_millis(10),
        loss: 0.01,
    };
    // Host 0 is the hub (bitcoind, via the forwarder); member i runs in host i + 1.
    let net = EmuNet::start(4, link)?;
    let testnet = TestNet::start().await?;
    let rpc_port = testnet.bitcoind.rpc_port();
    let fwd = Forwarder::start(
        SocketAddr::new(net.ip(0).into(), 0),
        SocketAddr::from(([127, 0, 0, 1], rpc_port)),
    )
    .await?;
    let hosts: Vec<String> = (1..=4).map(|h| net.ip(h).to_string()).collect();
    let dir = tempfile::tempdir()?;
    let (mut fed, _) = Federation::init(
        dir.path(),
        &testnet.bitcoind,
        &[
            "--epoch-sessions",
            "1",
            &format!("--hosts={}", hosts.join(",")),
        ],
    )?;
    assert!(
        fed.apis
            .iter()
            .zip(&hosts)
            .all(|(api, h)| api.contains(h.as_str())),
        "coordinator init --hosts put each member on its address: {:?}",
        fed.apis
    );
    fed.rpc_url = format!("http://{}", fwd.addr);
    fed.netns = (1..=4).map(|h| net.netns(h)).collect();
    // Member 0's node listens on its host's address; its payees' nodes on the hub's.
    let payees = Payees::prepare(&testnet, &fed, net.ip(0).into()).await?;
    fed.extra[0] = vec![format!("--ln-listen={}:{}", net.ip(1), free_port()?)];
    fed.spawn_all()?;
    fed.wait_epoch(&[0, 1, 2, 3], 1, Duration::from_secs(180))
        .await?;
    payees.register(&fed, 1).await?;
    let submitter = payees.submit_weights(&fed, &[1, 2]);
    let token = std::fs::read_to_string(fed.member_dir(0).join("admin.token"))?
        .trim()
        .to_string();
    wait_for(
        "a payout to reach a payee over the switch",
        Duration::from_secs(180),
        || async { Ok((!payees.arrived().is_empty()).then_some(())) },
    )
    .await
    .map_err(|e| format!("{e}; member 0's log:\n{}", fed.log_tail(0)))?;

    let mut rows = Vec::new();
    let all = [0usize, 1, 2, 3];

    // 0. The lossy, slow links alone, for as long as a fault lasts.
    let before = net.stats();
    let r0 = receipted(&fed).await;
    let e0 = highest(&fed, &all).await;
    let t0 = Instant::now();
    tokio::time::sleep(fault).await; // the scenario's length, not a wait for a condition
    let e1 = highest(&fed, &all).await;
    assert!(e1 > e0, "no epoch signed in {fault:?} over the slow links");
    let baseline_rate = (e1 - e0) as f64 / t0.elapsed().as_secs_f64();
    rows.push(Row::new(
        "no partition (the links' delay and loss only)",
        t0.elapsed().as_secs_f64(),
        e1 - e0,
        0.0,
        packets(&net, before),
        receipted(&fed).await.saturating_sub(r0),
    ));

    // 1. Member 3 cut off from every host (its peers and bitcoind) for the fault's length: the other
    //    three (n − f) keep signing; healed, member 3 catches up and signs again.
    let before = net.stats();
    let r0 = receipted(&fed).await;
    let e0 = highest(&fed, &all).await;
    net.isolate(4);
    let t0 = Instant::now();
    tokio::time::sleep(fault).await;
    let during = highest(&fed, &[0, 1, 2]).await;
    net.heal();
    let healed = Instant::now();
    let fault_secs = t0.elapsed().as_secs_f64();
    // Liveness, not speed: n − f connected members go on signing at a rate comparable to the whole
    // federation's (this run's no-partition figure). Two defects found here failed it (1 epoch in 15 s
    // against 13): each new aleph-bft session waited 5 s for the cut-off member's newest unit (ADR 0018),
    // and the catch-up ask waited out its HTTP timeout on that member inside the session loop.
    let cut_rate = (during - e0) as f64 / fault_secs;
    assert!(
        cut_rate >= baseline_rate / 3.0,
        "the three connected members signed {} epochs in {fault_secs:.1} s while member 3 was cut off \
         ({cut_rate:.2}/s; {baseline_rate:.2}/s with every member connected)",
        during - e0
    );
    let recover_secs = every_member_past(&fed, during, healed).await?;
    rows.push(Row::new(
        "one member cut off from every host, then healed",
        fault_secs,
        during - e0,
        recover_secs,
        packets(&net, before),
        receipted(&fed).await.saturating_sub(r0),
    ));

    // 2. A 2 | 2 split: neither side has n − f = 3 members, so nobody may sign a new result (a session
    //    already signed by three when the split came may still complete).
    let before = net.stats();
    let r0 = receipted(&fed).await;
    let e0 = highest(&fed, &all).await;
    net.cut(&[1, 2], &[3, 4]);
    let t0 = Instant::now();
    tokio::time::sleep(fault).await;
    let during = highest(&fed, &all).await;
    net.heal();
    let healed = Instant::now();
    let fault_secs = t0.elapsed().as_secs_f64();
    assert!(
        during <= e0 + 1,
        "epochs {e0} → {during} signed during a 2 | 2 split: a half signed without n − f"
    );
    let recover_secs = every_member_past(&fed, during, healed).await?;
    rows.push(Row::new(
        "2 | 2 split (members 0, 1 | 2, 3), then healed",
        fault_secs,
        during - e0,
        recover_secs,
        packets(&net, before),
        receipted(&fed).await.saturating_sub(r0),
    ));

    // 3. A flapping link: member 3 cut off for 2 s, connected for 2 s, for the fault's length.
    let before = net.stats();
    let r0 = receipted(&fed).await;
    let e0 = highest(&fed, &all).await;
    let t0 = Instant::now();
    while t0.elapsed() < fault {
        net.isolate(4);
        tokio::time::sleep(Duration::from_secs(2)).await;
        net.heal();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let fault_secs = t0.elapsed().as_secs_f64();
    let healed = Instant::now();
    let during = highest(&fed, &all).await;
    let recover_secs = every_member_past(&fed, during, healed).await?;
    rows.push(Row::new(
        "flapping link: member 3 cut off 2 s, connected 2 s, repeatedly",
        fault_secs,
        during - e0,
        recover_secs,
        packets(&net, before),
        receipted(&fed).await.saturating_sub(r0),
    ));

    // 4. The payer cut off while it pays: the moment a payout of member 0's reaches a payee, member 0 is
    //    cut off from every host (its peers, bitcoind, its payees) with the epoch's other keysends in
    //    flight or not yet sent. The others go on signing (member 0's epochs included: it pays them once
    //    it is back); healed, every payout is made once.
    let before = net.stats();
    let r0 = receipted(&fed).await;
    let e0 = highest(&fed, &all).await;
    let seen = payees.arrived();
    wait_for(
        "the next payout to reach a payee",
        Duration::from_secs(180),
        || async { Ok((payees.arrived().len() > seen.len()).then_some(())) },
    )
    .await?;
    net.isolate(1);
    let t0 = Instant::now();
    tokio::time::sleep(fault).await;
    let during = highest(&fed, &[1, 2, 3]).await;
    net.heal();
    let healed = Instant::now();
    let fault_secs = t0.elapsed().as_secs_f64();
    let recover_secs = every_member_past(&fed, during, healed).await?;
    rows.push(Row::new(
        "the payer (member 0) cut off from every host mid-payout, then healed",
        fault_secs,
        during - e0,
        recover_secs,
        packets(&net, before),
        receipted(&fed).await.saturating_sub(r0),
    ));

    // Every payout of member 0's signed epochs so far receipted, and the ledger settled: nothing in
    // flight, no payment without its receipt.
    let top = highest(&fed, &all).await;
    let mut due = Vec::new();
    for e in (1..=top).filter(|&e| payer(e, 4) == 0) {
        let signed = fed
            .epoch(1, e)
            .await
            .ok_or(format!("epoch {e} at member 1"))?;
        due.extend(signed.result.payouts.iter().map(|p| (e, p.key.to_string())));
    }
    let list = payees.list();
    let last = std::sync::Mutex::new(String::from("no ledger read"));
    let report = wait_for(
        "every payout of member 0's epochs receipted and the ledger settled",
        Duration::from_secs(180),
        || async {
            let Ok(l) = ledger(&fed, &list, &token).await else {
                return Ok(None);
            };
            let all_receipted = due
                .iter()
                .all(|(e, k)| l.payouts.iter().any(|r| r.epoch == *e && r.payee == *k));
            let r = check_settled(&l);
            *last.lock().expect("not poisoned") = format!(
                "{}; every due payout receipted: {all_receipted}",
                r.summary()
            );
            Ok((all_receipted && r.settled()).then_some(r))
        },
    )
    .await
    .map_err(|e| {
        let last = last.lock().expect("not poisoned");
        format!(
            "{e}; last audit: {last}; member 0's log:\n{}",
            fed.log_tail(0)
        )
    })?;
    submitter.abort();
    println!(
        "audit: {} ({} payouts due over {top} epochs)",
        report.summary(),
        due.len()
    );
    let paid_twice = report
        .violations
        .iter()
        .filter(|v| matches!(v.rule, Rule::EpochPaidTwice | Rule::PayoutWithoutReceipt))
        .count() as u64;

    // Every epoch of the run, at every member: one certified result each, every copy's signatures valid.
    let cfg = fed.config()?;
    let top = highest(&fed, &all).await;
    let mut conflicts = 0;
    for e in 1..=top {
        let mut copies = Vec::new();
        for i in all {
            if let Some(signed) = fed.epoch(i, e).await {
                boltensor_coordinator::verify_epoch(&signed, &cfg)
                    .map_err(|err| format!("member {i}'s epoch {e}: {err}"))?;
                copies.push(signed);
            }
        }
        if copies.is_empty() {
            return Err(format!("no member serves epoch {e}").into());
        }
        if copies[1..]
            .iter()
            .any(|c| c.certified() != copies[0].certified())
        {
            conflicts += 1;
        }
    }
    for row in &mut rows {
        row.conflicts = conflicts;
        row.epochs_checked = top;
        row.paid_twice = paid_twice;
        row.lost_msat = report.lost_msat();
        let json = serde_json::to_string(row)?;
        println!("NETNS-ROW {json}");
        if let Ok(path) = std::env::var("BOLTENSOR_NETNS_REPORT") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(f, "{json}")?;
        }
    }
    assert_eq!(conflicts, 0, "conflicting signed results over {top} epochs");
    assert!(report.holds(), "{}", report.summary());
    assert!(!due.is_empty(), "member 0 paid no epoch");
    payees.stop().await;
    Ok(())
}
