#!/usr/bin/env python3
"""Golden files for src/tokenizer, from independent references.

  1. Token ids / detokenized text for the real models, from llama.cpp through
     llama-cpp-python (vocab_only), for every string of CORPUS and every
     (add_special, parse_special) combination.
  2. Pre-tokenizer splits (list of pieces) for the regex sets llama.cpp uses,
     computed with Python's `regex` module (Unicode \\p{L}/\\p{N}, \\s = White_Space),
     including pre-tokenizers of models we do not ship (qwen2, llama-bpe).

Run:  /opt/flashlm-ref/bin/python scripts/reference/make_tokenizer_golden.py
Writes tests/golden/tokenizer/{smollm2,gemma3,pretokenizer}.json.
Strings are stored as lists of byte values where they may not be valid UTF-8
(pieces, detokenized text), so JSON never re-encodes them.
"""
import ctypes
import json
import os
import sys

import regex

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "tokenizer")

CORPUS = [
    # empty / whitespace
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "a  b", "a   b",
    "  leading", "trailing  ", "tab\tsep\t\tx", "mixed \t\n \n\t end",
    "line1\nline2\n\nline3\n\n\n", " \t \n", "\n \n", "word \n", "  \n  word", "\r\r\n\n",
    "a \u00a0b", "x" + " " * 40 + "y", "\t\t\tdeep", "end\n",
    # plain text
    "Hello world", "Hello, world! How are you?", "The quick brown fox jumps over the lazy dog.",
    "hello", " hello", "  hello", "Hello World", "HELLO WORLD",
    # numbers
    "0", "123", "1234567890", "3.14159", "12,345,678.90", "phone: +1 (555) 123-4567",
    "x1y22z333", "2024-01-01T12:00:00Z", "\u0663\u0664\u0665 Arabic-Indic digits",
    "\u216b roman numeral", "\u00bd \u00be", " 42", "a 1 b 22 c 333 d 4444",
    # punctuation
    "!!!", "...", "?!?!", "a--b", "(parens) [brackets] {braces}", "\"quoted\" 'single'",
    "@#$%^&*", "hello...world", "a , b . c ! d ? e", "hello 'world' there", "~`|\\/",
    # contractions
    "it's", "I'm", "they're", "we've", "you'll", "he'd", "don't", "IT'S", "She'S WE'LL",
    "o'clock", "rock 'n' roll", "'s", " 're", "can't won't shouldn't've",
    # emoji
    "\U0001F600", "Hello \U0001F600 world", "\U0001F44D\U0001F3FD",
    "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466",
    "\U0001F3F3\ufe0f\u200d\U0001F308", "\u2764\ufe0f", "\U0001F1FA\U0001F1F8\U0001F1EF\U0001F1F5",
    # CJK and other scripts
    "\u4f60\u597d\uff0c\u4e16\u754c", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "\u4e2d\u6587English\u6df7\u5408123",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac", "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442",
    "\u05e2\u05d1\u05e8\u05d9\u05ea", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0e44\u0e17\u0e22",
    # accents and combining marks
    "caf\u00e9", "cafe\u0301", "na\u00efve r\u00e9sum\u00e9", "\u00d1and\u00fa", "Z\u00fcrich",
    "\ufb01 ligature", "e\u0301\u0302\u0303", "a\u0300\u0301\u0302\u0303\u0304",
    # code
    "def foo(x):\n    return x + 1\n", "int main() { printf(\"%d\\n\", 42); }",
    "for (i = 0; i < n; ++i) {\n\tsum += a[i];\n}", "<html><body><b>bold</b></body></html>",
    "SELECT * FROM t WHERE id = 1;", "    indented\n        more",
    "https://example.com/path?q=1&r=2", "user@example.com", "x = {'a': [1, 2], \"b\": None}",
    "#include <stdio.h>\n", "if (a && b || !c) return -1;",
    # special-token texts
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>", "text<|im_end|>more", "<|im_start|><|im_start|>", " <|im_end|> ",
    "<start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n", "<bos>hi", "<eos>",
    "<unused0>", "<mask>", "<b>bold</b>", "[multimodal]", "<start_of_image>", "<pad><unk>",
    "a<end_of_turn>b", "<|im_start", "im_end|>", "<repo_name>x<file_sep>",
    # long inputs
    "supercalifragilisticexpialidocious", "x" * 500, "antidisestablishmentarianism" * 10,
    "ab" * 300, "1" * 100, " " * 100, "\n" * 50, "=" * 200, "\U0001F642" * 50,
    "Pneumonoultramicroscopicsilicovolcanoconiosis",
    # odd (valid) unicode
    "\u200b zero width", "\u00a0nbsp", "\u3000ideographic space", "\u2028line sep",
    "\ufeffBOM", "\u0085 NEL", "\x1c\x1d\x1e\x1f", "nul\x00byte", "\x7f", "\x01\x02\x03",
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522",
    "\u03a9\u2248\u00e7\u221a\u222b", "\u2122\u00a9\u00ae", "\ue000 private use",
    "\U0010fffd", "\u01c5 titlecase", "\ufdfa", "\u0378 unassigned", "\uffff", "\U0001F600\U0001F3FB",
    "\u00b2\u00b3 superscripts", "\u2460\u2461 circled", "tab\u000bvt\u000cff",
]

