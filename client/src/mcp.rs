//! An MCP server over the paying client (Model Context Protocol, initialize handshake, versions
//! 2024-11-05 to 2025-11-25): an MCP host — an agent IDE, a chat app — calls Boltensor miners as tools,
//! each call paid from the client's node within its price limit and budget.
//!
//! Tools: `chat` (a chat completion), `embed` (embeddings), `quote` (a miner's prices) and `spend` (what
//! has been spent). Transports: stdio (`boltensor client mcp`: one JSON-RPC message per line on
//! stdin/stdout, logs on stderr) and streamable HTTP (`POST /mcp` on `boltensor client proxy`, behind the
//! proxy's key, answered with JSON; no server-initiated stream).
//!
//! The protocol surface is four JSON-RPC methods (`initialize`, `ping`, `tools/list`, `tools/call`), so it
//! is written here rather than taken from an SDK (the official Rust SDK, `rmcp`, would add a macro and
//! schema stack to every build for that); the official Python SDK drives it in the tests.

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::{PayingClient, PaymentOutcome};

/// The protocol versions this server speaks (initialize handshake); it answers with the client's if it
/// is one of them, else the first.
pub const PROTOCOL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// The answer to one JSON-RPC message: `None` for a notification or a response (nothing to answer).
pub async fn handle(client: &PayingClient, msg: &Value) -> Option<Value> {
    let Some(obj) = msg.as_object() else {
        return Some(error(Value::Null, INVALID_REQUEST, "not a JSON-RPC object"));
    };
    let id = obj.get("id").cloned();
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        // A response to something we never ask, or garbage with an id.
        return match id {
            Some(id) if !obj.contains_key("result") && !obj.contains_key("error") => {
                Some(error(id, INVALID_REQUEST, "no method"))
            }
            _ => None,
        };
    };
    let id = id?; // a notification (notifications/initialized, cancelled, …): nothing to answer
    let params = obj.get("params").cloned().unwrap_or(Value::Null);
    let result = match method {
        "initialize" => Ok(initialize(&params)),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({ "tools": tools() })),
        "tools/call" => call(client, &params).await,
        other => Err((METHOD_NOT_FOUND, format!("method not found: {other}"))),
    };
    Some(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => error(id, code, &message),
    })
}

/// The answer to one line of the stdio transport (a message or a batch), if any.
pub async fn handle_line(client: &PayingClient, line: &str) -> Option<Value> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Array(batch)) => {
            let mut out = Vec::new();
            for msg in &batch {
                out.extend(handle(client, msg).await);
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Ok(msg) => handle(client, &msg).await,
        Err(e) => Some(error(
            Value::Null,
            PARSE_ERROR,
            &format!("parse error: {e}"),
        )),
    }
}

/// Serves the stdio transport until stdin closes. Requests are answered in order, one at a time.
pub async fn serve_stdio(client: PayingClient) -> std::io::Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(reply) = handle_line(&client, &line).await {
            stdout.write_all(reply.to_string().as_bytes()).await?;
            stdout.write_all(b"\n").await?;
            stdout.flush().await?;
        }
    }
    Ok(())
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn initialize(params: &Value) -> Value {
    let asked = params["protocolVersion"].as_str().unwrap_or_default();
    let version = PROTOCOL_VERSIONS
        .iter()
        .find(|v| **v == asked)
        .unwrap_or(&PROTOCOL_VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "boltensor", "version": env!("CARGO_PKG_VERSION")},
        "instructions": "Boltensor miners as tools: each chat or embed call is a request to a miner, paid over Lightning from this client's node (settled only when the answer is delivered, failed back otherwise). quote shows prices, spend what has been spent.",
    })
}

/// The tools and their input schemas.
pub fn tools() -> Value {
    json!([
        {
            "name": "chat",
            "description": "A chat completion from a Boltensor miner, paid per request over Lightning (settled only once the answer is delivered). Give `prompt` or OpenAI-style `messages`.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "prompt": {"type": "string", "description": "The user's message (instead of messages)."},
                    "messages": {"type": "array", "description": "OpenAI-style messages: [{role, content}].", "items": {"type": "object"}},
                    "model": {"type": "string", "description": "Model id (default smollm2-135m-instruct)."},
                    "max_tokens": {"type": "integer", "minimum": 1, "description": "Most tokens to generate (default 64)."}
                }
            }
        },
        {
            "name": "embed",
            "description": "Embeddings of one text or several from a Boltensor miner, paid per request over Lightning.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "input": {"description": "A text, or an array of texts.", "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                    "model": {"type": "string", "description": "Model id (default all-minilm-l6-v2)."}
                },
                "required": ["input"]
            }
        },
        {
            "name": "quote",
            "description": "A miner's models and prices (msat per request and per token); free.",
            "inputSchema": {"type": "object", "properties": {}}
        },
        {
            "name": "spend",
            "description": "What this client has spent: paid requests, msat spent and in fees, refunds, the budget.",
            "inputSchema": {"type": "object", "properties": {}}
        }
    ])
}

