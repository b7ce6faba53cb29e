//! How an [`LnNode`](crate::LnNode) is configured.

use std::net::SocketAddr;
use std::path::PathBuf;

use ldk_node::bitcoin::secp256k1::PublicKey;
use ldk_node::bitcoin::Network;
use serde::{Deserialize, Serialize};

/// Where a node learns about the chain and broadcasts transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainSource {
    /// Bitcoin Core's JSON-RPC: the devnet's regtest bitcoind, or an operator's own node on any network.
    BitcoindRpc {
        /// Host name or IP of the RPC server.
        host: String,
        /// RPC port (regtest 18443, signet 38332, mainnet 8332 by default in Bitcoin Core).
        port: u16,
        /// RPC user (`rpcuser`), or `__cookie__` with the cookie file's password.
        user: String,
        /// RPC password.
        password: String,
    },
    /// An Esplora HTTP API, for operators without their own bitcoind.
    Esplora {
        /// Base URL, e.g. `https://mempool.space/signet/api`.
        url: String,
    },
}

/// Everything needed to build one Lightning node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// A short name shown in logs and as the node alias (at most 32 bytes).
    pub alias: String,
    /// Directory with the node's seed, channel state and payment store. Reusing it restarts the node.
    pub storage_dir: PathBuf,
    /// The Bitcoin network.
    pub network: Network,
    /// Where the node accepts Lightning peer connections.
    pub listen: SocketAddr,
    /// The chain source.
    pub chain: ChainSource,
    /// Peers whose inbound anchor channels are accepted without keeping an on-chain reserve (by default
    /// ldk-node wants 25,000 sats on-chain per anchor channel, or it quietly opens a legacy channel).
    pub trusted_peers_no_reserve: Vec<PublicKey>,
    /// Act as a Lightning service provider (LSPS2): forward payments into peers' unannounced channels
    /// (LDK refuses that by default with `PrivateChannelForward`) and sell just-in-time channels. Set
    /// for coordinators, which route every client's payment to the miners behind them.
    #[serde(default)]
    pub liquidity_provider: bool,
}

impl NodeConfig {
    /// A regtest node using bitcoind's RPC, with defaults for everything else.
    pub fn regtest(
        alias: impl Into<String>,
        storage_dir: impl Into<PathBuf>,
        listen: SocketAddr,
        chain: ChainSource,
    ) -> Self {
        NodeConfig {
            alias: alias.into(),
            storage_dir: storage_dir.into(),
            network: Network::Regtest,
            listen,
            chain,
            trusted_peers_no_reserve: Vec::new(),
            liquidity_provider: false,
        }
    }
}
