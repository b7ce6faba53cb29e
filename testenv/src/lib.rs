//! The real-daemon test environment, shared by every integration test and by the devnet (`devnet/`).
//!
//! Nothing here is a fake: [`Bitcoind`] is Bitcoin Core in regtest (built from the source that crates.io's
//! `libbitcoinkernel-sys` vendors, see `scripts/build-bitcoind.sh`), and [`TestNet`] starts real ldk-node
//! nodes against it, funds them with coinbase outputs and opens channels, polling with deadlines.
//! Everything is torn down on drop, also when a test panics.
//!
//! # Layout
//! - [`bitcoind`]: find the binary, start regtest on free ports, JSON-RPC, mine.
//! - [`net`]: [`TestNet`]: a bitcoind plus any number of named [`LnNode`](boltensor_ln::LnNode)s.
//! - [`wait`]: [`wait_for`], the one polling helper (no fixed sleeps).
//! - [`netem`]: [`EmuNet`](netem::EmuNet), hosts in network namespaces with delay, loss and cut links
//!   between them (a user-space switch over TUN devices).
//! - [`hostile`]: hostile HTTP input and the 4xx-with-a-JSON-error check of the bad-input tests.

pub mod bitcoind;
pub mod error;
pub mod hostile;
pub mod lnd_rest;
pub mod net;
pub mod netem;
pub mod wait;

pub use bitcoind::{locate_bitcoind, Bitcoind, BitcoindOptions, RpcClient};
pub use error::TestEnvError;
pub use net::TestNet;
pub use wait::wait_for;

/// Allocates a free TCP port on 127.0.0.1 for a daemon to listen on: a random one that binds now, from
/// 20000–32767, below Linux's ephemeral range (32768–60999), so that the many outgoing connections of a
/// test run (which take ephemeral ports) cannot take it before the daemon binds it. Never the same port
/// twice in one process: a devnet asks for a dozen ports before any daemon binds one, and two equal
/// draws make the second daemon fail to listen (ldk-node: `InvalidSocketAddress`, seen once here). Falls back to a port the
/// kernel picks.
pub fn free_port() -> std::io::Result<u16> {
    use std::hash::{BuildHasher, Hasher};
    const LOW: u64 = 20_000;
    const HIGH: u64 = 32_768;
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..200 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let port = (LOW + h.finish() % (HIGH - LOW)) as u16;
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return Ok(port);
        }
    }
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Checks that `port` on 127.0.0.1 is free, so a daemon about to use it does not fail obscurely.
pub fn ensure_port_free(port: u16, what: &str) -> Result<(), TestEnvError> {
    std::net::TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .map_err(|source| TestEnvError::PortInUse {
            port,
            what: what.to_owned(),
            source,
        })
}

/// 16 random bytes as hex, for RPC passwords.
pub fn random_hex() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(&mut bytes).is_ok() {
            return hex::encode(bytes);
        }
    }
    // No /dev/urandom: fall back on the std hasher's per-process random keys.
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// Whether `python3` can import `modules` (e.g. `"mcp, httpx2"`): the third-party clients the tests drive
/// (./dev installs them).
pub fn python_imports(modules: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .status()
        .is_ok_and(|s| s.success())
}

/// The Python checks that drive unmodified third-party clients (testenv/scripts/): PyPI `l402-requests`
/// paying a miner first (`MINER_URL LND_REST_URL [MACAROON]`), and the MCP Python SDK calling a proxy's
/// tools (`MCP_URL KEY`). Each prints one JSON object.
pub mod scripts {
    /// `l402_requests_check.py`.
    pub const L402_REQUESTS_CHECK: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/l402_requests_check.py"
    );
    /// `mcp_check.py`.
    pub const MCP_CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mcp_check.py");
}

/// Runs `python3 script args…` off the async runtime and parses the one JSON object it prints; its
/// stderr is in the error when it fails.
pub async fn python_json(
    script: &'static str,
    args: Vec<String>,
) -> Result<serde_json::Value, TestEnvError> {
    let name = script.rsplit('/').next().unwrap_or(script);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .args(args)
            .output()
    })
    .await
    .map_err(|e| TestEnvError::Devnet(format!("{name}: {e}")))?
    .map_err(|e| TestEnvError::Devnet(format!("{name}: running python3: {e}")))?;
    if !output.status.success() {
        return Err(TestEnvError::Devnet(format!(
            "{name} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        TestEnvError::Devnet(format!(
            "{name} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        ))
    })
}
