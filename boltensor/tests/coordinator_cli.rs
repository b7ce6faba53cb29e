//! The federation through the real binary: `boltensor coordinator init` writes four members,
//! four `boltensor coordinator run` processes on a regtest bitcoind agree on signed epochs, and
//! `boltensor epoch verify --from URL` recomputes one; a wrong URL and a bad config fail clearly.

use std::time::Duration;

use boltensor_testenv::{wait_for, Bitcoind, BitcoindOptions, TestEnvError};

mod fedproc;
use fedproc::{bin, Federation, Result};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_coordinator_processes_sign_epochs_that_verify() -> Result {
    let dir = tempfile::tempdir()?;
    let bitcoind = Bitcoind::start(BitcoindOptions::new(dir.path().join("bitcoind"))).await?;
    let boltensor_ln::ChainSource::BitcoindRpc { port, .. } = bitcoind.chain_source() else {
        unreachable!("regtest bitcoind")
    };
    let (mut members, printed) =
        Federation::init(dir.path(), &bitcoind, &["--epoch-sessions", "1"])?;
    assert!(
        printed.contains("3 signatures make a result final"),
        "{printed}"
    );
    members.spawn_all()?;
    let fed = members.dir.join("fed");
    let base = members.base;
    let api = format!("http://127.0.0.1:{}", base + 1);
    let http = reqwest::Client::new();
    wait_for("a signed epoch", Duration::from_secs(90), || async {
        let r = http.get(format!("{api}/v1/epochs/latest")).send().await;
        Ok(r.ok().filter(|r| r.status().is_success()).map(|_| ()))
    })
    .await
    .map_err(|e: TestEnvError| format!("{e}; member 0 log:\n{}", members.log_tail(0)))?;

    let out = bin().args(["epoch", "verify", "--from", &api]).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("OK: epoch"), "{stdout}");
    // Pinning the federation file gives the same verdict.
    let out = bin()
        .args(["epoch", "verify", "--from", &api, "--federation"])
        .arg(fed.join("member-2/federation.json"))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Clear failures: nobody at the URL; a member directory without its files.
    let out = bin()
        .args(["epoch", "verify", "--from", "http://127.0.0.1:9"])
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/v1/federation"));
    let out = bin()
        .args(["coordinator", "run", "--dir"])
        .arg(dir.path().join("nowhere"))
        .arg(format!("--rpc-url=http://127.0.0.1:{port}"))
        .arg("--rpc-pass=x")
        .output()?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("federation.json"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(members);
    Ok(())
}
