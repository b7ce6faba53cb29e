//! Epoch payouts over real Lightning: the federation's signed result is paid by the epoch's payer over
//! its ldk-node (keysend), receipts go into consensus, and the payees' nodes receive exactly the signed
//! amounts — also when the payer's coordinator restarts in between (no payout twice).

mod common;

use std::sync::Arc;
use std::time::Duration;

use boltensor_coordinator::payout::payout_attempt;
use boltensor_coordinator::state::payer;
use boltensor_ln::PaymentState;
use boltensor_testenv::wait_for;
use common::{miner_registration_for, weights_by_node, Net, Node, Result};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn epoch_payouts_reach_the_payees_nodes_exactly_once() -> Result {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "boltensor_coordinator=info".into()),
        )
        .with_test_writer()
        .try_init();
    let long = Duration::from_secs(90);
    let mut net = Net::new().await?;

    // Member 0 pays (the others have no Lightning node in this test, so their epochs stay owed).
    let payer_node = Arc::new(net.testnet.node("coordinator-0").await?);
    let miner_node = net.testnet.node("miner-a").await?;
    let validator_node = net.testnet.node("validator-1").await?;
    net.testnet.fund(&[&payer_node], 1).await?;
    net.testnet
        .open_channel(&payer_node, &miner_node, 1_000_000, 0)
        .await?;
    net.testnet
        .open_channel(&payer_node, &validator_node, 1_000_000, 0)
        .await?;
    let outcome = async {
        net.ln[0] = Some(payer_node.clone());
        for i in 0..4 {
            net.members[i] = Some(net.start_member(i).await?);
        }

        let miner = miner_registration_for("miner-a", Node::Ln(&miner_node));
        assert_eq!(net.post(0, "/v1/items", &serde_json::to_value(&miner)?).await?.0, 202);
        let regs = net
            .bonded_registrations_for(&[("validator-1", 200_000)], &[Node::Ln(&validator_node)])
            .await?;
        assert_eq!(net.post(1, "/v1/items", &serde_json::to_value(&regs[0])?).await?.0, 202);
        wait_for("the validator's bond to count", long, || async {
            let reg = net.get(0, "/v1/registry").await.ok().flatten();
            Ok(reg.filter(|r| {
                r["registry"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|n| n["stake_sat"].as_u64().unwrap_or(0) > 0))
            }))
        })
        .await?;
        let epoch = net.status(0).await?["epoch"].as_u64().expect("an epoch number");
        assert_eq!(
            net.post(2, "/v1/weights", &weights_by_node(
                        "validator-1",
                        epoch,
                        &[(miner_node.node_id().to_string(), 65_535)],
                    ))
                .await?
                .0,
            202
        );

        // Wait for two paid epochs (payer 0), restarting member 0's coordinator in between.
        let miner_key = common::key("miner-a").x_only_public_key().0.to_string();
        let paid = |net: &Net, after: u64| {
            let miner_key = miner_key.clone();
            let http = net.http.clone();
            let api = net.api(0);
            async move {
                let p: Value = http.get(format!("{api}/v1/payouts")).send().await.ok()?.json().await.ok()?;
                let receipts = p["receipts"].as_object()?;
                receipts
                    .keys()
                    .filter(|s| s.ends_with(&miner_key))
                    .filter_map(|s| s.split_once(':')?.0.parse::<u64>().ok())
                    .filter(|e| *e >= after)
                    .max()
            }
        };
        let first = wait_for("a receipted payout to the miner", long, || async { Ok(paid(&net, epoch).await) }).await?;
        // Like a real validator, keep submitting weights every epoch (a vector goes stale after
        // `activity_cutoff_epochs`).
        let submitter = {
            let http = net.http.clone();
            let api = net.api(2);
            let miner = miner_node.node_id().to_string();
            tokio::spawn(async move {
                loop {
                    let epoch = async {
                        let s: Value = http.get(format!("{api}/v1/status")).send().await.ok()?.json().await.ok()?;
                        s["epoch"].as_u64()
                    }
                    .await;
                    if let Some(e) = epoch {
                        let body = weights_by_node("validator-1", e, &[(miner.clone(), 65_535)]);
                        let _ = http.post(format!("{api}/v1/weights")).json(&body).send().await;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        };
        net.members[0].take().expect("running").shutdown().await;
        net.members[0] = Some(net.start_member(0).await?);
        let second = wait_for("a later receipted payout to the miner", long, || async {
            Ok(paid(&net, first + 1).await)
        })
        .await?;
        submitter.abort();
        assert_eq!(payer(first, 4), 0);
        assert_eq!(payer(second, 4), 0);

        // Stop the payer (no new payouts), let in-flight payments finish, then account exactly from
        // another member's signed results: every payout member 0 sent is one of a signed result, and
        // the payees received exactly the sum of those that succeeded.
        net.members[0].take().expect("running").shutdown().await;
        let last = net.status(1).await.ok().and_then(|s| s["epoch"].as_u64());
        let last = match last {
            Some(e) => e,
            None => second + 1,
        };
        let secret = net.keys[0].secret_bytes();
        let mut expect = std::collections::BTreeMap::<String, u64>::new();
        let mut pending = true;
        let deadline = std::time::Instant::now() + long;
        while pending {
            pending = false;
            expect.clear();
            for e in 0..=last {
                if payer(e, 4) != 0 {
                    continue;
                }
                let Some(v) = net.get(1, &format!("/v1/epochs/{e}")).await.ok().flatten() else {
                    continue;
                };
                let signed: boltensor_coordinator::store::SignedEpoch = serde_json::from_value(v)?;
                boltensor_coordinator::verify_epoch(&signed, &net.federation)?;
                for pay in &signed.result.payouts {
                    match payout_attempt(&payer_node, &secret, e, &pay.key).and_then(|(_, _, s)| s) {
                        Some(PaymentState::Succeeded) => {
                            *expect.entry(pay.node_id.clone()).or_default() += pay.msat
                        }
                        Some(PaymentState::Pending) => pending = true,
                        _ => {}
                    }
                }
            }
            assert!(std::time::Instant::now() < deadline, "payments still pending");
            if pending {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let miner_expected = expect.get(&miner_node.node_id().to_string()).copied().unwrap_or(0);
        let validator_expected = expect
            .get(&validator_node.node_id().to_string())
            .copied()
            .unwrap_or(0);
        assert!(miner_expected > 0, "the miner was paid");
        wait_for("the payees to see every payment", long, || async {
            Ok((miner_node.received_msat() >= miner_expected
                && validator_node.received_msat() >= validator_expected)
                .then_some(()))
        })
        .await?;
        assert_eq!(miner_node.received_msat(), miner_expected, "the miner got each payout once");
        assert_eq!(validator_node.received_msat(), validator_expected, "the validator got each payout once");
        println!(
            "payouts: miner {miner_expected} msat, validator {validator_expected} msat over epochs {first}..={second} and after"
        );
    Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    }
    .await;
    // Stop everything before bitcoind goes (ldk-node panics if its chain source vanishes under it).
    for m in net.members.iter().flatten() {
        m.stop();
    }
    net.ln[0] = None;
    payer_node.stop().await;
    miner_node.stop().await;
    validator_node.stop().await;
    outcome
}
