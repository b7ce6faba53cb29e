//! Boltensor's shared protocol: the types every role agrees on.
//!
//! This crate does no IO. Later it holds the wire types (registrations, signed weight vectors, epoch
//! results), their canonical encodings and signatures, and the Yuma epoch math that coordinators run.
//!
//! # Layout
//! - [`Role`]: the four roles of a Boltensor network.
//! - [`openai`]: the OpenAI-compatible request and response bodies miners serve and clients send.
//! - [`l402`]: the L402 payment challenge, the miner's signed token, and credit notes (docs/paid-requests.md).
//! - [`weights`]: validators' BIP-340-signed weight vectors, the receiving inbox, equivocation evidence.
//! - [`yuma`]: Bittensor's Yuma consensus epoch, ported bit for bit from subtensor (docs/yuma.md).

pub mod l402;
pub mod openai;
pub mod payment_auth;
pub mod weights;
pub mod yuma;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The roles a node plays in a Boltensor network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A federation member: registry, consensus, routing, payouts. Routes clients' payments to miners.
    Coordinator,
    /// Serves inference behind an OpenAI-compatible API; paid per request.
    Miner,
    /// Bonds bitcoin, pays miners for challenge requests, signs weight vectors.
    Validator,
    /// Pays per inference through a local OpenAI-compatible proxy.
    Client,
}

impl Role {
    /// Every role, in the order a network is usually listed.
    pub const ALL: [Role; 4] = [
        Role::Coordinator,
        Role::Miner,
        Role::Validator,
        Role::Client,
    ];

    /// The lower-case name used in configs, node names and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Miner => "miner",
            Role::Validator => "validator",
            Role::Client => "client",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The error for a string that names no role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRole(pub String);

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown role {:?}: expected coordinator, miner, validator or client",
            self.0
        )
    }
}

impl std::error::Error for UnknownRole {}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            let json = serde_json::to_string(&role).expect("serialises");
            assert_eq!(json, format!("\"{role}\""));
        }
        assert_eq!(
            "validatr".parse::<Role>(),
            Err(UnknownRole("validatr".into()))
        );
    }
}
