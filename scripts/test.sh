#!/usr/bin/env bash
# The whole test suite: lint, unit tests, and end-to-end tests in network namespaces
# (these need root: they create namespaces and veth pairs and run mcrd).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -E bash "$0" "$@"; fi
  echo "test: the end-to-end tests need root (network namespaces); run as root" >&2
  exit 1
fi
bash scripts/setup.sh --test-tools
echo "test: lint"
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --list-different .; echo "test: run npm run format" >&2; exit 1; }
# The end-to-end tests build namespaces with names of their own, so two files can run side by
# side; those in test/e2e-timed/ judge a time or a rate (a worker back within a second, a paced
# generator, the benchmark's smoke run) and run alone, after the others. Every group runs even
# when one before it failed, so one run shows every failure.
status=0
# Unit tests one file at a time: a few bound how long the control server lets its event loop
# stall, which another process on the same two cores would stretch.
echo "test: unit tests, one file at a time"
node --test --test-concurrency=1 --test-reporter=spec dist/test/unit/ || status=1
echo "test: end-to-end tests, two files at a time"
node --test --test-concurrency=2 --test-reporter=spec dist/test/e2e/ || status=1
echo "test: end-to-end tests that judge times and rates, one file at a time"
node --test --test-concurrency=1 --test-reporter=spec dist/test/e2e-timed/ || status=1
if [ "$status" -ne 0 ]; then echo "test: FAILED (see the failures above)" >&2; fi
exit "$status"
