//! The library the other roles call, against a real regtest bitcoind: `BitcoindRpc` (network check, clear
//! errors, UTXO snapshots, proof verification) and `KeyWallet` funding a bond from the owner key's coins.

mod common;

use anyhow::{Context, Result};
use bitcoin::{Amount, FeeRate, Network, OutPoint};
use boltensor_contracts::{
    BitcoindRpc, Bond, BondClaims, BondPolicy, ChainError, FundError, KeyWallet, ProofError,
    RpcAuth, VerifyError,
};
use boltensor_protocol::Role;
use boltensor_testenv::{Bitcoind, BitcoindOptions};
use common::{federation, key, keys};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn key_wallet_funds_a_bond_that_verifies_over_rpc() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut opts = BitcoindOptions::new(dir.path().join("bitcoind"));
    opts.rpc_auth = Some(("lib".into(), "lib-pass".into()));
    let bitcoind = Bitcoind::start(opts).await?;
    let url = format!("http://127.0.0.1:{}", bitcoind.rpc_port());
    let rpc = BitcoindRpc::new(
        url.clone(),
        RpcAuth::UserPass {
            user: "lib".into(),
            password: "lib-pass".into(),
        },
    );

    // Network and credentials.
    rpc.check_network(Network::Regtest).await?;
    let e = rpc
        .check_network(Network::Signet)
        .await
        .expect_err("regtest");
    assert!(matches!(e, ChainError::WrongNetwork { .. }), "{e}");
    let wrong = BitcoindRpc::new(
        url,
        RpcAuth::UserPass {
            user: "lib".into(),
            password: "nope".into(),
        },
    );
    let e = wrong.block_count().await.expect_err("bad password");
    assert!(matches!(e, ChainError::Unauthorized { .. }), "{e}");

    // The owner's wallet: two mature coinbases and one immature.
    let owner = key("owner");
    let wallet = KeyWallet::new(owner, Network::Regtest);
    let addr = wallet.address().to_string();
    bitcoind
        .rpc()
        .call::<serde_json::Value>("generatetoaddress", json!([2, addr]))
        .await?;
    bitcoind.mine(99).await?;
    bitcoind
        .rpc()
        .call::<serde_json::Value>("generatetoaddress", json!([1, addr]))
        .await?;
    let utxos = wallet.utxos(&rpc).await?;
    assert_eq!(utxos.len(), 2, "the newest coinbase is not mature");

    let fed_keys = keys("fed", 3);
    let fed = federation(&fed_keys, 2);
    let bond = Bond::new(owner.x_only_public_key().0, fed.clone(), 20)?;
    let fee_rate = FeeRate::from_sat_per_vb(2).context("fee rate")?;
    let e = wallet
        .fund(
            &rpc,
            bond.script_pubkey(),
            Amount::from_btc(1000.0)?,
            fee_rate,
        )
        .await
        .expect_err("not that rich");
    assert!(matches!(e, FundError::Insufficient { .. }), "{e}");

    let amount = Amount::from_sat(2_000_000);
    let funding = wallet
        .fund(&rpc, bond.script_pubkey(), amount, fee_rate)
        .await?;
    common::measured::record(
        "bond_funding",
        "key_wallet_funds_a_bond_that_verifies_over_rpc",
        &funding.tx,
    );
    println!(
        "MEASURED KeyWallet funding: {} input(s), {} output(s), witness {} B, weight {} WU, vsize {} vB, fee {} sat",
        funding.tx.input.len(),
        funding.tx.output.len(),
        common::measured::witness_bytes(&funding.tx),
        funding.tx.weight().to_wu(),
        funding.tx.vsize(),
        funding.fee.to_sat()
    );
    assert_eq!(
        funding.fee,
        fee_rate.fee_vb(funding.tx.vsize() as u64).context("fee")?,
        "the fee is exactly the rate on the final size"
    );
    assert_eq!(
        wallet.utxos(&rpc).await?.len(),
        1,
        "the coin spent in the mempool is no longer offered"
    );
    let (out, conf) = rpc.tx_out(&funding.outpoint).await?.context("in mempool")?;
    assert_eq!((out.value, conf), (amount, 0));
    assert_eq!(rpc.tx_confirmations(&funding.outpoint.txid).await?, Some(0));

    let proof = BondClaims {
        outpoint: funding.outpoint,
        amount,
        timelock: 20,
        owner: owner.x_only_public_key().0,
        role: Role::Miner,
        node_id: key("node").public_key(),
        registration_key: key("reg").x_only_public_key().0,
    }
    .sign(&owner)?;
    let policy = BondPolicy::new(fed, 10, 3, 1, Amount::from_sat(1_000_000))?;
    let e = rpc
        .verify_bond_proof(&proof, &policy)
        .await
        .expect_err("unconfirmed");
    assert!(
        matches!(e, VerifyError::Proof(ProofError::NotConfirmed { .. })),
        "{e}"
    );
    bitcoind.mine(1).await?;
    let v = rpc.verify_bond_proof(&proof, &policy).await?;
    assert_eq!((v.stake, v.confirmations), (amount, 1));

    // An outpoint that never existed.
    let mut ghost = proof.claims.clone();
    ghost.outpoint = OutPoint {
        txid: funding.outpoint.txid,
        vout: 9,
    };
    let e = rpc
        .verify_bond_proof(&ghost.sign(&owner)?, &policy)
        .await
        .expect_err("no such output");
    assert!(
        matches!(e, VerifyError::Proof(ProofError::NotFound { .. })),
        "{e}"
    );
    Ok(())
}

