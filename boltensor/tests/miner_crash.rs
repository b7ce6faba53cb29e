//! kill -9 of a miner process while it holds a client's payment: after the restart the miner fails the
//! payment back and the client's balance is whole again. Real processes, real regtest, real ldk-node.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use boltensor_client::{ClientConfig, ClientError, PayingClient};
use boltensor_ln::{ChainSource, LnNode, PublicKey};
use boltensor_testenv::{free_port, wait_for, TestEnvError, TestNet};
use tokio::sync::mpsc;

/// The miner process; killed (SIGKILL) on drop so a failing test leaves nothing behind.
struct MinerProcess {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl MinerProcess {
    fn spawn(args: &[String]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_boltensor"))
            .args(args)
            .env(
                "RUST_LOG",
                "warn,boltensor_miner=info,ldk_node::chain::bitcoind=off",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("boltensor runs");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        MinerProcess { child, lines }
    }

    /// Waits for a stdout line containing `needle` and returns it.
    async fn line(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if line.contains(needle) => return line,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("miner exited before printing {needle:?}"),
                Err(_) => panic!("miner did not print {needle:?} within 60 s"),
            }
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for MinerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_miner_fails_the_held_payment_back_after_restart() -> Result<(), TestEnvError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,ldk_node::chain::bitcoind=off,ldk_node::liquidity=off")
        .with_test_writer()
        .try_init();
    let net = TestNet::start().await?;
    let client_node = Arc::new(net.node("client").await?);
    let mut coord_cfg = net.node_config("coordinator")?;
    coord_cfg.liquidity_provider = true;
    let coordinator = LnNode::start(coord_cfg).await?;
    net.fund(&[&client_node, &coordinator], 2).await?;
    net.open_channel(&client_node, &coordinator, 1_000_000, 0)
        .await?;

    // A model server that takes the request and never answers; it tells us when the request arrived.
    let (got_tx, mut got_rx) = mpsc::unbounded_channel::<()>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let model_url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let _ = got_tx.send(());
            std::future::pending::<&'static str>()
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let ChainSource::BitcoindRpc {
        port,
        user,
        password,
        ..
    } = net.bitcoind.chain_source()
    else {
        unreachable!("regtest uses bitcoind RPC");
    };
    let ln_port = free_port().expect("port");
    let api_port = free_port().expect("port");
    let data_dir = net.dir().join("miner-process");
    let args: Vec<String> = [
        "miner",
        "run",
        "--data-dir",
        &data_dir.display().to_string(),
        "--network",
        "regtest",
        "--ln-listen",
        &format!("127.0.0.1:{ln_port}"),
        "--bitcoind-rpc",
        &format!("127.0.0.1:{port}"),
        "--bitcoind-rpc-user",
        &user,
        "--bitcoind-rpc-password",
        &password,
        "--listen",
        &format!("127.0.0.1:{api_port}"),
        "--model",
        "all-minilm-l6-v2",
        "--external",
        &format!("hang={model_url}#anything#chat"),
        "--hold-timeout-secs",
        "600",
        "--trusted-peer",
        &coordinator.node_id().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut miner = MinerProcess::spawn(&args);
    let line = miner.line("lightning node").await;
    let miner_id: PublicKey = line
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .expect("node id on the first line");
    miner.line("miner API on").await;
    let miner_addr = format!("127.0.0.1:{ln_port}").parse().expect("addr");

    // coordinator -> miner channel, confirmed and usable.
    let (_, txid) = coordinator
        .open_channel(miner_id, miner_addr, 1_000_000, 0)
        .await?;
    net.bitcoind
        .wait_for_tx(txid, Duration::from_secs(30))
        .await?;
    net.bitcoind.mine(6).await?;
    let usable = |node: &LnNode| {
        node.channels()
            .iter()
            .any(|c| c.counterparty == miner_id && c.is_usable && c.next_htlc_limit_msat > 0)
    };
    wait_for(
        "coordinator -> miner usable",
        Duration::from_secs(60),
        || async {
            coordinator.sync()?;
            Ok(usable(&coordinator).then_some(()))
        },
    )
    .await?;

    let mut cfg = ClientConfig::new(vec![format!("http://127.0.0.1:{api_port}")]);
    cfg.payment_timeout = Duration::from_secs(120);
    let client = PayingClient::new(cfg, Arc::clone(&client_node));
    let before = client_node.balances().lightning_sats;
    let body = serde_json::json!({
        "model": "hang",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 8,
    });
    let request = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .post("/v1/chat/completions", body.to_string().into_bytes())
                .await
        })
    };
    // The model has the request: the payment is held at the miner. Now kill -9 the miner.
    tokio::time::timeout(Duration::from_secs(60), got_rx.recv())
        .await
        .expect("the miner ran the model")
        .expect("model server alive");
    assert!(
        client.spend().in_flight_msat > 0,
        "the payment is in flight"
    );
    miner.kill9();
    match request.await.expect("join") {
        Err(ClientError::Unreachable { .. }) => {}
        other => panic!("the client sees the miner die, got {other:?}"),
    }

    // Restart from the same data dir: recovery fails the payment back.
    let mut miner = MinerProcess::spawn(&args);
    miner.line("miner API on").await;
    wait_for(
        "the coordinator to reconnect to the miner",
        Duration::from_secs(60),
        || async {
            let _ = coordinator.connect(miner_id, miner_addr, true);
            Ok(usable(&coordinator).then_some(()))
        },
    )
    .await?;
    wait_for(
        "the payment to be failed back",
        Duration::from_secs(90),
        || async { Ok((client.spend().refunded == 1).then_some(())) },
    )
    .await?;
    wait_for(
        "the client's balance to be whole",
        Duration::from_secs(30),
        || async { Ok((client_node.balances().lightning_sats == before).then_some(())) },
    )
    .await?;
    assert_eq!(client.spend().spent_msat, 0, "nothing was charged");
    drop(miner);
    client_node.stop().await;
    coordinator.stop().await;
    Ok(())
}
