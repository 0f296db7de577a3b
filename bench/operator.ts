/**
 * `npm run bench:operator`: the operator against a real control plane (etcd, kube-apiserver v1.35.4,
 * controller-manager and scheduler at --kube-api-qps=1000 --kube-api-burst=2000, kwok nodes), in one run:
 *   1. FunctionService created (the POST's response) → its Deployment exists (seen on a Deployment watch):
 *      p50/p99 over BENCH_LATENCY_N (200) objects created one at a time, one every BENCH_LATENCY_GAP_MS (20).
 *   2. BENCH_OPERATOR_N (1000) FunctionServices created at once (BENCH_INFLIGHT, 50, creates in flight) until
 *      all report Ready, against two baselines created the same way (another namespace each, same control
 *      plane) until all Available: as many plain one-replica Deployments (one container), and as many
 *      Deployments with the pod template the operator makes (the function container and the native
 *      sidecar with its probes, env and security context; built by operator/desired-deployment.ts, created
 *      directly): the second separates what the operator costs from what its pods cost the control plane.
 *      All are seen through watches.
 *   3. The operator's resident memory (VmRSS of its process) with those FunctionServices.
 *   4. API requests by verb over BENCH_STEADY_SECONDS (30) once everything is Ready, with a short resync
 *      (FNMESH_RESYNC_MS = BENCH_RESYNC_MS, 5000) forcing reconciles, from the operator's /metrics.
 *      Phases 1-3 run the operator with BENCH_BURST_RESYNC_MS (default 300000, the operator's default); when
 *      the two differ the operator is restarted with the short resync for phase 4.
 * The baselines run once; phases 1, 2b, 3 and 4 run once per FNMESH_NATS_AUTH mode, `jwt` (the default: the
 * operator mints a NATS credentials Secret per FunctionService and mounts it into the sidecar) and `none`
 * (`none` first),
 * each with a fresh operator process and its own namespaces (deleted before the next mode starts), and the
 * same-template baseline with each mode's pod template; the table has a column per mode.
 * The operator runs as a child process (`node bin/fnmesh.js operator`, leader election on) so that its memory
 * is its own. Prints markdown tables; no assertions.
 */
import os from 'node:os';
import path from 'node:path';
import { KUBECONFIG_VAR } from '../common/kube-access';
import { KubeClient } from '../common/kube-client';
import { loadKubeAccess } from '../common/kubeconfig';
import { JsonListWatch, type ApiObject } from '../common/list-watch';
import { API_VERSION, CRD_PATH, KIND, functionServicePath } from '../common/crd-names';
import { parseFunctionService } from '../common/manifest';
import { loadOperatorConfig, desiredDeployment, type ClusterFunctionService, type NatsAuthMode } from '../operator';
import { startControlPlane } from '../cluster/control-plane';
import { freePort, startProc, waitHttpOk, type Proc } from './procs';

const root = path.resolve(__dirname, '..', '..');
const N = Number(process.env.BENCH_OPERATOR_N ?? 1000);
const LATENCY_N = Number(process.env.BENCH_LATENCY_N ?? 200);
const GAP_MS = Number(process.env.BENCH_LATENCY_GAP_MS ?? 20);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 50);
const STEADY_MS = Number(process.env.BENCH_STEADY_SECONDS ?? 30) * 1000;
const RESYNC_MS = Number(process.env.BENCH_RESYNC_MS ?? 5000);
/** The resync during phases 1-3 (default: the operator's own default); a 5 s resync of 1000 objects competes with the burst. */
const BURST_RESYNC_MS = Number(process.env.BENCH_BURST_RESYNC_MS ?? 300_000);
const PHASE_TIMEOUT_MS = Number(process.env.BENCH_PHASE_TIMEOUT_SECONDS ?? 900) * 1000;
const QPS = 1000;
const PODS_PER_NODE = 110;
const LEASE_NS = 'fnmesh-system';

const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface Cond {
  type: string;
  status: string;
}
type Obj = ApiObject<unknown, { observedGeneration?: number; conditions?: Cond[]; availableReplicas?: number }>;

