//! L402 as Boltensor speaks it: the payment challenge, the miner's signed token, and credit notes.
//!
//! A miner answers an unpaid request with
//! `402` + `WWW-Authenticate: L402 macaroon="<token>", invoice="<bolt11>"` (the standard L402 header shape, so
//! existing L402 tooling parses it). The token is **not a macaroon**: it is a fixed-layout record
//! ([`PaymentClaims`]) followed by an HMAC-SHA256 tag under a key only the miner holds, base64url-encoded.
//! It binds the payment hash, the price, an expiry, the miner's node id and a digest of the request, and
//! optionally a [`CreditNote`] being redeemed. The client repeats the request with
//! `Authorization: L402 <token>` (or the classic `L402 <token>:<preimage-hex>`).
//!
//! See docs/paid-requests.md for the message sequence.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bitcoin::hashes::{hmac, sha256, Hash, HashEngine};

/// The header a miner's 402 carries.
pub const CHALLENGE_HEADER: &str = "www-authenticate";
/// Request header carrying a credit note to redeem.
pub const CREDIT_HEADER: &str = "x-boltensor-credit";
/// Response header: the price paid, msat.
pub const PRICE_HEADER: &str = "x-boltensor-price-msat";
/// Response header: the payment hash, hex.
pub const PAYMENT_HASH_HEADER: &str = "x-boltensor-payment-hash";
/// Response header: the credit redeemed in this request, msat.
pub const CREDIT_USED_HEADER: &str = "x-boltensor-credit-used-msat";
/// Response header: a new credit note for the unused part of the reservation.
pub const NEW_CREDIT_HEADER: &str = "x-boltensor-new-credit";
/// Response header: the new credit note's value, msat.
pub const NEW_CREDIT_MSAT_HEADER: &str = "x-boltensor-new-credit-msat";

/// A streamed chat's credit note, known only once the model finished: an SSE comment line just before
/// `data: [DONE]` (`: x-boltensor-new-credit <note> <msat>`), which SSE clients (the OpenAI SDKs
/// included) skip, and which the paying client reads.
pub fn stream_credit_line(note: &str, msat: u64) -> String {
    format!(": {NEW_CREDIT_HEADER} {note} {msat}\n\n")
}

/// The credit note and its msat in one SSE line written by [`stream_credit_line`] (without its line
/// end), if it is one.
pub fn parse_stream_credit_line(line: &str) -> Option<(&str, u64)> {
    let rest = line.strip_prefix(": ")?.strip_prefix(NEW_CREDIT_HEADER)?;
    let mut parts = rest.split_ascii_whitespace();
    let note = parts.next()?;
    let msat = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((note, msat))
}

/// Why an L402 header or token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum L402Error {
    /// The header is not `L402 macaroon="…", invoice="…"`.
    #[error("malformed L402 challenge: {0}")]
    MalformedChallenge(String),
    /// The Authorization header is not `L402 <token>[:<preimage>]`.
    #[error(
        "malformed Authorization header: expected `L402 <token>` or `L402 <token>:<preimage hex>`"
    )]
    MalformedAuthorization,
    /// Not base64url, wrong length or unknown version/kind.
    #[error("malformed token: {0}")]
    MalformedToken(&'static str),
    /// The HMAC does not verify: tampered with, or minted by someone else.
    #[error("token signature does not verify (tampered, or not issued by this miner)")]
    BadSignature,
}

const VERSION: u8 = 1;
const KIND_PAYMENT: u8 = 1;
const KIND_CREDIT: u8 = 2;
const MAC_LEN: usize = 32;

/// What a payment token asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentClaims {
    /// The hold invoice's payment hash.
    pub payment_hash: [u8; 32],
    /// The invoice amount.
    pub price_msat: u64,
    /// Unix seconds after which the token is refused.
    pub expires_at: u64,
    /// The miner's Lightning node id (compressed public key).
    pub miner: [u8; 33],
    /// [`request_digest`] of the request it pays for.
    pub request_digest: [u8; 32],
    /// The credit note redeemed towards this price (all zero: none).
    pub credit_id: [u8; 16],
    /// The amount of that credit applied.
    pub credit_msat: u64,
}

