//! The federation through the real binary: `boltensor coordinator init` writes four members,
//! four `boltensor coordinator run` processes on a regtest bitcoind agree on signed epochs, and
//! `boltensor epoch verify --from URL` recomputes one; a wrong URL and a bad config fail clearly.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use boltensor_testenv::{free_port, wait_for, Bitcoind, BitcoindOptions, TestEnvError};

/// Kills the member processes when the test ends, however it ends.
struct Members(Vec<Child>);

impl Drop for Members {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_boltensor"))
}

/// A base port with the 8 ports after it free.
fn free_block() -> u16 {
    for _ in 0..20 {
        let base = free_port().expect("a free port");
        if base > 60_000 {
            continue;
        }
        let all_free = (0..8).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no block of 8 free ports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_coordinator_processes_sign_epochs_that_verify(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let bitcoind = Bitcoind::start(BitcoindOptions::new(dir.path().join("bitcoind"))).await?;
    let boltensor_ln::ChainSource::BitcoindRpc {
        port,
        user,
        password,
        ..
    } = bitcoind.chain_source()
    else {
        unreachable!("regtest bitcoind")
    };
    let base = free_block();
    let fed = dir.path().join("fed");
    let out = bin()
        .args([
            "coordinator",
            "init",
            "--members",
            "4",
            "--epoch-sessions",
            "1",
        ])
        .args(["--rounds-per-session", "10", "--round-delay-ms", "60"])
        .arg(format!("--base-port={base}"))
        .arg(format!("--dir={}", fed.display()))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("3 signatures make a result final"),
        "{printed}"
    );

    let mut members = Members(Vec::new());
    for i in 0..4 {
        let log = std::fs::File::create(dir.path().join(format!("member-{i}.log")))?;
        members.0.push(
            bin()
                .args(["coordinator", "run"])
                .arg(format!(
                    "--dir={}",
                    fed.join(format!("member-{i}")).display()
                ))
                .arg(format!("--rpc-url=http://127.0.0.1:{port}"))
                .arg(format!("--rpc-user={user}"))
                .arg(format!("--rpc-pass={password}"))
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()?,
        );
    }
    let api = format!("http://127.0.0.1:{}", base + 1);
    let http = reqwest::Client::new();
    wait_for("a signed epoch", Duration::from_secs(90), || async {
        let r = http.get(format!("{api}/v1/epochs/latest")).send().await;
        Ok(r.ok().filter(|r| r.status().is_success()).map(|_| ()))
    })
    .await
    .map_err(|e: TestEnvError| {
        let log = std::fs::read_to_string(dir.path().join("member-0.log")).unwrap_or_default();
        format!("{e}; member 0 log:\n{log}")
    })?;

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
