//! A validator and the real coordinator federation: four coordinators in one process on real TCP links
//! with a regtest bitcoind. The validator funds its bond from its ldk-node's on-chain wallet, registers
//! through the validator library, its stake counts once the members attested the bond; two miners
//! register; with one member crashed, the validator delivers its signed vector for the epoch being
//! collected to every coordinator URL it knows, and the epoch result — verified independently — has it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bitcoin::secp256k1::{Keypair, SecretKey, SECP256K1};
use bitcoin::{Amount, Network};
use boltensor_contracts::{BitcoindRpc, RpcAuth};
use boltensor_coordinator::config::ConsensusTiming;
use boltensor_coordinator::items::Registration;
use boltensor_coordinator::params::Params;
use boltensor_coordinator::{start, CoordinatorConfig, FederationConfig, Options, Running};
use boltensor_ln::ChainSource;
use boltensor_protocol::weights::{SignedWeights, WeightVector};
use boltensor_protocol::Role;
use boltensor_testenv::{wait_for, TestNet};
use boltensor_validator::federation::{self, Answer, FederationClient, FederationError};
use boltensor_validator::BondRequest;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn key(label: &str) -> Keypair {
    let digest = <bitcoin::hashes::sha256::Hash as bitcoin::hashes::Hash>::hash(label.as_bytes());
    let secret = SecretKey::from_slice(bitcoin::hashes::Hash::as_byte_array(&digest))
        .expect("a sha256 is a valid secret key");
    Keypair::from_secret_key(SECP256K1, &secret)
}

struct Net {
    testnet: TestNet,
    rpc: BitcoindRpc,
    federation: FederationConfig,
    members: Vec<Option<Running>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Net {
    async fn start() -> Result<Net> {
        let testnet = TestNet::start().await?;
        let ChainSource::BitcoindRpc {
            port,
            user,
            password,
            ..
        } = testnet.bitcoind.chain_source()
        else {
            return Err("testenv bitcoind without RPC".into());
        };
        let rpc = BitcoindRpc::new(
            format!("http://127.0.0.1:{port}"),
            RpcAuth::UserPass { user, password },
        );
        let (federation, keys) = boltensor_coordinator::config::loopback_federation(
            "validator-test",
            b"validator-test",
            4,
            ConsensusTiming {
                rounds_per_session: 8,
                round_delay_ms: 60,
            },
            Params {
                epoch_sessions: 2,
                bond_min_timelock: 50,
                bond_margin: 5,
                bond_min_confirmations: 1,
                bond_min_sat: 10_000,
                epoch_pool_msat: 1_000_000,
                ..Params::default()
            },
            boltensor_testenv::free_port,
        )?;
        federation.validate()?;
        let dirs = (0..4)
            .map(|_| tempfile::tempdir())
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut running = Vec::new();
        for (i, kp) in keys.iter().enumerate() {
            let cfg = CoordinatorConfig {
                federation: federation.clone(),
                index: i,
                keypair: *kp,
                data_dir: dirs[i].path().to_path_buf(),
            };
            running.push(Some(
                start(
                    cfg,
                    Options {
                        rpc: Some(rpc.clone()),
                        bond_check_every: Some(Duration::from_millis(500)),
                        ..Options::default()
                    },
                )
                .await?,
            ));
        }
        Ok(Net {
            testnet,
            rpc,
            federation,
            members: running,
            _dirs: dirs,
        })
    }

    fn urls(&self) -> Vec<String> {
        self.federation
            .members
            .iter()
            .map(|m| format!("http://{}", m.api))
            .collect()
    }
}

fn miner_registration(fed: [u8; 32], label: &str, port: u16) -> Registration {
    let kp = key(label);
    let node = key(&format!("{label}-node"));
    let mut r = Registration::new(
        Role::Miner,
        kp.x_only_public_key().0,
        node.public_key().to_string(),
        fed,
    );
    r.api = Some(format!("http://127.0.0.1:{port}"));
    r.models = vec!["all-minilm-l6-v2".into()];
    r.sign_node(|m| boltensor_ln::sign_message_with_key(m, &node.secret_key()))
        .sign(&kp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bonded_validator_registers_and_its_weights_reach_a_signed_epoch() -> Result {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "warn,boltensor_validator=info,ldk_node::chain::bitcoind=off".into()
            }),
        )
        .with_test_writer()
        .try_init();
    let started = Instant::now();
    let mut net = Net::start().await?;
    let long = Duration::from_secs(60);
    let client = FederationClient::new(net.urls()).with_retry_every(Duration::from_millis(200));

