//! Four `boltensor coordinator run` processes on one regtest bitcoind, for the tests that drive the real
//! binary (coordinator_cli, miner_register, faults_federation). Killed (SIGKILL) on drop.
#![allow(dead_code)] // Each test binary uses part of it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use boltensor_audit::Payout;
use boltensor_coordinator::store::SignedEpoch;
use boltensor_coordinator::{CoordinatorConfig, FederationConfig};
use boltensor_ln::ChainSource;
use boltensor_testenv::{free_port, wait_for};
use serde_json::Value;

pub mod payees;

pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_boltensor"))
}

/// A base port with the 8 ports after it free.
pub fn free_block() -> u16 {
    for _ in 0..50 {
        let base = free_port().expect("a free port");
        if base > 60_000 {
            continue;
        }
        if (0..8).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no block of 8 free ports");
}

/// Four `boltensor coordinator run` processes on one regtest bitcoind; killed (SIGKILL) on drop.
pub struct Federation {
    pub dir: PathBuf,
    pub base: u16,
    pub rpc: (u16, String, String),
    /// Extra arguments per member (member 0's `--ln-listen`).
    pub extra: Vec<Vec<String>>,
    pub procs: Vec<Option<Child>>,
    pub starts: Vec<usize>,
    pub http: reqwest::Client,
    /// Each member's API URL (from federation.json).
    pub apis: Vec<String>,
    /// The bitcoind RPC URL the members use (loopback; a forwarder's when they run in namespaces).
    pub rpc_url: String,
    /// Each member's network namespace, if it runs in one (`ip netns exec`).
    pub netns: Vec<Option<String>>,
}

impl Drop for Federation {
    fn drop(&mut self) {
        for c in self.procs.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Federation {
    /// `coordinator init` in `dir` (four members, 10 rounds of 60 ms per session, `init_args` added), on
    /// `bitcoind`; returns the federation (nothing running yet) and what `init` printed.
    pub fn init(
        dir: &Path,
        bitcoind: &boltensor_testenv::Bitcoind,
        init_args: &[&str],
    ) -> Result<(Federation, String)> {
        let ChainSource::BitcoindRpc {
            port,
            user,
            password,
            ..
        } = bitcoind.chain_source()
        else {
            unreachable!("regtest bitcoind")
        };
        let base = free_block();
        let out = bin()
            .args(["coordinator", "init", "--members", "4"])
            .args(["--rounds-per-session", "10", "--round-delay-ms", "60"])
            .args(init_args)
            .arg(format!("--base-port={base}"))
            .arg(format!("--dir={}", dir.join("fed").display()))
            .output()?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        let apis = CoordinatorConfig::load(&dir.join("fed").join("member-0"))?
            .federation
            .members
            .iter()
            .map(|m| format!("http://{}", m.api))
            .collect();
        let fed = Federation {
            dir: dir.to_path_buf(),
            base,
            rpc_url: format!("http://127.0.0.1:{port}"),
            rpc: (port, user, password),
            extra: vec![Vec::new(); 4],
            procs: (0..4).map(|_| None).collect(),
            starts: vec![0; 4],
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            apis,
            netns: vec![None; 4],
        };
        Ok((fed, String::from_utf8_lossy(&out.stdout).into_owned()))
    }

    /// Spawns every member.
    pub fn spawn_all(&mut self) -> Result {
        (0..4).try_for_each(|i| self.spawn(i))
    }

    pub fn member_dir(&self, i: usize) -> PathBuf {
        self.dir.join("fed").join(format!("member-{i}"))
    }

    pub fn config(&self) -> Result<FederationConfig> {
        Ok(CoordinatorConfig::load(&self.member_dir(0))?.federation)
    }

    pub fn log(&self, i: usize) -> PathBuf {
        self.dir.join(format!("member-{i}.{}.log", self.starts[i]))
    }

    pub fn spawn(&mut self, i: usize) -> Result {
        self.starts[i] += 1;
        let log = std::fs::File::create(self.log(i))?;
        let (_, user, pass) = &self.rpc;
        let mut cmd = match &self.netns[i] {
            None => bin(),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns])
                    .arg(env!("CARGO_BIN_EXE_boltensor"));
                c
            }
        };
        let child = cmd
            .args(["coordinator", "run"])
            .arg(format!("--dir={}", self.member_dir(i).display()))
            .arg(format!("--rpc-url={}", self.rpc_url))
            .arg(format!("--rpc-user={user}"))
            .arg(format!("--rpc-pass={pass}"))
            .args(&self.extra[i])
            .env("RUST_LOG", "boltensor_coordinator=info,warn")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?;
        self.procs[i] = Some(child);
        Ok(())
    }

    /// kill -9.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn api(&self, i: usize) -> String {
        self.apis[i].clone()
    }

    pub async fn get(&self, i: usize, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.api(i)))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
    }

    pub async fn post(&self, i: usize, path: &str, body: &Value) -> Result<u16> {
        let r = self
            .http
            .post(format!("{}{path}", self.api(i)))
            .json(body)
            .send()
            .await?;
        Ok(r.status().as_u16())
    }

    pub async fn status(&self, i: usize) -> Option<(u64, u64)> {
        let s = self.get(i, "/v1/status").await?;
        Some((s["session"].as_u64()?, s["epoch"].as_u64()?))
    }

    pub async fn epoch(&self, i: usize, e: u64) -> Option<SignedEpoch> {
        serde_json::from_value(self.get(i, &format!("/v1/epochs/{e}")).await?).ok()
    }

    pub async fn wait_epoch(
        &self,
        who: &[usize],
        e: u64,
        timeout: Duration,
    ) -> Result<Vec<SignedEpoch>> {
        let mut out = Vec::new();
        for &i in who {
            let r = wait_for(
                &format!("member {i} to sign epoch {e}"),
                timeout,
                || async { Ok(self.epoch(i, e).await) },
            )
            .await
            .map_err(|err| format!("{err}; member {i}'s log:\n{}", self.log_tail(i)))?;
            out.push(r);
        }
        Ok(out)
    }

    pub fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.log(i)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The federation's receipts at member `i` (`GET /v1/payouts`).
    pub async fn receipts(&self, i: usize) -> Result<Vec<Payout>> {
        let p = self.get(i, "/v1/payouts").await.ok_or("no /v1/payouts")?;
        let receipts: std::collections::BTreeMap<String, String> =
            serde_json::from_value(p["receipts"].clone())?;
        Ok(Payout::from_receipts(&receipts)?)
    }

    /// Payouts still owed at member `i` (`epoch:key` → msat).
    pub async fn owed(&self, i: usize) -> Result<std::collections::BTreeMap<String, u64>> {
        let p = self.get(i, "/v1/payouts").await.ok_or("no /v1/payouts")?;
        Ok(serde_json::from_value(p["owed_msat"].clone())?)
    }
}
