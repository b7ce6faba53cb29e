//! Attacks on the registry, performed as an attacker would: signed items posted to the members' public
//! APIs of a four-member federation over TCP, bonds on a regtest bitcoind (issue 20, rows 1, 2 and 5).
//! Each test prints what the attacker got (`ATTACK …`) next to its honest share.

mod common;
use common::init_tracing;

use std::time::Duration;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Keypair;
use bitcoin::{Amount, FeeRate, Network, OutPoint, TxOut};
use boltensor_contracts::{
    cooperative_exit_psbt, finalize_psbt, sign_psbt, Bond, Federation, KeyWallet, Utxo,
};
use boltensor_coordinator::items::{ConsensusItem, Deregistration, Registration};
use boltensor_protocol::Role;
use boltensor_testenv::wait_for;
use common::{bond_claims, key, signed, weights, Net, Node, Result};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(90);
const BOND: u64 = 100_000;

fn xonly(label: &str) -> String {
    key(label).x_only_public_key().0.to_string()
}

async fn registry(net: &Net, i: usize) -> Vec<Value> {
    net.get(i, "/v1/registry")
        .await
        .ok()
        .flatten()
        .and_then(|r| r["registry"].as_array().cloned())
        .unwrap_or_default()
}

async fn registrant(net: &Net, i: usize, label: &str) -> Option<Value> {
    let k = xonly(label);
    registry(net, i)
        .await
        .into_iter()
        .find(|n| n["key"].as_str() == Some(k.as_str()))
}

async fn session(net: &Net, i: usize) -> Result<u64> {
    Ok(net.status(i).await?["session"]
        .as_u64()
        .ok_or("status without session")?)
}

/// Waits until every member finished two more sessions than now (so whatever was queued is ordered).
async fn settle(net: &Net) -> Result {
    let target = session(net, 0).await? + 2;
    for i in 0..4 {
        wait_for(
            &format!("member {i} to order what is queued"),
            LONG,
            || async { Ok(session(net, i).await.ok().filter(|s| *s >= target)) },
        )
        .await?;
    }
    Ok(())
}

/// Mines a coinbase to each owner's key wallet per `coins`, then matures them.
async fn coins(net: &Net, owners: &[(&str, u64)]) -> Result {
    for (label, n) in owners {
        let wallet = KeyWallet::new(key(label), Network::Regtest);
        net.bitcoind().mine_to(*n, &wallet.address()).await?;
    }
    net.bitcoind().mine(100).await?;
    Ok(())
}

/// A validator registration of `registrant` (node `<registrant>-node`) backed by `owner`'s bond at
/// `outpoint`, signed by the owner (proof), the node and the registration key.
fn validator_registration(
    net: &Net,
    registrant: &str,
    owner: &Keypair,
    outpoint: OutPoint,
) -> Result<ConsensusItem> {
    let kp = key(registrant);
    let node = Node::of(registrant);
    let proof = bond_claims(owner, &kp, node.id(), outpoint, BOND).sign(owner)?;
    let mut r = Registration::new(
        Role::Validator,
        kp.x_only_public_key().0,
        node.id().to_string(),
        net.federation.id(),
    );
    r.bond = Some(proof.to_hex());
    Ok(signed(r, node, &kp))
}

async fn post(net: &Net, i: usize, item: &ConsensusItem) -> Result<(u16, Value)> {
    net.post(i, "/v1/items", &serde_json::to_value(item)?).await
}

