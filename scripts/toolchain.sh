# Sourced by bin/klstore and scripts/test.sh: makes Node 24 and pnpm available and the
# workspace installed, installing on first use into a cache (idempotent, fast when done).
# KLSTORE_TOOLS overrides the tools' folder. Package managers keep their own caches in
# ~/.cache/klstore too, not in $HOME's defaults: npm's here (--cache), pnpm's store by
# the repository's .npmrc, and pip's and buf's (for everything the tests start) below.

KLSTORE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KLSTORE_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/klstore"
KLSTORE_TOOLS="${KLSTORE_TOOLS:-$KLSTORE_CACHE/tools}"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$KLSTORE_CACHE/pip}"
export BUF_CACHE_DIR="${BUF_CACHE_DIR:-$KLSTORE_CACHE/buf}"
KLSTORE_NODE_VERSION=24
KLSTORE_PNPM_VERSION=10.34.9

klstore_log() { echo "klstore: $*" >&2; }

klstore_ensure_node() {
  local node="$KLSTORE_TOOLS/node_modules/node/bin/node"
  if [ ! -x "$node" ] || [ "$("$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" != "$KLSTORE_NODE_VERSION" ]; then
    klstore_log "installing Node $KLSTORE_NODE_VERSION and pnpm into $KLSTORE_TOOLS (once)"
    mkdir -p "$KLSTORE_TOOLS"
    (cd "$KLSTORE_TOOLS" && npm install --cache "$KLSTORE_CACHE/npm" --no-audit --no-fund --loglevel=error \
      "node@$KLSTORE_NODE_VERSION" "pnpm@$KLSTORE_PNPM_VERSION" >&2)
  fi
  if [ ! -x "$KLSTORE_TOOLS/node_modules/.bin/pnpm" ]; then
    (cd "$KLSTORE_TOOLS" && npm install --cache "$KLSTORE_CACHE/npm" --no-audit --no-fund --loglevel=error \
      "pnpm@$KLSTORE_PNPM_VERSION" >&2)
  fi
  export PATH="$KLSTORE_TOOLS/node_modules/node/bin:$KLSTORE_TOOLS/node_modules/.bin:$KLSTORE_ROOT/node_modules/.bin:$PATH"
}

klstore_ensure_workspace() {
  local stamp="$KLSTORE_ROOT/node_modules/.klstore-installed"
  local want
  want="$(cd "$KLSTORE_ROOT" && git ls-files -co --exclude-standard -- .npmrc pnpm-lock.yaml pnpm-workspace.yaml patches '*package.json' \
    | grep -v node_modules | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    klstore_log "installing dependencies (pnpm install)"
    # A node_modules linked from another store (.npmrc moved it) is rebuilt without asking.
    (cd "$KLSTORE_ROOT" && pnpm install --frozen-lockfile --config.confirm-modules-purge=false --reporter=silent >&2)
    echo "$want" > "$stamp"
  fi
}

klstore_ensure_node
klstore_ensure_workspace
