//! `boltensor devnet` end to end on the real daemons: up, status, resume, down.

use std::time::Duration;

use boltensor_devnet::{self as devnet, DevnetConfig, StatusReport};
use boltensor_testenv::{free_port, wait_for, TestEnvError};

fn config(dir: &std::path::Path) -> Result<DevnetConfig, TestEnvError> {
    Ok(DevnetConfig {
        data_dir: dir.to_path_buf(),
        coordinators: 2,
        miners: 1,
        validators: 1,
        clients: 1,
        bitcoind: None,
        control_port: free_port().map_err(|e| TestEnvError::Devnet(e.to_string()))?,
        models_dir: None,
        traffic_interval: None,
        validator_round: None,
        epoch: Duration::from_secs(60),
        block_interval: Some(Duration::from_secs(1)),
    })
}

async fn run_until_ready(cfg: DevnetConfig) -> Result<StatusReport, TestEnvError> {
    let dir = cfg.data_dir.clone();
    let up = tokio::spawn(devnet::up(cfg, std::future::pending(), |_| {}));
    let report = wait_for(
        "the devnet to be ready",
        Duration::from_secs(120),
        || async {
            if up.is_finished() {
                return Err(TestEnvError::Devnet("devnet up ended early".into()));
            }
            Ok(devnet::status(&dir).await.ok().filter(|r| r.ready))
        },
    )
    .await;
    // Stop it whether or not it became ready, and wait until it has released everything.
    let stopped = devnet::down(&dir).await;
    let ended = up.await.expect("devnet task does not panic");
    let report = report?;
    assert!(stopped?, "down found the devnet running");
    ended?;
    Ok(report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn devnet_comes_up_with_every_channel_usable_and_resumes() -> Result<(), TestEnvError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = run_until_ready(config(dir.path())?).await?;

    // 2 coordinators, 1 miner, 1 validator, 1 client: payers open to every coordinator (4 channels),
    // coordinators to every miner (2).
    assert_eq!(report.nodes.len(), 5);
    let opened: Vec<_> = report
        .nodes
        .iter()
        .flat_map(|n| {
            n.channels
                .iter()
                .filter(|c| c.outbound)
                .map(move |c| (n, c))
        })
        .collect();
    assert_eq!(opened.len(), 6);
    assert!(opened.iter().all(|(_, c)| c.usable), "{}", report.render());
    let check = report.routing_check.as_deref().unwrap_or_default();
    assert!(check.contains("client-1 paid miner-1"), "{check}");
    let miner = report
        .nodes
        .iter()
        .find(|n| n.name == "miner-1")
        .expect("miner");
    assert_eq!(
        miner.lightning_sats, 1000,
        "the routing check paid the miner"
    );

    // Up again on the same data dir: same nodes, same channels, nothing refunded.
    let again = run_until_ready(config(dir.path())?).await?;
    let ids = |r: &StatusReport| {
        r.nodes
            .iter()
            .map(|n| n.node_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&again), ids(&report));
    let miner = again
        .nodes
        .iter()
        .find(|n| n.name == "miner-1")
        .expect("miner");
    assert_eq!(miner.channels.len(), 2);
    assert_eq!(
        miner.lightning_sats, 2000,
        "the second routing check paid it again"
    );
    Ok(())
}

#[tokio::test]
async fn status_of_a_devnet_that_is_not_there_says_how_to_start_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = devnet::status(dir.path()).await.expect_err("nothing runs");
    assert!(err.to_string().contains("boltensor devnet up"), "{err}");
}