const PAYMENT_LEN: usize = 2 + 32 + 8 + 8 + 33 + 32 + 16 + 8;

impl PaymentClaims {
    fn to_bytes(self) -> Vec<u8> {
        let mut b = Vec::with_capacity(PAYMENT_LEN);
        b.extend([VERSION, KIND_PAYMENT]);
        b.extend(self.payment_hash);
        b.extend(self.price_msat.to_be_bytes());
        b.extend(self.expires_at.to_be_bytes());
        b.extend(self.miner);
        b.extend(self.request_digest);
        b.extend(self.credit_id);
        b.extend(self.credit_msat.to_be_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Result<Self, L402Error> {
        if b.len() != PAYMENT_LEN {
            return Err(L402Error::MalformedToken(
                "wrong length for a payment token",
            ));
        }
        if b[0] != VERSION || b[1] != KIND_PAYMENT {
            return Err(L402Error::MalformedToken("not a version-1 payment token"));
        }
        let mut r = Reader(&b[2..]);
        Ok(PaymentClaims {
            payment_hash: r.array(),
            price_msat: r.u64(),
            expires_at: r.u64(),
            miner: r.array(),
            request_digest: r.array(),
            credit_id: r.array(),
            credit_msat: r.u64(),
        })
    }

    /// Signs the claims with the miner's key: the token string.
    pub fn sign(self, key: &[u8; 32]) -> String {
        seal(self.to_bytes(), key)
    }

    /// Decodes and verifies a token string against the miner's key.
    pub fn verify(token: &str, key: &[u8; 32]) -> Result<Self, L402Error> {
        Self::from_bytes(&open(token, key, PAYMENT_LEN)?)
    }

    /// Decodes a token without verifying it: what a client can read (it cannot check the tag).
    pub fn decode_unverified(token: &str) -> Result<Self, L402Error> {
        let raw = decode(token)?;
        if raw.len() != PAYMENT_LEN + MAC_LEN {
            return Err(L402Error::MalformedToken(
                "wrong length for a payment token",
            ));
        }
        Self::from_bytes(&raw[..PAYMENT_LEN])
    }
}

/// A miner's signed promise to take `amount_msat` off a later price: how the unused part of a
/// generation's reservation comes back (docs/adr/0008-reservations-and-credit-notes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditNote {
    /// Unique id (the miner records it as spent when redeemed).
    pub id: [u8; 16],
    /// Value.
    pub amount_msat: u64,
    /// Unix seconds after which it is refused.
    pub expires_at: u64,
    /// The miner that issued it.
    pub miner: [u8; 33],
}

const CREDIT_LEN: usize = 2 + 16 + 8 + 8 + 33;

impl CreditNote {
    fn to_bytes(self) -> Vec<u8> {
        let mut b = Vec::with_capacity(CREDIT_LEN);
        b.extend([VERSION, KIND_CREDIT]);
        b.extend(self.id);
        b.extend(self.amount_msat.to_be_bytes());
        b.extend(self.expires_at.to_be_bytes());
        b.extend(self.miner);
        b
    }

    fn from_bytes(b: &[u8]) -> Result<Self, L402Error> {
        if b.len() != CREDIT_LEN {
            return Err(L402Error::MalformedToken("wrong length for a credit note"));
        }
        if b[0] != VERSION || b[1] != KIND_CREDIT {
            return Err(L402Error::MalformedToken("not a version-1 credit note"));
        }
        let mut r = Reader(&b[2..]);
        Ok(CreditNote {
            id: r.array(),
            amount_msat: r.u64(),
            expires_at: r.u64(),
            miner: r.array(),
        })
    }

    /// Signs the note with the miner's key.
    pub fn sign(self, key: &[u8; 32]) -> String {
        seal(self.to_bytes(), key)
    }

