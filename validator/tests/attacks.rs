//! Attacks on the validator, performed as an attacker would, against the real daemons (regtest bitcoind,
//! ldk-node nodes, a real miner with the real models) — issue 20:
//!
//! - row 2: a free registration names a victim's API URL with the attacker's node id (the registry
//!   answer built as coordinators serve it); the attacker gets no score and no payment;
//! - row 6: one of four coordinators lies about the miners (adds one, moves one's URL, swaps a node
//!   id); the validator uses none of it;
//! - row 4: many registered miners that answer garbage try to drain the validator's challenge budget;
//!   spend per miner per epoch is capped and failing miners are backed off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use boltensor_ln::LnNode;
use boltensor_miner::backend::Backend;
use boltensor_miner::config::{default_models, default_models_dir, ModelSpec, Price};
use boltensor_miner::{Miner, MinerConfig};
use boltensor_protocol::l402::{self, Challenge, PaymentClaims};
use boltensor_testenv::{TestEnvError, TestNet};
use boltensor_validator::federation::FederationClient;
use boltensor_validator::{Target, Validator, ValidatorConfig};
use serde_json::{json, Value};
use tokio::sync::watch;

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            "warn,boltensor_validator=info,boltensor_client=info,ldk_node::chain::bitcoind=off,ldk_node::liquidity=off",
        )
        .with_test_writer()
        .try_init();
}

fn models() -> (Vec<ModelSpec>, HashMap<String, Backend>) {
    let mut specs = default_models(&default_models_dir());
    for s in &mut specs {
        s.price = Price {
            per_request_msat: 10_000,
            per_token_msat: 1_000,
        };
    }
    let backends = boltensor_miner::load_backends(&specs).expect("models");
    (specs, backends)
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// A coordinator's `GET /v1/miners` answer listing `(node id, api)`.
async fn coordinator_stand_in(miners: Vec<(String, String)>) -> String {
    let listed: Vec<Value> = miners
        .iter()
        .enumerate()
        .map(|(uid, (node_id, api))| {
            json!({"uid": uid, "node_id": node_id, "api": api, "models": ["all-minilm-l6-v2", "smollm2-135m-instruct"],
                   "incentive": 0, "consensus": 0, "score": 0.0})
        })
        .collect();
    let app = axum::Router::new().route(
        "/v1/miners",
        axum::routing::get(move || {
            let listed = listed.clone();
            async move { axum::Json(json!({"epoch": 1, "miners": listed})) }
        }),
    );
    serve(app).await
}

/// A URL that counts every request and answers 503.
async fn counting_server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    let app = axum::Router::new().fallback(move || {
        h.fetch_add(1, Ordering::SeqCst);
        async { (StatusCode::SERVICE_UNAVAILABLE, "no") }
    });
    (serve(app).await, hits)
}