/// Row 1: one owner funds one bond and signs two proofs for it with two registration keys, posted to
/// two members at once (before either is ordered), then a third once the first is in the registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_bond_backs_one_validator() -> Result {
    init_tracing();
    let net = Net::start().await?;
    coins(&net, &[("honest", 1), ("attacker", 1)]).await?;
    let honest_bond = net.fund_bond(&key("honest"), BOND).await?;
    let attacker_bond = net.fund_bond(&key("attacker"), BOND).await?;
    net.bitcoind().mine(1).await?;
    let honest = validator_registration(&net, "honest", &key("honest"), honest_bond)?;
    let (status, body) = post(&net, 0, &honest).await?;
    assert_eq!(status, 202, "{body}");

    // The attack: the same outpoint behind two registration keys, each proof signed by the bond's owner.
    let owner = key("attacker");
    let first = validator_registration(&net, "attacker-1", &owner, attacker_bond)?;
    let second = validator_registration(&net, "attacker-2", &owner, attacker_bond)?;
    let (s1, _) = post(&net, 1, &first).await?;
    let (s2, _) = post(&net, 2, &second).await?;
    println!("posted before ordering: attacker-1 → {s1}, attacker-2 → {s2}");
    settle(&net).await?;
    let attackers = ["attacker-1", "attacker-2", "attacker-3"];
    let stakes = wait_for("every listed validator's bond to count", LONG, || async {
        let reg = registry(&net, 0).await;
        let honest = reg
            .iter()
            .any(|n| n["key"].as_str() == Some(&xonly("honest")));
        let counted = reg.iter().all(|n| n["stake_sat"].as_u64() > Some(0));
        Ok((honest && counted).then_some(reg))
    })
    .await?;

    // Once one claim is in the registry, the API names the conflict to whoever tries again.
    let third = validator_registration(&net, "attacker-3", &owner, attacker_bond)?;
    let (s3, body3) = post(&net, 3, &third).await?;
    println!("posted after ordering: attacker-3 → {s3} {body3}");
    settle(&net).await?;

    let mut attacker_stake = 0;
    let mut total = 0;
    for i in 0..4 {
        let reg = if i == 0 {
            stakes.clone()
        } else {
            registry(&net, i).await
        };
        let sum = |pred: &dyn Fn(&str) -> bool| -> u64 {
            reg.iter()
                .filter(|n| n["key"].as_str().is_some_and(pred))
                .map(|n| n["stake_sat"].as_u64().unwrap_or(0))
                .sum()
        };
        let a = sum(&|k| attackers.iter().any(|l| xonly(l) == k));
        let t = sum(&|_| true);
        if i == 0 {
            (attacker_stake, total) = (a, t);
        }
        assert_eq!((a, t), (attacker_stake, total), "member {i} agrees");
    }
    let listed = attackers
        .iter()
        .filter(|l| stakes.iter().any(|n| n["key"].as_str() == Some(&xonly(l))))
        .count();
    println!(
        "ATTACK one bond, many stakes: the attacker bonded {BOND} sat once and holds {attacker_stake} sat of stake \
         through {listed} registrant(s), {:.1}% of {total} sat; its honest share is {BOND} sat, {:.1}%",
        100.0 * attacker_stake as f64 / total.max(1) as f64,
        100.0 * BOND as f64 / (2 * BOND) as f64,
    );
    assert_eq!(attacker_stake, BOND, "one bond is one stake");
    assert_eq!(listed, 1, "one outpoint backs one registrant");
    assert_eq!(s3, 409, "{body3}");
    let msg = body3["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&attacker_bond.to_string()) && msg.contains("already backs"),
        "{body3}"
    );
    Ok(())
}

