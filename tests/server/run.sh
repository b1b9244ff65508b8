#!/usr/bin/env bash
# Runs the server's integration tests (pytest) against a built flashlm binary:
#   tests/server/run.sh BUILD/flashlm MODEL.gguf [pytest args...]
# Exits 77 (ctest: skipped) when the test venv is missing; scripts/setup.sh makes it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py="$root/.venv/bin/python"
if [ ! -x "$py" ] || ! "$py" -c "import openai, httpx, pytest, websocket" 2>/dev/null; then
  echo "SKIPPED: server integration tests need $root/.venv with tests/server/requirements.txt (run scripts/setup.sh)"
  exit 77
fi
FLASHLM_BIN=$(realpath "$1")
FLASHLM_MODEL=$(realpath "$2")
export FLASHLM_BIN FLASHLM_MODEL
shift 2
cd "$here"
# -rs prints the reason of every skip (e.g. no chromium) in the summary.
exec "$py" -m pytest -q -rs -p no:cacheprovider "$@"
