//! Evidence decoding is total and canonical, and checking decoded evidence never panics.
#![no_main]

use boltensor_contracts::Evidence;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(evidence) = Evidence::decode(data) {
        assert_eq!(evidence.encode(), data);
        let _ = evidence.verify(Some([0; 32]));
    }
});
