//! Prints a 3-of-4 bond and treasury (deterministic test keys): descriptors, addresses, leaf scripts and
//! witness sizes, as quoted in docs/contracts.md. `cargo run -p boltensor-contracts --example show`.

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Keypair, SECP256K1};
use bitcoin::Network;
use boltensor_contracts::{Bond, BondPath, Federation, Treasury};

fn key(label: &str) -> Keypair {
    Keypair::from_seckey_slice(
        SECP256K1,
        &sha256::Hash::hash(label.as_bytes()).to_byte_array(),
    )
    .expect("a hash is a valid secret key")
}

fn main() -> anyhow::Result<()> {
    let fed = Federation::new(
        (0..4)
            .map(|i| key(&format!("fed-{i}")).x_only_public_key().0)
            .collect(),
        3,
    )?;
    let bond = Bond::new(key("owner").x_only_public_key().0, fed.clone(), 144)?;
    let treasury = Treasury::new(fed)?;
    println!("bond descriptor: {}", bond.descriptor());
    println!("bond address:    {}", bond.address(Network::Regtest));
    for path in [BondPath::Withdraw, BondPath::Federation] {
        let s = bond.leaf_script(path);
        println!(
            "{path:?} leaf ({} B): {}\n  witness {} B",
            s.len(),
            s.to_asm_string(),
            bond.witness_size(path)
        );
    }
    println!("treasury descriptor: {}", treasury.descriptor());
    let s = treasury.leaf_script();
    println!(
        "treasury leaf ({} B): {}\n  witness {} B",
        s.len(),
        s.to_asm_string(),
        treasury.witness_size()
    );
    Ok(())
}
