#!/usr/bin/env bash
# Runs every check and test: lint, typecheck, unit tests, and integration tests against a
# real S3 (SeaweedFS) that this script installs and starts itself, and stops afterwards.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/toolchain.sh"
cd "$KLSTORE_ROOT"

echo "== lint and typecheck"
biome check .
tsc -p tsconfig.json

echo "== test services"
started=""
if ! scripts/services.sh status s3 | grep -q running; then
  scripts/services.sh start s3
  started="s3"
fi
trap '[ -n "$started" ] && scripts/services.sh stop $started' EXIT
export KLSTORE_TEST_S3_ENDPOINT="http://127.0.0.1:${KLSTORE_S3_PORT:-8333}"
export KLSTORE_TEST_S3_ACCESS_KEY=klstore KLSTORE_TEST_S3_SECRET_KEY=klstore-secret

echo "== tests"
# A hung test fails after 2 minutes instead of eating the CI budget.
node --test --test-reporter=spec --test-concurrency=2 --test-timeout=120000 \
  "packages/*/src/**/*.test.ts" "packages/*/test/**/*.test.ts" "$@"
