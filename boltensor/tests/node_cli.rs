//! `boltensor node info|open-channel`: an operator funds a role's node from the address `node info`
//! prints and opens a channel to a coordinator, all from the command line; a second process on the same
//! data dir is refused. Real binary, real regtest bitcoind, a real ldk-node peer.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use boltensor_ln::{bitcoin::Address, ChainSource, LnNode};
use boltensor_testenv::{free_port, wait_for, TestEnvError, TestNet};

fn err(e: impl std::fmt::Display) -> TestEnvError {
    TestEnvError::Devnet(e.to_string())
}

/// Runs `boltensor node <args>` with the node flags and returns its output.
fn node_cmd(base: &[String], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boltensor"))
        .arg("node")
        .args(args)
        .args(base)
        .env("RUST_LOG", "warn,ldk_node::chain::bitcoind=off")
        .stdin(Stdio::null())
        .output()
        .expect("boltensor runs")
}

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_funds_and_open_channel_from_the_command_line() -> Result<(), TestEnvError> {
    let net = TestNet::start().await?;
    let mut peer_cfg = net.node_config("coordinator")?;
    peer_cfg.liquidity_provider = true;
    let peer = LnNode::start(peer_cfg).await?;
    let ChainSource::BitcoindRpc {
        port,
        user,
        password,
        ..
    } = net.bitcoind.chain_source()
    else {
        unreachable!("regtest uses bitcoind RPC");
    };
    let data_dir = net.dir().join("operator");
    let base: Vec<String> = [
        "--data-dir",
        &data_dir.display().to_string(),
        "--network",
        "regtest",
        "--ln-listen",
        &format!("127.0.0.1:{}", free_port().map_err(err)?),
        "--bitcoind-rpc",
        &format!("127.0.0.1:{port}"),
        "--bitcoind-rpc-user",
        &user,
        "--bitcoind-rpc-password",
        &password,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    // A fresh node: an id, an address, nothing on it.
    let info = stdout_json(&node_cmd(&base, &["info", "--json"]));
    assert_eq!(info["onchain_sats"], 0, "{info}");
    let node_id = info["node_id"].as_str().expect("node id").to_owned();
    let address: Address = info["address"]
        .as_str()
        .and_then(|a| a.parse::<Address<_>>().ok())
        .map(|a| a.assume_checked())
        .expect("an address");

    // Fund it there (one coinbase output, matured).
    net.bitcoind.mine_to(1, &address).await?;
    net.bitcoind
        .mine(boltensor_testenv::net::COINBASE_MATURITY)
        .await?;
    let info = stdout_json(&node_cmd(&base, &["info", "--json"]));
    assert_eq!(info["node_id"], node_id.as_str(), "same node");
    assert!(
        info["spendable_onchain_sats"].as_u64() > Some(1_000_000),
        "{info}"
    );

    // Open a channel to the peer, pushing part of it (the node's inbound liquidity).
    let peer_arg = format!("{}@{}", peer.node_id(), peer.listen_addr());
    let out = node_cmd(
        &base,
        &[
            "open-channel",
            "--peer",
            &peer_arg,
            "--sats",
            "500000",
            "--push-msat",
            "100000000",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("funding transaction"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    net.bitcoind.mine(6).await?;
    let from_peer = wait_for(
        "the peer to see the confirmed channel",
        Duration::from_secs(60),
        || async {
            peer.sync()?;
            Ok(peer
                .channels()
                .into_iter()
                .find(|c| c.counterparty.to_string() == node_id && c.confirmations >= Some(6)))
        },
    )
    .await?;
    assert_eq!(from_peer.capacity_sats, 500_000);
    assert!(!from_peer.is_outbound);
    let info = stdout_json(&node_cmd(&base, &["info", "--json"]));
    let channels = info["channels"].as_array().expect("channels");
    assert_eq!(channels.len(), 1, "{info}");
    assert_eq!(channels[0]["counterparty"], peer.node_id().to_string());

    // One node, one process: a second process on the same data dir is refused while the first runs.
    let mut first = Command::new(env!("CARGO_BIN_EXE_boltensor"))
        .args([
            "client",
            "proxy",
            "--miner",
            "http://127.0.0.1:9",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{}", free_port().map_err(err)?))
        .args(&base)
        .env("RUST_LOG", "warn,ldk_node::chain::bitcoind=off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("boltensor runs");
    let stdout = first.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // The proxy prints its node's id once it holds the lock and runs the node.
    let started = rx
        .recv_timeout(Duration::from_secs(60))
        .is_ok_and(|line| line.contains(&node_id));
    let second = node_cmd(&base, &["info"]);
    let _ = first.kill();
    let _ = first.wait();
    assert!(started, "the proxy ran the node");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success() && stderr.contains("another boltensor process"),
        "{stderr}"
    );
    assert!(data_dir.join("node.lock").exists());
    peer.stop().await;
    Ok(())
}