    // The federation as the validator learns it: status and public config.
    let status = client.status().await?;
    assert_eq!((status.members, status.threshold), (4, 3));
    let fed_cfg = client.federation().await?;
    assert_eq!(fed_cfg, net.federation);

    // The validator's ldk-node funds its bond from its on-chain wallet.
    let node = net.testnet.node("validator").await?;
    net.testnet.fund(&[&node], 1).await?;
    let vdir = tempfile::tempdir()?;
    let weights_key = boltensor_validator::load_keypair(vdir.path())?;
    let too_short = federation::fund_bond(
        &node,
        &net.rpc,
        &weights_key,
        &fed_cfg,
        Amount::from_sat(200_000),
        fed_cfg.params.bond_min_timelock - 1,
        Network::Regtest,
    )
    .await;
    assert!(
        matches!(too_short, Err(FederationError::Bond(_))),
        "{too_short:?}"
    );
    let bond = BondRequest {
        rpc: net.rpc.clone(),
        amount: Amount::from_sat(200_000),
        timelock: None,
        network: Network::Regtest,
    };
    // Enrolling funds the bond (the funding transaction is in the mempool now), stores the proof and
    // registers; the bond counts once it confirms and more than f members attested it.
    let (registration, delivery) =
        boltensor_validator::enroll(&client, &node, vdir.path(), Some(bond.clone())).await?;
    assert_eq!(delivery.holders(), 4, "{delivery:?}");
    net.testnet.bitcoind.mine(1).await?;
    let proof = boltensor_validator::load_bond_proof(vdir.path())?.ok_or("proof stored")?;
    assert_eq!(registration.bond, Some(proof.to_hex()));
    assert!(proof.claims.timelock >= fed_cfg.params.bond_min_timelock);
    assert_eq!(proof.claims.node_id, node.node_id());
    assert_eq!(
        proof.claims.registration_key,
        weights_key.x_only_public_key().0
    );
    // Enrolling again (a restart) reuses the stored bond: no second funding.
    let (again, _) = boltensor_validator::enroll(&client, &node, vdir.path(), Some(bond)).await?;
    // The same registration but for its sequence (and so its signatures): a later item of the same key.
    assert_eq!(
        (&again.key, &again.node_id, &again.bond, &again.federation),
        (
            &registration.key,
            &registration.node_id,
            &registration.bond,
            &registration.federation
        )
    );
    assert!(again.sequence > registration.sequence);

    // A forged registration is refused by every member, with the reason.
    let mut forged = registration.clone();
    forged.node_id = key("someone-else").public_key().to_string();
    match client.register(&forged).await {
        Err(FederationError::Refused(reasons)) => {
            assert_eq!(reasons.len(), 4);
            assert!(
                reasons.iter().all(|(_, m)| m.contains("signature")),
                "{reasons:?}"
            );
        }
        other => panic!("forged registration: {other:?}"),
    }
    let key_hex = weights_key.x_only_public_key().0.to_string();
    let me = client.wait_registered(&key_hex, true, long).await?;
    assert_eq!(me.role, Role::Validator);
    assert_eq!(me.node_id, node.node_id().to_string());
    assert_eq!(me.stake_sat, 200_000);
    println!("MEASURED bond counted {:?} after start", started.elapsed());

