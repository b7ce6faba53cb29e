//! Attacks on the coordinators' network surface, performed against a running federation over real TCP
//! (issue 20, rows 12 and 13; docs/security.md):
//! - a man in the middle of a peer link flips a bit in a frame, replays one, reorders two, and replays a
//!   whole recorded connection: each is refused and the link closed, and the federation still agrees;
//! - a dialer that claims a member's index without its key, and a listener at a member's address without
//!   its key (or relaying to another member), are refused: the honest side sends them nothing;
//! - one sender floods the API with the same signed item and with many distinct items, and opens more
//!   dashboard streams than allowed: the mempool stays bounded, the duplicate is ordered once, streams
//!   beyond the cap are refused.

mod common;
use common::init_tracing;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::secp256k1::{Keypair, SecretKey, SECP256K1};
use boltensor_coordinator::engine::{session_header, signed_session_signatures, DIRECT_SIGNATURE};
use boltensor_coordinator::items::ConsensusItem;
use boltensor_coordinator::keychain::Keychain;
use boltensor_coordinator::net::{self, LinkError, HELLO, REPLY};
use boltensor_coordinator::{start, CoordinatorConfig, Options};
use boltensor_testenv::wait_for;
use common::{miner_registration, Net, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

fn random_keypair() -> Keypair {
    loop {
        let mut b = [0u8; 32];
        net::fill_random(&mut b);
        if let Ok(sk) = SecretKey::from_slice(&b) {
            return Keypair::from_secret_key(SECP256K1, &sk);
        }
    }
}

fn free_addr() -> Result<std::net::SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// What the man in the middle does to the dialer → listener frames of its n-th connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    /// Flips one bit in the ciphertext of a frame.
    FlipBit,
    /// Sends a frame twice.
    Replay,
    /// Swaps two consecutive frames.
    Reorder,
    /// Forwards everything.
    None,
}

const PLAN: [Tamper; 3] = [Tamper::FlipBit, Tamper::Replay, Tamper::Reorder];
/// The frame (counted from 0 on each connection) the man in the middle tampers with.
const AT: usize = 5;

#[derive(Default)]
struct Mitm {
    /// Connections relayed.
    connections: AtomicU64,
    /// Per tampered connection: whether the listener closed it after the tampering.
    closed_after_tamper: Mutex<Vec<(Tamper, bool)>>,
    /// Frames forwarded on the untampered connections.
    clean_frames: AtomicU64,
    /// The dialer's bytes of the first connection (hello and the first frames), for a replay.
    recorded: Mutex<Vec<u8>>,
}

async fn read_frame(s: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let mut rest = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut rest).await?;
    let mut f = len.to_vec();
    f.extend(rest);
    Ok(f)
}

