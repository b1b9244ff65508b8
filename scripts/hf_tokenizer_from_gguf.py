#!/usr/bin/env python3
"""A GGUF model's tokenizer as a Hugging Face tokenizer directory, by transformers' own
GGUF -> Hugging Face conversion.

  hf_tokenizer_from_gguf.py GGUF OUTDIR

Writes OUTDIR/tokenizer.json, tokenizer_config.json (and chat_template.jinja where the
GGUF has one): exactly what

  AutoTokenizer.from_pretrained(DIR, gguf_file=NAME).save_pretrained(OUTDIR)

writes with torch installed (checked byte for byte on SmolLM2-135M-Instruct and
gemma-3-270m with transformers 5.25.0 / tokenizers 0.23.3), without needing torch:

  * transformers' GGUF reader module imports torch at module level for tensor dtypes
    that reading metadata never touches; when torch is absent the module is imported
    against a stand-in whose attributes are inert classes, and the stand-in is removed
    again at once (nothing else sees it);
  * AutoTokenizer's GGUF branch builds the model config through a torch-only loader
    for most architectures, only to pick the tokenizer class; the class is picked here
    as AutoTokenizer ends up picking it: the architecture's registered tokenizer
    (gemma3 -> GemmaTokenizer) or else TokenizersBackend (llama -> TokenizersBackend).

Run with the project's .venv (scripts/setup.sh calls it); needs transformers and
tokenizers as pinned in tests/server/requirements.txt. Needs no network (checked with
none at all); HF_HUB_OFFLINE is not set because transformers would then write
"local_files_only": true into tokenizer_config.json, unlike the reference route.
"""
import importlib.util
import os
import sys
import types


def import_gguf_reader():
    if importlib.util.find_spec("torch") is not None:
        return
    import transformers  # noqa: F401  (its availability checks see the real environment)

    stub = types.ModuleType("torch")
    stub.__getattr__ = lambda name: type(name, (), {})
    sys.modules["torch"] = stub
    try:
        import transformers.integrations.gguf.reader  # noqa: F401
    finally:
        del sys.modules["torch"]


def main():
    if len(sys.argv) != 3:
        print("usage: hf_tokenizer_from_gguf.py GGUF OUTDIR", file=sys.stderr)
        return 2
    gguf_path, out_dir = os.path.abspath(sys.argv[1]), sys.argv[2]
    if not os.path.isfile(gguf_path):
        print(f"hf_tokenizer_from_gguf: {gguf_path} is not a file", file=sys.stderr)
        return 1
    import_gguf_reader()
    from transformers.integrations.gguf import read_gguf_metadata
    from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING_NAMES, tokenizer_class_from_name

    metadata, _ = read_gguf_metadata(gguf_path)
    arch = metadata["general.architecture"]
    class_name = TOKENIZER_MAPPING_NAMES.get(arch) or "TokenizersBackend"
    cls = tokenizer_class_from_name(class_name)
    if cls is None:
        print(f"hf_tokenizer_from_gguf: transformers has no tokenizer class {class_name} for {arch}", file=sys.stderr)
        return 1
    tok = cls.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path))
    # Written to a sibling folder first and tokenizer.json moved in last, so an
    # interrupted run never leaves a tokenizer.json that setup would take as done.
    tmp = out_dir.rstrip("/") + ".partial"
    tok.save_pretrained(tmp)
    os.makedirs(out_dir, exist_ok=True)
    for name in sorted(os.listdir(tmp), key=lambda n: n == "tokenizer.json"):
        os.replace(os.path.join(tmp, name), os.path.join(out_dir, name))
    os.rmdir(tmp)
    print(f"hf_tokenizer_from_gguf: {arch} -> {class_name}, wrote {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
