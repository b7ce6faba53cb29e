//! Every spending path of the bond and the treasury, judged by a real regtest bitcoind
//! (`testmempoolaccept` / `sendrawtransaction`), and bond proofs verified against its UTXO set.
//!
//! Each test prints `MEASURED …` lines (witness size, weight, vsize, fee; run with `--nocapture` to see
//! them) and, with `BOLTENSOR_MEASURED_OUT` set, records the sizes for docs/data/contracts.json, which
//! docs/contracts.md quotes (scripts/contracts-measured.sh regenerates it).

mod common;

use anyhow::Result;
use bitcoin::{Amount, FeeRate, OutPoint, Sequence, Transaction, TxOut};
use boltensor_contracts::{
    cooperative_exit_psbt, finalize_psbt, sign_psbt, slash_psbt, treasury_payout_psbt,
    verify_bond_proof, withdraw_psbt, Bond, BondClaims, BondPath, BondPolicy, BondProof,
    FinalizeError, ProofError, Treasury, Utxo,
};
use boltensor_protocol::Role;
use common::{federation, forced_witness, key, keys, p2tr_script, Chain, Verdict};

const FEE_RATE: FeeRate = FeeRate::from_sat_per_kwu(500); // 2 sat/vB

/// Prints the `MEASURED` line and records `tx` as `name` (a key of docs/data/contracts.json) of test `test`.
fn measure(
    what: &str,
    name: &str,
    test: &str,
    tx: &Transaction,
    inputs: Amount,
    verdict: &Verdict,
) {
    common::measured::record(name, test, tx);
    let out: Amount = tx.output.iter().map(|o| o.value).sum();
    let witness: usize = tx.input.iter().map(|i| i.witness.size()).sum();
    println!(
        "MEASURED {what}: witness {witness} B, weight {} WU, vsize {} vB, fee {} sat ({verdict:?})",
        tx.weight().to_wu(),
        tx.vsize(),
        (inputs - out).to_sat(),
    );
}

fn assert_rejected(v: &Verdict, needle: &str) {
    match v {
        Verdict::Rejected(r) => assert!(
            r.contains(needle),
            "rejected for {r:?}, expected {needle:?}"
        ),
        Verdict::Accepted { .. } => panic!("bitcoind accepted a spend it must refuse ({needle})"),
    }
}

/// Consensus, not just policy: a block holding `tx` is invalid.
async fn assert_consensus_invalid(chain: &Chain, tx: &Transaction, needle: &str) {
    match chain.mine_directly(tx).await {
        Ok(()) => panic!("bitcoind mined a block with a spend consensus must refuse ({needle})"),
        Err(e) => {
            assert!(
                e.contains(needle),
                "block refused for {e:?}, expected {needle:?}"
            );
            println!("  consensus (generateblock): {e}");
        }
    }
}

