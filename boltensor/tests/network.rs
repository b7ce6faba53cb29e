//! The federation across hosts with a real network between them (issue 19): four `boltensor coordinator
//! run` processes, each in its own network namespace with its own address (`coordinator init --hosts`),
//! every packet between them delayed 50 ms ± 10 ms and 1 % of them lost (testenv::netem, a user-space
//! switch: this kernel has no sch_netem), and bitcoind on the hub behind a forwarder. Then scripted
//! partitions: one member cut off, a 2 | 2 split, a flapping link.
//!
//! Each scenario reports a row (`NETNS-ROW {json}`, appended to `$BOLTENSOR_NETNS_REPORT` when set;
//! `scripts/netns.sh` renders docs/reliability.md's table from them): new epochs signed during the fault,
//! seconds from healing until every member holds an epoch signed after the heal, and — checked over the
//! whole run — conflicting signed results (different results certified for one epoch; must be 0).
//! `BOLTENSOR_NETNS_FAULT_SECS` sets how long each fault lasts (default 15; the script uses 60).
//! Needs root (ip netns, /dev/net/tun).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use boltensor_testenv::netem::{EmuNet, Forwarder, LinkSpec};
use boltensor_testenv::{wait_for, TestNet};
use serde::Serialize;

mod fedproc;
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
    ) -> Row {
        Row {
            scenario: scenario.into(),
            fault_secs,
            epochs_during,
            recover_secs,
            conflicts: 0,
            epochs_checked: 0,
            packets,
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
    fed.spawn_all()?;
    fed.wait_epoch(&[0, 1, 2, 3], 1, Duration::from_secs(180))
        .await?;

    let mut rows = Vec::new();
    let all = [0usize, 1, 2, 3];

    // 0. The lossy, slow links alone, for as long as a fault lasts.
    let before = net.stats();
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
    ));

    // 1. Member 3 cut off from every host (its peers and bitcoind) for the fault's length: the other
    //    three (n − f) keep signing; healed, member 3 catches up and signs again.
    let before = net.stats();
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
    ));

    // 2. A 2 | 2 split: neither side has n − f = 3 members, so nobody may sign a new result (a session
    //    already signed by three when the split came may still complete).
    let before = net.stats();
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
    ));

    // 3. A flapping link: member 3 cut off for 2 s, connected for 2 s, for the fault's length.
    let before = net.stats();
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
    ));

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
    Ok(())
}
