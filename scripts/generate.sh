#!/usr/bin/env bash
# Regenerates packages/proto/src/gen from proto/ and from google.rpc's status and error
# details (shipped by the google-proto-files package), with protobuf-es.
#   scripts/generate.sh [OUT_DIR]   (default packages/proto/src/gen)
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/toolchain.sh"
cd "$KLSTORE_ROOT"
out="$(realpath -m "${1:-packages/proto/src/gen}")"
rm -rf "$out"
template="$(sed "s|out: packages/proto/src/gen|out: $out|" buf.gen.yaml)"
buf generate proto --template "$template"
# buf does not follow the node_modules symlink pnpm makes, and resolves --path against
# the working directory: generate from inside the resolved folder.
cd "$(readlink -f node_modules/google-proto-files)"
buf generate --template "$template" --path google/rpc/status.proto --path google/rpc/error_details.proto
# grpc.health.v1 as grpc-health-check ships it: served by reflection beside klstore's own
# files, so grpcurl can call the health service by name.
cd "$(readlink -f "$KLSTORE_ROOT/packages/service-runtime/node_modules/grpc-health-check")/proto"
buf generate --template "$template" --path health/v1/health.proto
