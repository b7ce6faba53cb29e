//! The scoring formula (docs/scoring.md). Pure: no IO.
//!
//! Per challenge the validator records whether the miner answered and was paid (`ok`), how good the answer
//! was (`quality` in [0, 1], from the checks) and its latency. Per miner and challenge kind it keeps
//! exponential moving averages, so one bad answer does not erase a good record and a miner that stops
//! answering decays:
//!
//! ```text
//! availability_k ← (1−α)·availability_k + α·ok
//! quality_k      ← (1−α)·quality_k      + α·quality        (only when ok)
//! speed_k        ← (1−α)·speed_k        + α·min(1, L0/latency)   (only when ok)
//! score = mean_k(availability_k) · mean_k(quality_k)² · (0.7 + 0.3·mean_k(speed_k))
//! ```
//!
//! A score below `prune_below` counts as 0. Weights are the scores max-upscaled to u16.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The two kinds of challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `/v1/embeddings`, checked by recomputation.
    Embedding,
    /// `/v1/chat/completions`, checked by teacher forcing.
    Chat,
}

/// Parameters of the formula.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoringParams {
    /// EMA weight of the newest challenge.
    pub alpha: f64,
    /// Latency that earns full speed.
    pub target_latency: Duration,
    /// Scores below this are 0.
    pub prune_below: f64,
}

impl Default for ScoringParams {
    fn default() -> Self {
        ScoringParams {
            alpha: 0.3,
            target_latency: Duration::from_secs(1),
            prune_below: 0.01,
        }
    }
}

/// Moving averages for one kind of challenge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KindStats {
    /// Answered and paid.
    pub availability: f64,
    /// Check results.
    pub quality: f64,
    /// min(1, L0 / latency).
    pub speed: f64,
    /// Challenges sent.
    pub challenges: u64,
    /// Of which failed (no answer, error, not settled).
    pub failures: u64,
}

impl Default for KindStats {
    fn default() -> Self {
        // A new miner starts neutral-optimistic; its first challenges move it quickly.
        KindStats {
            availability: 1.0,
            quality: 1.0,
            speed: 1.0,
            challenges: 0,
            failures: 0,
        }
    }
}

/// A miner's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinerRecord {
    /// The miner's base URL.
    pub url: String,
    /// Per kind.
    pub kinds: BTreeMap<Kind, KindStats>,
    /// The last challenge's outcome, for `validator weights`.
    pub last: Option<String>,
}

/// One challenge's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Which kind.
    pub kind: Kind,
    /// Answered with a success and the payment settled.
    pub ok: bool,
    /// Check result in [0, 1] (ignored when not ok).
    pub quality: f64,
    /// Request latency (ignored when not ok).
    pub latency: Duration,
}

impl MinerRecord {
    /// Folds one observation into the averages.
    pub fn observe(&mut self, p: &ScoringParams, o: Observation) {
        let k = self.kinds.entry(o.kind).or_default();
        let ema = |old: f64, new: f64| (1.0 - p.alpha) * old + p.alpha * new;
        k.challenges += 1;
        k.availability = ema(k.availability, if o.ok { 1.0 } else { 0.0 });
        if o.ok {
            k.quality = ema(k.quality, o.quality.clamp(0.0, 1.0));
            let speed =
                (p.target_latency.as_secs_f64() / o.latency.as_secs_f64().max(1e-6)).min(1.0);
            k.speed = ema(k.speed, speed);
        } else {
            k.failures += 1;
        }
    }

    /// The score, 0 when pruned, never challenged, or never answered a challenge (the averages start
    /// optimistic, but a miner earns a score only by answering a paid challenge: a registration that
    /// never does — naming someone else's API, say — gets nothing).
    pub fn score(&self, p: &ScoringParams) -> f64 {
        if self.kinds.values().all(|k| k.challenges == k.failures) {
            return 0.0;
        }
        let n = self.kinds.len() as f64;
        let mean = |f: fn(&KindStats) -> f64| self.kinds.values().map(f).sum::<f64>() / n;
        let s = mean(|k| k.availability)
            * mean(|k| k.quality).powi(2)
            * (0.7 + 0.3 * mean(|k| k.speed));
        if s < p.prune_below {
            0.0
        } else {
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(kind: Kind, ok: bool, quality: f64, ms: u64) -> Observation {
        Observation {
            kind,
            ok,
            quality,
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn one_bad_answer_does_not_erase_a_record_and_silence_decays_to_zero() {
        let p = ScoringParams::default();
        let mut m = MinerRecord::default();
        for _ in 0..10 {
            m.observe(&p, obs(Kind::Embedding, true, 1.0, 100));
            m.observe(&p, obs(Kind::Chat, true, 1.0, 500));
        }
        let good = m.score(&p);
        assert!(good > 0.99, "{good}");
        m.observe(&p, obs(Kind::Chat, true, 0.0, 500));
        assert!(
            m.score(&p) > 0.5 * good,
            "one bad answer hurts but does not erase"
        );
        for _ in 0..30 {
            m.observe(&p, obs(Kind::Embedding, false, 0.0, 0));
            m.observe(&p, obs(Kind::Chat, false, 0.0, 0));
        }
        assert_eq!(m.score(&p), 0.0, "an unanswering miner decays to zero");
    }

    #[test]
    fn quality_outranks_speed() {
        let p = ScoringParams::default();
        let run = |q_chat: f64, ms: u64| {
            let mut m = MinerRecord::default();
            for _ in 0..10 {
                m.observe(&p, obs(Kind::Embedding, true, 1.0, ms));
                m.observe(&p, obs(Kind::Chat, true, q_chat, ms));
            }
            m.score(&p)
        };
        let (honest, slow, sloppy) = (run(1.0, 300), run(1.0, 4000), run(0.3, 300));
        assert!(honest > slow && slow > sloppy, "{honest} {slow} {sloppy}");
    }
}
