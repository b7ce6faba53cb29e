//! The official OpenAI Python SDK (PyPI `openai`), unmodified, against `boltensor client proxy`, which pays
//! a miner per request on the regtest network: embeddings, chat, streamed chat.

mod common;

use std::future::IntoFuture;
use std::process::Command;
use std::time::Duration;

use boltensor_testenv::{wait_for, TestEnvError};
use common::PaidNet;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn openai_python_sdk_works_through_the_proxy() -> Result<(), TestEnvError> {
    let have_sdk = boltensor_testenv::python_imports("openai");
    assert!(
        have_sdk,
        "the OpenAI Python SDK is missing: `python3 -m pip install openai` (./dev test does this)"
    );
    PaidNet::start(vec![], |_| {})
        .await?
        .run(async |pn| {
            let client = pn.client(|_| {});
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let base = format!("http://{addr}/v1");
            // The proxy writes its key (0600) in its data dir; the SDK passes it as its `api_key`.
            let (auth, key_file) = boltensor_client::proxy::ProxyAuth::load_or_create(
                &pn.net.dir().join("proxy"),
                addr,
            )
            .expect("proxy key");
            let key = std::fs::read_to_string(&key_file).expect("key file");
            let proxy = tokio::spawn(
                axum::serve(
                    listener,
                    boltensor_client::proxy::router(client.clone(), auth),
                )
                .into_future(),
            );
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk_check.py");
            let base2 = base.clone();
            let key2 = key.clone();
            let output = tokio::task::spawn_blocking(move || {
                Command::new("python3")
                    .arg(script)
                    .arg(base2)
                    .arg(key2)
                    .output()
            })
            .await
            .expect("join")
            .expect("python3 runs");
            assert!(
                output.status.success(),
                "sdk_check.py failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let got: Value = serde_json::from_slice(&output.stdout).expect("JSON from the script");
            println!("SDK saw: {got}");
            assert_eq!(
                got["models"],
                serde_json::json!(["all-minilm-l6-v2", "smollm2-135m-instruct"])
            );
            assert_eq!(got["embedding_count"], 2);
            assert_eq!(got["embedding_dims"], 384);
            assert!((got["embedding_norm"].as_f64().expect("norm") - 1.0).abs() < 1e-4);
            assert!(got["chat_text"].as_str().expect("text").contains("Paris"));
            assert_eq!(got["chat_preimage"].as_str().expect("preimage").len(), 64);
            assert!(got["chat_price_msat"].as_u64().expect("price") > 0);
            assert_eq!(
                got["stream_text"], got["chat_text"],
                "streamed = not streamed (greedy)"
            );
            assert!(
                got["stream_pieces"].as_u64().expect("pieces") > 1,
                "it really streamed"
            );
            assert_eq!(got["stream_finish"], got["chat_finish"]);
            assert_eq!(got["stream_usage"], got["chat_usage"]);
            assert_eq!(got["unknown_model_status"], 404);

            // Three paid requests (the model list and the 404 are free); the streamed one settles last.
            wait_for(
                "three settled payments",
                Duration::from_secs(30),
                || async { Ok((client.spend().paid_requests == 3).then_some(())) },
            )
            .await?;
            let http = reqwest::Client::new();
            let spend: Value = http
                .get(format!("{base}/spend"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("spend")
                .json()
                .await
                .expect("json");
            assert_eq!(spend["paid_requests"], 3);
            assert_eq!(spend["refunded"], 0);
            assert_eq!(spend["in_flight_msat"], 0);
            let metrics = http
                .get(base.replace("/v1", "/metrics"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            assert!(
                metrics.contains("boltensor_client_paid_requests_total 3"),
                "{metrics}"
            );
            proxy.abort();
            Ok(())
        })
        .await
}

/// The official MCP Python SDK (PyPI `mcp`), unmodified, against the proxy's MCP endpoint (streamable
/// HTTP, the proxy's key as its bearer token): it lists the tools, calls `quote`, `embed`, `chat` and
/// `spend`, and the spend moves by the two paid calls; a call without input is a tool error, not a payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mcp_python_sdk_calls_the_paid_tools() -> Result<(), TestEnvError> {
    let have_sdk = boltensor_testenv::python_imports("mcp, httpx2");
    assert!(
        have_sdk,
        "the MCP Python SDK is missing: `python3 -m pip install mcp` (./dev test does this)"
    );
    PaidNet::start(vec![], |_| {})
        .await?
        .run(async |pn| {
            let client = pn.client(|_| {});
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let (auth, key_file) = boltensor_client::proxy::ProxyAuth::load_or_create(
                &pn.net.dir().join("proxy-mcp"),
                addr,
            )
            .expect("proxy key");
            let key = std::fs::read_to_string(&key_file).expect("key file");
            let proxy = tokio::spawn(
                axum::serve(
                    listener,
                    boltensor_client::proxy::router(client.clone(), auth),
                )
                .into_future(),
            );
            // Without the key: refused before any tool runs.
            let refused = reqwest::Client::new()
                .post(format!("http://{addr}/mcp"))
                .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
                .send()
                .await
                .expect("post");
            assert_eq!(refused.status(), 401);

            let got = boltensor_testenv::python_json(
                boltensor_testenv::scripts::MCP_CHECK,
                vec![format!("http://{addr}/mcp"), key.trim().to_owned()],
            )
            .await?;
            println!("MCP SDK saw: {got}");
            assert_eq!(
                got["tools"],
                serde_json::json!(["chat", "embed", "quote", "spend"])
            );
            assert_eq!(got["quote"]["error"], false, "{got}");
            assert!(got["quote"]["body"]["quote"]["models"].is_array(), "{got}");
            assert_eq!(got["embed"]["error"], false, "{got}");
            let vectors = &got["embed"]["body"]["embeddings"];
            assert_eq!(vectors[0].as_array().map(Vec::len), Some(384), "{got}");
            assert!(got["embed"]["body"]["payment"]["price_msat"].as_u64() > Some(0));
            assert_eq!(
                got["embed"]["body"]["payment"]["preimage"]
                    .as_str()
                    .map(str::len),
                Some(64)
            );
            assert_eq!(got["chat"]["error"], false, "{got}");
            assert!(
                got["chat"]["body"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("Paris")),
                "{got}"
            );
            assert_eq!(got["spend_before"]["body"]["paid_requests"], 0);
            assert_eq!(got["spend_after"]["body"]["paid_requests"], 2, "{got}");
            let spent = got["spend_after"]["body"]["spent_msat"]
                .as_u64()
                .expect("spent");
            let prices = got["embed"]["body"]["payment"]["price_msat"]
                .as_u64()
                .expect("price")
                + got["chat"]["body"]["payment"]["price_msat"]
                    .as_u64()
                    .expect("price");
            assert_eq!(spent, prices, "the spend moved by the two paid calls");
            assert_eq!(got["no_input"]["error"], true, "{got}");
            assert_eq!(client.spend().paid_requests, 2);
            proxy.abort();
            Ok(())
        })
        .await
}
