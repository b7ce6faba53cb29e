//! [`LnNode`]: one ldk-node node and the dispatcher that hands its events to whoever waits for them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldk_node::bitcoin::hashes::Hash;
use ldk_node::bitcoin::secp256k1::PublicKey;
use ldk_node::bitcoin::{Address, Txid};
use ldk_node::config::{AnchorChannelsConfig, Config};
use ldk_node::lightning::ln::channelmanager::PaymentId;
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Description};
use ldk_node::lightning_types::payment::{PaymentHash, PaymentPreimage};
use ldk_node::liquidity::LSPS2ServiceConfig;
use ldk_node::payment::{PaymentKind, PaymentStatus};
use ldk_node::{Builder, Event, Node, UserChannelId};
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{ChainSource, NodeConfig};
use crate::error::LnError;

/// The events of an [`LnNode`] that the rest of Boltensor acts on, in our own words.
///
/// Its `Debug` output redacts the preimage of [`LnEvent::PaymentSuccessful`]: events get logged.
#[derive(Clone, PartialEq, Eq)]
pub enum LnEvent {
    /// An outgoing payment settled: the preimage is the proof of payment.
    PaymentSuccessful {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// The preimage revealed by the payee.
        preimage: Option<PaymentPreimage>,
        /// Routing fees paid.
        fee_paid_msat: Option<u64>,
    },
    /// An outgoing payment failed; the funds are back with us.
    PaymentFailed {
        /// The payment hash, when known.
        payment_hash: Option<PaymentHash>,
        /// Why, as LDK reports it.
        reason: String,
    },
    /// An incoming payment was claimed and settled.
    PaymentReceived {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// What we received.
        amount_msat: u64,
    },
    /// An incoming payment to a hold invoice is held, waiting for [`LnNode::claim`] or [`LnNode::fail`].
    PaymentClaimable(Claimable),
    /// We forwarded a payment and earned a fee.
    PaymentForwarded {
        /// The fee earned.
        fee_earned_msat: Option<u64>,
        /// The amount forwarded to the next hop.
        outbound_amount_msat: Option<u64>,
    },
    /// A channel's funding transaction was broadcast.
    ChannelPending {
        /// Our id for the channel.
        user_channel_id: u128,
        /// The peer.
        counterparty: PublicKey,
        /// The funding transaction.
        funding_txid: Txid,
    },
    /// A channel is ready for payments.
    ChannelReady {
        /// Our id for the channel.
        user_channel_id: u128,
        /// The peer, when known.
        counterparty: Option<PublicKey>,
    },
    /// A channel closed.
    ChannelClosed {
        /// Our id for the channel.
        user_channel_id: u128,
        /// Why, as LDK reports it.
        reason: Option<String>,
    },
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn redact(p: &Option<PaymentPreimage>) -> Option<Redacted> {
    p.map(|_| Redacted)
}

impl std::fmt::Debug for LnEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LnEvent::PaymentSuccessful {
                payment_hash,
                preimage,
                fee_paid_msat,
            } => f
                .debug_struct("PaymentSuccessful")
                .field("payment_hash", payment_hash)
                .field("preimage", &redact(preimage))
                .field("fee_paid_msat", fee_paid_msat)
                .finish(),
            LnEvent::PaymentFailed {
                payment_hash,
                reason,
            } => f
                .debug_struct("PaymentFailed")
                .field("payment_hash", payment_hash)
                .field("reason", reason)
                .finish(),
            LnEvent::PaymentReceived {
                payment_hash,
                amount_msat,
            } => f
                .debug_struct("PaymentReceived")
                .field("payment_hash", payment_hash)
                .field("amount_msat", amount_msat)
                .finish(),
            LnEvent::PaymentClaimable(c) => f.debug_tuple("PaymentClaimable").field(c).finish(),
            LnEvent::PaymentForwarded {
                fee_earned_msat,
                outbound_amount_msat,
            } => f
                .debug_struct("PaymentForwarded")
                .field("fee_earned_msat", fee_earned_msat)
                .field("outbound_amount_msat", outbound_amount_msat)
                .finish(),
            LnEvent::ChannelPending {
                user_channel_id,
                counterparty,
                funding_txid,
            } => f
                .debug_struct("ChannelPending")
                .field("user_channel_id", user_channel_id)
                .field("counterparty", counterparty)
                .field("funding_txid", funding_txid)
                .finish(),
            LnEvent::ChannelReady {
                user_channel_id,
                counterparty,
            } => f
                .debug_struct("ChannelReady")
                .field("user_channel_id", user_channel_id)
                .field("counterparty", counterparty)
                .finish(),
            LnEvent::ChannelClosed {
                user_channel_id,
                reason,
            } => f
                .debug_struct("ChannelClosed")
                .field("user_channel_id", user_channel_id)
                .field("reason", reason)
                .finish(),
        }
    }
}

/// A payment held at this node, waiting to be claimed or failed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimable {
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// The amount held for us.
    pub amount_msat: u64,
    /// The block height by which it must be claimed or failed, or the channel may be force-closed.
    pub claim_deadline: Option<u32>,
}

