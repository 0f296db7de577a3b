/**
 * `npm run bench:cluster` (also the last phase of `npm run bench`; BENCH_CLUSTER=0 skips it there): the chart
 * on `fnmesh cluster`, side by side in one run. For each NATS mode (the bundled 3-server NATS cluster, and
 * the gateway's embedded broker) a fresh `fnmesh cluster --helm` installs the chart with `helm install --wait`
 * (timed until every pod of the chart is Ready), the greeter example is applied, and then
 *   direct — HTTP to the greeter pods through a NodePort Service of their own (the baseline)
 *   mesh   — HTTP to the chart's gateway Service (NodePort) → NATS → the injected sidecar → the same function
 * Both paths enter through the node's port relay (service-proxy), so the difference is what the chart's
 * gateway, NATS and the sidecar add. Prints p50/p99 at a fixed rate (open loop), maximum throughput (closed
 * loop) and the ratios to the direct call measured in the same cluster, as a markdown table.
 * BENCH_CLUSTER_MODES=bundled,embedded chooses the modes; BENCH_CLUSTER_RATE the open-loop rate (200).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { runKubectl, type KubectlResult } from '../cluster/control-plane';
import { closedLoop, httpSender, openLoop, type LatencySummary } from './load';
import { cli, root } from './echo-mesh';

const RATE = Number(process.env.BENCH_CLUSTER_RATE ?? 200);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_SECONDS ?? 10) * 1000;
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_SECONDS ?? 5) * 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const PARAMS = JSON.stringify({ name: 'Ada' });
const CALL_BODY = JSON.stringify({ params: { name: 'Ada' } });
const CALL_PATH = '/v1/api/default/functions/greeter/hello';
const DIRECT_SERVICE = 'bench-greeter-direct';

interface Mode {
  /** As BENCH_CLUSTER_MODES names it. */
  key: string;
  name: string;
  /** Values files for `fnmesh cluster --helm --values`. */
  values: string[];
}

const MODES: Mode[] = [
  { key: 'bundled', name: 'bundled NATS (3 servers)', values: [] },
  {
    key: 'embedded',
    name: 'embedded broker',
    values: [path.join(root, 'charts', 'fnmesh', 'ci', 'embedded-values.yaml')],
  },
];

interface ModeResult {
  mode: string;
  installSeconds: number;
  direct: LatencySummary;
  mesh: LatencySummary;
  directRate: number;
  meshRate: number;
  errors: number;
}

interface Cluster {
  lines: string[];
  child: ChildProcess;
  kubectl(args: string[], stdin?: string): Promise<KubectlResult>;
  gatewayUrl: string;
  installSeconds: number;
  stop(): Promise<void>;
}

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startCluster(mode: Mode): Promise<Cluster> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('FNMESH_') && k !== 'KUBECONFIG'),
  );
  env.NO_COLOR = '1';
  const args = [cli, 'cluster', '--helm'];
  if (mode.values.length > 0) args.push('--values', mode.values.join(','));
  const child = spawn(process.execPath, args, { env, cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let pending = '';
  const onData = (chunk: Buffer): void => {
    pending += chunk.toString();
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    lines.push(...parts);
    if (lines.length > 5000) lines.splice(0, lines.length - 5000);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await until('fnmesh cluster --helm to print its instructions', 600_000, () => {
      if (child.exitCode !== null) throw new Error(`fnmesh cluster --helm exited (${child.exitCode})`);
      return lines.some((l) => l.includes('Ctrl-C stops')) ? true : undefined;
    });
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${lines.slice(-40).join('\n')}`);
  }
  const printed = lines.join('\n');
  const kubeconfig = /export KUBECONFIG=(\S+)/.exec(printed)?.[1];
  const binDir = /export PATH=([^:\s]+):/.exec(printed)?.[1];
  const gatewayUrl = /gateway Service at (http:\/\/\S+)/.exec(printed)?.[1];
  const installSeconds = Number(/every pod of the chart Ready after ([\d.]+) s/.exec(printed)?.[1]);
  if (!kubeconfig || !binDir || !gatewayUrl) {
    await stop();
    throw new Error(`cannot read the kubeconfig, kubectl and gateway URL from fnmesh cluster's output:\n${printed}`);
  }
  const kubectl = (a: string[], stdin?: string): Promise<KubectlResult> =>
    runKubectl(path.join(binDir, 'kubectl'), a, stdin, { ...process.env, KUBECONFIG: kubeconfig });
  return { lines, child, kubectl, gatewayUrl, installSeconds, stop };
}

async function kubectlOk(c: Cluster, args: string[], stdin?: string): Promise<string> {
  const r = await c.kubectl(args, stdin);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** A NodePort Service of the greeter pods' own port: the call that skips the mesh. Returns its URL. */
async function directService(c: Cluster): Promise<string> {
  const svc = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: DIRECT_SERVICE, namespace: 'default' },
    spec: { type: 'NodePort', selector: { 'fnmesh.io/service': 'greeter' }, ports: [{ port: 8080, targetPort: 8080 }] },
  };
  await kubectlOk(c, ['apply', '-f', '-'], JSON.stringify(svc));
  const nodePort = await kubectlOk(c, ['get', 'service', DIRECT_SERVICE, '-o', 'jsonpath={.spec.ports[0].nodePort}']);
  return `http://127.0.0.1:${nodePort.trim()}`;
}

