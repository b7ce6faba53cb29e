//! Routing against the real coordinator federation: four members in this process on real TCP links,
//! two miners registered through `POST /v1/items`; the client's directory lists both (score 0 before
//! any epoch pays them) from every member and spreads picks over them by the floor; with one member
//! stopped it still answers; a failed miner is skipped.
//!
//! No bitcoind: miners need no bond, and a member without an RPC only skips bond checks.

use std::collections::HashMap;
use std::time::Duration;

use bitcoin::secp256k1::{Keypair, SecretKey, SECP256K1};
use boltensor_client::{DirectoryConfig, MinerDirectory};
use boltensor_coordinator::config::ConsensusTiming;
use boltensor_coordinator::items::{ConsensusItem, Registration};
use boltensor_coordinator::params::Params;
use boltensor_coordinator::{start, CoordinatorConfig, Options};
use boltensor_protocol::Role;
use boltensor_testenv::wait_for;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const MODEL: &str = "all-minilm-l6-v2";

fn key(label: &str) -> Keypair {
    let digest = <bitcoin::hashes::sha256::Hash as bitcoin::hashes::Hash>::hash(label.as_bytes());
    let secret = SecretKey::from_slice(bitcoin::hashes::Hash::as_byte_array(&digest))
        .expect("a hash is a valid key");
    Keypair::from_secret_key(SECP256K1, &secret)
}

fn miner_registration(fed: [u8; 32], label: &str, models: &[&str]) -> ConsensusItem {
    let kp = key(label);
    let node = key(&format!("{label}-node"));
    let mut r = Registration::new(
        Role::Miner,
        kp.x_only_public_key().0,
        node.public_key().to_string(),
        fed,
    );
    r.api = Some(format!("http://127.0.0.1:1/{label}"));
    r.models = models.iter().map(|m| m.to_string()).collect();
    ConsensusItem::Register(
        r.sign_node(|m| boltensor_ln::sign_message_with_key(m, &node.secret_key()))
            .sign(&kp),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_lists_registered_miners_from_the_federation_and_spreads_picks() -> Result {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,boltensor=info".into()),
        )
        .with_test_writer()
        .try_init();
    let (federation, keys) = boltensor_coordinator::config::loopback_federation(
        "routing",
        b"routing",
        4,
        ConsensusTiming {
            rounds_per_session: 8,
            round_delay_ms: 60,
        },
        Params {
            epoch_sessions: 2,
            ..Params::default()
        },
        boltensor_testenv::free_port,
    )?;
    federation.validate()?;
    let dirs: Vec<tempfile::TempDir> = (0..4)
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<_>>()?;
    let mut running = Vec::new();
    for (i, kp) in keys.iter().enumerate() {
        let cfg = CoordinatorConfig {
            federation: federation.clone(),
            index: i,
            keypair: *kp,
            data_dir: dirs[i].path().to_path_buf(),
        };
        running.push(Some(start(cfg, Options::default()).await?));
    }
    let urls: Vec<String> = federation
        .members
        .iter()
        .map(|m| format!("http://{}", m.api))
        .collect();

    // Two miners of the model, and one of another model that must not be listed for it.
    let http = reqwest::Client::new();
    for (label, models) in [
        ("miner-a", &[MODEL][..]),
        ("miner-b", &[MODEL, "other"][..]),
        ("miner-c", &["other"][..]),
    ] {
        let resp = http
            .post(format!("{}/v1/items", urls[0]))
            .json(&miner_registration(federation.id(), label, models))
            .send()
            .await?;
        assert!(resp.status().is_success(), "{}", resp.text().await?);
    }

    let dir = MinerDirectory::new(DirectoryConfig {
        coordinators: urls.clone(),
        ttl: Duration::ZERO,
        score_floor: 0.02,
        seed: Some(11),
        ..DirectoryConfig::default()
    });
    let listing = wait_for(
        "every member to list both miners",
        Duration::from_secs(60),
        || async {
            Ok(dir
                .listing(Some(MODEL))
                .await
                .ok()
                .filter(|l| l.answered == 4 && l.miners.iter().all(|m| m.listed_by == 4))
                .filter(|l| l.miners.len() == 2))
        },
    )
    .await?;
    let apis: Vec<&str> = listing.miners.iter().map(|m| m.api.as_str()).collect();
    assert!(apis.contains(&"http://127.0.0.1:1/miner-a"), "{apis:?}");
    assert!(apis.contains(&"http://127.0.0.1:1/miner-b"), "{apis:?}");
    for m in &listing.miners {
        assert_eq!(m.score, 0.0, "no epoch has paid {} yet", m.node_id);
    }

    // Equal (zero) scores: the floor spreads picks evenly.
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..2_000 {
        let m = dir.pick(&listing.miners).expect("a miner");
        *counts.entry(m.api.clone()).or_default() += 1;
    }
    for api in &apis {
        let share = counts.get(*api).copied().unwrap_or(0) as f64 / 2_000.0;
        assert!((share - 0.5).abs() < 0.05, "{api}: {share}");
    }
    // A failed miner is skipped; the static list comes after the directory's miners.
    dir.report_failure("http://127.0.0.1:1/miner-a");
    for _ in 0..100 {
        let order = dir
            .candidates(Some(MODEL), &["http://static".to_owned()])
            .await;
        assert_eq!(
            order,
            vec![
                "http://127.0.0.1:1/miner-b",
                "http://127.0.0.1:1/miner-a",
                "http://static"
            ]
        );
    }

    // One member stopped: the other three still answer and agree.
    if let Some(r) = running[3].take() {
        r.shutdown().await;
    }
    let listing = dir.listing(Some(MODEL)).await?;
    assert_eq!(listing.answered, 3);
    assert_eq!(listing.miners.len(), 2);

    for r in running.into_iter().flatten() {
        r.shutdown().await;
    }
    Ok(())
}
