//! Issue 20, rows 1 and 2, run as an attacker would on a running devnet (`boltensor devnet up`: bitcoind,
//! hubs, a four-member federation, a miner serving a model, two bonded validators challenging it, a client
//! with traffic). The attacker holds only what anyone has: the members' public APIs, a bitcoind to fund a
//! bond from, its own keys. It tries to turn one bond into two stakes (row 1) and to take the honest
//! miner's place in the registry (row 2); the test prints what it got (`ATTACK …`) next to its honest share.

use std::time::Duration;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, SecretKey, SECP256K1};
use bitcoin::{Amount, FeeRate, Network, OutPoint};
use boltensor_contracts::{Bond, BondClaims, Federation as BondFederation, KeyWallet};
use boltensor_coordinator::items::{ConsensusItem, Registration};
use boltensor_coordinator::store::SignedEpoch;
use boltensor_coordinator::FederationConfig;
use boltensor_devnet::{self as devnet, DevnetConfig, DevnetState, StatusReport};
use boltensor_protocol::Role;
use boltensor_testenv::{free_port, wait_for, TestEnvError};
use serde_json::Value;

type Result<T = ()> = std::result::Result<T, TestEnvError>;

const LONG: Duration = Duration::from_secs(120);
/// The attacker's one bond: what each honest validator bonds on the devnet's first validator.
const BOND: u64 = devnet::federation::VALIDATOR_BOND_SAT;

fn err(e: impl std::fmt::Display) -> TestEnvError {
    TestEnvError::Devnet(e.to_string())
}

fn key(label: &str) -> Keypair {
    let digest = bitcoin::hashes::sha256::Hash::hash(format!("devnet-attacker/{label}").as_bytes());
    Keypair::from_secret_key(
        SECP256K1,
        &SecretKey::from_slice(digest.as_ref()).expect("a hash is a valid key"),
    )
}

fn config(dir: &std::path::Path) -> Result<DevnetConfig> {
    Ok(DevnetConfig {
        data_dir: dir.to_path_buf(),
        coordinators: 2,
        miners: 1,
        validators: 2,
        clients: 1,
        bitcoind: None,
        control_port: free_port().map_err(err)?,
        models_dir: None,
        traffic_interval: Some(Duration::from_secs(2)),
        validator_round: Some(Duration::from_secs(2)),
        epoch: Duration::from_secs(8),
        block_interval: Some(Duration::from_secs(1)),
        validator_spend: None,
    })
}

async fn get(http: &reqwest::Client, url: &str) -> Result<Value> {
    let resp = http.get(url).send().await.map_err(err)?;
    if !resp.status().is_success() {
        return Err(err(format!("GET {url}: {}", resp.status())));
    }
    resp.json().await.map_err(err)
}