async function answers(url: string, urlPath: string, body: string): Promise<true | undefined> {
  try {
    const res = await fetch(url + urlPath, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await res.arrayBuffer();
    return res.status === 200 ? true : undefined;
  } catch {
    return undefined;
  }
}

async function measureMode(mode: Mode): Promise<ModeResult> {
  const c = await startCluster(mode);
  try {
    await kubectlOk(c, ['apply', '-f', path.join(root, 'examples', 'greeter.yaml')]);
    await kubectlOk(c, ['wait', '--for=condition=Ready', 'functionservice/greeter', '--timeout=300s']);
    const directUrl = await directService(c);
    await until('the greeter pods through their own NodePort', 60_000, () => answers(directUrl, '/hello', PARAMS));
    await until('the greeter through the gateway Service', 60_000, () => answers(c.gatewayUrl, CALL_PATH, CALL_BODY));
    const directPool = new Pool(directUrl, { connections: CONCURRENCY, pipelining: 1 });
    const meshPool = new Pool(c.gatewayUrl, { connections: CONCURRENCY, pipelining: 1 });
    try {
      const directSend = httpSender(directPool, '/hello', PARAMS);
      const meshSend = httpSender(meshPool, CALL_PATH, CALL_BODY);
      // Warm both paths (connections, JIT) before measuring.
      await openLoop(directSend, RATE, 2000);
      await openLoop(meshSend, RATE, 2000);
      const direct = await openLoop(directSend, RATE, LATENCY_MS);
      const mesh = await openLoop(meshSend, RATE, LATENCY_MS);
      const directMax = await closedLoop(directSend, CONCURRENCY, THROUGHPUT_MS);
      const meshMax = await closedLoop(meshSend, CONCURRENCY, THROUGHPUT_MS);
      return {
        mode: mode.name,
        installSeconds: c.installSeconds,
        direct,
        mesh,
        directRate: directMax.rate,
        meshRate: meshMax.rate,
        errors: direct.errors + mesh.errors + directMax.errors + meshMax.errors,
      };
    } finally {
      await directPool.close();
      await meshPool.close();
    }
  } finally {
    await c.stop();
  }
}

const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** The table for the measured modes. Pure. */
export function clusterTable(results: readonly ModeResult[]): string[] {
  const lines = [
    `fnmesh on fnmesh cluster (the chart, helm install --wait) — ${os.cpus().length} cores, node ${process.version}, ${RATE} req/s open loop for ${LATENCY_MS / 1000} s, max throughput with ${CONCURRENCY} concurrent for ${THROUGHPUT_MS / 1000} s`,
    '',
    '| NATS mode | install to all Ready s | direct p50 ms | mesh p50 ms | added p50 ms | direct p99 ms | mesh p99 ms | added p99 ms | direct max req/s | mesh max req/s | throughput × direct | errors |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results)
    lines.push(
      `| ${r.mode} | ${fmt(r.installSeconds, 1)} | ${fmt(r.direct.p50)} | ${fmt(r.mesh.p50)} | ${fmt(r.mesh.p50 - r.direct.p50)} | ${fmt(r.direct.p99)} | ${fmt(r.mesh.p99)} | ${fmt(r.mesh.p99 - r.direct.p99)} | ${fmt(r.directRate, 0)} | ${fmt(r.meshRate, 0)} | ${fmt(r.meshRate / r.directRate)} | ${r.errors} |`,
    );
  return lines;
}

export async function runClusterBench(): Promise<string[]> {
  const results: ModeResult[] = [];
  const wanted = (process.env.BENCH_CLUSTER_MODES ?? MODES.map((m) => m.key).join(',')).split(',');
  const unknown = wanted.filter((w) => !MODES.some((m) => m.key === w));
  if (unknown.length > 0)
    throw new Error(
      `BENCH_CLUSTER_MODES names ${unknown.join(', ')}: use a comma-separated list of ${MODES.map((m) => m.key).join(', ')}`,
    );
  for (const mode of MODES.filter((m) => wanted.includes(m.key))) results.push(await measureMode(mode));
  return clusterTable(results);
}

if (require.main === module)
  runClusterBench().then(
    (lines) => console.log(lines.join('\n')),
    (err: unknown) => {
      console.error(`bench:cluster failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