/// The proof and cost of a settled outgoing payment (its `Debug` output redacts the preimage).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PaymentSent {
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// The preimage: proof that the payee was paid.
    pub preimage: Option<PaymentPreimage>,
    /// Routing fees paid on top of the amount.
    pub fee_paid_msat: u64,
}

impl std::fmt::Debug for PaymentSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSent")
            .field("payment_hash", &self.payment_hash)
            .field("preimage", &redact(&self.preimage))
            .field("fee_paid_msat", &self.fee_paid_msat)
            .finish()
    }
}

/// A node's funds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Balances {
    /// All on-chain funds, confirmed or not.
    pub onchain_sats: u64,
    /// On-chain funds that can be spent now (confirmed, less the anchor reserve).
    pub spendable_onchain_sats: u64,
    /// What we would get if every channel closed now (excludes fees the commitment pays).
    pub lightning_sats: u64,
}

/// An HTLC of a closed channel still to be resolved on chain, from the node's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnChainHtlc {
    /// The payment's hash.
    pub payment_hash: [u8; 32],
    /// What the output holds.
    pub amount_sats: u64,
    /// LDK's name for where it stands: `ContentiousClaimable` (we know the preimage, the counterparty can
    /// time it out later), `MaybeTimeoutClaimableHTLC` (ours again at its timeout unless the counterparty
    /// claims it), `MaybePreimageClaimableHTLC` (the counterparty's unless we learn the preimage).
    pub kind: &'static str,
}

/// One channel, as the rest of Boltensor needs to see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelInfo {
    /// LDK's channel id, hex.
    pub channel_id: String,
    /// Our id for the channel.
    pub user_channel_id: u128,
    /// The peer.
    pub counterparty: PublicKey,
    /// Capacity.
    pub capacity_sats: u64,
    /// What we can send now.
    pub outbound_msat: u64,
    /// What we can receive now.
    pub inbound_msat: u64,
    /// The largest HTLC we can add right now. Can be 0 while `is_usable` is true, e.g. just after a
    /// reconnect while a revocation is outstanding: a payment then fails with no route.
    pub next_htlc_limit_msat: u64,
    /// Whether we opened it.
    pub is_outbound: bool,
    /// Whether payments can use it now (ready and the peer connected).
    pub is_usable: bool,
    /// Confirmations of the funding transaction.
    pub confirmations: Option<u32>,
}

/// A peer the node knows: connected now, or persisted (reconnected after restarts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerInfo {
    /// The peer's node id.
    pub node_id: PublicKey,
    /// Its address (the connection's, else the persisted one), if it is an IP address.
    pub addr: Option<SocketAddr>,
    /// Whether it is connected now.
    pub connected: bool,
}

/// Where a payment stands in the node's payment store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentState {
    /// In flight (outgoing) or held / not yet paid (incoming).
    Pending,
    /// Settled.
    Succeeded,
    /// Failed; for an outgoing payment the funds are back with the payer.
    Failed,
}

/// One Lightning payment in a node's payment store ([`LnNode::payments`]), in our own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PaymentRecord {
    /// ldk-node's payment id (the payment hash for BOLT11 and keysend payments).
    #[serde(with = "hex32")]
    pub id: [u8; 32],
    /// The payment hash, when the kind has one.
    #[serde(with = "hex32_opt")]
    pub hash: Option<[u8; 32]>,
    /// Received (true) or sent.
    pub inbound: bool,
    /// A spontaneous (keysend) payment: epoch payouts.
    pub keysend: bool,
    /// Where it stands.
    pub state: PaymentState,
    /// Amount, msat (0 while unknown).
    pub amount_msat: u64,
    /// Routing fees paid (outgoing payments that succeeded), msat.
    pub fee_msat: u64,
    /// Last update, unix seconds.
    pub updated_at: u64,
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }

    pub(super) fn hex(v: &[u8; 32]) -> String {
        v.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(super) fn parse(s: &str) -> Option<[u8; 32]> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(out)
    }
}

mod hex32_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&super::hex32::hex(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => super::hex32::parse(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits")),
        }
    }
}

/// An outgoing payment in flight. Created by [`LnNode::send`]; await [`PendingPayment::outcome`].
pub struct PendingPayment {
    payment_hash: PaymentHash,
    events: broadcast::Receiver<LnEvent>,
    node: Arc<Node>,
}

impl std::fmt::Debug for PendingPayment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingPayment")
            .field("payment_hash", &self.payment_hash)
            .finish_non_exhaustive()
    }
}

impl PendingPayment {
    /// The payment's hash.
    pub fn payment_hash(&self) -> PaymentHash {
        self.payment_hash
    }

