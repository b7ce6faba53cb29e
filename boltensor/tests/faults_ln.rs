//! Fault injection on the paid-request (Lightning) side, on the real regtest network: bitcoind, ldk-node
//! nodes, `boltensor miner run` and `boltensor client proxy` processes (issue 10). Each test injects one
//! fault, waits until the network recovered (the interrupted payment resolved, a new paid request served),
//! then audits every node's payments and the miner's request store with `boltensor_audit` (every rule
//! holds, nothing in flight, 0 msat lost) and records a row of the fault table (`scripts/faults.sh`).
//!
//! Topology: client → coordinator (hub, liquidity provider) → miner process. Time to recover is measured
//! from the fault (the kill, or bitcoind's restart) to the moment every condition of "recovered" held
//! while the daemons ran; the audit afterwards stops them to read their stores.

mod lnfault;

use std::sync::Arc;
use std::time::{Duration, Instant};

use boltensor_client::{ClientConfig, ClientError, PayingClient, PaymentOutcome};
use boltensor_protocol::l402::Challenge;
use boltensor_protocol::Role;
use boltensor_testenv::{wait_for, TestEnvError};
use lnfault::{audit_until_settled, finish, init_tracing, LnNet, MinerProc, Proc, STEP};

const CHAT_HANG: &str =
    r#"{"model":"hang","messages":[{"role":"user","content":"hello"}],"max_tokens":8}"#;
const EMBED: &str = r#"{"model":"all-minilm-l6-v2","input":"a paid embedding"}"#;

fn paying_client(net: &LnNet, miner: &MinerProc) -> PayingClient {
    let mut cfg = ClientConfig::new(vec![miner.api.clone()]);
    cfg.payment_timeout = Duration::from_secs(120);
    PayingClient::new(cfg, Arc::clone(&net.client))
}

/// A paid embedding through `client`: answered 200 and its payment settled.
async fn paid_embedding(client: &PayingClient) {
    let mut paid = client
        .post("/v1/embeddings", EMBED.as_bytes().to_vec())
        .await
        .expect("the miner answers");
    assert_eq!(paid.response.status(), 200, "a paid embedding is served");
    match paid.outcome().await {
        Some(PaymentOutcome::Settled { .. }) => {}
        other => panic!("the embedding's payment settles, got {other:?}"),
    }
}

fn secs(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 10.0).round() / 10.0
}

/// Stops the miner, opens its node and store here, and audits client, coordinator and miner.
async fn audit(
    net: &LnNet,
    miner: &mut MinerProc,
    client: &boltensor_ln::LnNode,
) -> Result<(boltensor_audit::AuditReport, Arc<boltensor_ln::LnNode>), TestEnvError> {
    let (requests, miner_node) = miner.stop_and_open(net).await?;
    let (report, _) = audit_until_settled(
        &net.coordinator,
        &[
            ("client", Role::Client, client),
            ("coordinator", Role::Coordinator, &net.coordinator),
            ("miner", Role::Miner, &miner_node),
        ],
        &requests,
    )
    .await;
    Ok((report, miner_node))
}