/// The other funding path: a running role's ldk-node pays the bond address from its on-chain wallet.
#[tokio::test(flavor = "multi_thread")]
async fn ldk_node_wallet_funds_a_bond() -> Result<()> {
    let net = boltensor_testenv::TestNet::start().await?;
    let rpc = match net.bitcoind.chain_source() {
        boltensor_ln::ChainSource::BitcoindRpc {
            host,
            port,
            user,
            password,
        } => BitcoindRpc::new(
            format!("http://{host}:{port}"),
            RpcAuth::UserPass { user, password },
        ),
        other => anyhow::bail!("unexpected chain source {other:?}"),
    };
    let node = net.node("bond-owner").await?;
    net.fund(&[&node], 1).await?;

    let owner = key("owner");
    let fed = federation(&keys("fed", 4), 3);
    let bond = Bond::new(owner.x_only_public_key().0, fed.clone(), 50)?;
    let amount = Amount::from_sat(750_000);
    let txid = node.send_to_address(&bond.address(Network::Regtest), amount.to_sat())?;
    net.bitcoind
        .wait_for_tx(txid, std::time::Duration::from_secs(30))
        .await?;
    let tx: serde_json::Value = net
        .bitcoind
        .rpc()
        .call("getrawtransaction", json!([txid.to_string(), true]))
        .await?;
    let spk = bond.script_pubkey().to_hex_string();
    let vout = tx["vout"]
        .as_array()
        .context("vout")?
        .iter()
        .position(|o| o["scriptPubKey"]["hex"].as_str() == Some(spk.as_str()))
        .context("no output pays the bond")? as u32;
    let decoded: bitcoin::Transaction =
        bitcoin::consensus::encode::deserialize_hex(tx["hex"].as_str().context("hex")?)?;
    assert_eq!(
        tx["vsize"].as_u64(),
        Some(decoded.vsize() as u64),
        "bitcoind's vsize"
    );
    assert_eq!(
        tx["weight"].as_u64(),
        Some(decoded.weight().to_wu()),
        "bitcoind's weight"
    );
    common::measured::record(
        "bond_funding_ldk_node",
        "ldk_node_wallet_funds_a_bond",
        &decoded,
    );
    println!(
        "MEASURED ldk-node funding: {} input(s), {} output(s), witness {} B, weight {} WU, vsize {} vB",
        decoded.input.len(),
        decoded.output.len(),
        common::measured::witness_bytes(&decoded),
        decoded.weight().to_wu(),
        decoded.vsize(),
    );
    net.bitcoind.mine(1).await?;

    let proof = BondClaims {
        outpoint: OutPoint { txid, vout },
        amount,
        timelock: 50,
        owner: owner.x_only_public_key().0,
        role: Role::Coordinator,
        node_id: node.node_id(),
        registration_key: key("reg").x_only_public_key().0,
    }
    .sign(&owner)?;
    let policy = BondPolicy::new(fed, 20, 5, 1, Amount::ZERO)?;
    let v = rpc.verify_bond_proof(&proof, &policy).await?;
    assert_eq!((v.stake, v.confirmations), (amount, 1));
    node.stop().await;
    Ok(())
}
