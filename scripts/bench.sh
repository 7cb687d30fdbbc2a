#!/usr/bin/env bash
# Runs every benchmark scenario in one run and writes docs/benchmarks.md and its charts.
#   scripts/bench.sh           the full run
#   scripts/bench.sh --smoke   a few hundred items per scenario (the test suite runs this)
# Starts SeaweedFS, Kafka and Redis (scripts/services.sh) if they are not running.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/toolchain.sh"
cd "$KLSTORE_ROOT"
for svc in s3 kafka redis; do
  scripts/services.sh status "$svc" | grep -q running || scripts/services.sh start "$svc" >/dev/null
done
services_env="$(scripts/services.sh env s3 kafka redis)"
eval "$services_env"
exec node bench/src/main.ts "$@"
