"""`serve --lora`: the adapter is applied to every request, and what the server scores is
what llama.cpp computes with the same adapter. The prompt's log-probabilities (echo +
logprobs on /v1/completions, token ids in) are compared with the llama.cpp golden of
SmolLM2 with its LoRA adapter (tests/golden/logits/SmolLM2-135M-Instruct.Q4_1.lora.json,
scripts/reference/make_logits_golden.py), at the bound the engine test uses for the mean
(models/model_golden_test.cpp: 0.15); the base server misses it."""
import json
import math
import subprocess

import httpx
import pytest

from conftest import BIN, MODEL, ROOT, start_server

GOLDEN = ROOT / "tests" / "golden" / "logits" / "SmolLM2-135M-Instruct.Q4_1.lora.json"


def golden_case():
    g = json.loads(GOLDEN.read_text())
    return g, next(c for c in g["cases"] if c["name"] == "short_sentence")


def mean_logprob_gap(url, case):
    """Mean |server logprob - llama.cpp logprob| of each next token the golden ranks."""
    r = httpx.post(url + "/v1/completions", json={"model": "m", "prompt": case["tokens"], "echo": True, "logprobs": 1,
                                                  "max_tokens": 0, "temperature": 0}, timeout=120)
    assert r.status_code == 200, r.text
    got = r.json()["choices"][0]["logprobs"]["token_logprobs"]
    gaps = []
    for pi, pos in enumerate(case["positions"]):
        if pos + 1 >= len(case["tokens"]):
            continue
        nxt = case["tokens"][pos + 1]
        ref = dict((int(i), l) for i, l in case["top"][pi])
        if nxt in ref:
            gaps.append(abs(got[pos + 1] - (ref[nxt] - case["logsumexp"][pi])))
    assert gaps, "no golden position scores a prompt token"
    return sum(gaps) / len(gaps)


@pytest.fixture(scope="module")
def lora_server():
    g, _ = golden_case()
    s = start_server("--parallel", "2", "--lora", str(ROOT / g["lora"][0]["path"])).wait_ready()
    yield s
    assert s.stop() == 0, s.output()


def test_served_adapter_matches_llama_cpp(lora_server, server):
    _, case = golden_case()
    with_lora = mean_logprob_gap(lora_server.url, case)
    base = mean_logprob_gap(server.url, case)
    print(f"mean |logprob gap| to llama.cpp + adapter: served with --lora {with_lora:.4f}, base server {base:.4f}")
    assert with_lora < 0.15
    assert base > 2 * with_lora and not math.isclose(base, with_lora)


def test_adapter_of_another_model_is_refused():
    adapter = ROOT / "tests" / "golden" / "lora" / "tiny-gemma3-f32.lora.gguf"
    p = subprocess.run([BIN, "serve", "-m", MODEL, "--port", "0", "--lora", str(adapter)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    assert "is for architecture 'gemma3', the model is 'llama'" in p.stderr
