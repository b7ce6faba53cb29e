//! Routing by the federation's score: [`MinerDirectory`] asks several coordinators for
//! `GET /v1/miners?model=…`, merges their answers so that one lying member can neither invent a miner,
//! promote one, nor redirect one's traffic, and picks a miner per request by weighted random choice
//! (weight = score + a floor), skipping miners that failed recently.
//!
//! # Layout
//! - [`DirectoryConfig`]: coordinators, cache TTL, score floor, back-off, seed.
//! - [`MinerDirectory`]: `listing(model)` (cached, merged), `candidates(model, fallback)` (the order in
//!   which a request tries miners), `report_failure` / `report_success` (back-off).
//! - [`merge`]: the pure merge rule (majority to be listed, lower median score, majority API URL).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// How the client uses the federation's miner directory.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryConfig {
    /// Coordinator base URLs, e.g. `http://127.0.0.1:7001`. Empty: no directory, the static miner list
    /// is used. Give more than the federation's number of faulty members (f + 1 of 3f + 1; all is best).
    pub coordinators: Vec<String>,
    /// How long a merged listing is reused before the coordinators are asked again (also how long a
    /// failure to reach any of them is remembered). Default 15 s.
    pub ttl: Duration,
    /// Added to every miner's score (0..=1) as its weight, so miners not yet scored (score 0) still get
    /// a little traffic and can earn a score. Default 0.02.
    pub score_floor: f64,
    /// How long a miner that failed (unreachable, timed out, bad challenge, 5xx) is skipped. Default 30 s.
    pub backoff: Duration,
    /// HTTP timeout per coordinator request. Default 3 s.
    pub timeout: Duration,
    /// Seed for the choice (tests); `None`: from the OS.
    pub seed: Option<u64>,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            coordinators: Vec::new(),
            ttl: Duration::from_secs(15),
            score_floor: 0.02,
            backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(3),
            seed: None,
        }
    }
}

impl DirectoryConfig {
    /// Defaults with these coordinators.
    pub fn new(coordinators: Vec<String>) -> Self {
        DirectoryConfig {
            coordinators,
            ..DirectoryConfig::default()
        }
    }
}

/// Why no listing could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// No coordinator configured.
    #[error("no coordinator configured")]
    NoCoordinators,
    /// None of the coordinators answered with a readable listing.
    #[error("no coordinator answered /v1/miners: {reasons:?}")]
    NoAnswer {
        /// Per coordinator, why.
        reasons: Vec<String>,
    },
}

/// One miner as one coordinator lists it (`GET /v1/miners`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListedMiner {
    /// Its uid in the federation's registry.
    #[serde(default)]
    pub uid: u64,
    /// Its Lightning node id.
    pub node_id: String,
    /// Its OpenAI-compatible API URL (from its signed registration).
    #[serde(default)]
    pub api: Option<String>,
    /// Its models.
    #[serde(default)]
    pub models: Vec<String>,
    /// Incentive in the last signed epoch, out of 65535.
    #[serde(default)]
    pub incentive: u64,
    /// Consensus weight in the last signed epoch, out of 65535.
    #[serde(default)]
    pub consensus: u64,
    /// incentive / 65535.
    #[serde(default)]
    pub score: f64,
}

/// One coordinator's answer to `GET /v1/miners`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    /// The last signed epoch (`None` before the first).
    pub epoch: Option<u64>,
    /// Miners, highest incentive first.
    pub miners: Vec<ListedMiner>,
}

/// A miner after merging the coordinators' answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectoryMiner {
    /// Its Lightning node id (the key answers are merged by).
    pub node_id: String,
    /// The API URL a majority of the listing coordinators report.
    pub api: String,
    /// Its models (as reported with that URL).
    pub models: Vec<String>,
    /// The lower median of the score across all answering coordinators (a coordinator that does not
    /// list it counts 0), clamped to 0..=1.
    pub score: f64,
    /// How many answering coordinators list it.
    pub listed_by: usize,
}

