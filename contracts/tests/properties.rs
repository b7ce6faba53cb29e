//! Property tests over random key sets, thresholds and timelocks (no bitcoind: miniscript's interpreter
//! checks the spends; `regtest.rs` and `random_federations_on_regtest` there take them to bitcoind), and
//! totality of the decoders over random bytes.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, SecretKey, SECP256K1};
use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, Sequence, TxOut, Txid};
use boltensor_contracts::{
    finalize_psbt, sign_psbt, slash_psbt, verify_bond_proof, withdraw_psbt, Bond, BondClaims,
    BondPath, BondPolicy, BondProof, Evidence, Federation, FinalizeError, ProofError, Treasury,
    Utxo, PROOF_LEN,
};
use boltensor_protocol::Role;
use proptest::prelude::*;

fn keypair() -> impl Strategy<Value = Keypair> {
    any::<[u8; 32]>().prop_filter_map("valid secret key", |b| {
        SecretKey::from_slice(&b)
            .ok()
            .map(|sk| Keypair::from_secret_key(SECP256K1, &sk))
    })
}

/// n distinct member keys, k in 1..=n, an owner, T, and a permutation seed.
fn setup() -> impl Strategy<Value = (Vec<Keypair>, usize, Keypair, u16, u64)> {
    (1usize..=9)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec(keypair(), n),
                1..=n,
                keypair(),
                1u16..=u16::MAX,
                any::<u64>(),
            )
        })
        .prop_filter("distinct keys", |(keys, _, owner, _, _)| {
            let mut xs: Vec<_> = keys.iter().map(|k| k.x_only_public_key().0).collect();
            xs.push(owner.x_only_public_key().0);
            xs.sort();
            xs.windows(2).all(|w| w[0] != w[1])
        })
}

fn fed_of(keys: &[Keypair], k: usize) -> Federation {
    Federation::new(keys.iter().map(|m| m.x_only_public_key().0).collect(), k).expect("valid")
}

fn utxo_for(script: ScriptBuf) -> Utxo {
    Utxo {
        outpoint: OutPoint {
            txid: Txid::from_byte_array([9; 32]),
            vout: 3,
        },
        txout: TxOut {
            value: Amount::from_sat(1_000_000),
            script_pubkey: script,
        },
    }
}

