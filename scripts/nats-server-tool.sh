#!/usr/bin/env bash
# Builds (once) nats-server, the binary that `fnmesh cluster` runs for the official `nats` image (the chart's
# bundled NATS), and caches it outside the repository, keyed by version:
#   $root/nats-server-v<version>/bin/nats-server    with root = ${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}
# The version is the one definition in common/nats-server-version.ts (NATS_SERVER_VERSION). nats-server is built
# from the Go module proxy (`go install github.com/nats-io/nats-server/v2@v<version>`; main.go is at the module
# root), about a minute cold.
#
#   bash scripts/nats-server-tool.sh              build when missing, then print the path (NATS_SERVER_BIN=...)
#   bash scripts/nats-server-tool.sh --print-env  only print the path, for eval
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=go-tool-lib.sh
. "$here/go-tool-lib.sh"

version_file="$here/../common/nats-server-version.ts"
NATS_SERVER_VERSION=$(sed -n "s/^export const NATS_SERVER_VERSION = '\([0-9][0-9.]*\)';$/\1/p" "$version_file")
[ -n "$NATS_SERVER_VERSION" ] || {
  echo "nats-server-tool: no NATS_SERVER_VERSION = '<x.y.z>' line in $version_file; restore it" >&2
  exit 1
}
go_tool_main nats-server-tool nats-server "v$NATS_SERVER_VERSION" \
  "github.com/nats-io/nats-server/v2@v$NATS_SERVER_VERSION" "-s -w" NATS_SERVER_BIN "$@"
