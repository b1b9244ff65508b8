#!/usr/bin/env python3
"""flashlm against llama.cpp on the CPU: the same GGUF files, the same threads, the same
prompt and generation lengths, in one run, with alternating repetitions and medians.

For every model and thread count, each repetition runs
  - `flashlm bench -m MODEL -t T -p P -n N -r 1 -o json` (one warm-up, one timed run), and
  - llama.cpp's own `llama-bench` on the same file (`--llama-bench BIN` or LLAMA_BENCH=BIN,
    a build of llama.cpp the user makes; `-p P -n N -t T -r 1 -o json`, which also warms up
    once), the baseline a user would run;
then the same two engines again in the other order. Peak memory is measured separately: a
`flashlm run` and the llama-bench process each process a P-token prompt and N generated
tokens, and the kernel's peak RSS of each process is read with wait4().

`--baseline python` uses llama-cpp-python in a child process instead (same shapes: P prompt
tokens in one batch on an empty context, then N tokens one at a time). It is a weaker
baseline (its builds lag llama.cpp's master and its RSS includes the interpreter) and the
table says so; use it only where no llama-bench can be built.

Usage:
  python bench/cpu_side_by_side.py --llama-bench /path/to/llama-bench [-t 1,2] [-p 512] [-n 128] [-r 3]
         [--write docs/BENCHMARKS.md] MODEL...
Every table records the CPU model, its SIMD flags, flashlm's kernel level and the
llama.cpp build commit.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_child(cmd, env=None):
    """Runs cmd to completion; returns (stdout, stderr)."""
    out, err, _ = popen_rss(cmd, env)
    return out, err


def popen_rss(cmd, env=None):
    """Runs cmd; returns (stdout, stderr, the child's own peak RSS in MiB from wait4)."""
    with tempfile.TemporaryFile(mode="w+") as out_f, tempfile.TemporaryFile(mode="w+") as err_f:
        p = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, text=True, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {err[-2000:]}")
    return out, err, ru.ru_maxrss / 1024.0


# ---- llama.cpp through its Python bindings, in a child process ----

def worker(args):
    import random
    import resource
    import llama_cpp
    # The interpreter with the bindings loaded, before a model exists: what the Python
    # side costs on its own.
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    llm = llama_cpp.Llama(args.model, n_ctx=args.ctx, n_batch=max(args.p, 1), n_ubatch=max(args.p, 1),
                          n_threads=args.threads, n_threads_batch=args.threads, verbose=False)
    rng = random.Random(1)
    n_vocab = llm.n_vocab()
    toks = [rng.randrange(n_vocab) for _ in range(max(args.p, args.n, 1))]
    res = {"version": llama_cpp.__version__, "python_rss_mib": base_rss}

    def pp():
        llm.reset()  # the next eval drops the cached positions from 0 on
        t = time.perf_counter()
        llm.eval(toks[: args.p])
        return args.p / (time.perf_counter() - t)

    def tg():
        llm.reset()  # the next eval drops the cached positions from 0 on
        t = time.perf_counter()
        for i in range(args.n):
            llm.eval([toks[i]])
        return args.n / (time.perf_counter() - t)

    if args.mode == "speed":
        if args.p > 0:
            pp()  # warm-up
            res["pp"] = pp()
        if args.n > 0:
            tg()
            res["tg"] = tg()
    else:  # memory: the same shape as `flashlm run`: a prompt, then generation after it
        llm.reset()
        llm.eval(toks[: args.p])
        for i in range(args.n):
            llm.eval([toks[i]])
    print(json.dumps(res))


def cpu_flags() -> str:
    """The SIMD flags that decide which kernels either engine can use."""
    want = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
            "amx_tile", "asimd", "asimddp", "sve"]
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    have = set(line.split(":", 1)[1].split())
                    return " ".join(w for w in want if w in have) or "none of the SIMD flags listed"
    except OSError:
        pass
    return "unknown"


def llamacpp_speed(bench, model, threads, p, n):
    if bench:
        out, _ = run_child([bench, "-m", model, "-t", str(threads), "-p", str(p), "-n", str(n), "-r", "1", "-o", "json"])
        rows = json.loads(out)
        res = {"version": "llama-bench " + str(rows[0].get("build_commit", "?"))}
        for r in rows:
            if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0:
                res["pp"] = r["avg_ts"]
            elif r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0:
                res["tg"] = r["avg_ts"]
        return res
    out, _ = run_child([sys.executable, __file__, "--worker", "--mode", "speed", "--model", model, "--threads",
                        str(threads), "--p", str(p), "--n", str(n), "--ctx", str(p + n + 8)])
    return json.loads(out.strip().splitlines()[-1])


def flashlm_speed(binary, model, threads, p, n):
    out, _ = run_child([binary, "bench", "-m", model, "-t", str(threads), "-p", str(p), "-n", str(n), "-r", "1",
                        "-o", "json"])
    res = {}
    for r in json.loads(out):
        res["pp" if r["test"].startswith("pp") else "tg"] = r["t_s"]
        if r.get("bw_pct") is not None:
            res["bw_pct"] = r["bw_pct"]
    return res


def flashlm_info(binary, model):
    _, err = run_child([binary, "bench", "-m", model, "-t", "1", "-p", "0", "-n", "1", "-r", "1", "-o", "json"])
    return err.strip().splitlines()


