#!/usr/bin/env python3
"""Structured-output benchmark: what a JSON schema costs in decode speed, flashlm against
llama.cpp's llama-server on the same model file and threads, one server at a time.

For each engine and concurrency C (1 and 8 by default), C workers each send R streamed
chat completions, first free text, then constrained by a nested JSON schema
(response_format json_schema). Each constrained request carries a schema no request has
sent before (a fresh enum value), so grammar compilation is part of every request. It
reports per mode:

  * aggregate generated tokens/s (completion tokens of all requests / wall time)
  * TTFT p50 (request sent -> first content chunk); the schema's extra TTFT is the
    time to compile it and compute the first mask
  * the share of constrained outputs that parse and validate (jsonschema)

Same prompt, greedy decoding and max_tokens for every request. The first constrained
request a flashlm server sees also builds its vocabulary trie (once per server); it is
sent as a warm-up before timing and its TTFT is printed separately.

Usage:
  python bench/structured_output.py -m models/SmolLM2-135M-Instruct.Q4_1.gguf -t 2 \\
      [--llama-server /path/to/llama-server] [-c 1,8] [-r 8] [--max-tokens 128]
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import jsonschema

ROOT = Path(__file__).resolve().parents[1]

PROMPT = "List some products of a small shop as JSON, with names, prices and tags."


def schema(tag: str) -> dict:
    product = {"type": "object", "properties": {
        "name": {"type": "string"},
        "price": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "kind": {"enum": ["food", "tool", tag]},
        "stock": {"type": "object", "properties": {"count": {"type": "integer"}, "where": {"type": "string"}},
                  "required": ["count", "where"], "additionalProperties": False}},
        "required": ["name", "price", "tags", "kind", "stock"], "additionalProperties": False}
    return {"type": "object", "properties": {"shop": {"type": "string"}, "products": {"type": "array",
            "items": product}}, "required": ["shop", "products"], "additionalProperties": False}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit("server not ready in time")


def one_request(url: str, body: dict) -> tuple[float, float, int, str]:
    """(ttft_s, total_s, completion tokens, text) of one streamed chat completion."""
    t0 = time.perf_counter()
    ttft = None
    text = []
    tokens = 0
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            d = json.loads(line[6:])
            if d.get("usage"):
                tokens = d["usage"]["completion_tokens"]
            for ch in d.get("choices", []):
                piece = (ch.get("delta") or {}).get("content")
                if piece:
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    text.append(piece)
    total = time.perf_counter() - t0
    return (ttft if ttft is not None else total), total, tokens, "".join(text)


def run_level(url: str, conc: int, reps: int, max_tokens: int, constrained: bool, seq: list[int]) -> dict:
    def body() -> tuple[dict, dict | None]:
        seq[0] += 1
        b = {"model": "m", "messages": [{"role": "user", "content": PROMPT}], "temperature": 0,
             "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True}}
        sch = None
        if constrained:
            sch = schema(f"kind{seq[0]}")
            b["response_format"] = {"type": "json_schema", "json_schema": {"name": "shop", "schema": sch}}
        return b, sch

    jobs = [body() for _ in range(conc * reps)]
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(conc) as pool:
        results = list(pool.map(lambda j: one_request(url, j[0]), jobs))
    wall = time.perf_counter() - t0
    valid = 0
    for (_, _, _, text), (_, sch) in zip(results, jobs):
        if sch is None:
            continue
        try:
            jsonschema.validate(json.loads(text), sch)
            valid += 1
        except Exception:
            pass
    return {"tok_s": sum(r[2] for r in results) / wall, "ttft_p50_ms": 1e3 * statistics.median(r[0] for r in results),
            "tokens": sum(r[2] for r in results), "valid": valid, "n": len(results)}


def bench_engine(name: str, cmd: list[str], url: str, levels: list[int], reps: int, max_tokens: int) -> list[dict]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_ready(url, proc)
        seq = [0]
        run_level(url, 1, 1, 8, False, seq)  # warm-up
        warm = run_level(url, 1, 1, 8, True, seq)  # first grammar: flashlm builds its vocabulary trie here
        print(f"{name}: first constrained request TTFT {warm['ttft_p50_ms']:.0f} ms", flush=True)
        for c in levels:
            free = run_level(url, c, reps, max_tokens, False, seq)
            cons = run_level(url, c, reps, max_tokens, True, seq)
            row = {"engine": name, "C": c, "free": free, "schema": cons,
                   "ratio": cons["tok_s"] / free["tok_s"] if free["tok_s"] else 0.0}
            print(f"{name} C={c}: free {free['tok_s']:.1f} tok/s (TTFT {free['ttft_p50_ms']:.0f} ms), schema "
                  f"{cons['tok_s']:.1f} tok/s (TTFT {cons['ttft_p50_ms']:.0f} ms), ratio {row['ratio']:.3f}, "
                  f"complete and valid {cons['valid']}/{cons['n']}", flush=True)
            rows.append(row)
    finally:
        proc.terminate()
        proc.wait(60)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count())
    ap.add_argument("-c", "--concurrency", default="1,8")
    ap.add_argument("-r", "--reps", type=int, default=4, help="requests per worker and mode")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--flashlm", default=str(ROOT / "build" / "flashlm"))
    ap.add_argument("--llama-server", help="llama.cpp's llama-server binary (optional)")
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",")]
    par = str(max(levels))
    print(f"# {platform.processor() or platform.machine()}, {a.threads} threads, {Path(a.model).name}, "
          f"max_tokens {a.max_tokens}, {a.reps} requests per worker and mode", flush=True)
    port = free_port()
    bench_engine("flashlm", [a.flashlm, "serve", "-m", a.model, "--port", str(port), "-t", str(a.threads),
                             "--parallel", par], f"http://127.0.0.1:{port}", levels, a.reps, a.max_tokens)
    if a.llama_server:
        port = free_port()
        bench_engine("llama-server", [a.llama_server, "-m", a.model, "--port", str(port), "-t", str(a.threads),
                                      "-np", par, "-c", str(2048 * int(par)), "--no-webui"],
                     f"http://127.0.0.1:{port}", levels, a.reps, a.max_tokens)


if __name__ == "__main__":
    main()