/// Row 2: a miner runs a real Lightning node and registers its URL; an attacker posts free registrations
/// naming that URL (spelled three ways) with its own node ids, and one naming the victim's node id
/// signed by its own node key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_miner_url_or_node_id_cannot_be_borrowed() -> Result {
    init_tracing();
    let net = Net::start().await?;
    let victim_node = net.testnet.node("victim").await?;
    let url = "http://victim.example:8080";
    let victim = key("victim");
    let mut r = Registration::new(
        Role::Miner,
        victim.x_only_public_key().0,
        victim_node.node_id().to_string(),
        net.federation.id(),
    );
    r.api = Some(format!("{url}/v1"));
    r.models = vec!["all-minilm-l6-v2".into()];
    let (status, body) = post(&net, 0, &signed(r, Node::Ln(&victim_node), &victim)).await?;
    assert_eq!(status, 202, "{body}");
    wait_for("the victim to be listed", LONG, || async {
        Ok(registrant(&net, 0, "victim").await)
    })
    .await?;

    let mut answers = Vec::new();
    for (i, api) in [
        url.to_string(),
        format!("{url}/"),
        format!("{}/V1/", url.to_uppercase()),
    ]
    .into_iter()
    .enumerate()
    {
        let label = format!("sybil-{i}");
        let kp = key(&label);
        let node = Node::of(&label);
        let mut r = Registration::new(
            Role::Miner,
            kp.x_only_public_key().0,
            node.id().to_string(),
            net.federation.id(),
        );
        r.api = Some(api);
        r.models = vec!["all-minilm-l6-v2".into()];
        answers.push(post(&net, i % 4, &signed(r, node, &kp)).await?);
    }
    // The victim's node id, "proven" by the attacker's own node key.
    let kp = key("sybil-3");
    let mut r = Registration::new(
        Role::Miner,
        kp.x_only_public_key().0,
        victim_node.node_id().to_string(),
        net.federation.id(),
    );
    r.api = Some("http://attacker.example:1".into());
    answers.push(post(&net, 3, &signed(r, Node::of("sybil-3"), &kp)).await?);
    settle(&net).await?;

    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    let mut same_url = 0;
    let mut same_node = 0;
    for i in 0..4 {
        let reg = registry(&net, i).await;
        let u = reg
            .iter()
            .filter(|n| {
                n["api"].as_str().is_some_and(|a| {
                    boltensor_coordinator::state::normalise_url(a)
                        == boltensor_coordinator::state::normalise_url(url)
                })
            })
            .count();
        let id = victim_node.node_id().to_string();
        let v = reg
            .iter()
            .filter(|n| n["node_id"].as_str() == Some(&id))
            .count();
        if i == 0 {
            (same_url, same_node) = (u, v);
        }
        assert_eq!((u, v), (same_url, same_node), "member {i} agrees");
    }
    println!(
        "ATTACK borrowed miner identity: {accepted} of {} attacker registrations accepted; the registry lists \
         {same_url} registrant(s) with the victim's URL and {same_node} with its node id (honest: 1 and 1)",
        answers.len()
    );
    for (status, body) in &answers {
        println!("  refused: {status} {}", body["error"]["message"]);
    }
    victim_node.stop().await;
    assert_eq!(accepted, 0, "{answers:?}");
    assert_eq!((same_url, same_node), (1, 1));
    for (status, body) in &answers[..3] {
        assert_eq!(*status, 409, "{body}");
        assert!(body.to_string().contains("API URL"), "{body}");
    }
    assert!(
        answers[3].1.to_string().contains("node signature"),
        "{:?}",
        answers[3]
    );
    Ok(())
}

