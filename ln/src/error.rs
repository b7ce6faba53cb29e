//! Errors of the Lightning boundary.

use std::time::Duration;

use ldk_node::NodeError;

/// What went wrong talking to Lightning. Each variant says which operation failed, so the caller can
/// decide whether to retry (timeouts, no route yet) or give up (invalid input).
#[derive(Debug, thiserror::Error)]
pub enum LnError {
    /// The node could not be built from its configuration (bad storage dir, bad alias, bad seed).
    #[error("cannot build Lightning node {alias:?}: {reason}")]
    Build {
        /// The node's alias.
        alias: String,
        /// ldk-node's explanation.
        reason: String,
    },
    /// The node was built but would not start (chain source unreachable, listen address in use, ...).
    #[error("cannot start Lightning node {alias:?} (listening on {listen}): {source}")]
    Start {
        /// The node's alias.
        alias: String,
        /// The listen address, a common cause when already in use.
        listen: String,
        /// ldk-node's error.
        source: NodeError,
    },
    /// An ldk-node call failed.
    #[error("{op} failed: {source}")]
    Node {
        /// What we asked the node to do.
        op: &'static str,
        /// ldk-node's error.
        source: NodeError,
    },
    /// The text given is not a BOLT11 invoice, or is one for another network.
    #[error("invalid invoice: {0}")]
    InvalidInvoice(String),
    /// An invoice description that BOLT11 cannot carry (over 639 bytes).
    #[error("invalid invoice description: {0}")]
    InvalidDescription(String),
    /// An outgoing payment failed; the funds stay with the payer.
    #[error("payment {payment_hash} failed: {reason}")]
    PaymentFailed {
        /// The payment hash, hex.
        payment_hash: String,
        /// Why, as LDK reports it.
        reason: String,
    },
    /// Waited too long for something to happen.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What we were waiting for.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// The node was stopped while we were waiting for it.
    #[error("the Lightning node was stopped")]
    Stopped,
}

impl LnError {
    pub(crate) fn node(op: &'static str) -> impl FnOnce(NodeError) -> LnError {
        move |source| LnError::Node { op, source }
    }
}
