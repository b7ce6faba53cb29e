//! `boltensor bench embed`: embedding throughput with concurrent clients, one text per request, one at a
//! time per request (the blocking pool, what the miner does) against the batcher
//! ([`boltensor_miner::backend::EmbedBatcher`]), on the real all-MiniLM-L6-v2; and how far the batched
//! vectors are from one-at-a-time ones. Build with --release for meaningful figures.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boltensor_miner::backend::{MiniLm, RunControl};
use serde::Serialize;

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedBench {
    /// Concurrent clients.
    pub concurrency: usize,
    /// Seconds per mode.
    pub seconds: f64,
    /// Texts per second, one forward pass per text.
    pub unbatched_per_sec: f64,
    /// Texts per second through the batcher.
    pub batched_per_sec: f64,
    /// batched / unbatched.
    pub ratio: f64,
    /// The mean texts per batched forward pass.
    pub mean_batch: f64,
    /// The lowest cosine similarity between a batched vector and the one-at-a-time vector of its text.
    pub min_cosine: f64,
}

impl EmbedBench {
    /// The figures as text.
    pub fn render(&self) -> String {
        format!(
            "embeddings, {} concurrent clients, {:.0} s each (all-MiniLM-L6-v2, one text per request):\n\
             one forward pass per text   {:>8.1} texts/s\n\
             batched                     {:>8.1} texts/s  ({:.2}× ; mean batch {:.1} texts)\n\
             batched vs single vectors   min cosine {:.7}\n",
            self.concurrency,
            self.seconds,
            self.unbatched_per_sec,
            self.batched_per_sec,
            self.ratio,
            self.mean_batch,
            self.min_cosine
        )
    }
}

/// Sentences of mixed length, as clients send them.
fn text(i: u64) -> String {
    const WORDS: [&str; 12] = [
        "bitcoin",
        "lightning",
        "miner",
        "validator",
        "payment",
        "inference",
        "model",
        "channel",
        "epoch",
        "bond",
        "federation",
        "invoice",
    ];
    let len = 4 + (i * 7 % 13) as usize;
    (0..len)
        .map(|k| WORDS[((i as usize) * 5 + k * 3) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs both modes for `seconds` each with `concurrency` clients on the model in `dir`.
pub async fn run(dir: &Path, concurrency: usize, seconds: u64) -> Result<EmbedBench, String> {
    let model = Arc::new(MiniLm::load(dir).map_err(|e| e.to_string())?);
    let span = Duration::from_secs(seconds.max(1));
    let mode = |batched: bool| {
        let model = Arc::clone(&model);
        async move {
            let done = Arc::new(AtomicU64::new(0));
            let next = Arc::new(AtomicU64::new(0));
            let end = Instant::now() + span;
            let started = Instant::now();
            let clients = (0..concurrency.max(1)).map(|_| {
                let (model, done, next) =
                    (Arc::clone(&model), Arc::clone(&done), Arc::clone(&next));
                tokio::spawn(async move {
                    while Instant::now() < end {
                        let t = text(next.fetch_add(1, Ordering::Relaxed));
                        let ok = if batched {
                            model
                                .batcher()
                                .embed(vec![t], RunControl::paid())
                                .await
                                .is_ok()
                        } else {
                            let m = Arc::clone(&model);
                            tokio::task::spawn_blocking(move || m.embed(&t).is_ok())
                                .await
                                .unwrap_or(false)
                        };
                        if ok {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            });
            futures_util::future::join_all(clients).await;
            done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
        }
    };
    let unbatched = mode(false).await;
    let batched = mode(true).await;
    let (passes, texts) = model.batcher().stats();
    // The same texts, batched (32 at once) and one at a time.
    let sample: Vec<String> = (0..32).map(text).collect();
    let refs: Vec<&str> = sample.iter().map(String::as_str).collect();
    let together = model.embed_batch(&refs).map_err(|e| e.to_string())?;
    let mut min_cosine = f64::MAX;
    for (t, v) in sample.iter().zip(&together) {
        let one = model.embed(t).map_err(|e| e.to_string())?;
        let c: f32 = one.iter().zip(v).map(|(a, b)| a * b).sum();
        min_cosine = min_cosine.min(f64::from(c));
    }
    Ok(EmbedBench {
        concurrency,
        seconds: span.as_secs_f64(),
        unbatched_per_sec: unbatched,
        batched_per_sec: batched,
        ratio: batched / unbatched.max(f64::MIN_POSITIVE),
        mean_batch: texts as f64 / passes.max(1) as f64,
        min_cosine,
    })
}