/// Row 5: an attacker replays public items it saw ordered: a miner's old deregistration after it came
/// back, and a validator's old registration naming a bond it has since spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replayed_registry_items_are_refused() -> Result {
    init_tracing();
    let net = Net::start().await?;
    let fed = net.federation.id();

    // (a) The miner registers, leaves, and comes back; its old deregistration is replayed.
    let miner = key("miner-r");
    let reg_miner = common::miner_registration("miner-r");
    assert_eq!(post(&net, 0, &reg_miner).await?.0, 202);
    wait_for("the miner listed", LONG, || async {
        Ok(registrant(&net, 0, "miner-r").await)
    })
    .await?;
    let leave = ConsensusItem::Deregister(Deregistration::new(&miner, fed));
    assert_eq!(post(&net, 1, &leave).await?.0, 202);
    wait_for("the miner gone", LONG, || async {
        Ok(registrant(&net, 0, "miner-r").await.is_none().then_some(()))
    })
    .await?;
    assert_eq!(
        post(&net, 2, &common::miner_registration("miner-r"))
            .await?
            .0,
        202
    );
    wait_for("the miner back", LONG, || async {
        Ok(registrant(&net, 0, "miner-r").await)
    })
    .await?;
    let replayed_leave = post(&net, 3, &leave).await?;
    settle(&net).await?;
    let miner_listed = registrant(&net, 0, "miner-r").await.is_some();
    let replayed_reg = post(&net, 0, &reg_miner).await?;

    // (b) The validator moves its stake from bond 1 to bond 2 and spends bond 1 (a cooperative exit the
    // members sign); its first registration, naming bond 1, is replayed.
    coins(&net, &[("mover", 2)]).await?;
    let owner = key("mover");
    let bond1 = net.fund_bond(&owner, BOND).await?;
    net.bitcoind().mine(1).await?;
    let first = validator_registration(&net, "mover", &owner, bond1)?;
    assert_eq!(post(&net, 0, &first).await?.0, 202);
    let staked_on = |outpoint: OutPoint| {
        let net = &net;
        async move {
            wait_for(&format!("stake on {outpoint}"), LONG, || async {
                let n = registrant(net, 0, "mover").await;
                Ok(n.filter(|n| {
                    n["bond"]["outpoint"].as_str() == Some(&outpoint.to_string())
                        && n["stake_sat"].as_u64() == Some(BOND)
                }))
            })
            .await
        }
    };
    staked_on(bond1).await?;
    let bond2 = net.fund_bond(&owner, BOND).await?;
    net.bitcoind().mine(1).await?;
    let second = validator_registration(&net, "mover", &owner, bond2)?;
    assert_eq!(post(&net, 1, &second).await?.0, 202);
    staked_on(bond2).await?;
    let bond = Bond::new(
        owner.x_only_public_key().0,
        Federation::byzantine(net.federation.keys())?,
        200,
    )?;
    let utxo = Utxo {
        outpoint: bond1,
        txout: TxOut {
            value: Amount::from_sat(BOND),
            script_pubkey: bond.script_pubkey(),
        },
    };
    let to = KeyWallet::new(owner, Network::Regtest).script_pubkey();
    let mut psbt = cooperative_exit_psbt(
        &bond,
        &utxo,
        to,
        FeeRate::from_sat_per_vb(2).ok_or("fee rate")?,
    )?;
    sign_psbt(&mut psbt, &net.keys[..3])?;
    net.rpc.broadcast(&finalize_psbt(psbt)?).await?;
    net.bitcoind().mine(1).await?;
    assert!(net.rpc.tx_out(&bond1).await?.is_none(), "bond 1 is spent");
    let replayed_old_bond = post(&net, 2, &first).await?;
    settle(&net).await?;
    // Give the members time to attest whatever bond the registry names now.
    settle(&net).await?;

    let mover = registrant(&net, 0, "mover").await.ok_or("mover listed")?;
    println!(
        "ATTACK replayed items: old deregistration → {} {}; old registration → {} {}; old registration with the \
         spent bond → {} {}; afterwards the miner is {} and the validator stakes {} sat on {} (honest: listed, {BOND} sat on bond 2)",
        replayed_leave.0,
        replayed_leave.1["error"]["message"],
        replayed_reg.0,
        replayed_reg.1["error"]["message"],
        replayed_old_bond.0,
        replayed_old_bond.1["error"]["message"],
        if miner_listed { "listed" } else { "EVICTED" },
        mover["stake_sat"],
        mover["bond"]["outpoint"],
    );
    assert!(
        miner_listed,
        "the replayed deregistration evicted the miner"
    );
    for i in 0..4 {
        let m = registrant(&net, i, "mover").await.ok_or("mover listed")?;
        assert_eq!(m["bond"]["outpoint"].as_str(), Some(&*bond2.to_string()));
        assert_eq!(m["stake_sat"].as_u64(), Some(BOND), "member {i}");
    }
    for (status, body) in [&replayed_leave, &replayed_reg, &replayed_old_bond] {
        assert_eq!(*status, 409, "{body}");
        assert!(body.to_string().contains("stale"), "{body}");
    }
    Ok(())
}

