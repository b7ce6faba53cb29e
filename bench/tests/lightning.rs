//! `bench lightning` with tiny numbers on a real regtest network (two hops, one slot run): checks what it
//! counts (every hop count measured, the slots LDK gives a channel, the payment beyond them refused, nothing
//! lost once the held payments are claimed or failed back), never its timings.

use boltensor_bench::lightning::{self, LightningBenchConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hops_and_the_htlc_slots_of_one_channel() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,ldk_node=off,lightning=off")
        .with_test_writer()
        .try_init();
    let report = lightning::run(LightningBenchConfig {
        routers: 1,
        payments: 2,
        hold_msat: vec![2_000_000],
        extra: 1,
        chat_durations: vec![(1000.0, "one second".into())],
        ..LightningBenchConfig::default()
    })
    .await
    .expect("the lightning bench runs");
    println!("{}", report.render());

    let hops: Vec<_> = report.hops.iter().map(|h| (h.hops, h.latency.n)).collect();
    assert_eq!(hops, [(1, 2), (2, 2)]);
    assert_eq!(
        report.hops[0].mean_fee_msat, 0.0,
        "no fee over one's own channel"
    );
    assert!(
        report.hops[1].mean_fee_msat > 0.0,
        "the router charges a fee"
    );

    let s = &report.slots[0];
    // LDK's default `our_max_accepted_htlcs` (lightning 0.2, ChannelHandshakeConfig): the miner accepts
    // 50 HTLCs in flight on the channel.
    assert_eq!(s.held, 50, "{s:?}");
    assert_eq!((s.sent, s.refused), (51, 1));
    assert!(s.first_refusal.as_ref().is_some_and(|r| r.at_send), "{s:?}");
    assert!(s.probe.as_ref().is_some_and(|p| !p.settled), "{s:?}");
    assert_eq!((s.claimed, s.failed_back), (25, 25));
    assert_eq!(s.outcomes_matched, 50);
    assert_eq!(s.claimed_sats, 25 * 2_000);
    assert!(s.balances_returned, "{s:?}");
    assert_eq!(s.lost_sats, 0);
    assert_eq!(report.ceilings[0].chats_per_sec, 50.0);
}
