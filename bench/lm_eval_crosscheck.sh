#!/usr/bin/env bash
# Cross-check of `flashlm eval` against lm-evaluation-harness: the same multiple-choice
# task (data/tasks/kjv-last-word.jsonl, described for the harness in
# bench/lm_eval/kjv_last_word.yaml) scored by lm-eval's `local-completions` model through
# `flashlm serve` (/v1/completions with echo + logprobs; the harness tokenizes through
# the server's /tokenize, so both sides use flashlm's tokenizer), then by `flashlm eval`.
# Prints both accuracies with their standard errors and whether they agree within one.
# SmolLM2 (no BOS) agrees exactly. Models whose tokenizer adds BOS do not: the harness's
# remote tokenizer asks /tokenize for add_special_tokens false (its add_bos_token is not
# honoured by that backend), so its prompts lack BOS, which `flashlm eval` adds; gemma-3-
# 270m, 50 items: lm-eval acc 0.78 +/- 0.06, flashlm eval 0.94 +/- 0.03, and the harness's
# method with BOS prepended gives flashlm eval's figure (20 items: 0.95 both, 0.75 without).
#
# Usage: bench/lm_eval_crosscheck.sh [MODEL]   (default models/SmolLM2-135M-Instruct.Q4_1.gguf)
# Environment: LIMIT (items, default 200), PORT (default 18480), FLASHLM (the binary,
# default build/flashlm), LM_EVAL (default /opt/lmeval/bin/lm_eval: a venv with
# `pip install lm-eval==0.4.13 tenacity`), THREADS (0: all), CONCURRENT (lm-eval's
# concurrent requests, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
LIMIT=${LIMIT:-200}
PORT=${PORT:-18480}
FLASHLM=${FLASHLM:-build/flashlm}
LM_EVAL=${LM_EVAL:-/opt/lmeval/bin/lm_eval}
THREADS=${THREADS:-0}
CONCURRENT=${CONCURRENT:-2}
NAME=$(basename "$MODEL" .gguf)
OUT=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$OUT"
}
trap cleanup EXIT

"$FLASHLM" serve -m "$MODEL" --port "$PORT" -t "$THREADS" --parallel "$CONCURRENT" >"$OUT/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 240); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/serve.log" >&2; exit 1; }
  sleep 0.5
done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { echo "server did not start" >&2; exit 1; }

# The data file is local; nothing is fetched.
HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 "$LM_EVAL" --model local-completions \
  --model_args "base_url=http://127.0.0.1:$PORT/v1/completions,model=$NAME,tokenizer_backend=remote,num_concurrent=$CONCURRENT,max_retries=1" \
  --tasks kjv_last_word --include_path bench/lm_eval --limit "$LIMIT" --output_path "$OUT/lm_eval" >"$OUT/lm_eval.log" 2>&1 ||
  { tail -40 "$OUT/lm_eval.log" >&2; exit 1; }
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=

"$FLASHLM" eval -m "$MODEL" --task kjv-last-word --limit "$LIMIT" -t "$THREADS" >"$OUT/eval.txt" 2>&1 ||
  { cat "$OUT/eval.txt" >&2; exit 1; }

python3 - "$OUT" "$NAME" "$LIMIT" <<'PY'
import glob, json, re, sys
out, name, limit = sys.argv[1:]
files = sorted(glob.glob(f"{out}/lm_eval/**/results_*.json", recursive=True))
r = json.load(open(files[-1]))["results"]["kjv_last_word"]
h = {m: (r[f"{m},none"], r[f"{m}_stderr,none"]) for m in ("acc", "acc_norm")}
text = open(f"{out}/eval.txt").read()
f = {m: tuple(map(float, re.search(rf"^{m} = ([0-9.]+) \+/- ([0-9.]+)", text, re.M).groups())) for m in ("acc", "acc_norm")}
n = re.search(r"(\d+) items", text).group(1)
print(f"kjv-last-word, {n} items (limit {limit}), {name}")
print(f"{'':10} {'lm-eval (flashlm serve)':>26} {'flashlm eval':>20} {'diff':>8}  within one stderr")
ok = True
for m in ("acc", "acc_norm"):
    d = h[m][0] - f[m][0]
    within = abs(d) <= max(h[m][1], f[m][1])
    ok &= within
    print(f"{m:10} {h[m][0]:>16.4f} +/- {h[m][1]:.4f} {f[m][0]:>10.4f} +/- {f[m][1]:.4f} {d:>+8.4f}  {'yes' if within else 'NO'}")
sys.exit(0 if ok else 1)
PY
