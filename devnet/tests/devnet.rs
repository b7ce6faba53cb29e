//! `boltensor devnet` end to end on the real daemons: up, status, the federation signing an epoch with
//! a validator's weights, resume, down.

use std::future::Future;
use std::time::{Duration, Instant};

use boltensor_coordinator::store::SignedEpoch;
use boltensor_coordinator::FederationConfig;
use boltensor_devnet::{self as devnet, DevnetConfig, StatusReport};
use boltensor_testenv::{free_port, wait_for, TestEnvError};

fn config(dir: &std::path::Path) -> Result<DevnetConfig, TestEnvError> {
    Ok(DevnetConfig {
        data_dir: dir.to_path_buf(),
        // Two Lightning hubs; the federation still runs its minimum of four members.
        coordinators: 2,
        miners: 1,
        validators: 1,
        clients: 1,
        bitcoind: None,
        control_port: free_port().map_err(|e| TestEnvError::Devnet(e.to_string()))?,
        models_dir: None,
        // Paid traffic funds the pool (half the hubs' fees), and the validator's challenge spend follows
        // its dividends: with both, an honest validator's net turns ≥ 0 (asserted below).
        traffic_interval: Some(Duration::from_millis(250)),
        // Fast challenge rounds and short epochs, so an epoch with the validator's weights closes soon.
        validator_round: Some(Duration::from_secs(2)),
        epoch: Duration::from_secs(8),
        block_interval: Some(Duration::from_secs(1)),
        validator_spend: Some(devnet::VALIDATOR_SPEND),
    })
}

fn err(e: impl std::fmt::Display) -> TestEnvError {
    TestEnvError::Devnet(e.to_string())
}