/// Row 5: a bonded validator caught equivocating deregisters and registers again to shed `slashed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slashing_survives_re_registration() -> Result {
    init_tracing();
    let net = Net::start().await?;
    let fed = net.federation.id();
    let regs = net.bonded_registrations(&[("cheat", BOND)]).await?;
    assert_eq!(post(&net, 0, &regs[0]).await?.0, 202);
    wait_for("the bond to count", LONG, || async {
        let n = registrant(&net, 0, "cheat").await;
        Ok(n.filter(|n| n["stake_sat"].as_u64() == Some(BOND)))
    })
    .await?;
    // Two different vectors for one epoch: slashable evidence.
    let last_vector_epoch = std::sync::atomic::AtomicU64::new(0);
    wait_for("the equivocation to be recorded", LONG, || async {
        let e = net.status(0).await.ok().and_then(|s| s["epoch"].as_u64());
        if let Some(e) = e {
            last_vector_epoch.fetch_max(e, std::sync::atomic::Ordering::Relaxed);
            let _ = net
                .post(1, "/v1/weights", &weights("cheat", e, &[("m", 1)]))
                .await;
            let _ = net
                .post(2, "/v1/weights", &weights("cheat", e, &[("m", 2)]))
                .await;
        }
        let n = registrant(&net, 0, "cheat").await;
        Ok(n.filter(|n| n["slashed"].as_bool() == Some(true)))
    })
    .await?;

    // The attack: leave, and come back with the same bond.
    let leave = ConsensusItem::Deregister(Deregistration::new(&key("cheat"), fed));
    assert_eq!(post(&net, 0, &leave).await?.0, 202);
    wait_for("the cheat gone", LONG, || async {
        Ok(registrant(&net, 0, "cheat").await.is_none().then_some(()))
    })
    .await?;
    // Past the epochs of its vectors, so no queued copy of them can be ordered (and slash it) again.
    let after = last_vector_epoch.load(std::sync::atomic::Ordering::Relaxed);
    wait_for("the evidence's epoch to close", LONG, || async {
        let e = net.status(0).await.ok().and_then(|s| s["epoch"].as_u64());
        Ok(e.filter(|e| *e > after + 1))
    })
    .await?;
    let ConsensusItem::Register(old) = &regs[0] else {
        unreachable!("a registration")
    };
    let mut again = Registration::new(Role::Validator, old.key, old.node_id.clone(), fed);
    again.bond = old.bond.clone();
    let again = signed(again, Node::of("cheat"), &key("cheat"));
    let (status, body) = post(&net, 1, &again).await?;
    assert_eq!(status, 202, "{body}");
    let back = wait_for("the cheat back", LONG, || async {
        Ok(registrant(&net, 0, "cheat").await)
    })
    .await?;
    settle(&net).await?;
    let e = net.status(0).await?["epoch"].as_u64().ok_or("epoch")?;
    let weights_answer = net
        .post(3, "/v1/weights", &weights("cheat", e, &[("m", 3)]))
        .await?;
    let mut states = Vec::new();
    for i in 0..4 {
        let n = registrant(&net, i, "cheat").await.ok_or("listed")?;
        states.push((n["slashed"].as_bool(), n["stake_sat"].as_u64()));
    }
    println!(
        "ATTACK deregister + register after equivocating: re-registered as {} with slashed = {}, stake {} sat \
         (members: {states:?}); its next weights → {} {} (honest: slashed, 0 sat, weights refused)",
        back["key"], back["slashed"], back["stake_sat"], weights_answer.0, weights_answer.1
    );
    for (i, s) in states.iter().enumerate() {
        assert_eq!(*s, (Some(true), Some(0)), "member {i}");
    }
    assert_eq!(weights_answer.0, 400, "{}", weights_answer.1);
    Ok(())
}