    /// Decodes and verifies a note against the miner's key.
    pub fn verify(token: &str, key: &[u8; 32]) -> Result<Self, L402Error> {
        Self::from_bytes(&open(token, key, CREDIT_LEN)?)
    }

    /// Decodes a note without verifying it (for clients keeping their credit).
    pub fn decode_unverified(token: &str) -> Result<Self, L402Error> {
        let raw = decode(token)?;
        if raw.len() != CREDIT_LEN + MAC_LEN {
            return Err(L402Error::MalformedToken("wrong length for a credit note"));
        }
        Self::from_bytes(&raw[..CREDIT_LEN])
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        head.try_into().expect("split_at gives N bytes")
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }
}

fn mac(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let mut engine = hmac::HmacEngine::<sha256::Hash>::new(key);
    engine.input(msg);
    hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array()
}

fn seal(mut bytes: Vec<u8>, key: &[u8; 32]) -> String {
    let tag = mac(key, &bytes);
    bytes.extend(tag);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode(token: &str) -> Result<Vec<u8>, L402Error> {
    if token.len() > 1024 {
        return Err(L402Error::MalformedToken("too long"));
    }
    URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| L402Error::MalformedToken("not base64url"))
}

fn open(token: &str, key: &[u8; 32], len: usize) -> Result<Vec<u8>, L402Error> {
    let mut raw = decode(token)?;
    if raw.len() != len + MAC_LEN {
        return Err(L402Error::MalformedToken("wrong length"));
    }
    let tag = raw.split_off(len);
    // Constant-time comparison of the tags.
    let expected = mac(key, &raw);
    let diff = expected
        .iter()
        .zip(&tag)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return Err(L402Error::BadSignature);
    }
    Ok(raw)
}

/// The digest a token binds: SHA-256 over the method, the path and the exact body bytes.
pub fn request_digest(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(method.as_bytes());
    engine.input(b" ");
    engine.input(path.as_bytes());
    engine.input(b"\n");
    engine.input(body);
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// The parsed `WWW-Authenticate: L402 macaroon="…", invoice="…"` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The token (in the header's `macaroon` field, as L402 tooling expects).
    pub token: String,
    /// The BOLT11 invoice.
    pub invoice: String,
}

impl Challenge {
    /// The header value.
    pub fn header_value(&self) -> String {
        format!(
            "L402 macaroon=\"{}\", invoice=\"{}\"",
            self.token, self.invoice
        )
    }

    /// Parses a header value; also accepts the older `LSAT` scheme name and `token=` for `macaroon=`.
    pub fn parse(value: &str) -> Result<Self, L402Error> {
        let value = value.trim();
        let rest = value
            .strip_prefix("L402 ")
            .or_else(|| value.strip_prefix("LSAT "))
            .ok_or_else(|| L402Error::MalformedChallenge("scheme is not L402".into()))?;
        let mut token = None;
        let mut invoice = None;
        for part in rest.split(',') {
            let (k, v) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| L402Error::MalformedChallenge(format!("bad parameter {part:?}")))?;
            let v = v.trim().trim_matches('"').to_owned();
            match k.trim() {
                "macaroon" | "token" => token = Some(v),
                "invoice" => invoice = Some(v),
                _ => {}
            }
        }
        match (token, invoice) {
            (Some(token), Some(invoice)) => Ok(Challenge { token, invoice }),
            _ => Err(L402Error::MalformedChallenge(
                "needs macaroon=\"…\" and invoice=\"…\"".into(),
            )),
        }
    }
}

