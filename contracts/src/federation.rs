//! [`Federation`]: the coordinators' keys and the threshold k that slashes bonds and spends the treasury.

use std::fmt::Write as _;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::XOnlyPublicKey;
use serde::{Deserialize, Serialize};

/// The most keys `multi_a` takes in one tapscript (Bitcoin Core's `MAX_PUBKEYS_PER_MULTI_A`).
pub const MAX_FEDERATION_KEYS: usize = 999;

/// Why a federation cannot be formed from the given keys and threshold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationError {
    /// No keys at all.
    #[error("a federation needs at least one key")]
    NoKeys,
    /// A threshold of zero would let anyone spend.
    #[error("the threshold must be at least 1")]
    ZeroThreshold,
    /// More signatures required than there are keys: nobody could ever spend.
    #[error("threshold {threshold} is above the number of keys ({keys})")]
    ThresholdAboveKeys {
        /// The requested threshold.
        threshold: usize,
        /// How many keys were given.
        keys: usize,
    },
    /// The same key twice would count twice towards the threshold.
    #[error("key {0} appears more than once")]
    DuplicateKey(XOnlyPublicKey),
    /// More keys than one `multi_a` can hold.
    #[error("{keys} keys, at most {max} fit in one multi_a")]
    TooManyKeys {
        /// How many keys were given.
        keys: usize,
        /// [`MAX_FEDERATION_KEYS`].
        max: usize,
    },
}

/// The federation file every member and bond owner shares: `{"threshold": k, "keys": ["<x-only hex>", …]}`
/// (keys in any order; [`Federation::from_json`] sorts them and refuses duplicates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationFile {
    /// k: signatures needed to slash a bond or pay from the treasury.
    pub threshold: usize,
    /// The members' x-only public keys (32 bytes, hex).
    pub keys: Vec<XOnlyPublicKey>,
}

/// Why a federation file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationFileError {
    /// Not JSON of the right shape (serde's message names the field and line).
    #[error("not a federation file ({{\"threshold\": k, \"keys\": [\"<x-only hex>\", …]}}): {0}")]
    Json(String),
    /// Valid JSON, but not a valid federation.
    #[error(transparent)]
    Invalid(#[from] FederationError),
}

/// The federation's k-of-n: its x-only keys, sorted (so every member derives the same scripts whatever
/// order its config lists them in), and the threshold k.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Federation {
    keys: Vec<XOnlyPublicKey>,
    threshold: usize,
}

