//! Errors of the test environment: each says what to do about it.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong setting up or running the regtest network.
#[derive(Debug, thiserror::Error)]
pub enum TestEnvError {
    /// No bitcoind binary anywhere we look.
    #[error(
        "no bitcoind found (looked at $BITCOIND_EXE, {cache}, and $PATH).\n  \
         Build it once from the vendored source with:  scripts/build-bitcoind.sh\n  \
         or point BITCOIND_EXE (or --bitcoind) at an existing bitcoind."
    )]
    BitcoindNotFound {
        /// The cache directory we looked in.
        cache: String,
    },
    /// A path given as bitcoind is not an executable.
    #[error("{path} is not an executable bitcoind")]
    BitcoindNotExecutable {
        /// The path given.
        path: PathBuf,
    },
    /// The port a daemon needs is taken.
    #[error(
        "port {port} ({what}) is already in use: is another devnet or bitcoind running? ({source})"
    )]
    PortInUse {
        /// The port.
        port: u16,
        /// Who wanted it.
        what: String,
        /// The bind error.
        source: std::io::Error,
    },
    /// bitcoind could not be spawned.
    #[error("cannot run {path}: {source}")]
    BitcoindSpawn {
        /// The binary.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// bitcoind started but exited.
    #[error("bitcoind exited ({status}) before it was ready. Its last log lines:\n{log_tail}")]
    BitcoindExited {
        /// Exit status.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// A JSON-RPC call failed.
    #[error("bitcoind RPC {method} failed: {message}")]
    Rpc {
        /// The RPC method.
        method: String,
        /// What went wrong (transport or RPC error).
        message: String,
    },
    /// A Lightning node failed.
    #[error(transparent)]
    Ln(#[from] boltensor_ln::LnError),
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What we waited for.
        what: String,
        /// How long.
        after: Duration,
    },
    /// Filesystem trouble.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The devnet is misconfigured or not running.
    #[error("{0}")]
    Devnet(String),
}

impl TestEnvError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestEnvError {
        let what = what.into();
        move |source| TestEnvError::Io { what, source }
    }
}