/// Parses `Authorization: L402 <token>` or `L402 <token>:<preimage hex>`.
pub fn parse_authorization(value: &str) -> Result<(String, Option<[u8; 32]>), L402Error> {
    let value = value.trim();
    let rest = value
        .strip_prefix("L402 ")
        .or_else(|| value.strip_prefix("LSAT "))
        .ok_or(L402Error::MalformedAuthorization)?
        .trim();
    match rest.split_once(':') {
        None if !rest.is_empty() => Ok((rest.to_owned(), None)),
        None => Err(L402Error::MalformedAuthorization),
        Some((token, preimage)) => {
            let bytes = hex::decode(preimage).map_err(|_| L402Error::MalformedAuthorization)?;
            let preimage: [u8; 32] = bytes
                .try_into()
                .map_err(|_| L402Error::MalformedAuthorization)?;
            Ok((token.to_owned(), Some(preimage)))
        }
    }
}

/// The payment hash of a preimage.
pub fn payment_hash_of(preimage: &[u8; 32]) -> [u8; 32] {
    sha256::Hash::hash(preimage).to_byte_array()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_stream_credit_line_reads_back() {
        let line = stream_credit_line("abc.def", 7000);
        assert!(line.ends_with("\n\n"));
        assert_eq!(
            parse_stream_credit_line(line.trim_end()),
            Some(("abc.def", 7000))
        );
        assert_eq!(parse_stream_credit_line("data: [DONE]"), None);
        assert_eq!(
            parse_stream_credit_line(": x-boltensor-new-credit abc"),
            None
        );
        assert_eq!(
            parse_stream_credit_line(": x-boltensor-new-credit abc 1 2"),
            None
        );
    }

    use super::*;

    fn claims() -> PaymentClaims {
        PaymentClaims {
            payment_hash: [1; 32],
            price_msat: 21_000,
            expires_at: 1_900_000_000,
            miner: [2; 33],
            request_digest: request_digest("POST", "/v1/embeddings", b"{}"),
            credit_id: [0; 16],
            credit_msat: 0,
        }
    }

    #[test]
    fn tokens_round_trip_and_detect_tampering() {
        let key = [7; 32];
        let token = claims().sign(&key);
        assert_eq!(PaymentClaims::verify(&token, &key), Ok(claims()));
        assert_eq!(PaymentClaims::decode_unverified(&token), Ok(claims()));
        assert_eq!(
            PaymentClaims::verify(&token, &[8; 32]),
            Err(L402Error::BadSignature)
        );
        // Flip one bit of the price.
        let mut raw = URL_SAFE_NO_PAD.decode(&token).expect("b64");
        raw[40] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(
            PaymentClaims::verify(&tampered, &key),
            Err(L402Error::BadSignature)
        );
        // A credit note is not a payment token.
        let note = CreditNote {
            id: [3; 16],
            amount_msat: 5,
            expires_at: 1,
            miner: [2; 33],
        };
        let note_token = note.sign(&key);
        assert_eq!(CreditNote::verify(&note_token, &key), Ok(note));
        assert!(PaymentClaims::verify(&note_token, &key).is_err());
        assert!(PaymentClaims::verify("not a token!", &key).is_err());
    }

    #[test]
    fn headers_round_trip() {
        let c = Challenge {
            token: "abc".into(),
            invoice: "lnbcrt1".into(),
        };
        assert_eq!(Challenge::parse(&c.header_value()), Ok(c));
        assert!(Challenge::parse("Bearer x").is_err());
        assert_eq!(parse_authorization("L402 abc"), Ok(("abc".into(), None)));
        let pre = hex::encode([9u8; 32]);
        assert_eq!(
            parse_authorization(&format!("L402 abc:{pre}")),
            Ok(("abc".into(), Some([9; 32])))
        );
        assert!(parse_authorization("L402 abc:zz").is_err());
        assert!(parse_authorization("L402 ").is_err());
    }

    #[test]
    fn decoding_arbitrary_text_never_panics() {
        for s in ["", "A", "AAAA", &"A".repeat(2000), "!!!!", "L402"] {
            let _ = PaymentClaims::decode_unverified(s);
            let _ = CreditNote::decode_unverified(s);
            let _ = Challenge::parse(s);
            let _ = parse_authorization(s);
        }
    }
}
