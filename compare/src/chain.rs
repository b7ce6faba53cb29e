//! On-chain costs of the Lightning design at a fee rate, from the transaction sizes the contracts tests
//! measure on regtest (docs/data/contracts.json, written by `scripts/contracts-measured.sh`).

use serde::{Deserialize, Serialize};

/// The committed measurement.
pub const COMMITTED_CONTRACTS: &str = include_str!("../../docs/data/contracts.json");

/// The sizes the comparison uses, virtual bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChainSizes {
    /// A bond's funding transaction.
    pub bond_funding_vb: u64,
    /// Its withdrawal by the owner after the timelock.
    pub bond_withdrawal_vb: u64,
    /// A slash by 3 of 4 federation members.
    pub bond_slash_vb: u64,
    /// A channel's funding transaction from an ldk-node wallet. Where the contracts tests measured no
    /// channel funding, their ldk-node bond funding stands in: the same wallet, one P2TR input, the new
    /// output and change, and a channel's P2WSH output (`OP_0 <32 bytes>`) is exactly as large as a bond's
    /// P2TR output (`OP_1 <32 bytes>`).
    pub channel_funding_vb: u64,
}

impl ChainSizes {
    /// Reads the contracts tests' JSON.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("contracts JSON: {e}"))?;
        let vb = |name: &str| -> Result<u64, String> {
            v["transactions"][name]["vsize_vb"]
                .as_u64()
                .ok_or_else(|| format!("contracts JSON: no transactions.{name}.vsize_vb"))
        };
        Ok(ChainSizes {
            bond_funding_vb: vb("bond_funding")?,
            bond_withdrawal_vb: vb("bond_withdrawal_owner")?,
            bond_slash_vb: vb("bond_slash_3of4")?,
            channel_funding_vb: vb("channel_funding_ldk")
                .or_else(|_| vb("bond_funding_ldk_node"))?,
        })
    }

    /// The committed measurement.
    pub fn committed() -> Self {
        Self::from_json(COMMITTED_CONTRACTS)
            .expect("docs/data/contracts.json has the sizes (checked by a test)")
    }

    /// Chain fees of a bond, created and withdrawn, at `rate` sat/vB.
    pub fn bond_fees_sats(&self, rate: f64) -> f64 {
        rate * (self.bond_funding_vb + self.bond_withdrawal_vb) as f64
    }
}

impl Default for ChainSizes {
    fn default() -> Self {
        Self::committed()
    }
}

/// One fee rate's on-chain costs.
#[derive(Debug, Clone, Serialize)]
pub struct FeeRow {
    /// sat/vB.
    pub rate: f64,
    /// A bond created and withdrawn (a miner's entry, or a validator's), sats.
    pub bond_sats: f64,
    /// Opening a miner's inbound channel (paid by the coordinator that opens it), sats.
    pub channel_sats: f64,
    /// A slash, sats.
    pub slash_sats: f64,
    /// (bond + channel) / a Lightning miner's mean income over the run.
    pub entry_share_of_miner_income: f64,
}

/// The fee rates the report shows.
pub const FEE_RATES: [f64; 5] = [2.0, 10.0, 25.0, 50.0, 100.0];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_sizes_parse_and_a_missing_one_is_named() {
        let c = ChainSizes::committed();
        assert!(c.bond_funding_vb > 100 && c.bond_withdrawal_vb > 100);
        assert_eq!(
            c.bond_fees_sats(2.0),
            2.0 * (c.bond_funding_vb + c.bond_withdrawal_vb) as f64
        );
        let err = ChainSizes::from_json(r#"{"transactions": {}}"#).expect_err("no sizes");
        assert!(err.contains("bond_funding"), "{err}");
    }
}
