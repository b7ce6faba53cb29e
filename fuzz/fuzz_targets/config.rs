//! Coordinator configuration files as `CoordinatorConfig::load` reads them: `federation.json` (parsed,
//! then validated), `identity.json` and the hex `secret.key`; the file IO is left out. The first byte
//! picks the file. Checks: nothing panics; a federation that validates has at least 4 members with
//! distinct keys, a threshold of n − f > 2n/3 and a stable id, and survives JSON unchanged.
#![no_main]

use bitcoin::secp256k1::{Keypair, SecretKey, SECP256K1};
use boltensor_coordinator::config::Identity;
use boltensor_coordinator::FederationConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            let Ok(fed) = serde_json::from_slice::<FederationConfig>(bytes) else {
                return;
            };
            let json = serde_json::to_vec(&fed).expect("serialises");
            let back: FederationConfig = serde_json::from_slice(&json).expect("own JSON parses");
            assert_eq!(back, fed);
            assert_eq!(back.id(), fed.id());
            if fed.validate().is_ok() {
                let (n, f, t) = (fed.n(), fed.max_faulty(), fed.threshold());
                assert!(n >= 4);
                assert!(n >= 3 * f + 1);
                assert!(3 * t > 2 * n);
                let mut keys = fed.keys();
                keys.sort();
                keys.dedup();
                assert_eq!(keys.len(), n);
                assert!(fed.params.validate().is_ok());
            }
        }
        1 => {
            if let Ok(id) = serde_json::from_slice::<Identity>(bytes) {
                let json = serde_json::to_vec(&id).expect("serialises");
                let back: Identity = serde_json::from_slice(&json).expect("own JSON parses");
                assert_eq!(back.index, id.index);
            }
        }
        _ => {
            // secret.key: hex, trimmed, a valid secret key.
            let Ok(text) = std::str::from_utf8(bytes) else {
                return;
            };
            if let Ok(raw) = hex::decode(text.trim()) {
                if let Ok(sk) = SecretKey::from_slice(&raw) {
                    let kp = Keypair::from_secret_key(SECP256K1, &sk);
                    assert_eq!(kp.secret_bytes().as_slice(), raw.as_slice());
                }
            }
        }
    }
});
