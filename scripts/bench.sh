#!/usr/bin/env bash
# Forwarding-rate benchmark (root): mcr against Linux kernel multicast forwarding (smcroute) and
# socat, in namespaces it builds per case, driven by mcrgen. Installs ethtool, smcroute, socat and
# perf when missing. Arguments go to the benchmark: npm run bench -- --help lists them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -E bash "$0" "$@"; fi
  echo "bench: needs root (network namespaces)" >&2
  exit 1
fi
bash scripts/setup.sh --bench-tools >/dev/null
exec node dist/bench/forwarding-rate.js "$@"
