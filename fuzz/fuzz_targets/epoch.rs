//! Signed epochs as `GET /v1/epochs/{n}` serves them and validators and `boltensor federation
//! verify-epoch` check them, and signed sessions as a lagging member fetches them from a peer
//! (`GET /v1/sessions/{n}`). Decoding, recomputation (every weight signature, Yuma, the payouts) and
//! `verify_epoch` never panic on what a malicious coordinator can send; a result that recomputes and
//! carries a threshold of signatures is exactly the fixture's (the only one the fixture federation signed).
#![no_main]

use std::sync::OnceLock;

use boltensor_coordinator::keychain::count_valid;
use boltensor_coordinator::store::{SignedEpoch, SignedSession};
use boltensor_coordinator::{verify_epoch, FederationConfig};
use boltensor_fuzz::{federation, sample_epoch, sample_state};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    federation: FederationConfig,
    epoch: SignedEpoch,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        federation: federation().0,
        epoch: sample_epoch(),
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    if let Ok(signed) = serde_json::from_slice::<SignedEpoch>(data) {
        let json = serde_json::to_vec(&signed).expect("serialises");
        let back: SignedEpoch = serde_json::from_slice(&json).expect("own JSON parses");
        assert_eq!(back, signed);
        let _ = signed.result.digest();
        let recomputed = signed.result.recompute();
        for (uid, n) in signed.result.inputs.neurons.iter().enumerate() {
            if let Some(n) = n {
                let _ = signed.result.scores_of(uid, &n.key);
            }
        }
        match verify_epoch(&signed, &f.federation) {
            Ok(valid) => {
                assert!(recomputed.is_ok());
                assert!(valid >= f.federation.threshold());
                assert_eq!(signed.result.digest(), f.epoch.result.digest());
            }
            Err(_) => {}
        }
    }
    if let Ok(session) = serde_json::from_slice::<SignedSession>(data) {
        let json = serde_json::to_vec(&session).expect("serialises");
        let back: SignedSession = serde_json::from_slice(&json).expect("own JSON parses");
        assert_eq!(back, session);
        // What `adopt` does with a fetched session: apply its items to a state, count signatures.
        let mut state = sample_state();
        for accepted in session.items.iter().take(32) {
            let mut next = state.clone();
            if next.apply(&accepted.item, accepted.peer).is_ok() {
                state = next;
            }
        }
        let _ = count_valid(
            &f.federation.id(),
            &f.federation.keys(),
            &[0; 32],
            &session.signatures,
        );
    }
});
