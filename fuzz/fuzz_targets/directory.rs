//! The client's miner directory: each coordinator's `GET /v1/miners` answer (JSON), merged across
//! coordinators, then a miner picked by score. The input is a JSON array of answers (one per
//! coordinator). Checks: nothing panics; a merged miner is listed by a strict majority with a score in
//! 0..=1, sorted by score; the pick is one of the merged miners.
#![no_main]

use std::sync::OnceLock;

use boltensor_client::directory::{merge, DirectoryConfig, Listing, MinerDirectory};
use libfuzzer_sys::fuzz_target;

fn directory() -> &'static MinerDirectory {
    static D: OnceLock<MinerDirectory> = OnceLock::new();
    D.get_or_init(|| {
        MinerDirectory::new(DirectoryConfig {
            seed: Some(7),
            ..DirectoryConfig::default()
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(answers) = serde_json::from_slice::<Vec<Listing>>(data) else {
        return;
    };
    let merged = merge(&answers);
    assert_eq!(merged.answered, answers.len());
    for m in &merged.miners {
        assert!(
            m.listed_by * 2 > answers.len(),
            "listed by a strict majority"
        );
        assert!(
            (0.0..=1.0).contains(&m.score),
            "score {} out of range",
            m.score
        );
    }
    for pair in merged.miners.windows(2) {
        assert!(pair[0].score >= pair[1].score, "sorted by score");
    }
    let dir = directory();
    match dir.pick(&merged.miners) {
        Some(m) => assert!(merged.miners.iter().any(|x| std::ptr::eq(x, m))),
        None => assert!(merged.miners.is_empty()),
    }
});
