//! Bonds, the federation treasury and slashing evidence in Bitcoin Script: descriptors, PSBTs, proofs.
//!
//! Apart from [`chain`] (a bitcoind JSON-RPC client) and [`KeyWallet::fund`], this crate does no IO. It builds the scripts (as miniscript descriptors), the PSBTs that spend them,
//! signs what it is given keys for, encodes and checks bond proofs and slashing evidence. The chain is
//! whatever the caller passes as a [`ChainView`]; broadcasting is the caller's job. Every spending path is
//! proven against a real regtest bitcoind in `tests/` (docs/contracts.md, ADR 0007).
//!
//! # Layout
//! - [`federation`]: [`Federation`], the k-of-n of coordinator keys (sorted, deduplicated).
//! - [`bond`]: [`Bond`], `tr(NUMS,{and_v(v:pk(owner),older(T)),multi_a(k,fed…)})`, and [`BondPolicy`], when
//!   a bond counts as stake.
//! - [`treasury`]: [`Treasury`], `tr(NUMS,multi_a(k,fed…))`.
//! - [`spend`]: the PSBTs: withdraw (owner after T), slash (federation → treasury), cooperative exit,
//!   treasury payout; [`sign_psbt`] and [`finalize_psbt`].
//! - [`proof`]: [`BondProof`], binding an outpoint to a node id and registration key, signed by the owner
//!   (BIP-340 over a canonical encoding); [`verify_bond_proof`] against a [`ChainView`].
//! - [`evidence`]: [`Evidence`] of slashable misbehaviour (equivocating weight vectors, a refuted signed
//!   response), its canonical encoding and checks.
//! - [`chain`]: [`BitcoindRpc`], the chain as a real bitcoind sees it (UTXO set snapshots for
//!   [`ChainView`], proof verification, broadcasting, `scantxoutset`), with clear errors.
//! - [`wallet`]: [`KeyWallet`], the owner key's single-key taproot wallet that funds bonds.
//! - [`encoding`]: the byte reader every decoder here uses (total: any input gives a value or an error).

pub mod bond;
pub mod chain;
pub mod encoding;
pub mod evidence;
pub mod federation;
pub mod proof;
pub mod spend;
pub mod treasury;
pub mod wallet;

pub use bond::{
    nums_internal_key, Bond, BondError, BondPath, BondPolicy, PolicyError, NUMS_INTERNAL_KEY_HEX,
};
pub use chain::{BitcoindRpc, ChainError, ChainSnapshot, RpcAuth, VerifyError};
pub use encoding::DecodeError;
pub use evidence::{
    decode_weight_vector, verify_equivocation, verify_refutation, Evidence, EvidenceError, Offence,
    OffenceKind, SignedResponse, RESPONSE_DOMAIN,
};
pub use federation::{
    Federation, FederationError, FederationFile, FederationFileError, MAX_FEDERATION_KEYS,
};
pub use proof::{
    verify_bond_proof, BondClaims, BondProof, ChainView, ProofError, VerifiedBond, PROOF_LEN,
};
pub use spend::{
    cooperative_exit_psbt, finalize_psbt, sign_psbt, slash_psbt, treasury_payout_psbt,
    withdraw_psbt, FinalizeError, SignError, SpendError, Utxo,
};
pub use treasury::{Treasury, TreasuryError};
pub use wallet::{FundError, Funding, KeyWallet};

/// The miniscript crate this crate builds on (12.x, the line bdk_wallet 2.x uses), for callers that need
/// its types (descriptors, PSBT extensions) without a second copy.
pub use miniscript;
