//! `boltensor devnet up` after a `kill -9` of the launcher resumes with the same balances: the real
//! binary, a small devnet in a temporary dir, one paid request, then SIGKILL (bitcoind is left behind as
//! an orphan), `up` again on the same data dir, and every node's on-chain and Lightning balance, payouts
//! received and channels compared to the msat.
//!
//! Nothing moves balances while we compare: no generated traffic, validators idle (no bond, no
//! challenges), an epoch far longer than the test (no payouts), no timer blocks; and the routing check
//! each `up` runs holds its payment at the miner and fails it back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boltensor_devnet::StatusReport;
use boltensor_testenv::{free_port, wait_for, TestEnvError};

/// How long an `up` may take to be ready (the first one funds and opens channels; debug build, loaded
/// machine).
const READY_TIMEOUT: Duration = Duration::from_secs(150);

fn err(e: impl std::fmt::Display) -> TestEnvError {
    TestEnvError::Devnet(e.to_string())
}

/// The devnet's processes: the launcher (SIGKILLed on drop) and, on drop, any bitcoind still running on
/// this data dir (what a killed launcher leaves behind). Prints the launcher's log tail if the test fails.
struct Devnet {
    data_dir: PathBuf,
    control_port: u16,
    launcher: Mutex<Option<Child>>,
    runs: usize,
}

impl Devnet {
    fn new(data_dir: PathBuf) -> Self {
        Devnet {
            data_dir,
            control_port: free_port().expect("a free port"),
            launcher: Mutex::new(None),
            runs: 0,
        }
    }

    fn log(&self, run: usize) -> PathBuf {
        self.data_dir
            .parent()
            .expect("the data dir has a parent")
            .join(format!("launcher-{run}.log"))
    }

