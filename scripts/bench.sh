#!/usr/bin/env bash
# Forwarding-rate benchmark (root): builds its own namespaces, drives the relay with mcrgen
# (paced) and trafgen (unpaced, from netsniff-ng), prints maximum lossless rate and output at
# full offered load for 1:1 and 1:5; --system kernel runs Linux multicast forwarding (smcroute)
# instead. Extra arguments go to the script, e.g. --scenarios 1to1 --mode socket.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -E bash "$0" "$@"; fi
  echo "bench: needs root (network namespaces)" >&2
  exit 1
fi
need=()
command -v trafgen >/dev/null 2>&1 || need+=(netsniff-ng)
command -v smcrouted >/dev/null 2>&1 || need+=(smcroute)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
bash scripts/setup.sh >/dev/null
# trafgen complains that it cannot raise core socket limits inside a namespace; that is harmless.
node dist/bench/forwarding-rate.js "$@" 2> >(grep -v 'Cannot set system socket memory' >&2)
