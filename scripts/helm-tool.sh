#!/usr/bin/env bash
# Builds (once) helm, which the chart tests (test/chart-*.test.ts) run, and caches it outside the repository,
# keyed by version:
#   $root/helm-v4.3.2/bin/helm    with root = ${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}
# helm v4 is built from the Go module proxy (`go install helm.sh/helm/v4/cmd/helm@v4.3.2`, ~2 minutes cold).
#
#   bash scripts/helm-tool.sh              build when missing, then print the path (HELM_BIN=...)
#   bash scripts/helm-tool.sh --print-env  only print the path, for eval
set -euo pipefail

HELM_VERSION=v4.3.2

root="${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}"
dir="$root/helm-$HELM_VERSION"
bin="$dir/bin/helm"

print_env() { echo "HELM_BIN=$bin"; }

if [ "${1:-}" = "--print-env" ]; then print_env; exit 0; fi
if [ $# -gt 0 ]; then echo "usage: $0 [--print-env]" >&2; exit 2; fi

if [ ! -x "$bin" ]; then
  command -v go >/dev/null 2>&1 || { echo "helm-tool: Go is needed to build helm $HELM_VERSION" >&2; exit 1; }
  mkdir -p "$root"
  exec 9>"$root/.helm-$HELM_VERSION.lock"
  flock 9 # a concurrent caller waits here, then finds the work done
  if [ ! -x "$bin" ]; then
    echo "helm-tool: building helm $HELM_VERSION into $dir/bin; takes about 2 minutes cold" >&2
    start=$(date +%s)
    tmp="$dir/bin.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    # helm's version string comes from these link-time variables (`helm version` would say "v4.0+unreleased").
    ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
    CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
    rm -rf "$dir/bin"
    mv "$tmp" "$dir/bin"
    trap - EXIT
    echo "helm-tool: built helm in $(($(date +%s) - start)) s" >&2
  fi
fi
print_env
