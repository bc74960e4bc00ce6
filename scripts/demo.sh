#!/usr/bin/env bash
# A live demo of mcr: three hosts made of network namespaces,
#
#   sender (eth0 10.200.1.1) ── (in0) relay (out0, out1) ── (eth0, eth1) receiver
#
# mcrd runs on the relay; mcrctl adds two rules; mcrgen sends to the relay's input and verifies
# what arrives at the receiver; the counters are shown; everything is removed at the end, also
# on Ctrl-C or failure. Needs root. Sends traffic only inside the namespaces it creates.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -E bash "$0" "$@"; fi
  echo "demo: needs root (it creates network namespaces); run as root" >&2
  exit 1
fi
bash scripts/setup.sh >/dev/null

tag="mcrdemo$$"
SND="$tag-sender" RLY="$tag-relay" RCV="$tag-receiver"
work=$(mktemp -d "/tmp/$tag.XXXX")
SOCK="$work/mcrd.sock"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "$SND" "$RLY" "$RCV"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
  echo "demo: cleaned up (namespaces, processes, socket)"
}
trap cleanup EXIT

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

bold "Building three hosts: sender → relay → receiver (network namespaces, veth links)"
for ns in "$SND" "$RLY" "$RCV"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$SND" link add eth0 type veth peer name in0 netns "$RLY"
ip -n "$RLY" link add out0 type veth peer name eth0 netns "$RCV"
ip -n "$RLY" link add out1 type veth peer name eth1 netns "$RCV"
ip -n "$SND" addr add 10.200.1.1/24 dev eth0
ip -n "$RLY" addr add 10.200.1.2/24 dev in0
ip -n "$RLY" addr add 10.200.10.1/24 dev out0
ip -n "$RLY" addr add 10.200.11.1/24 dev out1
ip -n "$RCV" addr add 10.200.10.2/24 dev eth0
ip -n "$RCV" addr add 10.200.11.2/24 dev eth1
for l in "$SND eth0" "$RLY in0" "$RLY out0" "$RLY out1" "$RCV eth0" "$RCV eth1"; do
  set -- $l; ip -n "$1" link set "$2" up
done
# Strict reverse-path filtering on the relay's input, and a sender the relay has no route back
# to: the kernel drops this traffic; mcr relays it anyway because it reads below the IP stack.
ip -n "$SND" addr add 10.201.0.7/32 dev eth0
ip -n "$SND" route replace 239.0.0.0/8 dev eth0 src 10.201.0.7
ip netns exec "$RLY" sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.in0.rp_filter=1
echo "sender 10.200.1.1 (and 10.201.0.7, unroutable from the relay) | relay in0 10.200.1.2, out0 10.200.10.1, out1 10.200.11.1 | receiver eth0 10.200.10.2, eth1 10.200.11.2"

bold "Starting mcrd on the relay"
printf '$ ip netns exec %s bin/mcrd --socket %s\n' "$RLY" "$SOCK"
ip netns exec "$RLY" bin/mcrd --socket "$SOCK" --log-level warn &
pids+=($!)
for _ in $(seq 50); do bin/mcrctl --socket "$SOCK" ping >/dev/null 2>&1 && break; sleep 0.1; done
run bin/mcrctl --socket "$SOCK" ping
run bin/mcrctl --socket "$SOCK" workers

bold "Adding rules"
run bin/mcrctl --socket "$SOCK" add --input-interface in0 --input-group 239.1.1.1 --input-port 5000 \
  --outputs 239.10.0.1:6000:out0 --name camera-1
run bin/mcrctl --socket "$SOCK" add --input-interface in0 --input-group 239.1.1.2 --input-port 5000 \
  --outputs 239.10.0.2:6000:out0,239.11.0.2:6002:out1,10.200.11.2:7000:out1 --name feed-2
run bin/mcrctl --socket "$SOCK" list

bold "Receivers join the output groups on the receiver host"
rx() { # FILE ARGS...: a verifying receiver that expects exactly --count packets
  local out=$1; shift
  ip netns exec "$RCV" bin/mcrgen recv "$@" --timeout 30 >"$work/$out" 2>/dev/null &
  pids+=($!)
}
rx r1 --interface eth0 --group 239.10.0.1 --port 6000 --count 15000 --expect 15000
rx r2 --interface eth0 --group 239.10.0.2 --port 6000 --count 9000 --expect 9000
rx r3 --interface eth1 --group 239.11.0.2 --port 6002 --count 9000 --expect 9000
rx r4 --interface eth1 --group 10.200.11.2 --port 7000 --count 9000 --expect 9000
receivers=("${pids[@]:1}")
sleep 1
echo "4 receivers listening: 239.10.0.1:6000 and 239.10.0.2:6000 on eth0, 239.11.0.2:6002 and unicast :7000 on eth1"

bold "Sending for 3 s: 5000 pps to camera-1, 3000 pps to feed-2, and 500 packets to a group with no rule"
printf '$ ip netns exec %s bin/mcrgen send --interface eth0 --group 239.1.1.1 --port 5000 --rate 5000 --size 1316 --count 15000\n' "$SND"
ip netns exec "$SND" bin/mcrgen send --interface eth0 --group 239.1.1.1 --port 5000 --rate 5000 --size 1316 --count 15000 >"$work/s1" &
s1=$!
ip netns exec "$SND" bin/mcrgen send --interface eth0 --group 239.1.1.2 --port 5000 --rate 3000 --size 512 --count 9000 >/dev/null &
s2=$!
ip netns exec "$SND" bin/mcrgen send --interface eth0 --group 239.1.1.99 --port 5000 --rate 1000 --size 100 --count 500 >/dev/null

bold "Counters on the relay while traffic flows"
sleep 1.5
run bin/mcrctl --socket "$SOCK" stats
wait "$s1" "$s2"
cat "$work/s1"

bold "What the receivers verified (sequence numbers and checksums in every payload)"
status=0
for i in "${!receivers[@]}"; do
  if wait "${receivers[$i]}"; then :; else status=1; fi
  cat "$work/r$((i + 1))"
  echo
done
pids=("${pids[0]}")

bold "Final counters: every frame is forwarded or dropped with a reason"
sleep 1.2
run bin/mcrctl --socket "$SOCK" stats

bold "Removing a rule"
run bin/mcrctl --socket "$SOCK" remove --name camera-1
run bin/mcrctl --socket "$SOCK" list

bold "Stopping mcrd (SIGTERM: workers drained, final counters logged, socket removed)"
kill -TERM "${pids[0]}"
wait "${pids[0]}" || true
pids=()
[ -e "$SOCK" ] && echo "socket still present!" || echo "control socket removed"
if [ "$status" -eq 0 ]; then echo; echo "demo: every packet arrived, intact and in order"; else echo "demo: a receiver reported a problem (see above)"; fi
exit "$status"