type Api = (apiPath: string, init?: { method?: string; body?: unknown }) => Promise<{ status: number; body: unknown }>;

/** Runs `fn(i)` for i in [0, n) with at most `limit` in flight. */
async function bounded(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

const DEPLOYMENTS = { apiVersion: 'apps/v1', kind: 'Deployment' };
const FUNCTION_SERVICES = { apiVersion: API_VERSION, kind: KIND };

/**
 * A list-watch of a collection (common/list-watch.ts, as the operator's informers; it resumes when the server
 * ends the watch): `onEvent` sees every object added or changed; stop() ends it; `ended()` is the error that
 * ended it, if any. Resolves once the watch is open.
 */
async function watch(
  client: KubeClient,
  apiPath: string,
  type: { apiVersion: string; kind: string },
  onEvent: (verb: 'add' | 'update', obj: Obj) => void,
): Promise<{ stop(): void; ended: () => unknown }> {
  let endErr: unknown;
  const lw = new JsonListWatch<Obj>({ client, path: apiPath, ...type });
  lw.on('add', (obj) => onEvent('add', obj));
  lw.on('update', (obj) => onEvent('update', obj));
  lw.on('error', (err) => (endErr ??= err ?? new Error(`watch ${apiPath} ended`)));
  await lw.start();
  return {
    stop: () => void lw.stop(),
    ended: () => endErr,
  };
}

async function until(
  what: string,
  timeoutMs: number,
  check: () => boolean | Promise<boolean>,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

async function must(
  api: Api,
  apiPath: string,
  init: { method?: string; body?: unknown },
  ok: number[],
): Promise<unknown> {
  for (let attempt = 0; ; attempt++) {
    const r = await api(apiPath, init);
    if (ok.includes(r.status)) return r.body;
    // 429/5xx under load: retry a few times
    if ((r.status === 429 || r.status >= 500) && attempt < 5) {
      await sleep(200 * (attempt + 1));
      continue;
    }
    throw new Error(`${init.method ?? 'GET'} ${apiPath}: HTTP ${r.status}: ${JSON.stringify(r.body).slice(0, 500)}`);
  }
}

async function createNamespace(api: Api, ns: string): Promise<void> {
  await must(
    api,
    '/api/v1/namespaces',
    { method: 'POST', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } },
    [201, 409],
  );
  // Pods need the namespace's default ServiceAccount to be admitted.
  await until(
    `namespace ${ns}'s default ServiceAccount`,
    60_000,
    async () => (await api(`/api/v1/namespaces/${ns}/serviceaccounts/default`)).status === 200,
  );
}

async function deleteNamespace(api: Api, ns: string): Promise<number> {
  const t0 = Date.now();
  await must(api, `/api/v1/namespaces/${ns}`, { method: 'DELETE' }, [200, 202, 404]);
  await until(
    `namespace ${ns} to be deleted`,
    PHASE_TIMEOUT_MS,
    async () => (await api(`/api/v1/namespaces/${ns}`)).status === 404,
    250,
  );
  return Date.now() - t0;
}

/** More kwok nodes (same annotations as the harness's kwok-node-0, each its own pod CIDR) so that `pods` pods fit. */
async function addNodes(api: Api, pods: number): Promise<number> {
  const total = Math.ceil((pods * 1.1) / PODS_PER_NODE) + 1;
  const names: string[] = ['kwok-node-0'];
  for (let i = 1; i < total; i++) {
    const name = `kwok-node-${i}`;
    names.push(name);
    const status = { cpu: '32', memory: '256Gi', pods: String(PODS_PER_NODE) };
    await must(
      api,
      '/api/v1/nodes',
      {
        method: 'POST',
        body: {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: {
            name,
            annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
            labels: {
              type: 'kwok',
              'kubernetes.io/arch': 'amd64',
              'kubernetes.io/os': 'linux',
              'kubernetes.io/hostname': name,
              'kubernetes.io/role': 'agent',
            },
          },
          spec: {
            podCIDR: `10.${1 + Math.floor(i / 250)}.${i % 250}.0/24`,
            podCIDRs: [`10.${1 + Math.floor(i / 250)}.${i % 250}.0/24`],
          },
          status: {
            allocatable: status,
            capacity: status,
            nodeInfo: {
              architecture: 'amd64',
              operatingSystem: 'linux',
              kubeletVersion: 'fake',
              kubeProxyVersion: 'fake',
            },
          },
        },
      },
      [201, 409],
    );
  }
  await until(
    'the kwok nodes to be Ready and untainted',
    120_000,
    async () => {
      const r = await api('/api/v1/nodes');
      const items =
        (
          r.body as {
            items?: Array<{
              metadata: { name: string };
              spec?: { taints?: unknown[] };
              status?: { conditions?: Cond[] };
            }>;
          }
        ).items ?? [];
      const ready = items.filter(
        (n) => !n.spec?.taints?.length && n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      );
      return ready.length >= names.length;
    },
    250,
  );
  return names.length;
}

const fsvcBody = (ns: string, name: string): unknown => ({
  apiVersion: API_VERSION,
  kind: KIND,
  metadata: { name, namespace: ns },
  spec: {
    replicas: 1,
    functions: [{ name: 'hello', rule: { rule: 'allow' } }],
    container: { image: 'example.com/fn:1' },
  },
});

const deploymentBody = (ns: string, name: string): unknown => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: ns },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: 'function', image: 'example.com/fn:1', ports: [{ containerPort: 8080 }] }] },
    },
  },
});