    /// Waits until the payment settles (the preimage is our proof) or fails (the funds are ours again).
    pub async fn outcome(mut self, timeout: Duration) -> Result<PaymentSent, LnError> {
        let hash = self.payment_hash;
        let deadline = Instant::now() + timeout;
        loop {
            // The payment store is the truth; events only wake us up. Checking it first also covers a
            // payment that finished before we subscribed, or events we missed when lagging.
            if let Some(done) = outcome_from_store(&self.node, hash) {
                return done;
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => {
                    return Err(LnError::Timeout {
                        what: format!("payment {hash} to settle or fail"),
                        after: timeout,
                    })
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err(LnError::Stopped),
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Ok(LnEvent::PaymentSuccessful {
                    payment_hash,
                    preimage,
                    fee_paid_msat,
                })) if payment_hash == hash => {
                    return Ok(PaymentSent {
                        payment_hash,
                        preimage,
                        fee_paid_msat: fee_paid_msat.unwrap_or(0),
                    })
                }
                Ok(Ok(LnEvent::PaymentFailed {
                    payment_hash: Some(payment_hash),
                    reason,
                })) if payment_hash == hash => {
                    return Err(LnError::PaymentFailed {
                        payment_hash: payment_hash.to_string(),
                        reason,
                    })
                }
                Ok(Ok(_)) => continue,
            }
        }
    }
}

fn outcome_from_store(node: &Node, hash: PaymentHash) -> Option<Result<PaymentSent, LnError>> {
    let details = node.payment(&PaymentId(hash.0))?;
    match details.status {
        PaymentStatus::Pending => None,
        PaymentStatus::Succeeded => {
            let preimage = match details.kind {
                PaymentKind::Bolt11 { preimage, .. } => preimage,
                _ => None,
            };
            Some(Ok(PaymentSent {
                payment_hash: hash,
                preimage,
                fee_paid_msat: details.fee_paid_msat.unwrap_or(0),
            }))
        }
        PaymentStatus::Failed => Some(Err(LnError::PaymentFailed {
            payment_hash: hash.to_string(),
            reason: "failed (see the payer's log for the reason)".into(),
        })),
    }
}

