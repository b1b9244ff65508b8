#!/usr/bin/env python3
"""Side-by-side prompt and generation speed: flashlm (`flashlm run`) and llama.cpp
(llama-cpp-python) on the same GGUF file, same thread count, alternating runs, medians.

A stopgap until `flashlm bench` exists: the flashlm figures are the timings `flashlm run`
prints on stderr (prompt tokens/s over the whole prompt, generation tokens/s over the
sampled tokens); the llama.cpp figures time the same token counts through the bindings.

Usage: python bench/baseline_llamacpp.py [-t THREADS] [-p PROMPT_TOKENS] [-n GEN_TOKENS] [-r REPS] MODEL...
Needs: llama-cpp-python (pip install llama-cpp-python==0.3.36, built from source).
"""
import argparse, os, platform, re, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def flashlm_once(binary, model, threads, n_prompt, n_gen):
    # A prompt of n_prompt tokens for either tokenizer: " the" repeated is one token each
    # in both models' vocabularies, plus BOS where the model adds one.
    prompt = " ".join(["the"] * (n_prompt - 1))
    out = subprocess.run([binary, "run", "-m", model, "-p", prompt, "-n", str(n_gen), "--ignore-eos", "--temp", "0",
                          "-t", str(threads), "-c", str(n_prompt + n_gen + 8)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"flashlm failed: {out.stderr}")
    m = re.search(r"prompt (\d+) tokens, [0-9.]+ ms, ([0-9.]+) tokens/s \| generation (\d+) tokens, [0-9.]+ ms, ([0-9.]+) tokens/s",
                  out.stderr)
    return int(m.group(1)), float(m.group(2)), float(m.group(4))


def llamacpp_once(llm, n_prompt, n_gen):
    toks = llm.tokenize((" ".join(["the"] * (n_prompt - 1))).encode(), add_bos=True)
    llm.reset()
    t = time.perf_counter()
    llm.eval(toks)
    pp = len(toks) / (time.perf_counter() - t)
    t = time.perf_counter()
    tok = toks[-1]
    for _ in range(n_gen):
        llm.eval([tok])
    tg = n_gen / (time.perf_counter() - t)
    return len(toks), pp, tg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-p", "--n-prompt", type=int, default=128)
    ap.add_argument("-n", "--n-gen", type=int, default=64)
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("--flashlm", default=os.path.join(ROOT, "build", "flashlm"))
    a = ap.parse_args()
    import llama_cpp

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; threads {a.threads}; "
          f"llama-cpp-python {llama_cpp.__version__}; date {time.strftime('%Y-%m-%d')}")
    print()
    print(f"| model | engine | pp{a.n_prompt} tok/s | tg{a.n_gen} tok/s |")
    print("|---|---|---|---|")
    for model in a.models:
        llm = llama_cpp.Llama(model, n_ctx=a.n_prompt + a.n_gen + 8, n_batch=512, n_threads=a.threads,
                              n_threads_batch=a.threads, verbose=False)
        f_pp, f_tg, l_pp, l_tg = [], [], [], []
        for _ in range(a.reps):  # alternate the engines so drift hits both alike
            _, pp, tg = flashlm_once(a.flashlm, model, a.threads, a.n_prompt, a.n_gen)
            f_pp.append(pp); f_tg.append(tg)
            _, pp, tg = llamacpp_once(llm, a.n_prompt, a.n_gen)
            l_pp.append(pp); l_tg.append(tg)
        name = os.path.basename(model)
        med = statistics.median
        print(f"| {name} | flashlm | {med(f_pp):.1f} | {med(f_tg):.1f} |")
        print(f"| {name} | llama.cpp | {med(l_pp):.1f} | {med(l_tg):.1f} |")
        print(f"| {name} | ratio | {med(f_pp) / med(l_pp):.2f}x | {med(f_tg) / med(l_tg):.2f}x |")
        del llm


if __name__ == "__main__":
    main()