const SIDECAR_IMAGE = 'ghcr.io/fnmesh/fnmesh:bench';
const SIDECAR_NATS_URL = 'nats://nats.fnmesh-system:4222';

/** The Deployment the operator makes for fsvcBody(ns, name), without its owner reference (created directly). */
const templateDeploymentBody =
  (mode: NatsAuthMode) =>
  (ns: string, name: string): unknown => {
    const config = loadOperatorConfig({
      FNMESH_SIDECAR_IMAGE: SIDECAR_IMAGE,
      FNMESH_SIDECAR_NATS_URL: SIDECAR_NATS_URL,
      FNMESH_NATS_AUTH: mode,
    });
    const fs = parseFunctionService(fsvcBody(ns, name), `${ns}/${name}`) as ClusterFunctionService;
    fs.metadata.uid = '00000000-0000-0000-0000-000000000000';
    const d = desiredDeployment(fs, config.sidecar);
    delete d.metadata!.ownerReferences;
    return d;
  };

const fsvcReady = (o: Obj): boolean =>
  !!o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') &&
  o.status.observedGeneration === o.metadata?.generation;
const deploymentAvailable = (o: Obj): boolean =>
  (o.status?.availableReplicas ?? 0) >= 1 &&
  !!o.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True');

/** Creates `n` objects (bounded concurrency) and waits, through a watch, until `done` holds for all of them. */
async function burst(
  client: KubeClient,
  api: Api,
  opts: {
    ns: string;
    collection: string;
    watchPath: string;
    watchType: { apiVersion: string; kind: string };
    body: (ns: string, name: string) => unknown;
    done: (o: Obj) => boolean;
    n: number;
    sample?: () => void;
  },
): Promise<{ totalMs: number; createMs: number }> {
  const doneNames = new Set<string>();
  const w = await watch(client, opts.watchPath, opts.watchType, (_verb, o) => {
    const name = o.metadata?.name;
    if (name && opts.done(o)) doneNames.add(name);
  });
  try {
    const t0 = performance.now();
    await bounded(opts.n, INFLIGHT, async (i) => {
      await must(api, opts.collection, { method: 'POST', body: opts.body(opts.ns, `b-${i}`) }, [201]);
    });
    const createMs = performance.now() - t0;
    let last = -1;
    let lastAt = Date.now();
    await until(
      `${opts.n} objects in ${opts.ns} (${opts.collection})`,
      PHASE_TIMEOUT_MS,
      () => {
        const err = w.ended();
        if (err) throw new Error(`the watch on ${opts.watchPath} ended: ${String(err)}`);
        opts.sample?.();
        if (doneNames.size !== last) {
          last = doneNames.size;
          lastAt = Date.now();
        } else if (Date.now() - lastAt > 60_000) {
          throw new Error(`no progress for 60 s in ${opts.ns}: ${doneNames.size}/${opts.n} done`);
        }
        return doneNames.size >= opts.n;
      },
      20,
    );
    return { totalMs: performance.now() - t0, createMs };
  } finally {
    w.stop();
  }
}

