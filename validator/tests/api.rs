//! The validator's HTTP API (`validator run --listen`): `/metrics` counts real paid challenges to a
//! miner over a regtest channel and failed ones to a miner that is not there, `/v1/scores` lists both,
//! and a request with a large body is refused.

use std::sync::Arc;
use std::time::Duration;

use boltensor_miner::config::{default_models, default_models_dir};
use boltensor_miner::{Miner, MinerConfig};
use boltensor_testenv::{free_port, TestEnvError, TestNet};
use boltensor_validator::{Validator, ValidatorConfig};
use tokio::sync::watch;

fn err(e: impl std::fmt::Display) -> TestEnvError {
    TestEnvError::Devnet(e.to_string())
}

/// The value of the Prometheus sample `name` (with its labels, exactly as printed).
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// A miner serving `specs` from `node` on a free port: its URL, the stop signal and the serving task.
async fn serve_miner(
    net: &TestNet,
    specs: Vec<boltensor_miner::ModelSpec>,
    node: &Arc<boltensor_ln::LnNode>,
    backends: &std::collections::HashMap<String, boltensor_miner::Backend>,
) -> Result<
    (
        String,
        watch::Sender<bool>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ),
    TestEnvError,
> {
    let miner = Miner::new(
        MinerConfig::new(specs, net.dir().join("miner")),
        Arc::clone(node),
        backends,
    )
    .expect("miner");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(err)?;
    let miner_url = format!("http://{}", listener.local_addr().map_err(err)?);
    let (stop, mut stopped) = watch::channel(false);
    let miner_task = tokio::spawn(miner.run(listener, async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    Ok((miner_url, stop, miner_task))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_and_scores_count_paid_and_failed_challenges() -> Result<(), TestEnvError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,ldk_node::chain::bitcoind=off,ldk_node::liquidity=off")
        .with_test_writer()
        .try_init();
    let specs = default_models(&default_models_dir());
    let backends = boltensor_miner::load_backends(&specs).expect("models");

    let net = TestNet::start().await?;
    let validator_node = Arc::new(net.node("validator").await?);
    let miner_node = Arc::new(net.node("miner").await?);
    net.fund(&[&validator_node, &miner_node], 2).await?;
    net.open_channel(&validator_node, &miner_node, 1_000_000, 0)
        .await?;

    let (miner_url, stop, miner_task) = serve_miner(&net, specs, &miner_node, &backends).await?;
    // Nothing listens here: every challenge to it fails before any payment.
    let absent = format!("http://127.0.0.1:{}", free_port().map_err(err)?);

    let validator = Arc::new(
        Validator::new(
            ValidatorConfig::new(
                vec![miner_url.clone(), absent.clone()],
                net.dir().join("validator"),
            ),
            Arc::clone(&validator_node),
            &backends,
        )
        .expect("validator"),
    );
    validator.challenge_round().await;
    validator.close_epoch(1).expect("sign epoch 1");

    let api = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(err)?;
    let base = format!("http://{}", api.local_addr().map_err(err)?);
    let server =
        tokio::spawn(
            async move { axum::serve(api, boltensor_validator::api::router(validator)).await },
        );
    let http = reqwest::Client::new();

    let resp = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .map_err(err)?;
    assert!(resp.status().is_success());
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain")));
    let text = resp.text().await.map_err(err)?;
    println!("{text}");
    // The absent miner's embedding challenge fails; its chat challenge is then backed off (not sent).
    for (kind, sent, failed) in [("embedding", 2.0, 1.0), ("chat", 1.0, 0.0)] {
        let labels = format!("{{kind=\"{kind}\"}}");
        let get = |name: &str| sample(&text, &format!("{name}{labels}"));
        assert_eq!(
            get("boltensor_validator_challenges_total"),
            Some(sent),
            "{kind}"
        );
        assert_eq!(
            get("boltensor_validator_challenges_paid_total"),
            Some(1.0),
            "{kind}"
        );
        assert_eq!(
            get("boltensor_validator_challenges_failed_total"),
            Some(failed),
            "{kind}"
        );
        assert_eq!(
            get("boltensor_validator_challenge_seconds_count"),
            Some(1.0),
            "{kind}"
        );
        let p50 = sample(
            &text,
            &format!("boltensor_validator_challenge_seconds{{kind=\"{kind}\",quantile=\"0.5\"}}"),
        )
        .expect("a median");
        assert!(p50 > 0.0, "{kind} latency {p50}");
    }
    assert!(sample(&text, "boltensor_validator_spent_msat_total").is_some_and(|v| v > 0.0));
    assert_eq!(
        sample(&text, "boltensor_validator_backed_off_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "boltensor_validator_epochs_signed_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "boltensor_validator_epochs_submitted_total"),
        Some(0.0)
    );
    let node_id = miner_node.node_id().to_string();
    let honest = sample(
        &text,
        &format!("boltensor_validator_miner_score{{miner=\"{miner_url}\",node_id=\"{node_id}\"}}"),
    )
    .expect("the miner's score");
    let gone = sample(
        &text,
        &format!("boltensor_validator_miner_score{{miner=\"{absent}\",node_id=\"\"}}"),
    )
    .expect("the absent miner's score");
    assert!(honest > gone, "{honest} > {gone}");

    let scores: serde_json::Value = http
        .get(format!("{base}/v1/scores"))
        .send()
        .await
        .map_err(err)?
        .json()
        .await
        .map_err(err)?;
    assert_eq!(scores["last_signed_epoch"], 1);
    assert_eq!(scores["metrics"]["embedding"]["paid"], 1);
    let listed = scores["miners"].as_array().expect("miners");
    assert_eq!(listed.len(), 2, "{scores}");
    let entry = listed
        .iter()
        .find(|m| m["miner"] == miner_url.as_str())
        .expect("the miner is listed");
    assert_eq!(entry["node_id"], node_id.as_str());
    // The same score through two encodings (Prometheus text, JSON): equal up to the last digit printed.
    let score = entry["score"].as_f64().expect("a score");
    assert!((score - honest).abs() < 1e-12, "{score} vs {honest}");

    let big = http
        .get(format!("{base}/metrics"))
        .body(vec![b'x'; boltensor_validator::api::MAX_BODY_BYTES + 1])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(err)?;
    assert_eq!(big.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);

    server.abort();
    let _ = stop.send(true);
    let _ = miner_task.await;
    validator_node.stop().await;
    miner_node.stop().await;
    Ok(())
}

/// A validator whose challenge spend follows its income (`SpendPolicy`): with no dividends it spends its
/// bootstrap and then stops challenging (its rounds go on; `over_budget` counts the challenges not sent);
/// a dividend paid to its node by a coordinator's node raises the allowance and challenges resume, and
/// what its node paid out stays within the allowance plus the one challenge that crossed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn challenge_spend_follows_income() -> Result<(), TestEnvError> {
    use boltensor_validator::SpendPolicy;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,ldk_node::chain::bitcoind=off,ldk_node::liquidity=off")
        .with_test_writer()
        .try_init();
    let specs = default_models(&default_models_dir());
    let backends = boltensor_miner::load_backends(&specs).expect("models");

    let net = TestNet::start().await?;
    let validator_node = Arc::new(net.node("validator").await?);
    let miner_node = Arc::new(net.node("miner").await?);
    let coordinator = Arc::new(net.node("coordinator").await?);
    net.fund(&[&validator_node, &miner_node, &coordinator], 2)
        .await?;
    net.open_channel(&validator_node, &miner_node, 1_000_000, 0)
        .await?;
    net.open_channel(&coordinator, &validator_node, 200_000, 0)
        .await?;

    let (miner_url, stop, miner_task) = serve_miner(&net, specs, &miner_node, &backends).await?;

    let policy = SpendPolicy {
        bootstrap_msat: 3_000,
        income_share_ppm: 500_000,
    };
    let mut cfg = ValidatorConfig::new(vec![miner_url.clone()], net.dir().join("validator"));
    cfg.spend = Some(policy);
    let validator = Validator::new(cfg, Arc::clone(&validator_node), &backends).expect("validator");
    let paid = |v: &Validator| {
        let m = v.metrics();
        m.embedding.paid + m.chat.paid
    };

    // Rounds until one pays nothing: every challenge is capped at what the allowance has left.
    async fn until_nothing_left(v: &Validator, paid: impl Fn(&Validator) -> u64) -> u64 {
        let mut rounds = 0;
        loop {
            let before = paid(v);
            v.challenge_round().await;
            rounds += 1;
            if paid(v) == before || rounds == 20 {
                return rounds;
            }
        }
    }

    // The bootstrap: challenges until it is spent, never beyond it (a direct channel: no routing fee).
    let rounds = until_nothing_left(&validator, paid).await;
    let m = validator.metrics();
    let bootstrap_paid = paid(&validator);
    let spent = validator_node.spent_msat();
    println!("bootstrap: {rounds} rounds, {bootstrap_paid} challenges paid, {spent} msat; {m:?}");
    assert!(bootstrap_paid >= 1, "{m:?}");
    assert!(m.over_budget >= 1, "{m:?}");
    assert!(
        spent <= policy.bootstrap_msat,
        "spent {spent} msat beyond the bootstrap"
    );
    let books = m.books.expect("books under a policy");
    assert_eq!(books.income_msat, 0);
    assert_eq!(books.allowance_msat, policy.bootstrap_msat);
    assert_eq!(books.spent_msat, spent);

    // A dividend of 40,000 msat: the allowance becomes 20,000 msat and challenges resume.
    let dividend = 40_000;
    coordinator
        .keysend(
            validator_node.node_id(),
            dividend,
            boltensor_ln::PaymentPreimage([7; 32]),
        )
        .map_err(err)?
        .outcome(Duration::from_secs(60))
        .await
        .map_err(err)?;
    boltensor_testenv::wait_for(
        "the dividend at the validator's node",
        Duration::from_secs(60),
        || async { Ok((validator_node.received_keysend_msat() >= dividend).then_some(())) },
    )
    .await?;
    let allowance = policy.allowance_msat(dividend);
    assert_eq!(allowance, 20_000);
    let rounds = until_nothing_left(&validator, paid).await;
    let m = validator.metrics();
    println!("with the dividend: {rounds} more rounds; {m:?}");
    assert!(paid(&validator) > bootstrap_paid, "{m:?}");
    let books = m.books.expect("books");
    assert_eq!(books.allowance_msat, allowance);
    assert!(books.spent_msat > spent, "{books:?}");
    assert!(
        books.spent_msat <= allowance,
        "no challenge crosses the allowance ({books:?})"
    );

    let _ = stop.send(true);
    let _ = miner_task.await;
    validator_node.stop().await;
    miner_node.stop().await;
    coordinator.stop().await;
    Ok(())
}
