//! The federation through the real binary: `boltensor coordinator init` writes four members,
//! four `boltensor coordinator run` processes on a regtest bitcoind agree on signed epochs, and
//! `boltensor epoch verify --from URL` recomputes one; a wrong URL and a bad config fail clearly.

use std::time::Duration;

use boltensor_coordinator::CoordinatorConfig;
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

/// Issue 20, row 10: `coordinator init` once derived every member key from a public default seed, so
/// anyone could sign the bonds' k-of-n leaf. Now two runs without a seed write different keys, and a
/// seed is refused outside regtest.
#[test]
fn init_writes_random_keys_and_refuses_a_seed_outside_regtest() -> Result {
    let dir = tempfile::tempdir()?;
    let init = |name: &str, extra: &[&str]| {
        bin()
            .args(["coordinator", "init", "--members", "4"])
            .arg(format!("--dir={}", dir.path().join(name).display()))
            .args(extra)
            .output()
    };
    let keys = |name: &str| -> Result<Vec<String>> {
        let cfg = boltensor_coordinator::FederationConfig::load(
            &dir.path().join(name).join("member-0/federation.json"),
        )?;
        Ok(cfg.keys().iter().map(|k| k.to_string()).collect())
    };
    for name in ["a", "b"] {
        let out = init(name, &[])?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (a, b) = (keys("a")?, keys("b")?);
    println!(
        "ATTACK public default keys: run a member 0 key {}, run b member 0 key {}",
        a[0], b[0]
    );
    assert!(
        a.iter().all(|k| !b.contains(k)),
        "two runs without --seed share a key: {a:?} {b:?}"
    );
    // The old default seed no longer gives the old, public keys.
    let public = boltensor_coordinator::config::derive_keypair(b"boltensor-devnet", 0)
        .x_only_public_key()
        .0
        .to_string();
    assert!(!a.contains(&public) && !b.contains(&public));

    // A seed on regtest is deterministic (devnets, tests); on any other network it is refused.
    for name in ["c", "d"] {
        let out = init(name, &["--seed", "devnet-seed"])?;
        assert!(out.status.success());
    }
    assert_eq!(keys("c")?, keys("d")?);
    for network in ["bitcoin", "signet", "testnet4"] {
        let out = init(network, &["--seed", "devnet-seed", "--network", network])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{network}: {stderr}");
        assert!(stderr.contains("regtest only"), "{network}: {stderr}");
        assert!(!dir.path().join(network).exists(), "nothing written");
    }
    Ok(())
}

/// Issue 20, row 4: a federation written for a real network prices a miner's registration with a bond
/// (ADR 0012); regtest keeps free registrations for local setups; the flag sets it either way.
#[test]
fn init_asks_miners_for_a_bond_off_regtest() -> Result {
    let dir = tempfile::tempdir()?;
    // (miner bond, pool share of fees) that `coordinator init` writes.
    let params = |name: &str, extra: &[&str]| -> Result<(u64, u64)> {
        let out = bin()
            .args(["coordinator", "init", "--members", "4"])
            .arg(format!("--dir={}", dir.path().join(name).display()))
            .args(extra)
            .output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cfg = boltensor_coordinator::FederationConfig::load(
            &dir.path().join(name).join("member-0/federation.json"),
        )?;
        Ok((cfg.params.miner_bond_min_sat, cfg.params.pool_fee_share_ppm))
    };
    // Off regtest miners bond and the pool is half of what the members' nodes earned (ADR 0015).
    assert_eq!(
        params("signet", &["--network", "signet"])?,
        (100_000, 500_000)
    );
    assert_eq!(
        params("bitcoin", &["--network", "bitcoin"])?,
        (100_000, 500_000)
    );
    assert_eq!(params("regtest", &[])?, (0, 0));
    assert_eq!(
        params(
            "set",
            &[
                "--network",
                "signet",
                "--miner-bond-min-sat",
                "250000",
                "--pool-fee-share-ppm",
                "0"
            ]
        )?,
        (250_000, 0)
    );
    let out = bin()
        .args(["coordinator", "init", "--pool-fee-share-ppm", "1000001"])
        .arg(format!("--dir={}", dir.path().join("bad").display()))
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 1000000"));
    Ok(())
}

/// `--hosts` puts member i on the i-th address (members on separate machines); a list of the wrong length
/// or a name that is no IP address is refused with a clear error, and nothing is written.
#[test]
fn init_puts_members_on_their_hosts_and_refuses_a_wrong_list() -> Result {
    let dir = tempfile::tempdir()?;
    let out = bin()
        .args([
            "coordinator",
            "init",
            "--members",
            "4",
            "--base-port",
            "7100",
        ])
        .args(["--hosts", "192.0.2.10,192.0.2.11,192.0.2.12,192.0.2.13"])
        .arg(format!("--dir={}", dir.path().join("fed").display()))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fed = CoordinatorConfig::load(&dir.path().join("fed").join("member-2"))?.federation;
    let addrs: Vec<String> = fed
        .members
        .iter()
        .map(|m| format!("{} {}", m.p2p, m.api))
        .collect();
    assert_eq!(
        addrs,
        [
            "192.0.2.10:7100 192.0.2.10:7101",
            "192.0.2.11:7102 192.0.2.11:7103",
            "192.0.2.12:7104 192.0.2.12:7105",
            "192.0.2.13:7106 192.0.2.13:7107"
        ]
    );
    for (hosts, says) in [
        ("192.0.2.10", "--hosts names 1 addresses for 4 members"),
        ("192.0.2.10,coordinator.example", "invalid IP address"),
    ] {
        let bad = dir.path().join("bad");
        let out = bin()
            .args(["coordinator", "init", "--members", "4", "--hosts", hosts])
            .arg(format!("--dir={}", bad.display()))
            .output()?;
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!bad.exists(), "a refused init wrote {}", bad.display());
    }
    Ok(())
}

/// Issue 20, row 15 for the coordinator: a member's `secret.key` and `admin.token` that others can read
/// (copied with a loose umask, say) are made 0600 when the member loads them.
#[cfg(unix)]
#[test]
fn a_members_secret_files_are_tightened_on_load() -> Result {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let out = bin()
        .args(["coordinator", "init", "--members", "4"])
        .arg(format!("--dir={}", dir.path().display()))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let member = dir.path().join("member-0");
    let key = member.join("secret.key");
    let token = member.join("admin.token");
    boltensor_coordinator::admin_token(&member)?;
    let mode = |p: &std::path::Path| -> Result<u32> {
        Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
    };
    for p in [&key, &token] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644))?;
    }
    boltensor_coordinator::CoordinatorConfig::load(&member)?;
    boltensor_coordinator::admin_token(&member)?;
    println!(
        "ATTACK readable member secrets: secret.key 0644 → {:o}, admin.token 0644 → {:o}",
        mode(&key)?,
        mode(&token)?
    );
    assert_eq!(mode(&key)?, 0o600);
    assert_eq!(mode(&token)?, 0o600);
    Ok(())
}
