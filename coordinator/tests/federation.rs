//! Four coordinators in one process, on real TCP links, with a real regtest bitcoind for the bonds:
//! they agree on registrations, bond attestations, validators' signed weights and Yuma epochs; every
//! member's signed result is identical and recomputes; one member stopped does not stop epochs; a
//! restarted member catches up; garbage from a member is ignored; a parameter vote takes effect at the
//! next epoch only with a threshold.

mod common;

use std::time::Duration;

use boltensor_coordinator::items::ConsensusItem;
use boltensor_testenv::wait_for;
use common::{key, miner_registration, node_id, weights, Net, Result};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn federation_agrees_on_epochs_survives_a_crash_and_votes() -> Result {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "boltensor_coordinator=info".into()),
        )
        .with_test_writer()
        .try_init();
    let mut net = Net::start().await?;
    let long = Duration::from_secs(60);

    // Registrations through different members; bad input is refused with a reason.
    for (i, m) in ["miner-a", "miner-b", "miner-c"].iter().enumerate() {
        let (status, body) = net
            .post(
                i,
                "/v1/items",
                &serde_json::to_value(miner_registration(m))?,
            )
            .await?;
        assert_eq!(status, 202, "{body}");
    }
    let mut forged = serde_json::to_value(miner_registration("miner-x"))?;
    forged["node_id"] = json!(node_id("someone-else"));
    let (status, body) = net.post(0, "/v1/items", &forged).await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("present in this test")
            .contains("signature"),
        "{body}"
    );
    let (status, _) = net
        .post(0, "/v1/items", &json!({"type": "nonsense"}))
        .await?;
    assert_eq!(status, 400);

    let regs = net
        .bonded_registrations(&[("validator-1", 300_000), ("validator-2", 100_000)])
        .await?;
    let (v1, v2) = (&regs[0], &regs[1]);
    assert_eq!(
        net.post(1, "/v1/items", &serde_json::to_value(v1)?)
            .await?
            .0,
        202
    );
    assert_eq!(
        net.post(2, "/v1/items", &serde_json::to_value(v2)?)
            .await?
            .0,
        202
    );

    // Every member sees five registrants and both bonds attested (stake counts).
    for i in 0..4 {
        wait_for(&format!("member {i} to count both bonds"), long, || async {
            let reg = net.get(i, "/v1/registry").await.ok().flatten();
            Ok(reg.filter(|r| {
                let list = r["registry"].as_array().expect("present in this test");
                list.len() == 5
                    && list
                        .iter()
                        .filter(|n| n["stake_sat"].as_u64().unwrap_or(0) > 0)
                        .count()
                        == 2
            }))
        })
        .await?;
    }

    // Validators submit weights for the epoch being collected, to different members.
    let epoch = net.status(0).await?["epoch"]
        .as_u64()
        .expect("present in this test");
    let w = [("miner-a", 60_000), ("miner-b", 30_000), ("miner-c", 3_000)];
    assert_eq!(
        net.post(0, "/v1/weights", &weights("validator-1", epoch, &w))
            .await?
            .0,
        202
    );
    assert_eq!(
        net.post(3, "/v1/weights", &weights("validator-2", epoch, &w))
            .await?
            .0,
        202
    );
    // A weight vector for a wrong epoch is refused up front.
    let (status, body) = net
        .post(0, "/v1/weights", &weights("validator-1", epoch + 7, &w))
        .await?;
    assert_eq!(status, 400, "{body}");

    // As in subtensor, a validator's weights count once it holds a permit, given by the first epoch
    // that sees its stake: take the first epoch (of a few) whose result pays the miners.
    let miner_a = key("miner-a").x_only_public_key().0;
    let mut results = Vec::new();
    for e in epoch..epoch + 8 {
        // A vector signed for epoch e that is ordered after e closed is refused as late; a validator
        // then signs for the next epoch (validator::federation::submit_epoch does this), as here.
        if e > epoch {
            let last = &results[results.len() - 1];
            let last: &boltensor_coordinator::store::SignedEpoch = last;
            if last.result.inputs.weights.len() < 2 {
                let _ = net
                    .post(0, "/v1/weights", &weights("validator-1", e, &w))
                    .await?;
                let _ = net
                    .post(3, "/v1/weights", &weights("validator-2", e, &w))
                    .await?;
            }
        }
        results = net.wait_epoch(&[0, 1, 2, 3], e, long).await?;
        let r = &results[0].result;
        // Both validators held a permit going into this epoch (their stakes may count an epoch apart).
        let permitted = r
            .inputs
            .neurons
            .iter()
            .flatten()
            .filter(|n| n.role == boltensor_protocol::Role::Validator)
            .all(|n| {
                r.inputs
                    .permits
                    .get(n.uid as usize)
                    .copied()
                    .unwrap_or(false)
            });
        if permitted && r.payouts.iter().any(|p| p.key == miner_a) {
            break;
        }
    }
    for r in &results[1..] {
        assert_eq!(
            r.certified(),
            results[0].certified(),
            "members published different epoch results"
        );
        boltensor_coordinator::verify_epoch(r, &net.federation)?;
    }
    let signed = &results[0];
    let valid = boltensor_coordinator::verify_epoch(signed, &net.federation)?;
    assert!(valid >= 3);
    assert_eq!(
        signed.result.inputs.weights.len(),
        2,
        "both vectors are inputs"
    );
    let pay = |label: &str| {
        let k = key(label).x_only_public_key().0;
        signed
            .result
            .payouts
            .iter()
            .find(|p| p.key == k)
            .map_or(0, |p| p.msat)
    };
    assert!(
        pay("miner-a") > pay("miner-b") && pay("miner-b") > pay("miner-c"),
        "{:?}",
        signed.result.payouts
    );
    // Stake is the bonded amount (300k vs 100k sat); both validators earn dividends. (Who earns more in
    // a given epoch also depends on Yuma's bonds, which favour whoever weighted the miners first.)
    let uid_of = |label: &str| {
        let k = key(label).x_only_public_key().0;
        signed
            .result
            .inputs
            .neurons
            .iter()
            .flatten()
            .find(|n| n.key == k)
            .map(|n| n.uid as usize)
            .expect("registered")
    };
    let (u1, u2) = (uid_of("validator-1"), uid_of("validator-2"));
    let sw = &signed.result.output.stake_weight;
    assert!(
        sw[u1] > 2 * sw[u2] && sw[u1] < 4 * sw[u2],
        "stake weights follow bonded sats: {sw:?}"
    );
    assert!(
        pay("validator-1") > 0 && pay("validator-2") > 0,
        "both earn dividends"
    );
    let total: u64 = signed.result.payouts.iter().map(|p| p.msat).sum();
    assert!(
        total <= 1_000_000 && total > 990_000,
        "the pool is split: {total}"
    );

    // A tampered result fails the independent check, even when a threshold of members signs it: a
    // colluding k of n can sign anything, but not make a wrong payout follow from the published inputs.
    let mut tampered = signed.clone();
    tampered.result.payouts[0].msat += 1;
    let fed = &net.federation;
    let items_digest: [u8; 32] = hex::decode(&tampered.items_digest)?
        .try_into()
        .map_err(|_| "items digest length")?;
    let header = boltensor_coordinator::engine::session_header(
        &fed.id(),
        tampered.session,
        &items_digest,
        Some(tampered.result.digest()),
    );
    tampered.signatures = (0..fed.threshold())
        .map(|i| {
            let member = boltensor_coordinator::keychain::Keychain::new(
                i,
                fed.keys(),
                net.keys[i],
                fed.id(),
                fed.threshold(),
            );
            (i, hex::encode(member.sign_bytes(&header).0))
        })
        .collect();
    assert_eq!(
        boltensor_coordinator::keychain::count_valid(
            &fed.id(),
            &fed.keys(),
            &header,
            &tampered.signatures
        ),
        fed.threshold(),
        "the wrong result carries a threshold of valid member signatures"
    );
    let refused = boltensor_coordinator::verify_epoch(&tampered, fed);
    assert!(
        matches!(
            refused,
            Err(boltensor_coordinator::VerifyError::Recompute(_))
        ),
        "recomputation refuses a wrong result that k members signed: {refused:?}"
    );

    // Equivocation: validator-2 signs two different vectors for one epoch. Both are signed, so the pair is
    // evidence anyone can check: the federation records it, and the validator's stake and weights go.
    let v2_key = key("validator-2").x_only_public_key().0.to_string();
    let w2 = [("miner-c", 65_535)];
    wait_for(
        "validator-2's equivocation to be recorded",
        long,
        || async {
            if let Some(e) = net.status(1).await.ok().and_then(|s| s["epoch"].as_u64()) {
                let _ = net
                    .post(1, "/v1/weights", &weights("validator-2", e, &w))
                    .await;
                let _ = net
                    .post(2, "/v1/weights", &weights("validator-2", e, &w2))
                    .await;
            }
            let reg = net.get(0, "/v1/registry").await.ok().flatten();
            Ok(reg.filter(|r| {
                r["registry"].as_array().is_some_and(|l| {
                    l.iter().any(|n| {
                        n["key"].as_str() == Some(v2_key.as_str())
                            && n["slashed"].as_bool() == Some(true)
                            && n["stake_sat"].as_u64() == Some(0)
                    })
                })
            }))
        },
    )
    .await?;
    // The federation slashes the bond: k members sign the same slash transaction through consensus and
    // it goes to bitcoind, paying the treasury.
    let reg = net.get(0, "/v1/registry").await?.expect("registry");
    let bond_outpoint: bitcoin::OutPoint = reg["registry"]
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|n| n["key"].as_str() == Some(v2_key.as_str()))
        })
        .and_then(|n| n["bond"]["outpoint"].as_str())
        .expect("validator-2's bond")
        .parse()?;
    wait_for("the slash transaction to reach bitcoind", long, || async {
        Ok(matches!(net.rpc.tx_out(&bond_outpoint).await, Ok(None)).then_some(()))
    })
    .await?;
    net.bitcoind().mine(1).await?;
    let treasury = boltensor_contracts::Treasury::new(boltensor_contracts::Federation::byzantine(
        net.federation.keys(),
    )?)?;
    let in_treasury: u64 = net
        .rpc
        .scan_script(&treasury.script_pubkey())
        .await?
        .iter()
        .map(|u| u.txout.value.to_sat())
        .sum();
    assert!(
        in_treasury > 99_000 && in_treasury < 100_000,
        "the 100,000 sat bond less the fee went to the treasury: {in_treasury}"
    );

    let (status, body) = net
        .post(
            0,
            "/v1/weights",
            &weights(
                "validator-2",
                net.status(0).await?["epoch"].as_u64().expect("epoch"),
                &w,
            ),
        )
        .await?;
    assert_eq!(
        status, 400,
        "a caught validator's weights are refused: {body}"
    );

    // Garbage from a member: an invalid item proposed directly (bypassing the API check) is ordered
    // and dropped by everyone; consensus goes on.
    let garbage = weights("validator-1", 0, &w);
    let mut garbage: boltensor_protocol::weights::SignedWeights = serde_json::from_value(garbage)?;
    garbage.signature[0] ^= 1;
    net.members[3]
        .as_ref()
        .expect("present in this test")
        .engine
        .propose(ConsensusItem::Weights(garbage));

    // Votes: three members vote the pool up (passes), two vote κ (does not).
    let token = |i: usize| {
        std::fs::read_to_string(net.dirs[i].path().join("admin.token"))
            .expect("present in this test")
    };
    for i in 0..3 {
        let resp = net
            .http
            .post(format!("{}/v1/admin/vote", net.api(i)))
            .bearer_auth(token(i))
            .json(&json!({"name": "epoch_pool_msat", "value": 2_000_000}))
            .send()
            .await?;
        assert_eq!(resp.status(), 202);
    }
    for i in 0..2 {
        net.http
            .post(format!("{}/v1/admin/vote", net.api(i)))
            .bearer_auth(token(i))
            .json(&json!({"name": "kappa", "value": 40_000}))
            .send()
            .await?
            .error_for_status()?;
    }
    let unauth = net
        .http
        .post(format!("{}/v1/admin/vote", net.api(0)))
        .json(&json!({"name": "kappa", "value": 1}))
        .send()
        .await?;
    assert_eq!(unauth.status(), 401);

    // Stop member 3: epochs still close on the other three.
    net.members[3]
        .take()
        .expect("present in this test")
        .shutdown()
        .await;
    // The votes take effect in the epoch after the one in which they are ordered: usually two epochs from
    // now, later when the machine is loaded (CI once saw the pool unchanged two epochs on). Take the first
    // of the next few epochs computed with the new pool; if none is, the vote did not take effect.
    let first = net.status(0).await?["epoch"].as_u64().expect("epoch") + 2;
    let mut next = first;
    let after = loop {
        let signed = net.wait_epoch(&[0, 1, 2], next, long).await?;
        if signed[0].result.inputs.params.epoch_pool_msat == 2_000_000 || next >= first + 4 {
            break signed;
        }
        next += 1;
    };
    for r in &after[1..] {
        assert_eq!(r.certified(), after[0].certified());
    }
    boltensor_coordinator::verify_epoch(&after[0], &net.federation)?;
    assert_eq!(
        after[0].result.inputs.params.epoch_pool_msat, 2_000_000,
        "the vote took effect"
    );
    assert_eq!(
        after[0].result.inputs.params.kappa, 32_767,
        "two votes of four are not enough"
    );

    // Restart member 3 on its data dir: it catches up and publishes the same results.
    net.members[3] = Some(net.start_member(3).await?);
    let caught_up = net.wait_epoch(&[3], next, long).await?;
    assert_eq!(caught_up[0].certified(), after[0].certified());
    let target = net.status(0).await?["session"]
        .as_u64()
        .expect("present in this test");
    wait_for("member 3 to reach the others' session", long, || async {
        Ok(net
            .status(3)
            .await
            .ok()
            .filter(|s| s["session"].as_u64().expect("present in this test") >= target))
    })
    .await?;
    for m in net.members.iter().flatten() {
        m.stop();
    }
    Ok(())
}