/// One Lightning node: ldk-node plus an event dispatcher.
///
/// Built with [`LnNode::start`]; stopped with [`LnNode::stop`] (or on drop). Restarting from the same
/// [`NodeConfig::storage_dir`] brings back its keys, channels and payments.
pub struct LnNode {
    inner: Arc<Node>,
    alias: String,
    listen: SocketAddr,
    events: broadcast::Sender<LnEvent>,
    claimable: Arc<Mutex<HashMap<PaymentHash, Claimable>>>,
    forwards: Arc<crate::forwards::ForwardLedger>,
    shutdown: watch::Sender<bool>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for LnNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LnNode")
            .field("alias", &self.alias)
            .field("node_id", &self.inner.node_id())
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl LnNode {
    /// Builds the node from `config` and starts it with its event dispatcher on the current tokio
    /// runtime (which must be multi-threaded).
    pub async fn start(config: NodeConfig) -> Result<Self, LnError> {
        let build_err = |reason: String| LnError::Build {
            alias: config.alias.clone(),
            reason,
        };
        std::fs::create_dir_all(&config.storage_dir).map_err(|e| {
            build_err(format!(
                "cannot create storage dir {}: {e}",
                config.storage_dir.display()
            ))
        })?;
        // ldk-node creates its seed 0600; one left readable by others is tightened before it is used.
        crate::secret_file::tighten_permissions(&config.storage_dir.join("keys_seed"))
            .map_err(|e| build_err(format!("cannot tighten keys_seed: {e}")))?;
        let forwards =
            Arc::new(crate::forwards::ForwardLedger::open(&config.storage_dir).map_err(build_err)?);
        let listen = SocketAddress::from_str(&config.listen.to_string())
            .map_err(|_| build_err(format!("bad listen address {}", config.listen)))?;

        let mut ldk = Config {
            storage_dir_path: config.storage_dir.to_string_lossy().into_owned(),
            network: config.network,
            listening_addresses: Some(vec![listen]),
            ..Config::default()
        };
        ldk.anchor_channels_config = Some(AnchorChannelsConfig {
            trusted_peers_no_reserve: config.trusted_peers_no_reserve.clone(),
            ..AnchorChannelsConfig::default()
        });

        let mut builder = Builder::from_config(ldk);
        builder.set_runtime(tokio::runtime::Handle::current());
        // ldk-node's log, through the `log` facade into our tracing subscriber, with preimages and
        // secrets taken out first (LDK logs "Claiming inbound HTLC … with preimage <hex>" at debug).
        builder.set_custom_logger(Arc::new(RedactingLogger));
        builder
            .set_node_alias(config.alias.clone())
            .map_err(|e| build_err(format!("bad alias: {e}")))?;
        if config.liquidity_provider {
            builder.set_liquidity_provider_lsps2(LSPS2ServiceConfig {
                require_token: None,
                advertise_service: false,
                channel_opening_fee_ppm: 10_000,
                channel_over_provisioning_ppm: 100_000,
                min_channel_opening_fee_msat: 10_000,
                min_channel_lifetime: 1008,
                max_client_to_self_delay: 2016,
                min_payment_size_msat: 10_000,
                max_payment_size_msat: 100_000_000,
                client_trusts_lsp: false,
            });
        }
        match &config.chain {
            ChainSource::BitcoindRpc {
                host,
                port,
                user,
                password,
            } => {
                builder.set_chain_source_bitcoind_rpc(
                    host.clone(),
                    *port,
                    user.clone(),
                    password.clone(),
                );
            }
            ChainSource::Esplora { url } => {
                builder.set_chain_source_esplora(url.clone(), None);
            }
        }
        let node = Arc::new(builder.build().map_err(|e| build_err(e.to_string()))?);
        node.start().map_err(|source| LnError::Start {
            alias: config.alias.clone(),
            listen: config.listen.to_string(),
            source,
        })?;
        tracing::info!(alias = %config.alias, node_id = %node.node_id(), listen = %config.listen, "lightning node started");

        let (events, _) = broadcast::channel(1024);
        let claimable = Arc::new(Mutex::new(HashMap::new()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let dispatcher = tokio::spawn(dispatch(
            Arc::clone(&node),
            config.alias.clone(),
            events.clone(),
            Arc::clone(&claimable),
            Arc::clone(&forwards),
            shutdown_rx,
        ));
        Ok(LnNode {
            inner: node,
            alias: config.alias,
            listen: config.listen,
            events,
            claimable,
            forwards,
            shutdown,
            dispatcher: Mutex::new(Some(dispatcher)),
        })
    }

    /// The node's public key, its identity on the Lightning network.
    pub fn node_id(&self) -> PublicKey {
        self.inner.node_id()
    }

    /// Signs `msg` with the node key (a Lightning signed message, zbase32): proves the holder of
    /// [`LnNode::node_id`] said it. Checked with [`crate::verify_message`].
    pub fn sign_message(&self, msg: &[u8]) -> String {
        self.inner.sign_message(msg)
    }

    /// The node's alias.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// Where the node accepts peer connections.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Subscribes to this node's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LnEvent> {
        self.events.subscribe()
    }

    /// A fresh on-chain address of the node's wallet.
    pub fn new_address(&self) -> Result<Address, LnError> {
        self.inner
            .onchain_payment()
            .new_address()
            .map_err(LnError::node("new on-chain address"))
    }

    /// Pays `amount_sats` from the node's on-chain wallet to `address` (e.g. a bond's address) at
    /// ldk-node's estimated fee rate, keeping the anchor-channel reserve; returns the broadcast txid.
    pub fn send_to_address(&self, address: &Address, amount_sats: u64) -> Result<Txid, LnError> {
        self.inner
            .onchain_payment()
            .send_to_address(address, amount_sats, None)
            .map_err(LnError::node("on-chain send"))
    }

    /// Syncs the on-chain and Lightning wallets with the chain source now (they also sync on a timer).
    pub fn sync(&self) -> Result<(), LnError> {
        self.inner
            .sync_wallets()
            .map_err(LnError::node("wallet sync"))
    }

    /// The node's funds.
    pub fn balances(&self) -> Balances {
        let b = self.inner.list_balances();
        Balances {
            onchain_sats: b.total_onchain_balance_sats,
            spendable_onchain_sats: b.spendable_onchain_balance_sats,
            lightning_sats: b.total_lightning_balance_sats,
        }
    }

    /// The HTLCs of closed channels still to be resolved on chain.
    pub fn on_chain_htlcs(&self) -> Vec<OnChainHtlc> {
        use ldk_node::LightningBalance as B;
        self.inner
            .list_balances()
            .lightning_balances
            .into_iter()
            .filter_map(|b| match b {
                B::ContentiousClaimable {
                    payment_hash,
                    amount_satoshis,
                    ..
                } => Some((payment_hash, amount_satoshis, "ContentiousClaimable")),
                B::MaybeTimeoutClaimableHTLC {
                    payment_hash,
                    amount_satoshis,
                    ..
                } => Some((payment_hash, amount_satoshis, "MaybeTimeoutClaimableHTLC")),
                B::MaybePreimageClaimableHTLC {
                    payment_hash,
                    amount_satoshis,
                    ..
                } => Some((payment_hash, amount_satoshis, "MaybePreimageClaimableHTLC")),
                _ => None,
            })
            .map(|(h, amount_sats, kind)| OnChainHtlc {
                payment_hash: h.0,
                amount_sats,
                kind,
            })
            .collect()
    }

    /// The node's channels.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.inner
            .list_channels()
            .into_iter()
            .map(|c| ChannelInfo {
                channel_id: c.channel_id.to_string(),
                user_channel_id: c.user_channel_id.0,
                counterparty: c.counterparty_node_id,
                capacity_sats: c.channel_value_sats,
                outbound_msat: c.outbound_capacity_msat,
                inbound_msat: c.inbound_capacity_msat,
                next_htlc_limit_msat: c.next_outbound_htlc_limit_msat,
                is_outbound: c.is_outbound,
                is_usable: c.is_usable,
                confirmations: c.confirmations,
            })
            .collect()
    }

    /// The peers the node knows, connected or persisted.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner
            .list_peers()
            .into_iter()
            .map(|p| PeerInfo {
                node_id: p.node_id,
                addr: p.address.to_string().parse().ok(),
                connected: p.is_connected,
            })
            .collect()
    }

