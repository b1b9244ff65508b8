#!/usr/bin/env bash
# Builds data/eval.txt: the Book of Genesis (King James Version, public
# domain) as plain text, one verse per line, verse references stripped.
# About 197 KB. The perplexity goldens in tests/golden/ppl/ were computed on
# exactly this file, so its sha256 is checked here.
#
# Source: the Debian package `bible-kjv` (it pulls in `bible-kjv-text`, the
# data file, and provides the `bible` reader that decompresses it):
#   sudo apt-get install -y bible-kjv
#
# Usage: scripts/make_eval_text.sh [output-path]   (default: data/eval.txt)
set -euo pipefail

readonly EXPECTED_SHA256="e7b72bfd25d395f55a3bd0c1ada5cbf3fd627f61734d239503d834ac9b5e23b6"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${repo_root}/data/eval.txt}"

if ! command -v bible >/dev/null 2>&1; then
  echo "error: 'bible' not found; install it with: apt-get install -y bible-kjv" >&2
  exit 1
fi

mkdir -p "$(dirname "${out}")"
tmp="$(mktemp "${out}.XXXXXX")"
trap 'rm -f "${tmp}"' EXIT

# -f prints one verse per line as "Ge1:1 text" regardless of terminal width;
# the sed strips the reference prefix. LC_ALL=C keeps sed byte-exact.
LC_ALL=C bible -f 'gen1:1-gen50:26' \
  | LC_ALL=C sed -E 's/^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ //' > "${tmp}"

actual="$(sha256sum "${tmp}" | cut -d' ' -f1)"
if [[ "${actual}" != "${EXPECTED_SHA256}" ]]; then
  echo "error: ${out}: sha256 ${actual}, expected ${EXPECTED_SHA256}" >&2
  echo "       (different bible-kjv package version?)" >&2
  exit 1
fi

mv "${tmp}" "${out}"
trap - EXIT
echo "wrote ${out} ($(wc -c < "${out}") bytes, sha256 ${actual})"