/// (a) kill -9 of the miner while it holds the client's HTLC and the model is still running: the
/// restarted miner fails the payment back (its record was `Serving`), the client's funds return.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_miner_killed_holding_htlc_before_model_finished() -> Result<(), TestEnvError> {
    init_tracing();
    let net = LnNet::start(None, false).await?;
    let mut miner = net.spawn_miner(&[]).await?;
    let client = paying_client(&net, &miner);
    let before = net.client.balances().lightning_sats;

    let request = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .post("/v1/chat/completions", CHAT_HANG.as_bytes().to_vec())
                .await
        })
    };
    net.model.arrived().await;
    miner.proc().count("PaymentClaimable", 1).await; // the HTLC is held at the miner
    assert!(
        client.spend().in_flight_msat > 0,
        "the payment is in flight"
    );
    let fault = Instant::now();
    miner.kill9();
    match request.await.expect("join") {
        // The miner died holding the payment: the client neither has an answer nor asks another miner
        // while its payment is pending (issue 20, row 14).
        Err(ClientError::Unreachable { .. } | ClientError::AnswerLost { .. }) => {}
        other => panic!("the client sees the miner die, got {other:?}"),
    }

    miner.restart(&net).await?;
    wait_for("the held payment to be failed back", STEP, || async {
        Ok((client.spend().refunded == 1).then_some(()))
    })
    .await?;
    miner.wait_resolved(1).await?;
    paid_embedding(&client).await;
    let recover_secs = secs(fault);
    assert_eq!(
        client.spend().paid_requests,
        1,
        "only the embedding was charged"
    );

    let (report, miner_node) = audit(&net, &mut miner, &net.client).await?;
    assert_eq!(
        (report.requests.failed_back, report.requests.delivered),
        (1, 1)
    );
    let spent_sat = (report.client_spend_msat).div_ceil(1000);
    assert!(
        net.client.balances().lightning_sats + spent_sat >= before,
        "the client's balance is whole but for the embedding"
    );
    finish(
        "boltensor/tests/faults_ln.rs::fault_miner_killed_holding_htlc_before_model_finished",
        "kill -9 of a miner holding an HTLC, before the model finished (restarted at once)",
        true,
        recover_secs,
        &report,
        "the restarted miner failed the payment back; time: kill → refund at the client and a new paid request served",
    );
    net.model.release();
    miner_node.stop().await;
    net.client.stop().await;
    net.coordinator.stop().await;
    Ok(())
}

/// (b) kill -9 of the miner after the model finished and the result was stored (`Settling`), before it
/// claimed the payment (the test-only pause `BOLTENSOR_TEST_PAUSE_BEFORE_CLAIM_MS` opens that window):
/// the restarted miner claims the stored result, the client's payment settles and the client fetches the
/// result again with its token and the preimage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_miner_killed_holding_htlc_after_model_finished() -> Result<(), TestEnvError> {
    init_tracing();
    let net = LnNet::start(None, true).await?;
    let mut miner = net
        .spawn_miner(&[("BOLTENSOR_TEST_PAUSE_BEFORE_CLAIM_MS", "120000".into())])
        .await?;

    // The L402 exchange by hand, to keep the token for fetching the result again.
    let http = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", miner.api);
    let challenge = http
        .post(&url)
        .header("content-type", "application/json")
        .body(CHAT_HANG)
        .send()
        .await
        .expect("the miner answers");
    assert_eq!(challenge.status(), 402);
    let challenge = Challenge::parse(
        challenge
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .expect("an L402 challenge"),
    )
    .expect("a valid challenge");
    let invoice = boltensor_ln::parse_invoice(&challenge.invoice).expect("an invoice");
    let pending = net.client.send(&invoice)?;
    let served = {
        let (http, url, token) = (http.clone(), url.clone(), challenge.token.clone());
        tokio::spawn(async move {
            http.post(&url)
                .header("content-type", "application/json")
                .header("authorization", format!("L402 {token}"))
                .body(CHAT_HANG)
                .send()
                .await
        })
    };
    miner.proc().line("pausing before the claim").await; // result stored, not yet claimed
    let fault = Instant::now();
    miner.kill9();
    assert!(
        served.await.expect("join").is_err(),
        "the client sees the miner die"
    );

    // No pause this time: recovery claims the stored result.
    miner.restart(&net).await?;
    let sent = pending.outcome(STEP).await?;
    let preimage = sent.preimage.expect("a settled payment has its preimage");
    miner.wait_resolved(1).await?;
    let again = http
        .post(&url)
        .header("content-type", "application/json")
        .header(
            "authorization",
            format!("L402 {}:{}", challenge.token, hex::encode(preimage.0)),
        )
        .body(CHAT_HANG)
        .send()
        .await
        .expect("the miner answers");
    assert_eq!(again.status(), 200, "the stored result is fetched again");
    let text = again.text().await.expect("a body");
    assert!(
        text.contains("the answer is 42"),
        "the model's answer: {text}"
    );
    let client = paying_client(&net, &miner);
    paid_embedding(&client).await;
    let recover_secs = secs(fault);

    let (report, miner_node) = audit(&net, &mut miner, &net.client).await?;
    assert_eq!(
        (report.requests.failed_back, report.requests.delivered),
        (0, 2)
    );
    finish(
        "boltensor/tests/faults_ln.rs::fault_miner_killed_holding_htlc_after_model_finished",
        "kill -9 of a miner holding an HTLC, after the model finished (result stored, not claimed; restarted at once)",
        true,
        recover_secs,
        &report,
        "the restarted miner claimed the stored result, the client fetched it again with token + preimage; time: kill → payment settled at the client, result fetched and a new paid request served",
    );
    miner_node.stop().await;
    net.client.stop().await;
    net.coordinator.stop().await;
    Ok(())
}