    /// Connects to a peer (and, with `persist`, reconnects after restarts).
    pub fn connect(&self, peer: PublicKey, addr: SocketAddr, persist: bool) -> Result<(), LnError> {
        let addr = SocketAddress::from_str(&addr.to_string()).map_err(|_| LnError::Node {
            op: "connect",
            source: ldk_node::NodeError::InvalidSocketAddress,
        })?;
        self.inner
            .connect(peer, addr, persist)
            .map_err(LnError::node("connect"))
    }

    /// Opens an unannounced channel to `peer` and waits until its funding transaction is broadcast.
    /// Returns our channel id and the funding txid; the channel is usable after it confirms (6 blocks).
    pub async fn open_channel(
        &self,
        peer: PublicKey,
        addr: SocketAddr,
        capacity_sats: u64,
        push_msat: u64,
    ) -> Result<(u128, Txid), LnError> {
        self.open_channel_inner(peer, addr, capacity_sats, push_msat, false)
            .await
    }

    /// Like [`LnNode::open_channel`], but the channel is announced to the network (gossiped once it has
    /// 6 confirmations), so that payers further away can route through it: routes of more than two hops
    /// need their middle channels in the payer's network graph (`boltensor bench lightning`).
    pub async fn open_announced_channel(
        &self,
        peer: PublicKey,
        addr: SocketAddr,
        capacity_sats: u64,
        push_msat: u64,
    ) -> Result<(u128, Txid), LnError> {
        self.open_channel_inner(peer, addr, capacity_sats, push_msat, true)
            .await
    }