interface Counters {
  requests: Map<string, number>; // verb → count
  byResource: Map<string, number>; // "VERB resource" → count
  reconciles: number;
}

async function scrape(metricsUrl: string): Promise<Counters> {
  const text = await (await fetch(metricsUrl)).text();
  const c: Counters = { requests: new Map(), byResource: new Map(), reconciles: 0 };
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\}\s+([0-9.eE+-]+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    const v = Number(m[3]);
    if (m[1] === 'fnmesh_operator_api_requests_total') {
      const verb = labels.verb ?? '?';
      c.requests.set(verb, (c.requests.get(verb) ?? 0) + v);
      const k = `${verb} ${labels.resource ?? '?'}`;
      c.byResource.set(k, (c.byResource.get(k) ?? 0) + v);
    } else if (m[1] === 'fnmesh_operator_reconciles_total') c.reconciles += v;
  }
  return c;
}

function diff(a: Map<string, number>, b: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of b) {
    const d = v - (a.get(k) ?? 0);
    if (d) out.set(k, d);
  }
  return out;
}

const WRITE_VERBS = ['POST', 'PUT', 'PATCH', 'DELETE'];
const writesOf = (m: Map<string, number>, filter: (k: string) => boolean = () => true): number =>
  [...m].filter(([k]) => WRITE_VERBS.includes(k.split(' ')[0]!) && filter(k)).reduce((s, [, v]) => s + v, 0);

/** The NATS auth modes measured side by side, in this order, each with its own operator and namespaces. */
const MODES: readonly NatsAuthMode[] = ['none', 'jwt'];

/** What one mode's run measured (phases 1, 2b, 3 and 4). */
interface ModeResult {
  mode: NatsAuthMode;
  idleRss: number;
  lat: number[];
  posts: number[];
  fs: { totalMs: number; createMs: number };
  burstReconciles: number;
  burstByRes: Map<string, number>;
  readyRss: number;
  peakRss: number;
  restartedRss: number;
  steadyRss: number;
  settleMs: number;
  steadyReconciles: number;
  steadyByVerb: Map<string, number>;
  steadyByRes: Map<string, number>;
  steadyWrites: number;
  leaseWrites: number;
  /** Deleting the latency phase's namespace (LATENCY_N FunctionServices) / the burst's (N). */
  deleteLatencyMs: number;
  deleteBurstMs: number;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const cp = await startControlPlane({ apiQps: QPS });
  let operator: Proc | undefined;
  let client: KubeClient | undefined;
  try {
    const api: Api = (p, init) => cp.request(p, init);
    // The watches go through the operator's own client and list-watch, with the admin kubeconfig.
    const kube = new KubeClient(loadKubeAccess({ kubeconfig: cp.kubeconfig, env: {} }));
    client = kube;
    // test/helpers/crds.ts's CRDS_DIR is relative to its compiled location too: apply the checkout's crds/.
    const applied = await cp.kubectl(['apply', '-f', path.join(root, 'crds')]);
    if (applied.code !== 0) throw new Error(`kubectl apply -f crds/ failed: ${applied.stderr}`);
    await until('the FunctionService CRD to be Established', 60_000, async () => {
      const r = await api(CRD_PATH);
      return !!(r.body as Obj).status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    });
    const nodes = await addNodes(api, N);
    await createNamespace(api, LEASE_NS);
    console.error(`bench: control plane up in ${cp.startMs} ms, ${nodes} kwok nodes ready after ${Date.now() - t0} ms`);

    const opsPort = await freePort();
    const metricsUrl = `http://127.0.0.1:${opsPort}/metrics`;
    const runOperator = async (mode: NatsAuthMode, resyncMs: number): Promise<Proc> => {
      const p = startProc('operator', [path.join(root, 'bin', 'fnmesh.js'), 'operator'], {
        [KUBECONFIG_VAR]: cp.kubeconfig,
        FNMESH_SIDECAR_IMAGE: SIDECAR_IMAGE,
        FNMESH_SIDECAR_NATS_URL: SIDECAR_NATS_URL,
        FNMESH_NATS_AUTH: mode,
        FNMESH_OPERATOR_LISTEN: `127.0.0.1:${opsPort}`,
        FNMESH_LEASE_NAMESPACE: LEASE_NS,
        FNMESH_RESYNC_MS: String(resyncMs),
        FNMESH_LOG_LEVEL: 'warn',
      });
      operator = p;
      await waitHttpOk(`http://127.0.0.1:${opsPort}/readyz`, 60_000);
      await until(
        'the operator to lead',
        60_000,
        async () => /^fnmesh_operator_leader(\{[^}]*\})?\s+1$/m.test(await (await fetch(metricsUrl)).text()),
        100,
      );
      return p;
    };

