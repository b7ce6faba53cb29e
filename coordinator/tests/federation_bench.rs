//! Benchmark figures for the federation (printed, never asserted):
//! `cargo test --release -p boltensor-coordinator --test federation_bench -- --ignored --nocapture`
//!
//! - time for N coordinators on loopback to agree on (and sign) sessions and epochs, N = 4 and 7;
//! - time to compute one epoch result (Yuma on bonded stake + payouts) at 256 miners × 64 validators.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin::secp256k1::{Keypair, SecretKey, SECP256K1};
use boltensor_coordinator::config::{ConsensusTiming, Member};
use boltensor_coordinator::engine::Event;
use boltensor_coordinator::items::Registration;
use boltensor_coordinator::params::Params;
use boltensor_coordinator::state::{BondInfo, Neuron, State};
use boltensor_coordinator::{start, CoordinatorConfig, FederationConfig, Options};
use boltensor_protocol::weights::WeightVector;
use boltensor_protocol::Role;
use boltensor_testenv::free_port;

fn key(i: u64) -> Keypair {
    let mut b = [7u8; 32];
    b[..8].copy_from_slice(&(i + 1).to_be_bytes());
    Keypair::from_secret_key(SECP256K1, &SecretKey::from_slice(&b).expect("valid key"))
}

async fn agreement(n: usize, epochs: u64) -> (Duration, Duration) {
    let keys: Vec<Keypair> = (0..n as u64).map(|i| key(1000 + i)).collect();
    let members = keys
        .iter()
        .map(|kp| Member {
            key: kp.x_only_public_key().0,
            p2p: SocketAddr::from(([127, 0, 0, 1], free_port().expect("port"))),
            api: SocketAddr::from(([127, 0, 0, 1], free_port().expect("port"))),
        })
        .collect();
    let federation = FederationConfig {
        name: "bench".into(),
        members,
        timing: ConsensusTiming {
            rounds_per_session: 20,
            round_delay_ms: 100,
        },
        params: Params {
            epoch_sessions: 1,
            ..Params::default()
        },
    };
    let dirs: Vec<_> = (0..n)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let mut running = Vec::new();
    for i in 0..n {
        running.push(
            start(
                CoordinatorConfig {
                    federation: federation.clone(),
                    index: i,
                    keypair: keys[i],
                    data_dir: dirs[i].path().to_path_buf(),
                },
                Options::default(),
            )
            .await
            .expect("start"),
        );
    }
    // Time from start to the first signed epoch at every member, then per further epoch.
    let t0 = Instant::now();
    let mut subs: Vec<_> = running.iter().map(|r| r.engine.subscribe()).collect();
    let mut first = Duration::ZERO;
    for e in 0..epochs {
        for s in &mut subs {
            loop {
                if let Ok(Event::Epoch(got)) = s.recv().await {
                    if got >= e {
                        break;
                    }
                }
            }
        }
        if e == 0 {
            first = t0.elapsed();
        }
    }
    let per_epoch = (t0.elapsed() - first) / (epochs.max(2) - 1) as u32;
    for r in running {
        r.shutdown().await;
    }
    (first, per_epoch)
}

fn big_state(miners: usize, validators: usize) -> State {
    let mut st = State::genesis(Params::default(), 4);
    st.params.max_uids = (miners + validators) as u16;
    for i in 0..(miners + validators) {
        let kp = key(i as u64);
        let role = if i < miners {
            Role::Miner
        } else {
            Role::Validator
        };
        let node = key(100_000 + i as u64).public_key().to_string();
        st.uids.push(Some(Neuron {
            registration: Registration::new(role, kp.x_only_public_key().0, node, [0; 32]),
            bond: (role == Role::Validator).then(|| BondInfo {
                outpoint: format!("{:064x}:0", i),
                amount_sat: 100_000 + i as u64 * 1000,
            }),
            attested_ok: BTreeSet::from([0, 1, 2]),
            attested_gone: BTreeSet::new(),
            registered_epoch: 0,
            registered_session: 0,
            last_incentive: 0,
            last_emission: 0,
            slashed: false,
        }));
        st.permits.push(role == Role::Validator);
        st.bonds.push(Vec::new());
    }
    st.session = 10;
    for v in miners..miners + validators {
        let kp = key(v as u64);
        let weights: BTreeMap<String, u16> = (0..miners)
            .map(|m| {
                let node = key(100_000 + m as u64).public_key().to_string();
                (node, ((m * 7919 + v * 104_729) % 65_535) as u16)
            })
            .collect();
        let sw = WeightVector {
            epoch: 0,
            validator: kp.x_only_public_key().0.serialize(),
            weights,
        }
        .sign(&kp);
        st.weights.insert(v as u16, (0, 5, sw));
    }
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
async fn federation_figures() {
    for n in [4usize, 7] {
        let (first, per) = agreement(n, 4).await;
        println!(
            "agreement, {n} coordinators on loopback (20 rounds × 100 ms per session, 1 session per epoch): first signed epoch after {:.2} s, then one every {:.2} s",
            first.as_secs_f64(),
            per.as_secs_f64()
        );
    }
    let st = big_state(256, 64);
    let t = Instant::now();
    let runs = 5;
    let mut payouts = 0;
    for _ in 0..runs {
        payouts = st.epoch_result([0; 32], 1, 4).payouts.len();
    }
    let per = t.elapsed() / runs;
    let signed = st.epoch_result([0; 32], 1, 4);
    let t = Instant::now();
    signed.recompute().expect("recomputes");
    let verify = t.elapsed();
    println!(
        "epoch computation, 256 miners × 64 validators: {:.1} ms per epoch result ({payouts} payouts); independent recomputation incl. 64 signature checks {:.1} ms",
        per.as_secs_f64() * 1e3,
        verify.as_secs_f64() * 1e3
    );
}
