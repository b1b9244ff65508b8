#!/usr/bin/env python3
"""Warm-cache benchmark: time to first token with a long shared system prompt, cold,
warm in memory, and (flashlm with --kv-store) after a restart; beside llama.cpp's server
and its prompt cache on the same file and threads.

Every request is a chat completion whose system message is the same ~2,000-token text
(the start of data/eval.txt) and whose user turn is short and different each time.

  cold     first request of a fresh server (after an unrelated warm-up request that pages
           the model in, so the figure is prefill, not disk)
  warm     median of the following requests (the shared prefix is cached in memory)
  restart  flashlm only: the server is stopped and started again on the same --kv-store
           directory; the first shared-prefix request after the same warm-up

llama.cpp's side is llama-cpp-python's server (one sequence, which keeps the KV of the
previous prompt and reuses the common prefix), or a llama-server binary named with
--llama-server (cache_prompt on). See bench/serve_load.py for the environment.

Usage:
  python bench/prefix_cache.py -m models/SmolLM2-135M-Instruct.Q4_1.gguf -t 2 [--write docs/BENCHMARKS.md]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_load  # noqa: E402

ROOT = serve_load.ROOT
QUESTIONS = ["Who is mentioned first?", "Summarize the text in one line.", "What happens next?",
             "Name one place in the text.", "What is the tone?", "Give the text a title.",
             "Who speaks first?", "What is created on the third day?"]


def system_prompt(url: str, target_tokens: int) -> str:
    """The longest run of whole lines of data/eval.txt under target_tokens (counted by the
    server's own tokenizer, so both engines get the same text)."""
    lines = (ROOT / "data" / "eval.txt").read_text().splitlines()
    text = ""
    for line in lines:
        cand = text + line + "\n"
        n = len(httpx.post(url + "/tokenize", json={"content": cand}, timeout=60).json()["tokens"])
        if n > target_tokens:
            break
        text = cand
    return text


def ttft(url: str, system: str, question: str, extra: dict) -> float:
    body = {"model": "m", "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
            "max_tokens": 4, "temperature": 0.0, "stream": True, **extra}
    t0 = time.perf_counter()
    first = None
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():  # read to the end so the request finishes normally
            if first is None and line.startswith("data: ") and line != "data: [DONE]":
                chunk = json.loads(line[6:])
                if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                    first = time.perf_counter() - t0
    if first is None:
        raise RuntimeError("no content in the stream")
    return first


def warm_up(url: str, extra: dict) -> None:
    ttft(url, "You are terse.", "Hi", extra)


def measure(engine: serve_load.Engine, system: str | None, n_warm: int, restart: bool) -> tuple[dict, str]:
    out = {}
    engine.start()
    try:
        if system is None:  # counted with flashlm's /tokenize: run flashlm first
            system = system_prompt(engine.url, engine.args.prefix_tokens)
        warm_up(engine.url, engine.extra_body())
        out["cold_ms"] = 1e3 * ttft(engine.url, system, QUESTIONS[0], engine.extra_body())
        warm = [ttft(engine.url, system, QUESTIONS[1 + i % (len(QUESTIONS) - 1)], engine.extra_body())
                for i in range(n_warm)]
        out["warm_ms"] = 1e3 * statistics.median(warm)
    finally:
        engine.stop()
    if restart:
        engine.start()
        try:
            warm_up(engine.url, engine.extra_body())
            out["restart_ms"] = 1e3 * ttft(engine.url, system, QUESTIONS[-1], engine.extra_body())
        finally:
            engine.stop()
    return out, system


class FlashlmStore(serve_load.Flashlm):
    def __init__(self, *a, store: str, **kw):
        super().__init__(*a, **kw)
        self.store = store

    def command(self) -> list[str]:
        return super().command() + ["--kv-store", self.store]

    def extra_body(self) -> dict:
        return {}


class LlamaCppPlain(serve_load.LlamaCpp):
    def extra_body(self) -> dict:
        return {"cache_prompt": True} if self.args.llama_server else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", action="append")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--prefix-tokens", type=int, default=2000)
    ap.add_argument("--warm", type=int, default=5, help="warm requests (median reported)")
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--engines", default="flashlm,llamacpp")
    ap.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER", ""))
    ap.add_argument("--llama-python", default=os.environ.get("LLAMA_PYTHON", "/opt/flashlm-bench/bin/python"))
    ap.add_argument("--write", help="append the markdown table to this file")
    args = ap.parse_args()
    models = [Path(m).resolve() for m in (args.model or [ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"])]

    rows = []
    for model in models:
        args.eos_id = serve_load.eos_token_id(model)
        system = None
        for key in args.engines.split(","):
            if key == "flashlm":
                with tempfile.TemporaryDirectory(prefix="flashlm-kv-") as store:
                    eng = FlashlmStore(model, args.threads, 1, args.ctx, args, store=store)
                    print("==", " ".join(eng.command()), flush=True)
                    res, system = measure(eng, system, args.warm, restart=True)
            else:
                eng = LlamaCppPlain(model, args.threads, 1, args.ctx, args)
                print("==", " ".join(eng.command()), flush=True)
                res, system = measure(eng, system, args.warm, restart=False)
            res.update(engine=eng.name, model=model.name)
            print(res, flush=True)
            rows.append(res)

    lines = [f"### Warm prefix cache: TTFT with a {args.prefix_tokens}-token shared system prompt, "
             f"{args.threads} threads ({datetime.date.today().isoformat()})", "",
             f"Machine: {serve_load.cpu_name()}, {os.cpu_count()} logical CPUs. Command: "
             f"`python bench/prefix_cache.py {' '.join('-m ' + str(m) for m in models)} -t {args.threads}`.", "",
             "| model | engine | cold TTFT | warm TTFT | warm / cold | after restart (--kv-store) | restart / cold |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        rs = f"{r['restart_ms']:.0f} ms | 1/{r['cold_ms'] / r['restart_ms']:.0f}" if "restart_ms" in r else "— | —"
        lines.append(f"| {r['model']} | {r['engine']} | {r['cold_ms']:.0f} ms | {r['warm_ms']:.1f} ms | "
                     f"1/{r['cold_ms'] / r['warm_ms']:.0f} | {rs} |")
    serve_load.emit("\n".join(lines) + "\n", args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
