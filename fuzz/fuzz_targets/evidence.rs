//! Slashing evidence: decoding is total and canonical, checking decoded evidence never panics, and
//! proven equivocation names the validator that signed both vectors, for their epoch.
#![no_main]

use boltensor_contracts::{Evidence, OffenceKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(evidence) = Evidence::decode(data) {
        assert_eq!(evidence.encode(), data);
        match (&evidence, evidence.verify(Some([0; 32]))) {
            (Evidence::Equivocation(e), Ok(offence)) => {
                assert_eq!(offence.offender.serialize(), e.first.vector.validator);
                assert_eq!(offence.offender.serialize(), e.second.vector.validator);
                assert_eq!(
                    offence.kind,
                    OffenceKind::Equivocation {
                        epoch: e.first.vector.epoch
                    }
                );
                assert_ne!(e.first.vector, e.second.vector);
                assert_eq!(e.first.verify(), Ok(()));
                assert_eq!(e.second.verify(), Ok(()));
            }
            (Evidence::RefutedResponse(r), Ok(offence)) => {
                assert_eq!(offence.offender, r.miner);
                assert_eq!(r.verify(), Ok(()));
            }
            (_, Err(_)) => {}
        }
    }
});