/// Row 4 (federation side): the registry is full; a bonded validator (uid 0) earns dividends, a miner
/// earns incentive; an attacker's free registrations burst in once the earlier ones lost their immunity.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registration_burst_does_not_evict_a_bonded_validator() -> Result {
    init_tracing();
    let net = Net::start_with(|p| {
        p.max_uids = 4;
        p.immunity_epochs = 1;
    })
    .await?;
    let regs = net.bonded_registrations(&[("validator-1", BOND)]).await?;
    assert_eq!(post(&net, 0, &regs[0]).await?.0, 202);
    wait_for("the validator's bond to count", LONG, || async {
        let n = registrant(&net, 0, "validator-1").await;
        Ok(n.filter(|n| n["stake_sat"].as_u64() == Some(BOND)))
    })
    .await?;
    for label in ["miner-a", "sybil-0", "sybil-1"] {
        let (status, body) = post(&net, 1, &common::miner_registration(label)).await?;
        assert_eq!(status, 202, "{body}");
        settle(&net).await?;
    }
    assert_eq!(registry(&net, 0).await.len(), 4, "full");
    // The validator weighs the miner each epoch until an epoch pays it dividends (and the sybils are past
    // their immunity).
    let submitter = common::submit_weights(&net, 0, &["validator-1"], &[("miner-a", 65_535)]);
    let validator_key = key("validator-1").x_only_public_key().0;
    let paid = wait_for(
        "an epoch paying the validator dividends",
        LONG * 2,
        || async {
            let e = net.get(0, "/v1/epochs/latest").await.ok().flatten();
            let Some(e) = e.and_then(|e| {
                serde_json::from_value::<boltensor_coordinator::store::SignedEpoch>(e).ok()
            }) else {
                return Ok(None);
            };
            let uid = e
                .result
                .inputs
                .neurons
                .iter()
                .flatten()
                .find(|n| n.key == validator_key)
                .map(|n| n.uid as usize);
            Ok(uid.and_then(|u| {
                (e.result.output.validator_emission[u] > 0 && e.result.inputs.epoch >= 1)
                    .then_some((e.result.inputs.epoch, e.result.output.validator_emission[u]))
            }))
        },
    )
    .await?;
    submitter.abort();
    let last_registered = registry(&net, 0)
        .await
        .iter()
        .filter_map(|n| n["registered_epoch"].as_u64())
        .max()
        .unwrap_or(0);
    wait_for("every registrant past its immunity", LONG, || async {
        let e = net.status(0).await.ok().and_then(|s| s["epoch"].as_u64());
        Ok(e.filter(|e| *e > last_registered))
    })
    .await?;
    let before: Vec<String> = registry(&net, 0)
        .await
        .iter()
        .filter_map(|n| n["key"].as_str().map(String::from))
        .collect();

    // The burst: two free registrations (each replaces one registrant past its immunity).
    let mut answers = Vec::new();
    for i in 2..4 {
        let (status, body) = post(
            &net,
            i % 4,
            &common::miner_registration(&format!("sybil-{i}")),
        )
        .await?;
        answers.push(status);
        if status != 202 {
            println!("  burst registration sybil-{i}: {status} {body}");
        }
        settle(&net).await?;
    }
    let after = registry(&net, 0).await;
    let evicted: Vec<&String> = before
        .iter()
        .filter(|k| !after.iter().any(|n| n["key"].as_str() == Some(k.as_str())))
        .collect();
    let validator = registrant(&net, 0, "validator-1").await;
    println!(
        "ATTACK registration burst: epoch {} paid the validator {} msat of dividends; {} burst registrations \
         ({answers:?}) evicted {evicted:?}; the bonded validator is {} (honest: still registered with {BOND} sat)",
        paid.0,
        paid.1,
        answers.len(),
        validator
            .as_ref()
            .map_or("EVICTED".to_string(), |v| format!("registered with {} sat", v["stake_sat"])),
    );
    for i in 0..4 {
        let v = registrant(&net, i, "validator-1")
            .await
            .ok_or(format!("member {i} evicted the bonded validator"))?;
        assert_eq!(v["stake_sat"].as_u64(), Some(BOND));
    }
    assert!(!evicted.contains(&&xonly("validator-1")), "{evicted:?}");
    Ok(())
}