/// The merged view of the answering coordinators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergedListing {
    /// The lower median of the reported epochs (`None` counts lowest).
    pub epoch: Option<u64>,
    /// How many coordinators answered.
    pub answered: usize,
    /// Miners, highest score first (ties by node id).
    pub miners: Vec<DirectoryMiner>,
}

/// The lower median: with 2k values the k-th smallest, so that fewer than half of the values cannot
/// lift it above every honest one (and with 3f + 1 values, f of them cannot move it outside the honest
/// range).
fn lower_median<T: PartialOrd + Copy>(mut v: Vec<T>) -> Option<T> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Some(v[(v.len() - 1) / 2])
}

fn clamp_score(s: f64) -> f64 {
    if s.is_finite() {
        s.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Merges answers from distinct coordinators. A miner is kept only if a strict majority of the answering
/// coordinators list it (with its API URL); its score is the lower median over all of them, a
/// coordinator not listing it counting 0; its URL is the one a strict majority of the coordinators report.
/// So a minority cannot invent a miner, lift its score above what an honest member reports, or point
/// its traffic elsewhere.
pub fn merge(answers: &[Listing]) -> MergedListing {
    let n = answers.len();
    // (api, models, score) as one coordinator reports a miner.
    type Report<'a> = (&'a str, &'a [String], f64);
    // node_id → per-coordinator reports; one per coordinator at most.
    let mut seen: BTreeMap<&str, Vec<Report<'_>>> = BTreeMap::new();
    for answer in answers {
        let mut this: HashMap<&str, Report<'_>> = HashMap::new();
        for m in &answer.miners {
            let Some(api) = m.api.as_deref() else {
                continue;
            };
            this.entry(m.node_id.as_str()).or_insert((
                api,
                m.models.as_slice(),
                clamp_score(m.score),
            ));
        }
        for (node, entry) in this {
            seen.entry(node).or_default().push(entry);
        }
    }
    let mut miners: Vec<DirectoryMiner> = seen
        .into_iter()
        .filter_map(|(node, entries)| {
            if entries.len() * 2 <= n {
                return None;
            }
            let mut urls: BTreeMap<&str, usize> = BTreeMap::new();
            for (api, _, _) in &entries {
                *urls.entry(api).or_default() += 1;
            }
            let (api, votes) = urls.into_iter().max_by_key(|(_, c)| *c)?;
            if votes * 2 <= n {
                return None;
            }
            let models = entries
                .iter()
                .find(|(a, _, _)| *a == api)
                .map(|(_, m, _)| m.to_vec())
                .unwrap_or_default();
            let mut scores: Vec<f64> = entries.iter().map(|(_, _, s)| *s).collect();
            scores.resize(n, 0.0);
            Some(DirectoryMiner {
                node_id: node.to_owned(),
                api: api.trim_end_matches('/').to_owned(),
                models,
                score: lower_median(scores).unwrap_or(0.0),
                listed_by: entries.len(),
            })
        })
        .collect();
    miners.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.node_id.cmp(&b.node_id))
    });
    MergedListing {
        epoch: lower_median(answers.iter().map(|a| a.epoch).collect()).flatten(),
        answered: n,
        miners,
    }
}

type Cached = (
    Instant,
    Result<std::sync::Arc<MergedListing>, DirectoryError>,
);

