//! Lightning signed messages (the zbase32 `signmessage` format of lnd and LDK): how a node proves it
//! holds the key behind its node id, e.g. in a federation registration. [`crate::LnNode::sign_message`]
//! signs with a running node's key; [`sign_message_with_key`] with a bare secret key (tests, devnets);
//! [`verify_message`] checks either.

use ldk_node::bitcoin::secp256k1::{PublicKey, SecretKey};
use ldk_node::lightning::util::message_signing;

/// Signs `msg` as the node whose secret key is `secret` would (zbase32).
pub fn sign_message_with_key(msg: &[u8], secret: &SecretKey) -> String {
    message_signing::sign(msg, secret)
}

/// Whether `signature` (zbase32) is `node_id`'s signature over `msg`.
pub fn verify_message(msg: &[u8], signature: &str, node_id: &PublicKey) -> bool {
    message_signing::verify(msg, signature, node_id)
}

#[cfg(test)]
mod tests {
    use ldk_node::bitcoin::secp256k1::SECP256K1;

    use super::*;

    #[test]
    fn a_signature_verifies_for_its_key_and_message_only() {
        let sk = SecretKey::from_slice(&[9; 32]).expect("valid");
        let other = SecretKey::from_slice(&[8; 32]).expect("valid");
        let sig = sign_message_with_key(b"hello", &sk);
        assert!(verify_message(b"hello", &sig, &sk.public_key(SECP256K1)));
        assert!(!verify_message(b"hellO", &sig, &sk.public_key(SECP256K1)));
        assert!(!verify_message(
            b"hello",
            &sig,
            &other.public_key(SECP256K1)
        ));
        assert!(!verify_message(
            b"hello",
            "not zbase32!",
            &sk.public_key(SECP256K1)
        ));
    }
}