/// A `boltensor client proxy` process paying `miner` from the client node of `net` (which must be
/// stopped in-process first: the proxy takes its data dir over).
struct ProxyProc {
    args: Vec<String>,
    url: String,
    client_id: boltensor_ln::PublicKey,
    client_addr: std::net::SocketAddr,
    http: reqwest::Client,
    /// The proxy writes its API key here at start.
    key_file: std::path::PathBuf,
}

impl ProxyProc {
    fn new(net: &LnNet, dir: &std::path::Path, miner: &MinerProc) -> Self {
        let port = boltensor_testenv::free_port().expect("port");
        let mut args: Vec<String> = vec!["client".into(), "proxy".into()];
        args.extend(net.node_args(dir, net.client_cfg.listen));
        args.extend([
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--miner".into(),
            miner.api.clone(),
        ]);
        ProxyProc {
            args,
            url: format!("http://127.0.0.1:{port}/v1"),
            client_id: net.client.node_id(),
            client_addr: net.client_cfg.listen,
            http: reqwest::Client::new(),
            key_file: dir.join(boltensor_client::proxy::KEY_FILE),
        }
    }

    /// Starts the process; it answers once its channel is back (`usable`) or at once.
    async fn start(&self, net: &LnNet, usable: bool) -> Result<Proc, TestEnvError> {
        let mut p = Proc::spawn("proxy", &self.args, &[]);
        p.line("OpenAI-compatible proxy on").await;
        if usable {
            net.wait_usable_to(self.client_id, self.client_addr, false)
                .await?;
        }
        Ok(p)
    }

    /// A paid embedding through the proxy (its node may need a moment after reconnecting before its
    /// channel takes an HTLC).
    async fn embed(&self) -> Result<(), TestEnvError> {
        wait_for("a paid embedding through the proxy", STEP, || async {
            let resp = self
                .http
                .post(format!("{}/embeddings", self.url))
                .bearer_auth(self.key())
                .header("content-type", "application/json")
                .body(EMBED)
                .send()
                .await;
            Ok(resp.ok().filter(|r| r.status() == 200).map(drop))
        })
        .await
    }

    /// The proxy's API key.
    fn key(&self) -> String {
        std::fs::read_to_string(&self.key_file)
            .expect("the proxy wrote its key")
            .trim()
            .to_owned()
    }

    /// A chat request for the model that hangs, on its own task.
    fn chat(&self) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
        let (http, url) = (self.http.clone(), format!("{}/chat/completions", self.url));
        let key = self.key();
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(CHAT_HANG)
                .send()
                .await
        })
    }
}

