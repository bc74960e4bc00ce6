#!/usr/bin/env bash
# Installs what mcr's demo and tests use, then builds. Idempotent: a second run only rebuilds.
#   - Debian packages: iproute2 (ip netns, veth) and procps (sysctl), when missing; with
#     --bench-tools also ethtool, smcroute and socat (the benchmark's placement and reference
#     relays) and perf (the relay-core profile); --test-tools adds tshark (the end-to-end tests
#     compare packets on the wire with it), systemd (systemd-analyze verify and security check
#     the unit, systemd-sysusers makes the service's accounts), util-linux (setpriv runs mcrd
#     with the unit's account and capabilities), strace (the system calls mcrd makes, against
#     the unit's filter), tmux (a real terminal for mcrctl top) and prometheus (promtool checks
#     /metrics; a real Prometheus server scrapes mcrd in a test) to those, since the suite runs
#     the benchmark's smoke mode and profile.
#   - npm packages from package-lock.json, when node_modules is missing or older than the lock.
#   - The account mcrd's workers run as by default, mcr (a system account, no login shell, no
#     home), when missing: any process of the workers' account can signal them, so they get one
#     of their own. Packages create it with systemd-sysusers instead. Never removed here.
#   - The TypeScript build into dist/ (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
need_bare=() # installed without recommended packages
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v sysctl >/dev/null 2>&1 || need_apt+=(procps)
need_tool() { command -v "$1" >/dev/null 2>&1 || need_apt+=("$2"); }
case "${1:-}" in
  --test-tools)
    need_tool tshark tshark
    need_tool systemd-analyze systemd
    need_tool systemd-sysusers systemd # the same package; apt-get takes a name twice
    need_tool setpriv util-linux
    need_tool strace strace
    need_tool tmux tmux
    # Without its recommendation prometheus-node-exporter, an exporter the tests do not use.
    command -v promtool >/dev/null 2>&1 || need_bare+=(prometheus)
    ;&
  --bench-tools)
    need_tool ethtool ethtool
    need_tool smcrouted smcroute
    need_tool socat socat
    need_tool perf linux-perf # the relay-core profile (bench/relay-core-profile.ts)
    ;;
  "") ;;
  *) echo "setup: unknown option $1 (--test-tools or --bench-tools)" >&2; exit 2 ;;
esac
if [ ${#need_apt[@]} -gt 0 ] || [ ${#need_bare[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} ${need_bare[*]}"
  apt-get update -qq
  if [ ${#need_apt[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
  if [ ${#need_bare[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_bare[@]}" >/dev/null
  fi
fi

account=mcr
if ! getent passwd "$account" >/dev/null; then
  create=(useradd --system --no-create-home --home-dir /nonexistent --shell "$(command -v nologin || echo /usr/sbin/nologin)"
    --comment "mcr relay workers")
  # A group of that name made earlier (by hand, or an account removed without it) is reused.
  if getent group "$account" >/dev/null; then create+=(--gid "$account"); else create+=(--user-group); fi
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: creating the system account $account, which mcrd's workers run as (${create[*]} $account)" >&2
    "${create[@]}" "$account"
  else
    echo "setup: mcrd's workers run as the account $account, which is missing; as root: ${create[*]} $account" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "setup: building"
bash scripts/build.sh
