//! [`TestNet`]: a regtest bitcoind and real ldk-node nodes, funded and connected by channels.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use boltensor_ln::{LnNode, NodeConfig};
use tempfile::TempDir;

use crate::{free_port, wait_for, Bitcoind, BitcoindOptions, TestEnvError};

/// Blocks that make a coinbase output spendable.
pub const COINBASE_MATURITY: u64 = 100;
/// Confirmations LDK wants before a channel is ready.
pub const CHANNEL_CONFIRMATIONS: u64 = 6;
/// How long set-up steps may take before a test fails with a timeout naming the step.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// A regtest bitcoind plus the Lightning nodes started on it, in one directory.
///
/// With [`TestNet::start`] the directory is temporary and everything is removed when the `TestNet` is
/// dropped (bitcoind is killed on drop, also when a test panics). Nodes are owned by the caller; drop or
/// [`LnNode::stop`] them before the `TestNet`.
#[derive(Debug)]
pub struct TestNet {
    /// The regtest bitcoind.
    pub bitcoind: Bitcoind,
    dir: PathBuf,
    _temp: Option<TempDir>,
}

impl TestNet {
    /// Starts bitcoind in regtest in a fresh temporary directory.
    pub async fn start() -> Result<Self, TestEnvError> {
        let temp = tempfile::Builder::new()
            .prefix("boltensor-testnet-")
            .tempdir()
            .map_err(TestEnvError::io("creating a temp dir"))?;
        let dir = temp.path().to_path_buf();
        let bitcoind = Bitcoind::start(BitcoindOptions::new(dir.join("bitcoind"))).await?;
        Ok(TestNet {
            bitcoind,
            dir,
            _temp: Some(temp),
        })
    }

    /// Wraps an already running bitcoind whose nodes live under `dir` (the devnet's data dir).
    pub fn with_bitcoind(bitcoind: Bitcoind, dir: impl Into<PathBuf>) -> Self {
        TestNet {
            bitcoind,
            dir: dir.into(),
            _temp: None,
        }
    }

    /// The directory holding bitcoind's and the nodes' data.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration of a regtest node named `alias` in this network, on a free port. Start it with
    /// [`LnNode::start`]; starting the same config again restarts the node from its storage.
    pub fn node_config(&self, alias: &str) -> Result<NodeConfig, TestEnvError> {
        let port = free_port().map_err(TestEnvError::io("finding a free port"))?;
        Ok(self.node_config_at(alias, SocketAddr::from(([127, 0, 0, 1], port))))
    }

    /// Like [`TestNet::node_config`] with a given listen address.
    pub fn node_config_at(&self, alias: &str, listen: SocketAddr) -> NodeConfig {
        NodeConfig::regtest(
            alias,
            self.dir.join("nodes").join(alias),
            listen,
            self.bitcoind.chain_source(),
        )
    }

    /// Starts a new node named `alias`.
    pub async fn node(&self, alias: &str) -> Result<LnNode, TestEnvError> {
        // A free port can still be taken by another test between choosing it and ldk-node binding it:
        // then the start fails on the bind, and a second port is tried.
        let mut tries = 0;
        loop {
            tries += 1;
            match LnNode::start(self.node_config(alias)?).await {
                Err(boltensor_ln::LnError::Start { .. }) if tries < 3 => continue,
                r => return Ok(r?),
            }
        }
    }

    /// Gives each node `outputs` coinbase outputs of 50 BTC (regtest reward before the first halving),
    /// matures them, and waits until every node sees spendable funds.
    pub async fn fund(&self, nodes: &[&LnNode], outputs: u64) -> Result<(), TestEnvError> {
        for node in nodes {
            let address = node.new_address()?;
            self.bitcoind.mine_to(outputs, &address).await?;
        }
        self.bitcoind.mine(COINBASE_MATURITY).await?;
        for node in nodes {
            wait_for(
                &format!("{} to see its coinbase funds", node.alias()),
                STEP_TIMEOUT,
                || async {
                    node.sync()?;
                    Ok((node.balances().spendable_onchain_sats > 0).then_some(()))
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Opens a channel `from` → `to` of `capacity_sats` (pushing `push_msat` to `to`), confirms it and
    /// waits until both sides can use it. Returns `from`'s channel id.
    pub async fn open_channel(
        &self,
        from: &LnNode,
        to: &LnNode,
        capacity_sats: u64,
        push_msat: u64,
    ) -> Result<u128, TestEnvError> {
        let (id, txid) = from
            .open_channel(to.node_id(), to.listen_addr(), capacity_sats, push_msat)
            .await?;
        self.bitcoind.wait_for_tx(txid, STEP_TIMEOUT).await?;
        self.bitcoind.mine(CHANNEL_CONFIRMATIONS).await?;
        self.wait_usable(&[(from, to)]).await?;
        Ok(id)
    }

    /// Syncs every node in `pairs` and waits until each first node has a usable channel to its second
    /// that it can send over right now (a channel is "usable" a moment before it can take an HTLC).
    pub async fn wait_usable(&self, pairs: &[(&LnNode, &LnNode)]) -> Result<(), TestEnvError> {
        for (a, b) in pairs {
            let what = format!("channel {} -> {} to be usable", a.alias(), b.alias());
            wait_for(&what, STEP_TIMEOUT, || async {
                a.sync()?;
                b.sync()?;
                let sendable = a.channels().iter().any(|c| {
                    c.counterparty == b.node_id() && c.is_usable && c.next_htlc_limit_msat > 0
                });
                let usable = b
                    .channels()
                    .iter()
                    .any(|c| c.counterparty == a.node_id() && c.is_usable);
                Ok((sendable && usable).then_some(()))
            })
            .await?;
        }
        Ok(())
    }
}