/// Subtensor's bonds reset (issue 17): a miner that re-registers serving another model loses every
/// validator's bond to it at once, so no validator keeps dividends built on what the miner served
/// before. Seen in the signed epochs: the epoch closed after the re-registration carries no bond to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_miner_serving_another_model_starts_without_bonds() -> Result {
    use boltensor_coordinator::items::Registration;
    use boltensor_coordinator::store::SignedEpoch;
    use boltensor_protocol::Role;
    let net = Net::start().await?;
    let long = Duration::from_secs(90);
    let regs = net
        .bonded_registrations(&[("validator-1", 100_000)])
        .await?;
    for item in [regs[0].clone(), miner_registration("miner-a")] {
        let (status, body) = net
            .post(0, "/v1/items", &serde_json::to_value(item)?)
            .await?;
        assert_eq!(status, 202, "{body}");
    }
    let (v_key, m_key) = (
        key("validator-1").x_only_public_key().0,
        key("miner-a").x_only_public_key().0,
    );
    let latest = || async {
        let e = net.get(0, "/v1/epochs/latest").await.ok().flatten();
        Ok::<_, boltensor_testenv::TestEnvError>(
            e.and_then(|e| serde_json::from_value::<SignedEpoch>(e).ok()),
        )
    };
    let uids = |e: &SignedEpoch| {
        let uid = |k| {
            e.result
                .inputs
                .neurons
                .iter()
                .flatten()
                .find(|n| n.key == k)
                .map(|n| n.uid)
        };
        uid(v_key).zip(uid(m_key))
    };
    let bond_in = |e: &SignedEpoch| -> Option<u16> {
        let (v, m) = uids(e)?;
        let row = e.result.inputs.bonds.get(v as usize)?;
        row.iter().find(|(j, _)| *j == m).map(|(_, b)| *b)
    };

    // The validator weighs the miner until a signed epoch starts with a bond from it to the miner.
    let submitter = common::submit_weights(&net, 0, &["validator-1"], &[("miner-a", 65_535)]);
    let before = wait_for(
        "an epoch carrying the validator's bond to the miner",
        long,
        || async {
            Ok(latest().await?.and_then(|e| {
                bond_in(&e)
                    .filter(|b| *b > 0)
                    .map(|b| (e.result.inputs.epoch, b))
            }))
        },
    )
    .await?;
    submitter.abort();

    // The miner now serves another model (same key, same node, same URL).
    let kp = key("miner-a");
    let mut reg = Registration::new(
        Role::Miner,
        kp.x_only_public_key().0,
        common::Node::of("miner-a").id().to_string(),
        common::fed_id(),
    );
    reg.api = Some("http://127.0.0.1:1/miner-a".into());
    reg.models = vec!["smollm2-135m".into()];
    let again = common::signed(reg, common::Node::of("miner-a"), &kp);
    let (status, body) = net
        .post(1, "/v1/items", &serde_json::to_value(again)?)
        .await?;
    assert_eq!(status, 202, "{body}");
    let collecting = wait_for("the re-registration to be ordered", long, || async {
        let r = net.get(0, "/v1/registry").await.ok().flatten();
        Ok(r.and_then(|r| {
            let served = r["registry"].as_array()?.iter().any(|n| {
                n["key"].as_str() == Some(m_key.to_string().as_str())
                    && n["models"] == json!(["smollm2-135m"])
            });
            served.then(|| r["epoch"].as_u64()).flatten()
        }))
    })
    .await?;
    let after = net.wait_epoch(&[0], collecting, long).await?;
    let after = &after[0];
    println!(
        "bonds reset: epoch {} started with the validator's bond {} to miner-a; miner-a re-registered with another \
         model during epoch {collecting}, which started with bond {:?}",
        before.0,
        before.1,
        bond_in(after),
    );
    assert!(uids(after).is_some(), "both still registered");
    assert_eq!(
        bond_in(after),
        None,
        "the validator kept its bond to the miner"
    );
    Ok(())
}