type RpcResult = Result<Value, (i64, String)>;

/// `tools/call`: a tool's failure (missing input, a miner refused, the budget is spent) is a result with
/// `isError`, which the model calling it can read and correct; an unknown tool or arguments that are not
/// an object is a JSON-RPC error.
async fn call(client: &PayingClient, params: &Value) -> RpcResult {
    let name = params["name"].as_str().unwrap_or_default();
    let args = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(a) if a.is_object() => a.clone(),
        Some(_) => return Err((INVALID_PARAMS, "arguments must be an object".into())),
    };
    let out = match name {
        "chat" => {
            let messages = match (&args["messages"], args["prompt"].as_str()) {
                (Value::Array(m), _) if !m.is_empty() => Value::Array(m.clone()),
                (_, Some(p)) => json!([{"role": "user", "content": p}]),
                // A tool error (the model calling it can correct its arguments), nothing paid.
                _ => return Ok(tool_error("chat needs `prompt` or `messages`")),
            };
            let body = json!({
                "model": args["model"].as_str().unwrap_or("smollm2-135m-instruct"),
                "messages": messages,
                "max_tokens": args["max_tokens"].as_u64().unwrap_or(64),
            });
            paid(client, "/v1/chat/completions", &body)
                .await
                .map(|(answer, receipt)| {
                    json!({
                        "text": answer["choices"][0]["message"]["content"],
                        "model": answer["model"],
                        "usage": answer["usage"],
                        "payment": receipt,
                    })
                })
        }
        "embed" => {
            if !(args["input"].is_string() || args["input"].is_array()) {
                return Err((
                    INVALID_PARAMS,
                    "embed needs `input`: a text or texts".into(),
                ));
            }
            let body = json!({
                "model": args["model"].as_str().unwrap_or("all-minilm-l6-v2"),
                "input": args["input"],
            });
            paid(client, "/v1/embeddings", &body)
                .await
                .map(|(answer, receipt)| {
                    let vectors: Vec<Value> = answer["data"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|d| d["embedding"].clone())
                        .collect();
                    json!({
                        "embeddings": vectors,
                        "model": answer["model"],
                        "payment": receipt,
                    })
                })
        }
        "quote" => match client.get("/v1/quote").await {
            Ok((miner, resp)) => match resp.json::<Value>().await {
                Ok(q) => Ok(json!({"miner": miner, "quote": q})),
                Err(e) => Err(format!("{miner}: the quote is not JSON: {e}")),
            },
            Err(e) => Err(e.to_string()),
        },
        "spend" => serde_json::to_value(client.spend()).map_err(|e| e.to_string()),
        other => return Err((INVALID_PARAMS, format!("unknown tool {other:?}"))),
    };
    Ok(match out {
        Ok(v) => json!({
            "content": [{"type": "text", "text": v.to_string()}],
            "structuredContent": v,
            "isError": false,
        }),
        Err(message) => tool_error(&message),
    })
}

fn tool_error(message: &str) -> Value {
    json!({
        "content": [{"type": "text", "text": message}],
        "isError": true,
    })
}

/// One paid request through the client: the miner's JSON answer and the payment (miner, price, fee,
/// payment hash, preimage), once the payment settled.
async fn paid(client: &PayingClient, path: &str, body: &Value) -> Result<(Value, Value), String> {
    let mut paid = client
        .post(path, body.to_string().into_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let status = paid.response.status();
    let outcome = paid.outcome().await;
    let miner = paid.miner.clone();
    let price_msat = paid.price_msat;
    let hash = paid.payment_hash.clone();
    let text = paid.response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{miner} answered {status}: {text}"));
    }
    let answer: Value =
        serde_json::from_str(&text).map_err(|e| format!("{miner}: the answer is not JSON: {e}"))?;
    let receipt = match outcome {
        Some(PaymentOutcome::Settled { fee_msat, preimage }) => json!({
            "miner": miner,
            "price_msat": price_msat,
            "fee_msat": fee_msat,
            "payment_hash": hash,
            "preimage": preimage,
        }),
        // A zero-priced model: nothing was paid.
        None => json!({"miner": miner, "price_msat": 0}),
        Some(other) => return Err(format!("{miner}: the payment did not settle: {other:?}")),
    };
    Ok((answer, receipt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tools_have_object_schemas() {
        let tools = tools();
        let names: Vec<&str> = tools
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(names, ["chat", "embed", "quote", "spend"]);
        for t in tools.as_array().into_iter().flatten() {
            assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        }
    }

    #[test]
    fn initialize_answers_a_version_it_speaks() {
        assert_eq!(
            initialize(&json!({"protocolVersion": "2025-06-18"}))["protocolVersion"],
            "2025-06-18"
        );
        assert_eq!(
            initialize(&json!({"protocolVersion": "2099-01-01"}))["protocolVersion"],
            PROTOCOL_VERSIONS[0]
        );
    }
}