    async fn open_channel_inner(
        &self,
        peer: PublicKey,
        addr: SocketAddr,
        capacity_sats: u64,
        push_msat: u64,
        announced: bool,
    ) -> Result<(u128, Txid), LnError> {
        let mut events = self.subscribe();
        let addr = SocketAddress::from_str(&addr.to_string()).map_err(|_| LnError::Node {
            op: "open channel",
            source: ldk_node::NodeError::InvalidSocketAddress,
        })?;
        let opened = if announced {
            self.inner
                .open_announced_channel(peer, addr, capacity_sats, Some(push_msat), None)
        } else {
            self.inner
                .open_channel(peer, addr, capacity_sats, Some(push_msat), None)
        };
        let UserChannelId(id) = opened.map_err(LnError::node("open channel"))?;
        let timeout = Duration::from_secs(60);
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => {
                    return Err(LnError::Timeout {
                        what: format!("channel to {peer} to be funded"),
                        after: timeout,
                    })
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err(LnError::Stopped),
                Ok(Ok(LnEvent::ChannelPending {
                    user_channel_id,
                    funding_txid,
                    ..
                })) if user_channel_id == id => return Ok((id, funding_txid)),
                Ok(Ok(LnEvent::ChannelClosed {
                    user_channel_id,
                    reason,
                })) if user_channel_id == id => {
                    tracing::warn!(alias = %self.alias, %peer, reason = ?reason, "channel closed while opening");
                    return Err(LnError::Node {
                        op: "open channel",
                        source: ldk_node::NodeError::ChannelCreationFailed,
                    });
                }
                Ok(_) => continue,
            }
        }
    }

    /// An invoice for `amount_msat` that settles as soon as it is paid.
    pub fn invoice(
        &self,
        amount_msat: u64,
        description: &str,
        expiry_secs: u32,
    ) -> Result<Bolt11Invoice, LnError> {
        self.inner
            .bolt11_payment()
            .receive(amount_msat, &describe(description)?, expiry_secs)
            .map_err(LnError::node("create invoice"))
    }

    /// A hold invoice for `payment_hash`: a payment to it is held (see [`LnNode::wait_claimable`])
    /// until [`LnNode::claim`] with the preimage, or [`LnNode::fail`] returns it to the payer.
    pub fn hold_invoice(
        &self,
        payment_hash: PaymentHash,
        amount_msat: u64,
        description: &str,
        expiry_secs: u32,
    ) -> Result<Bolt11Invoice, LnError> {
        self.inner
            .bolt11_payment()
            .receive_for_hash(
                amount_msat,
                &describe(description)?,
                expiry_secs,
                payment_hash,
            )
            .map_err(LnError::node("create hold invoice"))
    }

    /// The payment held for `payment_hash`, if one is.
    pub fn claimable(&self, payment_hash: PaymentHash) -> Option<Claimable> {
        lock(&self.claimable).get(&payment_hash).copied()
    }

    /// Waits until a payment to the hold invoice for `payment_hash` is held here.
    pub async fn wait_claimable(
        &self,
        payment_hash: PaymentHash,
        timeout: Duration,
    ) -> Result<Claimable, LnError> {
        let mut events = self.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.claimable(payment_hash) {
                return Ok(c);
            }
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => {
                    return Err(LnError::Timeout {
                        what: format!("a payment to be held for {payment_hash}"),
                        after: timeout,
                    })
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err(LnError::Stopped),
                Ok(_) => continue,
            }
        }
    }

    /// Where the payment (incoming or outgoing) with `payment_hash` stands, if the node knows it.
    pub fn payment_state(&self, payment_hash: PaymentHash) -> Option<PaymentState> {
        let details = self.inner.payment(&PaymentId(payment_hash.0))?;
        Some(match details.status {
            PaymentStatus::Pending => PaymentState::Pending,
            PaymentStatus::Succeeded => PaymentState::Succeeded,
            PaymentStatus::Failed => PaymentState::Failed,
        })
    }

    /// Settles a held payment by revealing its preimage.
    pub fn claim(
        &self,
        payment_hash: PaymentHash,
        preimage: PaymentPreimage,
        amount_msat: u64,
    ) -> Result<(), LnError> {
        self.inner
            .bolt11_payment()
            .claim_for_hash(payment_hash, amount_msat, preimage)
            .map_err(LnError::node("claim held payment"))?;
        lock(&self.claimable).remove(&payment_hash);
        Ok(())
    }

    /// Fails a held payment back: the payer gets its funds back.
    pub fn fail(&self, payment_hash: PaymentHash) -> Result<(), LnError> {
        self.inner
            .bolt11_payment()
            .fail_for_hash(payment_hash)
            .map_err(LnError::node("fail held payment"))?;
        lock(&self.claimable).remove(&payment_hash);
        Ok(())
    }

    /// Forgets an unpaid hold invoice for `payment_hash`: a payment to it is refused from now on (failed
    /// back if it arrives) and the node's payment store no longer keeps it. For an invoice that expired
    /// unpaid, so that unpaid challenges do not grow the store. Best effort and idempotent.
    pub fn forget_invoice(&self, payment_hash: PaymentHash) {
        let id = PaymentId(payment_hash.0);
        match self.inner.payment(&id) {
            Some(details)
                if details.direction == ldk_node::payment::PaymentDirection::Inbound
                    && details.status != PaymentStatus::Succeeded =>
            {
                if details.status == PaymentStatus::Pending {
                    let _ = self.inner.bolt11_payment().fail_for_hash(payment_hash);
                }
                lock(&self.claimable).remove(&payment_hash);
                if let Err(e) = self.inner.remove_payment(&id) {
                    tracing::debug!(alias = %self.alias, %payment_hash, error = %e, "cannot forget an invoice");
                }
            }
            _ => {}
        }
    }

    /// How many payments the node's payment store holds.
    pub fn payment_count(&self) -> usize {
        self.inner.list_payments().len()
    }

    /// Starts paying `invoice`; await [`PendingPayment::outcome`] for the result.
    pub fn send(&self, invoice: &Bolt11Invoice) -> Result<PendingPayment, LnError> {
        let events = self.subscribe();
        let payment_hash = PaymentHash(invoice.payment_hash().to_byte_array());
        self.inner
            .bolt11_payment()
            .send(invoice, None)
            .map_err(LnError::node("send payment"))?;
        Ok(PendingPayment {
            payment_hash,
            events,
            node: Arc::clone(&self.inner),
        })
    }

    /// Starts a spontaneous (keysend) payment of `amount_msat` to `node_id` with a preimage the caller
    /// chooses. A deterministic preimage makes the payment idempotent: while a payment with the same
    /// hash is pending or succeeded, ldk-node refuses to send it again (`DuplicatePayment`), across
    /// restarts too (its payment store is persisted); only a failed one can be retried.
    pub fn keysend(
        &self,
        node_id: PublicKey,
        amount_msat: u64,
        preimage: PaymentPreimage,
    ) -> Result<PendingPayment, LnError> {
        let events = self.subscribe();
        let payment_hash = PaymentHash::from(preimage);
        self.inner
            .spontaneous_payment()
            .send_with_preimage(amount_msat, node_id, preimage, None)
            .map_err(LnError::node("send keysend payment"))?;
        Ok(PendingPayment {
            payment_hash,
            events,
            node: Arc::clone(&self.inner),
        })
    }

    /// Every Lightning payment this node knows (incoming and outgoing, any state), for audits.
    /// On-chain transactions are left out.
    pub fn payments(&self) -> Vec<PaymentRecord> {
        let mut out: Vec<PaymentRecord> = self
            .inner
            .list_payments()
            .into_iter()
            .filter_map(|p| {
                let (hash, keysend) = match &p.kind {
                    PaymentKind::Bolt11 { hash, .. } | PaymentKind::Bolt11Jit { hash, .. } => {
                        (Some(*hash), false)
                    }
                    PaymentKind::Spontaneous { hash, .. } => (Some(*hash), true),
                    PaymentKind::Bolt12Offer { hash, .. }
                    | PaymentKind::Bolt12Refund { hash, .. } => (*hash, false),
                    PaymentKind::Onchain { .. } => return None,
                };
                Some(PaymentRecord {
                    id: p.id.0,
                    hash: hash.map(|h| h.0),
                    inbound: p.direction == ldk_node::payment::PaymentDirection::Inbound,
                    keysend,
                    state: match p.status {
                        PaymentStatus::Pending => PaymentState::Pending,
                        PaymentStatus::Succeeded => PaymentState::Succeeded,
                        PaymentStatus::Failed => PaymentState::Failed,
                    },
                    amount_msat: p.amount_msat.unwrap_or(0),
                    fee_msat: p.fee_paid_msat.unwrap_or(0),
                    updated_at: p.latest_update_timestamp,
                })
            })
            .collect();
        out.sort_by_key(|p| (p.updated_at, p.id));
        out
    }

    /// What this node has forwarded and the fees it earned (its ledger, `<storage_dir>/forwards.json`).
    pub fn forwarded(&self) -> crate::Forwards {
        self.forwards.totals()
    }

    /// The sum of every incoming payment that succeeded, in msat.
    pub fn received_msat(&self) -> u64 {
        self.inner
            .list_payments_with_filter(|p| {
                p.direction == ldk_node::payment::PaymentDirection::Inbound
                    && p.status == PaymentStatus::Succeeded
            })
            .iter()
            .filter_map(|p| p.amount_msat)
            .sum()
    }

    /// The sum of incoming spontaneous (keysend) payments that succeeded, in msat — epoch payouts.
    pub fn received_keysend_msat(&self) -> u64 {
        self.inner
            .list_payments_with_filter(|p| {
                p.direction == ldk_node::payment::PaymentDirection::Inbound
                    && p.status == PaymentStatus::Succeeded
                    && matches!(p.kind, PaymentKind::Spontaneous { .. })
            })
            .iter()
            .filter_map(|p| p.amount_msat)
            .sum()
    }

    /// What this node has paid out over Lightning, msat: outgoing payments that succeeded or are still
    /// in flight (their amount is committed until they fail), with the routing fees they paid.
    pub fn spent_msat(&self) -> u64 {
        self.inner
            .list_payments_with_filter(|p| {
                p.direction == ldk_node::payment::PaymentDirection::Outbound
                    && p.status != PaymentStatus::Failed
                    && !matches!(p.kind, PaymentKind::Onchain { .. })
            })
            .iter()
            .map(|p| {
                p.amount_msat
                    .unwrap_or(0)
                    .saturating_add(p.fee_paid_msat.unwrap_or(0))
            })
            .sum()
    }

    /// Pays `invoice` and waits for the outcome.
    pub async fn pay(
        &self,
        invoice: &Bolt11Invoice,
        timeout: Duration,
    ) -> Result<PaymentSent, LnError> {
        self.send(invoice)?.outcome(timeout).await
    }

    /// Stops the dispatcher and the node. Idempotent.
    pub async fn stop(&self) {
        let _ = self.shutdown.send(true);
        let handle = lock(&self.dispatcher).take();
        if let Some(handle) = handle {
            let _ = handle.await;
            match self.inner.stop() {
                Ok(()) | Err(ldk_node::NodeError::NotRunning) => {}
                Err(e) => {
                    tracing::warn!(alias = %self.alias, error = %e, "stopping lightning node")
                }
            }
            tracing::info!(alias = %self.alias, "lightning node stopped");
        }
    }
}