impl Federation {
    /// A `threshold`-of-`keys.len()` federation. The keys are sorted; duplicates are refused.
    pub fn new(mut keys: Vec<XOnlyPublicKey>, threshold: usize) -> Result<Self, FederationError> {
        if keys.is_empty() {
            return Err(FederationError::NoKeys);
        }
        if keys.len() > MAX_FEDERATION_KEYS {
            return Err(FederationError::TooManyKeys {
                keys: keys.len(),
                max: MAX_FEDERATION_KEYS,
            });
        }
        if threshold == 0 {
            return Err(FederationError::ZeroThreshold);
        }
        if threshold > keys.len() {
            return Err(FederationError::ThresholdAboveKeys {
                threshold,
                keys: keys.len(),
            });
        }
        keys.sort();
        if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(FederationError::DuplicateKey(w[0]));
        }
        Ok(Federation { keys, threshold })
    }

    /// Parses a [`FederationFile`].
    pub fn from_json(text: &str) -> Result<Self, FederationFileError> {
        let f: FederationFile =
            serde_json::from_str(text).map_err(|e| FederationFileError::Json(e.to_string()))?;
        Ok(Federation::new(f.keys, f.threshold)?)
    }

    /// This federation as a [`FederationFile`].
    pub fn to_file(&self) -> FederationFile {
        FederationFile {
            threshold: self.threshold,
            keys: self.keys.clone(),
        }
    }

    /// This federation as [`FederationFile`] JSON (pretty-printed).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_file()).expect("keys and a number always serialize")
    }

    /// The Byzantine-tolerant threshold for `keys`: n − ⌊(n−1)/3⌋ (3 of 4, 5 of 7, …), the same quorum
    /// that makes an epoch result final.
    pub fn byzantine(keys: Vec<XOnlyPublicKey>) -> Result<Self, FederationError> {
        let n = keys.len();
        let k = n - n.saturating_sub(1) / 3;
        Federation::new(keys, k)
    }

    /// The keys, sorted.
    pub fn keys(&self) -> &[XOnlyPublicKey] {
        &self.keys
    }

    /// k: how many signatures a federation spend needs.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// n: how many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true: a federation has at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `key` is a member's key.
    pub fn contains(&self, key: &XOnlyPublicKey) -> bool {
        self.keys.binary_search(key).is_ok()
    }

    /// A short identifier: SHA-256 of k (u16 big-endian) and the sorted keys.
    pub fn id(&self) -> [u8; 32] {
        let mut e = sha256::Hash::engine();
        e.input(b"boltensor/federation/v1");
        e.input(&(self.threshold as u16).to_be_bytes());
        for k in &self.keys {
            e.input(&k.serialize());
        }
        sha256::Hash::from_engine(e).to_byte_array()
    }

    /// The miniscript fragment `multi_a(k,key1,…,keyn)`.
    pub(crate) fn multi_a(&self) -> String {
        let mut s = format!("multi_a({}", self.threshold);
        for k in &self.keys {
            // Writing to a String cannot fail.
            let _ = write!(s, ",{k}");
        }
        s.push(')');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::test_keys;

    #[test]
    fn refuses_bad_thresholds_and_duplicates() {
        let keys = test_keys(3);
        let xs: Vec<_> = keys.iter().map(|k| k.x_only_public_key().0).collect();
        assert_eq!(Federation::new(vec![], 1), Err(FederationError::NoKeys));
        assert_eq!(
            Federation::new(xs.clone(), 0),
            Err(FederationError::ZeroThreshold)
        );
        assert_eq!(
            Federation::new(xs.clone(), 4),
            Err(FederationError::ThresholdAboveKeys {
                threshold: 4,
                keys: 3
            })
        );
        assert_eq!(
            Federation::new(vec![xs[0], xs[1], xs[0]], 2),
            Err(FederationError::DuplicateKey(xs[0]))
        );
        let f = Federation::new(xs.clone(), 2).expect("valid");
        let mut rev = xs.clone();
        rev.reverse();
        assert_eq!(
            f,
            Federation::new(rev, 2).expect("valid"),
            "order-independent"
        );
        assert!(xs.iter().all(|k| f.contains(k)));
    }

    #[test]
    fn federation_file_round_trips_and_refuses_bad_input() {
        let xs: Vec<_> = test_keys(3)
            .iter()
            .map(|k| k.x_only_public_key().0)
            .collect();
        let f = Federation::new(xs.clone(), 2).expect("valid");
        assert_eq!(Federation::from_json(&f.to_json()).expect("parses"), f);
        let e = Federation::from_json(r#"{"threshold": 2, "keys": ["zz"]}"#).expect_err("bad hex");
        assert!(matches!(e, FederationFileError::Json(_)), "{e}");
        let json = format!(r#"{{"threshold": 4, "keys": ["{}", "{}"]}}"#, xs[0], xs[1]);
        let e = Federation::from_json(&json).expect_err("k > n");
        assert!(matches!(e, FederationFileError::Invalid(_)), "{e}");
    }

    #[test]
    fn byzantine_thresholds() {
        for (n, k) in [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (7, 5), (10, 7)] {
            let xs = test_keys(n)
                .iter()
                .map(|k| k.x_only_public_key().0)
                .collect();
            assert_eq!(Federation::byzantine(xs).expect("valid").threshold(), k);
        }
    }
}
