//! The subnet as Yuma sees it, the same in both designs: uids 0..V are validators, V..V+M miner
//! slots. Each design owns one, feeds it its own stake, and runs `boltensor_protocol::yuma::epoch`
//! — the bit-faithful port of subtensor's epoch — on it.

use boltensor_protocol::yuma::{epoch, EpochInput, EpochOutput, EpochParams};
use substrate_fixed::types::I64F64;

use crate::world::{AgentKind, EpochDraws, ValidatorRole, World, TEMPO};

/// Blocks a new miner is immune from deregistration (`SubtensorInitialImmunityPeriod` = 4096).
pub const IMMUNITY_BLOCKS: u64 = 4096;

/// Yuma state carried from epoch to epoch.
#[derive(Debug, Clone)]
pub struct Metagraph {
    /// Validators.
    pub v: usize,
    /// Per miner slot: the agent in it.
    pub slots: Vec<usize>,
    /// Per uid.
    pub block_at_registration: Vec<u64>,
    /// Per uid.
    pub last_update: Vec<u64>,
    /// Per uid.
    pub permits: Vec<bool>,
    /// Per uid.
    pub bonds: Vec<Vec<(u16, u16)>>,
    /// Previous epoch's block (`LastMechansimStepBlock`).
    pub last_step: u64,
    /// Last epoch's output (incentive ranks clients route by; consensus the copier copies).
    pub last: Option<EpochOutput>,
    /// Yuma parameters (subtensor's defaults).
    pub params: EpochParams,
    /// Commit-reveal (subtensor's, ADR 0014): rows are committed one epoch and used in the next.
    pub commit_reveal: bool,
    /// The rows committed last epoch, used this one.
    pub committed: Option<Vec<Vec<(u16, u16)>>>,
}

/// The u16 row a validator stores for its scores, max-upscaled as `set_weights` does.
pub fn max_upscale(values: &[(u16, f64)]) -> Vec<(u16, u16)> {
    let max = values.iter().map(|(_, s)| *s).fold(0.0, f64::max);
    if max <= 0.0 {
        return Vec::new();
    }
    values
        .iter()
        .map(|(uid, s)| (*uid, ((s / max) * 65535.0).round() as u16))
        .collect()
}

impl Metagraph {
    /// A subnet with the world's first miners, all registered at block 0.
    pub fn new(world: &World, miners: usize, commit_reveal: bool) -> Metagraph {
        let v = world.roles.len();
        let n = v + miners;
        Metagraph {
            v,
            slots: (0..miners).collect(),
            block_at_registration: vec![0; n],
            last_update: vec![0; n],
            permits: vec![false; n],
            bonds: vec![Vec::new(); n],
            last_step: 0,
            last: None,
            params: EpochParams {
                tempo: TEMPO,
                ..EpochParams::default()
            },
            commit_reveal,
            committed: None,
        }
    }

    /// Number of uids.
    pub fn n(&self) -> usize {
        self.v + self.slots.len()
    }

    /// The slot a new miner replaces: the lowest pruning score (last emission) among miners past
    /// immunity, ties to the lowest uid — `get_neuron_to_prune` in
    /// `pallets/subtensor/src/subnets/registration.rs`. `None` while every miner is immune.
    pub fn slot_to_prune(&self, block: u64) -> Option<usize> {
        let last = self.last.as_ref()?;
        (0..self.slots.len())
            .filter(|&s| {
                block.saturating_sub(self.block_at_registration[self.v + s]) >= IMMUNITY_BLOCKS
            })
            .min_by_key(|&s| (last.emission[self.v + s], s))
    }

    /// Puts `agent` in `slot` at `block`.
    pub fn register(&mut self, slot: usize, agent: usize, block: u64) {
        self.slots[slot] = agent;
        self.block_at_registration[self.v + slot] = block;
    }

    /// Incentive of each miner slot from the last epoch (u16), or equal if there was none.
    pub fn routing_weights(&self) -> Vec<f64> {
        match &self.last {
            Some(out) if out.incentive[self.v..].iter().any(|&i| i > 0) => out.incentive[self.v..]
                .iter()
                .map(|&i| f64::from(i))
                .collect(),
            _ => vec![1.0; self.slots.len()],
        }
    }