    // 2a. baseline: plain Deployments until Available (once, shared by the modes).
    const nsBase = 'bench-baseline';
    await createNamespace(api, nsBase);
    const base = await burst(kube, api, {
      ns: nsBase,
      collection: `/apis/apps/v1/namespaces/${nsBase}/deployments`,
      watchPath: `/apis/apps/v1/namespaces/${nsBase}/deployments`,
      watchType: DEPLOYMENTS,
      body: deploymentBody,
      done: deploymentAvailable,
      n: N,
    });
    console.error(`bench: baseline ${N} Deployments Available in ${fmt(base.totalMs / 1000, 2)} s; deleting ${nsBase}`);
    const delBase = await deleteNamespace(api, nsBase);

    // 2a'. baseline: Deployments with the operator's pod template (each mode's: with jwt the creds volume) until Available.
    const tpl = new Map<NatsAuthMode, { totalMs: number; createMs: number }>();
    for (const mode of MODES) {
      const nsTpl = `bench-template-${mode}`;
      await createNamespace(api, nsTpl);
      tpl.set(
        mode,
        await burst(kube, api, {
          ns: nsTpl,
          collection: `/apis/apps/v1/namespaces/${nsTpl}/deployments`,
          watchPath: `/apis/apps/v1/namespaces/${nsTpl}/deployments`,
          watchType: DEPLOYMENTS,
          body: templateDeploymentBody(mode),
          done: deploymentAvailable,
          n: N,
        }),
      );
      console.error(
        `bench: ${N} Deployments with the operator's pod template (FNMESH_NATS_AUTH=${mode}) Available in ${fmt(tpl.get(mode)!.totalMs / 1000, 2)} s; deleting ${nsTpl}`,
      );
      await deleteNamespace(api, nsTpl);
    }

