//! Bond-proof decoding is total and canonical: no input panics, and whatever decodes re-encodes to the
//! same bytes.
#![no_main]

use boltensor_contracts::BondProof;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = BondProof::decode(data) {
        assert_eq!(proof.encode(), data);
        let _ = proof.verify_signature();
    }
});
