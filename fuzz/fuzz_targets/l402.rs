//! L402 as a miner and a client read it from the wire: the `WWW-Authenticate` challenge, the
//! `Authorization` header (L402, and the HTTP Payment scheme's credential), payment tokens and credit
//! notes (verified with the miner's key, and unverified as a client reads them). Nothing panics; whatever
//! parses re-encodes to what parses the same; a token that verifies is exactly the one the miner would
//! have signed.
#![no_main]

use boltensor_fuzz::L402_KEY;
use boltensor_protocol::l402::{
    parse_authorization, payment_hash_of, Challenge, CreditNote, PaymentClaims,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(c) = Challenge::parse(s) {
        assert_eq!(Challenge::parse(&c.header_value()), Ok(c.clone()));
        // A client reads the token in the challenge without the key.
        let _ = PaymentClaims::decode_unverified(&c.token);
    }

    if let Ok((token, preimage)) = parse_authorization(s) {
        let again = match preimage {
            Some(p) => format!("L402 {token}:{}", hex::encode(p)),
            None => format!("L402 {token}"),
        };
        assert_eq!(parse_authorization(&again), Ok((token.clone(), preimage)));
        if let Some(p) = preimage {
            let _ = payment_hash_of(&p);
        }
        // The miner's paid path: the token from the header, verified.
        let _ = PaymentClaims::verify(&token, &L402_KEY);
    }

    // The Payment scheme's credential: its token (the challenge id) goes the same way as L402's.
    if let Ok((token, preimage)) = boltensor_protocol::payment_auth::parse_credential(s) {
        let _ = payment_hash_of(&preimage);
        let _ = PaymentClaims::verify(&token, &L402_KEY);
    }

    match PaymentClaims::verify(s, &L402_KEY) {
        Ok(claims) => {
            assert_eq!(claims.sign(&L402_KEY), s.trim(), "one token per claims");
            assert_eq!(PaymentClaims::decode_unverified(s), Ok(claims));
        }
        Err(_) => {
            if let Ok(claims) = PaymentClaims::decode_unverified(s) {
                let token = claims.sign(&L402_KEY);
                assert_eq!(PaymentClaims::verify(&token, &L402_KEY), Ok(claims));
            }
        }
    }
    match CreditNote::verify(s, &L402_KEY) {
        Ok(note) => {
            assert_eq!(note.sign(&L402_KEY), s.trim(), "one token per note");
            assert_eq!(CreditNote::decode_unverified(s), Ok(note));
        }
        Err(_) => {
            if let Ok(note) = CreditNote::decode_unverified(s) {
                let token = note.sign(&L402_KEY);
                assert_eq!(CreditNote::verify(&token, &L402_KEY), Ok(note));
            }
        }
    }
});