async fn post(http: &reqwest::Client, api: &str, item: &ConsensusItem) -> Result<(u16, Value)> {
    let resp = http
        .post(format!("{api}/v1/items"))
        .json(item)
        .send()
        .await
        .map_err(err)?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

async fn registry(http: &reqwest::Client, api: &str) -> Vec<Value> {
    get(http, &format!("{api}/v1/registry"))
        .await
        .ok()
        .and_then(|r| r["registry"].as_array().cloned())
        .unwrap_or_default()
}

/// A registration of `label`'s key, signed by the node key `node` (the attacker's own, or whatever it
/// has) and by the registration key.
fn registration(
    fed: &FederationConfig,
    role: Role,
    label: &str,
    node: &Keypair,
    node_id: bitcoin::secp256k1::PublicKey,
    edit: impl FnOnce(&mut Registration),
) -> ConsensusItem {
    let kp = key(label);
    let mut r = Registration::new(
        role,
        kp.x_only_public_key().0,
        node_id.to_string(),
        fed.id(),
    );
    edit(&mut r);
    let r = r.sign_node(|m| boltensor_ln::sign_message_with_key(m, &node.secret_key()));
    ConsensusItem::Register(r.sign(&kp))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_devnet_attacker_gets_no_more_than_its_honest_share() -> Result {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir_path = dir.path().to_path_buf();
    let up = tokio::spawn(devnet::up(
        config(&dir_path)?,
        std::future::pending(),
        |_| {},
    ));
    let ready = wait_for("the devnet to be ready", LONG, || async {
        if up.is_finished() {
            return Err(err("devnet up ended early"));
        }
        Ok(devnet::status(&dir_path).await.ok().filter(|r| r.ready))
    })
    .await;
    let outcome = match ready {
        Ok(report) => tokio::spawn(attack(report)).await,
        Err(e) => Ok(Err(e)),
    };
    let stopped = devnet::down(&dir_path).await;
    let ended = up.await.expect("devnet task does not panic");
    match outcome {
        // Say why `up` ended, not only that it did.
        Ok(Err(e)) => return Err(err(format!("{e}; devnet up ended with {ended:?}"))),
        Ok(Ok(())) => {}
        Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
    }
    assert!(stopped?, "down found the devnet running");
    ended
}

async fn attack(report: StatusReport) -> Result {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(err)?;
    let members: Vec<String> = report
        .federation
        .as_ref()
        .ok_or_else(|| err("no federation in the status"))?
        .members
        .iter()
        .map(|m| m.api_url.clone())
        .collect();
    let api = members[0].clone();
    let fed: FederationConfig =
        serde_json::from_value(get(&http, &format!("{api}/v1/federation")).await?).map_err(err)?;
    // The honest validators bond and register on their own: wait until both stakes count.
    let honest = wait_for("both honest validators' bonds to count", LONG, || async {
        let reg = registry(&http, &api).await;
        let v: Vec<u64> = reg
            .iter()
            .filter(|n| n["role"] == "validator")
            .filter_map(|n| n["stake_sat"].as_u64())
            .filter(|s| *s > 0)
            .collect();
        Ok((v.len() == 2).then(|| v.iter().sum::<u64>()))
    })
    .await?;

    // Row 1. The attacker mines itself coins on the devnet's bitcoind, funds one bond of BOND sat and
    // signs two bond proofs for it with two registration keys, posted to two members at once.
    let state = DevnetState::load(&report.data_dir)?.ok_or_else(|| err("no devnet state"))?;
    let rpc = devnet::federation::rpc(
        state.bitcoind_rpc_port,
        &state.rpc_user,
        &state.rpc_password,
    );
    let owner = key("owner");
    let wallet = KeyWallet::new(owner, Network::Regtest);
    let _: Value = rpc
        .call(
            "generatetoaddress",
            // Five coinbases mature: one for row 1's bond, four for row 2's miner bonds.
            serde_json::json!([105, wallet.address().to_string()]),
        )
        .await
        .map_err(err)?;
    let timelock = boltensor_validator::federation::default_timelock(&fed);
    let bond = Bond::new(
        owner.x_only_public_key().0,
        BondFederation::byzantine(fed.keys()).map_err(err)?,
        timelock,
    )
    .map_err(err)?;
    let funding = wallet
        .fund(
            &rpc,
            bond.script_pubkey(),
            Amount::from_sat(BOND),
            FeeRate::from_sat_per_vb(2).expect("a fee rate"),
        )
        .await
        .map_err(err)?;
    let outpoint: OutPoint = funding.outpoint;
    let validator = |label: &str| {
        let node = key(&format!("{label}-node"));
        let proof = BondClaims {
            outpoint,
            amount: Amount::from_sat(BOND),
            timelock,
            owner: owner.x_only_public_key().0,
            role: Role::Validator,
            node_id: node.public_key(),
            registration_key: key(label).x_only_public_key().0,
        }
        .sign(&owner)
        .expect("signs");
        registration(
            &fed,
            Role::Validator,
            label,
            &node,
            node.public_key(),
            |r| r.bond = Some(proof.to_hex()),
        )
    };
    let (v1, v2) = (
        validator("sybil-validator-1"),
        validator("sybil-validator-2"),
    );
    let (a1, a2) = tokio::join!(post(&http, &members[1], &v1), post(&http, &members[2], &v2));
    let (s1, s2) = (a1?.0, a2?.0);
    let sybils = [
        "sybil-validator-1",
        "sybil-validator-2",
        "sybil-validator-3",
    ];
    let is_sybil = |n: &Value| {
        sybils
            .iter()
            .any(|l| n["key"].as_str() == Some(&key(l).x_only_public_key().0.to_string()))
    };
    let attacker_stake = wait_for("the attacker's bond to count", LONG, || async {
        let reg = registry(&http, &api).await;
        let s: u64 = reg
            .iter()
            .filter(|n| is_sybil(n))
            .filter_map(|n| n["stake_sat"].as_u64())
            .sum();
        Ok((s > 0).then_some(s))
    })
    .await?;
    // Once one claim is listed, the API names the conflict to whoever tries again.
    let (s3, body3) = post(&http, &members[3], &validator("sybil-validator-3")).await?;
    // Every member agrees on the registry a few sessions later.
    let listed = wait_for("every member to list the same validators", LONG, || async {
        let mut views = Vec::new();
        for m in &members {
            let reg = registry(&http, m).await;
            let mut v: Vec<(String, u64)> = reg
                .iter()
                .filter(|n| n["role"] == "validator")
                .map(|n| {
                    (
                        n["key"].as_str().unwrap_or_default().to_string(),
                        n["stake_sat"].as_u64().unwrap_or(0),
                    )
                })
                .collect();
            v.sort();
            views.push(v);
        }
        let same = views.windows(2).all(|w| w[0] == w[1]) && views[0].len() >= 3;
        Ok(same.then(|| views.swap_remove(0)))
    })
    .await?;
    let sybil_keys: Vec<String> = sybils
        .iter()
        .map(|l| key(l).x_only_public_key().0.to_string())
        .collect();
    let attacker_listed = listed
        .iter()
        .filter(|(k, _)| sybil_keys.contains(k))
        .count();
    let total: u64 = listed.iter().map(|(_, s)| s).sum();
    let share = attacker_stake as f64 / total as f64;
    let honest_share = BOND as f64 / (BOND + honest) as f64;
    println!(
        "ATTACK (devnet) one bond, many stakes: posted two proofs of one {BOND}-sat bond at once → {s1}, {s2}; a third \
         later → {s3} {}; the attacker holds {attacker_stake} sat of stake through {attacker_listed} registrant(s), \
         {:.1}% of {total} sat; its honest share is {BOND} sat, {:.1}%",
        body3["error"]["message"].as_str().unwrap_or_default(),
        100.0 * share,
        100.0 * honest_share,
    );
    assert_eq!(attacker_stake, BOND, "one bond is one stake");
    assert_eq!(attacker_listed, 1, "one outpoint backs one registrant");
    assert!(share <= honest_share + 1e-9);
    assert_eq!(s3, 409, "{body3}");

    // Row 2. The attacker takes the devnet miner's URL (spelled three ways) with its own node keys, and
    // the miner's node id signed by its own key. The devnet asks miners for a bond (row 4), checked
    // against each member's bitcoind before queuing, so the attacker pays for four real bonds: the
    // checks of row 2 are what refuse the registrations.
    let mut miner_bonds = Vec::new();
    for _ in 0..4 {
        let funding = wallet
            .fund(
                &rpc,
                bond.script_pubkey(),
                Amount::from_sat(devnet::federation::MINER_BOND_SAT),
                FeeRate::from_sat_per_vb(2).expect("a fee rate"),
            )
            .await
            .map_err(err)?;
        miner_bonds.push(funding.outpoint);
    }
    let funded_bond = |label: &str, i: usize, node_id: bitcoin::secp256k1::PublicKey| {
        BondClaims {
            outpoint: miner_bonds[i],
            amount: Amount::from_sat(devnet::federation::MINER_BOND_SAT),
            timelock,
            owner: owner.x_only_public_key().0,
            role: Role::Miner,
            node_id,
            registration_key: key(label).x_only_public_key().0,
        }
        .sign(&owner)
        .expect("signs")
        .to_hex()
    };
    let victim = report
        .nodes
        .iter()
        .find(|n| n.role == Role::Miner)
        .ok_or_else(|| err("no miner"))?
        .clone();
    let victim_url = victim
        .api_url
        .clone()
        .ok_or_else(|| err("the miner serves no API"))?;
    let base = victim_url.trim_end_matches("/v1").to_string();
    let victim_id: bitcoin::secp256k1::PublicKey = victim.node_id.parse().map_err(err)?;
    let mut answers = Vec::new();
    let spellings = [
        base.clone(),
        format!("{base}/"),
        format!("{}/V1/", base.to_uppercase()),
    ];
    for (i, url) in spellings.iter().enumerate() {
        let label = format!("sybil-miner-{i}");
        let node = key(&format!("{label}-node"));
        let bond = funded_bond(&label, i, node.public_key());
        let item = registration(&fed, Role::Miner, &label, &node, node.public_key(), |r| {
            r.api = Some(url.clone());
            r.models = vec!["all-minilm-l6-v2".into()];
            r.bond = Some(bond);
        });
        answers.push(post(&http, &members[i % 4], &item).await?.0);
    }
    let borrowed = registration(
        &fed,
        Role::Miner,
        "sybil-miner-3",
        &key("sybil-miner-3-node"),
        victim_id,
        |r| {
            r.api = Some("http://attacker.example:8080".into());
            r.models = vec!["all-minilm-l6-v2".into()];
            r.bond = Some(funded_bond("sybil-miner-3", 3, victim_id));
        },
    );
    answers.push(post(&http, &members[3], &borrowed).await?.0);

    // Two epochs signed after the attack: what the attacker's keys were paid, what the miner was paid.
    // The devnet may not have signed its first epoch yet (404 until it has): wait for one, so "after the
    // attack" starts at an epoch whose inputs were collected after these registrations.
    let latest = wait_for("a signed epoch", LONG, || async {
        Ok(get(&http, &format!("{api}/v1/epochs/latest")).await.ok())
    })
    .await?;
    let first: SignedEpoch = serde_json::from_value(latest).map_err(err)?;
    let from = first.result.inputs.epoch + 1;
    let to = from + 1;
    wait_for("two epochs signed after the attack", LONG, || async {
        Ok(get(&http, &format!("{api}/v1/epochs/{to}")).await.ok())
    })
    .await?;
    let sybil_miner_keys: Vec<String> = (0..4)
        .map(|i| {
            key(&format!("sybil-miner-{i}"))
                .x_only_public_key()
                .0
                .to_string()
        })
        .collect();
    let reg = registry(&http, &api).await;
    let miner_keys: Vec<&str> = reg
        .iter()
        .filter(|n| n["role"] == "miner")
        .filter_map(|n| n["key"].as_str())
        .collect();
    let (mut to_attacker, mut to_victim, mut to_miners) = (0u64, 0u64, 0u64);
    for e in from..=to {
        let signed: SignedEpoch =
            serde_json::from_value(get(&http, &format!("{api}/v1/epochs/{e}")).await?)
                .map_err(err)?;
        boltensor_coordinator::verify_epoch(&signed, &fed).map_err(err)?;
        for p in &signed.result.payouts {
            let k = p.key.to_string();
            if sybil_miner_keys.contains(&k) {
                to_attacker += p.msat;
            }
            if p.node_id == victim.node_id {
                to_victim += p.msat;
            }
            if miner_keys.contains(&k.as_str()) {
                to_miners += p.msat;
            }
        }
    }
    let norm = |u: &str| {
        let u = u.trim_end_matches('/').to_lowercase();
        u.trim_end_matches("/v1").to_string()
    };
    let same_url = reg
        .iter()
        .filter(|n| n["api"].as_str().is_some_and(|a| norm(a) == norm(&base)))
        .count();
    let victim_listed = reg
        .iter()
        .filter(|n| n["node_id"] == victim.node_id.as_str())
        .count();
    println!(
        "ATTACK (devnet) borrowed miner identity: 3 registrations with the miner's URL and the attacker's node ids, 1 \
         with the miner's node id, each with a funded bond → {answers:?}; registrants with that URL: {same_url}, with that node id: \
         {victim_listed}; over epochs {from}–{to} the attacker's keys were paid {to_attacker} msat, the miner \
         {to_victim} msat of {to_miners} msat paid to miners (its honest share: 0, it serves nothing)"
    );
    // The three URL takers are refused as conflicts (not for their bond), the node id borrower for a
    // node signature it cannot make.
    assert_eq!(answers, [409, 409, 409, 400], "{answers:?}");
    assert_eq!(same_url, 1);
    assert_eq!(victim_listed, 1);
    assert_eq!(to_attacker, 0);
    Ok(())
}
