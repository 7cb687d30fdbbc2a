#!/usr/bin/env bash
# Runs every check and test: lint, typecheck, unit tests, and integration tests against a
# real S3 (SeaweedFS), Kafka and Redis that this script installs and starts itself (on
# free ports when another checkout's servers hold the usual ones), and stops afterwards.
# Arguments go to node --test (flags) or add test files. KLSTORE_TEST_* tune the run
# (scripts/test-runner/run-tests.ts; docs/operations.md, "Test services for developers").
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/toolchain.sh"
cd "$KLSTORE_ROOT"

# The test services' variables once had names klstore reads as settings (KLSTORE_S3_PORT
# is [s3] port): take them under their new names, and keep them from the tests' processes.
for old in S3_PORT KAFKA_PORT KAFKA_CONTROLLER_PORT REDIS_PORT SEAWEEDFS_VERSION; do
  old_var="KLSTORE_$old" new_var="KLSTORE_SERVICES_$old"
  if [ -n "${!old_var:-}" ]; then
    if [ -z "${!new_var:-}" ]; then
      echo "test.sh: $old_var is now $new_var; using it" >&2
      export "$new_var=${!old_var}"
    fi
    unset "$old_var"
  fi
done

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
# Stopped on every way out (the EXIT trap runs after an interrupt too, see below); a
# service goes on the list before it starts, so one interrupted while starting is stopped.
started=""
stop_started() { if [ -n "$started" ]; then scripts/services.sh stop $started || true; started=""; fi; }
trap stop_started EXIT
for svc in s3 kafka redis; do
  if ! scripts/services.sh status "$svc" | grep -q running; then
    started="$started $svc"
    scripts/services.sh start "$svc"
  fi
done
services_env="$(scripts/services.sh env s3 kafka redis)"
eval "$services_env"

# Clients the end-to-end tests drive klstore with, besides its own: grpcurl, Python grpcio,
# and Go code generated from the protos (protoc-gen-go, protoc-gen-go-grpc).
KLSTORE_TEST_GRPCURL="$(scripts/test-tools.sh grpcurl)"
KLSTORE_TEST_PYTHON="$(scripts/test-tools.sh python)"
KLSTORE_TEST_GO_TOOLS="$(scripts/test-tools.sh go)"
export KLSTORE_TEST_GRPCURL KLSTORE_TEST_PYTHON KLSTORE_TEST_GO_TOOLS

echo "== tests"
# The runner runs node --test in a process group of its own and ends that whole group
# however the run ends, stops a file that goes silent, and on a timeout or an interrupt
# names the files that had not finished (scripts/test-runner/run-tests.ts). No
# --test-force-exit: with process isolation it can drop a file's last verdicts from the
# report, passing with a short count (nodejs/node#64833). In the background, so that a
# SIGTERM to this script reaches the runner now rather than after the run.
KLSTORE_TEST_STARTED_SERVICES="$started" node scripts/test-runner/run-tests.ts "packages/*/src/**/*.test.ts" "packages/*/test/**/*.test.ts" \
  "services/*/test/**/*.test.ts" "e2e/**/*.test.ts" "bench/test/**/*.test.ts" "scripts/**/*.test.ts" "$@" &
runner=$!
for signal in INT TERM HUP; do trap "kill -$signal $runner 2>/dev/null || true" "$signal"; done
status=0
while :; do
  wait "$runner" && status=0 || status=$?
  kill -0 "$runner" 2>/dev/null || break # a trapped signal ended the wait, not the runner
done
exit "$status"
