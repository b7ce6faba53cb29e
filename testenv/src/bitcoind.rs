//! Bitcoin Core in regtest: find the binary, start it on free ports, talk JSON-RPC, mine blocks.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{Address, CompressedPublicKey, Network, Txid};
use boltensor_ln::ChainSource;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::{ensure_port_free, free_port, TestEnvError};

/// The cache that `scripts/build-bitcoind.sh` builds into: `$BOLTENSOR_CACHE` or `~/.cache/boltensor`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BOLTENSOR_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("boltensor")
}

/// Finds bitcoind: `explicit` (from `--bitcoind`), then `$BITCOIND_EXE`, then the build cache
/// (`<cache>/bitcoin-core-*/bin/bitcoind`), then `$PATH`.
pub fn locate_bitcoind(explicit: Option<&Path>) -> Result<PathBuf, TestEnvError> {
    let given = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("BITCOIND_EXE").map(PathBuf::from));
    if let Some(path) = given {
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(TestEnvError::BitcoindNotExecutable { path })
        };
    }
    let cache = cache_dir();
    if let Ok(entries) = std::fs::read_dir(&cache) {
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("bitcoin-core-"))
            .map(|e| e.path().join("bin").join("bitcoind"))
            .filter(|p| is_executable(p))
            .collect();
        found.sort();
        if let Some(path) = found.pop() {
            return Ok(path);
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        if let Some(path) = std::env::split_paths(&paths)
            .map(|d| d.join("bitcoind"))
            .find(|p| is_executable(p))
        {
            return Ok(path);
        }
    }
    Err(TestEnvError::BitcoindNotFound {
        cache: cache.join("bitcoin-core-*/bin").display().to_string(),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// How to start a regtest bitcoind.
#[derive(Debug, Clone)]
pub struct BitcoindOptions {
    /// The binary; `None` finds it with [`locate_bitcoind`].
    pub exe: Option<PathBuf>,
    /// Its data directory (kept: reusing it resumes the chain).
    pub datadir: PathBuf,
    /// RPC port; `None` picks a free one.
    pub rpc_port: Option<u16>,
    /// RPC credentials; `None` generates a random password for user `boltensor`.
    pub rpc_auth: Option<(String, String)>,
}

impl BitcoindOptions {
    /// Defaults for a throw-away regtest node in `datadir`.
    pub fn new(datadir: impl Into<PathBuf>) -> Self {
        BitcoindOptions {
            exe: None,
            datadir: datadir.into(),
            rpc_port: None,
            rpc_auth: None,
        }
    }
}

/// A running regtest bitcoind, killed on drop.
#[derive(Debug)]
pub struct Bitcoind {
    child: Mutex<Option<Child>>,
    exe: PathBuf,
    datadir: PathBuf,
    rpc_port: u16,
    rpc: RpcClient,
}

impl Bitcoind {
    /// Starts bitcoind in regtest and waits until it answers RPC (up to 60 s).
    ///
    /// Refuses a port that is already in use, so a leftover bitcoind from a crashed run is never
    /// silently reused; reports bitcoind's last log lines if it exits during start-up.
    pub async fn start(opts: BitcoindOptions) -> Result<Self, TestEnvError> {
        let exe = locate_bitcoind(opts.exe.as_deref())?;
        std::fs::create_dir_all(&opts.datadir).map_err(TestEnvError::io(format!(
            "creating bitcoind datadir {}",
            opts.datadir.display()
        )))?;
        let rpc_port = match opts.rpc_port {
            Some(port) => {
                ensure_port_free(port, "bitcoind RPC")?;
                port
            }
            None => {
                // A port the OS just called free can be taken by a concurrent test before we check it
                // again: pick another rather than fail.
                let mut tries = 0;
                loop {
                    let port = free_port().map_err(TestEnvError::io("finding a free port"))?;
                    match ensure_port_free(port, "bitcoind RPC") {
                        Ok(()) => break port,
                        Err(e) if tries >= 10 => return Err(e),
                        Err(_) => tries += 1,
                    }
                }
            }
        };
        let (user, password) = opts
            .rpc_auth
            .clone()
            .unwrap_or_else(|| ("boltensor".to_owned(), crate::random_hex()));

        let child = spawn(&exe, &opts.datadir, rpc_port, &user, &password, false)?;
        tracing::info!(exe = %exe.display(), rpc_port, datadir = %opts.datadir.display(), pid = child.id(), "starting bitcoind");

        let log_path = opts.datadir.join(LOG_FILE);
        let bitcoind = Bitcoind {
            child: Mutex::new(Some(child)),
            exe,
            datadir: opts.datadir.clone(),
            rpc_port,
            rpc: RpcClient::new(format!("http://127.0.0.1:{rpc_port}"), user, password),
        };
        bitcoind.wait_ready(&log_path).await?;
        Ok(bitcoind)
    }

    async fn wait_ready(&self, log_path: &Path) -> Result<(), TestEnvError> {
        let timeout = Duration::from_secs(60);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Err(TestEnvError::BitcoindExited {
                    status,
                    log_tail: tail(log_path, 15),
                });
            }
            if self
                .rpc
                .call::<Value>("getblockchaininfo", json!([]))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(TestEnvError::Timeout {
                    what: format!(
                        "bitcoind to answer RPC on port {} (log: {})",
                        self.rpc_port,
                        log_path.display()
                    ),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn exited(&self) -> Option<String> {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let child = guard.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown: {e}")),
        }
    }

    /// The JSON-RPC client.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// The RPC port.
    pub fn rpc_port(&self) -> u16 {
        self.rpc_port
    }

    /// The data directory.
    pub fn datadir(&self) -> &Path {
        &self.datadir
    }

    /// The chain source for ldk-node nodes that should follow this bitcoind.
    pub fn chain_source(&self) -> ChainSource {
        ChainSource::BitcoindRpc {
            host: "127.0.0.1".into(),
            port: self.rpc_port,
            user: self.rpc.user.clone(),
            password: self.rpc.password.clone(),
        }
    }

    /// Current block height.
    pub async fn height(&self) -> Result<u64, TestEnvError> {
        self.rpc.call("getblockcount", json!([])).await
    }

    /// Mines `n` blocks paying their coinbase to `address`.
    pub async fn mine_to(&self, n: u64, address: &Address) -> Result<(), TestEnvError> {
        self.rpc
            .call::<Value>("generatetoaddress", json!([n, address.to_string()]))
            .await
            .map(drop)
    }

    /// Mines `n` blocks to an address nobody here controls (to confirm and mature other outputs).
    pub async fn mine(&self, n: u64) -> Result<(), TestEnvError> {
        self.mine_to(n, &burn_address()).await
    }

    /// Waits until `txid` is in the mempool (or already mined).
    pub async fn wait_for_tx(&self, txid: Txid, timeout: Duration) -> Result<(), TestEnvError> {
        crate::wait_for(
            &format!("transaction {txid} to reach bitcoind"),
            timeout,
            || async {
                let found = self
                    .rpc
                    .call::<Value>("getrawtransaction", json!([txid.to_string()]))
                    .await
                    .is_ok();
                Ok(found.then_some(()))
            },
        )
        .await
    }

    /// Stops bitcoind cleanly over RPC, killing it if it has not exited within 30 s.
    pub async fn stop(&self) {
        if self.exited().is_some() {
            return;
        }
        let _ = self.rpc.call::<Value>("stop", json!([])).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                tracing::info!(rpc_port = self.rpc_port, "bitcoind stopped");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.kill();
    }

    /// Starts bitcoind again on the same data dir, RPC port and credentials (stopping it cleanly first if
    /// it still runs) and waits until it answers RPC. The chain is kept; nodes following it see their
    /// chain source go away and come back, as in a bitcoind restart under a running network (fault tests).
    pub async fn restart(&self) -> Result<(), TestEnvError> {
        self.stop().await;
        self.kill(); // reaps the exited process
                     // The RPC port is released when the old process exits; a moment's grace for the OS.
        crate::wait_for(
            &format!("bitcoind's RPC port {} to be free again", self.rpc_port),
            Duration::from_secs(10),
            || async { Ok(ensure_port_free(self.rpc_port, "bitcoind RPC").ok()) },
        )
        .await?;
        let child = spawn(
            &self.exe,
            &self.datadir,
            self.rpc_port,
            &self.rpc.user,
            &self.rpc.password,
            true,
        )?;
        tracing::info!(
            rpc_port = self.rpc_port,
            pid = child.id(),
            "restarting bitcoind"
        );
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        self.wait_ready(&self.datadir.join(LOG_FILE)).await
    }

    fn kill(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = guard.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// bitcoind's console output, in its data dir.
const LOG_FILE: &str = "bitcoind.stdout.log";

/// Spawns regtest bitcoind; its console goes to [`LOG_FILE`] (truncated, or appended to with `append`).
fn spawn(
    exe: &Path,
    datadir: &Path,
    rpc_port: u16,
    user: &str,
    password: &str,
    append: bool,
) -> Result<Child, TestEnvError> {
    let log_path = datadir.join(LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&log_path)
        .map_err(TestEnvError::io(format!("creating {}", log_path.display())))?;
    let log_err = log
        .try_clone()
        .map_err(TestEnvError::io("duplicating a log handle"))?;
    Command::new(exe)
        .arg("-regtest")
        .arg("-server")
        .arg("-listen=0")
        .arg(format!("-datadir={}", datadir.display()))
        .arg(format!("-rpcport={rpc_port}"))
        .arg("-rpcbind=127.0.0.1")
        .arg("-rpcallowip=127.0.0.1")
        .arg(format!("-rpcuser={user}"))
        .arg(format!("-rpcpassword={password}"))
        .arg("-txindex=1")
        .arg("-printtoconsole=1")
        .arg("-rpcworkqueue=64")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|source| TestEnvError::BitcoindSpawn {
            path: exe.to_path_buf(),
            source,
        })
}

impl Drop for Bitcoind {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A regtest address whose key is public knowledge (secret key 1): for mining blocks nobody needs.
pub fn burn_address() -> Address {
    let secp = Secp256k1::signing_only();
    let sk = SecretKey::from_slice(&[1u8; 32]).expect("1 is a valid secret key");
    let pk = CompressedPublicKey(sk.public_key(&secp));
    Address::p2wpkh(&pk, Network::Regtest)
}

fn tail(path: &Path, lines: usize) -> String {
    let Ok(file) = std::fs::File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A minimal Bitcoin Core JSON-RPC client.
#[derive(Debug, Clone)]
pub struct RpcClient {
    url: String,
    user: String,
    password: String,
    http: reqwest::Client,
}

impl RpcClient {
    /// A client for `url` with basic auth.
    pub fn new(url: String, user: String, password: String) -> Self {
        RpcClient {
            url,
            user,
            password,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Calls `method` with `params` (a JSON array) and decodes the result.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, TestEnvError> {
        let err = |message: String| TestEnvError::Rpc {
            method: method.to_owned(),
            message,
        };
        let body = json!({"jsonrpc": "1.0", "id": "boltensor", "method": method, "params": params});
        let resp = self
            .http
            .post(&self.url)
            .basic_auth(&self.user, Some(&self.password))
            .json(&body)
            .send()
            .await
            .map_err(|e| err(format!("cannot reach {}: {e}", self.url)))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| err(e.to_string()))?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(err("401 Unauthorized: wrong RPC user or password".into()));
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| err(format!("HTTP {status}, not JSON-RPC: {text}")))?;
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(err(e.to_string()));
        }
        serde_json::from_value(v.get("result").cloned().unwrap_or(Value::Null))
            .map_err(|e| err(format!("unexpected result: {e}")))
    }
}