const RATE: FeeRate = FeeRate::from_sat_per_kwu(250);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The script does not depend on the order the keys are listed in.
    #[test]
    fn script_is_independent_of_key_order((keys, k, owner, t, seed) in setup()) {
        let mut shuffled = keys.clone();
        let len = shuffled.len();
        shuffled.rotate_left(seed as usize % len);
        if seed % 2 == 1 { shuffled.reverse(); }
        let a = Bond::new(owner.x_only_public_key().0, fed_of(&keys, k), t).expect("valid");
        let b = Bond::new(owner.x_only_public_key().0, fed_of(&shuffled, k), t).expect("valid");
        prop_assert_eq!(a.script_pubkey(), b.script_pubkey());
        prop_assert!(a.script_pubkey().is_p2tr());
    }

    /// Any k members can slash, k − 1 cannot, outsiders add nothing; the witness is the size predicted.
    #[test]
    fn slash_needs_exactly_k((keys, k, owner, t, seed) in setup(), outsider in keypair()) {
        let fed = fed_of(&keys, k);
        prop_assume!(!fed.contains(&outsider.x_only_public_key().0));
        let bond = Bond::new(owner.x_only_public_key().0, fed.clone(), t).expect("valid");
        let treasury = Treasury::new(fed).expect("valid");
        let utxo = utxo_for(bond.script_pubkey());
        let start = seed as usize % keys.len();
        let signers: Vec<Keypair> = (0..k).map(|i| keys[(start + i) % keys.len()]).collect();

        let mut psbt = slash_psbt(&bond, &utxo, &treasury, RATE).expect("psbt");
        prop_assert_eq!(sign_psbt(&mut psbt, &[outsider]).expect("sign"), 0);
        // The owner signs its own leaf, which a slash (nSequence without a relative lock) cannot use.
        prop_assert_eq!(sign_psbt(&mut psbt, &[owner]).expect("sign"), 1);
        prop_assert_eq!(sign_psbt(&mut psbt, &signers[..k - 1]).expect("sign"), k - 1);
        let short = finalize_psbt(psbt.clone());
        prop_assert!(matches!(short, Err(FinalizeError::Unsatisfied(_))), "k-1 finalized");
        prop_assert_eq!(sign_psbt(&mut psbt, &signers[k - 1..]).expect("sign"), 1);
        let tx = finalize_psbt(psbt).expect("k signatures");
        prop_assert_eq!(tx.input[0].witness.size(), bond.witness_size(BondPath::Federation));
        prop_assert_eq!(&tx.output[0].script_pubkey, &treasury.script_pubkey());
        let fee = utxo.txout.value - tx.output[0].value;
        prop_assert!(fee >= RATE.fee_vb(tx.vsize() as u64).expect("small"));
    }

    /// The owner can withdraw with nSequence T and not with T − 1; the witness is the size predicted.
    #[test]
    fn withdraw_needs_sequence_t((keys, k, owner, t, _) in setup()) {
        let bond = Bond::new(owner.x_only_public_key().0, fed_of(&keys, k), t).expect("valid");
        let utxo = utxo_for(bond.script_pubkey());
        let mut psbt = withdraw_psbt(&bond, &utxo, ScriptBuf::new_op_return([]), RATE);
        // An OP_RETURN destination has no dust limit; a real one is checked below.
        prop_assert!(psbt.is_ok());
        psbt = withdraw_psbt(&bond, &utxo, bond.script_pubkey(), RATE);
        let mut psbt = psbt.expect("psbt");
        prop_assert_eq!(psbt.unsigned_tx.input[0].sequence, Sequence::from_height(t));
        let mut early = psbt.clone();
        prop_assert_eq!(sign_psbt(&mut psbt, &[owner]).expect("sign"), 1);
        let tx = finalize_psbt(psbt).expect("owner at T");
        prop_assert_eq!(tx.input[0].witness.size(), bond.witness_size(BondPath::Withdraw));
        if t > 1 {
            early.unsigned_tx.input[0].sequence = Sequence::from_height(t - 1);
            sign_psbt(&mut early, &[owner]).expect("sign");
            prop_assert!(finalize_psbt(early).is_err(), "withdraw at T-1 finalized");
        }
    }

    /// A bond counts only while confirmations + margin < T, and then gives exactly its amount.
    #[test]
    fn stake_window(
        (keys, k, _, t, _) in setup(),
        margin in 0u16..200,
        far in 0u32..70_000,
        near in -3i64..=3,
        at_edge in any::<bool>(),
    ) {
        // Half the cases within 3 confirmations of where the bond stops counting (T − margin).
        let c = if at_edge {
            (i64::from(t) - i64::from(margin) + near).max(0) as u32
        } else {
            far
        };
        // The smallest minimum timelock with which the policy can count at all (1 + margin < it): with a
        // minimum of 1, as before, the policy never built and no case reached the check.
        let policy = BondPolicy::new(fed_of(&keys, k), margin + 2, margin, 1, Amount::ZERO)
            .expect("1 + margin < margin + 2");
        let counts = policy.counts(t, c);
        prop_assert_eq!(counts, c >= 1 && c + u32::from(margin) < u32::from(t));
        let stake = policy.stake(t, Amount::from_sat(5), c);
        prop_assert_eq!(stake, if counts { Amount::from_sat(5) } else { Amount::ZERO });
    }

    /// Decoding is total on random bytes, and whatever decodes re-encodes to the same bytes.
    #[test]
    fn proof_decoding_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(p) = BondProof::decode(&bytes) {
            prop_assert_eq!(p.encode(), bytes);
        }
    }

    /// Same with a valid prefix, so decoding gets past the magic and version.
    #[test]
    fn proof_decoding_is_total_past_the_header(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = b"BTBP\x01".to_vec();
        bytes.extend(tail);
        if let Ok(p) = BondProof::decode(&bytes) {
            prop_assert_eq!(p.encode(), bytes);
        }
    }

    /// Any one-byte change to a valid proof is refused by decoding or by verification.
    #[test]
    fn tampered_proofs_are_refused(owner in keypair(), node in keypair(), at in 0usize..PROOF_LEN, xor in 1u8..=255) {
        let fed = fed_of(&[node], 1);
        let bond = Bond::new(owner.x_only_public_key().0, fed.clone(), 500).expect("valid");
        let policy = BondPolicy::new(fed, 100, 10, 1, Amount::ZERO).expect("valid");
        let utxo = utxo_for(bond.script_pubkey());
        let proof = BondClaims {
            outpoint: utxo.outpoint,
            amount: utxo.txout.value,
            timelock: 500,
            owner: owner.x_only_public_key().0,
            role: Role::Miner,
            node_id: node.public_key(),
            registration_key: node.x_only_public_key().0,
        }
        .sign(&owner)
        .expect("owner");
        let chain: std::collections::BTreeMap<_, _> = [(utxo.outpoint, (utxo.txout.clone(), 5))].into();
        prop_assert!(verify_bond_proof(&proof, &policy, &chain).is_ok());
        let mut bytes = proof.encode();
        bytes[at] ^= xor;
        if let Ok(p) = BondProof::decode(&bytes) {
            let err = verify_bond_proof(&p, &policy, &chain);
            prop_assert!(matches!(err, Err(ProofError::BadSignature { .. })), "{:?}", err);
        }
    }

    /// Evidence decoding is total too.
    #[test]
    fn evidence_decoding_is_total(kind in 0u8..4, tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut bytes = b"BTEV\x01".to_vec();
        bytes.push(kind);
        bytes.extend(tail);
        let _ = Evidence::decode(&bytes[5..]);
        if let Ok(e) = Evidence::decode(&bytes) {
            prop_assert_eq!(e.encode(), bytes);
        }
    }
}
