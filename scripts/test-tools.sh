#!/usr/bin/env bash
# Tools the end-to-end tests drive klstore with, installed once into a cache (idempotent):
#   scripts/test-tools.sh grpcurl   -> prints the path of grpcurl (built with Go from the Go proxy)
#   scripts/test-tools.sh python    -> prints the path of a Python with grpcio, grpcio-tools,
#                                      grpcio-health-checking and grpcio-reflection (from PyPI)
set -euo pipefail

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/klstore/test-tools"
GRPCURL_VERSION=1.9.3
GRPCIO_VERSION=1.76.0

log() { echo "test-tools: $*" >&2; }

grpcurl() {
  local bin="$CACHE/grpcurl-$GRPCURL_VERSION/grpcurl"
  if [ ! -x "$bin" ]; then
    local go; go="$(command -v go || echo /usr/local/go/bin/go)"
    [ -x "$go" ] || { log "grpcurl needs Go to build it; install Go or put grpcurl $GRPCURL_VERSION at $bin"; exit 1; }
    log "building grpcurl $GRPCURL_VERSION with $go (once, about a minute)"
    GOBIN="$(dirname "$bin")" GOFLAGS=-mod=mod "$go" install "github.com/fullstorydev/grpcurl/cmd/grpcurl@v$GRPCURL_VERSION" >&2
  fi
  echo "$bin"
}

python() {
  local venv="$CACHE/python-grpcio-$GRPCIO_VERSION"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import grpc_tools, grpc_health, grpc_reflection' 2>/dev/null; then
    log "installing grpcio $GRPCIO_VERSION and its tools into $venv (once)"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet "grpcio==$GRPCIO_VERSION" "grpcio-tools==$GRPCIO_VERSION" \
      "grpcio-health-checking==$GRPCIO_VERSION" "grpcio-reflection==$GRPCIO_VERSION" >&2
  fi
  echo "$venv/bin/python"
}

case "${1:-}" in
  grpcurl) grpcurl ;;
  python) python ;;
  *) echo "usage: $0 grpcurl|python" >&2; exit 2 ;;
esac
