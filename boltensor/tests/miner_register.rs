//! `boltensor miner run --coordinator …`: a standalone miner process registers with a federation of four
//! `boltensor coordinator run` processes, and the members list it (node id, public URL, models) for
//! clients' routing. Real processes on a regtest bitcoind.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use boltensor_testenv::{free_port, wait_for, Bitcoind, BitcoindOptions, TestEnvError};

/// Kills the processes when the test ends, however it ends.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_boltensor"))
}

/// A base port with the 8 ports after it free.
fn free_block() -> u16 {
    for _ in 0..20 {
        let base = free_port().expect("a free port");
        if base > 60_000 {
            continue;
        }
        if (0..8).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no block of 8 free ports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_process_registers_with_the_federation() -> Result<(), Box<dyn std::error::Error>> {
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
    let base = free_block();
    let fed = dir.path().join("fed");
    let out = bin()
        .args(["coordinator", "init", "--members", "4"])
        .args(["--rounds-per-session", "10", "--round-delay-ms", "60"])
        .arg(format!("--base-port={base}"))
        .arg(format!("--dir={}", fed.display()))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut procs = Procs(Vec::new());
    for i in 0..4 {
        let log = std::fs::File::create(dir.path().join(format!("member-{i}.log")))?;
        procs.0.push(
            bin()
                .args(["coordinator", "run"])
                .arg(format!(
                    "--dir={}",
                    fed.join(format!("member-{i}")).display()
                ))
                .arg(format!("--rpc-url=http://127.0.0.1:{port}"))
                .arg(format!("--rpc-user={user}"))
                .arg(format!("--rpc-pass={password}"))
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()?,
        );
    }
    let apis: Vec<String> = (0..4)
        .map(|i| format!("http://127.0.0.1:{}", base + 2 * i + 1))
        .collect();

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
    procs.0.push(
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
    drop(procs);
    bitcoind.stop().await;
    Ok(())
}
