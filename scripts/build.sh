#!/usr/bin/env bash
# The TypeScript build into dist/, incremental. tsc leaves behind the output of a source that
# was moved or deleted, and `node --test dist/test/e2e/` would still run such a file: those
# outputs are removed after each build.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
find dist -name '*.js' -print0 | while IFS= read -r -d '' output; do
  source="${output#dist/}"
  source="${source%.js}.ts"
  if [ ! -f "$source" ]; then
    echo "build: removing $output (its source $source is gone)"
    rm -f "$output" "$output.map"
  fi
done
