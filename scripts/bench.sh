#!/usr/bin/env bash
# Forwarding-rate benchmark (root): builds its own namespaces, drives the relay with mcrgen
# (paced) and trafgen (unpaced, from netsniff-ng), prints maximum lossless rate and output at
# full offered load for 1:1 and 1:5. Extra arguments go to the script, e.g. --scenarios 1to1.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -E bash "$0" "$@"; fi
  echo "bench: needs root (network namespaces)" >&2
  exit 1
fi
if ! command -v trafgen >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq netsniff-ng >/dev/null
fi
bash scripts/setup.sh >/dev/null
# trafgen complains that it cannot raise core socket limits inside a namespace; that is harmless.
node dist/bench/forwarding-rate.js "$@" 2> >(grep -v 'Cannot set system socket memory' >&2)