/// Forwards the dialer's bytes to the listener, tampering with frame [`AT`] as `plan` says.
async fn forward(
    down_r: &mut OwnedReadHalf,
    up_w: &mut OwnedWriteHalf,
    plan: Tamper,
    first: bool,
    mitm: &Mitm,
) -> std::io::Result<()> {
    let mut hello = [0u8; HELLO];
    down_r.read_exact(&mut hello).await?;
    up_w.write_all(&hello).await?;
    if first {
        mitm.recorded.lock().expect("lock").extend(hello);
    }
    let mut held: Option<Vec<u8>> = None;
    for k in 0usize.. {
        let mut f = read_frame(down_r).await?;
        if first && k < AT {
            mitm.recorded.lock().expect("lock").extend(&f);
        }
        match (plan, k) {
            (Tamper::FlipBit, AT) => {
                f[10] ^= 0x04;
                up_w.write_all(&f).await?;
            }
            (Tamper::Replay, AT) => {
                up_w.write_all(&f).await?;
                up_w.write_all(&f).await?;
            }
            (Tamper::Reorder, AT) => held = Some(f),
            (Tamper::Reorder, k) if k == AT + 1 => {
                up_w.write_all(&f).await?;
                up_w.write_all(&held.take().expect("held frame AT")).await?;
            }
            _ => {
                up_w.write_all(&f).await?;
                if plan == Tamper::None {
                    mitm.clean_frames.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    Ok(())
}

/// Relays one dialer connection to the real listener at `upstream`, tampering as `plan` says.
async fn relay(
    down: TcpStream,
    upstream: std::net::SocketAddr,
    plan: Tamper,
    first: bool,
    mitm: Arc<Mitm>,
) -> std::io::Result<()> {
    let up = TcpStream::connect(upstream).await?;
    let (mut up_r, mut up_w) = up.into_split();
    let (mut down_r, mut down_w) = down.into_split();
    // Listener → dialer: verbatim. When it ends, the listener has closed the link.
    let back = async {
        let _ = tokio::io::copy(&mut up_r, &mut down_w).await;
        let _ = down_w.shutdown().await;
    };
    let forth = forward(&mut down_r, &mut up_w, plan, first, &mitm);
    let tampered = plan != Tamper::None;
    tokio::select! {
        _ = back => {
            // The listener hung up first.
            if tampered {
                mitm.closed_after_tamper.lock().expect("lock").push((plan, true));
            }
        }
        r = forth => {
            if tampered {
                // The dialer went away (or the write failed because the listener had closed).
                let closed = r.is_err();
                mitm.closed_after_tamper.lock().expect("lock").push((plan, closed));
            }
        }
    }
    Ok(())
}

/// A man in the middle on `listen` in front of the listener at `upstream`.
async fn man_in_the_middle(listener: TcpListener, upstream: std::net::SocketAddr, mitm: Arc<Mitm>) {
    loop {
        let Ok((down, _)) = listener.accept().await else {
            continue;
        };
        let n = mitm.connections.fetch_add(1, Ordering::Relaxed) as usize;
        let plan = PLAN.get(n).copied().unwrap_or(Tamper::None);
        let mitm = mitm.clone();
        tokio::spawn(async move {
            let _ = relay(down, upstream, plan, n == 0, mitm).await;
        });
    }
}

async fn agreed_epochs(net: &Net, who: &[usize], from: u64, count: u64) -> Result<u64> {
    let long = Duration::from_secs(90);
    for e in from..from + count {
        let results = net.wait_epoch(who, e, long).await?;
        for r in &results[1..] {
            assert_eq!(
                r.certified(),
                results[0].certified(),
                "members published different results for epoch {e}"
            );
            let valid = boltensor_coordinator::verify_epoch(r, &net.federation)?;
            assert!(valid >= net.federation.threshold());
        }
        let valid = boltensor_coordinator::verify_epoch(&results[0], &net.federation)?;
        assert!(valid >= net.federation.threshold());
    }
    Ok(from + count - 1)
}

async fn epoch_now(net: &Net, i: usize) -> Result<u64> {
    Ok(net.status(i).await?["epoch"]
        .as_u64()
        .ok_or("status without epoch")?)
}

/// Row 13: a man in the middle of the link member 0 → member 1 (member 0's copy of the federation config
/// lists the man in the middle as member 1's peer address; the member keys, hence the federation id, are
/// the same).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_mitm_tampers_with_peer_frames() -> Result {
    init_tracing();
    let mut net = Net::new().await?;
    for i in 1..4 {
        net.members[i] = Some(net.start_member(i).await?);
    }
    let real = net.federation.members[1].p2p;
    let mitm_addr = free_addr()?;
    let mitm = Arc::new(Mitm::default());
    let proxy = tokio::spawn(man_in_the_middle(
        TcpListener::bind(mitm_addr).await?,
        real,
        mitm.clone(),
    ));
    let mut seen_by_0 = net.federation.clone();
    seen_by_0.members[1].p2p = mitm_addr;
    assert_eq!(seen_by_0.id(), net.federation.id());
    net.members[0] = Some(
        start(
            CoordinatorConfig {
                federation: seen_by_0,
                index: 0,
                keypair: net.keys[0],
                data_dir: net.dirs[0].path().to_path_buf(),
            },
            Options::default(),
        )
        .await?,
    );
    let member1 = net.members[1].as_ref().expect("running").engine.clone();
    let long = Duration::from_secs(60);

    // The three tampered connections are each closed by member 1; member 0 dials again, the fourth
    // connection runs clean.
    wait_for(
        "the three tampered links to close and a clean one to carry frames",
        long,
        || async {
            let closed = mitm.closed_after_tamper.lock().expect("lock").len();
            Ok(
                (closed >= PLAN.len() && mitm.clean_frames.load(Ordering::Relaxed) >= 20)
                    .then_some(()),
            )
        },
    )
    .await?;
    let outcomes = mitm.closed_after_tamper.lock().expect("lock").clone();
    let (_, _, _, refused_frames) = member1.link_stats().snapshot();
    println!(
        "man in the middle: {} connections; tampered → closed by the listener: {outcomes:?}; member 1 refused \
         {refused_frames} frames; {} frames relayed clean afterwards",
        mitm.connections.load(Ordering::Relaxed),
        mitm.clean_frames.load(Ordering::Relaxed)
    );
    for (plan, closed) in &outcomes {
        assert!(closed, "member 1 kept the link open after {plan:?}");
    }
    assert!(
        refused_frames >= PLAN.len() as u64,
        "member 1 refused {refused_frames} frames; every tampered connection must cost one"
    );

    // A replay of the whole first connection (hello and its first frames) on a fresh connection: the
    // listener's new ephemeral key makes the recorded hello worthless.
    let recorded = mitm.recorded.lock().expect("lock").clone();
    assert!(recorded.len() > HELLO);
    let (_, refused_before, frames_before, _) = member1.link_stats().snapshot();
    let mut s = TcpStream::connect(real).await?;
    let mut eph = [0u8; net::EPHEMERAL];
    s.read_exact(&mut eph).await?;
    let _ = s.write_all(&recorded).await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(long, s.read_to_end(&mut reply)).await?;
    assert!(
        reply.len() < REPLY,
        "member 1 answered a replayed hello with its signature"
    );
    wait_for("member 1 to count the refused replay", long, || async {
        Ok((member1.link_stats().snapshot().1 > refused_before).then_some(()))
    })
    .await?;
    println!(
        "replayed connection ({} bytes): closed with {} reply bytes; handshakes refused {} → {}",
        recorded.len(),
        reply.len(),
        refused_before,
        member1.link_stats().snapshot().1
    );
    let _ = frames_before;

    // The federation goes on and agrees.
    let (status, body) = net
        .post(
            0,
            "/v1/items",
            &serde_json::to_value(miner_registration("miner-a"))?,
        )
        .await?;
    assert_eq!(status, 202, "{body}");
    let e = epoch_now(&net, 0).await?;
    let last = agreed_epochs(&net, &[0, 1, 2, 3], e + 1, 2).await?;
    println!(
        "epochs {}..={last}: identical at all four members, verified",
        e + 1
    );
    proxy.abort();
    for m in net.members.iter().flatten() {
        m.stop();
    }
    Ok(())
}

/// Row 13: impostors without a member's key. Members 0–2 run; member 3's address is the attacker's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_peer_impostors_without_member_keys() -> Result {
    init_tracing();
    let mut net = Net::new().await?;
    for i in 0..3 {
        net.members[i] = Some(net.start_member(i).await?);
    }
    let fed = net.federation.clone();
    let long = Duration::from_secs(60);
    let engines: Vec<_> = (0..3)
        .map(|i| net.members[i].as_ref().expect("running").engine.clone())
        .collect();
    // The attacker runs the project's own link code with a key of its own, claiming member 3's index.
    let fake = Keychain::new(3, fed.keys(), random_keypair(), fed.id(), fed.threshold());

    // 1. A dialer that claims to be member 3 (and then member 1) without its key.
    let refused_before = engines[0].link_stats().snapshot().1;
    for claim in [3usize, 1] {
        let kc = Keychain::new(
            claim,
            fed.keys(),
            random_keypair(),
            fed.id(),
            fed.threshold(),
        );
        match net::dial(fed.members[0].p2p, 0, &kc, &fed.id()).await {
            Err(LinkError::Handshake(why)) => println!("dialer impostor as member {claim}: {why}"),
            Err(e) => return Err(format!("expected a refused handshake, got {e}").into()),
            Ok(_) => {
                return Err(format!("member 0 accepted a dialer posing as member {claim}").into())
            }
        }
    }
    wait_for("member 0 to count both refused dialers", long, || async {
        Ok((engines[0].link_stats().snapshot().1 >= refused_before + 2).then_some(()))
    })
    .await?;

    // 2. A listener at member 3's address without member 3's key: the honest dialers check its
    // signature and send it nothing.
    let listener = TcpListener::bind(fed.members[3].p2p).await?;
    let handshakes = Arc::new(AtomicU64::new(0));
    let frames = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let impostor = {
        let (handshakes, frames, stop, fake, fed_id) = (
            handshakes.clone(),
            frames.clone(),
            stop.clone(),
            fake.clone(),
            fed.id(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (fake, handshakes, frames) = (fake.clone(), handshakes.clone(), frames.clone());
                tokio::spawn(async move {
                    // From the impostor's side the handshake "succeeds": it checked the honest dialer
                    // and answered with a signature by its own key.
                    if let Ok(mut link) = net::accept(stream, &fake, &fed_id).await {
                        handshakes.fetch_add(1, Ordering::Relaxed);
                        while link.next_frame().await.is_ok() {
                            frames.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        })
    };
    let dialer_refusals: Vec<u64> = engines
        .iter()
        .map(|e| e.link_stats().snapshot().1)
        .collect();
    wait_for("the honest members to dial the impostor", long, || async {
        Ok((handshakes.load(Ordering::Relaxed) >= 3).then_some(()))
    })
    .await?;
    // Give the honest dialers the time they would take to send a frame on an accepted link (a unit goes
    // out every round) — by waiting for the honest members to finish a session meanwhile.
    let s0 = net.status(0).await?["session"].as_u64().ok_or("session")?;
    wait_for("a session to finish", long, || async {
        Ok(net
            .status(0)
            .await
            .ok()
            .and_then(|s| s["session"].as_u64())
            .filter(|s| *s > s0 + 1))
    })
    .await?;
    stop.store(true, Ordering::Relaxed);
    impostor.abort();
    let received = frames.load(Ordering::Relaxed);
    println!(
        "listener impostor at member 3's address: {} handshakes answered with a wrong key, {received} frames \
         received",
        handshakes.load(Ordering::Relaxed)
    );
    assert_eq!(
        received, 0,
        "an honest member sent frames to a listener without member 3's key"
    );
    for (i, (e, before)) in engines.iter().zip(&dialer_refusals).enumerate() {
        assert!(
            e.link_stats().snapshot().1 > *before,
            "member {i} did not refuse the listener impostor"
        );
    }

    // 3. A relay at member 3's address to member 1 (a real member, answering with its own key): the
    // transcript names member 3, so neither side accepts.
    let relay_listener = net::bind_retrying(fed.members[3].p2p).await?;
    let target = fed.members[1].p2p;
    let relayed = Arc::new(AtomicU64::new(0));
    let relay_task = {
        let relayed = relayed.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = relay_listener.accept().await else {
                    continue;
                };
                relayed.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
            }
        })
    };
    let member1_refused = engines[1].link_stats().snapshot().1;
    wait_for(
        "member 1 to refuse relayed hellos meant for member 3",
        long,
        || async {
            Ok((relayed.load(Ordering::Relaxed) >= 3
                && engines[1].link_stats().snapshot().1 >= member1_refused + 3)
                .then_some(()))
        },
    )
    .await?;
    relay_task.abort();
    println!(
        "relay to member 1 at member 3's address: {} connections, member 1 refused {}",
        relayed.load(Ordering::Relaxed),
        engines[1].link_stats().snapshot().1 - member1_refused
    );

    // The three honest members go on and agree.
    let e = epoch_now(&net, 0).await?;
    agreed_epochs(&net, &[0, 1, 2], e + 1, 1).await?;
    for m in net.members.iter().flatten() {
        m.stop();
    }
    Ok(())
}

/// A member that holds its key (so its links are accepted) but is Byzantine: for every session it sends
/// direct session signatures (the frames members broadcast as soon as they sign, ahead of the same
/// signature in their next unit) that are garbage or its own signature over a different header, again and
/// again. The three honest members are exactly the threshold, so one accepted bad signature would finish
/// a session with fewer than a threshold of valid ones: every signed session must carry only valid
/// signatures, and the federation must go on signing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_direct_session_signatures_from_a_byzantine_member() -> Result {
    init_tracing();
    let mut net = Net::new().await?;
    for i in 0..3 {
        net.members[i] = Some(net.start_member(i).await?);
    }
    let fed = net.federation.clone();
    let byz = Keychain::new(3, fed.keys(), net.keys[3], fed.id(), fed.threshold());
    let p2p = net::P2p::start(
        fed.members[3].p2p,
        fed.members.iter().map(|m| m.p2p).collect(),
        byz.clone(),
        fed.id(),
    )
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let http = net.http.clone();
    let api0 = net.api(0);
    let attacker = {
        let (p2p, stop, sent, fed_id) = (p2p.clone(), stop.clone(), sent.clone(), fed.id());
        tokio::spawn(async move {
            let drain = {
                let p2p = p2p.clone();
                tokio::spawn(async move { while p2p.recv().await.is_some() {} })
            };
            while !stop.load(Ordering::Relaxed) {
                let session = async {
                    let v: serde_json::Value = http
                        .get(format!("{api0}/v1/status"))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?
                        .json()
                        .await
                        .map_err(|e| e.to_string())?;
                    v["session"].as_u64().ok_or(format!("no session in {v}"))
                }
                .await
                .map_err(|e| eprintln!("attacker: {e}"))
                .ok();
                if let Some(now) = session {
                    for s in now..now + 3 {
                        let mut garbage = [0u8; 64];
                        net::fill_random(&mut garbage);
                        let wrong = byz.sign_bytes(&session_header(&fed_id, s, &[7; 32], None));
                        // Alternate which one arrives first in a session.
                        let (a, b) = if s % 2 == 0 {
                            (garbage, wrong.0)
                        } else {
                            (wrong.0, garbage)
                        };
                        p2p.broadcast(s | DIRECT_SIGNATURE, &a);
                        p2p.broadcast(s | DIRECT_SIGNATURE, &b);
                        sent.fetch_add(2, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            drain.abort();
        })
    };
    let s0 = net.status(0).await?["session"].as_u64().ok_or("session")?;
    let long = Duration::from_secs(90);
    wait_for("three more sessions signed at member 0", long, || async {
        Ok(net
            .status(0)
            .await
            .ok()
            .and_then(|s| s["session"].as_u64())
            .filter(|s| *s >= s0 + 4))
    })
    .await?;
    stop.store(true, Ordering::Relaxed);
    attacker.await?;
    assert!(
        sent.load(Ordering::Relaxed) > 0,
        "the attacker sent nothing"
    );
    let mut checked = 0;
    for i in 0..3 {
        let store = net.members[i].as_ref().expect("running").engine.store();
        for s in s0..s0 + 3 {
            let Some(signed) = store.session(s)? else {
                continue;
            };
            let valid = signed_session_signatures(&fed, &signed);
            assert_eq!(
                valid,
                signed.signatures.len(),
                "member {i} finished session {s} with a signature that is not valid: {:?}",
                signed.signatures.keys().collect::<Vec<_>>()
            );
            assert!(valid >= fed.threshold());
            assert!(!signed.signatures.contains_key(&3));
            checked += 1;
        }
    }
    println!(
        "byzantine member 3 sent {} bad direct signatures; {checked} signed sessions at the honest members \
         carry only valid signatures",
        sent.load(Ordering::Relaxed)
    );
    assert!(checked >= 6, "{checked} sessions checked");
    for m in net.members.iter().flatten() {
        m.stop();
    }
    Ok(())
}

/// Counts, over member 0's finished sessions `from..`, the accepted items `pick` matches.
fn ordered_count(
    engine: &boltensor_coordinator::Engine,
    from: u64,
    pick: impl Fn(&ConsensusItem) -> bool,
) -> Result<usize> {
    let mut n = 0;
    let mut s = from;
    while let Some(signed) = engine.store().session(s)? {
        n += signed.items.iter().filter(|a| pick(&a.item)).count();
        s += 1;
    }
    Ok(n)
}

/// Sends `bodies` to `url` with `concurrency` requests in flight; returns the statuses in order.
async fn flood(
    http: &reqwest::Client,
    url: String,
    bodies: Vec<serde_json::Value>,
    concurrency: usize,
) -> Vec<u16> {
    use futures_util::StreamExt;
    futures_util::stream::iter(bodies.into_iter().map(|b| {
        let req = http.post(url.clone()).json(&b);
        async move { req.send().await.map_or(0, |r| r.status().as_u16()) }
    }))
    .buffered(concurrency)
    .collect()
    .await
}

fn tally(statuses: &[u16]) -> std::collections::BTreeMap<u16, usize> {
    let mut t = std::collections::BTreeMap::new();
    for s in statuses {
        *t.entry(*s).or_default() += 1;
    }
    t
}

/// Row 12: one sender floods a member's API — the same signed weights 1,000 times, 300 distinct items
/// under one key, 150 items under distinct keys from one IP — and opens more dashboard streams than
/// allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_flooding_the_coordinator_api() -> Result {
    init_tracing();
    let mut net = Net::new().await?;
    // Long epochs, so the flooded weights stay for the epoch being collected.
    net.federation.params.epoch_sessions = 1000;
    for i in 0..4 {
        net.members[i] = Some(net.start_member(i).await?);
    }
    let long = Duration::from_secs(60);
    let engine = net.members[0].as_ref().expect("running").engine.clone();
    let regs = net
        .bonded_registrations(&[("validator-1", 300_000)])
        .await?;
    let (status, body) = net
        .post(0, "/v1/items", &serde_json::to_value(&regs[0])?)
        .await?;
    assert_eq!(status, 202, "{body}");
    wait_for("validator-1's bond to count at member 0", long, || async {
        let reg = net.get(0, "/v1/registry").await.ok().flatten();
        let staked = reg.is_some_and(|r| {
            r["registry"]
                .as_array()
                .is_some_and(|l| l.iter().any(|n| n["stake_sat"].as_u64() == Some(300_000)))
        });
        Ok(staked.then_some(()))
    })
    .await?;

    // 1. The same signed weights, 1,000 times, 50 requests in flight.
    let epoch = epoch_now(&net, 0).await?;
    let w = common::weights("validator-1", epoch, &[("miner-a", 60_000)]);
    let item = ConsensusItem::Weights(serde_json::from_value(w.clone())?);
    let s0 = net.status(0).await?["session"].as_u64().ok_or("session")?;
    let before = engine.mempool_stats();
    let statuses = flood(
        &net.http,
        format!("{}/v1/weights", net.api(0)),
        vec![w.clone(); 1000],
        50,
    )
    .await;
    wait_for("the weights to be ordered", long, || async {
        Ok((ordered_count(&engine, s0, |i| *i == item).unwrap_or(0) > 0
            && engine.mempool_stats().pending == 0)
            .then_some(()))
    })
    .await?;
    // Two more sessions, in case a copy were still to be ordered.
    let s1 = net.status(0).await?["session"].as_u64().ok_or("session")?;
    wait_for("two more sessions", long, || async {
        Ok(engine.store().session(s1 + 1).ok().flatten().map(|_| ()))
    })
    .await?;
    let after = engine.mempool_stats();
    let ordered = ordered_count(&engine, s0, |i| *i == item)?;
    let rejected = after.ordered_rejected - before.ordered_rejected;
    println!(
        "same weights ×1000: answers {:?}; ordered {ordered}×, {rejected} ordered copies rejected; mempool \
         high water {}; {} duplicates answered",
        tally(&statuses),
        after.high_water,
        after.duplicates - before.duplicates
    );
    assert_eq!(ordered, 1, "the weights were ordered once");
    assert!(
        rejected <= 2,
        "{rejected} copies of one item reached ordering (each a state copy and a check at every member)"
    );
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 409),
        "duplicates are answered 202 (queued already) or 409 (in effect)"
    );
    assert!(after.high_water <= 1, "one item in the mempool");

    // 2. 300 distinct registrations under one key (each a re-registration the state would accept).
    let kp = common::key("flooder");
    let bodies: Vec<serde_json::Value> = (0..300)
        .map(|i| {
            let node = common::Node::of("flooder");
            let mut reg = boltensor_coordinator::items::Registration::new(
                boltensor_protocol::Role::Miner,
                kp.x_only_public_key().0,
                node.id().to_string(),
                common::fed_id(),
            );
            reg.sequence += i;
            reg.api = Some(format!("http://127.0.0.1:1/flood/{i}"));
            reg.models = vec!["all-minilm-l6-v2".into()];
            let ConsensusItem::Register(reg) = common::signed(reg, node, &kp) else {
                unreachable!("a registration")
            };
            serde_json::to_value(ConsensusItem::Register(reg)).expect("serialises")
        })
        .collect();
    let s2 = net.status(0).await?["session"].as_u64().ok_or("session")?;
    let statuses = flood(&net.http, format!("{}/v1/items", net.api(0)), bodies, 50).await;
    let t = tally(&statuses);
    let high = engine.mempool_stats().high_water;
    wait_for("the flooder's items to be ordered", long, || async {
        Ok((engine.mempool_stats().pending == 0).then_some(()))
    })
    .await?;
    let s3 = net.status(0).await?["session"].as_u64().ok_or("session")?;
    wait_for("the session that ordered them to finish", long, || async {
        Ok(engine.store().session(s3).ok().flatten().map(|_| ()))
    })
    .await?;
    let key = kp.x_only_public_key().0;
    let from_key = ordered_count(
        &engine,
        s2,
        |i| matches!(i, ConsensusItem::Register(r) if r.key == key),
    )?;
    println!(
        "300 distinct items from one key: answers {t:?}; mempool high water {high} (cap {}); {from_key} ordered",
        boltensor_coordinator::engine::PENDING_PER_KEY
    );
    assert!(high <= boltensor_coordinator::engine::PENDING_PER_KEY);
    assert!(
        t.get(&429).copied().unwrap_or(0) > 0,
        "the key's share was refused beyond its cap"
    );
    assert!(from_key <= t.get(&202).copied().unwrap_or(0));

    // 3. 150 registrations under distinct keys from one IP.
    let bodies: Vec<serde_json::Value> = (0..150)
        .map(|i| {
            serde_json::to_value(miner_registration(&format!("sybil-{i}"))).expect("serialises")
        })
        .collect();
    let statuses = flood(&net.http, format!("{}/v1/items", net.api(0)), bodies, 50).await;
    let high = engine.mempool_stats().high_water;
    println!(
        "150 keys from one IP: answers {:?}; mempool high water {high} (cap {})",
        tally(&statuses),
        boltensor_coordinator::engine::PENDING_PER_IP
    );
    assert!(high <= boltensor_coordinator::engine::PENDING_PER_IP);
    wait_for("the mempool to drain", long, || async {
        Ok((engine.mempool_stats().pending == 0).then_some(()))
    })
    .await?;

    // What ordering one item costs besides its check: a copy of the whole state (measured here).
    let t0 = std::time::Instant::now();
    for _ in 0..200 {
        std::hint::black_box(engine.state());
    }
    let per_clone = t0.elapsed() / 200;
    println!(
        "a state copy with {} registrants: {per_clone:?}",
        net.status(0).await?["registered"]
    );

    // 4. Dashboard streams: 8 from one IP, then the 9th; then 8 more IPs (127.0.0.2–9) with 8 each.
    use boltensor_coordinator::dashboard::{MAX_STREAMS, MAX_STREAMS_PER_IP};
    let url = format!("{}/v1/stream", net.api(0));
    let mut open = Vec::new();
    let mut answers = Vec::new();
    for ip in 1..=9u8 {
        let client = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, ip]))
            .build()?;
        let per_ip = if ip == 1 {
            MAX_STREAMS_PER_IP + 1
        } else {
            MAX_STREAMS_PER_IP
        };
        for _ in 0..per_ip {
            let resp = client.get(&url).send().await?;
            answers.push((ip, resp.status().as_u16()));
            if resp.status() == 200 {
                open.push(resp);
            }
        }
    }
    let t = tally(&answers.iter().map(|(_, s)| *s).collect::<Vec<_>>());
    println!("{} stream requests from 9 IPs: {t:?}", answers.len());
    assert_eq!(open.len(), MAX_STREAMS);
    assert_eq!(
        answers[MAX_STREAMS_PER_IP],
        (1, 429),
        "the 9th stream from one IP"
    );
    assert_eq!(
        t.get(&503).copied(),
        Some(MAX_STREAMS_PER_IP * 9 + 1 - MAX_STREAMS - 1)
    );
    // A closed stream frees its slot.
    drop(open.pop());
    let fresh = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 10]))
        .build()?;
    let again = wait_for("a slot to free up", long, || async {
        let Ok(r) = fresh.get(&url).send().await else {
            return Ok(None);
        };
        Ok((r.status() == 200).then_some(r))
    })
    .await?;
    drop(again);
    drop(open);
    for m in net.members.iter().flatten() {
        m.stop();
    }
    Ok(())
}
