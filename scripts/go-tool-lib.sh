# Sourced by the scripts that build a test binary from the Go module proxy (helm-tool.sh, nats-server-tool.sh):
#   go_tool_main <label> <name> <version> <module@version> <ldflags> <VAR> "$@"
# builds `go install <module@version>` once into $root/<name>-<version>/bin/<name> (root =
# ${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}), under a lock of its own so a concurrent caller waits and then
# finds the work done, and prints VAR=<path>; with --print-env it only prints that.
go_tool_main() {
  local label=$1 name=$2 version=$3 module=$4 ldflags=$5 var=$6
  shift 6
  local root="${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}"
  local dir="$root/$name-$version"
  local bin="$dir/bin/$name"
  if [ "${1:-}" = "--print-env" ]; then echo "$var=$bin"; return 0; fi
  if [ $# -gt 0 ]; then echo "usage: $0 [--print-env]" >&2; return 2; fi
  if [ ! -x "$bin" ]; then
    command -v go >/dev/null 2>&1 || { echo "$label: Go is needed to build $name $version" >&2; return 1; }
    mkdir -p "$root"
    exec 9>"$root/.$name-$version.lock"
    flock 9
    if [ ! -x "$bin" ]; then
      echo "$label: building $name $version into $dir/bin (go install $module)" >&2
      local start tmp
      start=$(date +%s)
      tmp="$dir/bin.tmp.$$"
      rm -rf "$tmp" && mkdir -p "$tmp"
      trap 'rm -rf "'"$tmp"'"' EXIT
      CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" "$module"
      rm -rf "$dir/bin"
      mv "$tmp" "$dir/bin"
      trap - EXIT
      echo "$label: built $name in $(($(date +%s) - start)) s" >&2
    fi
  fi
  echo "$var=$bin"
}