    // Two miners register; the validator learns them (with their node ids) from the registry.
    for (label, port) in [("miner-a", 18001), ("miner-b", 18002)] {
        client
            .register(&miner_registration(fed_cfg.id(), label, port))
            .await?;
    }
    let miners = wait_for("both miners listed", long, || async {
        Ok(client.miners().await.ok().filter(|m| m.len() == 2))
    })
    .await?;
    let node_a = key("miner-a-node").public_key().to_string();
    let node_b = key("miner-b-node").public_key().to_string();
    let mut listed: Vec<_> = miners.iter().map(|m| m.node_id.clone()).collect();
    listed.sort();
    let mut expected = vec![node_a.clone(), node_b.clone()];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(miners.iter().all(|m| m
        .api
        .as_deref()
        .is_some_and(|a| a.starts_with("http://127.0.0.1:1800"))));

    // One member crashes; the validator keeps all four URLs and delivers anyway.
    net.members[3].take().expect("member 3 runs").stop();

    // Sign once per epoch (as the validator's store does), deliver, and confirm inclusion in the
    // verified epoch result; an epoch that moved on before ordering gets the next epoch's vector.
    let mut signed_by_epoch: BTreeMap<u64, SignedWeights> = BTreeMap::new();
    let mut sign = |epoch: u64| -> std::result::Result<SignedWeights, String> {
        Ok(signed_by_epoch
            .entry(epoch)
            .or_insert_with(|| {
                WeightVector {
                    epoch,
                    validator: weights_key.x_only_public_key().0.serialize(),
                    weights: [(node_a.clone(), 60_000u16), (node_b.clone(), 20_000u16)]
                        .into_iter()
                        .collect(),
                }
                .sign(&weights_key)
            })
            .clone())
    };
    let mut confirmed = None;
    for attempt in 0..5 {
        let (signed, delivery) = client.submit_epoch(&mut sign, long).await?;
        assert!(delivery.delivered());
        assert!(
            matches!(delivery.answers[&net.urls()[3]], Answer::Unreachable(_)),
            "{delivery:?}"
        );
        // The same vector again is harmless: queued or a duplicate, never equivocation.
        let again = client.submit_weights(&signed).await;
        assert!(
            matches!(&again, Ok(_) | Err(FederationError::EpochPassed { .. })),
            "{again:?}"
        );
        let included = wait_for(
            &format!("epoch {} signed", signed.vector.epoch),
            long,
            || async {
                Ok(client
                    .included(&signed, &net.federation)
                    .await
                    .ok()
                    .flatten())
            },
        )
        .await?;
        if included {
            confirmed = Some(signed);
            break;
        }
        println!(
            "attempt {attempt}: epoch {} closed before ordering",
            signed.vector.epoch
        );
    }
    let signed = confirmed.ok_or("the vector never reached a signed epoch")?;
    let epoch = client
        .signed_epoch(signed.vector.epoch, &net.federation)
        .await?
        .ok_or("epoch vanished")?;
    let valid = boltensor_coordinator::verify_epoch(&epoch, &net.federation)?;
    assert!(valid >= 3, "{valid} signatures");
    assert!(epoch
        .result
        .inputs
        .weights
        .iter()
        .any(|w| w.signed == signed));

    // A vector for a past epoch is refused with the epoch being collected.
    let stale = WeightVector {
        epoch: signed.vector.epoch.saturating_sub(1),
        validator: weights_key.x_only_public_key().0.serialize(),
        weights: [(node_a.clone(), 1u16)].into_iter().collect(),
    }
    .sign(&weights_key);
    let refused = client.submit_weights(&stale).await;
    assert!(
        matches!(refused, Err(FederationError::EpochPassed { .. })),
        "{refused:?}"
    );

    println!("MEASURED whole test {:?}", started.elapsed());
    node.stop().await;
    for m in net.members.iter().flatten() {
        m.stop();
    }
    Ok(())
}
