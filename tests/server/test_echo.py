"""`echo` on /v1/completions: the prompt's text and, with `logprobs`, its tokens'
log-probabilities, as lm-evaluation-harness's `local-completions` model asks for them
(prompt as token ids, echo, logprobs 1, max_tokens 1, temperature 0). The scores must be
the model's own: equal to the logprobs of the same tokens generated greedily, and the
same whether or not the prefix cache holds the prompt."""
import uuid

import httpx
import openai
import pytest

PROMPT = "The capital of France is"


def tokenize(server, text):
    r = httpx.post(server.url + "/tokenize", json={"content": text}, timeout=30)
    assert r.status_code == 200
    return r.json()["tokens"]


def test_echo_returns_the_prompt_and_its_logprobs(client, server):
    r = client.completions.create(model="m", prompt=PROMPT, echo=True, logprobs=1, max_tokens=2, temperature=0)
    c = r.choices[0]
    assert c.text.startswith(PROMPT) and len(c.text) > len(PROMPT)
    lp = c.logprobs
    n_prompt = len(tokenize(server, PROMPT))
    assert r.usage.prompt_tokens == n_prompt
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == n_prompt + 2
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None  # nothing precedes the first token
    assert all(x <= 0 for x in lp.token_logprobs[1:])
    assert all(len(t) == 1 for t in lp.top_logprobs[1:])
    assert "".join(lp.tokens) == c.text
    assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[0] == 0
    assert lp.text_offset[n_prompt] == len(PROMPT)  # the generated tokens follow the echoed text


def test_echo_scores_equal_the_logprobs_of_greedy_generation(client):
    # Two tokens (" Paris", "."): short enough that the text tokenizes back to them.
    g = client.completions.create(model="m", prompt=PROMPT, logprobs=1, max_tokens=2, temperature=0)
    gen = g.choices[0].logprobs
    s = client.completions.create(model="m", prompt=PROMPT + g.choices[0].text, echo=True, logprobs=1, max_tokens=0)
    lp = s.choices[0].logprobs
    assert s.choices[0].finish_reason == "length"
    assert s.usage.completion_tokens == 0
    assert s.choices[0].text == PROMPT + g.choices[0].text
    assert lp.tokens[-2:] == gen.tokens
    assert lp.token_logprobs[-2:] == pytest.approx(gen.token_logprobs, abs=1e-6)
    # A split prompt scores its tail the same: the log-likelihood of a continuation is the
    # sum of its tokens' scores, whatever came after it.
    head = client.completions.create(model="m", prompt=PROMPT, echo=True, logprobs=0, max_tokens=0).choices[0]
    n = len(head.logprobs.tokens)
    assert lp.token_logprobs[1:n] == pytest.approx(head.logprobs.token_logprobs[1:], abs=1e-6)


def test_lm_eval_style_request_with_token_ids(client, server):
    ids = tokenize(server, PROMPT + " Paris")
    r = httpx.post(server.url + "/v1/completions", json={"model": "m", "prompt": ids, "temperature": 0, "max_tokens": 1,
                                                         "logprobs": 1, "seed": 1234, "echo": True}, timeout=60)
    assert r.status_code == 200, r.text
    lp = r.json()["choices"][0]["logprobs"]
    assert len(lp["token_logprobs"]) == len(ids) + 1
    ctxlen = len(tokenize(server, PROMPT))
    cont = lp["token_logprobs"][ctxlen:-1]  # what the harness sums for " Paris"
    assert len(cont) == 1 and cont[0] > -3
    assert cont[0] == pytest.approx(max(lp["top_logprobs"][ctxlen].values()), abs=1e-6)  # greedy: top-1


def test_echo_after_a_prefix_cache_hit_equals_cold(client):
    # Unique, long enough for several 32-token blocks.
    text = f"Note {uuid.uuid4().hex}: " + "the quick brown fox jumps over the lazy dog and runs away. " * 8
    cold = client.completions.create(model="m", prompt=text, echo=True, logprobs=2, max_tokens=0)
    assert cold.usage.prompt_tokens_details.cached_tokens == 0
    plain = client.completions.create(model="m", prompt=text, max_tokens=1, temperature=0)
    assert plain.usage.prompt_tokens_details.cached_tokens >= 32  # the echo's blocks are cached
    warm = client.completions.create(model="m", prompt=text, echo=True, logprobs=2, max_tokens=0)
    assert warm.usage.prompt_tokens_details.cached_tokens == 0  # scoring recomputes every position
    assert warm.choices[0].logprobs.token_logprobs == cold.choices[0].logprobs.token_logprobs
    assert warm.choices[0].logprobs.top_logprobs == cold.choices[0].logprobs.top_logprobs


def test_echo_stream_and_n(client):
    chunks = list(client.completions.create(model="m", prompt=PROMPT, echo=True, logprobs=1, max_tokens=2,
                                            temperature=0, stream=True))
    first = chunks[0].choices[0]
    assert first.text == PROMPT
    assert first.logprobs.token_logprobs[0] is None and len(first.logprobs.tokens) > 1
    assert chunks[-1].choices[0].finish_reason == "length"
    r = client.completions.create(model="m", prompt=PROMPT, echo=True, max_tokens=1, n=2, temperature=0)
    assert [c.text.startswith(PROMPT) for c in r.choices] == [True, True]
    assert r.choices[0].logprobs is None


def test_echo_bad_combinations_are_400(client):
    for kw in [dict(max_tokens=0), dict(echo=True, logprobs=6, max_tokens=1), dict(echo=True, max_tokens=-1)]:
        with pytest.raises(openai.BadRequestError) as e:
            client.completions.create(model="m", prompt=PROMPT, **kw)
        assert e.value.status_code == 400, kw
        assert e.value.body["param"] in ("max_tokens", "logprobs"), kw