fn assert_accepted(v: &Verdict, tx: &Transaction, inputs: Amount) {
    match v {
        Verdict::Accepted { vsize, fee } => {
            assert_eq!(*vsize, tx.vsize() as u64, "bitcoind's vsize");
            let out: Amount = tx.output.iter().map(|o| o.value).sum();
            assert_eq!(*fee, inputs - out, "bitcoind's fee");
            assert!(
                *fee >= FEE_RATE.fee_vb(*vsize).expect("small"),
                "fee rate met"
            );
        }
        Verdict::Rejected(r) => panic!("bitcoind refused a valid spend: {r}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bond_is_created_confirmed_and_verified_from_its_proof() -> Result<()> {
    let mut chain = Chain::start(3).await?;
    let fed_keys = keys("fed", 4);
    let fed = federation(&fed_keys, 3);
    let (owner, node, reg, thief) = (key("owner"), key("node"), key("reg"), key("thief"));
    let bond = Bond::new(owner.x_only_public_key().0, fed.clone(), 144)?;
    let policy = BondPolicy::new(fed.clone(), 100, 10, 1, Amount::from_sat(100_000))?;
    let amount = Amount::from_sat(1_000_000);
    let utxo = chain.fund(bond.script_pubkey(), amount).await?;

    let claims = BondClaims {
        outpoint: utxo.outpoint,
        amount,
        timelock: bond.timelock(),
        owner: owner.x_only_public_key().0,
        role: Role::Validator,
        node_id: node.public_key(),
        registration_key: reg.x_only_public_key().0,
    };
    let proof = BondProof::decode(&claims.clone().sign(&owner)?.encode())?;
    let view = chain.view(&[utxo.outpoint]).await?;
    let verified = verify_bond_proof(&proof, &policy, &view)?;
    assert_eq!(verified.stake, amount);
    assert_eq!(verified.confirmations, 1);
    assert_eq!(verified.counts_until_confirmations, 133);

    // A wrong amount.
    let mut wrong = claims.clone();
    wrong.amount = amount + Amount::from_sat(1);
    let err = verify_bond_proof(&wrong.sign(&owner)?, &policy, &view).expect_err("must be refused");
    assert!(
        matches!(err, ProofError::AmountMismatch { claimed, on_chain, .. }
        if on_chain == amount && claimed == amount + Amount::from_sat(1)),
        "{err}"
    );
    println!("wrong amount: {err}");

    // A different key claiming the same output.
    let mut stolen = claims.clone();
    stolen.owner = thief.x_only_public_key().0;
    let err =
        verify_bond_proof(&stolen.sign(&thief)?, &policy, &view).expect_err("must be refused");
    assert!(matches!(err, ProofError::ScriptMismatch { .. }), "{err}");
    println!("different key: {err}");

    // The same bond under another federation.
    let other_policy = BondPolicy::new(federation(&keys("other", 4), 3), 100, 10, 1, Amount::ZERO)?;
    let err = verify_bond_proof(&proof, &other_policy, &view).expect_err("must be refused");
    assert!(matches!(err, ProofError::ScriptMismatch { .. }), "{err}");

    // A tampered signature, and claims changed after signing.
    let mut bytes = proof.encode();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let err = match BondProof::decode(&bytes) {
        Ok(p) => verify_bond_proof(&p, &policy, &view).expect_err("must be refused"),
        Err(e) => panic!("a flipped signature bit still decodes, got {e}"),
    };
    assert!(matches!(err, ProofError::BadSignature { .. }), "{err}");
    println!("tampered signature: {err}");
    let mut retargeted = proof.clone();
    retargeted.claims.registration_key = thief.x_only_public_key().0;
    let err = verify_bond_proof(&retargeted, &policy, &view).expect_err("must be refused");
    assert!(matches!(err, ProofError::BadSignature { .. }), "{err}");

    // Not confirmed yet.
    let pending = chain.fund_unmined(bond.script_pubkey(), amount).await?;
    let mut c = claims.clone();
    c.outpoint = pending.outpoint;
    let err = verify_bond_proof(
        &c.sign(&owner)?,
        &policy,
        &chain.view(&[pending.outpoint]).await?,
    )
    .expect_err("must be refused");
    assert!(
        matches!(
            err,
            ProofError::NotConfirmed {
                confirmations: 0,
                required: 1
            }
        ),
        "{err}"
    );
    chain.mine(1).await?;

    // Spent: the federation releases the bond early to the owner (cooperative exit), then the proof fails.
    let mut psbt = cooperative_exit_psbt(&bond, &utxo, p2tr_script(&owner), FEE_RATE)?;
    assert_eq!(sign_psbt(&mut psbt, &fed_keys[..3])?, 3);
    let tx = finalize_psbt(psbt)?;
    let v = chain.test_accept(&tx).await?;
    assert_accepted(&v, &tx, amount);
    measure(
        "cooperative exit (3-of-4 leaf, to owner)",
        "bond_cooperative_exit_3of4",
        "bond_is_created_confirmed_and_verified_from_its_proof",
        &tx,
        amount,
        &v,
    );
    chain.send(&tx).await?;
    let err = verify_bond_proof(&proof, &policy, &chain.view(&[utxo.outpoint]).await?)
        .expect_err("must be refused");
    assert!(matches!(err, ProofError::NotFound { .. }), "{err}");
    chain.mine(1).await?;
    let err = verify_bond_proof(&proof, &policy, &chain.view(&[utxo.outpoint]).await?)
        .expect_err("must be refused");
    assert!(matches!(err, ProofError::NotFound { .. }), "{err}");
    println!("spent outpoint: {err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn withdrawal_is_refused_before_the_timelock_and_confirms_after() -> Result<()> {
    const T: u16 = 12;
    let mut chain = Chain::start(1).await?;
    let fed_keys = keys("fed", 3);
    let fed = federation(&fed_keys, 2);
    let owner = key("owner");
    let bond = Bond::new(owner.x_only_public_key().0, fed.clone(), T)?;
    // Counts while confirmations < T − margin = 8.
    let policy = BondPolicy::new(fed, 6, 4, 1, Amount::ZERO)?;
    let amount = Amount::from_sat(500_000);
    let utxo = chain.fund(bond.script_pubkey(), amount).await?;
    let proof = BondClaims {
        outpoint: utxo.outpoint,
        amount,
        timelock: T,
        owner: owner.x_only_public_key().0,
        role: Role::Miner,
        node_id: key("node").public_key(),
        registration_key: key("reg").x_only_public_key().0,
    }
    .sign(&owner)?;

    let psbt = {
        let mut p = withdraw_psbt(&bond, &utxo, p2tr_script(&owner), FEE_RATE)?;
        assert_eq!(p.unsigned_tx.input[0].sequence, Sequence::from_height(T));
        assert_eq!(sign_psbt(&mut p, &[owner])?, 1);
        // Federation keys are not on the withdraw leaf, but are on the other: they sign that one only.
        p
    };
    let tx = finalize_psbt(psbt.clone())?;
    assert_eq!(
        tx.input[0].witness.size(),
        bond.witness_size(BondPath::Withdraw)
    );

    // nSequence below T: miniscript will not assemble it; forced, bitcoind's script check refuses it.
    let mut early = withdraw_psbt(&bond, &utxo, p2tr_script(&owner), FEE_RATE)?;
    early.unsigned_tx.input[0].sequence = Sequence::from_height(T - 1);
    sign_psbt(&mut early, &[owner])?;
    assert!(matches!(
        finalize_psbt(early.clone()),
        Err(FinalizeError::Unsatisfied(_))
    ));
    let forced = forced_witness(
        &early,
        &bond.leaf_script(BondPath::Withdraw),
        &[Some(owner)],
    );

    let mut last_counting = 0;
    for confirmations in 1..T {
        chain
            .mine_until(utxo.outpoint, u32::from(confirmations))
            .await?;
        let v = chain.test_accept(&tx).await?;
        assert_rejected(&v, "non-BIP68-final");
        if confirmations == 1 {
            println!("withdraw at 1 confirmation: {}", v.reason());
        }
        if confirmations == T - 1 {
            // generateblock mines on top of the tip: the block would put the spend at depth T − 1.
            assert_consensus_invalid(&chain, &tx, "bad-txns-nonfinal").await;
        }
        match verify_bond_proof(&proof, &policy, &chain.view(&[utxo.outpoint]).await?) {
            Ok(_) => last_counting = confirmations,
            Err(e) => assert!(matches!(e, ProofError::Expired { .. }), "{e}"),
        }
    }
    assert_eq!(last_counting, T - 4 - 1, "counts until T − margin − 1");

    chain.mine_until(utxo.outpoint, u32::from(T)).await?;
    let v = chain.test_accept(&forced).await?;
    assert_rejected(&v, "script-verify-flag-failed");
    println!(
        "withdraw with nSequence T-1 at T confirmations: {}",
        v.reason()
    );
    assert_consensus_invalid(
        &chain,
        &forced,
        "block-script-verify-flag-failed (Locktime requirement not satisfied)",
    )
    .await;
    let v = chain.test_accept(&tx).await?;
    assert_accepted(&v, &tx, amount);
    measure(
        "withdraw (owner leaf, after T)",
        "bond_withdrawal_owner",
        "withdrawal_is_refused_before_the_timelock_and_confirms_after",
        &tx,
        amount,
        &v,
    );
    let txid = chain.send_and_confirm(&tx).await?;
    assert_eq!(
        chain
            .tx_out(OutPoint { txid, vout: 0 })
            .await?
            .map(|(o, _)| o.script_pubkey),
        Some(p2tr_script(&owner))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn slash_needs_k_federation_signatures_and_pays_the_treasury() -> Result<()> {
    let mut chain = Chain::start(1).await?;
    let fed_keys = keys("fed", 4);
    let fed = federation(&fed_keys, 3);
    let treasury = Treasury::new(fed.clone())?;
    let owner = key("owner");
    let bond = Bond::new(owner.x_only_public_key().0, fed.clone(), 1000)?;
    let amount = Amount::from_sat(2_000_000);
    let utxo = chain.fund(bond.script_pubkey(), amount).await?;
    let fed_leaf = bond.leaf_script(BondPath::Federation);
    // Slots in script order: the federation's sorted keys.
    let sorted: Vec<_> = fed
        .keys()
        .iter()
        .map(|x| {
            *fed_keys
                .iter()
                .find(|k| k.x_only_public_key().0 == *x)
                .expect("member")
        })
        .collect();

    // k − 1 members.
    let mut psbt = slash_psbt(&bond, &utxo, &treasury, FEE_RATE)?;
    assert_eq!(sign_psbt(&mut psbt, &sorted[..2])?, 2);
    assert!(matches!(
        finalize_psbt(psbt.clone()),
        Err(FinalizeError::Unsatisfied(_))
    ));
    let forced = forced_witness(
        &psbt,
        &fed_leaf,
        &[Some(sorted[0]), Some(sorted[1]), None, None],
    );
    let v = chain.test_accept(&forced).await?;
    assert_rejected(&v, "script-verify-flag-failed");
    println!("slash with k-1 signatures: {}", v.reason());
    assert_consensus_invalid(&chain, &forced, "block-script-verify-flag-failed").await;

    // k keys outside the federation, signing in the members' places.
    let outsiders = keys("outsider", 3);
    let mut psbt = slash_psbt(&bond, &utxo, &treasury, FEE_RATE)?;
    assert_eq!(
        sign_psbt(&mut psbt, &outsiders)?,
        0,
        "the PSBT names no outsider key"
    );
    assert!(finalize_psbt(psbt.clone()).is_err());
    let forced = forced_witness(
        &psbt,
        &fed_leaf,
        &[
            Some(outsiders[0]),
            Some(outsiders[1]),
            Some(outsiders[2]),
            None,
        ],
    );
    let v = chain.test_accept(&forced).await?;
    assert_rejected(&v, "script-verify-flag-failed");
    println!("slash signed by outsiders: {}", v.reason());
    assert_consensus_invalid(&chain, &forced, "block-script-verify-flag-failed").await;
    // The owner cannot stand in for a member either.
    let forced = forced_witness(
        &psbt,
        &fed_leaf,
        &[Some(sorted[0]), Some(sorted[1]), Some(owner), None],
    );
    assert_rejected(
        &chain.test_accept(&forced).await?,
        "script-verify-flag-failed",
    );

    // k members, signing one at a time as the PSBT travels (the last three sorted keys).
    let mut psbt = slash_psbt(&bond, &utxo, &treasury, FEE_RATE)?;
    for m in &sorted[1..] {
        assert_eq!(sign_psbt(&mut psbt, std::slice::from_ref(m))?, 1);
    }
    let tx = finalize_psbt(psbt)?;
    assert_eq!(
        tx.input[0].witness.size(),
        bond.witness_size(BondPath::Federation)
    );
    let v = chain.test_accept(&tx).await?;
    assert_accepted(&v, &tx, amount);
    measure(
        "slash (3-of-4 leaf, to treasury)",
        "bond_slash_3of4",
        "slash_needs_k_federation_signatures_and_pays_the_treasury",
        &tx,
        amount,
        &v,
    );
    let txid = chain.send_and_confirm(&tx).await?;
    let (out, conf) = chain
        .tx_out(OutPoint { txid, vout: 0 })
        .await?
        .expect("treasury output");
    assert_eq!(out.script_pubkey, treasury.script_pubkey());
    assert_eq!(out.value, tx.output[0].value);
    assert!(conf >= 1);
    assert!(
        chain.tx_out(utxo.outpoint).await?.is_none(),
        "the bond is gone"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn treasury_pays_out_only_with_k_of_n_signatures() -> Result<()> {
    let mut chain = Chain::start(2).await?;
    let fed_keys = keys("fed", 5);
    let fed = federation(&fed_keys, 4);
    let treasury = Treasury::new(fed.clone())?;
    let sorted: Vec<_> = fed
        .keys()
        .iter()
        .map(|x| {
            *fed_keys
                .iter()
                .find(|k| k.x_only_public_key().0 == *x)
                .expect("member")
        })
        .collect();
    let a = chain
        .fund(treasury.script_pubkey(), Amount::from_sat(3_000_000))
        .await?;
    let b = chain
        .fund(treasury.script_pubkey(), Amount::from_sat(1_000_000))
        .await?;
    let payee = TxOut {
        value: Amount::from_sat(2_500_000),
        script_pubkey: p2tr_script(&key("miner-payout")),
    };

    // One input, k − 1 and outsiders: refused.
    let one = [a.clone()];
    let psbt = treasury_payout_psbt(&treasury, &one, vec![payee.clone()], FEE_RATE)?;
    let leaf = treasury.leaf_script();
    let three: Vec<_> = sorted[..3]
        .iter()
        .copied()
        .map(Some)
        .chain([None, None])
        .collect();
    let v = chain
        .test_accept(&forced_witness(&psbt, &leaf, &three))
        .await?;
    assert_rejected(&v, "script-verify-flag-failed");
    println!("treasury payout with k-1 signatures: {}", v.reason());
    assert_consensus_invalid(
        &chain,
        &forced_witness(&psbt, &leaf, &three),
        "block-script-verify-flag-failed",
    )
    .await;
    let outsiders: Vec<_> = keys("outsider", 4)
        .into_iter()
        .map(Some)
        .chain([None])
        .collect();
    assert_rejected(
        &chain
            .test_accept(&forced_witness(&psbt, &leaf, &outsiders))
            .await?,
        "script-verify-flag-failed",
    );
    let mut signed = psbt.clone();
    sign_psbt(&mut signed, &sorted[..3])?;
    assert!(matches!(
        finalize_psbt(signed),
        Err(FinalizeError::Unsatisfied(_))
    ));

    // One input with k.
    let mut psbt = psbt;
    assert_eq!(sign_psbt(&mut psbt, &sorted[1..])?, 4);
    let tx = finalize_psbt(psbt)?;
    assert_eq!(tx.input[0].witness.size(), treasury.witness_size());
    let v = chain.test_accept(&tx).await?;
    assert_accepted(&v, &tx, a.txout.value);
    measure(
        "treasury payout (4-of-5, 1 input, payee + change)",
        "treasury_payout_4of5_1in",
        "treasury_pays_out_only_with_k_of_n_signatures",
        &tx,
        a.txout.value,
        &v,
    );
    let txid = chain.send_and_confirm(&tx).await?;
    assert_eq!(
        tx.output[1].script_pubkey,
        treasury.script_pubkey(),
        "change to the treasury"
    );

    // Two inputs (the change and b), all to one payee with no change.
    let change = Utxo {
        outpoint: OutPoint { txid, vout: 1 },
        txout: tx.output[1].clone(),
    };
    let inputs = change.txout.value + b.txout.value;
    let all = TxOut {
        value: inputs - Amount::from_sat(800),
        script_pubkey: p2tr_script(&key("validator-payout")),
    };
    let mut psbt = treasury_payout_psbt(&treasury, &[change, b], vec![all], FEE_RATE)?;
    assert_eq!(
        psbt.unsigned_tx.output.len(),
        1,
        "change below dust goes to the fee"
    );
    assert_eq!(sign_psbt(&mut psbt, &sorted[..4])?, 8);
    let tx = finalize_psbt(psbt)?;
    let v = chain.test_accept(&tx).await?;
    assert_accepted(&v, &tx, inputs);
    measure(
        "treasury payout (4-of-5, 2 inputs, no change)",
        "treasury_payout_4of5_2in",
        "treasury_pays_out_only_with_k_of_n_signatures",
        &tx,
        inputs,
        &v,
    );
    chain.send_and_confirm(&tx).await?;
    Ok(())
}

/// Random federations (proptest-generated n, k, T and keys) taken to bitcoind: k members slash, k − 1
/// cannot, and the owner cannot withdraw before T. Witness sizes match the estimates.
#[tokio::test(flavor = "multi_thread")]
async fn random_federations_on_regtest() -> Result<()> {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    const CASES: usize = 5;
    let mut chain = Chain::start(CASES as u64).await?;
    let mut runner = TestRunner::deterministic();
    let strategy = (1usize..=12).prop_flat_map(|n| {
        (
            proptest::strategy::Just(n),
            1..=n,
            2u16..=1000,
            proptest::prelude::any::<u64>(),
        )
    });
    for case in 0..CASES {
        let (n, k, t, seed) = strategy
            .new_tree(&mut runner)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .current();
        let members = keys(&format!("fed-{seed}"), n);
        let fed = federation(&members, k);
        let owner = key(&format!("owner-{seed}"));
        let bond = Bond::new(owner.x_only_public_key().0, fed.clone(), t)?;
        let treasury = Treasury::new(fed.clone())?;
        let amount = Amount::from_sat(100_000 + seed % 1_000_000);
        let utxo = chain.fund(bond.script_pubkey(), amount).await?;

        let mut early = withdraw_psbt(&bond, &utxo, p2tr_script(&owner), FEE_RATE)?;
        sign_psbt(&mut early, &[owner])?;
        let early = finalize_psbt(early)?;
        assert_eq!(
            early.input[0].witness.size(),
            bond.witness_size(BondPath::Withdraw)
        );
        assert_rejected(&chain.test_accept(&early).await?, "non-BIP68-final");

        let sorted: Vec<_> = fed
            .keys()
            .iter()
            .map(|x| {
                *members
                    .iter()
                    .find(|m| m.x_only_public_key().0 == *x)
                    .expect("member")
            })
            .collect();
        let psbt = slash_psbt(&bond, &utxo, &treasury, FEE_RATE)?;
        // k − 1 signatures, on rotating slots.
        let start = seed as usize % n;
        let chosen: Vec<usize> = (0..k).map(|i| (start + i) % n).collect();
        let slots = |count: usize| -> Vec<_> {
            (0..n)
                .map(|i| chosen[..count].contains(&i).then_some(sorted[i]))
                .collect()
        };
        let leaf = bond.leaf_script(BondPath::Federation);
        if k > 1 {
            let v = chain
                .test_accept(&forced_witness(&psbt, &leaf, &slots(k - 1)))
                .await?;
            assert_rejected(&v, "script-verify-flag-failed");
        }
        let mut signed = psbt.clone();
        let signers: Vec<_> = chosen.iter().map(|i| sorted[*i]).collect();
        assert_eq!(sign_psbt(&mut signed, &signers)?, k);
        let tx = finalize_psbt(signed)?;
        assert_eq!(
            tx.input[0].witness.size(),
            bond.witness_size(BondPath::Federation)
        );
        let v = chain.test_accept(&tx).await?;
        assert_accepted(&v, &tx, amount);
        measure(
            &format!("case {case}: slash {k}-of-{n}, T = {t}"),
            &format!("bond_slash_random_case{case}_{k}of{n}"),
            "random_federations_on_regtest",
            &tx,
            amount,
            &v,
        );
        chain.send_and_confirm(&tx).await?;
    }
    Ok(())
}
