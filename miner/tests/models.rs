//! The real models, loaded from the files the PyPI packages ship (scripts/fetch-models.sh).

use boltensor_miner::backend::{Backend, GenParams};
use boltensor_miner::config::{default_models, default_models_dir};
use boltensor_protocol::openai::{ChatMessage, MessageContent};

fn backends() -> std::collections::HashMap<String, Backend> {
    let dir = default_models_dir();
    assert!(
        dir.join("all-minilm-l6-v2")
            .join("model.safetensors")
            .exists(),
        "models missing in {}: run scripts/fetch-models.sh",
        dir.display()
    );
    boltensor_miner::load_backends(&default_models(&dir)).expect("models load")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn minilm_embeddings_are_normalised_deterministic_and_meaningful() {
    let models = backends();
    let m = &models["all-minilm-l6-v2"];
    let texts = vec![
        "A man is eating food.".to_owned(),
        "A man is eating a piece of bread.".to_owned(),
        "The stock market fell sharply today.".to_owned(),
    ];
    let v = m.embed(texts.clone()).await.expect("embed");
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].len(), 384);
    let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "L2-normalised, got {norm}");
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.3);
    let again = m.embed(texts).await.expect("embed");
    assert_eq!(v, again, "bit-identical on the same machine");
}

#[tokio::test(flavor = "multi_thread")]
async fn smollm_greedy_chat_answers_and_is_deterministic() {
    let models = backends();
    let m = &models["smollm2-135m-instruct"];
    let messages = vec![ChatMessage {
        role: "user".into(),
        content: MessageContent::Text("What is the capital of France?".into()),
    }];
    let params = GenParams {
        max_tokens: 16,
        temperature: 0.0,
        top_p: None,
        seed: 1,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let started = std::time::Instant::now();
    let out = m.chat(messages.clone(), params, tx).await.expect("chat");
    let elapsed = started.elapsed();
    let mut streamed = String::new();
    while let Ok(piece) = rx.try_recv() {
        streamed.push_str(&piece);
    }
    assert_eq!(streamed, out.text, "streamed pieces add up to the answer");
    assert!(out.text.contains("Paris"), "{:?}", out.text);
    assert!(out.completion_tokens > 0 && out.completion_tokens <= 16);
    println!(
        "smollm: {} tokens in {elapsed:?}: {:?}",
        out.completion_tokens, out.text
    );
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let again = m.chat(messages, params, tx).await.expect("chat");
    assert_eq!(again.text, out.text, "greedy decoding is deterministic");
}
