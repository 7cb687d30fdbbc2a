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

# The major version of the Node installed in the cache, from its package.json, read with bash
# builtins: this runs on every start, where starting node just to ask cost ~25 ms.
klstore_installed_node_major() {
  KLSTORE_INSTALLED_NODE_MAJOR=""
  local line
  [ -f "$KLSTORE_TOOLS/node_modules/node/package.json" ] || return 0
  while IFS= read -r line; do
    if [[ $line =~ ^[[:space:]]*\"version\":[[:space:]]*\"([0-9]+)\. ]]; then
      KLSTORE_INSTALLED_NODE_MAJOR="${BASH_REMATCH[1]}"
      return 0
    fi
  done <"$KLSTORE_TOOLS/node_modules/node/package.json"
}

klstore_ensure_node() {
  local node="$KLSTORE_TOOLS/node_modules/node/bin/node"
  klstore_installed_node_major
  if [ ! -x "$node" ] || [ "$KLSTORE_INSTALLED_NODE_MAJOR" != "$KLSTORE_NODE_VERSION" ]; then
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

# True when an input of `pnpm install` is newer than the stamp file $1: bash tests only, no
# process started. The folders are pnpm-workspace.yaml's; a new package changes the lockfile.
klstore_install_inputs_newer() {
  local f
  for f in "$KLSTORE_ROOT"/{package.json,pnpm-lock.yaml,pnpm-workspace.yaml} "$KLSTORE_ROOT"/patches/* \
    "$KLSTORE_ROOT"/{packages,services}/*/package.json "$KLSTORE_ROOT"/{e2e,bench}/package.json; do
    if [ "$f" -nt "$1" ]; then return 0; fi
  done
  return 1
}

klstore_ensure_workspace() {
  local stamp="$KLSTORE_ROOT/node_modules/.klstore-installed"
  # On every start: nothing touched since the last install (a checkout or an edit makes its
  # files newer), so the inputs are not hashed (a pipeline of processes, ~10 ms).
  if [ -f "$stamp" ] && ! klstore_install_inputs_newer "$stamp"; then return 0; fi
  local want
  want="$(cd "$KLSTORE_ROOT" && git ls-files -co --exclude-standard -- .npmrc pnpm-lock.yaml pnpm-workspace.yaml patches '*package.json' \
    | grep -v node_modules | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    klstore_log "installing dependencies (pnpm install)"
    # A node_modules linked from another store (.npmrc moved it) is rebuilt without asking.
    (cd "$KLSTORE_ROOT" && pnpm install --frozen-lockfile --config.confirm-modules-purge=false --reporter=silent >&2)
    echo "$want" > "$stamp"
  else
    touch "$stamp" # newer files, same content (a checkout): the quick check passes again
  fi
}

klstore_ensure_node
klstore_ensure_workspace
