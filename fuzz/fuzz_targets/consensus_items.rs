//! Consensus items as the API (`POST /v1/items`) and peers' units deliver them: JSON decoding, then the
//! deterministic transition function on a small running state (two miners, two bonded validators,
//! weights in). The first byte picks the member whose unit carried the item. Checks: decode → encode →
//! decode is the identity; applying is deterministic, agrees with the read-only check and changes nothing
//! when it refuses; an accepted item keeps the state's per-uid vectors in step, and the epoch the state
//! closes next still recomputes (what every auditor checks).
#![no_main]

use std::sync::OnceLock;

use boltensor_coordinator::{ConsensusItem, FederationConfig, State};
use boltensor_fuzz::{federation, sample_state};
use libfuzzer_sys::fuzz_target;

fn fixture() -> &'static (FederationConfig, State) {
    static F: OnceLock<(FederationConfig, State)> = OnceLock::new();
    F.get_or_init(|| (federation().0, sample_state()))
}

fn check_state(st: &State, fed: &FederationConfig) {
    assert_eq!(st.uids.len(), st.permits.len());
    assert_eq!(st.uids.len(), st.bonds.len());
    let result = st.epoch_result(fed.id(), fed.max_faulty(), fed.n());
    assert_eq!(
        result.recompute(),
        Ok(()),
        "the state's own epoch recomputes"
    );
    let mut next = st.clone();
    next.apply_epoch(&result);
    assert_eq!(next.uids.len(), next.permits.len());
    assert_eq!(next.uids.len(), next.bonds.len());
}

fuzz_target!(|data: &[u8]| {
    let Some((&peer, bytes)) = data.split_first() else {
        return;
    };
    let peer = usize::from(peer % 5);
    let Ok(item) = ConsensusItem::decode(bytes) else {
        return;
    };
    let _ = item.kind();
    assert_eq!(ConsensusItem::decode(&item.encode()), Ok(item.clone()));
    let (fed, state) = fixture();
    let mut a = state.clone();
    let mut b = state.clone();
    let ra = a.apply(&item, peer);
    let rb = b.apply(&item, peer);
    assert_eq!(ra, rb);
    assert_eq!(a, b);
    // The API's read-only check agrees with applying, and a refused item changes nothing (no member
    // copies the state to try an item).
    assert_eq!(state.check(&item, peer), ra);
    if ra.is_err() {
        assert_eq!(&a, state);
    } else {
        assert_eq!(state.applied(&item, peer).as_ref(), Ok(&a));
    }
    if ra.is_ok() {
        check_state(&a, fed);
        // The same item again, as a replay by another member would deliver it.
        let mut c = a.clone();
        if c.apply(&item, (peer + 1) % 4).is_ok() {
            check_state(&c, fed);
        }
    }
});