def peak_memory(binary, bench, model, threads, p, n):
    prompt = " ".join(["the"] * max(p - 1, 1))
    _, _, f_rss = popen_rss([binary, "run", "-m", model, "-p", prompt, "-n", str(n), "--ignore-eos", "--temp", "0",
                             "-t", str(threads), "-c", str(p + n + 8), "-b", str(max(p, 1))])
    if bench:
        # llama-bench's pg test: a P-token prompt then N generated tokens in one context.
        _, _, l_rss = popen_rss([bench, "-m", model, "-t", str(threads), "-p", "0", "-n", "0", "-pg", f"{p},{n}",
                                 "-r", "1", "-o", "json"])
        return f_rss, l_rss, None
    out, _, l_rss = popen_rss([sys.executable, __file__, "--worker", "--mode", "memory", "--model", model, "--threads",
                               str(threads), "--p", str(p), "--n", str(n), "--ctx", str(p + n + 8)])
    base = json.loads(out.strip().splitlines()[-1])["python_rss_mib"]
    return f_rss, l_rss, base


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*")
    ap.add_argument("-t", "--threads", default="1,2")
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("--flashlm", default=os.path.join(ROOT, "build", "flashlm"))
    ap.add_argument("--llama-bench", default=os.environ.get("LLAMA_BENCH"),
                    help="llama.cpp's llama-bench binary (default: $LLAMA_BENCH)")
    ap.add_argument("--baseline", choices=["llama-bench", "python"], default="llama-bench",
                    help="python: llama-cpp-python bindings instead (weaker; marked so in the table)")
    ap.add_argument("--write", help="append the report to this markdown file")
    # child mode
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="speed", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--p", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--ctx", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        a.threads = int(a.threads)
        worker(a)
        return
    if not a.models:
        ap.error("name at least one model")
    bench = a.llama_bench if a.baseline == "llama-bench" else None
    if a.baseline == "llama-bench" and not (bench and os.access(bench, os.X_OK)):
        ap.error("name llama.cpp's llama-bench with --llama-bench BIN or LLAMA_BENCH=BIN "
                 "(or pass --baseline python for the weaker llama-cpp-python baseline)")
    threads = [int(t) for t in a.threads.split(",")]
    P, N = a.n_prompt, a.n_gen

    lines = []
    emit = lambda s="": (print(s, flush=True), lines.append(s))
    med = statistics.median
    results = []
    version = None
    for model in a.models:
        for t in threads:
            f_pp, f_tg, l_pp, l_tg, bw = [], [], [], [], []
            for rep in range(a.reps):
                order = ["f", "l"] if rep % 2 == 0 else ["l", "f"]  # alternate who goes first
                for who in order:
                    if who == "f":
                        r = flashlm_speed(a.flashlm, model, t, P, N)
                        f_pp.append(r.get("pp", 0.0)); f_tg.append(r.get("tg", 0.0))
                        if "bw_pct" in r:
                            bw.append(r["bw_pct"])
                    else:
                        r = llamacpp_speed(bench, model, t, P, N)
                        version = r.get("version", version)
                        l_pp.append(r.get("pp", 0.0)); l_tg.append(r.get("tg", 0.0))
            mem = peak_memory(a.flashlm, bench, model, t, P, N)
            results.append((model, t, med(f_pp), med(l_pp), med(f_tg), med(l_tg), med(bw) if bw else None, mem))
            print(f"# {os.path.basename(model)} t={t}: flashlm pp {f_pp} tg {f_tg} | llama.cpp pp {l_pp} tg {l_tg}",
                  file=sys.stderr, flush=True)

    info = flashlm_info(a.flashlm, a.models[0])
    emit(f"## CPU side by side ({datetime.date.today().isoformat()})")
    emit()
    emit(f"Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
         f"flags: {cpu_flags()}.")
    emit(f"flashlm: `{info[0]}`" if info else "flashlm")
    if len(info) > 1 and info[1]:
        emit(f"({info[1]})")
    if bench:
        emit(f"llama.cpp: {version} (`{bench}`), same GGUF files.")
    else:
        emit(f"llama.cpp: llama-cpp-python {version} (built from source with native CPU flags), same GGUF files. "
             "**Weaker baseline**: the Python bindings, not llama.cpp's own llama-bench.")
    emit(f"Each figure is the median of {a.reps} alternating repetitions (one warm-up and one timed run each); "
         f"pp{P}: a {P}-token prompt in one batch, tg{N}: {N} tokens one at a time, both on an empty context.")
    base_arg = f"--llama-bench {bench} " if bench else "--baseline python "
    emit(f"Command: `python bench/cpu_side_by_side.py {base_arg}--flashlm {a.flashlm} -t {a.threads} -p {P} -n {N} -r {a.reps} "
         + " ".join(os.path.relpath(m, ROOT) if m.startswith(ROOT) else m for m in a.models) + "`")
    emit()
    emit(f"| model | threads | pp{P} flashlm | pp{P} llama.cpp | ratio | tg{N} flashlm | tg{N} llama.cpp | ratio "
         "| decode bw% | peak RSS flashlm | peak RSS llama.cpp" + ("" if bench else " (of which Python + bindings)") + " |")
    emit("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for model, t, fp, lp, ft, lt, bw, (f_rss, l_rss, base) in results:
        name = os.path.basename(model)
        rp = f"{fp / lp:.2f}x" if lp else "-"
        rt = f"{ft / lt:.2f}x" if lt else "-"
        bws = f"{bw:.0f}%" if bw is not None else ""
        lrss = (f"{l_rss:.0f} MiB ({base:.0f})" if base else f"{l_rss:.0f} MiB") if l_rss else "-"
        emit(f"| {name} | {t} | {fp:.1f} | {lp:.1f} | {rp} | {ft:.1f} | {lt:.1f} | {rt} | {bws} | {f_rss:.0f} MiB | {lrss} |")
    emit()
    if a.write:
        with open(a.write, "a") as f:
            f.write("\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