/// Row 4 (the price of a registration, ADR 0012): the federation asks miners for a bond
/// (`miner_bond_min_sat`). The attacker registers a miner with no bond, and one whose proof claims ten
/// times the bond at an outpoint that does not exist (a claim costs nothing to sign): a member with a
/// bitcoind refuses it before queuing; member 3 runs without one (it checks no bond), so the claim gets
/// into the registry there. A bonded validator weighs the attacker's miner as much as an honest miner
/// with a real bond.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_miner_registration_costs_a_bond_that_counts() -> Result {
    const MINER_BOND: u64 = 50_000;
    init_tracing();
    let mut net = Net::with_params(|p| p.miner_bond_min_sat = MINER_BOND).await?;
    for i in 0..3 {
        net.members[i] = Some(net.start_member(i).await?);
    }
    net.members[3] = Some(net.start_member_with(3, None).await?);
    let regs = net.bonded_registrations(&[("validator-1", BOND)]).await?;
    coins(&net, &[("miner-a", 1)]).await?;
    let honest_bond = net.fund_bond(&key("miner-a"), MINER_BOND).await?;
    net.bitcoind().mine(1).await?;
    assert_eq!(post(&net, 0, &regs[0]).await?.0, 202);
    let honest = common::bonded_miner_registration("miner-a", honest_bond, MINER_BOND)?;
    let (s, body) = post(&net, 1, &honest).await?;
    assert_eq!(s, 202, "{body}");

    let (free_status, free_body) = post(&net, 2, &common::miner_registration("sybil-free")).await?;
    let nowhere = OutPoint {
        txid: bitcoin::Txid::from_byte_array([7; 32]),
        vout: 0,
    };
    let fake = common::bonded_miner_registration("sybil-fake", nowhere, 10 * MINER_BOND)?;
    let (checked_status, checked_body) = post(&net, 0, &fake).await?;
    let (fake_status, fake_body) = post(&net, 3, &fake).await?;
    assert_eq!(fake_status, 202, "{fake_body}");
    wait_for("the honest bonds to count", LONG, || async {
        let v = registrant(&net, 0, "validator-1").await;
        let m = registrant(&net, 0, "miner-a").await;
        let f = registrant(&net, 0, "sybil-fake").await;
        Ok((v.is_some_and(|v| v["stake_sat"].as_u64() == Some(BOND))
            && m.is_some_and(|m| m["stake_sat"].as_u64() == Some(MINER_BOND))
            && f.is_some())
        .then_some(()))
    })
    .await?;

    // The validator weighs both miners alike, every epoch, until an epoch pays the honest miner.
    let submitter = common::submit_weights(
        &net,
        0,
        &["validator-1"],
        &[("miner-a", 65_535), ("sybil-fake", 65_535)],
    );
    let (honest_key, fake_key) = (xonly("miner-a"), xonly("sybil-fake"));
    let epoch = wait_for("an epoch paying the honest miner", LONG * 2, || async {
        let e = net.get(0, "/v1/epochs/latest").await.ok().flatten();
        let Some(e) = e.and_then(|e| {
            serde_json::from_value::<boltensor_coordinator::store::SignedEpoch>(e).ok()
        }) else {
            return Ok(None);
        };
        let paid = e
            .result
            .payouts
            .iter()
            .any(|p| p.key.to_string() == honest_key && p.msat > 0);
        Ok(paid.then_some(e))
    })
    .await?;
    submitter.abort();
    let paid_to = |k: &str| -> u64 {
        epoch
            .result
            .payouts
            .iter()
            .filter(|p| p.key.to_string() == k)
            .map(|p| p.msat)
            .sum()
    };
    let (to_honest, to_fake) = (paid_to(&honest_key), paid_to(&fake_key));
    let listed = net.get(0, "/v1/miners").await?.unwrap_or_default();
    let listed: Vec<&str> = listed["miners"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["node_id"].as_str()).collect())
        .unwrap_or_default();
    let node = |label: &str| Node::of(label).id().to_string();
    let fake_stake = registrant(&net, 0, "sybil-fake")
        .await
        .map(|f| f["stake_sat"].clone());
    println!(
        "ATTACK miner registration without a bond that counts (miner_bond_min_sat = {MINER_BOND}): no bond → \
         {free_status} {}; a proof of {} sat at an outpoint that does not exist → {checked_status} at a member \
         with a bitcoind ({}), {fake_status} at the member without one, stake {}; \
         weighed like the honest bonded miner, epoch {} paid it {to_fake} msat and the honest miner {to_honest} \
         msat; /v1/miners lists {} miner(s): honest {}, fake {}",
        free_body["error"]["message"].as_str().unwrap_or_default(),
        10 * MINER_BOND,
        checked_body["error"]["message"].as_str().unwrap_or_default(),
        fake_stake.unwrap_or_default(),
        epoch.result.inputs.epoch,
        listed.len(),
        listed.contains(&node("miner-a").as_str()),
        listed.contains(&node("sybil-fake").as_str()),
    );
    assert_eq!(free_status, 400, "{free_body}");
    assert_eq!(checked_status, 400, "{checked_body}");
    assert_eq!(
        to_fake, 0,
        "a claimed bond that does not count earns nothing"
    );
    assert!(to_honest > 0);
    assert!(listed.contains(&node("miner-a").as_str()));
    assert!(!listed.contains(&node("sybil-fake").as_str()));
    Ok(())
}
