//! `bench federation` runs on the real coordinators (aleph-bft on loopback): four members sign two epochs,
//! and an epoch result recomputes. Figures are printed by the command, never asserted.

use boltensor_bench::federation::{
    agreement, epoch_cost, markdown, ordering, FederationFigures, TIMING,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_coordinators_sign_epochs_and_a_result_recomputes() {
    let row = agreement(4, 2)
        .await
        .expect("four members agree on two epochs");
    assert_eq!(row.members, 4);
    assert!(row.first_epoch_s > 0.0 && row.per_epoch_s > 0.0, "{row:?}");
    let epoch = epoch_cost(32, 8, 1).expect("the result recomputes");
    assert_eq!((epoch.miners, epoch.validators), (32, 8));
    assert!(epoch.payouts > 0, "{epoch:?}");
    let table = markdown(&FederationFigures {
        rounds_per_session: TIMING.rounds_per_session,
        round_delay_ms: TIMING.round_delay_ms,
        agreement: vec![row],
        epoch,
        ordering: vec![],
    });
    assert!(table.contains("| 4 |"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_registration_is_signed_at_every_member() {
    let row = ordering(4, 2)
        .await
        .expect("two registrations ordered and signed");
    assert_eq!((row.members, row.items), (4, 2));
    assert!(row.p50_ms > 0.0 && row.p50_ms <= row.max_ms, "{row:?}");
}
