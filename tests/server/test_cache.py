"""The prefix cache over HTTP: /v1/cache/warm pins a shared system prompt, later chat
requests report it as cached_tokens (through the openai client's usage object), GET
/v1/cache and /metrics count the hits, /v1/cache/unpin releases the pin, and bad bodies
get OpenAI-style 400s."""
import time

import httpx

from conftest import metric

SYSTEM = " ".join(f"Rule {i}: answer briefly and politely, and never invent facts." for i in range(40))


def messages(question):
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def test_warm_then_requests_hit_the_cache(server, client):
    r = httpx.post(server.url + "/v1/cache/warm", json={"messages": messages("warm-up")}, timeout=120)
    assert r.status_code == 200, r.text
    warm = r.json()
    assert warm["object"] == "cache.warm" and warm["prompt_tokens"] > 300

    first = client.chat.completions.create(model="m", messages=messages("What is rule 3?"), max_tokens=8,
                                           temperature=0)
    cached = first.usage.prompt_tokens_details.cached_tokens
    # Everything up to the last full KV block before the user turn is reused.
    assert cached >= 256 and cached < first.usage.prompt_tokens, first.usage
    again = client.chat.completions.create(model="m", messages=messages("What is rule 3?"), max_tokens=8,
                                           temperature=0)
    assert again.choices[0].message.content == first.choices[0].message.content
    assert again.usage.prompt_tokens_details.cached_tokens >= cached

    status = httpx.get(server.url + "/v1/cache").json()
    assert status["object"] == "cache"
    assert status["prompt_tokens_hit"] >= 2 * cached and 0 < status["hit_rate"] <= 1
    assert status["memory"]["blocks_pinned"] > 0 and status["memory"]["bytes_total"] > 0
    assert status["memory"]["groups"][0]["blocks"] > 0
    m = httpx.get(server.url + "/metrics").text
    assert metric(m, "flashlm_prefix_cache_hit_tokens_total") >= 2 * cached
    assert metric(m, "flashlm_prefix_cache_blocks_pinned") > 0

    r = httpx.post(server.url + "/v1/cache/unpin", json={"messages": messages("warm-up")}, timeout=60)
    assert r.status_code == 200 and r.json()["object"] == "cache.unpin"
    # Applied by the scheduler's next step; a small request makes one happen.
    client.completions.create(model="m", prompt="Hi", max_tokens=1)
    deadline = time.time() + 30
    while httpx.get(server.url + "/v1/cache").json()["memory"]["blocks_pinned"] != 0:
        assert time.time() < deadline
        time.sleep(0.1)


def test_warm_rejects_bad_bodies(server):
    for body, param in [({"messages": []}, "messages"), ({"prompt": ""}, "prompt"), ({"messages": "x"}, "messages"),
                        ({}, None)]:
        r = httpx.post(server.url + "/v1/cache/warm", json=body, timeout=30)
        assert r.status_code == 400, (body, r.text)
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error" and err["message"]
        if param:
            assert err["param"] == param, (body, err)
    r = httpx.post(server.url + "/v1/cache/warm", content=b"{not json", timeout=30)
    assert r.status_code == 400
    assert httpx.get(server.url + "/v1/cache/warm").status_code == 405
