//! OpenAI-compatible bodies: the requests a miner parses (`/v1/embeddings`, `/v1/chat/completions`)
//! and the responses, stream chunks, model lists and errors a client parses from a miner. Nothing
//! panics, the accessors the miner uses work on whatever parses, and every parsed body survives
//! serialise → parse unchanged.
#![no_main]

use boltensor_protocol::openai::{
    embedding_to_base64, ChatChunk, ChatRequest, ChatResponse, EmbeddingVector, EmbeddingsRequest,
    EmbeddingsResponse, ErrorBody, ModelList,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    data: &[u8],
) -> Option<T> {
    let v: T = serde_json::from_slice(data).ok()?;
    let json = serde_json::to_vec(&v).expect("a parsed body serialises");
    let back: T = serde_json::from_slice(&json).expect("a serialised body parses");
    assert_eq!(back, v);
    Some(v)
}

fuzz_target!(|data: &[u8]| {
    if let Some(req) = round_trip::<EmbeddingsRequest>(data) {
        let texts = req.input.texts();
        assert!(texts.iter().all(|t| data.len() >= t.len()));
    }
    if let Some(req) = round_trip::<ChatRequest>(data) {
        let _ = req.requested_max_tokens();
        let _ = req.is_stream();
        for m in &req.messages {
            let _ = m.content.text();
        }
    }
    if let Ok(resp) = serde_json::from_slice::<EmbeddingsResponse>(data) {
        // A number outside f32's range parses as infinity and serialises as `null`: the miner refuses
        // such an answer from an external server (miner/src/backend.rs, found by this target).
        let finite = resp.data.iter().all(|e| match &e.embedding {
            EmbeddingVector::Float(v) => v.iter().all(|x| x.is_finite()),
            EmbeddingVector::Base64(_) => true,
        });
        if finite {
            round_trip::<EmbeddingsResponse>(data);
        }
        for e in &resp.data {
            if let EmbeddingVector::Float(v) = &e.embedding {
                let b64 = embedding_to_base64(v);
                assert_eq!(b64.len(), (v.len() * 4).div_ceil(3) * 4);
            }
        }
    }
    let _ = round_trip::<ChatResponse>(data);
    let _ = round_trip::<ChatChunk>(data);
    let _ = round_trip::<ModelList>(data);
    let _ = round_trip::<ErrorBody>(data);
});