    /// Builds every validator's stored weight row for this epoch. Without commit-reveal the copier copies
    /// the rows the others submitted this epoch (public as soon as they are ordered: their mean,
    /// max-upscaled); with it, every row is committed this epoch and used in the next, and the copier
    /// can only copy the last public consensus.
    pub fn weights(&mut self, world: &World, draws: &EpochDraws) -> Vec<Vec<(u16, u16)>> {
        let mut rows = vec![Vec::new(); self.n()];
        let colluders_miner = self
            .slots
            .iter()
            .position(|&a| world.agents[a].kind == AgentKind::Colluders);
        for (vi, role) in world.roles.iter().enumerate() {
            let scored: Vec<(u16, f64)> = self
                .slots
                .iter()
                .enumerate()
                .map(|(s, &a)| ((self.v + s) as u16, draws.scores[vi][a]))
                .collect();
            rows[vi] = match role {
                ValidatorRole::Honest => max_upscale(&scored),
                ValidatorRole::Colluder => {
                    let mut row = max_upscale(&scored);
                    if let Some(s) = colluders_miner {
                        if let Some(cell) = row.iter_mut().find(|(u, _)| *u as usize == self.v + s)
                        {
                            cell.1 = u16::MAX;
                        }
                    }
                    row
                }
                // Filled in below, from the others' rows.
                ValidatorRole::Copier => Vec::new(),
            };
        }
        let copied = if self.commit_reveal {
            // The public consensus of the last epoch, max-upscaled.
            self.last.as_ref().map(|out| {
                max_upscale(
                    &(self.v..self.n())
                        .map(|uid| (uid as u16, f64::from(out.consensus[uid])))
                        .collect::<Vec<_>>(),
                )
            })
        } else {
            // This epoch's submitted rows of the others, added up.
            let mut sum = vec![0f64; self.n()];
            for (vi, role) in world.roles.iter().enumerate() {
                if *role != ValidatorRole::Copier {
                    for (uid, w) in &rows[vi] {
                        sum[*uid as usize] += f64::from(*w);
                    }
                }
            }
            Some(max_upscale(
                &(self.v..self.n())
                    .map(|uid| (uid as u16, sum[uid]))
                    .collect::<Vec<_>>(),
            ))
        };
        for (vi, role) in world.roles.iter().enumerate() {
            if *role == ValidatorRole::Copier {
                rows[vi] = copied.clone().unwrap_or_default();
            }
        }
        if self.commit_reveal {
            // This epoch uses what was committed last epoch (nothing in the first).
            let n = self.n();
            return self
                .committed
                .replace(rows)
                .unwrap_or_else(|| vec![Vec::new(); n]);
        }
        rows
    }

    /// Runs one Yuma epoch at `block` with this stake (per validator, in the design's unit) and
    /// `emission` to split; carries permits and bonds forward as subtensor stores them.
    pub fn step(
        &mut self,
        block: u64,
        stake: &[u64],
        weights: Vec<Vec<(u16, u16)>>,
        emission: u64,
    ) -> EpochOutput {
        let n = self.n();
        for (vi, row) in weights.iter().enumerate().take(self.v) {
            if !row.is_empty() {
                self.last_update[vi] = block.saturating_sub(1);
            }
        }
        let mut stake_vec: Vec<I64F64> = vec![I64F64::from_num(0); n];
        for (vi, s) in stake.iter().enumerate().take(self.v) {
            stake_vec[vi] = I64F64::saturating_from_num(*s);
        }
        let input = EpochInput {
            current_block: block,
            last_mechanism_step_block: self.last_step,
            stake: stake_vec,
            last_update: self.last_update.clone(),
            block_at_registration: self.block_at_registration.clone(),
            validator_permits: self.permits.clone(),
            weights,
            bonds: self.bonds.clone(),
            rao_emission: emission,
        };
        let out = epoch(&self.params, &input).expect("the metagraph builds consistent inputs");
        for (stored, new) in self.bonds.iter_mut().zip(&out.bonds) {
            if let Some(row) = new {
                stored.clone_from(row);
            }
        }
        self.permits.clone_from(&out.validator_permits);
        self.last_step = block;
        self.last = Some(out.clone());
        out
    }
}

/// Splits `requests` over miner slots in proportion to `weights`, none above `capacity`; what
/// does not fit goes to the others, and what fits nowhere is dropped (returned second).
pub fn route(requests: u64, weights: &[f64], capacity: u64) -> (Vec<u64>, u64) {
    let mut out = vec![0u64; weights.len()];
    let mut left = requests;
    for _ in 0..8 {
        let open: Vec<usize> = (0..weights.len())
            .filter(|&i| out[i] < capacity && weights[i] > 0.0)
            .collect();
        let total: f64 = open.iter().map(|&i| weights[i]).sum();
        if left == 0 || total <= 0.0 {
            break;
        }
        let mut given = 0;
        for &i in &open {
            let share = ((left as f64) * weights[i] / total).floor() as u64;
            let take = share.min(capacity - out[i]);
            out[i] += take;
            given += take;
        }
        // Rounding remainder to the heaviest open slot with room.
        let rest = left - given;
        if rest > 0 {
            if let Some(&i) = open
                .iter()
                .filter(|&&i| out[i] < capacity)
                .max_by(|&&a, &&b| weights[a].total_cmp(&weights[b]))
            {
                let take = rest.min(capacity - out[i]);
                out[i] += take;
                given += take;
            }
        }
        left -= given;
        if given == 0 {
            break;
        }
    }
    (out, left)
}