    const measureMode = async (mode: NatsAuthMode): Promise<ModeResult> => {
      let op = await runOperator(mode, BURST_RESYNC_MS);
      const idleRss = op.rssMb();

      // 1. created → Deployment exists, one at a time.
      const ns1 = `bench-latency-${mode}`;
      await createNamespace(api, ns1);
      const seen = new Map<string, number>();
      const waiters = new Map<string, (t: number) => void>();
      const w1 = await watch(kube, `/apis/apps/v1/namespaces/${ns1}/deployments`, DEPLOYMENTS, (verb, o) => {
        const name = o.metadata?.name;
        if (verb !== 'add' || !name || seen.has(name)) return;
        const t = performance.now();
        seen.set(name, t);
        waiters.get(name)?.(t);
      });
      const latencies: number[] = [];
      const posts: number[] = [];
      const pending: Promise<void>[] = [];
      const start1 = performance.now();
      for (let i = 0; i < LATENCY_N; i++) {
        const due = start1 + i * GAP_MS;
        const now = performance.now();
        if (due > now) await sleep(due - now);
        const name = `l-${i}`;
        const a = performance.now();
        await must(api, functionServicePath(ns1), { method: 'POST', body: fsvcBody(ns1, name) }, [201]);
        const created = performance.now();
        posts.push(created - a);
        const at = seen.get(name);
        if (at !== undefined) latencies.push(Math.max(0, at - created));
        else
          pending.push(
            Promise.race([
              new Promise<void>((resolve) => waiters.set(name, (t) => (latencies.push(t - created), resolve()))),
              sleep(30_000).then(() => {
                throw new Error(`no Deployment for ${name} within 30 s`);
              }),
            ]),
          );
      }
      await Promise.all(pending);
      w1.stop();
      const lat = [...latencies].sort((a, b) => a - b);
      console.error(
        `bench [${mode}]: latency phase done (p50 ${fmt(percentile(lat, 50))} ms, p99 ${fmt(percentile(lat, 99))} ms); deleting ${ns1}`,
      );
      const deleteLatencyMs = await deleteNamespace(api, ns1);

      // 2b. FunctionServices until Ready (and 3. the operator's memory while they converge).
      const nsFs = `bench-fsvc-${mode}`;
      await createNamespace(api, nsFs);
      let peakRss = op.rssMb();
      const before = await scrape(metricsUrl);
      const fs = await burst(kube, api, {
        ns: nsFs,
        collection: functionServicePath(nsFs),
        watchPath: functionServicePath(nsFs),
        watchType: FUNCTION_SERVICES,
        body: fsvcBody,
        done: fsvcReady,
        n: N,
        sample: () => (peakRss = Math.max(peakRss, op.rssMb())),
      });
      const readyRss = op.rssMb();
      const afterBurst = await scrape(metricsUrl);
      console.error(`bench [${mode}]: ${N} FunctionServices Ready in ${fmt(fs.totalMs / 1000, 2)} s`);

      // 4. steady state, with the short resync: let the last status writes land (no write for 5 s, at most
      // 60 s), then count for STEADY_MS.
      const settleStart = Date.now();
      let restartedRss = NaN;
      if (RESYNC_MS !== BURST_RESYNC_MS) {
        await op.stop();
        op = await runOperator(mode, RESYNC_MS);
        await until(
          'the restarted operator to reconcile everything once',
          60_000,
          async () => (await scrape(metricsUrl)).reconciles >= N,
          100,
        );
      }
      let prevWrites = writesOf((await scrape(metricsUrl)).byResource, (k) => !k.endsWith(' leases'));
      let quietSince = Date.now();
      while (Date.now() - quietSince < 5_000 && Date.now() - settleStart < 60_000) {
        await sleep(500);
        const w = writesOf((await scrape(metricsUrl)).byResource, (k) => !k.endsWith(' leases'));
        if (w !== prevWrites) {
          prevWrites = w;
          quietSince = Date.now();
        }
        if (RESYNC_MS === BURST_RESYNC_MS) peakRss = Math.max(peakRss, op.rssMb());
      }
      const settleMs = Date.now() - settleStart;
      const s0 = await scrape(metricsUrl);
      let steadyPeakRss = 0;
      const steadyStart = Date.now();
      while (Date.now() - steadyStart < STEADY_MS) {
        await sleep(250);
        steadyPeakRss = Math.max(steadyPeakRss, op.rssMb());
      }
      const s1 = await scrape(metricsUrl);
      const steadyRss = op.rssMb();
      if (RESYNC_MS !== BURST_RESYNC_MS) restartedRss = steadyPeakRss;
      else peakRss = Math.max(peakRss, steadyPeakRss);
      await op.stop();
      operator = undefined;

      const steadyByRes = diff(s0.byResource, s1.byResource);
      // the next mode starts from an empty cluster (the kwok nodes are sized for N pods)
      console.error(`bench [${mode}]: steady state measured; deleting ${nsFs}`);
      const deleteBurstMs = await deleteNamespace(api, nsFs);
      return {
        mode,
        idleRss,
        lat,
        posts: [...posts].sort((a, b) => a - b),
        fs,
        burstReconciles: afterBurst.reconciles - before.reconciles,
        burstByRes: diff(before.byResource, afterBurst.byResource),
        readyRss,
        peakRss,
        restartedRss,
        steadyRss,
        settleMs,
        steadyReconciles: s1.reconciles - s0.reconciles,
        steadyByVerb: diff(s0.requests, s1.requests),
        steadyByRes,
        steadyWrites: writesOf(steadyByRes, (k) => !k.endsWith(' leases')),
        leaseWrites: writesOf(steadyByRes, (k) => k.endsWith(' leases')),
        deleteLatencyMs,
        deleteBurstMs,
      };
    };
    // A mode that fails (a phase timed out) is reported in its column; the others are still measured.
    const results: ModeResult[] = [];
    const failures = new Map<NatsAuthMode, string>();
    for (const mode of MODES) {
      try {
        results.push(await measureMode(mode));
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        failures.set(mode, reason);
        console.error(`bench [${mode}]: failed: ${reason}`);
        if (mode !== MODES[MODES.length - 1])
          for (const ns of [`bench-latency-${mode}`, `bench-fsvc-${mode}`])
            await deleteNamespace(api, ns).catch(() => undefined);
        await operator?.stop();
        operator = undefined;
      }
    }