/// (c) kill -9 of the paying `boltensor client proxy` while its request is paid (the HTLC held at the
/// miner) and the model runs, then the proxy restarted on its data dir: the miner fails the payment back
/// (the proxy's connection dropped), the restarted proxy receives the refund and pays for new requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_client_proxy_killed_mid_request() -> Result<(), TestEnvError> {
    init_tracing();
    let proxy_dir = tempfile::tempdir().expect("a temp dir");
    let net = LnNet::start(Some(proxy_dir.path()), false).await?;
    let mut miner = net.spawn_miner(&[]).await?;
    net.client.stop().await; // the proxy process takes the client node over
    let proxy_proc = ProxyProc::new(&net, proxy_dir.path(), &miner);
    let mut proxy = proxy_proc.start(&net, true).await?;
    proxy_proc.embed().await?;

    let chat = proxy_proc.chat();
    net.model.arrived().await;
    // Paid: the HTLC is held at the miner (the first one was the embedding's).
    miner.proc().count("PaymentClaimable", 2).await;
    let fault = Instant::now();
    proxy.kill9();
    assert!(
        chat.await.expect("join").is_err(),
        "the caller sees the proxy die"
    );

    drop(proxy);
    let mut proxy = proxy_proc.start(&net, true).await?;
    miner.wait_resolved(2).await?;
    proxy_proc.embed().await?;
    let recover_secs = secs(fault);
    let states = miner.request_states().await;

    // Audit: the proxy's node and the miner's, opened here after a graceful stop.
    proxy.terminate().await;
    let client = Arc::new(boltensor_ln::LnNode::start(net.client_cfg.clone()).await?);
    net.model.release();
    let (report, miner_node) = audit(&net, &mut miner, &client).await?;
    assert_eq!(report.requests.delivered + report.requests.failed_back, 3);
    finish(
        "boltensor/tests/faults_ln.rs::fault_client_proxy_killed_mid_request",
        "kill -9 of a client (the paying proxy) mid-request, its payment held at the miner (restarted at once)",
        true,
        recover_secs,
        &report,
        &format!(
            "the miner failed the payment back when the proxy's connection dropped, records {states:?}; time: kill → proxy back, the miner resolved the interrupted request and a new paid request served through the proxy"
        ),
    );
    miner_node.stop().await;
    client.stop().await;
    net.coordinator.stop().await;
    Ok(())
}

/// (c′) kill -9 of the paying proxy the moment its request reached the model, i.e. while the proxy is
/// still committing its HTLC with the coordinator. If the kill lands between ldk-node persisting a
/// ChannelMonitor update and persisting its ChannelManager (most runs here), LDK finds the manager stale
/// on restart and force-closes the channel: the payment then resolves on-chain (the HTLC times out back
/// to the client) and the ledger must still balance. Otherwise it is fault (c).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_client_proxy_killed_while_sending_its_htlc() -> Result<(), TestEnvError> {
    init_tracing();
    let proxy_dir = tempfile::tempdir().expect("a temp dir");
    let net = LnNet::start(Some(proxy_dir.path()), false).await?;
    // A request interrupted before its payment arrived is closed after 2 × 10 s.
    let mut miner = net.spawn_miner_holding(&[], 10).await?;
    net.client.stop().await;
    let proxy_proc = ProxyProc::new(&net, proxy_dir.path(), &miner);
    let mut proxy = proxy_proc.start(&net, true).await?;
    proxy_proc.embed().await?;

    let chat = proxy_proc.chat();
    net.model.arrived().await; // the miner starts the model while the HTLC is on its way
    let fault = Instant::now();
    proxy.kill9();
    assert!(chat.await.expect("join").is_err());
    drop(proxy);

    let mut proxy = proxy_proc.start(&net, false).await?;
    let stale = proxy.saw("ChannelManager is stale compared to the current ChannelMonitor");
    let (client, note) = if !stale {
        net.wait_usable_to(proxy_proc.client_id, proxy_proc.client_addr, false)
            .await?;
        miner.wait_resolved(2).await?;
        proxy_proc.embed().await?;
        proxy.terminate().await;
        let client = Arc::new(boltensor_ln::LnNode::start(net.client_cfg.clone()).await?);
        (client, "this run the kill missed the window: the channel survived, as in (c); time: kill → the interrupted request resolved and a new paid request served".to_string())
    } else {
        // The channel is force-closed; run the client's node here to watch its payment resolve as
        // blocks are mined (its HTLC times out on-chain, then back to the client).
        proxy.terminate().await;
        let client = Arc::new(boltensor_ln::LnNode::start(net.client_cfg.clone()).await?);
        let pending = |node: &boltensor_ln::LnNode| {
            node.payments()
                .iter()
                .any(|p| !p.inbound && p.state == boltensor_ln::PaymentState::Pending)
        };
        let start_height = net.net.bitcoind.height().await?;
        wait_for(
            "the client's payment to resolve on-chain",
            Duration::from_secs(120),
            || async {
                if !pending(&client) {
                    return Ok(Some(()));
                }
                net.net.bitcoind.mine(6).await?;
                let _ = client.sync();
                let _ = net.coordinator.sync();
                Ok(None)
            },
        )
        .await?;
        let blocks = net.net.bitcoind.height().await? - start_height;
        miner.wait_resolved(2).await?;
        (
            client,
            format!("LDK found the restarted proxy's ChannelManager stale and force-closed its channel; the payment failed back on-chain after {blocks} blocks (the channel is gone: the client needs a new one); time: kill → payment resolved on-chain (mining 6 blocks a step)"),
        )
    };
    let recover_secs = secs(fault);
    net.model.release();
    let (report, miner_node) = audit(&net, &mut miner, &client).await?;
    finish(
        "boltensor/tests/faults_ln.rs::fault_client_proxy_killed_while_sending_its_htlc",
        &format!(
            "kill -9 of a client (the paying proxy) while it commits its HTLC (restarted at once): {}",
            if stale {
                "LDK force-closed its channel (stale ChannelManager), the HTLC resolved on-chain"
            } else {
                "the kill missed LDK's persistence window this run, the channel survived"
            }
        ),
        true,
        recover_secs,
        &report,
        &note,
    );
    miner_node.stop().await;
    client.stop().await;
    net.coordinator.stop().await;
    Ok(())
}

