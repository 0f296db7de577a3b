/**
 * Cluster networking of `fnmesh cluster` on a real control plane and node agent (issue 12): pods that call a
 * ClusterIP Service by each of its names, a headless Service's per-pod name (a StatefulSet pod's stable
 * name), an endpoint going unready no longer getting connections, a Service added while pods run reachable
 * with no restart (the pod's /etc/hosts rewritten in place), a Service with no ready endpoint refusing at
 * once, an in-pod client listing pods through KUBERNETES_SERVICE_HOST with its ServiceAccount token (RBAC
 * limited), and a NodePort reachable from this machine. Each "in-pod" client is a process run inside a pod's
 * network, mount and UTS namespaces with `nsenter`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadKubeAccess } from '../common/kubeconfig';
import { humanLogger } from '../common/process/human-logger';
import { portProblem } from '../common/process/ports';
import { loadImages, NodeAgent } from '../cluster/cluster';
import { startControlPlane, type ControlPlane } from './helpers/control-plane';
import { ROOT } from './helpers/cli-process';
import { waitFor } from './helpers/wait';

const NS = 'net-a';
const OTHER_NS = 'net-b';
const IMAGE = 'example.test/net-app';
const NODE = 'net-node';

let cp: ControlPlane;
let agent: NodeAgent;
let runDir: string;
let imageDir: string;
const logs: string[] = [];

// The pods' app: answers who it is; unready (503 on /ready) while the file unready-<pod> exists in its folder.
const SERVER = `
const http = require('node:http'), fs = require('node:fs'), os = require('node:os'), path = require('node:path');
const pod = process.env.POD_NAME;
http.createServer((req, res) => {
  if (req.url === '/ready') {
    res.statusCode = fs.existsSync(path.join(__dirname, 'unready-' + pod)) ? 503 : 200;
    return res.end();
  }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ pod, hostname: os.hostname(), port: Number(process.env.PORT) }));
}).listen(Number(process.env.PORT), '0.0.0.0');
`;

interface PodJson {
  metadata: { name: string };
  status?: {
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { containerID?: string; restartCount: number }[];
  };
}

async function api(p: string, method = 'GET', body?: unknown): Promise<{ status: number; body: unknown }> {
  return cp.request(p, body === undefined ? { method } : { method, body });
}

async function apply(manifest: Record<string, unknown>): Promise<void> {
  const r = await cp.kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
  if (r.code !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
}

function podManifest(
  name: string,
  labels: Record<string, string>,
  port: number,
  extra: Record<string, unknown> = {},
  ns = NS,
): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels },
    spec: {
      nodeName: NODE,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'app',
          image: `${IMAGE}:1`,
          env: [
            { name: 'PORT', value: String(port) },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          ],
          ports: [{ containerPort: port, name: 'http' }],
          readinessProbe: { httpGet: { path: '/ready', port }, periodSeconds: 1, failureThreshold: 1 },
        },
      ],
      ...extra,
    },
  };
}

function service(name: string, spec: Record<string, unknown>, ns = NS): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec };
}

async function getPod(name: string, ns = NS): Promise<PodJson> {
  const r = await api(`/api/v1/namespaces/${ns}/pods/${name}`);
  return r.body as PodJson;
}

const ready = (p: PodJson): boolean =>
  (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

async function waitReady(name: string, ns = NS): Promise<PodJson> {
  return waitFor(
    async () => {
      const p = await getPod(name, ns);
      return ready(p) ? p : undefined;
    },
    { timeoutMs: 30_000, what: `pod ${ns}/${name} Ready` },
  );
}

function pidOf(p: PodJson): number {
  return Number(p.status?.containerStatuses?.[0]?.containerID?.split('/').pop());
}

function environ(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** Runs `node --input-type=module -e script` inside the container of process `pid` (its namespaces and env). */
function inPod(pid: number, script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      'nsenter',
      ['-t', String(pid), '--net', '--mount', '--uts', '--', process.execPath, '--input-type=module', '-e', script],
      { env: environ(pid), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** GETs `url` from inside the pod; the parsed answer, or the error's code. */
async function getFrom(pid: number, url: string): Promise<{ pod?: string; hostname?: string; error?: string }> {
  const r = await inPod(
    pid,
    `try { const r = await fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }); console.log(await r.text()); }
     catch (e) { console.log(JSON.stringify({ error: String(e.cause?.code ?? e.cause?.message ?? e.message) })); }`,
  );
  if (r.code !== 0) throw new Error(`in-pod fetch failed (exit ${String(r.code)}): ${r.stderr} ${r.stdout}`);
  return JSON.parse(r.stdout.trim()) as { pod?: string; hostname?: string; error?: string };
}

async function podIP(name: string): Promise<string> {
  return (await waitFor(async () => (await getPod(name)).status?.podIP, { what: `${name}'s pod IP` }))!;
}

let client: number;
/**
 * A name /etc/hosts does not hold: the pod has no DNS server to ask (its resolv.conf's nameserver is not
 * reachable from its network namespace), so the lookup fails as "try again" rather than "no such name".
 */
const UNRESOLVED = ['ENOTFOUND', 'EAI_AGAIN'];

beforeAll(async () => {
  const sandboxScript = path.join(ROOT, 'dist', 'cluster', 'pod-sandbox.js');
  if (!existsSync(sandboxScript)) throw new Error('dist/ is missing: run `npm run build`');
  cp = await startControlPlane({ kwokNode: false });
  runDir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-net-'));
  imageDir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-net-image-'));
  writeFileSync(
    path.join(imageDir, 'Dockerfile'),
    'FROM node:22-slim\nWORKDIR /app\nCOPY . .\nCMD ["node", "/app/server.js"]\n',
  );
  writeFileSync(path.join(imageDir, 'server.js'), SERVER);
  const images = loadImages(ROOT, [
    { repository: IMAGE, dockerfile: path.join(imageDir, 'Dockerfile'), root: imageDir },
  ]);
  agent = new NodeAgent({
    access: loadKubeAccess({ kubeconfig: cp.kubeconfig, env: {} }),
    nodeName: NODE,
    runDir,
    images,
    egress: [],
    sandboxScript,
    logger: humanLogger((l) => logs.push(l), false),
    output: () => undefined,
    volumeSyncMs: 1_000,
  });
  await agent.start();
  for (const ns of [NS, OTHER_NS]) {
    await api('/api/v1/namespaces', 'POST', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await waitFor(async () => (await api(`/api/v1/namespaces/${ns}/serviceaccounts/default`)).status === 200, {
      timeoutMs: 30_000,
      what: `the default ServiceAccount of ${ns}`,
    });
  }
  await apply(service('web', { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] }));
  await apply(podManifest('web-1', { app: 'web' }, 8080));
  await apply(podManifest('web-2', { app: 'web' }, 8080));
  // The client's own app listens on 0.0.0.0:8080, the port the web pods' addresses are routed on in it.
  await apply(podManifest('client', { app: 'client' }, 8080));
  await apply(podManifest('far', { app: 'far' }, 8080, {}, OTHER_NS));
  await Promise.all([waitReady('web-1'), waitReady('web-2'), waitReady('far', OTHER_NS)]);
  client = pidOf(await waitReady('client'));
}, 120_000);

afterAll(async () => {
  await agent?.stop(2_000);
  await cp?.stop();
  if (runDir) rmSync(runDir, { recursive: true, force: true });
  if (imageDir) rmSync(imageDir, { recursive: true, force: true });
}, 60_000);

/** Calls `url` from the pod until `check` holds for an answer (routes and endpoints follow the watch). */
async function eventually(
  pid: number,
  url: string,
  check: (a: { pod?: string; error?: string }) => boolean,
  what: string,
): Promise<{ pod?: string; hostname?: string; error?: string }> {
  let last: unknown;
  return waitFor(
    async () => {
      const a = await getFrom(pid, url);
      last = a;
      return check(a) ? a : undefined;
    },
    {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: `${what} (last answer ${JSON.stringify(last)}; agent: ${logs.slice(-5).join(' | ')})`,
    },
  );
}

test('a pod calls a ClusterIP Service by each of its names, its ready endpoints in turn', async () => {
  for (const name of ['web', `web.${NS}`, `web.${NS}.svc`, `web.${NS}.svc.cluster.local`])
    await eventually(client, `http://${name}/`, (a) => a.pod === 'web-1' || a.pod === 'web-2', `web by ${name}`);
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add((await getFrom(client, 'http://web.net-a.svc/')).pod ?? 'none');
  expect([...seen].sort()).toEqual(['web-1', 'web-2']);
  // from another namespace: the namespaced names resolve, the short one does not
  const far = pidOf(await getPod('far', OTHER_NS));
  expect((await getFrom(far, `http://web.${NS}/`)).pod).toMatch(/^web-[12]$/);
  expect(UNRESOLVED).toContain((await getFrom(far, 'http://web/')).error);
  // the Service variables of the Services that existed when the pod started
  const env = environ(client);
  const ip = ((await api(`/api/v1/namespaces/${NS}/services/web`)).body as { spec: { clusterIP: string } }).spec
    .clusterIP;
  expect(env.WEB_SERVICE_HOST).toBe(ip.replace(/^10\./, '127.'));
  expect(env.WEB_SERVICE_PORT).toBe('80');
  expect(env.WEB_SERVICE_PORT_HTTP).toBe('80');
  expect(env.WEB_PORT_80_TCP).toBe(`tcp://${env.WEB_SERVICE_HOST}:80`);
  expect(env.KUBERNETES_SERVICE_HOST).toBe('kubernetes.default.svc');
  expect(env.KUBERNETES_SERVICE_PORT).toBe('443');
  expect(environ(far).WEB_SERVICE_HOST).toBeUndefined();
  // a pod's own hostname, and another pod by its mapped pod IP on its containerPort
  expect((await getFrom(client, 'http://client:8080/')).hostname).toBe('client');
  const web1 = (await podIP('web-1')).replace(/^10\./, '127.');
  expect((await getFrom(client, `http://${web1}:8080/`)).pod).toBe('web-1');
}, 60_000);

test('an endpoint going unready stops getting connections, and gets them again once ready', async () => {
  const flag = path.join(imageDir, 'unready-web-1');
  writeFileSync(flag, '');
  try {
    await waitFor(async () => !ready(await getPod('web-1')), { timeoutMs: 10_000, what: 'web-1 unready' });
    await eventually(client, 'http://web/', (a) => a.pod === 'web-2', 'web-2 only');
    // the EndpointSlice says web-1 is not ready: after one answer from web-2 alone, only web-2 answers
    await waitFor(
      async () => {
        const answers = await Promise.all([1, 2, 3, 4].map(() => getFrom(client, 'http://web/')));
        return answers.every((a) => a.pod === 'web-2');
      },
      { timeoutMs: 10_000, what: 'only web-2 answering' },
    );
  } finally {
    rmSync(flag, { force: true });
  }
  await waitReady('web-1');
  await eventually(client, 'http://web/', (a) => a.pod === 'web-1', 'web-1 back');
}, 60_000);

test('a Service added while pods run is reachable at once by name; the hosts file is rewritten in place', async () => {
  const inode = async (): Promise<string> =>
    (await inPod(client, "import fs from 'node:fs'; console.log(fs.statSync('/etc/hosts').ino)")).stdout.trim();
  const before = await inode();
  expect(UNRESOLVED).toContain((await getFrom(client, 'http://late/')).error);
  await apply(service('late', { selector: { app: 'web' }, ports: [{ port: 9000, targetPort: 8080 }] }));
  await eventually(client, 'http://late:9000/', (a) => /^web-[12]$/.test(a.pod ?? ''), 'the new Service');
  expect(await inode()).toBe(before);
  const hosts = (await inPod(client, "import fs from 'node:fs'; console.log(fs.readFileSync('/etc/hosts', 'utf8'))"))
    .stdout;
  expect(hosts).toMatch(/^127\.96\.\d+\.\d+\tlate\.net-a\.svc\.cluster\.local late\.net-a\.svc late\.net-a late$/m);
  const p = await getPod('client');
  expect(p.status?.containerStatuses?.[0]?.restartCount).toBe(0);
  expect(pidOf(p)).toBe(client);
  // removed: the name goes away again
  await cp.kubectl(['delete', 'service', 'late', '-n', NS]);
  await eventually(client, 'http://late:9000/', (a) => UNRESOLVED.includes(a.error ?? ''), 'the Service gone');
}, 60_000);

test('a Service with no ready endpoint refuses at once (as kube-proxy REJECTs), then answers once it has one', async () => {
  await apply(service('nobody', { selector: { app: 'nobody' }, ports: [{ port: 80, targetPort: 8080 }] }));
  await eventually(client, 'http://nobody/', (a) => !UNRESOLVED.includes(a.error ?? ''), 'nobody resolving');
  const started = Date.now();
  expect((await getFrom(client, 'http://nobody/')).error).toBe('ECONNREFUSED');
  expect(Date.now() - started).toBeLessThan(3_000);
  await apply(podManifest('somebody', { app: 'nobody' }, 8080));
  await waitReady('somebody');
  await eventually(client, 'http://nobody/', (a) => a.pod === 'somebody', 'the new endpoint');
}, 30_000);

test("a headless Service's pods resolve by their stable names", async () => {
  await apply(service('db', { clusterIP: 'None', selector: { app: 'db' }, ports: [{ name: 'peer', port: 7000 }] }));
  await apply(podManifest('db-0', { app: 'db' }, 7000, { hostname: 'db-0', subdomain: 'db' }));
  const db = pidOf(await waitReady('db-0'));
  for (const name of ['db-0.db', `db-0.db.${NS}.svc`, `db-0.db.${NS}.svc.cluster.local`, `db.${NS}.svc`])
    await eventually(client, `http://${name}:7000/`, (a) => a.pod === 'db-0', `db-0 by ${name}`);
  // the pod itself: its hostname and FQDN
  const own = await getFrom(db, `http://db-0.db.${NS}.svc.cluster.local:7000/`);
  expect(own).toEqual(expect.objectContaining({ pod: 'db-0', hostname: 'db-0' }));
}, 60_000);

test('an in-pod client lists pods through KUBERNETES_SERVICE_HOST with its ServiceAccount token, as RBAC allows', async () => {
  await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'lister', namespace: NS } });
  await apply({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'pod-lister', namespace: NS },
    rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
  });
  await apply({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'pod-lister', namespace: NS },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-lister' },
    subjects: [{ kind: 'ServiceAccount', name: 'lister', namespace: NS }],
  });
  await apply(podManifest('lister', { app: 'lister' }, 8080, { serviceAccountName: 'lister' }));
  const pid = pidOf(await waitReady('lister'));
  const clientNode = path.join(ROOT, 'node_modules', '@kubernetes', 'client-node', 'dist', 'index.js');
  const r = await inPod(
    pid,
    `const k8s = await import(${JSON.stringify(clientNode)});
     const kc = new k8s.KubeConfig(); kc.loadFromCluster();
     const core = kc.makeApiClient(k8s.CoreV1Api);
     const mine = await core.listNamespacedPod({ namespace: ${JSON.stringify(NS)} });
     let other = 'allowed';
     try { await core.listNamespacedPod({ namespace: 'default' }); } catch (e) { other = String(e.code ?? e.message); }
     console.log(JSON.stringify({ server: kc.getCurrentCluster().server, pods: mine.items.map((p) => p.metadata.name).sort(), other }));`,
  );
  expect(r.stderr).toBe('');
  const out = JSON.parse(r.stdout.trim()) as { server: string; pods: string[]; other: string };
  expect(out.server).toBe('https://kubernetes.default.svc:443');
  expect(out.pods).toEqual(expect.arrayContaining(['client', 'lister', 'web-1', 'web-2']));
  expect(out.other).toBe('403');
  // fnmesh's own in-cluster loading (common/kubeconfig.ts) reaches it the same way
  const own = await inPod(
    pid,
    `const { loadKubeAccess } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'common', 'kubeconfig.js'))});
     const { KubeClient } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'common', 'kube-client.js'))});
     const access = loadKubeAccess({ env: process.env });
     const c = new KubeClient(access);
     const list = await c.request('GET', '/api/v1/namespaces/${NS}/pods');
     console.log(list.items.length); await c.close();`,
  );
  expect(own.stderr).toBe('');
  expect(Number(own.stdout.trim())).toBeGreaterThanOrEqual(4);
}, 60_000);

