#!/usr/bin/env bash
# Installs what mcr's demo and tests use, then builds. Idempotent: a second run only rebuilds.
#   - Debian packages: iproute2 (ip netns, veth) and procps (sysctl), when missing; with
#     --test-tools also tshark (the end-to-end tests compare packets on the wire with it).
#   - npm packages from package-lock.json, when node_modules is missing or older than the lock.
#   - The TypeScript build into dist/.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v sysctl >/dev/null 2>&1 || need_apt+=(procps)
if [ "${1:-}" = "--test-tools" ]; then command -v tshark >/dev/null 2>&1 || need_apt+=(tshark); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "setup: building"
npx tsc -p tsconfig.json
