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

#[tokio::test(flavor = "multi_thread")]
async fn a_greedy_answer_passes_teacher_forcing_and_a_coarser_model_fails_it() {
    let models = backends();
    let Backend::SmolLm(honest) = &models["smollm2-135m-instruct"] else {
        panic!("chat model");
    };
    let prompt = boltensor_miner::backend::SmolLm::prompt(&[(
        "user".to_owned(),
        "Write one sentence about the ocean.".to_owned(),
    )]);
    let params = GenParams {
        max_tokens: 12,
        temperature: 0.0,
        top_p: None,
        seed: 1,
    };
    let out = honest.generate(&prompt, params, |_| {}).expect("generate");
    let check = honest
        .verify_greedy(&prompt, &out.text, out.finish_reason == "stop", 0.5)
        .expect("verify");
    println!("honest: {:?} -> {check:?}", out.text);
    assert_eq!(check.matched, check.total, "{:?}", out.text);

    // The same model at its shipped, coarser quantisation answers differently somewhere in a few
    // prompts, and the honest model's teacher forcing catches it.
    let gguf = default_models_dir()
        .join("smollm2-135m-instruct")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let cheap = boltensor_miner::backend::SmolLm::load(&gguf, true).expect("Q4_0 loads");
    // Long enough answers: the coarser weights agree on the first dozen tokens of most answers.
    let params = GenParams {
        max_tokens: 48,
        ..params
    };
    let mut caught = 0;
    for question in [
        "What is the capital of France?",
        "Name three colours of the rainbow.",
        "Write one sentence about the ocean.",
        "What is the largest planet in our solar system?",
        "Give me a synonym for happy.",
        "Explain what a computer is in one sentence.",
        "What do bees make?",
        "Say something kind about mornings.",
    ] {
        let prompt =
            boltensor_miner::backend::SmolLm::prompt(&[("user".to_owned(), question.to_owned())]);
        let out = cheap.generate(&prompt, params, |_| {}).expect("generate");
        let check = honest
            .verify_greedy(&prompt, &out.text, out.finish_reason == "stop", 0.5)
            .expect("verify");
        println!("Q4_0 {question:?}: {:?} -> {check:?}", out.text);
        if check.matched < check.total {
            caught += 1;
        }
    }
    assert!(
        caught >= 4,
        "the coarser model is caught on most prompts ({caught}/8)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batched_embeddings_agree_with_single_ones() {
    let models = backends();
    let Backend::MiniLm(m) = &models["all-minilm-l6-v2"] else {
        panic!("the embedding model is MiniLm");
    };
    let texts: Vec<String> = (0..24)
        .map(|i| {
            format!(
                "request {i}: {}",
                "paid per inference over lightning ".repeat(1 + i % 5)
            )
        })
        .collect();
    // 24 clients at once, one text each, through the batcher.
    let answers = futures_util::future::join_all(texts.iter().map(|t| {
        m.batcher().embed(
            vec![t.clone()],
            boltensor_miner::backend::RunControl::paid(),
        )
    }))
    .await;
    let (passes, embedded) = m.batcher().stats();
    assert_eq!(embedded, 24);
    assert!(passes < 24, "{passes} batches for 24 concurrent texts");
    for (t, a) in texts.iter().zip(answers) {
        let batched = a.expect("embeds").remove(0);
        let single = m.embed(t).expect("embeds");
        let c = cosine(&batched, &single);
        assert!(c > 0.99999, "cosine {c} for {t:?}");
    }
    println!("24 concurrent texts in {passes} batches");
}
