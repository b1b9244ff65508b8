"""The OpenAI API through the official `openai` package: what its SDK sends and parses
must work unchanged against `flashlm serve`."""
import subprocess
import time

import openai
import pytest

from conftest import BIN, MODEL, start_server

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def test_models(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["SmolLM2-135M-Instruct.Q4_1"]


def test_chat_completion(client):
    r = client.chat.completions.create(model="anything", messages=MESSAGES, max_tokens=8, temperature=0)
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-")
    assert r.model == "SmolLM2-135M-Instruct.Q4_1"  # the loaded model, whatever was asked
    assert len(r.choices) == 1
    c = r.choices[0]
    assert c.message.role == "assistant"
    assert c.message.content
    assert c.finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 8
    assert r.usage.prompt_tokens > 10
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_multi_turn_with_system(client):
    msgs = [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one?"},
    ]
    r = client.chat.completions.create(model="m", messages=msgs, max_tokens=4, temperature=0)
    assert r.choices[0].message.content is not None
    one = client.chat.completions.create(model="m", messages=msgs[:2], max_tokens=4, temperature=0)
    assert r.usage.prompt_tokens > one.usage.prompt_tokens  # the whole history was templated


def test_completion_matches_cli(client):
    """Greedy text from the server equals `flashlm run`'s, a separate code path
    (single-sequence generate() on a Runner, not the batching scheduler)."""
    prompt = "The capital of France is"
    r = client.completions.create(model="m", prompt=prompt, max_tokens=12, temperature=0)
    assert r.object == "text_completion"
    assert r.id.startswith("cmpl-")
    cli = subprocess.run([BIN, "run", "-m", MODEL, "-p", prompt, "-n", "12", "--temp", "0", "-t", "1"],
                         capture_output=True, text=True, check=True).stdout
    assert cli.endswith("\n")
    assert r.choices[0].text == cli[:-1]
    assert r.usage.completion_tokens == 12 or r.choices[0].finish_reason == "stop"


def test_completion_token_prompt(client, server):
    import httpx

    ids = httpx.post(server.url + "/tokenize", json={"content": "Once upon a time"}).json()["tokens"]
    a = client.completions.create(model="m", prompt=ids, max_tokens=6, temperature=0)
    b = client.completions.create(model="m", prompt="Once upon a time", max_tokens=6, temperature=0)
    assert a.usage.prompt_tokens == len(ids)
    assert a.choices[0].text == b.choices[0].text


def test_chat_stream(client):
    stream = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=10, temperature=0, stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    full = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=10, temperature=0)
    assert text == full.choices[0].message.content  # greedy: streamed == non-streamed


def test_stream_include_usage(client):
    stream = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=5, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.completion_tokens == 5 or chunks[-2].choices[0].finish_reason == "stop"
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_completion_stream(client):
    stream = client.completions.create(model="m", prompt="One, two, three,", max_tokens=8, temperature=0,
                                       stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks)
    full = client.completions.create(model="m", prompt="One, two, three,", max_tokens=8, temperature=0)
    assert text == full.choices[0].text
    assert chunks[-1].choices[0].finish_reason == full.choices[0].finish_reason


def test_n_choices(client):
    r = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=6, n=2, temperature=1.0, seed=1)
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.finish_reason in ("stop", "length") for c in r.choices)
    assert 2 <= r.usage.completion_tokens <= 12  # summed over the choices
    one = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=1)
    assert r.usage.prompt_tokens == one.usage.prompt_tokens  # the prompt counts once


def test_n_choices_stream(client):
    stream = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=4, n=2, stream=True)
    finished = {c.choices[0].index for c in stream if c.choices and c.choices[0].finish_reason}
    assert finished == {0, 1}


def test_seed_reproducible(client):
    kw = dict(model="m", messages=MESSAGES, max_tokens=8, temperature=1.0, seed=1234)
    assert client.chat.completions.create(**kw).choices[0].message.content == \
        client.chat.completions.create(**kw).choices[0].message.content


def test_stop_string(client):
    full = client.completions.create(model="m", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0).choices[0].text
    assert "6" in full, full  # the model counts on; the stop below must cut it
    r = client.completions.create(model="m", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, stop=["6"])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text == full[: full.index("6")]


def test_chat_logprobs(client):
    r = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=4, temperature=0, logprobs=True,
                                       top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for e in content:
        assert e.logprob <= 0
        assert len(e.top_logprobs) == 3
        assert e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob
        assert e.token == e.top_logprobs[0].token  # greedy picks the most likely token
        assert abs(e.logprob - e.top_logprobs[0].logprob) < 1e-5
        assert bytes(e.bytes).decode("utf-8", "replace") == e.token or e.bytes
    assert "".join(e.token for e in content) == r.choices[0].message.content


def test_completion_logprobs(client):
    r = client.completions.create(model="m", prompt="The sky is", max_tokens=3, temperature=0, logprobs=2)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 3
    assert all(len(t) <= 2 for t in lp.top_logprobs)
    assert lp.text_offset[0] == 0
    assert "".join(lp.tokens) == r.choices[0].text


def test_bad_request_errors(client):
    cases = [
        dict(messages=[], max_tokens=4),
        dict(messages=MESSAGES, max_tokens=-1),
        dict(messages=MESSAGES, temperature=3),
        dict(messages=MESSAGES, top_p=2),
        dict(messages=MESSAGES, n=9),
        dict(messages=[{"role": "wizard", "content": "x"}]),
    ]
    for kw in cases:
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model="m", **kw)
        assert e.value.status_code == 400
        assert e.value.body["type"] == "invalid_request_error", kw
        assert e.value.body["message"], kw


def test_context_length_error(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="m", prompt="hello " * 5000, max_tokens=4)
    assert e.value.body["code"] == "context_length_exceeded"
    assert "2048" in e.value.body["message"]


def test_not_found(client):
    # (Embeddings exist; without --embedding-model they are a 400: test_embeddings.py.)
    with pytest.raises(openai.NotFoundError):
        client.images.generate(model="m", prompt="x")


def test_api_key():
    s = start_server("--api-key", "sekrit", "--parallel", "1").wait_ready()
    try:
        bad = openai.OpenAI(base_url=s.url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as e:
            bad.models.list()
        assert e.value.status_code == 401
        good = openai.OpenAI(base_url=s.url + "/v1", api_key="sekrit", max_retries=0)
        assert good.models.list().data[0].id
    finally:
        assert s.stop() == 0


def test_queue_full_is_429():
    s = start_server("--parallel", "1", "--max-queue", "1").wait_ready()
    try:
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="x", max_retries=0)
        running = c.completions.create(model="m", prompt="Count:", max_tokens=500, stream=True)
        next(iter(running))  # the only slot is taken
        queued = c.completions.create(model="m", prompt="Count:", max_tokens=500, stream=True)  # headers only
        with pytest.raises(openai.RateLimitError) as e:
            c.completions.create(model="m", prompt="hi", max_tokens=2)
        assert e.value.status_code == 429
        assert e.value.response.headers["retry-after"] == "1"
        running.close()  # disconnects cancel: the slot and the queue place free up
        queued.close()
        deadline = time.time() + 15  # far less than 1000 tokens would take
        while True:
            try:
                r = c.completions.create(model="m", prompt="hi", max_tokens=2)
                break
            except openai.RateLimitError:
                assert time.time() < deadline, "cancelled requests still hold the queue"
                time.sleep(0.05)
        assert r.usage.completion_tokens >= 1
    finally:
        assert s.stop() == 0
