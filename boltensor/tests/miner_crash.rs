//! kill -9 of a miner process while it holds a client's payment: after the restart the miner fails the
//! payment back and the client's balance is whole again. Real processes, real regtest, real ldk-node.
//! The client's view of it; `faults_ln.rs` has this fault (and the others) with the ledger audit.

mod lnfault;

use std::sync::Arc;
use std::time::Duration;

use boltensor_client::{ClientConfig, ClientError, PayingClient};
use boltensor_testenv::{wait_for, TestEnvError};
use lnfault::{init_tracing, LnNet};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_miner_fails_the_held_payment_back_after_restart() -> Result<(), TestEnvError> {
    init_tracing();
    // A model server that takes the request and never answers.
    let net = LnNet::start(None, false).await?;
    let mut miner = net.spawn_miner(&[]).await?;

    let mut cfg = ClientConfig::new(vec![miner.api.clone()]);
    cfg.payment_timeout = Duration::from_secs(120);
    let client = PayingClient::new(cfg, Arc::clone(&net.client));
    let before = net.client.balances().lightning_sats;
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
    // The model has the request and the payment is held at the miner. Now kill -9 the miner.
    net.model.arrived().await;
    miner.proc().count("PaymentClaimable", 1).await;
    assert!(
        client.spend().in_flight_msat > 0,
        "the payment is in flight"
    );
    miner.kill9();
    match request.await.expect("join") {
        // The miner died holding the payment: the client neither has an answer nor asks another miner
        // while its payment is pending (issue 20, row 14).
        Err(ClientError::Unreachable { .. } | ClientError::AnswerLost { .. }) => {}
        other => panic!("the client sees the miner die, got {other:?}"),
    }

    // Restart from the same data dir: recovery fails the payment back.
    miner.restart(&net).await?;
    wait_for(
        "the payment to be failed back",
        Duration::from_secs(90),
        || async { Ok((client.spend().refunded == 1).then_some(())) },
    )
    .await?;
    wait_for(
        "the client's balance to be whole",
        Duration::from_secs(30),
        || async { Ok((net.client.balances().lightning_sats == before).then_some(())) },
    )
    .await?;
    assert_eq!(client.spend().spent_msat, 0, "nothing was charged");
    miner.kill9();
    net.model.release();
    net.client.stop().await;
    net.coordinator.stop().await;
    Ok(())
}
