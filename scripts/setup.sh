#!/usr/bin/env bash
# Installs what mcr's demo and tests use, then builds. Idempotent: a second run only rebuilds.
#   - Debian packages: iproute2 (ip netns, veth) and procps (sysctl), when missing; with
#     --bench-tools also ethtool, smcroute and socat (the benchmark's placement and reference
#     relays); --test-tools adds tshark (the end-to-end tests compare packets on the wire with
#     it) to those, since the suite runs the benchmark's smoke mode.
#   - npm packages from package-lock.json, when node_modules is missing or older than the lock.
#   - The TypeScript build into dist/.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v sysctl >/dev/null 2>&1 || need_apt+=(procps)
need_tool() { command -v "$1" >/dev/null 2>&1 || need_apt+=("$2"); }
case "${1:-}" in
  --test-tools) need_tool tshark tshark ;&
  --bench-tools)
    need_tool ethtool ethtool
    need_tool smcrouted smcroute
    need_tool socat socat
    ;;
  "") ;;
  *) echo "setup: unknown option $1 (--test-tools or --bench-tools)" >&2; exit 2 ;;
esac
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
