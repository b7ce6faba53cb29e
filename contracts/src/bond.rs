//! [`Bond`]: bitcoin locked so that its owner gets it back after T blocks and the federation can take it
//! (slash) at any time; [`BondPolicy`]: when a bond counts as stake.
//!
//! The output is `tr(NUMS,{and_v(v:pk(owner),older(T)),multi_a(k,fed_1,…,fed_n)})`: an unspendable internal
//! key (see ADR 0007 for why not a cooperative key path) and two leaves at depth 1.

use std::str::FromStr;

use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Address, Amount, Network, ScriptBuf, Sequence, VarInt};
use miniscript::descriptor::{DefiniteDescriptorKey, Descriptor, DescriptorPublicKey};

use crate::Federation;

/// The x coordinate of BIP-341's "nothing up my sleeve" point H = lift_x(SHA-256(G)): nobody knows its
/// discrete logarithm, so a taproot output with it as internal key has no key path.
pub const NUMS_INTERNAL_KEY_HEX: &str =
    "50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0";

/// [`NUMS_INTERNAL_KEY_HEX`] as a key.
pub fn nums_internal_key() -> XOnlyPublicKey {
    XOnlyPublicKey::from_str(NUMS_INTERNAL_KEY_HEX).expect("BIP-341's H is a valid x-only key")
}

/// Why a bond (or treasury) script cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BondError {
    /// `older(0)` is no timelock at all.
    #[error("the timelock must be at least 1 block")]
    ZeroTimelock,
    /// miniscript refused the descriptor (should not happen for valid keys; the message says why).
    #[error("miniscript refused the bond descriptor {descriptor}: {reason}")]
    Descriptor {
        /// The descriptor string.
        descriptor: String,
        /// miniscript's error.
        reason: String,
    },
}

/// Which leaf of a bond a spend uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BondPath {
    /// `and_v(v:pk(owner),older(T))`: the owner, once the bond is T blocks deep.
    Withdraw,
    /// `multi_a(k,fed…)`: k federation members, at any time (slash or cooperative exit).
    Federation,
}

/// A bond's terms: who owns it, which federation can slash it, and its relative timelock T (blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bond {
    owner: XOnlyPublicKey,
    federation: Federation,
    timelock: u16,
    descriptor: Descriptor<DefiniteDescriptorKey>,
}

impl Bond {
    /// The bond of `owner`, slashable by `federation`, reclaimable after `timelock` blocks
    /// (`older` takes heights below 65536, hence `u16`).
    pub fn new(
        owner: XOnlyPublicKey,
        federation: Federation,
        timelock: u16,
    ) -> Result<Self, BondError> {
        if timelock == 0 {
            return Err(BondError::ZeroTimelock);
        }
        let s = format!(
            "tr({},{{and_v(v:pk({owner}),older({timelock})),{}}})",
            nums_internal_key(),
            federation.multi_a()
        );
        let descriptor = parse_definite(&s)?;
        Ok(Bond {
            owner,
            federation,
            timelock,
            descriptor,
        })
    }

    /// The owner's key.
    pub fn owner(&self) -> XOnlyPublicKey {
        self.owner
    }

    /// The federation that can slash it.
    pub fn federation(&self) -> &Federation {
        &self.federation
    }

    /// T, in blocks.
    pub fn timelock(&self) -> u16 {
        self.timelock
    }

    /// The nSequence a withdrawal must carry (BIP-68 relative height T).
    pub fn withdraw_sequence(&self) -> Sequence {
        Sequence::from_height(self.timelock)
    }

    /// The descriptor (with keys, no private data).
    pub fn descriptor(&self) -> &Descriptor<DefiniteDescriptorKey> {
        &self.descriptor
    }

    /// The output script a bond is funded to.
    pub fn script_pubkey(&self) -> ScriptBuf {
        self.descriptor.script_pubkey()
    }

    /// The address to fund, on `network`.
    pub fn address(&self, network: Network) -> Address {
        Address::from_script(&self.script_pubkey(), network)
            .expect("a taproot output script always has an address")
    }

    /// The tapscript of one leaf (for display and docs/contracts.md).
    pub fn leaf_script(&self, path: BondPath) -> ScriptBuf {
        leaf_scripts(&self.descriptor)
            .into_iter()
            .nth(match path {
                BondPath::Withdraw => 0,
                BondPath::Federation => 1,
            })
            .expect("a bond descriptor has two leaves")
    }

