#!/usr/bin/env bash
# Builds data/calibration.txt for `flashlm moefy`: the Book of Exodus (King James
# Version, public domain), one verse per line, verse references stripped. It must not
# overlap data/eval.txt (Genesis, the perplexity text), so MoE perplexities are measured
# on text the router never saw.
#
# Source: the Debian package `bible-kjv` (apt-get install -y bible-kjv).
#
# Usage: scripts/make_calibration_text.sh [output-path [range]]
#   default: data/calibration.txt, 'ex1:1-ex40:38'. The Flash factory's calibration text
#   (imatrix, prune) is data/factory-calibration.txt, Numbers and Deuteronomy
#   ('nu1:1-de34:12'): disjoint from the perplexity/KL text (Genesis) and from the eval
#   tasks (Exodus, Matthew; scripts/make_tasks.py).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${repo_root}/data/calibration.txt}"
range="${2:-ex1:1-ex40:38}"

if ! command -v bible >/dev/null 2>&1; then
  echo "error: 'bible' not found; install it with: apt-get install -y bible-kjv" >&2
  exit 1
fi

mkdir -p "$(dirname "${out}")"
tmp="$(mktemp "${out}.XXXXXX")"
trap 'rm -f "${tmp}"' EXIT

LC_ALL=C bible -f "${range}" \
  | LC_ALL=C sed -E 's/^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ //' > "${tmp}"

if [[ ! -s "${tmp}" ]]; then
  echo "error: bible printed nothing for ${range}" >&2
  exit 1
fi
mv "${tmp}" "${out}"
trap - EXIT
echo "wrote ${out} ($(wc -c < "${out}") bytes, sha256 $(sha256sum "${out}" | cut -d' ' -f1))"
