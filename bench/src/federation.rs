//! `boltensor bench federation`: N coordinators on loopback agreeing on sessions and epochs (aleph-bft, the
//! real `boltensor_coordinator::start`), and the cost of one epoch result (Yuma on bonded stake + payouts)
//! and of its independent recomputation at 256 miners × 64 validators (docs/federation.md, ADR 0009).

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
use serde::Serialize;

/// The consensus timing the benchmark runs (the coordinators' default shape: rounds × delay per session).
pub const TIMING: ConsensusTiming = ConsensusTiming {
    rounds_per_session: 8,
    round_delay_ms: 60,
};

/// One federation size.
#[derive(Debug, Clone, Serialize)]
pub struct AgreementRow {
    /// Coordinators.
    pub members: usize,
    /// From start to the first epoch signed at every member, s.
    pub first_epoch_s: f64,
    /// Then per epoch (one session per epoch), s.
    pub per_epoch_s: f64,
    /// Epochs waited for.
    pub epochs: u64,
}

/// One epoch result's cost.
#[derive(Debug, Clone, Serialize)]
pub struct EpochCost {
    /// Miners.
    pub miners: usize,
    /// Validators.
    pub validators: usize,
    /// Mean time to compute one epoch result, ms.
    pub compute_ms: f64,
    /// Payouts in it.
    pub payouts: usize,
    /// Independent recomputation, signature checks included, ms.
    pub recompute_ms: f64,
}

/// Everything one run measures.
#[derive(Debug, Clone, Serialize)]
pub struct FederationFigures {
    /// Rounds per session and delay per round.
    pub rounds_per_session: u16,
    /// ms.
    pub round_delay_ms: u64,
    /// Per federation size.
    pub agreement: Vec<AgreementRow>,
    /// The epoch computation.
    pub epoch: EpochCost,
    /// Item submitted → its session signed at every member, per federation size.
    #[serde(default)]
    pub ordering: Vec<OrderingRow>,
}

/// A benchmark failure.
#[derive(Debug, thiserror::Error)]
pub enum FederationBenchError {
    /// A coordinator did not start.
    #[error("starting coordinator {index}: {reason}")]
    Start {
        /// Its index.
        index: usize,
        /// Why.
        reason: String,
    },
    /// No epoch within the deadline.
    #[error("no signed epoch {epoch} at every member within {secs} s")]
    Timeout {
        /// The epoch waited for.
        epoch: u64,
        /// The deadline.
        secs: u64,
    },
    /// Setup failed.
    #[error("{0}")]
    Setup(String),
}

fn key(i: u64) -> Keypair {
    let mut b = [7u8; 32];
    b[..8].copy_from_slice(&(i + 1).to_be_bytes());
    Keypair::from_secret_key(SECP256K1, &SecretKey::from_slice(&b).expect("nonzero key"))
}

/// `n` coordinators on loopback (the benchmark's timing, one session per epoch, miners register without
/// a bond), each on its own temporary data directory (returned: it must outlive them).
async fn start_members(
    n: usize,
) -> Result<
    (
        Vec<boltensor_coordinator::Running>,
        Vec<tempfile::TempDir>,
        FederationConfig,
    ),
    FederationBenchError,
> {
    let keys: Vec<Keypair> = (0..n as u64).map(|i| key(1000 + i)).collect();
    let port = || free_port().map_err(|e| FederationBenchError::Setup(e.to_string()));
    let mut members = Vec::new();
    for kp in &keys {
        members.push(Member {
            key: kp.x_only_public_key().0,
            p2p: SocketAddr::from(([127, 0, 0, 1], port()?)),
            api: SocketAddr::from(([127, 0, 0, 1], port()?)),
        });
    }
    let federation = FederationConfig {
        name: "bench".into(),
        members,
        timing: TIMING,
        params: Params {
            epoch_sessions: 1,
            miner_bond_min_sat: 0,
            ..Params::default()
        },
    };
    let mut dirs = Vec::new();
    for _ in 0..n {
        dirs.push(tempfile::tempdir().map_err(|e| FederationBenchError::Setup(e.to_string()))?);
    }
    let mut running = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let r = start(
            CoordinatorConfig {
                federation: federation.clone(),
                index: i,
                keypair: keys[i],
                data_dir: dir.path().to_path_buf(),
            },
            Options::default(),
        )
        .await
        .map_err(|e| FederationBenchError::Start {
            index: i,
            reason: e.to_string(),
        })?;
        running.push(r);
    }
    Ok((running, dirs, federation))
}

