//! Row 15 of docs/security.md, against the real daemons: a paid request logged at debug level leaks no
//! preimage, the public `/metrics` publishes no balance, and secret files left readable by others are
//! tightened to 0600 when the miner and its node start. Its own test binary: it installs the process's
//! tracing subscriber to capture everything logged.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use boltensor_ln::LnNode;
use boltensor_miner::Price;
use common::{challenge, pay_and_use, AttackNet, Result, EMB};
use serde_json::json;

/// Everything the process logs, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn mode(p: &std::path::Path) -> Result<u32> {
    Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_preimage_in_debug_logs_no_balance_in_metrics_secret_files_tightened() -> Result {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(logs.clone())
        .with_ansi(false)
        .try_init()?;

    let price = Price {
        per_request_msat: 1_000,
        per_token_msat: 10,
    };
    // The miner's L402 key exists already, readable by everyone (made by hand, restored from a backup).
    let mut loose_key = None;
    let n = AttackNet::start(&[EMB], price, |cfg| {
        let key = cfg.data_dir.join("l402.key");
        std::fs::create_dir_all(&cfg.data_dir).expect("data dir");
        std::fs::write(&key, [7u8; 32]).expect("key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        loose_key = Some(key);
    })
    .await?;
    let key = loose_key.ok_or("key")?;
    println!(
        "l402.key written 0644, mode after the miner started: {:o}",
        mode(&key)?
    );
    assert_eq!(mode(&key)?, 0o600);

    // A paid request, logged at debug level on both sides.
    let body = json!({"model": EMB, "input": "a secret-free log line"});
    let c = challenge(&n.url, "/v1/embeddings", &body, None).await?;
    let (answer, preimage) = pay_and_use(&n.attacker, &n.url, "/v1/embeddings", &body, &c).await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let hash_hex = hex::encode(c.payment_hash);
    let wanted = hex::encode(preimage);
    boltensor_testenv::wait_for(
        "the payment's events to be logged",
        std::time::Duration::from_secs(30),
        || {
            let logs = logs.clone();
            let hash_hex = hash_hex.clone();
            async move {
                let text = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
                Ok((text.contains("PaymentSuccessful") && text.contains(&hash_hex)).then_some(()))
            }
        },
    )
    .await?;
    let text = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
    let lines = text.lines().count();
    let leaks: Vec<&str> = text.lines().filter(|l| l.contains(&wanted)).collect();
    println!(
        "{lines} debug log lines for a paid request; lines holding its preimage: {}",
        leaks.len()
    );
    assert!(
        leaks.is_empty(),
        "the preimage was logged:\n{}",
        leaks.join("\n")
    );

    // The public /metrics publishes no balance.
    let metrics = reqwest::get(format!("{}/metrics", n.url))
        .await?
        .text()
        .await?;
    assert!(
        !metrics.contains("balance"),
        "/metrics publishes a balance:\n{metrics}"
    );

    // ldk-node's seed left readable by others is tightened when the node starts.
    let cfg = n.net.node_config("spare")?;
    let seed = cfg.storage_dir.join("keys_seed");
    let spare: LnNode = LnNode::start(cfg.clone()).await?;
    spare.stop().await;
    drop(spare);
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o644))?;
    let spare = LnNode::start(n.net.node_config("spare")?).await?;
    println!(
        "keys_seed set 0644, mode after the node started: {:o}",
        mode(&seed)?
    );
    assert_eq!(mode(&seed)?, 0o600);
    spare.stop().await;
    n.stop().await;
    Ok(())
}