    /// `boltensor devnet up` with a small, quiet topology.
    fn up(&mut self) {
        assert!(self.child().is_none(), "one launcher at a time");
        self.runs += 1;
        let log = std::fs::File::create(self.log(self.runs)).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_boltensor"))
            .args(["devnet", "up", "--data-dir"])
            .arg(&self.data_dir)
            .args([
                "--coordinators",
                "1",
                "--miners",
                "1",
                "--validators",
                "1",
                "--clients",
                "1",
                "--traffic-interval-ms",
                "0",
                "--validator-round-secs",
                "0",
                "--epoch-secs",
                "100000",
                "--block-interval-secs",
                "0",
                "--control-port",
                &self.control_port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("boltensor runs");
        *self.child() = Some(child);
    }

    /// `boltensor devnet status --json`, if the devnet answers.
    fn status(&self) -> Result<Option<StatusReport>, TestEnvError> {
        let out = Command::new(env!("CARGO_BIN_EXE_boltensor"))
            .args(["devnet", "status", "--json", "--data-dir"])
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .output()
            .map_err(err)?;
        if !out.status.success() {
            return Ok(None);
        }
        serde_json::from_slice(&out.stdout).map(Some).map_err(err)
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.launcher.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn launcher_exited(&self) -> Option<std::process::ExitStatus> {
        self.child()
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Polls `devnet status --json` until it reports ready; fails early if the launcher exits.
    async fn ready(&self) -> Result<StatusReport, TestEnvError> {
        wait_for("devnet status to say ready", READY_TIMEOUT, || async {
            if let Some(status) = self.launcher_exited() {
                return Err(err(format!("devnet up exited early: {status}")));
            }
            Ok(self.status()?.filter(|r| r.ready))
        })
        .await
    }

    /// SIGKILL the launcher: nothing of it runs its shutdown path.
    fn kill9(&self) {
        if let Some(mut child) = self.child().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The pids of processes whose command line holds `-datadir=<data dir>/bitcoind`.
    fn bitcoind_pids(&self) -> Vec<String> {
        let arg = format!("-datadir={}", self.data_dir.join("bitcoind").display());
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for run in 1..=self.runs {
                let log = std::fs::read_to_string(self.log(run)).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                eprintln!(
                    "--- launcher run {run}, last lines ---\n{}",
                    lines[lines.len().saturating_sub(40)..].join("\n")
                );
            }
        }
        self.kill9();
        for pid in self.bitcoind_pids() {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }
}

/// What must survive the restart, per node name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeBalances {
    node_id: String,
    onchain_sats: u64,
    lightning_sats: u64,
    keysend_received_msat: u64,
    /// (peer, capacity, opened by this node, outbound msat, inbound msat), sorted.
    channels: Vec<(String, u64, bool, u64, u64)>,
}

/// Every node's [`NodeBalances`], by name.
type Snapshot = BTreeMap<String, NodeBalances>;

fn balances(report: &StatusReport) -> Snapshot {
    report
        .nodes
        .iter()
        .map(|n| {
            let mut channels: Vec<_> = n
                .channels
                .iter()
                .map(|c| {
                    (
                        c.peer.clone(),
                        c.capacity_sats,
                        c.outbound,
                        c.outbound_msat,
                        c.inbound_msat,
                    )
                })
                .collect();
            channels.sort();
            (
                n.name.clone(),
                NodeBalances {
                    node_id: n.node_id.clone(),
                    onchain_sats: n.onchain_sats,
                    lightning_sats: n.lightning_sats,
                    keysend_received_msat: n.keysend_received_msat,
                    channels,
                },
            )
        })
        .collect()
}

fn all_usable(report: &StatusReport) -> bool {
    report
        .nodes
        .iter()
        .all(|n| !n.channels.is_empty() && n.channels.iter().all(|c| c.usable))
}

/// How long balances must stay the same to count as settled: longer than ldk-node's chain poll (every 2 s),
/// so a block or mempool transaction being processed cannot fall between two equal readings.
const STABLE: Duration = Duration::from_secs(3);

/// Waits until the balances read the same for [`STABLE`], every channel usable.
async fn quiescent(devnet: &Devnet) -> Result<Snapshot, TestEnvError> {
    let last: Arc<Mutex<Option<(Instant, Snapshot)>>> = Arc::default();
    wait_for("balances to settle", Duration::from_secs(60), || {
        let last = Arc::clone(&last);
        async move {
            let Some(report) = devnet.status()? else {
                return Ok(None);
            };
            if !all_usable(&report) {
                return Ok(None);
            }
            let now = balances(&report);
            let mut last = last.lock().expect("not poisoned");
            match &*last {
                Some((at, before)) if *before == now && at.elapsed() >= STABLE => {
                    return Ok(Some(now))
                }
                Some((_, before)) if *before == now => return Ok(None),
                _ => {}
            }
            *last = Some((Instant::now(), now));
            Ok(None)
        }
    })
    .await
}

/// Mines one block on the devnet's bitcoind (what the devnet's own timer would do).
async fn mine_one(data_dir: &Path) -> Result<(), TestEnvError> {
    let state =
        boltensor_devnet::DevnetState::load(data_dir)?.ok_or_else(|| err("no devnet.json"))?;
    let rpc = boltensor_testenv::RpcClient::new(
        format!("http://127.0.0.1:{}", state.bitcoind_rpc_port),
        state.rpc_user.clone(),
        state.rpc_password.clone(),
    );
    rpc.call::<serde_json::Value>(
        "generatetoaddress",
        serde_json::json!([1, boltensor_testenv::bitcoind::burn_address().to_string()]),
    )
    .await
    .map(drop)
}

/// One paid embedding through the client's proxy, so the balances carry a settled payment.
async fn pay_once(report: &StatusReport) -> Result<(), TestEnvError> {
    let (proxy, key_file) = report
        .nodes
        .iter()
        .filter(|n| n.name == "client-1")
        .find_map(|n| Some((n.api_url.clone()?, n.api_key_file.clone()?)))
        .ok_or_else(|| err("client-1 serves no proxy"))?;
    let key = std::fs::read_to_string(&key_file).map_err(err)?;
    let resp = reqwest::Client::new()
        .post(format!("{proxy}/embeddings"))
        .bearer_auth(key.trim())
        .json(&serde_json::json!({"model": "all-minilm-l6-v2", "input": "kill -9 and resume"}))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(err)?;
    let status = resp.status();
    let preimage = resp.headers().get("x-boltensor-preimage").cloned();
    let body = resp.text().await.map_err(err)?;
    assert!(status.is_success(), "paid embedding: {status} {body}");
    assert!(preimage.is_some(), "a settled payment carries its preimage");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_up_after_kill_9_resumes_with_the_same_balances() -> Result<(), TestEnvError> {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().canonicalize().expect("temp dir path");
    let mut devnet = Devnet::new(root.join("devnet"));

    devnet.up();
    let first = devnet.ready().await?;
    eprintln!(
        "first up ready after {:.1} s",
        started.elapsed().as_secs_f32()
    );
    assert_eq!(first.nodes.len(), 4, "{}", first.render());
    let check = first.routing_check.clone().unwrap_or_default();
    assert!(check.contains("no sats moved"), "{check}");
    let unpaid = balances(&first);

    pay_once(&first).await?;
    // The miner's bond transaction (funded from its node at start) can sit unseen by its own wallet until a
    // block confirms it: ldk-node's mempool poll skips a transaction that entered the mempool in the same
    // second as the last one it emitted. It failed CI once (the resumed devnet mined it: the miner's
    // on-chain balance fell by the bond after the resume). Confirm what is pending, then snapshot.
    mine_one(&devnet.data_dir).await?;
    let before = quiescent(&devnet).await?;
    // The miner's share stays under the dust limit (its balance reads 0 sat), but the channels show it
    // to the msat.
    let to_miner = |b: &Snapshot| {
        b["coordinator-1"]
            .channels
            .iter()
            .find(|c| c.0 == "miner-1")
            .map(|c| c.3)
    };
    assert!(
        to_miner(&before) < to_miner(&unpaid)
            && before["client-1"].lightning_sats < unpaid["client-1"].lightning_sats,
        "the paid request moved sats from client-1 to miner-1: {before:#?}"
    );
    let bitcoind = devnet.bitcoind_pids();
    assert_eq!(bitcoind.len(), 1, "one bitcoind runs for this devnet");

    // kill -9: no shutdown path runs; bitcoind lives on as an orphan.
    let t_kill = Instant::now();
    devnet.kill9();
    assert_eq!(
        devnet.bitcoind_pids(),
        bitcoind,
        "the launcher's bitcoind outlives it"
    );

    devnet.up();
    let second = devnet.ready().await?;
    eprintln!(
        "resumed and ready {:.1} s after the kill",
        t_kill.elapsed().as_secs_f32()
    );
    let log = std::fs::read_to_string(devnet.log(2)).unwrap_or_default();
    assert!(
        log.contains("stopped the bitcoind a previous launcher left running"),
        "the orphaned bitcoind was stopped"
    );
    assert_ne!(devnet.bitcoind_pids(), bitcoind, "a fresh bitcoind runs");
    let check = second.routing_check.clone().unwrap_or_default();
    assert!(check.contains("no sats moved"), "{check}");

    // The control API's Prometheus view agrees.
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", devnet.control_port))
        .await
        .map_err(err)?
        .text()
        .await
        .map_err(err)?;
    assert!(
        metrics.contains("boltensor_devnet_ready 1")
            && metrics
                .contains("boltensor_devnet_usable_channels{node=\"miner-1\",role=\"miner\"} 1"),
        "{metrics}"
    );

    // Same nodes, same channels, the same balances to the sat (on-chain) and msat (channels).
    let after = quiescent(&devnet).await?;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    for (name, was) in &before {
        assert_eq!(&after[name], was, "{name} after the resume");
    }
    let fed = second.federation.as_ref().expect("the federation runs");
    assert_eq!(
        Some(&fed.id),
        first.federation.as_ref().map(|f| &f.id),
        "the same federation"
    );

    // devnet down stops the launcher and its bitcoind.
    let out = Command::new(env!("CARGO_BIN_EXE_boltensor"))
        .args(["devnet", "down", "--data-dir"])
        .arg(&devnet.data_dir)
        .output()
        .map_err(err)?;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("devnet stopped"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exit = wait_for("the launcher to exit", Duration::from_secs(60), || async {
        Ok(devnet.launcher_exited())
    })
    .await?;
    assert!(exit.success(), "devnet up exits cleanly after down: {exit}");
    assert!(
        devnet.bitcoind_pids().is_empty(),
        "bitcoind stopped with it"
    );
    assert!(
        !check_pid_file(&devnet.data_dir),
        "the pid lock is released"
    );
    eprintln!("whole test {:.1} s", started.elapsed().as_secs_f32());
    Ok(())
}

fn check_pid_file(data_dir: &Path) -> bool {
    data_dir.join("devnet.pid").exists()
}
