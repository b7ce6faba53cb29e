//! Validators on the real thing: miners with real models (one honest, one slow, one serving a coarser
//! quantisation of the claimed model, one answering random embeddings, one dropping every third request,
//! one that goes offline), a validator paying for every challenge over Lightning and checking the answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use boltensor_ln::LnNode;
use boltensor_miner::backend::Backend;
use boltensor_miner::config::{default_models, default_models_dir, ModelSource, ModelSpec, Price};
use boltensor_miner::{Miner, MinerConfig, Misbehaviour};
use boltensor_protocol::weights::{WeightInbox, WeightsError};
use boltensor_testenv::{TestEnvError, TestNet};
use boltensor_validator::scoring::ScoringParams;
use boltensor_validator::{Validator, ValidatorConfig};
use tokio::sync::watch;

struct RunningMiner {
    url: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    node: Arc<LnNode>,
}

fn whole_sat_prices(mut specs: Vec<ModelSpec>) -> Vec<ModelSpec> {
    for s in &mut specs {
        s.price = Price {
            per_request_msat: 10_000,
            per_token_msat: 1_000,
        };
    }
    specs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn honest_outscores_slow_cheap_and_random_and_offline_decays() -> Result<(), TestEnvError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            "warn,boltensor_validator=info,ldk_node::chain::bitcoind=off,ldk_node::liquidity=off",
        )
        .with_test_writer()
        .try_init();
    let dir = default_models_dir();
    let honest_specs = whole_sat_prices(default_models(&dir));
    let backends = boltensor_miner::load_backends(&honest_specs).expect("models");
    // The cheap miner claims the same model id but serves it re-quantised to Q4_0.
    let cheap_specs: Vec<ModelSpec> = honest_specs
        .iter()
        .cloned()
        .map(|mut s| {
            if let ModelSource::Gguf { coarse, .. } = &mut s.source {
                *coarse = true;
            }
            s
        })
        .collect();
    let mut cheap_backends: HashMap<String, Backend> = backends.clone();
    let chat = cheap_specs
        .iter()
        .find(|s| s.id == "smollm2-135m-instruct")
        .expect("chat");
    cheap_backends.insert(chat.id.clone(), chat.load().expect("Q4_0 loads"));

    let net = TestNet::start().await?;
    let mut coord_cfg = net.node_config("coordinator")?;
    coord_cfg.liquidity_provider = true;
    let coordinator = LnNode::start(coord_cfg).await?;
    let validator_node = Arc::new(net.node("validator").await?);
    let names = ["honest", "slow", "cheap", "random", "dropper", "goner"];
    let mut miner_nodes = Vec::new();
    for name in names {
        miner_nodes.push(Arc::new(net.node(name).await?));
    }
    let mut all: Vec<&LnNode> = vec![&coordinator, &validator_node];
    all.extend(miner_nodes.iter().map(|n| n.as_ref()));
    net.fund(&all, 8).await?;
    net.open_channel(&validator_node, &coordinator, 3_000_000, 0)
        .await?;
    for m in &miner_nodes {
        // Push a starting balance so the miners' balances are above dust.
        net.open_channel(&coordinator, m, 1_000_000, 100_000_000)
            .await?;
    }

    let mut miners = Vec::new();
    for (name, node) in names.iter().zip(&miner_nodes) {
        let (specs, be) = if *name == "cheap" {
            (cheap_specs.clone(), &cheap_backends)
        } else {
            (honest_specs.clone(), &backends)
        };
        let mut cfg = MinerConfig::new(specs, net.dir().join("miners").join(name));
        cfg.misbehaviour = match *name {
            "slow" => Some(Misbehaviour::Slow(Duration::from_millis(1500))),
            "random" => Some(Misbehaviour::RandomEmbeddings),
            "dropper" => Some(Misbehaviour::DropEveryThird),
            _ => None,
        };
        let miner = Miner::new(cfg, Arc::clone(node), be).expect("miner");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, mut rx) = watch::channel(false);
        let task = tokio::spawn(miner.run(listener, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        miners.push(RunningMiner {
            url,
            stop,
            task,
            node: Arc::clone(node),
        });
    }
    let url = |name: &str| {
        miners[names.iter().position(|n| *n == name).expect("name")]
            .url
            .clone()
    };

    let mut cfg = ValidatorConfig::new(
        miners.iter().map(|m| m.url.clone()).collect(),
        net.dir().join("validator"),
    );
    // Long enough answers that the coarser model is caught on most prompts (docs/scoring.md).
    cfg.chat_max_tokens = 24;
    cfg.scoring = ScoringParams {
        alpha: 0.5,
        target_latency: Duration::from_millis(1000),
        prune_below: 0.05,
    };
    let validator = Validator::new(cfg, Arc::clone(&validator_node), &backends).expect("validator");
    let balance_before = validator_node.balances().lightning_sats;

    for _ in 0..4 {
        validator.challenge_round().await;
    }
    let s = validator.scores();
    println!("scores after 4 rounds: {s:#?}");
    assert!(s[&url("honest")] > s[&url("slow")], "honest > slow: {s:?}");
    assert!(
        s[&url("slow")] > s[&url("cheap")],
        "slow > cheap model: {s:?}"
    );
    assert!(
        s[&url("cheap")] > s[&url("random")],
        "cheap > random: {s:?}"
    );
    assert!(
        s[&url("honest")] > s[&url("dropper")],
        "honest > dropper: {s:?}"
    );

    // Every challenge is a real paid request: spend = challenge prices (+ routing fees).
    let spend = validator.client().spend();
    assert_eq!(spend.spent_msat, validator.challenge_spend_msat());
    assert!(spend.paid_requests >= 30, "{spend:?}");
    boltensor_testenv::wait_for(
        "the validator's balance to settle",
        Duration::from_secs(30),
        || async {
            let paid_sats = (spend.spent_msat + spend.fees_msat) / 1000;
            Ok(
                (validator_node.balances().lightning_sats == balance_before - paid_sats)
                    .then_some(()),
            )
        },
    )
    .await?;

    // Sign epoch 1; the receiving side accepts it once.
    let signed = validator.close_epoch(1).expect("sign");
    assert_eq!(
        validator.close_epoch(1).expect("again"),
        signed,
        "one vector per epoch"
    );
    let honest_id = miners[0].node.node_id().to_string();
    let random_id = miners[3].node.node_id().to_string();
    assert_eq!(
        signed.vector.weights.values().max(),
        Some(&u16::MAX),
        "the best miner gets the top weight"
    );
    assert!(signed.vector.weights[&honest_id] > signed.vector.weights[&random_id]);
    let mut inbox = WeightInbox::new(1);
    assert_eq!(inbox.submit(signed.clone()), Ok(()));
    assert!(matches!(
        inbox.submit(signed.clone()),
        Err(WeightsError::Duplicate(_))
    ));
    assert!(matches!(
        WeightInbox::new(2).submit(signed.clone()),
        Err(WeightsError::WrongEpoch { .. })
    ));
    let mut tampered = signed.clone();
    tampered.vector.weights.insert(honest_id.clone(), 1);
    assert!(matches!(
        WeightInbox::new(1).submit(tampered),
        Err(WeightsError::BadSignature(_))
    ));

    // Every miner but the honest one goes offline: their weights decay to
    // zero while the honest miner keeps the top weight. Offline miners fail fast, so these rounds cost
    // about one honest challenge pair each.
    let mut gone = miners.split_off(1);
    for m in &gone {
        let _ = m.stop.send(true);
    }
    for m in &mut gone {
        let _ = (&mut m.task).await;
    }
    for _ in 0..5 {
        validator.challenge_round().await;
    }
    let s = validator.scores();
    println!("scores after the others left: {s:#?}");
    let signed = validator.close_epoch(2).expect("sign");
    for m in &gone {
        assert_eq!(s[&m.url], 0.0, "an offline miner decays to zero: {s:?}");
        assert_eq!(signed.vector.weights[&m.node.node_id().to_string()], 0);
    }
    assert_eq!(signed.vector.weights[&honest_id], u16::MAX, "{signed:?}");

    for m in miners {
        let _ = m.stop.send(true);
        let _ = m.task.await;
    }
    for n in &miner_nodes {
        n.stop().await;
    }
    validator_node.stop().await;
    coordinator.stop().await;
    Ok(())
}