impl Drop for LnNode {
    fn drop(&mut self) {
        // Best effort for callers that did not call stop() (a panicking test, say): stop the background
        // tasks so the storage dir is released.
        let _ = self.shutdown.send(true);
        if lock(&self.dispatcher).take().is_some() {
            let _ = self.inner.stop();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn describe(description: &str) -> Result<Bolt11InvoiceDescription, LnError> {
    Description::new(description.to_owned())
        .map(Bolt11InvoiceDescription::Direct)
        .map_err(|e| LnError::InvalidDescription(e.to_string()))
}

/// Parses a BOLT11 invoice from text.
pub fn parse_invoice(text: &str) -> Result<Bolt11Invoice, LnError> {
    Bolt11Invoice::from_str(text.trim()).map_err(|e| LnError::InvalidInvoice(e.to_string()))
}

async fn dispatch(
    node: Arc<Node>,
    alias: String,
    events: broadcast::Sender<LnEvent>,
    claimable: Arc<Mutex<HashMap<PaymentHash, Claimable>>>,
    forwards: Arc<crate::forwards::ForwardLedger>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            event = node.next_event_async() => event,
            _ = shutdown.changed() => break,
        };
        // Never `?event`: ldk-node's events carry preimages and payment secrets (docs/security.md,
        // row 15). The kind and the payment hash are what a log reader needs.
        let (kind, payment_hash) = summarize(&event);
        tracing::debug!(%alias, event = kind, payment_hash = ?payment_hash.map(|h| h.to_string()), "lightning event");
        let ours = translate(&event);
        if let Some(LnEvent::PaymentClaimable(c)) = &ours {
            lock(&claimable).insert(c.payment_hash, *c);
        }
        if let Some(LnEvent::PaymentReceived { payment_hash, .. }) = &ours {
            lock(&claimable).remove(payment_hash);
        }
        if let Some(LnEvent::PaymentForwarded {
            fee_earned_msat,
            outbound_amount_msat,
        }) = &ours
        {
            // Recorded before the event is marked handled: one not recorded is delivered again.
            if let Err(e) = forwards.record(
                fee_earned_msat.unwrap_or(0),
                outbound_amount_msat.unwrap_or(0),
            ) {
                tracing::error!(%alias, error = %e, "cannot record a forward; it will be delivered again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        }
        if let Err(e) = node.event_handled() {
            // The event will be replayed; the next round delivers it again.
            tracing::warn!(%alias, error = %e, "could not mark lightning event handled");
            continue;
        }
        if let Some(ours) = ours {
            // No receivers is fine: nobody is waiting for this one.
            let _ = events.send(ours);
        }
    }
}

/// ldk-node's log writer: each record goes to the `log` facade (which `tracing` picks up, with the
/// record's module as target, so `RUST_LOG` filters work as before) with secrets redacted.
struct RedactingLogger;

impl ldk_node::logger::LogWriter for RedactingLogger {
    fn log(&self, record: ldk_node::logger::LogRecord<'_>) {
        use ldk_node::logger::LogLevel;
        let level = match record.level {
            LogLevel::Gossip | LogLevel::Trace => log::Level::Trace,
            LogLevel::Debug => log::Level::Debug,
            LogLevel::Info => log::Level::Info,
            LogLevel::Warn => log::Level::Warn,
            LogLevel::Error => log::Level::Error,
        };
        let meta = log::Metadata::builder()
            .level(level)
            .target(record.module_path)
            .build();
        if !log::logger().enabled(&meta) {
            return;
        }
        let msg = redact_secrets(&record.args.to_string());
        log::logger().log(
            &log::Record::builder()
                .level(level)
                .target(record.module_path)
                .module_path(Some(record.module_path))
                .line(Some(record.line))
                .args(format_args!("{msg}"))
                .build(),
        );
    }
}

/// `msg` with every 64-hex-digit word replaced by `<redacted>` if the message speaks of a preimage or a
/// secret (payment hashes in such a line go too: better than a preimage in a log).
pub fn redact_secrets(msg: &str) -> String {
    let lower = msg.to_ascii_lowercase();
    if !(lower.contains("preimage") || lower.contains("secret")) {
        return msg.to_owned();
    }
    let mut out = String::with_capacity(msg.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 64 {
            out.push_str("<redacted>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in msg.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// An event's kind and payment hash: what may be logged of it (no preimage, no payment secret).
fn summarize(event: &Event) -> (&'static str, Option<PaymentHash>) {
    match event {
        Event::PaymentSuccessful { payment_hash, .. } => ("PaymentSuccessful", Some(*payment_hash)),
        Event::PaymentFailed { payment_hash, .. } => ("PaymentFailed", *payment_hash),
        Event::PaymentReceived { payment_hash, .. } => ("PaymentReceived", Some(*payment_hash)),
        Event::PaymentClaimable { payment_hash, .. } => ("PaymentClaimable", Some(*payment_hash)),
        Event::PaymentForwarded { .. } => ("PaymentForwarded", None),
        Event::ChannelPending { .. } => ("ChannelPending", None),
        Event::ChannelReady { .. } => ("ChannelReady", None),
        Event::ChannelClosed { .. } => ("ChannelClosed", None),
        Event::SplicePending { .. } => ("SplicePending", None),
        Event::SpliceFailed { .. } => ("SpliceFailed", None),
    }
}

fn translate(event: &Event) -> Option<LnEvent> {
    Some(match event {
        Event::PaymentSuccessful {
            payment_hash,
            payment_preimage,
            fee_paid_msat,
            ..
        } => LnEvent::PaymentSuccessful {
            payment_hash: *payment_hash,
            preimage: *payment_preimage,
            fee_paid_msat: *fee_paid_msat,
        },
        Event::PaymentFailed {
            payment_hash,
            reason,
            ..
        } => LnEvent::PaymentFailed {
            payment_hash: *payment_hash,
            reason: reason.map_or_else(|| "unknown".to_owned(), |r| format!("{r:?}")),
        },
        Event::PaymentReceived {
            payment_hash,
            amount_msat,
            ..
        } => LnEvent::PaymentReceived {
            payment_hash: *payment_hash,
            amount_msat: *amount_msat,
        },
        Event::PaymentClaimable {
            payment_hash,
            claimable_amount_msat,
            claim_deadline,
            ..
        } => LnEvent::PaymentClaimable(Claimable {
            payment_hash: *payment_hash,
            amount_msat: *claimable_amount_msat,
            claim_deadline: *claim_deadline,
        }),
        Event::PaymentForwarded {
            total_fee_earned_msat,
            outbound_amount_forwarded_msat,
            ..
        } => LnEvent::PaymentForwarded {
            fee_earned_msat: *total_fee_earned_msat,
            outbound_amount_msat: *outbound_amount_forwarded_msat,
        },
        Event::ChannelPending {
            user_channel_id,
            counterparty_node_id,
            funding_txo,
            ..
        } => LnEvent::ChannelPending {
            user_channel_id: user_channel_id.0,
            counterparty: *counterparty_node_id,
            funding_txid: funding_txo.txid,
        },
        Event::ChannelReady {
            user_channel_id,
            counterparty_node_id,
            ..
        } => LnEvent::ChannelReady {
            user_channel_id: user_channel_id.0,
            counterparty: *counterparty_node_id,
        },
        Event::ChannelClosed {
            user_channel_id,
            reason,
            ..
        } => LnEvent::ChannelClosed {
            user_channel_id: user_channel_id.0,
            reason: reason.as_ref().map(|r| r.to_string()),
        },
        _ => return None,
    })
}