# Pre-tokenizer regex sets exactly as Hugging Face / llama.cpp define them; each
# list is applied in order, every regex splitting every piece of the previous
# one, and text between matches is kept as its own piece.
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
PRETOKENIZERS = {
    "gpt-2": [GPT2],
    "smollm": [r"\p{N}", GPT2],
    "llama-bpe": [r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "qwen2": [r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
}


def regex_split(text, patterns):
    pieces = [text] if text else []
    for pat in patterns:
        rx = regex.compile(pat)
        out = []
        for piece in pieces:
            pos = 0
            for m in rx.finditer(piece):
                if m.start() > pos:
                    out.append(piece[pos:m.start()])
                if m.end() > m.start():
                    out.append(m.group(0))
                pos = m.end()
            if pos < len(piece):
                out.append(piece[pos:])
        pieces = out
    return pieces


def blist(b):
    return list(b)


def model_golden(path, llama_cpp):
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)

    def tokenize(data, add_special, parse_special):
        n_max = len(data) + 16
        buf = (llama_cpp.llama_token * n_max)()
        n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, n_max, add_special, parse_special)
        assert n >= 0, n
        return [int(buf[i]) for i in range(n)]

    def detokenize(ids, remove_special, unparse_special):
        arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
        size = 64 + 64 * len(ids)
        out = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), out, size, remove_special, unparse_special)
        assert n >= 0, n
        return out.raw[:n]

    def piece(tok, special):
        out = ctypes.create_string_buffer(256)
        n = llama_cpp.llama_token_to_piece(vocab, tok, out, 256, 0, special)
        assert n >= 0, n
        return out.raw[:n]

    cases = []
    for text in CORPUS:
        data = text.encode("utf-8")
        case = {"text": blist(data)}
        for add_special in (False, True):
            for parse_special in (False, True):
                key = "ids_%s_%s" % ("add" if add_special else "noadd", "parse" if parse_special else "noparse")
                case[key] = tokenize(data, add_special, parse_special)
        # Reference detokenizations: plain ids, control tokens hidden and rendered.
        ids = case["ids_noadd_noparse"]
        case["detok_plain"] = blist(detokenize(ids, False, False))
        ids = case["ids_add_parse"]
        case["detok_special_hidden"] = blist(detokenize(ids, False, False))
        case["detok_special_rendered"] = blist(detokenize(ids, False, True))
        cases.append(case)

    # Digest of every token's piece (FNV-1a 64 over 4-byte little-endian length + bytes),
    # so the test checks all pieces without a huge file; plus explicit samples.
    def fnv(special):
        h = 0xcbf29ce484222325
        for t in range(n_vocab):
            p = piece(t, special)
            for b in len(p).to_bytes(4, "little") + p:
                h ^= b
                h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
        return "%016x" % h

    sample_ids = sorted(set(list(range(0, min(n_vocab, 300))) + list(range(n_vocab - 50, n_vocab)) +
                            list(range(1000, n_vocab, max(1, n_vocab // 500)))))
    samples = [{"id": t, "piece": blist(piece(t, False)), "piece_special": blist(piece(t, True))}
               for t in sample_ids]
    eog = [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    return {
        "model": os.path.basename(path),
        "reference": "llama-cpp-python %s (llama.cpp), vocab_only" % llama_cpp.__version__,
        "n_vocab": n_vocab,
        "bos": int(llama_cpp.llama_vocab_bos(vocab)),
        "eos": int(llama_cpp.llama_vocab_eos(vocab)),
        "eot": int(llama_cpp.llama_vocab_eot(vocab)),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
        "eog_ids": eog,
        "piece_digest": fnv(False),
        "piece_special_digest": fnv(True),
        "piece_samples": samples,
        "cases": cases,
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    pre = {"reference": "python regex %s, unicodedata %s" % (regex.__version__, __import__("unicodedata").unidata_version),
           "patterns": PRETOKENIZERS, "cases": []}
    for text in CORPUS:
        case = {"text": blist(text.encode("utf-8"))}
        for name, pats in PRETOKENIZERS.items():
            case[name] = [blist(p.encode("utf-8")) for p in regex_split(text, pats)]
        pre["cases"].append(case)
    with open(os.path.join(OUT, "pretokenizer.json"), "w") as f:
        json.dump(pre, f, separators=(",", ":"))

    import llama_cpp
    models = [("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2.json"),
              ("gemma-3-270m-q4_k_m.gguf", "gemma3.json")]
    for model, out in models:
        path = os.path.join(ROOT, "models", model)
        if not os.path.exists(path):
            print("missing model, skipped:", path, file=sys.stderr)
            continue
        g = model_golden(path, llama_cpp)
        with open(os.path.join(OUT, out), "w") as f:
            json.dump(g, f, separators=(",", ":"))
        print("wrote", out, len(g["cases"]), "cases")


if __name__ == "__main__":
    main()