/// (d) bitcoind stopped under running nodes (a paid request is served meanwhile: payments do not need
/// the chain), then started again on the same data dir and port: every node follows the chain again and
/// payments go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_bitcoind_restarted_under_the_nodes() -> Result<(), TestEnvError> {
    init_tracing();
    let net = LnNet::start(None, true).await?;
    let mut miner = net.spawn_miner(&[]).await?;
    let client = paying_client(&net, &miner);
    paid_embedding(&client).await;
    // Confirmations of `node`'s channel with `peer`: they grow with every block the node sees.
    let confirmations = |node: &boltensor_ln::LnNode, peer: boltensor_ln::PublicKey| {
        node.channels()
            .iter()
            .filter(|c| c.counterparty == peer)
            .filter_map(|c| c.confirmations)
            .max()
            .unwrap_or(0)
    };
    let (coordinator_id, miner_id) = (net.coordinator.node_id(), miner.node_id);
    let channels = [
        (&net.client, coordinator_id),
        (&net.coordinator, net.client.node_id()),
        (&net.coordinator, miner_id),
    ];
    let before: Vec<u32> = channels.iter().map(|(n, p)| confirmations(n, *p)).collect();

    net.net.bitcoind.stop().await;
    let mut paid = client
        .post("/v1/chat/completions", CHAT_HANG.as_bytes().to_vec())
        .await
        .expect("the miner answers while bitcoind is down");
    assert_eq!(paid.response.status(), 200);
    assert!(matches!(
        paid.outcome().await,
        Some(PaymentOutcome::Settled { .. })
    ));
    assert!(
        net.client.sync().is_err(),
        "the nodes have lost their chain source"
    );

    let fault = Instant::now();
    net.net.bitcoind.restart().await?;
    net.net.bitcoind.mine(3).await?;
    for ((node, peer), before) in channels.iter().zip(&before) {
        wait_for(
            &format!("{} to follow the restarted bitcoind", node.alias()),
            STEP,
            || async {
                let synced = node.sync().is_ok() && confirmations(node, *peer) >= before + 3;
                Ok(synced.then_some(()))
            },
        )
        .await?;
    }
    paid_embedding(&client).await;
    let recover_secs = secs(fault);

    let (report, miner_node) = audit(&net, &mut miner, &net.client).await?;
    wait_for("the miner's node to see the new blocks", STEP, || async {
        let synced = miner_node.sync().is_ok()
            && confirmations(&miner_node, coordinator_id) >= before[2] + 3;
        Ok(synced.then_some(()))
    })
    .await?;
    assert_eq!(report.requests.delivered, 3);
    finish(
        "boltensor/tests/faults_ln.rs::fault_bitcoind_restarted_under_the_nodes",
        "bitcoind restarted under the running nodes (a paid request served while it was down)",
        true,
        recover_secs,
        &report,
        "time: bitcoind started again → every node synced to 3 new blocks and a new paid request served",
    );
    miner_node.stop().await;
    net.client.stop().await;
    net.coordinator.stop().await;
    Ok(())
}
