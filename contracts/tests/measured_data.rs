//! docs/data/contracts.json, the sizes the regtest tests measured (scripts/contracts-measured.sh writes it;
//! docs/contracts.md and the compare crate read it), is whole and sane. Reads the committed file: no bitcoind.

use serde_json::Value;

/// The names the compare crate and docs/contracts.md rely on (scripts/contracts-measured.sh checks the same).
const REQUIRED: [&str; 6] = [
    "bond_funding",
    "bond_funding_ldk_node",
    "bond_withdrawal_owner",
    "bond_slash_3of4",
    "bond_cooperative_exit_3of4",
    "treasury_payout_4of5_1in",
];

fn committed() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/data/contracts.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

#[test]
fn committed_measurements_are_complete_and_sane() {
    let doc = committed();
    assert_eq!(doc["source"], "scripts/contracts-measured.sh");
    let txs = doc["transactions"]
        .as_object()
        .expect("\"transactions\" is an object");
    for name in REQUIRED {
        assert!(txs.contains_key(name), "{name} missing");
    }
    for (name, t) in txs {
        let fields: Vec<&str> = t
            .as_object()
            .unwrap_or_else(|| panic!("{name}: not an object"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            ["test", "vsize_vb", "weight_wu", "witness_bytes"],
            "{name}: fields"
        );
        let vsize = t["vsize_vb"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: vsize_vb"));
        let weight = t["weight_wu"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: weight_wu"));
        // vsize is the weight / 4 rounded up; no transaction with an input and an output is under 60 vB.
        assert!(vsize >= 60, "{name}: vsize {vsize}");
        assert!(
            vsize * 4 >= weight && weight > (vsize - 1) * 4,
            "{name}: vsize {vsize} vB is not weight {weight} WU / 4 rounded up"
        );
        match &t["witness_bytes"] {
            Value::Null => {}
            w => {
                let w = w
                    .as_u64()
                    .unwrap_or_else(|| panic!("{name}: witness_bytes"));
                // Witness bytes (with the segwit marker and flag, 2 B) weigh 1 WU each, the rest 4.
                let discounted = if w == 0 { 0 } else { w + 2 };
                assert!(
                    discounted < weight && (weight - discounted) % 4 == 0,
                    "{name}: weight {weight} WU does not fit a {w} B witness"
                );
            }
        }
        let test = t["test"].as_str().unwrap_or_else(|| panic!("{name}: test"));
        assert!(
            !test.is_empty() && test.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{name}: test {test:?}"
        );
    }
}
