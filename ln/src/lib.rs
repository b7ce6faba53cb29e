//! The one place in Boltensor that moves money over Lightning.
//!
//! Every role (miner, validator, coordinator, client) runs an [`LnNode`]: an ldk-node node with an event
//! dispatcher of our own, so callers await the outcome of *their* payment (by hash) instead of sharing
//! ldk-node's single event queue. The rest of the workspace speaks to Lightning only through this
//! crate's small interface; ldk-node's types do not leak beyond the few re-exported here.
//!
//! # Layout
//! - [`config`]: [`NodeConfig`] and [`ChainSource`] (a regtest bitcoind, an operator's own node, Esplora).
//! - [`node`]: [`LnNode`]: start/stop, on-chain address and sync, channels, BOLT11 and hold invoices,
//!   balances, and [`LnEvent`]s.
//! - [`error`]: [`LnError`], one flat enum whose variants say what failed and why.
//! - [`message`]: Lightning signed messages (a node proving its node id).
//! - [`forwards`]: the node's forwarding income ([`Forwards`]), recorded from ldk-node's events.
//! - [`secret_file`]: secret files are `0600`; [`secret_file::tighten_permissions`] fixes a loose one.
//!
//! ldk-node's synchronous calls use `tokio::task::block_in_place`: run this crate on a multi-thread
//! tokio runtime.

pub mod config;
pub mod error;
pub mod forwards;
pub mod message;
pub mod node;
pub mod secret_file;

pub use config::{ChainSource, NodeConfig};
pub use error::LnError;
pub use forwards::Forwards;
pub use message::{sign_message_with_key, verify_message};
pub use node::{
    parse_invoice, Balances, ChannelInfo, Claimable, LnEvent, LnNode, OnChainHtlc, PaymentRecord,
    PaymentSent, PaymentState, PeerInfo, PendingPayment,
};

pub use ldk_node::bitcoin::secp256k1::PublicKey;
pub use ldk_node::bitcoin::{self, Address, Network};
pub use ldk_node::lightning_invoice::Bolt11Invoice;
pub use ldk_node::lightning_types::payment::{PaymentHash, PaymentPreimage};