/// What [`copier_run`] measured: dividends per validator over the measured epochs, msat.
struct CopierRun {
    honest: [u64; 2],
    copier: u64,
    epochs: (u64, u64),
}

/// Three validators with equal bonds and three miners. The honest two weigh a different miner best each
/// epoch (as quality moves); the copier submits whatever honest-1 last made public, relabelled as its
/// own. With `commit_reveal` the public vectors are the revealed ones, an epoch old, and the copier must
/// commit too; without, honest vectors are readable once ordered, within their own epoch.
async fn copier_run(commit_reveal: bool) -> Result<CopierRun> {
    use boltensor_coordinator::items::{WeightsCommit, WeightsReveal};
    use boltensor_coordinator::store::AcceptedItem;
    use boltensor_coordinator::store::SignedEpoch;
    use boltensor_protocol::weights::{SignedWeights, WeightVector};
    use std::collections::BTreeMap;
    const MINERS: [&str; 3] = ["miner-a", "miner-b", "miner-c"];
    const VALIDATORS: [&str; 3] = ["honest-1", "honest-2", "copier"];
    let net = Net::start_with(|p| {
        p.commit_reveal = u64::from(commit_reveal);
        p.epoch_sessions = 3;
    })
    .await?;
    let long = Duration::from_secs(120);
    let regs = net
        .bonded_registrations(&VALIDATORS.map(|v| (v, 100_000)))
        .await?;
    for item in regs
        .into_iter()
        .chain(MINERS.iter().map(|m| miner_registration(m)))
    {
        let (status, body) = net
            .post(0, "/v1/items", &serde_json::to_value(item)?)
            .await?;
        assert_eq!(status, 202, "{body}");
    }
    wait_for("three bonded validators", long, || async {
        let r = net.get(0, "/v1/registry").await.ok().flatten();
        let staked = r.and_then(|r| {
            r["registry"].as_array().map(|a| {
                a.iter()
                    .filter(|n| n["stake_sat"].as_u64() == Some(100_000))
                    .count()
            })
        });
        Ok((staked == Some(3)).then_some(()))
    })
    .await?;
    let honest_vector = |label: &str, epoch: u64| WeightVector {
        epoch,
        validator: key(label).x_only_public_key().0.serialize(),
        weights: MINERS
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let best = i as u64 == epoch % 3;
                (
                    node_id(&format!("{m}-node")),
                    if best { 65_535 } else { 6_553 },
                )
            })
            .collect(),
    };
    let fed = common::fed_id();
    let api = net.api(0);
    let http = reqwest::Client::new();
    // Every validator's loop: commit (or submit) this epoch's vector once, reveal last epoch's.
    let validator = |label: &'static str| {
        let (api, http) = (api.clone(), http.clone());
        tokio::spawn(async move {
            let kp = key(label);
            let mut opened: BTreeMap<u64, (WeightVector, [u8; 32])> = BTreeMap::new();
            let mut done: std::collections::BTreeSet<(u64, &str)> = Default::default();
            let post = |item: boltensor_coordinator::ConsensusItem| {
                let (api, http) = (api.clone(), http.clone());
                async move {
                    let _ = http
                        .post(format!("{api}/v1/items"))
                        .json(&item)
                        .send()
                        .await;
                }
            };
            loop {
                tokio::time::sleep(Duration::from_millis(150)).await;
                let Ok(status) = http.get(format!("{api}/v1/status")).send().await else {
                    continue;
                };
                let Ok(status) = status.json::<serde_json::Value>().await else {
                    continue;
                };
                let (Some(epoch), Some(session)) =
                    (status["epoch"].as_u64(), status["session"].as_u64())
                else {
                    continue;
                };
                // The copier's source: honest-1's newest vector in the last sessions' public items.
                let mine = if label == "copier" {
                    let mut newest: Option<WeightVector> = None;
                    for s in session.saturating_sub(8)..session {
                        let Ok(resp) = http.get(format!("{api}/v1/sessions/{s}")).send().await
                        else {
                            continue;
                        };
                        let Ok(v) = resp.json::<serde_json::Value>().await else {
                            continue;
                        };
                        let items: Vec<AcceptedItem> =
                            serde_json::from_value(v["items"].clone()).unwrap_or_default();
                        for a in items {
                            let seen: Option<SignedWeights> = match a.item {
                                boltensor_coordinator::ConsensusItem::Weights(sw) => Some(sw),
                                boltensor_coordinator::ConsensusItem::Reveal(r) => Some(r.weights),
                                _ => None,
                            };
                            if let Some(sw) = seen.filter(|sw| {
                                sw.vector.validator
                                    == key("honest-1").x_only_public_key().0.serialize()
                            }) {
                                if newest.as_ref().is_none_or(|n| n.epoch <= sw.vector.epoch) {
                                    newest = Some(sw.vector);
                                }
                            }
                        }
                    }
                    newest
                        .filter(|n| commit_reveal || n.epoch == epoch)
                        .map(|n| WeightVector {
                            epoch,
                            validator: kp.x_only_public_key().0.serialize(),
                            weights: n.weights,
                        })
                } else {
                    Some(honest_vector(label, epoch))
                };
                if commit_reveal {
                    if let Some(v) = mine.filter(|_| !opened.contains_key(&epoch)) {
                        let salt: [u8; 32] = rand_salt(label, epoch);
                        post(boltensor_coordinator::ConsensusItem::Commit(
                            WeightsCommit::new(&kp, fed, &v, &salt),
                        ))
                        .await;
                        opened.insert(epoch, (v, salt));
                    }
                    if let Some((v, salt)) = epoch.checked_sub(1).and_then(|e| opened.get(&e)) {
                        if done.insert((v.epoch, "reveal")) {
                            post(boltensor_coordinator::ConsensusItem::Reveal(
                                WeightsReveal {
                                    weights: v.clone().sign(&kp),
                                    salt: hex::encode(salt),
                                },
                            ))
                            .await;
                        }
                    }
                } else if let Some(v) = mine {
                    if done.insert((epoch, "weights")) {
                        post(boltensor_coordinator::ConsensusItem::Weights(v.sign(&kp))).await;
                    }
                }
            }
        })
    };
    let tasks: Vec<_> = VALIDATORS.iter().map(|v| validator(v)).collect();
    // Measure from the third epoch after the validators start (bonds and, with commit-reveal, the first
    // reveals in place) over five epochs.
    let start = net.status(0).await?["epoch"].as_u64().unwrap_or(0) + 3;
    let end = start + 4;
    let mut honest = [0u64; 2];
    let mut copier = 0u64;
    for e in start..=end {
        let signed: SignedEpoch = net.wait_epoch(&[0], e, long).await?.remove(0);
        for n in signed.result.inputs.neurons.iter().flatten() {
            let d = signed.result.output.validator_emission[n.uid as usize];
            match VALIDATORS
                .iter()
                .position(|v| key(v).x_only_public_key().0 == n.key)
            {
                Some(0) => honest[0] += d,
                Some(1) => honest[1] += d,
                Some(2) => copier += d,
                _ => {}
            }
        }
    }
    for t in tasks {
        t.abort();
    }
    Ok(CopierRun {
        honest,
        copier,
        epochs: (start, end),
    })
}