test('a NodePort Service is reachable on 127.0.0.1:<nodePort>; a node port taken is a Warning Event', async () => {
  // free node ports in the NodePort range (freePort picks below it)
  const freeNodePort = async (): Promise<number> => {
    for (;;) {
      const p = 30000 + Math.floor(Math.random() * 2767);
      if (!(await portProblem('127.0.0.1', p))) return p;
    }
  };
  const nodePort = await freeNodePort();
  await apply(
    service('web-np', {
      type: 'NodePort',
      selector: { app: 'web' },
      ports: [{ port: 80, targetPort: 8080, nodePort }],
    }),
  );
  const answer = await waitFor(
    async () => {
      const res = await fetch(`http://127.0.0.1:${nodePort}/`);
      return (await res.json()) as { pod: string };
    },
    { timeoutMs: 20_000, what: 'the node port answering' },
  );
  expect(answer.pod).toMatch(/^web-[12]$/);

  const taken = net.createServer();
  let takenPort = await freeNodePort();
  while (takenPort === nodePort) takenPort = await freeNodePort();
  await new Promise<void>((resolve) => taken.listen(takenPort, '127.0.0.1', resolve));
  try {
    await apply(
      service('web-taken', {
        type: 'NodePort',
        selector: { app: 'web' },
        ports: [{ port: 80, targetPort: 8080, nodePort: takenPort }],
      }),
    );
    const event = await waitFor(
      async () => {
        const r = await api(`/api/v1/namespaces/${NS}/events?fieldSelector=involvedObject.name=web-taken`);
        return (r.body as { items: { reason: string; message: string }[] }).items.find(
          (e) => e.reason === 'NodePortUnavailable',
        );
      },
      { timeoutMs: 20_000, what: 'the NodePortUnavailable Event' },
    );
    expect(event.message).toContain(`127.0.0.1:${takenPort}`);
  } finally {
    taken.close();
  }
}, 60_000);
