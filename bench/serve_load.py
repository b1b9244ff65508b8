#!/usr/bin/env python3
"""Serving benchmark: flashlm serve against llama.cpp's server on the same model file.

A closed-loop load generator built on the official `openai` client (asyncio): at each
concurrency level C, C workers each send streamed chat completions one after another
until the level's request count is done. It reports, per engine and level:

  * aggregate generated tokens/s  (completion tokens of all requests / wall time)
  * TTFT p50/p99                   (request sent -> first content chunk)
  * inter-token latency p50/p99    (gaps between content chunks, per token)

Both servers run the same GGUF file with the same thread count, one at a time on an
otherwise idle machine (one engine's server is stopped before the other starts). Every
request is greedy (temperature 0) with the same prompts and max_tokens, and asks the
server to ignore end-of-generation (flashlm: `ignore_eos`; llama.cpp: a -100 logit bias on
the EOS token), so both engines generate the same number of tokens.

The llama.cpp side is llama-cpp-python's server (`python -m llama_cpp.server`, from
`pip install 'llama-cpp-python[server]==0.3.36'`; see bench/setup_serve_baseline.sh), or a
llama-server binary named with --llama-server (its --parallel is set to the largest level).

Usage:
  python bench/serve_load.py -m models/SmolLM2-135M-Instruct.Q4_1.gguf -t 2 \
      -c 1,4,8,16,32 [--engines flashlm,llamacpp] [--write docs/BENCHMARKS.md]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parent.parent

TOPICS = [
    "a lighthouse keeper", "a lost robot", "the first snow of winter", "a dragon who bakes bread",
    "two rival chess players", "a city under the sea", "a clockmaker's apprentice", "a comet",
    "an old map", "a talking cat", "the last train home", "a garden on the moon",
    "a forgotten song", "a river that flows uphill", "a library with no doors", "a brave mouse",
]


@dataclass
class RequestResult:
    ttft_s: float
    itl_s: list[float]
    tokens: int
    ok: bool
    error: str = ""


@dataclass
class LevelResult:
    concurrency: int
    wall_s: float
    results: list[RequestResult] = field(default_factory=list)

    def ok(self) -> list[RequestResult]:
        return [r for r in self.results if r.ok]

    def tokens_per_s(self) -> float:
        return sum(r.tokens for r in self.ok()) / self.wall_s if self.wall_s > 0 else 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 300.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server at {url} not ready after {timeout_s:.0f} s")


def eos_token_id(model: Path) -> int:
    """The EOS id from the GGUF metadata (for llama.cpp's logit bias)."""
    import gguf  # gguf-py, installed with llama-cpp-python's reference venv
    field = gguf.GGUFReader(str(model)).fields["tokenizer.ggml.eos_token_id"]
    return int(field.parts[field.data[0]][0])


class Engine:
    name = ""

    def __init__(self, model: Path, threads: int, max_conc: int, ctx: int, args):
        self.model, self.threads, self.max_conc, self.ctx, self.args = model, threads, max_conc, ctx, args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def extra_body(self) -> dict:
        return {}

    def start(self) -> None:
        log = open(ROOT / "build" / f"serve_load_{self.name}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_healthy(self.url, self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Flashlm(Engine):
    name = "flashlm"

    def command(self) -> list[str]:
        return [self.args.flashlm, "serve", "-m", str(self.model), "--port", str(self.port),
                "-t", str(self.threads), "--parallel", str(self.max_conc), "-c", str(self.ctx),
                "--max-queue", "1024"]

    def extra_body(self) -> dict:
        return {"ignore_eos": True}


class LlamaCpp(Engine):
    name = "llama.cpp"

    def command(self) -> list[str]:
        if self.args.llama_server:
            return [self.args.llama_server, "-m", str(self.model), "--port", str(self.port),
                    "-t", str(self.threads), "-tb", str(self.threads), "--parallel", str(self.max_conc),
                    "-c", str(self.ctx * self.max_conc)]
        return [self.args.llama_python, "-m", "llama_cpp.server", "--model", str(self.model),
                "--port", str(self.port), "--n_threads", str(self.threads),
                "--n_threads_batch", str(self.threads), "--n_ctx", str(self.ctx),
                # its default lets each new request cut off the one being streamed
                "--interrupt_requests", "False"]

    def extra_body(self) -> dict:
        return {"logit_bias": {str(self.args.eos_id): -100}}


async def one_request(client: openai.AsyncOpenAI, engine: Engine, prompt: str, max_tokens: int) -> RequestResult:
    t0 = time.perf_counter()
    first = None
    last = None
    itl: list[float] = []
    tokens = 0
    try:
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
            temperature=0.0, stream=True, stream_options={"include_usage": True},
            extra_body=engine.extra_body())
        usage_tokens = None
        async for chunk in stream:
            if getattr(chunk, "usage", None) is not None and chunk.usage.completion_tokens:
                usage_tokens = chunk.usage.completion_tokens
            if not chunk.choices or not chunk.choices[0].delta.content:
                continue
            now = time.perf_counter()
            tokens += 1
            if first is None:
                first = now
            else:
                itl.append(now - last)
            last = now
        # A chunk can carry more than one token (text held back for UTF-8 or stop strings);
        # the server's usage count is the truth when it sends one.
        if usage_tokens is not None:
            tokens = usage_tokens
    except Exception as e:  # noqa: BLE001 - counted as a failed request
        return RequestResult(0.0, [], 0, False, f"{type(e).__name__}: {e}")
    if first is None:
        return RequestResult(0.0, [], 0, False, "no content")
    return RequestResult(first - t0, itl, tokens, True)


async def run_level(engine: Engine, conc: int, n_requests: int, max_tokens: int) -> LevelResult:
    client = openai.AsyncOpenAI(base_url=engine.url + "/v1", api_key="none", timeout=600, max_retries=0)
    queue = list(range(n_requests))
    results: list[RequestResult] = []

    async def worker() -> None:
        while queue:
            i = queue.pop()
            prompt = f"Write a long story about {TOPICS[i % len(TOPICS)]}. Request {i}."
            results.append(await one_request(client, engine, prompt, max_tokens))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    wall = time.perf_counter() - t0
    await client.close()
    return LevelResult(conc, wall, results)


def summarize(engine: str, lv: LevelResult) -> dict:
    ok = lv.ok()
    itl = [x for r in ok for x in r.itl_s]
    return {
        "engine": engine, "concurrency": lv.concurrency, "requests": len(lv.results), "ok": len(ok),
        "tokens": sum(r.tokens for r in ok), "wall_s": lv.wall_s, "tok_s": lv.tokens_per_s(),
        "ttft_p50_ms": 1e3 * percentile([r.ttft_s for r in ok], 50),
        "ttft_p99_ms": 1e3 * percentile([r.ttft_s for r in ok], 99),
        "itl_p50_ms": 1e3 * percentile(itl, 50), "itl_p99_ms": 1e3 * percentile(itl, 99),
        "errors": sorted({r.error for r in lv.results if not r.ok})[:3],
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def emit(md: str, write_path: str | None) -> None:
    """Prints the table and, with --write, appends it to that file."""
    print(md)
    if write_path:
        with open(write_path, "a") as f:
            f.write("\n" + md)


def markdown(rows: list[dict], args, model: Path) -> str:
    by = {(r["engine"], r["concurrency"]): r for r in rows}
    levels = sorted({r["concurrency"] for r in rows})
    out = [f"### Serving: {model.name}, {args.threads} threads, {args.max_tokens} tokens per request "
           f"({datetime.date.today().isoformat()})", "",
           f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs. Command: `python bench/serve_load.py "
           f"-m {model} -t {args.threads} -c {args.concurrency} -n {args.max_tokens} "
           f"--requests {args.requests}` (llama.cpp side: "
           f"{'llama-server ' + args.llama_server if args.llama_server else 'llama-cpp-python server 0.3.36'}).",
           "",
           "| C | engine | req ok | tok/s | TTFT p50 | TTFT p99 | ITL p50 | ITL p99 | tok/s ratio |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in levels:
        base = by.get(("llama.cpp", c))
        for eng in ("flashlm", "llama.cpp"):
            r = by.get((eng, c))
            if r is None:
                continue
            ratio = f"{r['tok_s'] / base['tok_s']:.2f}x" if base and base["tok_s"] > 0 and eng == "flashlm" else ""
            out.append(f"| {c} | {eng} | {r['ok']}/{r['requests']} | {r['tok_s']:.1f} | "
                       f"{r['ttft_p50_ms']:.0f} ms | {r['ttft_p99_ms']:.0f} ms | {r['itl_p50_ms']:.1f} ms | "
                       f"{r['itl_p99_ms']:.1f} ms | {ratio} |")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default=str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-c", "--concurrency", default="1,4,8,16,32")
    ap.add_argument("-n", "--max-tokens", type=int, default=128)
    ap.add_argument("--requests", type=int, default=0,
                    help="requests per level (0: max(8, 2 x concurrency))")
    ap.add_argument("--ctx", type=int, default=512, help="context per sequence")
    ap.add_argument("--engines", default="flashlm,llamacpp")
    ap.add_argument("--flashlm", default=str(ROOT / "build" / "flashlm"),
                    help="the flashlm binary (e.g. an older build, to measure before/after in one run)")
    ap.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER", ""),
                    help="a llama-server binary to use instead of llama-cpp-python's server")
    ap.add_argument("--llama-python", default=os.environ.get("LLAMA_PYTHON", "/opt/flashlm-bench/bin/python"),
                    help="python with llama-cpp-python[server] installed")
    ap.add_argument("--json", help="write the raw rows here")
    ap.add_argument("--write", help="append the markdown table to this file")
    args = ap.parse_args()

    model = Path(args.model).resolve()
    levels = [int(x) for x in args.concurrency.split(",")]
    args.eos_id = eos_token_id(model)
    engines = {"flashlm": Flashlm, "llamacpp": LlamaCpp}
    rows = []
    for key in args.engines.split(","):
        eng = engines[key](model, args.threads, max(levels), args.ctx, args)
        print(f"== {eng.name}: {' '.join(eng.command())}", flush=True)
        eng.start()
        try:
            asyncio.run(run_level(eng, 1, 2, 8))  # warm-up: page the model in
            for c in levels:
                n = args.requests or max(8, 2 * c)
                row = summarize(eng.name, asyncio.run(run_level(eng, c, n, args.max_tokens)))
                rows.append(row)
                print(f"{eng.name:9s} C={c:3d} ok {row['ok']}/{row['requests']} {row['tok_s']:7.1f} tok/s  "
                      f"TTFT p50 {row['ttft_p50_ms']:7.0f} p99 {row['ttft_p99_ms']:7.0f} ms  "
                      f"ITL p50 {row['itl_p50_ms']:6.1f} p99 {row['itl_p99_ms']:6.1f} ms "
                      f"{row['errors'] if row['errors'] else ''}", flush=True)
        finally:
            eng.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    emit(markdown(rows, args, model), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