/// Row 2: two registrations share the victim's URL; the one with the attacker's node id earns nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registration_naming_a_victims_url_gets_no_score_and_no_payment(
) -> Result<(), TestEnvError> {
    init_tracing();
    let (specs, backends) = models();
    let net = TestNet::start().await?;
    let mut coord_cfg = net.node_config("coordinator")?;
    coord_cfg.liquidity_provider = true;
    let coordinator = Arc::new(LnNode::start(coord_cfg).await?);
    let validator_node = Arc::new(net.node("validator").await?);
    let victim_node = Arc::new(net.node("victim").await?);
    let attacker = Arc::new(net.node("attacker").await?);
    net.fund(&[&coordinator, &validator_node], 4).await?;
    net.open_channel(&validator_node, &coordinator, 2_000_000, 0)
        .await?;
    net.open_channel(&coordinator, &victim_node, 1_000_000, 100_000_000)
        .await?;
    // The attacker can be paid too: if the validator paid it, it would get the money.
    net.open_channel(&coordinator, &attacker, 1_000_000, 100_000_000)
        .await?;

    let miner = Miner::new(
        MinerConfig::new(specs, net.dir().join("victim-miner")),
        Arc::clone(&victim_node),
        &backends,
    )
    .expect("miner");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let victim_url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, mut rx) = watch::channel(false);
    let task = tokio::spawn(miner.run(listener, async move {
        let _ = rx.wait_for(|s| *s).await;
    }));

    let victim_id = victim_node.node_id().to_string();
    let attacker_id = attacker.node_id().to_string();
    // What the members list: the victim's registration, then the attacker's naming the same URL.
    let registry = vec![
        (victim_id.clone(), victim_url.clone()),
        (attacker_id.clone(), victim_url.clone()),
    ];
    let mut urls = Vec::new();
    for _ in 0..4 {
        urls.push(coordinator_stand_in(registry.clone()).await);
    }
    let fed = FederationClient::new(urls);
    let mut cfg = ValidatorConfig::new(vec![], net.dir().join("validator"));
    cfg.chat_max_tokens = 8;
    let validator = Validator::new(cfg, Arc::clone(&validator_node), &backends).expect("validator");
    assert_eq!(validator.sync_miners(&fed).await.map_err(err)?, 2);
    let targets = validator.targets();
    for id in [&victim_id, &attacker_id] {
        assert!(
            targets.contains(&Target {
                url: victim_url.clone(),
                node_id: Some(id.clone()),
            }),
            "one target per registrant: {targets:?}"
        );
    }
    let attacker_before = attacker.received_msat();
    for _ in 0..2 {
        validator.challenge_round().await;
    }
    let scores = validator.scores();
    let weights = validator.weights(1).weights;
    let spend = validator.miner_spend();
    println!("scores by registrant: {scores:#?}");
    println!("weights: {weights:?}");
    println!("committed per registrant: {spend:?}");
    let victim_score = scores.get(&victim_id).copied().unwrap_or(0.0);
    let attacker_score = scores.get(&attacker_id).copied().unwrap_or(0.0);
    println!(
        "shared URL: victim score {victim_score:.3}, attacker score {attacker_score:.3}; attacker weight {:?}, paid to the attacker's registration {} msat",
        weights.get(&attacker_id),
        spend.get(&attacker_id).map_or(0, |s| s.spent_msat)
    );
    assert!(victim_score > 0.5, "the victim keeps its score");
    assert_eq!(attacker_score, 0.0, "the attacker gets no score");
    assert_eq!(weights.get(&attacker_id).copied().unwrap_or(0), 0);
    assert_eq!(weights.get(&victim_id), Some(&u16::MAX));
    assert_eq!(
        spend.get(&attacker_id).map_or(0, |s| s.spent_msat),
        0,
        "nothing paid for the attacker's registration (the invoice pays the victim's node)"
    );
    assert_eq!(
        attacker.received_msat(),
        attacker_before,
        "the attacker received nothing"
    );
    let paid = validator.client().spend();
    assert_eq!(
        paid.paid_requests,
        validator.metrics().embedding.paid + validator.metrics().chat.paid
    );
    assert!(
        paid.paid_requests >= 2,
        "the victim's challenges were paid: {paid:?}"
    );

    let _ = stop.send(true);
    let _ = task.await;
    for n in [&validator_node, &victim_node, &attacker, &coordinator] {
        n.stop().await;
    }
    Ok(())
}

fn err(e: impl std::fmt::Display) -> TestEnvError {
    TestEnvError::Devnet(e.to_string())
}

/// Row 6: one lying member out of four adds a miner, moves a miner's URL and swaps a node id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lying_member_cannot_add_move_or_swap_miners() -> Result<(), TestEnvError> {
    init_tracing();
    let (_, backends) = models();
    let net = TestNet::start().await?;
    let validator_node = Arc::new(net.node("validator").await?);
    let (honest_url, honest_hits) = counting_server().await;
    let (evil_url, evil_hits) = counting_server().await;
    let (fake_url, fake_hits) = counting_server().await;
    let real = "02".repeat(33);
    let fake = "03".repeat(33);
    let swapped = format!("02{}", "ab".repeat(32));
    let honest = vec![(real.clone(), honest_url.clone())];
    // The liar answers first (a union where the first answer wins would take its URL).
    let lie = vec![
        (real.clone(), evil_url.clone()),
        (fake.clone(), fake_url.clone()),
        (swapped.clone(), honest_url.clone()),
    ];
    let mut urls = vec![coordinator_stand_in(lie).await];
    for _ in 0..3 {
        urls.push(coordinator_stand_in(honest.clone()).await);
    }
    let fed = FederationClient::new(urls);
    let miners = fed.miners().await.map_err(err)?;
    println!("merged miners: {miners:?}");
    let validator = Validator::new(
        ValidatorConfig::new(vec![], net.dir().join("validator")),
        Arc::clone(&validator_node),
        &backends,
    )
    .expect("validator");
    validator.sync_miners(&fed).await.map_err(err)?;
    println!("targets: {:?}", validator.targets());
    assert_eq!(
        validator.targets(),
        vec![Target {
            url: honest_url.clone(),
            node_id: Some(real.clone()),
        }],
        "only what the honest majority lists"
    );
    validator.challenge_round().await;
    println!(
        "hits: honest {}, the liar's URL {}, the invented miner {}",
        honest_hits.load(Ordering::SeqCst),
        evil_hits.load(Ordering::SeqCst),
        fake_hits.load(Ordering::SeqCst)
    );
    assert!(honest_hits.load(Ordering::SeqCst) > 0);
    assert_eq!(
        evil_hits.load(Ordering::SeqCst),
        0,
        "the moved URL is not used"
    );
    assert_eq!(
        fake_hits.load(Ordering::SeqCst),
        0,
        "the invented miner is not challenged"
    );
    let keys: Vec<String> = validator.records().into_keys().collect();
    assert_eq!(
        keys,
        vec![real],
        "nothing is scored under the swapped or invented ids"
    );
    validator_node.stop().await;
    Ok(())
}

