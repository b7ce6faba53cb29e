//! The load bench with tiny numbers: checks its accounting (one outcome per request, the money balances,
//! every accepted weight vector in every member's signed epoch once), never its timings.

use std::time::Duration;

use boltensor_bench::load::{self, FederationLoadConfig, LoadConfig, PaidLoadConfig};
use boltensor_coordinator::config::ConsensusTiming;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tiny_load_run_loses_nothing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,boltensor_bench=info,AlephBFT=off,ldk_node=off,lightning=off")
        .with_test_writer()
        .try_init();
    let report = load::run(LoadConfig {
        paid: Some(PaidLoadConfig {
            embeddings: 10,
            chats: 0,
            concurrency: 4,
            max_duration: Duration::from_secs(120),
            channels_per_hop: 1,
        }),
        federation: Some(FederationLoadConfig {
            validators: 4,
            miners: 8,
            epochs: 1,
            concurrency: 4,
            epoch_sessions: 2,
            timing: ConsensusTiming {
                rounds_per_session: 8,
                round_delay_ms: 50,
            },
            max_duration: Duration::from_secs(120),
        }),
    })
    .await
    .expect("the load bench runs");
    println!("{}", report.render());

    let paid = report.paid.expect("the paid part ran");
    assert_eq!((paid.planned, paid.started), (10, 10));
    assert_eq!(paid.outcomes.total(), 10, "one outcome per request");
    assert_eq!(
        paid.outcomes.settled, 10,
        "every request settled: {:?}",
        paid.first_failure
    );
    let l = &paid.ledger;
    assert!(l.balanced, "the books balance: {:?}", l.problems);
    assert!(
        l.audit_settled,
        "audit: {} {:?}",
        l.audit, l.audit_violations
    );
    assert_eq!(l.client_payments, 10);
    assert_eq!(l.miner_payments, 10);
    assert_eq!(l.hub_forwards, 10);
    assert_eq!(
        l.client_sent_msat + l.client_fees_msat,
        l.miner_received_msat + l.hub_fees_msat
    );
    assert!(l.client_sent_msat > 0 && l.client_fees_msat > 0);
    assert_eq!(l.pending_payments, 0);
    assert!(paid.nothing_lost);
    assert_eq!(paid.latency_all.n, 10);
    assert!(paid.memory.rss_peak_kib >= paid.memory.rss_before_kib);

    let fed = report.federation.expect("the federation part ran");
    assert_eq!((fed.members, fed.epochs), (4, 1));
    assert_eq!(fed.vectors, 4);
    assert_eq!(fed.posts, 16, "each vector to each member");
    assert_eq!(
        fed.delivered, 4,
        "every vector accepted: {:?}",
        fed.first_refusal
    );
    assert!(fed.accepted_202 >= 4);
    assert_eq!(fed.per_epoch[0].included, 4, "in every member's result");
    assert_eq!(
        (fed.lost, fed.counted_twice, fed.unexpected),
        (0, 0, 0),
        "none lost, none twice"
    );
    assert!(fed.results_agree);
    assert!(fed.nothing_lost);
    assert_eq!(fed.post_latency.n, 16);
}
