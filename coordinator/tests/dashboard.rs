//! The dashboard in a real browser: headless Chromium (Debian's `chromium`) loads a member's page while the
//! federation runs with a bonded validator's weights; the rendered DOM shows the miners and the validator,
//! and a screenshot is decoded and checked for content (not a blank page).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{miner_registration, weights, Net, Result};
use tokio::process::Command;

async fn chromium(args: &[&str]) -> Result<std::process::Output> {
    let exe = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|e| {
            std::process::Command::new(e)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or(
            "no chromium found: `./dev test` installs Debian's chromium (apt-get install chromium)",
        )?;
    let profile = tempfile::tempdir()?;
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1280,1100",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| "chromium did not finish in 90 s")??;
    Ok(out)
}

/// Decodes a PNG and returns (distinct colours, share of pixels unlike the most common colour).
fn png_content(path: &Path) -> Result<(usize, f64)> {
    let decoder = png::Decoder::new(std::fs::File::open(path)?);
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf)?;
    let bpp = info.color_type.samples();
    let mut counts = std::collections::HashMap::<&[u8], usize>::new();
    for px in buf[..info.buffer_size()].chunks(bpp) {
        *counts.entry(px).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let top = counts.values().copied().max().unwrap_or(0);
    Ok((counts.len(), 1.0 - top as f64 / total.max(1) as f64))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_renders_the_live_federation_in_chromium() -> Result {
    let net = Net::start().await?;
    let long = Duration::from_secs(60);
    for (i, m) in ["miner-a", "miner-b"].iter().enumerate() {
        net.post(
            i,
            "/v1/items",
            &serde_json::to_value(miner_registration(m))?,
        )
        .await?;
    }
    let regs = net
        .bonded_registrations(&[("validator-1", 200_000)])
        .await?;
    net.post(1, "/v1/items", &serde_json::to_value(&regs[0])?)
        .await?;
    // Keep submitting weights for the current epoch until a signed epoch carries them.
    boltensor_testenv::wait_for(
        "a signed epoch with the validator's weights",
        long,
        || async {
            if let Some(e) = net.status(0).await.ok().and_then(|s| s["epoch"].as_u64()) {
                let w = weights(
                    "validator-1",
                    e,
                    &[("miner-a", 50_000), ("miner-b", 20_000)],
                );
                let _ = net.post(2, "/v1/weights", &w).await;
            }
            let last = net.get(0, "/v1/epochs/latest").await.ok().flatten();
            Ok(last.filter(|l| {
                l["result"]["inputs"]["weights"]
                    .as_array()
                    .is_some_and(|w| !w.is_empty())
                    && l["result"]["output"]["consensus"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|x| x.as_u64().unwrap_or(0) > 0))
            }))
        },
    )
    .await?;

    // The live stream: server-sent events carrying the same snapshot.
    let mut resp = net
        .http
        .get(format!("{}/v1/stream", net.api(0)))
        .send()
        .await?;
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
        .await
        .map_err(|_| "no event within 10 s")??
        .ok_or("the stream ended")?;
    let text = String::from_utf8_lossy(&chunk);
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .ok_or("an event with data")?;
    let snapshot: serde_json::Value = serde_json::from_str(data)?;
    assert_eq!(snapshot["miners"].as_array().map(Vec::len), Some(2));
    drop(resp);

    // The page in a browser (polling mode: a headless renderer waits for the network to go idle).
    let url = format!("{}/?poll", net.api(0));
    let dom = chromium(&["--dump-dom", &url]).await?;
    let html = String::from_utf8_lossy(&dom.stdout);
    // What the script rendered (the page's own script also contains the class names).
    let html = match (html.find("<main>"), html.find("</main>")) {
        (Some(a), Some(b)) if a < b => html[a..b].to_string(),
        _ => html.to_string(),
    };
    assert!(
        html.matches("class=\"miner-row\"").count() == 2,
        "two miner rows rendered: {}",
        &html[..html.len().min(3000)]
    );
    assert!(
        html.contains("class=\"validator-row\""),
        "the validator row is rendered"
    );
    assert!(
        html.contains("<rect"),
        "the weights-vs-consensus picture is drawn"
    );

    let dir = tempfile::tempdir()?;
    let shot = dir.path().join("dashboard.png");
    let out = chromium(&[&format!("--screenshot={}", shot.display()), &url]).await?;
    assert!(
        shot.exists(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Ok(keep) = std::env::var("BOLTENSOR_DASHBOARD_SCREENSHOT") {
        std::fs::copy(&shot, keep)?;
    }
    let (colours, non_background) = png_content(&shot)?;
    println!(
        "dashboard screenshot: {colours} colours, {:.1}% non-background",
        non_background * 100.0
    );
    assert!(
        colours > 50,
        "a rendered page has text and colour, found {colours} colours"
    );
    assert!(
        non_background > 0.05,
        "content covers more than 5% of the page"
    );
    for m in net.members.iter().flatten() {
        m.stop();
    }
    Ok(())
}
