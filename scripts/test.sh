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
echo "test: unit and end-to-end tests"
# One test file at a time: the end-to-end tests measure exact packet counts and share two cores.
node --test --test-concurrency=1 --test-reporter=spec dist/test/unit/ dist/test/e2e/
