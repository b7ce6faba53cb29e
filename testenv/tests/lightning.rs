//! The Lightning floor every paid request stands on, tested on the real thing: a regtest bitcoind built
//! from Bitcoin Core's source and ldk-node nodes talking over loopback.

use std::time::Duration;

use boltensor_ln::bitcoin::hashes::{sha256, Hash};
use boltensor_ln::{LnError, LnNode, PaymentHash, PaymentPreimage, PaymentState};
use boltensor_testenv::{wait_for, TestEnvError, TestNet};

const CHANNEL_SATS: u64 = 1_000_000;
const PAY_TIMEOUT: Duration = Duration::from_secs(30);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,boltensor=info,ldk_node::chain::bitcoind=off".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Two funded nodes, `alice` with a channel of [`CHANNEL_SATS`] to `bob`.
async fn alice_and_bob() -> Result<(TestNet, LnNode, LnNode), TestEnvError> {
    init_tracing();
    let net = TestNet::start().await?;
    let alice = net.node("alice").await?;
    let bob = net.node("bob").await?;
    net.fund(&[&alice, &bob], 1).await?;
    net.open_channel(&alice, &bob, CHANNEL_SATS, 0).await?;
    Ok((net, alice, bob))
}

/// Waits until `node`'s Lightning balance is exactly `sats` (balances settle shortly after the event).
async fn wait_balance(node: &LnNode, sats: u64) -> Result<(), TestEnvError> {
    let what = format!("{}'s lightning balance to be {sats} sats", node.alias());
    wait_for(&what, SETTLE_TIMEOUT, || async {
        Ok((node.balances().lightning_sats == sats).then_some(()))
    })
    .await
}

fn preimage_and_hash(seed: u8) -> (PaymentPreimage, PaymentHash) {
    let preimage = PaymentPreimage([seed; 32]);
    let hash = PaymentHash(sha256::Hash::hash(&preimage.0).to_byte_array());
    (preimage, hash)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bolt11_payment_moves_both_balances_by_the_amount() -> Result<(), TestEnvError> {
    let (_net, alice, bob) = alice_and_bob().await?;
    let (a0, b0) = (
        alice.balances().lightning_sats,
        bob.balances().lightning_sats,
    );
    assert_eq!(b0, 0, "bob starts with nothing in the channel");

    let amount_sats = 12_345;
    let invoice = bob.invoice(amount_sats * 1000, "test payment", 600)?;
    let sent = alice.pay(&invoice, PAY_TIMEOUT).await?;
    assert_eq!(
        sent.fee_paid_msat, 0,
        "a direct channel charges no routing fee"
    );
    let preimage = sent
        .preimage
        .expect("a settled payment reveals its preimage");
    assert_eq!(
        sha256::Hash::hash(&preimage.0).to_byte_array(),
        invoice.payment_hash().to_byte_array(),
        "the preimage is the proof of payment"
    );

    wait_balance(&alice, a0 - amount_sats).await?;
    wait_balance(&bob, b0 + amount_sats).await?;
    alice.stop().await;
    bob.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hold_invoice_is_held_until_claimed_then_settles() -> Result<(), TestEnvError> {
    let (_net, alice, bob) = alice_and_bob().await?;
    let (a0, b0) = (
        alice.balances().lightning_sats,
        bob.balances().lightning_sats,
    );
    let (preimage, hash) = preimage_and_hash(7);
    let amount_msat = 50_000_000;

    let invoice = bob.hold_invoice(hash, amount_msat, "held", 600)?;
    let pending = alice.send(&invoice)?;
    let held = bob.wait_claimable(hash, PAY_TIMEOUT).await?;
    assert_eq!(held.amount_msat, amount_msat);
    assert!(held.claim_deadline.is_some(), "LDK gives a claim deadline");

    // While held, nothing has settled: the payer's payment is in flight and bob has not been paid.
    assert_eq!(alice.payment_state(hash), Some(PaymentState::Pending));
    assert_eq!(bob.payment_state(hash), Some(PaymentState::Pending));
    assert_eq!(bob.balances().lightning_sats, b0);

    bob.claim(hash, preimage, held.amount_msat)?;
    let sent = pending.outcome(PAY_TIMEOUT).await?;
    assert_eq!(sent.preimage, Some(preimage));
    assert!(bob.claimable(hash).is_none());
    assert_eq!(alice.payment_state(hash), Some(PaymentState::Succeeded));

    wait_balance(&alice, a0 - amount_msat / 1000).await?;
    wait_balance(&bob, b0 + amount_msat / 1000).await?;
    alice.stop().await;
    bob.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_back_hold_payment_restores_the_payer() -> Result<(), TestEnvError> {
    let (_net, alice, bob) = alice_and_bob().await?;
    let (a0, b0) = (
        alice.balances().lightning_sats,
        bob.balances().lightning_sats,
    );
    let (_preimage, hash) = preimage_and_hash(9);
    let amount_msat = 70_000_000;

    let invoice = bob.hold_invoice(hash, amount_msat, "to be refused", 600)?;
    let pending = alice.send(&invoice)?;
    bob.wait_claimable(hash, PAY_TIMEOUT).await?;
    bob.fail(hash)?;

    match pending.outcome(PAY_TIMEOUT).await {
        Err(LnError::PaymentFailed { .. }) => {}
        other => panic!("a failed-back payment must fail at the payer, got {other:?}"),
    }
    wait_balance(&alice, a0).await?;
    assert_eq!(bob.balances().lightning_sats, b0, "bob received nothing");
    alice.stop().await;
    bob.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarted_node_keeps_channels_and_balance() -> Result<(), TestEnvError> {
    init_tracing();
    let net = TestNet::start().await?;
    let alice = net.node("alice").await?;
    let bob_config = net.node_config("bob")?;
    let bob = LnNode::start(bob_config.clone()).await?;
    net.fund(&[&alice, &bob], 1).await?;
    net.open_channel(&alice, &bob, CHANNEL_SATS, 0).await?;
    let invoice = bob.invoice(100_000_000, "before restart", 600)?;
    alice.pay(&invoice, PAY_TIMEOUT).await?;
    wait_balance(&bob, 100_000).await?;

    let channels_before = bob.channels();
    let node_id = bob.node_id();
    let onchain_before = bob.balances().onchain_sats;
    bob.stop().await;
    drop(bob);

    let bob = LnNode::start(bob_config).await?;
    assert_eq!(bob.node_id(), node_id, "same keys after restart");
    let ids = |cs: &[boltensor_ln::ChannelInfo]| {
        cs.iter().map(|c| c.channel_id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&bob.channels()), ids(&channels_before));
    assert_eq!(bob.balances().lightning_sats, 100_000);
    assert_eq!(bob.balances().onchain_sats, onchain_before);

    // Reconnect explicitly (the peer would otherwise retry on a ~60 s timer) and pay again.
    bob.connect(alice.node_id(), alice.listen_addr(), true)?;
    net.wait_usable(&[(&alice, &bob)]).await?;
    let invoice = bob.invoice(5_000_000, "after restart", 600)?;
    alice.pay(&invoice, PAY_TIMEOUT).await?;
    wait_balance(&bob, 105_000).await?;
    alice.stop().await;
    bob.stop().await;
    Ok(())
}
