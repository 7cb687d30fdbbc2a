#!/usr/bin/env bash
# Runs every check and test: lint, typecheck, unit tests, and integration tests against a
# real S3 (SeaweedFS) that this script installs and starts itself, and stops afterwards.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/toolchain.sh"
cd "$KLSTORE_ROOT"

echo "== lint and typecheck"
biome check .
tsc -p tsconfig.json

echo "== API: buf lint, breaking changes, generated code up to date"
buf lint
# Every commit must stay wire-compatible with the one before it.
if git cat-file -e HEAD~1:proto/klstore/v1 2>/dev/null; then
  buf breaking proto --against ".git#ref=HEAD~1,subdir=proto"
fi
if git cat-file -e HEAD:proto/klstore/v1 2>/dev/null; then
  buf breaking proto --against ".git#ref=HEAD,subdir=proto"
fi
fresh="$(mktemp -d)"
scripts/generate.sh "$fresh"
diff -r "$fresh" packages/proto/src/gen || { echo "generated code is stale: run scripts/generate.sh" >&2; exit 1; }
rm -rf "$fresh"

echo "== test services"
started=""
for svc in s3 kafka redis; do
  if ! scripts/services.sh status "$svc" | grep -q running; then
    scripts/services.sh start "$svc"
    started="$started $svc"
  fi
done
trap '[ -n "$started" ] && scripts/services.sh stop $started' EXIT
services_env="$(scripts/services.sh env s3 kafka redis)"
eval "$services_env"

# Clients the end-to-end tests drive klstore with, besides its own: grpcurl, Python grpcio,
# and Go code generated from the protos (protoc-gen-go, protoc-gen-go-grpc).
KLSTORE_TEST_GRPCURL="$(scripts/test-tools.sh grpcurl)"
KLSTORE_TEST_PYTHON="$(scripts/test-tools.sh python)"
KLSTORE_TEST_GO_TOOLS="$(scripts/test-tools.sh go)"
export KLSTORE_TEST_GRPCURL KLSTORE_TEST_PYTHON KLSTORE_TEST_GO_TOOLS

echo "== tests"
# A hung test fails after 2 minutes instead of eating the CI budget. No --test-force-exit:
# with process isolation it can drop a file's last verdicts from the report, passing with a
# short count (nodejs/node#64833), so every test file must end on its own. One that does not
# (a leaked child process or socket) fails the run after 30 minutes, well inside CI's 90.
status=0
timeout --kill-after=30s 30m node --test --test-reporter=spec --test-concurrency=2 --test-timeout=120000 \
  "packages/*/src/**/*.test.ts" "packages/*/test/**/*.test.ts" "services/*/test/**/*.test.ts" "e2e/**/*.test.ts" "bench/test/**/*.test.ts" "$@" ||
  status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "tests did not end within 30 minutes: a test file keeps its process alive (see the last files above)" >&2
fi
exit "$status"
