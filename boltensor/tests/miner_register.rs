//! `boltensor miner run --coordinator …`: a standalone miner process registers with a federation of four
//! `boltensor coordinator run` processes, and the members list it (node id, public URL, models) for
//! clients' routing. Real processes on a regtest bitcoind.

use std::process::{Child, Stdio};
use std::time::Duration;

use boltensor_testenv::{free_port, wait_for, Bitcoind, BitcoindOptions, TestEnvError};

mod fedproc;
use fedproc::{bin, Federation, Result};

/// Kills the miner when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_process_registers_with_the_federation() -> Result {
    let dir = tempfile::tempdir()?;
    let bitcoind = Bitcoind::start(BitcoindOptions::new(dir.path().join("bitcoind"))).await?;
    let boltensor_ln::ChainSource::BitcoindRpc {
        port,
        user,
        password,
        ..
    } = bitcoind.chain_source()
    else {
        unreachable!("regtest bitcoind")
    };
    let (mut fed, _) = Federation::init(dir.path(), &bitcoind, &[])?;
    fed.spawn_all()?;
    let apis: Vec<String> = (0..4).map(|i| fed.api(i)).collect();

    let api_port = free_port()?;
    let public = format!("http://miner.example:{api_port}");
    let log_path = dir.path().join("miner.log");
    let log = std::fs::File::create(&log_path)?;
    let mut miner = bin();
    miner
        .args(["miner", "run", "--model", "all-minilm-l6-v2"])
        .arg(format!("--data-dir={}", dir.path().join("miner").display()))
        .arg(format!("--ln-listen=127.0.0.1:{}", free_port()?))
        .arg(format!("--bitcoind-rpc=127.0.0.1:{port}"))
        .arg(format!("--bitcoind-rpc-user={user}"))
        .arg(format!("--bitcoind-rpc-password={password}"))
        .arg(format!("--listen=127.0.0.1:{api_port}"))
        .arg(format!("--public-url={public}/v1"));
    for api in &apis[..2] {
        miner.arg(format!("--coordinator={api}"));
    }
    let miner = Proc(
        miner
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?,
    );

    // Every member lists it (the registration went through consensus), with the public URL and model.
    let http = reqwest::Client::new();
    let listed = wait_for(
        "every member to list the miner",
        Duration::from_secs(120),
        || async {
            let mut entries = Vec::new();
            for api in &apis {
                let Ok(r) = http.get(format!("{api}/v1/miners")).send().await else {
                    return Ok(None);
                };
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                match v["miners"].as_array().and_then(|m| m.first()).cloned() {
                    Some(entry) => entries.push(entry),
                    None => return Ok(None),
                }
            }
            Ok(Some(entries))
        },
    )
    .await
    .map_err(|e: TestEnvError| {
        format!(
            "{e}; miner log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        )
    })?;
    let printed = std::fs::read_to_string(&log_path)?;
    let node_id = printed
        .lines()
        .find_map(|l| l.strip_prefix("lightning node "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the miner prints its node id");
    assert!(
        printed.contains(&format!("registered with the federation as {public}")),
        "{printed}"
    );
    for entry in &listed {
        assert_eq!(entry["node_id"], node_id, "{entry}");
        assert_eq!(entry["api"], public.as_str(), "{entry}");
        assert_eq!(entry["models"], serde_json::json!(["all-minilm-l6-v2"]));
    }
    drop(miner);
    drop(fed);
    bitcoind.stop().await;
    Ok(())
}
