#!/usr/bin/env python3
"""flashlm quantize and perplexity --kl-save/--kl-base end to end on a real model.

  1. the shipped model -> an F16 base (flashlm quantize --type F16);
  2. the base -> Q8_0 and Q4_0 (--pure) and Q4_K_M (llama-quantize's mix);
  3. the pure outputs read back with gguf-py (llama.cpp's own GGUF library): the input's
     metadata with llama.cpp's general.file_type, every weight matrix in the new type and
     byte for byte what gguf-py's independent numpy quantizers make from the base's
     values, every other tensor unchanged (gguf-py has no K-quant quantizers: those are
     checked against llama-quantize's bytes by test_factory's golden files);
  4. the Q4_0 and Q4_K_M files generate text in flashlm;
  5. KL divergence against the base: exactly 0 for the base itself, small for Q8_0,
     larger for Q4_K_M and larger again for Q4_0.

Needs the .venv of scripts/setup.sh (gguf, numpy); exits 77 (ctest: skipped) without it.
Usage: check_quantize.py FLASHLM MODEL.gguf EVAL.txt
"""
import os
import re
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFReader
    from gguf.quants import quantize
except ImportError as e:
    print(f"SKIPPED: needs gguf and numpy ({e}); run scripts/setup.sh", file=sys.stderr)
    sys.exit(77)


def run(*args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(map(str, args))}\n{r.stderr[-2000:]}")
    return r


def fields(reader):
    out = {}
    for k, f in reader.fields.items():
        if k.startswith("GGUF."):
            continue
        out[k] = [bytes(p).hex() for p in f.parts]
    return out


def check_file(path, base, qtype, file_type):
    out, src = GGUFReader(path), GGUFReader(base)
    fo, fs = fields(out), fields(src)
    for k in set(fo) | set(fs):
        if k in ("general.file_type", "general.quantization_version"):
            continue
        assert fo.get(k) == fs.get(k), f"{path}: metadata key {k} changed"
    assert int(out.fields["general.file_type"].parts[-1][0]) == file_type, "general.file_type"
    by_name = {t.name: t for t in src.tensors}
    n_quant = 0
    for t in out.tensors:
        s = by_name[t.name]
        assert list(t.shape) == list(s.shape), t.name
        matrix = len(s.shape) >= 2 and t.name.endswith("weight") and "ffn_gate_inp" not in t.name
        got = np.asarray(t.data).view(np.uint8).ravel()
        if not matrix:
            assert t.tensor_type == s.tensor_type and np.array_equal(got, np.asarray(s.data).view(np.uint8).ravel()), t.name
            continue
        assert t.tensor_type == qtype, f"{t.name}: {t.tensor_type.name}"
        want = quantize(np.asarray(s.data).astype(np.float32), qtype).view(np.uint8).ravel()
        assert np.array_equal(got, want), f"{t.name}: bytes differ from gguf-py's {qtype.name}"
        n_quant += 1
    assert n_quant > 0
    print(f"ok: {os.path.basename(path)}: {n_quant} matrices are gguf-py's {qtype.name} bytes, the rest unchanged")


def kl_mean(flashlm, model, text, kl_file):
    r = run(flashlm, "perplexity", "-m", model, "-f", text, "--kl-base", kl_file, "-t", "2")
    m = re.search(r"KL divergence vs base: mean ([0-9.e+-]+)", r.stdout)
    assert m, r.stdout
    return float(m.group(1))


def main():
    flashlm, model, text = sys.argv[1:4]
    with tempfile.TemporaryDirectory() as d:
        base = os.path.join(d, "base-f16.gguf")
        run(flashlm, "quantize", "-m", model, "-o", base, "--type", "F16")
        outs = {}
        for name, qtype, ftype in (("Q8_0", GGMLQuantizationType.Q8_0, 7), ("Q4_0", GGMLQuantizationType.Q4_0, 2)):
            outs[name] = os.path.join(d, f"{name}.gguf")
            run(flashlm, "quantize", "-m", base, "-o", outs[name], "--type", name.lower(), "--pure", "-t", "2")
            check_file(outs[name], base, qtype, ftype)
        outs["Q4_K_M"] = os.path.join(d, "Q4_K_M.gguf")
        run(flashlm, "quantize", "-m", base, "-o", outs["Q4_K_M"], "--type", "Q4_K_M", "-t", "2")
        for name in ("Q4_0", "Q4_K_M"):
            r = run(flashlm, "run", "-m", outs[name], "-p", "The capital of France is", "-n", "6", "--temp", "0")
            assert re.search(r"[A-Za-z]", r.stdout), (name, r.stdout)
        kl = os.path.join(d, "base.kl")
        run(flashlm, "perplexity", "-m", base, "-f", text, "-c", "128", "--chunks", "3", "--kl-save", kl, "-t", "2")
        self_kl = kl_mean(flashlm, base, text, kl)
        q8, q4 = kl_mean(flashlm, outs["Q8_0"], text, kl), kl_mean(flashlm, outs["Q4_0"], text, kl)
        q4km = kl_mean(flashlm, outs["Q4_K_M"], text, kl)
        print(f"KL vs base: self {self_kl}, Q8_0 {q8}, Q4_K_M {q4km}, Q4_0 {q4}")
        assert self_kl == 0.0, self_kl
        assert 0.0 < q8 < 0.05, q8
        assert 2 * q8 < q4km < q4, (q8, q4km, q4)
    print("quantize ok")


if __name__ == "__main__":
    main()
