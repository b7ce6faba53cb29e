//! [`Treasury`]: the federation's own output, `tr(NUMS,multi_a(k,fed_1,…,fed_n))`. Slashed bonds pay here;
//! only k of the n members together can pay out of it.

use bitcoin::{Address, Network, ScriptBuf};
use miniscript::descriptor::{DefiniteDescriptorKey, Descriptor};

use crate::bond::{
    federation_sigs, leaf_scripts, nums_internal_key, parse_definite, script_path_witness_size,
};
use crate::{BondError, Federation};

/// Why a treasury script cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreasuryError {
    /// miniscript refused the descriptor.
    #[error(transparent)]
    Descriptor(#[from] BondError),
}

/// The federation's treasury output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Treasury {
    federation: Federation,
    descriptor: Descriptor<DefiniteDescriptorKey>,
}

impl Treasury {
    /// The treasury of `federation`.
    pub fn new(federation: Federation) -> Result<Self, TreasuryError> {
        let s = format!("tr({},{})", nums_internal_key(), federation.multi_a());
        let descriptor = parse_definite(&s)?;
        Ok(Treasury {
            federation,
            descriptor,
        })
    }

    /// The federation.
    pub fn federation(&self) -> &Federation {
        &self.federation
    }

    /// The descriptor.
    pub fn descriptor(&self) -> &Descriptor<DefiniteDescriptorKey> {
        &self.descriptor
    }

    /// The output script.
    pub fn script_pubkey(&self) -> ScriptBuf {
        self.descriptor.script_pubkey()
    }

    /// The address on `network`.
    pub fn address(&self, network: Network) -> Address {
        Address::from_script(&self.script_pubkey(), network)
            .expect("a taproot output script always has an address")
    }

    /// The `multi_a` tapscript.
    pub fn leaf_script(&self) -> ScriptBuf {
        leaf_scripts(&self.descriptor)
            .into_iter()
            .next()
            .expect("a treasury descriptor has one leaf")
    }

    /// Witness size (weight units) of spending one treasury output with k signatures (one leaf: the
    /// control block has no sibling hashes).
    pub fn witness_size(&self) -> usize {
        script_path_witness_size(
            &federation_sigs(&self.federation),
            self.leaf_script().len(),
            0,
        )
    }
}