/// Runs `up` until it is ready, then `while_up` on its status, then stops it and waits until it has
/// released everything (whatever happened, a failed assertion in `while_up` included).
async fn with_devnet<T, Fut>(
    cfg: DevnetConfig,
    while_up: impl FnOnce(StatusReport) -> Fut,
) -> Result<(StatusReport, T), TestEnvError>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T, TestEnvError>> + Send + 'static,
{
    let dir = cfg.data_dir.clone();
    let up = tokio::spawn(devnet::up(cfg, std::future::pending(), |_| {}));
    let ready = wait_for(
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
    let outcome = match &ready {
        Ok(report) => Some(tokio::spawn(while_up(report.clone())).await),
        Err(_) => None,
    };
    let stopped = devnet::down(&dir).await;
    let ended = up.await.expect("devnet task does not panic");
    let report = match ready {
        Ok(report) => report,
        Err(e) => {
            ended?; // why up ended, if it did
            return Err(e);
        }
    };
    let outcome = match outcome.expect("ran while up") {
        Ok(outcome) => outcome?,
        Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
    };
    assert!(stopped?, "down found the devnet running");
    ended?;
    Ok((report, outcome))
}

async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<Option<T>, TestEnvError> {
    let resp = reqwest::get(url).await.map_err(err)?;
    if !resp.status().is_success() {
        return Ok(None);
    }
    resp.json().await.map(Some).map_err(err)
}

/// What the first run saw of the federation.
struct Seen {
    federation_id: String,
    signed_epoch: u64,
    miner_sats_at_end: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn devnet_runs_the_federation_and_resumes() -> Result<(), TestEnvError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (report, seen) = with_devnet(config(dir.path())?, |report| async move {
        let started = Instant::now();
        let fed = report
            .federation
            .clone()
            .expect("the federation is in the status");
        assert_eq!(fed.members.len(), 4, "two hubs, four federation members");
        let api = fed.members[0].api_url.clone();
        assert!(report
            .render()
            .contains(&format!("boltensor epoch verify --from {api}")));

        // An epoch signed by the federation with the validator's weights in its inputs.
        let signed: SignedEpoch = wait_for(
            "a signed epoch with a validator's weights",
            Duration::from_secs(120),
            || async {
                let latest: Option<SignedEpoch> =
                    get_json(&format!("{api}/v1/epochs/latest")).await?;
                Ok(latest.filter(|e| !e.result.inputs.weights.is_empty()))
            },
        )
        .await?;
        let federation: FederationConfig = get_json(&format!("{api}/v1/federation"))
            .await?
            .expect("the federation config is served");
        assert_eq!(hex_id(&federation), fed.id);
        let valid = boltensor_coordinator::verify_epoch(&signed, &federation).map_err(err)?;
        assert!(valid >= federation.threshold());
        eprintln!(
            "epoch {} with the validator's weights signed by {valid} members {:.1} s after ready",
            signed.result.inputs.epoch,
            started.elapsed().as_secs_f32()
        );

        // The miner is registered (by its node id, with its API) and weighted by the validator.
        let miner = report
            .nodes
            .iter()
            .find(|n| n.name == "miner-1")
            .expect("miner")
            .clone();
        let listed: serde_json::Value = get_json(&format!("{api}/v1/miners"))
            .await?
            .expect("miners are served");
        let entry = listed["miners"]
            .as_array()
            .and_then(|l| l.iter().find(|m| m["node_id"] == miner.node_id.as_str()))
            .unwrap_or_else(|| panic!("miner-1 is not in /v1/miners: {listed}"));
        let base = miner.api_url.as_deref().map(|u| u.trim_end_matches("/v1"));
        assert_eq!(entry["api"].as_str(), base);
        // Discovery for L402 agents: the federation lists every registered miner with its manifest, and
        // the miner's manifest names the node its invoices pay.
        let directory: serde_json::Value = get_json(&format!("{api}/.well-known/l402.json"))
            .await?
            .expect("the federation's L402 directory is served");
        let listed_miner = directory["providers"]
            .as_array()
            .and_then(|p| p.iter().find(|m| m["node_pubkey"] == miner.node_id.as_str()))
            .unwrap_or_else(|| panic!("miner-1 is not in the L402 directory: {directory}"));
        let manifest: serde_json::Value = get_json(listed_miner["manifest"].as_str().expect("manifest URL"))
            .await?
            .expect("the miner's manifest is served");
        assert_eq!(manifest["provider"]["node_pubkey"], miner.node_id.as_str());
        let weighted = signed
            .result
            .inputs
            .weights
            .iter()
            .any(|w| w.signed.vector.weights.contains_key(&miner.node_id));
        assert!(weighted, "the validator weighted miner-1");

        // Measure the cadence: the next signed epoch.
        let next = signed.result.inputs.epoch + 1;
        let t0 = Instant::now();
        wait_for("the next signed epoch", Duration::from_secs(60), || async {
            get_json::<SignedEpoch>(&format!("{api}/v1/epochs/{next}")).await
        })
        .await?;
        eprintln!(
            "next epoch signed {:.1} s later",
            t0.elapsed().as_secs_f32()
        );

        // The epochs' payer paid the validator its dividends by keysend, and the receipt is in consensus.
        let registry: serde_json::Value = get_json(&format!("{api}/v1/registry"))
            .await?
            .expect("registry is served");
        let validator_key = registry["registry"]
            .as_array()
            .and_then(|l| l.iter().find(|r| r["role"] == "validator"))
            .and_then(|r| r["key"].as_str())
            .expect("the validator is registered")
            .to_owned();
        let t0 = Instant::now();
        wait_for(
            "a receipted payout to the validator",
            Duration::from_secs(60),
            || async {
                let payouts: Option<serde_json::Value> =
                    get_json(&format!("{api}/v1/payouts")).await?;
                Ok(payouts.filter(|p| {
                    p["receipts"].as_object().is_some_and(|r| {
                        r.keys()
                            .any(|slot| slot.ends_with(&format!(":{validator_key}")))
                    })
                }))
            },
        )
        .await?;
        eprintln!(
            "validator's payout receipted {:.1} s later",
            t0.elapsed().as_secs_f32()
        );

        // The whole path, to the msat: clients paid miners, the validator scored and submitted, epochs
        // closed, and every payee's node received by keysend exactly what the federation's receipts say
        // it was paid (receipts are accepted only for the exact amounts of the signed results). Payouts
        // keep flowing every epoch, so compare at a moment when no payout is between payment and receipt.
        let t0 = Instant::now();
        let (paid_total, payees) = wait_for(
            "payees' keysend receipts to match the federation's receipted payouts",
            Duration::from_secs(60),
            || async {
                let Some(d) = get_json::<serde_json::Value>(&format!("{api}/v1/dashboard")).await? else {
                    return Ok(None);
                };
                let st = devnet::status(&report.data_dir).await?;
                let received = |node: &str| {
                    st.nodes
                        .iter()
                        .find(|n| n.node_id == node)
                        .map(|n| n.keysend_received_msat)
                };
                let rows: Vec<&serde_json::Value> = d["miners"]
                    .as_array()
                    .into_iter()
                    .chain(d["validators"].as_array())
                    .flatten()
                    .collect();
                let all_match = rows.iter().all(|r| {
                    let paid = r["paid_msat"].as_u64().unwrap_or(0);
                    received(r["node_id"].as_str().unwrap_or("")) == Some(paid)
                });
                let paid_total: u64 = rows.iter().filter_map(|r| r["paid_msat"].as_u64()).sum();
                let miners_paid = d["miners"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|r| r["paid_msat"].as_u64() > Some(0)));
                Ok((all_match && miners_paid).then_some((paid_total, rows.len())))
            },
        )
        .await?;
        eprintln!(
            "{payees} payees received exactly their receipted payouts ({paid_total} msat) after {:.1} s",
            t0.elapsed().as_secs_f32()
        );

        // The ledger invariant over every node (`boltensor devnet audit`): every paid request has one
        // outcome, spend = income + fees, no epoch paid twice. Traffic keeps flowing, so things may be
        // in flight, but no rule may break.
        let audit = devnet::audit::audit(&report.data_dir).await?;
        eprintln!("{}", audit.render());
        assert!(audit.report.holds(), "{}", audit.render());
        assert!(audit.report.requests.delivered > 0 && audit.report.receipts > 0);
        // The pool is what the network earned (ADR 0015): half of the forwarding fees the hubs
        // reported for closed epochs, to the msat (fees are whole sats), paid by the members that earned
        // them, and never more than the hubs' nodes say they earned.
        let r = &audit.report;
        assert!(r.fees_accounted_msat > 0 && r.pool_paid_msat > 0, "{}", audit.render());
        assert_eq!(
            u128::from(r.pool_msat),
            u128::from(r.fees_accounted_msat)
                * u128::from(devnet::federation::POOL_FEE_SHARE_PPM)
                / 1_000_000,
            "{}",
            audit.render()
        );
        assert!(r.fees_accounted_msat <= r.fees_earned_msat, "{}", audit.render());

        // Validators who earn (issue 17): with its challenge spend following its dividends, the honest
        // validator's net (dividends − challenge spend − bond capital) comes to ≥ 0, and the dashboard
        // shows its books beside the federation's figures.
        let t0 = Instant::now();
        let net = wait_for(
            "the validator's net to be ≥ 0",
            Duration::from_secs(120),
            || async {
                let st = devnet::status(&report.data_dir).await?;
                Ok(st
                    .validators_net
                    .first()
                    .filter(|v| v.dividends_msat > 0 && v.net_msat >= 0)
                    .cloned())
            },
        )
        .await?;
        eprintln!(
            "{} net {} msat ({} s after the audit) = dividends {} − challenges {} − bond capital {}; {} challenges skipped",
            net.name,
            net.net_msat,
            t0.elapsed().as_secs(),
            net.dividends_msat,
            net.challenge_spend_msat,
            net.capital_cost_msat,
            net.over_budget
        );
        let d: serde_json::Value = get_json(&format!("{api}/v1/dashboard"))
            .await?
            .expect("the dashboard is served");
        let row = d["validators"]
            .as_array()
            .and_then(|v| v.iter().find(|r| r["node_id"] == net.node_id.as_str()))
            .unwrap_or_else(|| panic!("the validator is on the dashboard: {d}"));
        assert!(
            row["net_msat"].is_i64() && row["income_msat"].as_u64() > Some(0),
            "the dashboard shows the validator's books: {row}"
        );

        // L402 agents and MCP hosts (issue 16). An unmodified PyPI `l402-requests` pays miner-1 first,
        // from client-1's node through its agent wallet (LND's REST call; the proxy's key is the
        // macaroon), in both schemes; the miner's record of every payment shows it settled after the
        // kept request ran and its result was stored. The MCP Python SDK lists and calls the proxy's
        // paid tools.
        let client = report
            .nodes
            .iter()
            .find(|n| n.name == "client-1")
            .expect("client-1")
            .clone();
        let key = std::fs::read_to_string(client.api_key_file.as_ref().expect("the proxy's key file"))
            .map_err(err)?
            .trim()
            .to_owned();
        let wallet = client.agent_wallet_url.clone().expect("client-1's agent wallet");
        // The wallet spends the node's funds: without the macaroon it pays nothing.
        let refused = reqwest::Client::new()
            .post(format!("{wallet}/v2/router/send"))
            .json(&serde_json::json!({"payment_request": "lnbcrt1", "timeout_seconds": 5}))
            .send()
            .await
            .map_err(err)?;
        assert_eq!(refused.status(), 401, "the agent wallet pays only with the macaroon");
        let agent = boltensor_testenv::python_json(
            boltensor_testenv::scripts::L402_REQUESTS_CHECK,
            vec![
                base.expect("miner-1's API").to_owned(),
                wallet,
                key.clone(),
            ],
        )
        .await?;
        for status in [
            "embed_status",
            "chat_status",
            "second_embed_status",
            "payment_embed_status",
            "payment_chat_status",
        ] {
            assert_eq!(agent[status], 200, "{status}: {agent}");
        }
        assert_eq!(agent["payment_embedding"], agent["embedding"]);
        assert_eq!(agent["payment_chat_text"], agent["chat_text"]);
        assert_eq!(agent["payment_receipt"]["status"], "success", "{agent}");
        let payments = agent["payments"].as_array().expect("payments");
        assert_eq!(payments.len(), 5, "one payment per request: {agent}");
        for p in payments {
            assert_eq!(p["ok"], true, "{p}");
            let preimage = hex::decode(p["preimage"].as_str().expect("preimage")).map_err(err)?;
            let preimage: [u8; 32] = preimage.try_into().expect("32 bytes");
            let hash = hex::encode(boltensor_protocol::l402::payment_hash_of(&preimage));
            let rec: devnet::RequestSummary =
                get_json(&format!("{}/requests/{hash}", report.control_url))
                    .await?
                    .expect("the miner's record of the agent's payment");
            assert_eq!(rec.miner, "miner-1");
            assert_eq!(rec.status, "Settled", "{rec:?}");
            assert!(rec.paid_first && rec.result_stored, "{rec:?}");
        }
        eprintln!(
            "l402-requests paid miner-1 first 5 times (L402 and Payment schemes): chat {}",
            agent["chat_text"]
        );
        let proxy = client.api_url.as_deref().expect("client-1's proxy");
        let mcp = boltensor_testenv::python_json(
            boltensor_testenv::scripts::MCP_CHECK,
            vec![format!("{}/mcp", proxy.trim_end_matches("/v1")), key],
        )
        .await?;
        assert_eq!(
            mcp["tools"],
            serde_json::json!(["chat", "embed", "quote", "spend"])
        );
        assert_eq!(mcp["embed"]["error"], false, "{mcp}");
        assert_eq!(mcp["chat"]["error"], false, "{mcp}");
        assert!(mcp["chat"]["body"]["text"].is_string(), "{mcp}");
        let paid = |v: &serde_json::Value| v["body"]["paid_requests"].as_u64().unwrap_or(0);
        assert!(
            paid(&mcp["spend_after"]) >= paid(&mcp["spend_before"]) + 2,
            "the spend moved by the two paid calls (and the traffic): {mcp}"
        );

        let now = devnet::status(&report.data_dir).await?;
        eprintln!("{}", now.render());
        let fed_now = now.federation.expect("federation");
        assert!(fed_now.last_signed_epoch >= Some(next));
        assert!(fed_now.registered >= Some(2), "the miner and the validator");
        assert!(fed_now.payouts_receipted >= 1);
        let miner_sats_at_end = now
            .nodes
            .iter()
            .find(|n| n.name == "miner-1")
            .map_or(0, |n| n.lightning_sats);
        Ok(Seen {
            federation_id: fed.id,
            signed_epoch: next,
            miner_sats_at_end,
        })
    })
    .await?;

    // 2 hubs, 1 miner, 1 validator, 1 client: payers open to every hub (4 channels), hubs to the miner
    // and to the validator (4).
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
    assert_eq!(opened.len(), 8);
    assert!(opened.iter().all(|(_, c)| c.usable), "{}", report.render());
    let check = report.routing_check.as_deref().unwrap_or_default();
    assert!(
        check.contains("client-1 routed 1000 sat to miner-1"),
        "{check}"
    );

    // Up again on the same data dir: same nodes, same federation with its ledger, nothing refunded.
    let (again, ()) = with_devnet(config(dir.path())?, |_| async { Ok(()) }).await?;
    let ids = |r: &StatusReport| {
        r.nodes
            .iter()
            .map(|n| n.node_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&again), ids(&report));
    let fed = again.federation.expect("federation");
    assert_eq!(fed.id, seen.federation_id, "same member keys");
    assert!(
        fed.last_signed_epoch >= Some(seen.signed_epoch),
        "the ledgers were kept: {:?}",
        fed.last_signed_epoch
    );
    let miner = again
        .nodes
        .iter()
        .find(|n| n.name == "miner-1")
        .expect("miner");
    assert_eq!(miner.channels.len(), 2);
    // The routing check moves no sats (held, then failed back); payouts only add to the miner's side.
    assert!(
        miner.lightning_sats >= seen.miner_sats_at_end,
        "the miner lost sats across the restart: {} then {}",
        seen.miner_sats_at_end,
        miner.lightning_sats
    );
    Ok(())
}

fn hex_id(f: &FederationConfig) -> String {
    f.id().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn status_of_a_devnet_that_is_not_there_says_how_to_start_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = devnet::status(dir.path()).await.expect_err("nothing runs");
    assert!(err.to_string().contains("boltensor devnet up"), "{err}");
}
