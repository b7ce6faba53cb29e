//! What a coordinator reads from a peer's TCP link: the 68-byte hello, then length-prefixed frames
//! (session number + payload), each payload decoded as aleph-bft network data (units, signatures,
//! alerts, requests; SCALE), and unit batches decoded as JSON arrays of consensus items. The input is
//! the byte stream. Checks: nothing panics or over-allocates; SCALE decoding is canonical (re-encoding
//! gives back the bytes consumed); batch items re-encode to themselves.
#![no_main]

use boltensor_coordinator::engine::{decode_batch, decode_network_data};
use boltensor_coordinator::net::{parse_hello, split_frame, MAX_FRAME};
use boltensor_coordinator::ConsensusItem;
use libfuzzer_sys::fuzz_target;

fn check_payload(payload: &[u8]) {
    if let Some((consumed, encoded)) = decode_network_data(payload) {
        assert!(consumed <= payload.len());
        assert_eq!(encoded, &payload[..consumed], "SCALE decoding is canonical");
        assert_eq!(
            decode_network_data(&encoded),
            Some((consumed, encoded.clone()))
        );
    }
    for item in decode_batch(payload) {
        assert_eq!(ConsensusItem::decode(&item.encode()), Ok(item));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((hello, mut rest)) = data.split_first_chunk::<68>() else {
        return;
    };
    let (_from, _sig) = parse_hello(hello);
    while let Some((len, after)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        if !(8..=MAX_FRAME).contains(&len) || after.len() < len {
            // The link is closed here (bad length, or the peer stops mid-frame).
            return;
        }
        let (frame, next) = after.split_at(len);
        let (_session, payload) = split_frame(frame.to_vec()).expect("at least 8 bytes");
        assert_eq!(payload.len(), len - 8);
        check_payload(&payload);
        rest = next;
    }
});
