#!/usr/bin/env bash
# Tools the end-to-end tests drive klstore with, installed once into a cache (idempotent):
#   scripts/test-tools.sh grpcurl   -> prints the path of grpcurl (built with Go from the Go proxy)
#   scripts/test-tools.sh python    -> prints the path of a Python with grpcio, grpcio-tools,
#                                      grpcio-health-checking and grpcio-reflection (from PyPI)
#   scripts/test-tools.sh go        -> prints a folder holding go, protoc-gen-go and
#                                      protoc-gen-go-grpc (built with Go from the Go proxy)
# Go's module and build caches and its telemetry, and pip's cache, stay in this cache too
# (not ~/go, ~/.cache/go-build, ~/.config/go, ~/.cache/pip): Go runs through a wrapper that
# says where, which the Go client test uses as well, so its build finds the warm cache.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/klstore/test-tools"
GRPCURL_VERSION=1.9.3
GRPCIO_VERSION=1.76.0
PROTOC_GEN_GO_VERSION=1.36.12
PROTOC_GEN_GO_GRPC_VERSION=1.6.2

log() { echo "test-tools: $*" >&2; }

# Prints the path of a `go` that keeps GOPATH (modules), GOCACHE and telemetry in $CACHE/go;
# $1 names what needs it, for the message when there is no Go.
go_in_cache() {
  local real; real="$(command -v go || echo /usr/local/go/bin/go)"
  [ -x "$real" ] || { log "$1 needs Go; install Go (or skip it)"; exit 1; }
  local wrapper="$CACHE/go/go"
  mkdir -p "$CACHE/go"
  # GOENV stays the user's own file, so their proxy settings still apply.
  cat > "$wrapper.new" <<WRAPPER
#!/bin/sh
# Go with its caches in klstore's cache folder (written by scripts/test-tools.sh).
export GOENV="\${GOENV:-\${XDG_CONFIG_HOME:-\$HOME/.config}/go/env}"
export GOPATH="$CACHE/go/path" GOCACHE="$CACHE/go/build-cache" XDG_CONFIG_HOME="$CACHE/go/config"
# Writable module files, so that deleting the cache folder just works.
export GOFLAGS="-modcacherw \${GOFLAGS:-}"
exec "$real" "\$@"
WRAPPER
  chmod +x "$wrapper.new" && mv "$wrapper.new" "$wrapper"
  echo "$wrapper"
}

grpcurl() {
  local bin="$CACHE/grpcurl-$GRPCURL_VERSION/grpcurl"
  if [ ! -x "$bin" ]; then
    local go; go="$(go_in_cache "grpcurl (built from source: put grpcurl $GRPCURL_VERSION at $bin instead)")"
    log "building grpcurl $GRPCURL_VERSION with Go (once: 2 to 6 minutes on 2 cores, by load)"
    GOBIN="$(dirname "$bin")" GOFLAGS=-mod=mod "$go" install "github.com/fullstorydev/grpcurl/cmd/grpcurl@v$GRPCURL_VERSION" >&2
  fi
  echo "$bin"
}

python() {
  local venv="$CACHE/python-grpcio-$GRPCIO_VERSION"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import grpc_tools, grpc_health, grpc_reflection' 2>/dev/null; then
    log "installing grpcio $GRPCIO_VERSION and its tools into $venv (once)"
    python3 -m venv "$venv" >&2
    PIP_CACHE_DIR="${PIP_CACHE_DIR:-$CACHE/pip}" "$venv/bin/pip" install --quiet "grpcio==$GRPCIO_VERSION" "grpcio-tools==$GRPCIO_VERSION" \
      "grpcio-health-checking==$GRPCIO_VERSION" "grpcio-reflection==$GRPCIO_VERSION" >&2
  fi
  echo "$venv/bin/python"
}

go_tools() {
  local dir="$CACHE/go-protoc-$PROTOC_GEN_GO_VERSION-grpc-$PROTOC_GEN_GO_GRPC_VERSION"
  local go; go="$(go_in_cache "the Go client check")"
  # A folder built before the wrapper existed compiled into another cache: build it again.
  if [ ! -x "$dir/protoc-gen-go" ] || [ ! -x "$dir/protoc-gen-go-grpc" ] || [ "$(readlink "$dir/go")" != "$go" ]; then
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