/// A cheap fake miner: quotes the attacker's node id, answers a 402 with an invoice of the attacker's
/// node (settling at once) and a paid request with garbage.
#[derive(Clone)]
struct Garbage {
    attacker: Arc<LnNode>,
    price_msat: u64,
}

async fn garbage(
    State(g): State<Garbage>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if uri.path() == "/v1/quote" {
        return axum::Json(json!({"node_id": g.attacker.node_id().to_string()})).into_response();
    }
    if headers.contains_key("authorization") {
        return axum::Json(json!({
            "data": [{"embedding": [0.5, 0.5]}],
            "choices": [{"message": {"role": "assistant", "content": "zzzz zzzz"}, "finish_reason": "stop"}],
        }))
        .into_response();
    }
    let invoice = g
        .attacker
        .invoice(g.price_msat, "garbage", 600)
        .expect("invoice");
    use boltensor_ln::bitcoin::hashes::Hash as _;
    let token = PaymentClaims {
        payment_hash: invoice.payment_hash().to_byte_array(),
        price_msat: g.price_msat,
        expires_at: 4_000_000_000,
        miner: g.attacker.node_id().serialize(),
        request_digest: l402::request_digest("POST", uri.path(), &body),
        credit_id: [0; 16],
        credit_msat: 0,
    }
    .sign(&[5; 32]);
    let c = Challenge {
        token,
        invoice: invoice.to_string(),
    };
    (
        StatusCode::PAYMENT_REQUIRED,
        [("www-authenticate", c.header_value())],
        "pay",
    )
        .into_response()
}

/// Row 4: fake miners answering garbage drain at most the per-miner cap × their number in an epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_miners_cannot_drain_more_than_the_per_miner_cap() -> Result<(), TestEnvError> {
    init_tracing();
    const MINERS: usize = 5;
    const ROUNDS: usize = 6;
    const PRICE: u64 = 10_000;
    const CAP: u64 = 3 * PRICE;
    let (_, backends) = models();
    let net = TestNet::start().await?;
    let validator_node = Arc::new(net.node("validator").await?);
    let undefended_node = Arc::new(net.node("undefended").await?);
    let attacker = Arc::new(net.node("attacker").await?);
    net.fund(&[&validator_node, &undefended_node], 2).await?;
    net.open_channel(&validator_node, &attacker, 2_000_000, 0)
        .await?;
    net.open_channel(&undefended_node, &attacker, 2_000_000, 0)
        .await?;
    let mut urls = Vec::new();
    for _ in 0..MINERS {
        let app = axum::Router::new().fallback(garbage).with_state(Garbage {
            attacker: Arc::clone(&attacker),
            price_msat: PRICE,
        });
        urls.push(serve(app).await);
    }

    let run = async |node: &Arc<LnNode>, name: &str, defended: bool| {
        let mut cfg = ValidatorConfig::new(urls.clone(), net.dir().join(name));
        cfg.max_price_msat = PRICE;
        cfg.chat_max_tokens = 4;
        if defended {
            cfg.per_miner_epoch_msat = CAP;
        } else {
            // What a validator did before: no cap per miner, no back-off.
            cfg.per_miner_epoch_msat = u64::MAX;
            cfg.max_backoff_rounds = 0;
        }
        let v = Validator::new(cfg, Arc::clone(node), &backends).expect("validator");
        v.set_epoch(7);
        let before = node.balances().lightning_sats;
        for _ in 0..ROUNDS {
            v.challenge_round().await;
        }
        let spend = v.client().spend();
        let m = v.metrics();
        println!(
            "{name}: {MINERS} garbage miners, {ROUNDS} rounds in one epoch: paid {} challenges, {} msat (balance {before} → {} sat); backed off {}, over cap {}",
            spend.paid_requests,
            spend.spent_msat,
            node.balances().lightning_sats,
            m.backed_off,
            m.over_cap
        );
        spend.spent_msat
    };
    let before = run(&undefended_node, "without cap and back-off", false).await;
    let after = run(&validator_node, "with cap and back-off", true).await;
    println!(
        "drain: {before} msat without the defence, {after} msat with it (cap {CAP} msat × {MINERS} miners = {} msat)",
        CAP * MINERS as u64
    );
    assert_eq!(before, (ROUNDS * MINERS * 2) as u64 * PRICE);
    assert!(
        after <= CAP * MINERS as u64,
        "at most the per-miner cap × miners: {after}"
    );
    for n in [&validator_node, &undefended_node, &attacker] {
        n.stop().await;
    }
    Ok(())
}
