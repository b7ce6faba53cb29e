//! The HTTP Payment authentication scheme (IETF draft-ryan-httpauth-payment-00) with the Lightning
//! `charge` method (draft-lightning-charge-00), as Aperture and PyPI `l402-requests` speak it, beside L402.
//!
//! A miner's 402 carries both challenges: `WWW-Authenticate: L402 macaroon="<token>", invoice="<bolt11>"`
//! and
//!
//! ```text
//! WWW-Authenticate: Payment id="<token>", realm="boltensor", method="lightning", intent="charge",
//!   request="<base64url of {"amount":"<sat>","currency":"sat","methodDetails":{"invoice":…,"network":…,
//!   "paymentHash":…}}>", expires="<RFC 3339>"
//! ```
//!
//! The challenge's `id` is the same signed token ([`crate::l402::PaymentClaims`]), so the credential
//! `Authorization: Payment <base64url {"challenge": {"id": …, …}, "payload": {"preimage": "<hex>"}}>`
//! is checked exactly as `L402 <token>:<preimage>`. The answer carries `Payment-Receipt: <base64url
//! {"challengeId", "method", "reference" (the payment hash), "status", "timestamp"}>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::l402::L402Error;

/// The scheme name.
pub const SCHEME: &str = "Payment";
/// The receipt header.
pub const RECEIPT_HEADER: &str = "payment-receipt";
/// The realm a miner names.
pub const REALM: &str = "boltensor";

/// One `Payment` challenge (method `lightning`, intent `charge`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentChallenge {
    /// The challenge id: the miner's signed token.
    pub id: String,
    /// The BOLT11 invoice.
    pub invoice: String,
    /// Its payment hash.
    pub payment_hash: [u8; 32],
    /// Its amount, msat.
    pub amount_msat: u64,
    /// `bitcoin`, `testnet`, `signet` or `regtest`.
    pub network: String,
    /// Unix seconds after which the challenge is void.
    pub expires_at: u64,
}

impl PaymentChallenge {
    /// The `request` parameter: base64url (no padding) of the JCS-canonical JSON (sorted keys, no
    /// spaces). `amount` is in whole sats and is left out when the price is not a whole number of sats
    /// (the invoice's amount is authoritative).
    pub fn request(&self) -> String {
        let mut details = json!({
            "invoice": self.invoice,
            "network": self.network,
            "paymentHash": hex::encode(self.payment_hash),
        });
        let mut req = json!({ "currency": "sat", "methodDetails": Value::Null });
        req["methodDetails"] = std::mem::take(&mut details);
        if self.amount_msat.is_multiple_of(1000) {
            req["amount"] = Value::String((self.amount_msat / 1000).to_string());
        }
        // serde_json's map is ordered by key: its compact output is the canonical form.
        URL_SAFE_NO_PAD.encode(req.to_string())
    }

    /// The `WWW-Authenticate` value.
    pub fn header_value(&self) -> String {
        format!(
            "{SCHEME} id=\"{}\", realm=\"{REALM}\", method=\"lightning\", intent=\"charge\", request=\"{}\", expires=\"{}\"",
            self.id,
            self.request(),
            rfc3339(self.expires_at)
        )
    }
}

/// `Authorization: Payment <credential>` answering challenge `id` with `preimage` (what a client sends;
/// the challenge's other parameters are not needed by a Boltensor miner and left out).
pub fn credential(id: &str, preimage: &[u8; 32]) -> String {
    let v = json!({
        "challenge": {"id": id, "method": "lightning", "intent": "charge"},
        "payload": {"preimage": hex::encode(preimage)},
    });
    format!("{SCHEME} {}", URL_SAFE_NO_PAD.encode(v.to_string()))
}

/// The token (the challenge's `id`) and the preimage of `Authorization: Payment <credential>`.
pub fn parse_credential(value: &str) -> Result<(String, [u8; 32]), L402Error> {
    let bad = || L402Error::MalformedAuthorization;
    let rest = value.trim().strip_prefix(SCHEME).ok_or_else(bad)?;
    let rest = rest.strip_prefix(' ').ok_or_else(bad)?.trim();
    let raw = URL_SAFE_NO_PAD
        .decode(rest.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let id = v["challenge"]["id"].as_str().ok_or_else(bad)?;
    if v["challenge"]["method"]
        .as_str()
        .is_some_and(|m| !m.eq_ignore_ascii_case("lightning"))
    {
        return Err(bad());
    }
    let preimage = v["payload"]["preimage"].as_str().ok_or_else(bad)?;
    let preimage: [u8; 32] = hex::decode(preimage)
        .map_err(|_| bad())?
        .try_into()
        .map_err(|_| bad())?;
    Ok((id.to_owned(), preimage))
}

/// The `Payment-Receipt` value for a request paid under challenge `id`.
pub fn receipt(id: &str, payment_hash: &[u8; 32], now: u64) -> String {
    let v = json!({
        "challengeId": id,
        "method": "lightning",
        "reference": hex::encode(payment_hash),
        "status": "success",
        "timestamp": rfc3339(now),
    });
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Unix seconds as RFC 3339 UTC (`2026-12-07T12:00:00Z`).
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_645_045), "2026-12-07T12:04:05Z");
    }

    #[test]
    fn a_credential_echoing_the_challenge_gives_its_token_and_preimage() {
        let c = PaymentChallenge {
            id: "tok".into(),
            invoice: "lnbcrt1".into(),
            payment_hash: [1; 32],
            amount_msat: 12_000,
            network: "regtest".into(),
            expires_at: 0,
        };
        let req: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c.request()).expect("b64"))
            .expect("json");
        assert_eq!(req["amount"], "12");
        assert_eq!(req["methodDetails"]["invoice"], "lnbcrt1");
        assert!(c
            .request()
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
        let cred = json!({
            "challenge": {"id": "tok", "method": "lightning", "intent": "charge", "request": c.request()},
            "payload": {"preimage": hex::encode([9u8; 32])},
        });
        let header = format!("Payment {}", URL_SAFE_NO_PAD.encode(cred.to_string()));
        assert_eq!(parse_credential(&header), Ok(("tok".into(), [9; 32])));
        assert_eq!(
            parse_credential(&credential("tok", &[9; 32])),
            Ok(("tok".into(), [9; 32]))
        );
        assert!(parse_credential("Payment !!").is_err());
        assert!(parse_credential("L402 x:y").is_err());
        let other = json!({"challenge": {"id": "tok", "method": "card"}, "payload": {"preimage": hex::encode([9u8; 32])}});
        assert!(parse_credential(&format!(
            "Payment {}",
            URL_SAFE_NO_PAD.encode(other.to_string())
        ))
        .is_err());
    }
}
