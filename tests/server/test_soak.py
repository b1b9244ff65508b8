"""A short soak, bounded in rounds and time: rounds of mixed traffic (finished requests,
streams, streams dropped halfway, bad requests) against one server, whose resident memory
must stop growing once it is warm. A leak of even a few KiB per request shows up as
steady growth over the rounds."""
import asyncio
import json
import random

import httpx
import pytest

from conftest import metric, start_server

ROUNDS = 10
PER_ROUND = 24
WARM_ROUNDS = 3           # allocator pools, scratch and KV pages settle in these
MAX_GROWTH_KIB = 4096     # after warm-up; one round's KV and buffers are far below this


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def one(client, url, i, rng):
    kind = rng.choice(["json", "stream", "drop", "bad", "chat"])
    if kind == "bad":
        r = await client.post(url + "/v1/completions", content=b'{"prompt": "x", "max_tokens": "many"',
                              headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        return
    if kind == "chat":
        r = await client.post(url + "/v1/chat/completions", json={
            "messages": [{"role": "user", "content": f"Say hello number {i}"}], "max_tokens": 8, "seed": i})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] is not None
        return
    body = {"prompt": f"Item {i}: the weather today", "max_tokens": 12, "seed": i, "temperature": 0.8,
            "stream": kind != "json"}
    if kind == "json":
        r = await client.post(url + "/v1/completions", json=body)
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] >= 1
        return
    async with client.stream("POST", url + "/v1/completions", json=body) as r:
        assert r.status_code == 200
        n = 0
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                n += 1
                if kind == "drop" and n >= 2:
                    return  # leaving the block drops the connection mid-stream
                if line == "data: [DONE]":
                    return
                json.loads(line[6:])


@pytest.fixture(scope="module")
def soak_server():
    s = start_server("--parallel", "8", "-c", "512").wait_ready()
    yield s
    code = s.stop()
    assert code == 0, s.output()


def test_memory_does_not_grow_under_repeated_traffic(soak_server):
    rng = random.Random(7)
    url = soak_server.url
    pid = soak_server.proc.pid
    samples = []

    async def round_(r):
        async with httpx.AsyncClient(timeout=120) as client:
            await asyncio.gather(*(one(client, url, r * PER_ROUND + i, rng) for i in range(PER_ROUND)))

    for r in range(ROUNDS):
        asyncio.run(round_(r))
        # Wait for dropped streams to be cancelled so each sample sees an idle server.
        for _ in range(100):
            m = httpx.get(url + "/metrics").text
            if metric(m, "flashlm_running_sequences") == 0 and metric(m, "flashlm_waiting_sequences") == 0:
                break
            asyncio.run(asyncio.sleep(0.05))
        samples.append(rss_kib(pid))
    print("RSS KiB per round:", samples)
    growth = max(samples[WARM_ROUNDS:]) - samples[WARM_ROUNDS - 1]
    assert growth <= MAX_GROWTH_KIB, f"RSS grew {growth} KiB after warm-up: {samples}"
    assert httpx.get(url + "/health").json() == {"status": "ok"}
