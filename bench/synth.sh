#!/usr/bin/env bash
# Prints the wall time of a clean `npm run synth` and the resource count of each
# template it writes. A figure, not a test: compare it with docs/development.md (synth near 10 s).
#
#   bash bench/synth.sh                           # default config
#   bash bench/synth.sh -c config=config/lean.json
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s%N)
npm run --silent synth -- "$@" >/dev/null
end=$(date +%s%N)

printf 'synth wall time: %d.%d s\n' $(((end - start) / 1000000000)) $(((end - start) / 100000000 % 10))
for template in cdk.out/*.template.json; do
  count=$(node -e 'const t=require(process.argv[1]); console.log(Object.keys(t.Resources||{}).length)' "$(pwd)/$template")
  printf '%-50s %4d resources\n' "$(basename "$template")" "$count"
done