/// Time for `n` coordinators on loopback to sign their first epoch, then each of `epochs` − 1 more.
pub async fn agreement(n: usize, epochs: u64) -> Result<AgreementRow, FederationBenchError> {
    let (running, _dirs, _) = start_members(n).await?;
    let t0 = Instant::now();
    let mut subs: Vec<_> = running.iter().map(|r| r.engine.subscribe()).collect();
    let mut first = Duration::ZERO;
    let deadline = Duration::from_secs(60 + 10 * epochs);
    let mut result = Ok(());
    'epochs: for e in 0..epochs {
        for s in &mut subs {
            loop {
                let left = deadline.saturating_sub(t0.elapsed());
                match tokio::time::timeout(left, s.recv()).await {
                    Ok(Ok(Event::Epoch(got))) if got >= e => break,
                    Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                    _ => {
                        result = Err(FederationBenchError::Timeout {
                            epoch: e,
                            secs: deadline.as_secs(),
                        });
                        break 'epochs;
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
    result?;
    Ok(AgreementRow {
        members: n,
        first_epoch_s: first.as_secs_f64(),
        per_epoch_s: per_epoch.as_secs_f64(),
        epochs,
    })
}

/// Items from submission to their signed session: a registration submitted at member 0, until every member
/// has signed the session that ordered it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderingRow {
    /// Coordinators.
    pub members: usize,
    /// Items submitted, one after the other (each waited for).
    pub items: usize,
    /// Submission → the ordering session signed at every member, p50 ms.
    pub p50_ms: f64,
    /// p99 ms.
    pub p99_ms: f64,
    /// The slowest, ms.
    pub max_ms: f64,
}

/// `items` registrations submitted one after another at member 0 of `n` coordinators; for each, the time
/// until every member has signed the session whose items carry it.
pub async fn ordering(n: usize, items: usize) -> Result<OrderingRow, FederationBenchError> {
    use boltensor_coordinator::items::Registration;
    let items = items.max(1);
    use boltensor_coordinator::ConsensusItem;
    let (running, _dirs, federation) = start_members(n).await?;
    let mut subs: Vec<_> = running.iter().map(|r| r.engine.subscribe()).collect();
    let deadline = Duration::from_secs(30);
    let result = async {
        // Warm: one session signed at every member first.
        for s in &mut subs {
            loop {
                match tokio::time::timeout(deadline, s.recv()).await {
                    Ok(Ok(Event::Session(_))) => break,
                    Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                    _ => {
                        return Err(FederationBenchError::Timeout {
                            epoch: 0,
                            secs: deadline.as_secs(),
                        })
                    }
                }
            }
        }
        let mut times = Vec::new();
        for i in 0..items as u64 {
            let kp = key(50_000 + i);
            let node = key(60_000 + i);
            let mut reg = Registration::new(
                Role::Miner,
                kp.x_only_public_key().0,
                node.public_key().to_string(),
                federation.id(),
            );
            reg.api = Some(format!("http://127.0.0.1:1/bench/{i}"));
            reg.models = vec!["all-minilm-l6-v2".into()];
            let reg = reg.sign_node_with_key(&node.secret_key()).sign(&kp);
            let who = reg.key;
            // Drop what the warm-up and earlier items left in the event queues.
            for s in &mut subs {
                while s.try_recv().is_ok() {}
            }
            let t0 = Instant::now();
            running[0]
                .engine
                .submit(ConsensusItem::Register(reg), None)
                .map_err(|e| FederationBenchError::Setup(format!("registration refused: {e}")))?;
            for (m, s) in subs.iter_mut().enumerate() {
                loop {
                    let left = deadline.saturating_sub(t0.elapsed());
                    match tokio::time::timeout(left, s.recv()).await {
                        Ok(Ok(Event::Session(session))) => {
                            let carried = running[m]
                                .engine
                                .store()
                                .session(session)
                                .map_err(|e| FederationBenchError::Setup(e.to_string()))?
                                .is_some_and(|signed| {
                                    signed.items.iter().any(|a| {
                                        matches!(&a.item, ConsensusItem::Register(r) if r.key == who)
                                    })
                                });
                            if carried {
                                break;
                            }
                        }
                        Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                        _ => {
                            return Err(FederationBenchError::Setup(format!(
                                "item {i} not in a signed session at member {m} within {} s",
                                deadline.as_secs()
                            )))
                        }
                    }
                }
            }
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        Ok(times)
    }
    .await;
    for r in running {
        r.shutdown().await;
    }
    let mut times = result?;
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    Ok(OrderingRow {
        members: n,
        items,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: times.last().copied().unwrap_or(0.0),
    })
}

/// A federation state with `miners` miners and `validators` bonded validators, each weighting every miner.
pub fn big_state(miners: usize, validators: usize) -> State {
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

/// One epoch result at `miners` × `validators`, `runs` times, and its recomputation.
pub fn epoch_cost(
    miners: usize,
    validators: usize,
    runs: u32,
) -> Result<EpochCost, FederationBenchError> {
    let st = big_state(miners, validators);
    let t = Instant::now();
    let mut payouts = 0;
    for _ in 0..runs.max(1) {
        payouts = st.epoch_result([0; 32], 1, 4).payouts.len();
    }
    let compute = t.elapsed() / runs.max(1);
    let signed = st.epoch_result([0; 32], 1, 4);
    let t = Instant::now();
    signed
        .recompute()
        .map_err(|e| FederationBenchError::Setup(format!("recomputation refused: {e}")))?;
    let recompute = t.elapsed();
    Ok(EpochCost {
        miners,
        validators,
        compute_ms: compute.as_secs_f64() * 1e3,
        payouts,
        recompute_ms: recompute.as_secs_f64() * 1e3,
    })
}

/// The whole benchmark: agreement at each size in `sizes` over `epochs` epochs, then the epoch cost at
/// 256 × 64.
pub async fn run(sizes: &[usize], epochs: u64) -> Result<FederationFigures, FederationBenchError> {
    let mut agreement_rows = Vec::new();
    let mut ordering_rows = Vec::new();
    for &n in sizes {
        eprintln!("bench federation: {n} coordinators, {epochs} epochs …");
        agreement_rows.push(agreement(n, epochs).await?);
        eprintln!("bench federation: {n} coordinators, {ORDERING_ITEMS} registrations one after another …");
        ordering_rows.push(ordering(n, ORDERING_ITEMS).await?);
    }
    eprintln!("bench federation: one epoch result at 256 miners × 64 validators …");
    Ok(FederationFigures {
        rounds_per_session: TIMING.rounds_per_session,
        round_delay_ms: TIMING.round_delay_ms,
        agreement: agreement_rows,
        epoch: epoch_cost(256, 64, 5)?,
        ordering: ordering_rows,
    })
}

/// Registrations `run` submits one after another per federation size.
pub const ORDERING_ITEMS: usize = 8;

/// The figures as a table.
pub fn markdown(f: &FederationFigures) -> String {
    let mut s = format!(
        "Agreement on loopback ({} rounds × {} ms per session, one session per epoch):\n\n\
         | coordinators | first signed epoch at every member | then one epoch every |\n|---|---|---|\n",
        f.rounds_per_session, f.round_delay_ms
    );
    for r in &f.agreement {
        s.push_str(&format!(
            "| {} | {:.2} s | {:.2} s |\n",
            r.members, r.first_epoch_s, r.per_epoch_s
        ));
    }
    if !f.ordering.is_empty() {
        s.push_str(
            "\nA registration submitted at one member → the session carrying it signed at every member:\n\n\
             | coordinators | items | p50 | p99 | slowest |\n|---|---|---|---|---|\n",
        );
        for r in &f.ordering {
            s.push_str(&format!(
                "| {} | {} | {:.0} ms | {:.0} ms | {:.0} ms |\n",
                r.members, r.items, r.p50_ms, r.p99_ms, r.max_ms
            ));
        }
    }
    s.push_str(&format!(
        "\nOne epoch result at {} miners × {} validators: {:.1} ms ({} payouts); its independent recomputation, \
         {} signature checks included: {:.1} ms.\n",
        f.epoch.miners,
        f.epoch.validators,
        f.epoch.compute_ms,
        f.epoch.payouts,
        f.epoch.validators,
        f.epoch.recompute_ms
    ));
    s
}