    /// The witness size in weight units (= bytes) of a spend along `path`, including the stack count:
    /// what fee estimates add to the unsigned transaction's weight (plus 2 for the segwit marker).
    /// Exact for `SIGHASH_DEFAULT` signatures (64 bytes), which is what [`crate::sign_psbt`] makes.
    pub fn witness_size(&self, path: BondPath) -> usize {
        let sigs = match path {
            BondPath::Withdraw => vec![true],
            BondPath::Federation => federation_sigs(&self.federation),
        };
        // Two leaves at depth 1: the control block holds one sibling hash.
        script_path_witness_size(&sigs, self.leaf_script(path).len(), 1)
    }
}

/// Which witness items a k-of-n `multi_a` spend carries: k signatures and n − k empty pushes.
pub(crate) fn federation_sigs(federation: &Federation) -> Vec<bool> {
    (0..federation.len())
        .map(|i| i < federation.threshold())
        .collect()
}

/// Size of a script-path witness: the stack count, one item per signature slot (a 64-byte signature or an
/// empty push), the script, and a control block of 33 + 32 × `depth` bytes, each with its length prefix.
pub(crate) fn script_path_witness_size(sigs: &[bool], script_len: usize, depth: usize) -> usize {
    let items = sigs.len() + 2;
    let control = 33 + 32 * depth;
    let sig_bytes: usize = sigs.iter().map(|s| if *s { 65 } else { 1 }).sum();
    VarInt(items as u64).size()
        + sig_bytes
        + VarInt(script_len as u64).size()
        + script_len
        + VarInt(control as u64).size()
        + control
}

/// When a bond counts as stake. Every coordinator uses the same policy (a governed parameter).
///
/// A bond with `c` confirmations can be withdrawn by a transaction that enters the mempool once `c ≥ T`
/// and is mined at depth T. It counts while `min_confirmations ≤ c < T − margin`, so for the last `margin`
/// blocks before the owner could leave, and ever after, it gives no stake: an owner never reclaims a bond
/// that still counts, and the federation has `margin` blocks to slash what was earned while it counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondPolicy {
    federation: Federation,
    min_timelock: u16,
    margin: u16,
    min_confirmations: u32,
    min_amount: Amount,
}

/// Why a bond policy is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A bond must be confirmed to count.
    #[error("min_confirmations must be at least 1")]
    ZeroMinConfirmations,
    /// With these numbers even a bond with the shortest allowed timelock would never count.
    #[error("min_confirmations {min_confirmations} + margin {margin} must be below min_timelock {min_timelock}, or no bond ever counts")]
    NeverCounts {
        /// The minimum confirmations.
        min_confirmations: u32,
        /// The safety margin.
        margin: u16,
        /// The shortest timelock accepted.
        min_timelock: u16,
    },
}

impl BondPolicy {
    /// A policy: bonds slashable by `federation`, with timelock at least `min_timelock`, counting from
    /// `min_confirmations` until `margin` blocks before they can be withdrawn, if worth `min_amount` or more.
    pub fn new(
        federation: Federation,
        min_timelock: u16,
        margin: u16,
        min_confirmations: u32,
        min_amount: Amount,
    ) -> Result<Self, PolicyError> {
        if min_confirmations == 0 {
            return Err(PolicyError::ZeroMinConfirmations);
        }
        if min_confirmations + u32::from(margin) >= u32::from(min_timelock) {
            return Err(PolicyError::NeverCounts {
                min_confirmations,
                margin,
                min_timelock,
            });
        }
        Ok(BondPolicy {
            federation,
            min_timelock,
            margin,
            min_confirmations,
            min_amount,
        })
    }

    /// The federation.
    pub fn federation(&self) -> &Federation {
        &self.federation
    }

    /// The shortest timelock accepted.
    pub fn min_timelock(&self) -> u16 {
        self.min_timelock
    }

    /// The safety margin in blocks.
    pub fn margin(&self) -> u16 {
        self.margin
    }

    /// Confirmations needed before a bond counts.
    pub fn min_confirmations(&self) -> u32 {
        self.min_confirmations
    }

    /// The smallest bond accepted.
    pub fn min_amount(&self) -> Amount {
        self.min_amount
    }

