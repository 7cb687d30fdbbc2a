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
export KLSTORE_TEST_S3_ENDPOINT="http://127.0.0.1:${KLSTORE_S3_PORT:-8333}"
export KLSTORE_TEST_KAFKA_BOOTSTRAP="127.0.0.1:${KLSTORE_KAFKA_PORT:-9092}"
export KLSTORE_BENCH_REDIS="redis://127.0.0.1:${KLSTORE_REDIS_PORT:-6379}"
# The peers' own benchmark tools (bench/src/peers/own-tools.ts).
KLSTORE_BENCH_KAFKA_LIBS="$(scripts/services.sh path kafka)"
KLSTORE_BENCH_REDIS_ROOT="$(scripts/services.sh path redis)"
export KLSTORE_BENCH_KAFKA_LIBS KLSTORE_BENCH_REDIS_ROOT
exec node bench/src/main.ts "$@"
