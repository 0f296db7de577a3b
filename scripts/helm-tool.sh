#!/usr/bin/env bash
# Builds (once) helm, which the chart tests (test/chart-*.test.ts) run, and caches it outside the repository,
# keyed by version:
#   $root/helm-v4.3.2/bin/helm    with root = ${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}
# helm v4 is built from the Go module proxy (`go install helm.sh/helm/v4/cmd/helm@v4.3.2`, ~2 minutes cold).
#
#   bash scripts/helm-tool.sh              build when missing, then print the path (HELM_BIN=...)
#   bash scripts/helm-tool.sh --print-env  only print the path, for eval
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=go-tool-lib.sh
. "$here/go-tool-lib.sh"

HELM_VERSION=v4.3.2
# helm's version string comes from these link-time variables (`helm version` would say "v4.0+unreleased").
go_tool_main helm-tool helm "$HELM_VERSION" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" \
  "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" HELM_BIN "$@"
