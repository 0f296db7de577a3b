#!/usr/bin/env bash
# Installs (once) schemathesis, the property-based API tester of test/openapi-fuzz.test.ts, into a Python
# virtual environment cached outside the repository, keyed by version:
#   $root/schemathesis-4.32.5/bin/schemathesis    with root = ${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}
#
#   bash scripts/schemathesis.sh               install when missing, then print the binary's path
#   bash scripts/schemathesis.sh --print-path  only print the path (the test runs this to find it)
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

root="${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}"
dir="$root/schemathesis-$SCHEMATHESIS_VERSION"
bin="$dir/bin/schemathesis"

if [ "${1:-}" = "--print-path" ]; then echo "$bin"; exit 0; fi
if [ $# -gt 0 ]; then echo "usage: $0 [--print-path]" >&2; exit 2; fi

# the marker is written last, so an interrupted install is redone
installed() { [ -x "$bin" ] && [ -f "$dir/.installed" ]; }

if ! installed; then
  mkdir -p "$root"
  exec 9>"$root/.lock"
  flock 9 # a concurrent caller waits here, then finds the work done
  if ! installed; then
    python=$(command -v python3 || true)
    [ -n "$python" ] || { echo "schemathesis: python3 (3.9 or later, with venv) is needed for the fuzz test" >&2; exit 1; }
    echo "schemathesis: installing schemathesis $SCHEMATHESIS_VERSION into $dir" >&2
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    "$bin" --version >&2
    touch "$dir/.installed"
  fi
fi
echo "$bin"
