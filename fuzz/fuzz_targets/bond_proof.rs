//! Bond proofs as registrations and validators' files carry them (binary, and hex in JSON): decoding is
//! total and canonical (whatever decodes re-encodes to the same bytes), and a proof whose signature
//! verifies was signed by the owner key it names.
#![no_main]

use bitcoin::secp256k1::{Message, SECP256K1};
use boltensor_contracts::BondProof;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = BondProof::decode(data) {
        assert_eq!(proof.encode(), data);
        assert_eq!(BondProof::from_hex(&proof.to_hex()), Ok(proof.clone()));
        if proof.verify_signature().is_ok() {
            SECP256K1
                .verify_schnorr(
                    &proof.signature,
                    &Message::from_digest(proof.claims.digest()),
                    &proof.claims.owner,
                )
                .expect("verify_signature() said so");
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(proof) = BondProof::from_hex(s) {
            assert_eq!(proof.to_hex(), s.trim().to_ascii_lowercase());
        }
    }
});
