//! What the Lightning design's channels allow, measured by `boltensor bench lightning` on regtest
//! (docs/data/bench-lightning.json, docs/paid-requests.md "Lightning: hops and HTLC slots"): payment
//! latency over 1–4 hops, and the HTLCs one channel holds in flight (every paid request holds one on
//! each channel of its route until the miner claims or fails it).

use serde::{Deserialize, Serialize};

/// The committed run.
pub const COMMITTED_BENCH_LIGHTNING: &str = include_str!("../../docs/data/bench-lightning.json");

/// The figures the comparison uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelFacts {
    /// Payment latency over 1, 2, 3 and 4 hops, p50 ms.
    pub hop_p50_ms: [f64; 4],
    /// The same, p99 ms.
    pub hop_p99_ms: [f64; 4],
    /// Paid requests one channel held in flight at once (the sender's next one was refused).
    pub htlc_slots: f64,
}

impl ChannelFacts {
    /// Reads `bench lightning`'s JSON.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("bench lightning JSON: {e}"))?;
        let mut p50 = [0.0; 4];
        let mut p99 = [0.0; 4];
        for h in 1..=4u64 {
            let row = v["hops"]
                .as_array()
                .and_then(|rows| rows.iter().find(|r| r["hops"].as_u64() == Some(h)))
                .ok_or_else(|| format!("bench lightning JSON: no {h}-hop row"))?;
            let f = |k: &str| {
                row["latency"][k]
                    .as_f64()
                    .ok_or_else(|| format!("bench lightning JSON: no hops[{h}].latency.{k}"))
            };
            p50[h as usize - 1] = f("p50_ms")?;
            p99[h as usize - 1] = f("p99_ms")?;
        }
        // The fewest any slot run held (each run fills one channel until the sender is refused).
        let htlc_slots = v["slots"]
            .as_array()
            .and_then(|runs| {
                runs.iter()
                    .filter_map(|r| r["held"].as_f64())
                    .reduce(f64::min)
            })
            .ok_or("bench lightning JSON: no slots[].held")?;
        Ok(ChannelFacts {
            hop_p50_ms: p50,
            hop_p99_ms: p99,
            htlc_slots,
        })
    }

    /// The committed run.
    pub fn committed() -> Self {
        Self::from_json(COMMITTED_BENCH_LIGHTNING)
            .expect("docs/data/bench-lightning.json is bench lightning's JSON (checked by a test)")
    }
}

impl Default for ChannelFacts {
    fn default() -> Self {
        Self::committed()
    }
}

/// How a request's duration meets the slots.
#[derive(Debug, Clone, Serialize)]
pub struct SlotRow {
    /// What the duration is.
    pub what: String,
    /// Seconds a paid request holds its HTLC.
    pub hold_s: f64,
    /// Paid requests per second one channel carries at that duration.
    pub per_channel_rps: f64,
    /// Channels the busiest miner of the run needs at its peak.
    pub channels_needed: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_run_parses_and_a_missing_row_is_named() {
        let c = ChannelFacts::committed();
        assert!(c.htlc_slots >= 1.0);
        assert!(c.hop_p50_ms.windows(2).all(|w| w[0] > 0.0 && w[1] > 0.0));
        let err = ChannelFacts::from_json(r#"{"hops": [], "slots": []}"#).expect_err("empty");
        assert!(err.contains("1-hop"), "{err}");
    }
}
