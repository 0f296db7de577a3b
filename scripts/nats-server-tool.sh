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
version_file="$here/../common/nats-server-version.ts"
NATS_SERVER_VERSION=$(sed -n "s/^export const NATS_SERVER_VERSION = '\([0-9][0-9.]*\)';$/\1/p" "$version_file")
[ -n "$NATS_SERVER_VERSION" ] || {
  echo "nats-server-tool: no NATS_SERVER_VERSION = '<x.y.z>' line in $version_file; restore it" >&2
  exit 1
}

root="${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}"
dir="$root/nats-server-v$NATS_SERVER_VERSION"
bin="$dir/bin/nats-server"

print_env() { echo "NATS_SERVER_BIN=$bin"; }

if [ "${1:-}" = "--print-env" ]; then print_env; exit 0; fi
if [ $# -gt 0 ]; then echo "usage: $0 [--print-env]" >&2; exit 2; fi

if [ ! -x "$bin" ]; then
  command -v go >/dev/null 2>&1 || { echo "nats-server-tool: Go is needed to build nats-server v$NATS_SERVER_VERSION" >&2; exit 1; }
  mkdir -p "$root"
  exec 9>"$root/.nats-server-v$NATS_SERVER_VERSION.lock"
  flock 9 # a concurrent caller waits here, then finds the work done
  if [ ! -x "$bin" ]; then
    echo "nats-server-tool: building nats-server v$NATS_SERVER_VERSION into $dir/bin; about a minute cold" >&2
    start=$(date +%s)
    tmp="$dir/bin.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "github.com/nats-io/nats-server/v2@v$NATS_SERVER_VERSION"
    "$tmp/nats-server" --version >&2
    rm -rf "$dir/bin"
    mv "$tmp" "$dir/bin"
    trap - EXIT
    echo "nats-server-tool: built nats-server in $(($(date +%s) - start)) s" >&2
  fi
fi
print_env