    const writeList = (m: Map<string, number>, filter: (k: string) => boolean = () => true): string =>
      [...m]
        .filter(([k]) => WRITE_VERBS.includes(k.split(' ')[0]!) && filter(k))
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || '—';
    const lines: string[] = [];
    lines.push(
      `fnmesh operator bench — ${os.cpus().length} cores, node ${process.version}, kube-apiserver v1.35.4, controller-manager/scheduler --kube-api-qps=${QPS} --kube-api-burst=${QPS * 2}, ` +
        `${nodes} kwok nodes; operator: child process, leader election on, default workers and API connections, resync ${BURST_RESYNC_MS} ms in phases 1-3, ${RESYNC_MS} ms at steady state` +
        (RESYNC_MS !== BURST_RESYNC_MS ? ' (restarted between)' : '') +
        `; one control plane, the baselines first, then each FNMESH_NATS_AUTH mode in turn (${MODES.join(', then ')}) with its own operator process and namespaces`,
    );
    lines.push('');
    lines.push('| baseline (no operator) | time |');
    lines.push('|---|---|');
    lines.push(
      `| ${N} plain Deployments (${INFLIGHT} creates in flight) → all Available | ${fmt(base.totalMs / 1000, 2)} s (creates took ${fmt(base.createMs / 1000, 2)} s) |`,
    );
    for (const mode of MODES) {
      const t = tpl.get(mode)!;
      lines.push(
        `| ${N} Deployments with the operator's pod template for FNMESH_NATS_AUTH=${mode} (created directly) → all Available | ${fmt(t.totalMs / 1000, 2)} s (creates took ${fmt(t.createMs / 1000, 2)} s) |`,
      );
    }
    lines.push(`| namespace delete: ${N} plain Deployments | ${fmt(delBase / 1000)} s |`);
    lines.push('');
    lines.push(`| measurement | ${results.map((r) => `FNMESH_NATS_AUTH=${r.mode}`).join(' | ')} |`);
    lines.push(`|---|${results.map(() => '---|').join('')}`);
    const row = (name: string, value: (r: ModeResult) => string): void =>
      void lines.push(`| ${name} | ${results.map(value).join(' | ')} |`);
    const ratioOf = (r: ModeResult): number => r.fs.totalMs / base.totalMs;
    const tplRatioOf = (r: ModeResult): number => r.fs.totalMs / tpl.get(r.mode)!.totalMs;
    const memMaxOf = (r: ModeResult): number =>
      Math.max(r.peakRss, Number.isFinite(r.restartedRss) ? r.restartedRss : 0);
    row(
      `created → Deployment exists (n=${LATENCY_N}, one every ${GAP_MS} ms, watch) p50 / p90 / p99 / max`,
      ({ lat }) =>
        `${fmt(percentile(lat, 50))} / ${fmt(percentile(lat, 90))} / ${fmt(percentile(lat, 99))} / ${fmt(lat[lat.length - 1] ?? NaN)} ms`,
    );
    row(
      'FunctionService POST time p50 / p99',
      ({ posts }) => `${fmt(percentile(posts, 50))} / ${fmt(percentile(posts, 99))} ms`,
    );
    row(
      `${N} FunctionServices (${INFLIGHT} creates in flight) → all Ready`,
      ({ fs }) => `${fmt(fs.totalMs / 1000, 2)} s (creates took ${fmt(fs.createMs / 1000, 2)} s)`,
    );
    row(
      'FunctionServices × plain baseline / × same-template baseline',
      (r) => `${fmt(ratioOf(r), 2)}× / ${fmt(tplRatioOf(r), 2)}×`,
    );
    row(
      `reconciles / writes during the ${N} burst (to Ready)`,
      (r) => `${r.burstReconciles} / ${writesOf(r.burstByRes)} (${writeList(r.burstByRes)})`,
    );
    row('operator VmRSS: idle (0 objects)', (r) => `${fmt(r.idleRss)} MB`);
    row(
      `operator VmRSS (resync ${BURST_RESYNC_MS} ms): all ${N} Ready / peak during the burst`,
      (r) => `${fmt(r.readyRss)} / ${fmt(r.peakRss)} MB`,
    );
    row(
      `operator VmRSS (resync ${RESYNC_MS} ms${RESYNC_MS !== BURST_RESYNC_MS ? ', restarted' : ''}) with ${N} Ready: end of steady state / peak in it`,
      (r) => `${fmt(r.steadyRss)} / ${fmt(RESYNC_MS !== BURST_RESYNC_MS ? r.restartedRss : r.peakRss)} MB`,
    );
    row(
      `steady state (${STEADY_MS / 1000} s, after the settle): settle / reconciles`,
      (r) => `${fmt(r.settleMs / 1000)} s / ${r.steadyReconciles}`,
    );
    row('steady state: requests by verb', (r) => [...r.steadyByVerb].map(([k, v]) => `${k} ${v}`).join(', ') || 'none');
    row(
      'steady state: writes (excluding the leader Lease) / Lease renewals',
      (r) => `${r.steadyWrites} (${writeList(r.steadyByRes, (k) => !k.endsWith(' leases'))}) / ${r.leaseWrites}`,
    );
    row('steady state: writes per reconcile', (r) =>
      fmt(r.steadyReconciles ? r.steadyWrites / r.steadyReconciles : NaN, 4),
    );
    row(
      `namespace deletes: ${LATENCY_N} FunctionServices / ${N} FunctionServices`,
      (r) => `${fmt(r.deleteLatencyMs / 1000)} s / ${fmt(r.deleteBurstMs / 1000)} s`,
    );
    for (const [mode, reason] of failures)
      lines.push('', `FNMESH_NATS_AUTH=${mode}: not measured, the run failed: ${reason}`);
    lines.push('');
    lines.push(`| target | goal | ${results.map((r) => `FNMESH_NATS_AUTH=${r.mode}`).join(' | ')} |`);
    lines.push(`|---|---|${results.map(() => '---|').join('')}`);
    const target = (name: string, goal: string, value: (r: ModeResult) => [string, boolean]): void =>
      void lines.push(
        `| ${name} | ${goal} | ${results
          .map(value)
          .map(([v, ok]) => `${v} (${ok ? 'met' : 'not met'})`)
          .join(' | ')} |`,
      );
    target('created → Deployment p99', '≤ 200 ms', ({ lat }) => [
      `${fmt(percentile(lat, 99))} ms`,
      percentile(lat, 99) <= 200,
    ]);
    target(`${N} FunctionServices Ready × ${N} plain Deployments Available`, '≤ 1.25×', (r) => [
      `${fmt(ratioOf(r), 2)}×`,
      ratioOf(r) <= 1.25,
    ]);
    target(`(for reference) × ${N} Deployments with the mode's pod template`, '≤ 1.25×', (r) => [
      `${fmt(tplRatioOf(r), 2)}×`,
      tplRatioOf(r) <= 1.25,
    ]);
    target(`operator memory with ${N} FunctionServices (max of all samples)`, '≤ 150 MB', (r) => [
      `${fmt(memMaxOf(r))} MB`,
      memMaxOf(r) <= 150,
    ]);
    target('writes at steady state (excl. Lease)', '0', (r) => [String(r.steadyWrites), r.steadyWrites === 0]);
    console.log(lines.join('\n'));
  } finally {
    await operator?.stop();
    await client?.close();
    await cp.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