    /// The last confirmation count at which a bond with `timelock` still counts (None: it never does).
    pub fn last_counting_confirmations(&self, timelock: u16) -> Option<u32> {
        let end = u32::from(timelock).checked_sub(u32::from(self.margin))?;
        let last = end.checked_sub(1)?;
        (last >= self.min_confirmations).then_some(last)
    }

    /// Whether a bond with `timelock` and `confirmations` counts now.
    pub fn counts(&self, timelock: u16, confirmations: u32) -> bool {
        self.last_counting_confirmations(timelock)
            .is_some_and(|last| confirmations >= self.min_confirmations && confirmations <= last)
    }

    /// The stake a bond gives: its amount while it counts, zero otherwise.
    pub fn stake(&self, timelock: u16, amount: Amount, confirmations: u32) -> Amount {
        if self.counts(timelock, confirmations) && amount >= self.min_amount {
            amount
        } else {
            Amount::ZERO
        }
    }
}

pub(crate) fn parse_definite(s: &str) -> Result<Descriptor<DefiniteDescriptorKey>, BondError> {
    let err = |reason: String| BondError::Descriptor {
        descriptor: s.to_owned(),
        reason,
    };
    let d = Descriptor::<DescriptorPublicKey>::from_str(s).map_err(|e| err(e.to_string()))?;
    d.sanity_check().map_err(|e| err(e.to_string()))?;
    d.at_derivation_index(0).map_err(|e| err(e.to_string()))
}

pub(crate) fn leaf_scripts(d: &Descriptor<DefiniteDescriptorKey>) -> Vec<ScriptBuf> {
    match d {
        Descriptor::Tr(tr) => tr.iter_scripts().map(|(_, ms)| ms.encode()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::test_keys;

    fn fed(n: usize, k: usize) -> Federation {
        let xs = test_keys(n + 1)[1..]
            .iter()
            .map(|k| k.x_only_public_key().0)
            .collect();
        Federation::new(xs, k).expect("valid")
    }

    #[test]
    fn descriptor_shape_and_sizes() {
        let owner = test_keys(1)[0].x_only_public_key().0;
        let bond = Bond::new(owner, fed(4, 3), 144).expect("valid");
        let s = bond.descriptor().to_string();
        assert!(
            s.starts_with(&format!(
                "tr({NUMS_INTERNAL_KEY_HEX},{{and_v(v:pk({owner}),older(144)),multi_a(3,"
            )),
            "{s}"
        );
        assert!(bond.script_pubkey().is_p2tr());
        // count (1) + sig (1+64) + script (1+38) + control block (1+65)
        assert_eq!(bond.leaf_script(BondPath::Withdraw).len(), 38);
        assert_eq!(bond.witness_size(BondPath::Withdraw), 1 + 65 + 39 + 66);
        // 3 sigs + 1 empty + script (4 × (push key, CHECKSIG/ADD) + k NUMEQUAL) + control block
        let fed_script = bond.leaf_script(BondPath::Federation).len();
        assert_eq!(fed_script, 4 * 34 + 2);
        assert_eq!(
            bond.witness_size(BondPath::Federation),
            1 + 3 * 65 + 1 + (1 + fed_script) + 66
        );
        assert_eq!(Bond::new(owner, fed(4, 3), 0), Err(BondError::ZeroTimelock));
    }

    #[test]
    fn stake_counts_only_well_before_the_timelock() {
        let p = BondPolicy::new(fed(4, 3), 100, 10, 1, Amount::from_sat(1000)).expect("valid");
        assert!(!p.counts(100, 0));
        assert!(p.counts(100, 1));
        assert!(p.counts(100, 89));
        assert!(!p.counts(100, 90), "within the margin");
        assert!(!p.counts(100, 100), "withdrawable");
        assert_eq!(p.stake(100, Amount::from_sat(999), 5), Amount::ZERO);
        assert_eq!(
            p.stake(100, Amount::from_sat(5000), 5),
            Amount::from_sat(5000)
        );
        assert_eq!(p.last_counting_confirmations(11), None);
        assert_eq!(
            BondPolicy::new(fed(4, 3), 11, 10, 1, Amount::ZERO),
            Err(PolicyError::NeverCounts {
                min_confirmations: 1,
                margin: 10,
                min_timelock: 11
            })
        );
    }
}
