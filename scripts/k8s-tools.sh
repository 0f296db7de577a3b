#!/usr/bin/env bash
# Builds (once) the Kubernetes control-plane tools the tests and the local cluster use, and caches them outside
# the repository, keyed by version:
#   $root/kubernetes-v1.35.4/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}
#   $root/kwok-v0.8.0/bin/kwok and $root/kwok-v0.8.0/stages/*.yaml (kwok's node and pod "fast" stages)
# with root = ${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}. etcd comes from Debian's etcd-server package.
# The Kubernetes binaries are built from the wrapper module in scripts/k8s/ (go.mod pins k8s.io/kubernetes and
# replaces every staging module with its published version).
#
#   bash scripts/k8s-tools.sh              build what is missing, then print the paths
#   bash scripts/k8s-tools.sh --print-env  only print the paths (KUBE_BIN_DIR=..., KWOK_BIN=..., ...), for eval
set -euo pipefail

KUBE_VERSION=v1.35.4
KWOK_VERSION=v0.8.0
KUBE_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
KWOK_STAGE_FILES=(
  node/fast/node-initialize.yaml
  node/heartbeat/node-heartbeat.yaml
  pod/fast/pod-ready.yaml
  pod/fast/pod-complete.yaml
  pod/fast/pod-delete.yaml
)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${FNMESH_TOOLS_DIR:-$HOME/.cache/fnmesh/tools}"
kube_dir="$root/kubernetes-$KUBE_VERSION"
kwok_dir="$root/kwok-$KWOK_VERSION"

print_env() {
  echo "KUBE_BIN_DIR=$kube_dir/bin"
  echo "KWOK_BIN=$kwok_dir/bin/kwok"
  echo "KWOK_STAGES=$kwok_dir/stages"
  echo "ETCD_BIN=$(command -v etcd || echo /usr/bin/etcd)"
}

if [ "${1:-}" = "--print-env" ]; then print_env; exit 0; fi
if [ $# -gt 0 ]; then echo "usage: $0 [--print-env]" >&2; exit 2; fi

have_kube() { for b in "${KUBE_BINS[@]}"; do [ -x "$kube_dir/bin/$b" ] || return 1; done; }
have_kwok() {
  [ -x "$kwok_dir/bin/kwok" ] || return 1
  for f in "${KWOK_STAGE_FILES[@]}"; do [ -f "$kwok_dir/stages/$(basename "$f")" ] || return 1; done
}
have_etcd() { command -v etcd >/dev/null 2>&1; }

# Fast path: everything is there.
if have_kube && have_kwok && have_etcd; then print_env; exit 0; fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

mkdir -p "$root"
exec 9>"$root/.lock"
flock 9 # a concurrent caller waits here, then finds the work done

if ! have_etcd; then
  echo "k8s-tools: installing etcd from Debian's etcd-server package" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
fi

command -v go >/dev/null 2>&1 || { echo "k8s-tools: Go is needed to build the Kubernetes tools" >&2; exit 1; }

if ! have_kube; then
  echo "k8s-tools: building Kubernetes $KUBE_VERSION (${KUBE_BINS[*]}) into $kube_dir/bin; takes minutes cold" >&2
  start=$(date +%s)
  tmp="$kube_dir/bin.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=35 -X $pkg.gitTreeState=clean"
  done
  (cd "$here/k8s" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" -o "$tmp/" ./cmd/...)
  rm -rf "$kube_dir/bin"
  mv "$tmp" "$kube_dir/bin"
  trap - EXIT
  echo "k8s-tools: built Kubernetes in $(($(date +%s) - start)) s" >&2
fi

if ! have_kwok; then
  echo "k8s-tools: building kwok $KWOK_VERSION into $kwok_dir/bin" >&2
  mkdir -p "$kwok_dir/bin" "$kwok_dir/stages"
  CGO_ENABLED=0 GOBIN="$kwok_dir/bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  for f in "${KWOK_STAGE_FILES[@]}"; do install -m 0644 "$src/$f" "$kwok_dir/stages/"; done
fi

print_env
