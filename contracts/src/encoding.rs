//! The byte reader behind every decoder in this crate, and the tagged hash every signature here signs.
//!
//! Decoders are total: any byte string gives a value or a [`DecodeError`], never a panic, and lengths read
//! from the input are checked against what is left before anything is allocated.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{schnorr, PublicKey, XOnlyPublicKey};

/// Why bytes are not a valid encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside `field`.
    #[error("truncated: the input ends inside {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Not the expected magic bytes: some other kind of data.
    #[error("not a {expected}: wrong magic bytes")]
    BadMagic {
        /// What was expected.
        expected: &'static str,
    },
    /// A version this code does not know.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// Bytes left over after a complete value: encodings here are exact.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A public key that is not a valid point.
    #[error("{field} is not a valid public key")]
    InvalidKey {
        /// Which key.
        field: &'static str,
    },
    /// A signature that is not 64 valid bytes.
    #[error("{field} is not a valid BIP-340 signature encoding")]
    InvalidSignature {
        /// Which signature.
        field: &'static str,
    },
    /// A tag byte with no meaning.
    #[error("unknown {field} tag {tag}")]
    UnknownTag {
        /// What the tag selects.
        field: &'static str,
        /// The byte.
        tag: u8,
    },
    /// Well-formed bytes that are not the one canonical encoding of their value.
    #[error("not canonical: {0}")]
    NotCanonical(&'static str),
    /// A field outside its allowed range.
    #[error("{field} out of range: {reason}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// Reads fields off the front of a byte slice.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn magic(
        &mut self,
        magic: &[u8],
        expected: &'static str,
    ) -> Result<(), DecodeError> {
        if self.take(magic.len(), expected)? != magic {
            return Err(DecodeError::BadMagic { expected });
        }
        Ok(())
    }

    pub(crate) fn x_only(&mut self, field: &'static str) -> Result<XOnlyPublicKey, DecodeError> {
        XOnlyPublicKey::from_slice(self.take(32, field)?)
            .map_err(|_| DecodeError::InvalidKey { field })
    }

    pub(crate) fn public_key(&mut self, field: &'static str) -> Result<PublicKey, DecodeError> {
        PublicKey::from_slice(self.take(33, field)?).map_err(|_| DecodeError::InvalidKey { field })
    }

    pub(crate) fn signature(
        &mut self,
        field: &'static str,
    ) -> Result<schnorr::Signature, DecodeError> {
        schnorr::Signature::from_slice(self.take(64, field)?)
            .map_err(|_| DecodeError::InvalidSignature { field })
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// BIP-340's tagged hash: SHA-256(SHA-256(tag) ‖ SHA-256(tag) ‖ msg). Each signed type has its own tag, so
/// a signature over one can never be replayed as another.
pub(crate) fn tagged_hash(tag: &str, msg: &[u8]) -> [u8; 32] {
    let t = sha256::Hash::hash(tag.as_bytes()).to_byte_array();
    let mut e = sha256::Hash::engine();
    e.input(&t);
    e.input(&t);
    e.input(msg);
    sha256::Hash::from_engine(e).to_byte_array()
}

/// Deterministic test keys (secret keys 2, 3, …; 1 is testenv's burn key).
#[cfg(test)]
pub(crate) fn test_keys(n: usize) -> Vec<bitcoin::secp256k1::Keypair> {
    (0..n)
        .map(|i| {
            let mut sk = [0u8; 32];
            sk[24..].copy_from_slice(&(i as u64 + 2).to_be_bytes());
            bitcoin::secp256k1::Keypair::from_seckey_slice(bitcoin::secp256k1::SECP256K1, &sk)
                .expect("small non-zero secret key")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation_and_trailing_bytes() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("a"), Ok(0x0102));
        assert_eq!(r.u16("b"), Err(DecodeError::Truncated { field: "b" }));
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8("a"), Ok(1));
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(2)));
    }

    #[test]
    fn tagged_hash_matches_bip340_construction() {
        // BIP-340's own challenge tag on an empty message, computed independently.
        let t = sha256::Hash::hash(b"BIP0340/challenge").to_byte_array();
        let mut buf = t.to_vec();
        buf.extend(t);
        assert_eq!(
            tagged_hash("BIP0340/challenge", b""),
            sha256::Hash::hash(&buf).to_byte_array()
        );
    }
}
