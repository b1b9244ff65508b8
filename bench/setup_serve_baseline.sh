#!/usr/bin/env bash
# Makes the Python environment bench/serve_load.py uses for the llama.cpp side:
# llama-cpp-python's OpenAI-compatible server, built from source with this CPU's
# native flags (as a user who installs it from PyPI gets), plus the openai client
# and gguf-py for the load generator itself.
# Usage: bench/setup_serve_baseline.sh [venv-dir]   (default /opt/flashlm-bench)
set -euo pipefail
venv="${1:-/opt/flashlm-bench}"
python3 -m venv "${venv}"
CMAKE_ARGS="-DGGML_NATIVE=ON" "${venv}/bin/pip" install --no-binary llama-cpp-python \
  "llama-cpp-python[server]==0.3.36" "openai==3.51.0" "httpx==0.28.1" "gguf==0.19.0"
echo "done: LLAMA_PYTHON=${venv}/bin/python"
