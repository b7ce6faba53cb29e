//! What a coordinator reads from a peer's TCP link: the dialer's hello (index, ephemeral key, signature),
//! then length-prefixed sealed frames, each opened (ChaCha20-Poly1305 under the link's key: outside
//! bytes must fail authentication without a panic) and, as the body an honest peer sealed, split into
//! session number + payload, each payload decoded as aleph-bft network data (units, signatures, alerts,
//! requests; SCALE), and unit batches decoded as JSON arrays of consensus items. The input is the byte
//! stream. Checks: nothing panics or over-allocates; SCALE decoding is canonical (re-encoding gives back
//! the bytes consumed); batch items re-encode to themselves.
#![no_main]

use boltensor_coordinator::engine::{decode_batch, decode_network_data};
use boltensor_coordinator::net::{parse_hello, split_frame, Opener, HELLO, MAX_FRAME, TAG};
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
    let Some((hello, mut rest)) = data.split_first_chunk::<HELLO>() else {
        return;
    };
    let (_from, _ephemeral, _sig) = parse_hello(hello);
    let mut opener = Opener::with_key([7; 32]);
    let mut open = true;
    while let Some((prefix, after)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*prefix) as usize;
        if !(8 + TAG..=MAX_FRAME + TAG).contains(&len) || after.len() < len {
            // The link is closed here (bad length, or the peer stops mid-frame).
            return;
        }
        let (frame, next) = after.split_at(len);
        if open {
            // Bytes not sealed under the link's key never authenticate; the link closes there.
            open = opener.open(*prefix, frame.to_vec()).is_ok();
        }
        // The body an honest peer sealed (what opening yields), decoded as the engine does.
        let body = frame[..len - TAG].to_vec();
        let (_session, payload) = split_frame(body).expect("at least 8 bytes");
        assert_eq!(payload.len(), len - TAG - 8);
        check_payload(&payload);
        rest = next;
    }
});
