#!/usr/bin/env bash
# Tools the end-to-end tests drive klstore with, installed once into a cache (idempotent):
#   scripts/test-tools.sh grpcurl   -> prints the path of grpcurl (built with Go from the Go proxy)
#   scripts/test-tools.sh python    -> prints the path of a Python with grpcio, grpcio-tools,
#                                      grpcio-health-checking and grpcio-reflection (from PyPI)
#   scripts/test-tools.sh go        -> prints a folder holding go, protoc-gen-go and
#                                      protoc-gen-go-grpc (built with Go from the Go proxy)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/klstore/test-tools"
GRPCURL_VERSION=1.9.3
GRPCIO_VERSION=1.76.0
PROTOC_GEN_GO_VERSION=1.36.12
PROTOC_GEN_GO_GRPC_VERSION=1.6.2

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

go_tools() {
  local dir="$CACHE/go-protoc-$PROTOC_GEN_GO_VERSION-grpc-$PROTOC_GEN_GO_GRPC_VERSION"
  local go; go="$(command -v go || echo /usr/local/go/bin/go)"
  [ -x "$go" ] || { log "the Go client check needs Go; install Go or skip it"; exit 1; }
  if [ ! -x "$dir/protoc-gen-go" ] || [ ! -x "$dir/protoc-gen-go-grpc" ]; then
    log "building protoc-gen-go $PROTOC_GEN_GO_VERSION and protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC_VERSION with $go (once)"
    GOBIN="$dir" GOFLAGS=-mod=mod "$go" install "google.golang.org/protobuf/cmd/protoc-gen-go@v$PROTOC_GEN_GO_VERSION" >&2
    GOBIN="$dir" GOFLAGS=-mod=mod "$go" install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@v$PROTOC_GEN_GO_GRPC_VERSION" >&2
    # The Go check's dependencies, compiled once into Go's build cache: the test then builds in seconds.
    (cd "$ROOT/e2e/go" && "$go" build google.golang.org/grpc google.golang.org/genproto/googleapis/rpc/errdetails) >&2
  fi
  ln -sf "$go" "$dir/go"
  echo "$dir"
}

case "${1:-}" in
  grpcurl) grpcurl ;;
  python) python ;;
  go) go_tools ;;
  *) echo "usage: $0 grpcurl|python|go" >&2; exit 2 ;;
esac