/// A salt that differs per validator and epoch (the test's; a validator draws 32 random bytes).
fn rand_salt(label: &str, epoch: u64) -> [u8; 32] {
    use bitcoin::hashes::{sha256, Hash};
    sha256::Hash::hash(format!("salt/{label}/{epoch}/{:?}", std::time::Instant::now()).as_bytes())
        .to_byte_array()
}

/// Commit-reveal (issue 17): a validator that copies the latest public weights earns what the honest
/// validators earn when weights are public at once, and less once they are committed in one epoch and
/// revealed in the next — it can then only copy last epoch's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_reveal_leaves_a_weight_copier_behind() -> Result {
    let plain = copier_run(false).await?;
    let cr = copier_run(true).await?;
    let share =
        |r: &CopierRun| r.copier as f64 / ((r.honest[0] + r.honest[1]) as f64 / 2.0).max(1.0);
    for (name, r) in [("weights public at once", &plain), ("commit-reveal", &cr)] {
        println!(
            "copier, {name}: epochs {}–{}: dividends honest-1 {} msat, honest-2 {} msat, copier {} msat = {:.2} of an honest validator's",
            r.epochs.0, r.epochs.1, r.honest[0], r.honest[1], r.copier, share(r)
        );
    }
    assert!(
        plain.honest[0] > 0 && cr.honest[0] > 0,
        "honest validators earn"
    );
    assert!(
        share(&plain) > 0.9,
        "without commit-reveal the copier keeps up"
    );
    assert!(
        share(&cr) < share(&plain) - 0.1,
        "commit-reveal leaves the copier behind: {:.2} vs {:.2}",
        share(&cr),
        share(&plain)
    );
    Ok(())
}