/// The federation's miners, cached, merged across coordinators, and chosen from by score.
#[derive(Debug)]
pub struct MinerDirectory {
    cfg: DirectoryConfig,
    http: reqwest::Client,
    cache: Mutex<HashMap<Option<String>, Cached>>,
    /// API URL → skipped until.
    failed: Mutex<HashMap<String, Instant>>,
    rng: Mutex<StdRng>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MinerDirectory {
    /// A directory over `cfg.coordinators`.
    pub fn new(cfg: DirectoryConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .unwrap_or_default();
        let rng = match cfg.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        MinerDirectory {
            cfg,
            http,
            cache: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            rng: Mutex::new(rng),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DirectoryConfig {
        &self.cfg
    }

    /// The merged listing for `model` (all miners when `None`), from the cache if younger than the TTL.
    pub async fn listing(
        &self,
        model: Option<&str>,
    ) -> Result<std::sync::Arc<MergedListing>, DirectoryError> {
        if self.cfg.coordinators.is_empty() {
            return Err(DirectoryError::NoCoordinators);
        }
        let key = model.map(str::to_owned);
        if let Some((at, cached)) = lock(&self.cache).get(&key) {
            if at.elapsed() < self.cfg.ttl {
                return cached.clone();
            }
        }
        let result = self.fetch(model).await.map(std::sync::Arc::new);
        lock(&self.cache).insert(key, (Instant::now(), result.clone()));
        result
    }

    /// Forgets cached listings (the next request asks the coordinators again).
    pub fn invalidate(&self) {
        lock(&self.cache).clear();
    }

    async fn fetch(&self, model: Option<&str>) -> Result<MergedListing, DirectoryError> {
        let asks = self.cfg.coordinators.iter().map(|c| async move {
            let mut req = self
                .http
                .get(format!("{}/v1/miners", c.trim_end_matches('/')));
            if let Some(m) = model {
                req = req.query(&[("model", m)]);
            }
            let answer = async {
                req.send()
                    .await?
                    .error_for_status()?
                    .json::<Listing>()
                    .await
            }
            .await;
            answer.map_err(|e| format!("{c}: {e}"))
        });
        let mut answers = Vec::new();
        let mut reasons = Vec::new();
        for a in futures_util::future::join_all(asks).await {
            match a {
                Ok(l) => answers.push(l),
                Err(e) => reasons.push(e),
            }
        }
        if answers.is_empty() {
            tracing::warn!(?reasons, "no coordinator answered /v1/miners");
            return Err(DirectoryError::NoAnswer { reasons });
        }
        let merged = merge(&answers);
        tracing::debug!(
            model,
            answered = merged.answered,
            miners = merged.miners.len(),
            epoch = merged.epoch,
            "miner directory refreshed"
        );
        Ok(merged)
    }

    /// Marks `api` as failed: it is skipped for the back-off period.
    pub fn report_failure(&self, api: &str) {
        self.report_failure_at(api, Instant::now());
    }

    fn report_failure_at(&self, api: &str, now: Instant) {
        tracing::debug!(miner = %api, backoff_ms = self.cfg.backoff.as_millis() as u64, "miner backed off");
        lock(&self.failed).insert(api.trim_end_matches('/').to_owned(), now + self.cfg.backoff);
    }

    /// Clears `api`'s back-off (it answered).
    pub fn report_success(&self, api: &str) {
        lock(&self.failed).remove(api.trim_end_matches('/'));
    }

    /// Whether `api` is being skipped.
    pub fn is_backed_off(&self, api: &str) -> bool {
        self.is_backed_off_at(api, Instant::now())
    }

    fn is_backed_off_at(&self, api: &str, now: Instant) -> bool {
        lock(&self.failed)
            .get(api.trim_end_matches('/'))
            .is_some_and(|until| *until > now)
    }

    /// Picks one miner from `miners` with probability proportional to score + floor, among those not
    /// backed off; `None` if none is left.
    pub fn pick<'a>(&self, miners: &'a [DirectoryMiner]) -> Option<&'a DirectoryMiner> {
        let now = Instant::now();
        let first = *self.order_at(miners, now).first()?;
        (!self.is_backed_off_at(&miners[first].api, now)).then(|| &miners[first])
    }

    /// Indices of `miners` in the order a request tries them: the healthy ones drawn one by one without
    /// replacement, weight = score + floor (so the first is the weighted pick and the rest are the
    /// retries if it is unreachable), then the backed-off ones (only reached if every healthy miner
    /// failed in this request).
    fn order_at(&self, miners: &[DirectoryMiner], now: Instant) -> Vec<usize> {
        let (mut healthy, backed_off): (Vec<usize>, Vec<usize>) =
            (0..miners.len()).partition(|&i| !self.is_backed_off_at(&miners[i].api, now));
        let floor = if self.cfg.score_floor.is_finite() {
            self.cfg.score_floor.max(0.0)
        } else {
            0.0
        };
        let weight = |i: usize| miners[i].score + floor;
        let mut out = Vec::with_capacity(miners.len());
        let mut rng = lock(&self.rng);
        while !healthy.is_empty() {
            let total: f64 = healthy.iter().map(|&i| weight(i)).sum();
            let chosen = if total > 0.0 {
                let mut x = rng.gen::<f64>() * total;
                let mut pos = healthy.len() - 1;
                for (p, &i) in healthy.iter().enumerate() {
                    if x < weight(i) {
                        pos = p;
                        break;
                    }
                    x -= weight(i);
                }
                // Weight 0 (score 0, no floor) is never drawn while others have weight.
                if weight(healthy[pos]) <= 0.0 {
                    healthy
                        .iter()
                        .rposition(|&i| weight(i) > 0.0)
                        .unwrap_or(pos)
                } else {
                    pos
                }
            } else {
                rng.gen_range(0..healthy.len())
            };
            out.push(healthy.remove(chosen));
        }
        out.extend(backed_off);
        out
    }

    /// The miner URLs a request for `model` tries, in order: the directory's (weighted, healthy first)
    /// when a coordinator answers, then `fallback` (the static list) for whatever is not already in it.
    /// With no directory answer, just `fallback`.
    pub async fn candidates(&self, model: Option<&str>, fallback: &[String]) -> Vec<String> {
        self.candidate_targets(model, fallback)
            .await
            .into_iter()
            .map(|(u, _)| u)
            .collect()
    }

    /// [`MinerDirectory::candidates`] with the node id each directory miner registered (`None` for the
    /// static list's): the node its invoices must pay.
    pub async fn candidate_targets(
        &self,
        model: Option<&str>,
        fallback: &[String],
    ) -> Vec<(String, Option<String>)> {
        let mut out: Vec<(String, Option<String>)> = match self.listing(model).await {
            Ok(listing) => self
                .order_at(&listing.miners, Instant::now())
                .into_iter()
                .map(|i| {
                    let m = &listing.miners[i];
                    (m.api.clone(), Some(m.node_id.clone()))
                })
                .collect(),
            Err(e) => {
                tracing::debug!(error = %e, "no directory; using the static miner list");
                Vec::new()
            }
        };
        for f in fallback {
            let f = f.trim_end_matches('/');
            if !out.iter().any(|(o, _)| o == f) {
                out.push((f.to_owned(), None));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::extract::{Query, State};
    use axum::routing::get;
    use axum::{Json, Router};
    use serde_json::{json, Value};

    use super::*;

    fn miner(node: &str, score: f64) -> ListedMiner {
        ListedMiner {
            uid: 0,
            node_id: node.into(),
            api: Some(format!("http://{node}.example")),
            models: vec!["m".into()],
            incentive: (score * 65535.0) as u64,
            consensus: 0,
            score,
        }
    }

    fn listing(miners: Vec<ListedMiner>) -> Listing {
        Listing {
            epoch: Some(3),
            miners,
        }
    }

    #[derive(Clone)]
    struct StandIn {
        listing: Arc<Listing>,
        hits: Arc<AtomicUsize>,
    }

    #[derive(Deserialize)]
    struct Q {
        model: Option<String>,
    }

    async fn miners_route(State(s): State<StandIn>, Query(q): Query<Q>) -> Json<Value> {
        s.hits.fetch_add(1, Ordering::SeqCst);
        let miners: Vec<&ListedMiner> = s
            .listing
            .miners
            .iter()
            .filter(|m| q.model.as_ref().is_none_or(|x| m.models.contains(x)))
            .collect();
        Json(json!({"epoch": s.listing.epoch, "miners": miners}))
    }

    /// A coordinator stand-in serving `/v1/miners` with this listing; returns its URL and hit counter.
    async fn stand_in(l: Listing) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/v1/miners", get(miners_route))
            .with_state(StandIn {
                listing: Arc::new(l),
                hits: Arc::clone(&hits),
            });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind a free port");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), hits)
    }

    fn dir(coordinators: Vec<String>, floor: f64) -> MinerDirectory {
        MinerDirectory::new(DirectoryConfig {
            coordinators,
            score_floor: floor,
            seed: Some(7),
            ..DirectoryConfig::default()
        })
    }

    fn counts(
        d: &MinerDirectory,
        miners: &[DirectoryMiner],
        draws: usize,
    ) -> HashMap<String, usize> {
        let mut c = HashMap::new();
        for _ in 0..draws {
            let m = d.pick(miners).expect("a miner");
            *c.entry(m.node_id.clone()).or_insert(0) += 1;
        }
        c
    }

    #[tokio::test]
    async fn draws_follow_the_scores() {
        let (url, _) = stand_in(listing(vec![
            miner("a", 0.6),
            miner("b", 0.3),
            miner("c", 0.1),
        ]))
        .await;
        let d = dir(vec![url], 0.0);
        let l = d.listing(Some("m")).await.expect("listing");
        assert_eq!(l.miners.len(), 3);
        let n = 20_000;
        let c = counts(&d, &l.miners, n);
        for (node, want) in [("a", 0.6), ("b", 0.3), ("c", 0.1)] {
            let got = c.get(node).copied().unwrap_or(0) as f64 / n as f64;
            assert!((got - want).abs() < 0.02, "{node}: {got} vs {want}");
        }
    }

    #[tokio::test]
    async fn a_seeded_directory_repeats_its_choices() {
        let (url, _) = stand_in(listing(vec![miner("a", 0.5), miner("b", 0.5)])).await;
        let picks = |d: MinerDirectory| async move {
            let l = d.listing(None).await.expect("listing");
            (0..50)
                .map(|_| d.pick(&l.miners).expect("a miner").node_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            picks(dir(vec![url.clone()], 0.0)).await,
            picks(dir(vec![url], 0.0)).await
        );
    }

    #[tokio::test]
    async fn the_floor_gives_unscored_miners_a_little_traffic() {
        let (url, _) = stand_in(listing(vec![miner("old", 1.0), miner("new", 0.0)])).await;
        let n = 20_000;
        let d = dir(vec![url.clone()], 0.05);
        let l = d.listing(None).await.expect("listing");
        let share = counts(&d, &l.miners, n).get("new").copied().unwrap_or(0) as f64 / n as f64;
        let want = 0.05 / 1.1;
        assert!(
            (share - want).abs() < 0.01,
            "new miner's share {share} vs {want}"
        );

        // No floor: a score-0 miner is never first while another has a score.
        let d = dir(vec![url], 0.0);
        let l = d.listing(None).await.expect("listing");
        assert_eq!(counts(&d, &l.miners, 2_000).get("new"), None);
        // … but it is still a retry candidate.
        assert_eq!(d.order_at(&l.miners, Instant::now()).len(), 2);
    }

    #[tokio::test]
    async fn a_failed_miner_is_skipped_for_the_backoff() {
        let (url, _) = stand_in(listing(vec![miner("a", 0.9), miner("b", 0.1)])).await;
        let d = dir(vec![url], 0.02);
        let l = d.listing(None).await.expect("listing");
        let now = Instant::now();
        d.report_failure_at("http://a.example/", now);
        assert!(d.is_backed_off("http://a.example"));
        for _ in 0..1_000 {
            let order = d.order_at(&l.miners, now);
            assert_eq!(l.miners[order[0]].node_id, "b", "a is backed off");
            // Still last in line, for when every healthy miner fails.
            assert_eq!(l.miners[order[1]].node_id, "a");
        }
        // After the back-off it is drawn again.
        let later = now + d.config().backoff + Duration::from_millis(1);
        assert!((0..100).any(|_| l.miners[d.order_at(&l.miners, later)[0]].node_id == "a"));
        // Success clears it at once.
        d.report_failure_at("http://a.example", now);
        d.report_success("http://a.example");
        assert!(!d.is_backed_off("http://a.example"));
        // Every miner backed off: pick has none.
        d.report_failure("http://a.example");
        d.report_failure("http://b.example");
        assert_eq!(d.pick(&l.miners), None);
    }

    #[tokio::test]
    async fn one_lying_coordinator_cannot_promote_invent_or_redirect() {
        let honest = || listing(vec![miner("a", 0.1), miner("b", 0.9)]);
        let mut lie = listing(vec![miner("a", 1.0), miner("b", 0.0), miner("evil", 1.0)]);
        lie.miners[1].api = Some("http://evil.example".into());
        let mut urls = Vec::new();
        for l in [honest(), honest(), honest(), lie] {
            urls.push(stand_in(l).await.0);
        }
        let d = dir(urls, 0.0);
        let l = d.listing(None).await.expect("listing");
        assert_eq!(l.answered, 4);
        let by: HashMap<&str, &DirectoryMiner> =
            l.miners.iter().map(|m| (m.node_id.as_str(), m)).collect();
        assert_eq!(by.len(), 2, "the invented miner is not listed: {by:?}");
        assert_eq!(by["a"].score, 0.1, "not promoted");
        assert_eq!(by["b"].score, 0.9);
        assert_eq!(by["b"].api, "http://b.example", "not redirected");
        assert_eq!(by["a"].listed_by, 4);
        let c = counts(&d, &l.miners, 10_000);
        let share_a = c.get("a").copied().unwrap_or(0) as f64 / 10_000.0;
        assert!((share_a - 0.1).abs() < 0.02, "a's share {share_a}");
    }

    #[test]
    fn merge_is_the_lower_median_with_absence_as_zero() {
        // 2 of 4 list x (no strict majority): dropped; 3 of 4 list y: kept with lower median.
        let a = listing(vec![miner("x", 0.5), miner("y", 0.4)]);
        let b = listing(vec![miner("x", 0.5), miner("y", 0.8)]);
        let c = listing(vec![miner("y", 0.6)]);
        let d = listing(vec![]);
        let m = merge(&[a, b, c, d]);
        assert_eq!(m.miners.len(), 1);
        assert_eq!(m.miners[0].node_id, "y");
        assert_eq!(m.miners[0].score, 0.4); // sorted [0, 0.4, 0.6, 0.8] → 2nd
        assert_eq!(m.epoch, Some(3));
        // Out-of-range scores are clamped.
        let m = merge(&[listing(vec![miner("z", 7.0)])]);
        assert_eq!(m.miners[0].score, 1.0);
    }

    #[tokio::test]
    async fn listings_are_cached_for_the_ttl_and_dead_coordinators_are_tolerated() {
        let (url, hits) = stand_in(listing(vec![miner("a", 0.5)])).await;
        let d = dir(vec![url, "http://127.0.0.1:1".into()], 0.0);
        for _ in 0..5 {
            let l = d.listing(Some("m")).await.expect("one coordinator answers");
            assert_eq!(l.answered, 1);
            assert_eq!(l.miners.len(), 1);
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        // Another model is another query.
        let l = d.listing(Some("other")).await.expect("listing");
        assert!(l.miners.is_empty());
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        d.invalidate();
        d.listing(Some("m")).await.expect("listing");
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn candidates_fall_back_to_the_static_list() {
        let fallback = vec!["http://static.example/".to_owned()];
        // No coordinator answers: just the static list.
        let d = dir(vec!["http://127.0.0.1:1".into()], 0.0);
        assert!(matches!(
            d.listing(None).await,
            Err(DirectoryError::NoAnswer { .. })
        ));
        assert_eq!(
            d.candidates(None, &fallback).await,
            vec!["http://static.example"]
        );
        // A directory: its miners first, then the static list.
        let (url, _) = stand_in(listing(vec![miner("a", 0.5)])).await;
        let d = dir(vec![url], 0.0);
        assert_eq!(
            d.candidates(Some("m"), &fallback).await,
            vec!["http://a.example", "http://static.example"]
        );
    }
}
