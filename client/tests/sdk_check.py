"""Drives the Boltensor client proxy with the official OpenAI Python SDK, unmodified.

Usage: python3 sdk_check.py http://127.0.0.1:PORT/v1 API_KEY
Prints one JSON object with what the SDK got back; the Rust test asserts on it.
"""
import json
import sys

from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0, timeout=120)
out = {}

models = client.models.list()
out["models"] = sorted(m.id for m in models.data)

# The SDK asks for base64 embeddings by default and decodes them itself.
emb = client.embeddings.create(model="all-minilm-l6-v2", input=["Bitcoin is money.", "Lightning is fast."])
out["embedding_count"] = len(emb.data)
out["embedding_dims"] = len(emb.data[0].embedding)
out["embedding_norm"] = sum(x * x for x in emb.data[0].embedding) ** 0.5
out["embedding_tokens"] = emb.usage.prompt_tokens

raw = client.chat.completions.with_raw_response.create(
    model="smollm2-135m-instruct",
    messages=[{"role": "user", "content": "What is the capital of France?"}],
    max_tokens=8,
    temperature=0,
)
chat = raw.parse()
out["chat_text"] = chat.choices[0].message.content
out["chat_finish"] = chat.choices[0].finish_reason
out["chat_usage"] = [chat.usage.prompt_tokens, chat.usage.completion_tokens]
out["chat_price_msat"] = int(raw.headers["x-boltensor-price-msat"])
out["chat_preimage"] = raw.headers.get("x-boltensor-preimage", "")

stream = client.chat.completions.create(
    model="smollm2-135m-instruct",
    messages=[{"role": "user", "content": "What is the capital of France?"}],
    max_tokens=8,
    stream=True,
    stream_options={"include_usage": True},
)
pieces, usage, finish = [], None, None
for chunk in stream:
    if chunk.choices:
        if chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    if chunk.usage:
        usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens]
out["stream_text"] = "".join(pieces)
out["stream_pieces"] = len(pieces)
out["stream_finish"] = finish
out["stream_usage"] = usage

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    out["unknown_model_status"] = 200
except Exception as e:  # openai.NotFoundError
    out["unknown_model_status"] = getattr(e, "status_code", None)

print(json.dumps(out))
