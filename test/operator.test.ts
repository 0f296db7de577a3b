/**
 * The operator on a real control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok): a
 * FunctionService becomes a Deployment with the native sidecar, follows its spec, corrects drift, is
 * garbage-collected with its owner, reports status and Events, does not storm on an invalid spec, leaves a
 * Deployment of the same name that it does not own alone (and takes the name once it is gone), writes
 * nothing at steady state, works with only its RBAC, and fails over between two replicas.
 *
 * The operator runs in this process (operator/operator.ts) with a kubeconfig from the harness.
 */
import { installCrds } from './helpers/crds';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import type { KubeAccess } from '../common/kube-access';
import { accessFromSpec } from '../common/kubeconfig';
import { createLogger, silentLogger, type Logger } from '../common/logger';
import type { Operator } from '../operator';
import { startControlPlane, type ControlPlane } from './helpers/control-plane';
import { LEASE_NS, NATS_URL, OperatorSet, SIDECAR_IMAGE, testOperatorConfig } from './helpers/operators';
import { freePort } from './helpers/ports';
import { waitFor } from './helpers/wait';

jest.setTimeout(120_000);

const repo = path.resolve(__dirname, '..');
const NS = 'default';
const RESYNC_MS = 3000;

let cp: ControlPlane;
const operators = new OperatorSet(() => cp);

function operatorConfig() {
  return testOperatorConfig({ FNMESH_RESYNC_MS: String(RESYNC_MS), FNMESH_CONCURRENT_RECONCILES: '2' });
}

/** FNMESH_TEST_OPERATOR_LOG=<file> writes the operators' debug logs there (JSON lines). */
function testLogger(identity: string): Logger {
  const file = process.env.FNMESH_TEST_OPERATOR_LOG;
  if (!file) return silentLogger;
  return createLogger({
    level: 'debug',
    stream: createWriteStream(file, { flags: 'a' }),
    defaultMeta: { component: 'operator', test: identity },
  });
}

async function runOperator(kubeAccess: KubeAccess | undefined, identity: string): Promise<Operator> {
  return operators.start({
    config: operatorConfig(),
    ...(kubeAccess ? { kubeAccess } : {}),
    logger: testLogger(identity),
    identity,
    onLostLeadership: () => void lostLeadership.push(identity),
  });
}

const stopOperator = (op: Operator): Promise<void> => operators.stop(op);

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (exit ${r.code}): ${r.stderr}`);
  return r.stdout;
}

interface Container {
  name: string;
  image?: string;
  restartPolicy?: string;
  env?: Array<{ name: string; value?: string }>;
}

interface Deployment {
  metadata: {
    uid: string;
    generation: number;
    ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }>;
  };
  spec: { replicas: number; template: { spec: { containers: Container[]; initContainers?: Container[] } } };
  status?: { readyReplicas?: number };
}

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

interface FunctionServiceJson {
  metadata: { uid: string; generation: number };
  spec: { replicas: number };
  status?: { observedGeneration?: number; replicas?: number; readyReplicas?: number; conditions?: Condition[] };
}

async function getDeployment(name: string): Promise<Deployment | undefined> {
  const r = await cp.request(`/apis/apps/v1/namespaces/${NS}/deployments/${name}`);
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`GET deployment ${name}: HTTP ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body as Deployment;
}

async function getFsvc(name: string): Promise<FunctionServiceJson> {
  const r = await cp.request(`/apis/fnmesh.io/v1alpha1/namespaces/${NS}/functionservices/${name}`);
  if (r.status !== 200) throw new Error(`GET functionservice ${name}: HTTP ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body as FunctionServiceJson;
}

function condition(fs: FunctionServiceJson, type: string): Condition | undefined {
  return fs.status?.conditions?.find((c) => c.type === type);
}

function envOf(c: Container | undefined): Record<string, string | undefined> {
  return Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
}

const sidecarOf = (d: Deployment): Container | undefined =>
  d.spec.template.spec.initContainers?.find((c) => c.name === 'fnmesh-sidecar');
const functionOf = (d: Deployment): Container | undefined =>
  d.spec.template.spec.containers.find((c) => c.name === 'function');

function fsvcBody(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'fnmesh.io/v1alpha1', kind: 'FunctionService', metadata: { name, namespace: NS }, spec };
}

const baseSpec = (image = 'example.com/fn:1'): Record<string, unknown> => ({
  replicas: 1,
  functions: [{ name: 'hello', rule: { rule: 'allow' } }],
  container: { image },
});

async function createFsvc(name: string, spec: Record<string, unknown> = baseSpec()): Promise<void> {
  const r = await cp.request(`/apis/fnmesh.io/v1alpha1/namespaces/${NS}/functionservices`, {
    method: 'POST',
    body: fsvcBody(name, spec),
  });
  if (r.status !== 201)
    throw new Error(`creating FunctionService ${name}: HTTP ${r.status}: ${JSON.stringify(r.body)}`);
}

async function waitReady(name: string, replicas: number): Promise<FunctionServiceJson> {
  return waitFor(
    async () => {
      const fs = await getFsvc(name);
      const ready = condition(fs, 'Ready');
      return ready?.status === 'True' &&
        fs.status?.readyReplicas === replicas &&
        fs.status.observedGeneration === fs.metadata.generation
        ? fs
        : undefined;
    },
    { timeoutMs: 30_000, what: `FunctionService ${name} Ready with ${replicas} ready replicas` },
  );
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

let op: Operator;
let crdInstalledAt = 0;
const lostLeadership: string[] = [];

beforeAll(async () => {
  cp = await startControlPlane();
  await installCrds(cp);
  crdInstalledAt = Date.now();
  await kubectl(['create', 'namespace', LEASE_NS]);
  op = await runOperator(undefined, 'admin-operator');
  await waitFor(() => op.isLeader() && op.synced(), {
    timeoutMs: 20_000,
    what: 'the operator to lead with synced caches',
  });
}, 300_000);

afterAll(async () => {
  await operators.stopAll();
  await cp?.stop();
});

describe('a FunctionService becomes a Deployment', () => {
  test('creating a FunctionService creates a Deployment with the native sidecar, the owner reference and the sidecar env', async () => {
    // Measured from the POST's response (the object exists) to the first GET that finds the Deployment,
    // polling every 5 ms; the POST's own time is logged apart (the first custom object of a new CRD is
    // slow to create: the API server sets up quota admission for the resource).
    const posts: number[] = [];
    const latencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      const name = `latency-${i}`;
      const t0 = performance.now();
      await createFsvc(name);
      const t1 = performance.now();
      await waitFor(() => getDeployment(name), { timeoutMs: 10_000, intervalMs: 5, what: `Deployment ${name}` });
      posts.push(t1 - t0);
      latencies.push(performance.now() - t1);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const ms = (l: number[]): string => l.map((x) => x.toFixed(0)).join(', ');
    console.error(
      `FunctionService created → Deployment exists (n=10, 5 ms polling): p50 ${percentile(sorted, 50).toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms; ` +
        `in creation order: ${ms(latencies)}; POST times: ${ms(posts)}`,
    );

    const fs = await getFsvc('latency-0');
    const d = (await getDeployment('latency-0'))!;
    const init = d.spec.template.spec.initContainers ?? [];
    expect(init[0]?.name).toBe('fnmesh-sidecar');
    expect(init[0]?.restartPolicy).toBe('Always');
    expect(init[0]?.image).toBe(SIDECAR_IMAGE);
    expect(d.spec.template.spec.containers.map((c) => c.name)).toEqual(['function']);
    expect(functionOf(d)?.image).toBe('example.com/fn:1');
    expect(d.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'FunctionService', name: 'latency-0', uid: fs.metadata.uid, controller: true }),
    ]);
    expect(envOf(init[0])).toEqual(
      expect.objectContaining({
        FNMESH_NAMESPACE: NS,
        FNMESH_SERVICE: 'latency-0',
        FNMESH_FUNCTIONS: 'hello',
        FNMESH_NATS_URL: NATS_URL,
        FNMESH_FUNCTION_PORT: '8080',
        FNMESH_TIMEOUT_MS: '10000',
      }),
    );
    expect(envOf(functionOf(d))).toEqual(
      expect.objectContaining({ PORT: '8080', FNMESH_SIDECAR_URL: 'http://127.0.0.1:3500' }),
    );
  });

  test('the status turns Ready once kwok makes the pods ready, with observedGeneration and replica counts', async () => {
    const fs = await waitReady('latency-0', 1);
    expect(fs.status?.replicas).toBe(1);
    expect(condition(fs, 'Degraded')?.status).toBe('False');
    expect(condition(fs, 'Progressing')?.reason).toBe('RolloutComplete');
    const events = JSON.parse(
      await kubectl([
        'get',
        'events',
        '-n',
        NS,
        '--field-selector',
        'involvedObject.name=latency-0,reason=Created',
        '-o',
        'json',
      ]),
    ) as { items: unknown[] };
    expect(events.items).toHaveLength(1);
  });
});

describe('the Deployment follows the spec', () => {
  const name = 'follow';

  beforeAll(async () => {
    await createFsvc(name);
    await waitReady(name, 1);
  });

  test('changing replicas, image, a rule and timeoutMs updates the Deployment and the status follows the new generation', async () => {
    const patch = {
      spec: {
        replicas: 2,
        timeoutMs: 2500,
        functions: [
          { name: 'hello', rule: { rule: 'authenticated' } },
          { name: 'bye', rule: { rule: 'allow' } },
        ],
        container: { image: 'example.com/fn:2' },
      },
    };
    await kubectl(['patch', 'fsvc', name, '-n', NS, '--type', 'merge', '-p', JSON.stringify(patch)]);
    const d = await waitFor(
      async () => {
        const d = await getDeployment(name);
        return d &&
          d.spec.replicas === 2 &&
          functionOf(d)?.image === 'example.com/fn:2' &&
          envOf(sidecarOf(d)).FNMESH_TIMEOUT_MS === '2500'
          ? d
          : undefined;
      },
      { what: 'the Deployment to follow the new spec' },
    );
    expect(envOf(sidecarOf(d)).FNMESH_FUNCTIONS).toBe('hello,bye');
    const fs = await waitReady(name, 2);
    expect(fs.status?.observedGeneration).toBe(fs.metadata.generation);
  });

  test('queueLength and outlierDetection reach the sidecar, and outlierDetection taken out of the spec leaves it', async () => {
    const patch = { spec: { queueLength: 8, outlierDetection: { consecutiveFailures: 3 } } };
    await kubectl(['patch', 'fsvc', name, '-n', NS, '--type', 'merge', '-p', JSON.stringify(patch)]);
    await waitFor(
      async () => {
        const env = envOf(sidecarOf((await getDeployment(name))!));
        return env.FNMESH_QUEUE_LENGTH === '8' && env.FNMESH_OUTLIER_DETECTION === '{"consecutiveFailures":3}';
      },
      { what: 'the sidecar env to carry the queue length and the outlier detection' },
    );
    const remove = [{ op: 'remove', path: '/spec/outlierDetection' }];
    await kubectl(['patch', 'fsvc', name, '-n', NS, '--type', 'json', '-p', JSON.stringify(remove)]);
    const d = await waitFor(
      async () => {
        const d = (await getDeployment(name))!;
        return 'FNMESH_OUTLIER_DETECTION' in envOf(sidecarOf(d)) ? undefined : d;
      },
      { what: 'FNMESH_OUTLIER_DETECTION to leave the sidecar env' },
    );
    expect(envOf(sidecarOf(d)).FNMESH_QUEUE_LENGTH).toBe('8');
    await waitReady(name, 2);
  });

  test('kubectl scale fsvc scales the Deployment', async () => {
    await kubectl(['scale', 'fsvc', name, '-n', NS, '--replicas=3']);
    await waitFor(async () => (await getDeployment(name))?.spec.replicas === 3, {
      what: 'the Deployment to have 3 replicas',
    });
    await waitReady(name, 3);
  });
});

describe('drift is corrected', () => {
  const name = 'drift';

  beforeAll(async () => {
    await createFsvc(name, { ...baseSpec(), replicas: 2 });
    await waitReady(name, 2);
  });

  test('replicas edited on the Deployment by hand are put back', async () => {
    await kubectl(['scale', 'deployment', name, '-n', NS, '--replicas=5']);
    await waitFor(async () => (await getDeployment(name))?.spec.replicas === 2, { what: 'replicas put back to 2' });
    await waitReady(name, 2);
  });

  test('a deleted Deployment is recreated', async () => {
    const before = (await getDeployment(name))!;
    await kubectl(['delete', 'deployment', name, '-n', NS, '--wait=false']);
    const after = await waitFor(
      async () => {
        const d = await getDeployment(name);
        return d && d.metadata.uid !== before.metadata.uid ? d : undefined;
      },
      { what: 'a new Deployment' },
    );
    expect(sidecarOf(after)?.restartPolicy).toBe('Always');
    await waitReady(name, 2);
  });

  test('a sidecar stripped from the Deployment is put back', async () => {
    await kubectl([
      'patch',
      'deployment',
      name,
      '-n',
      NS,
      '--type',
      'json',
      '-p',
      JSON.stringify([{ op: 'remove', path: '/spec/template/spec/initContainers' }]),
    ]);
    await waitFor(
      async () => {
        const d = await getDeployment(name);
        return (
          d &&
          sidecarOf(d)?.restartPolicy === 'Always' &&
          d.spec.template.spec.initContainers?.[0]?.name === 'fnmesh-sidecar'
        );
      },
      { what: 'the sidecar to be put back' },
    );
  });
});

test('a spec the operator cannot run is reported Degraded/InvalidSpec with one Event and no retry storm', async () => {
  const name = 'invalid';
  const key = `${NS}/${name}`;
  // The CRD accepts a FunctionService without spec.container (fnmesh local runs those); a cluster cannot.
  await createFsvc(name, { replicas: 1, functions: [{ name: 'f' }] });
  const fs = await waitFor(
    async () => {
      const fs = await getFsvc(name);
      return condition(fs, 'Degraded')?.status === 'True' ? fs : undefined;
    },
    { what: 'Degraded' },
  );
  expect(condition(fs, 'Degraded')?.reason).toBe('InvalidSpec');
  expect(condition(fs, 'Degraded')?.message).toContain('spec.container');
  expect(condition(fs, 'Ready')).toEqual(expect.objectContaining({ status: 'False', reason: 'InvalidSpec' }));
  expect(await getDeployment(name)).toBeUndefined();

  // Over a period that spans more than one resync, the key is reconciled a handful of times, not dozens.
  const start = op.reconcileCount(key);
  const windowStart = Date.now();
  await waitFor(() => Date.now() - windowStart > RESYNC_MS + 1500, { intervalMs: 100, what: 'the observation period' });
  const during = op.reconcileCount(key) - start;
  console.error(
    `invalid spec: ${op.reconcileCount(key)} reconciles in total, ${during} in a ${RESYNC_MS + 1500} ms window (resync every ${RESYNC_MS} ms)`,
  );
  expect(op.reconcileCount(key)).toBeLessThanOrEqual(6);
  expect(during).toBeLessThanOrEqual(3);

  const events = JSON.parse(
    await kubectl([
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      `involvedObject.name=${name},reason=InvalidSpec`,
      '-o',
      'json',
    ]),
  ) as {
    items: Array<{ type: string; message: string; count?: number; involvedObject: { kind: string; uid: string } }>;
  };
  expect(events.items).toHaveLength(1);
  expect(events.items[0]).toEqual(
    expect.objectContaining({
      type: 'Warning',
      involvedObject: expect.objectContaining({ kind: 'FunctionService', uid: fs.metadata.uid }),
    }),
  );
  expect(events.items[0]!.message).toContain('spec.container');

  // Fixing the spec recovers it.
  await kubectl([
    'patch',
    'fsvc',
    name,
    '-n',
    NS,
    '--type',
    'merge',
    '-p',
    JSON.stringify({ spec: { container: { image: 'example.com/fn:1' } } }),
  ]);
  const fixed = await waitReady(name, 1);
  expect(condition(fixed, 'Degraded')?.status).toBe('False');
});

describe('a Deployment of the same name that the operator does not own', () => {
  interface Owned {
    metadata: {
      generation: number;
      labels?: Record<string, string>;
      ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }>;
      managedFields?: Array<{ manager: string }>;
    };
    spec: { template: { spec: { containers: Container[]; initContainers?: Container[] } } };
  }

  async function getOwned(name: string): Promise<Owned | undefined> {
    return (await getDeployment(name)) as unknown as Owned | undefined;
  }

  async function waitNotOwned(name: string): Promise<FunctionServiceJson> {
    return waitFor(
      async () => {
        const fs = await getFsvc(name);
        return condition(fs, 'Degraded')?.reason === 'DeploymentNotOwned' ? fs : undefined;
      },
      { what: `${name} Degraded/DeploymentNotOwned` },
    );
  }

  async function notOwnedEvents(name: string): Promise<Array<{ type: string; message: string }>> {
    const list = JSON.parse(
      await kubectl([
        'get',
        'events',
        '-n',
        NS,
        '--field-selector',
        `involvedObject.name=${name},reason=DeploymentNotOwned`,
        '-o',
        'json',
      ]),
    ) as {
      items: Array<{ type: string; message: string; involvedObject: { kind: string } }>;
    };
    return list.items.filter((e) => e.involvedObject.kind === 'FunctionService');
  }

  /** Waits until the operator's own Deployment (controlled by this FunctionService) exists, then Ready. */
  async function waitOwnDeployment(name: string, uid: string): Promise<void> {
    await waitFor(
      async () => {
        const d = await getOwned(name);
        return d?.metadata.ownerReferences?.some(
          (r) => r.kind === 'FunctionService' && r.uid === uid && r.controller === true,
        )
          ? d
          : undefined;
      },
      { what: `the operator's own Deployment ${name}` },
    );
    await waitReady(name, 1);
  }

  test('one made by hand (outside the operator cache) is left untouched and reported with one Warning; deleting it lets the operator create its own', async () => {
    const name = 'foreign';
    const key = `${NS}/${name}`;
    await kubectl(['create', 'deployment', name, '-n', NS, '--image=example.com/theirs:1']);
    // Settled (its pods ready), so that nothing changes it from here on but the operator, if it did.
    await waitFor(async () => ((await getDeployment(name))?.status?.readyReplicas ?? 0) === 1, {
      what: `Deployment ${name} ready`,
    });
    const before = (await getOwned(name))!;
    await createFsvc(name);
    const fs = await waitNotOwned(name);
    const degraded = condition(fs, 'Degraded')!;
    expect(degraded.status).toBe('True');
    expect(degraded.message).toContain(`Deployment ${NS}/${name} already exists`);
    expect(degraded.message).toContain('delete or rename that Deployment');
    expect(condition(fs, 'Ready')).toEqual(expect.objectContaining({ status: 'False', reason: 'DeploymentNotOwned' }));
    await waitFor(async () => (await notOwnedEvents(name)).length === 1, { what: 'the DeploymentNotOwned Warning' });

    // Over a period longer than a resync: a handful of reconciles at most, one Event, and the Deployment as it was.
    const start = op.reconcileCount(key);
    const windowStart = Date.now();
    await waitFor(() => Date.now() - windowStart > RESYNC_MS + 1500, {
      intervalMs: 100,
      what: 'the observation period',
    });
    expect(op.reconcileCount(key) - start).toBeLessThanOrEqual(3);
    const events = await notOwnedEvents(name);
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe('Warning');
    const after = (await getOwned(name))!;
    expect(after.metadata.generation).toBe(before.metadata.generation);
    expect(after.metadata.ownerReferences).toBeUndefined();
    expect(after.metadata.labels).toEqual(before.metadata.labels);
    expect(after.spec.template.spec.containers.map((c) => c.image)).toEqual(['example.com/theirs:1']);
    expect(after.spec.template.spec.initContainers).toBeUndefined();
    expect((after.metadata.managedFields ?? []).map((m) => m.manager)).not.toContain('fnmesh-operator');

    await kubectl(['delete', 'deployment', name, '-n', NS, '--wait=false']);
    await waitOwnDeployment(name, fs.metadata.uid);
    expect(condition(await getFsvc(name), 'Degraded')?.status).toBe('False');
  });

  test('one controlled by another object is not modified, even with the operator label; deleting it lets the operator create its own', async () => {
    const name = 'controlled';
    const cm = JSON.parse(await kubectl(['create', 'configmap', `${name}-owner`, '-n', NS, '-o', 'json'])) as {
      metadata: { uid: string };
    };
    const body = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name,
        namespace: NS,
        labels: { 'app.kubernetes.io/managed-by': 'fnmesh-operator', app: name },
        ownerReferences: [
          { apiVersion: 'v1', kind: 'ConfigMap', name: `${name}-owner`, uid: cm.metadata.uid, controller: true },
        ],
      },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: { containers: [{ name: 'c', image: 'example.com/theirs:1' }] },
        },
      },
    };
    const r = await cp.request(`/apis/apps/v1/namespaces/${NS}/deployments`, { method: 'POST', body });
    expect(r.status).toBe(201);
    const before = (await getOwned(name))!;
    await createFsvc(name);
    const fs = await waitNotOwned(name);
    expect(condition(fs, 'Degraded')!.message).toContain(`is controlled by ConfigMap ${name}-owner`);
    const after = (await getOwned(name))!;
    expect(after.metadata.generation).toBe(before.metadata.generation);
    expect(after.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'ConfigMap', uid: cm.metadata.uid }),
    ]);
    expect((after.metadata.managedFields ?? []).map((m) => m.manager)).not.toContain('fnmesh-operator');

    await kubectl(['delete', 'deployment', name, '-n', NS, '--wait=false']);
    await waitOwnDeployment(name, fs.metadata.uid);
  });
});

test('at steady state the operator makes no API writes, across resyncs', async () => {
  const name = 'steady';
  await createFsvc(name);
  await waitReady(name, 1);
  // Let the last watch events of the rollout settle: no write for one resync period.
  const notLease = (r: { resource: string }): boolean => r.resource !== 'leases';
  let last = op.writes(notLease).length;
  let quietSince = Date.now();
  await waitFor(
    () => {
      const n = op.writes(notLease).length;
      if (n !== last) {
        last = n;
        quietSince = Date.now();
      }
      return Date.now() - quietSince > 1000;
    },
    { timeoutMs: 20_000, intervalMs: 50, what: 'the operator to stop writing' },
  );
  const writesBefore = op.writes(notLease).length;
  const reconcilesBefore = op.reconcileCount();
  const windowStart = Date.now();
  await waitFor(() => Date.now() - windowStart > 2 * RESYNC_MS + 500, { intervalMs: 100, what: 'the quiet period' });
  const writes = op.writes(notLease).slice(writesBefore);
  const reconciles = op.reconcileCount() - reconcilesBefore;
  console.error(`steady state: ${reconciles} reconciles and ${writes.length} writes in ${2 * RESYNC_MS + 500} ms`);
  // Resyncs reconciled every object at least once in the window: the zero is not for lack of reconciles.
  expect(reconciles).toBeGreaterThanOrEqual(6);
  expect(writes).toEqual([]);
});

/** What a pod of the operator's ServiceAccount holds: the API server's CA and a token of that account. */
function serviceAccountAccess(token: string): KubeAccess {
  return accessFromSpec({ server: cp.server, ca: { file: cp.caFile }, token: { data: token } });
}

async function leaseHolder(): Promise<string> {
  return kubectl(['get', 'lease', 'fnmesh-operator', '-n', LEASE_NS, '-o', 'jsonpath={.spec.holderIdentity}']);
}

describe('with only its RBAC (deploy/rbac/operator.yaml), two replicas', () => {
  let a: Operator;
  let b: Operator;

  beforeAll(async () => {
    await kubectl(['apply', '-f', path.join(repo, 'deploy', 'rbac', 'operator.yaml')]);
    const token = (await kubectl(['create', 'token', 'fnmesh-operator', '-n', LEASE_NS, '--duration=1h'])).trim();
    // The admin operator steps down (it releases the lease); from here on only ServiceAccount operators run.
    await stopOperator(op);
    a = await runOperator(serviceAccountAccess(token), 'sa-operator-a');
    await waitFor(() => a.isLeader() && a.synced(), { timeoutMs: 20_000, what: 'operator a to lead' });
    b = await runOperator(serviceAccountAccess(token), 'sa-operator-b');
    await waitFor(() => b.synced(), { timeoutMs: 20_000, what: 'operator b to sync its caches' });
  });

  test('the ServiceAccount operator reconciles a FunctionService to Ready with an Event, and nothing it does is forbidden', async () => {
    await createFsvc('rbac');
    await waitReady('rbac', 1);
    await waitFor(
      async () => {
        const events = JSON.parse(
          await kubectl([
            'get',
            'events',
            '-n',
            NS,
            '--field-selector',
            'involvedObject.name=rbac,reason=Created',
            '-o',
            'json',
          ]),
        ) as { items: unknown[] };
        return events.items.length === 1;
      },
      { what: 'the Created event' },
    );
    const metrics = await a.registry.metrics();
    expect(metrics).not.toMatch(/fnmesh_operator_reconcile_errors_total\{[^}]*class="forbidden"[^}]*\} [1-9]/);
    expect(metrics).not.toMatch(/fnmesh_operator_informer_restarts_total\{[^}]*\} [1-9]/);
  });

  test('one replica leads (the Lease holder); when it stops the other takes over within the lease duration and reconciles', async () => {
    expect(await leaseHolder()).toBe('sa-operator-a');
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    expect(b.reconcileCount()).toBe(0);
    const t0 = Date.now();
    await stopOperator(a);
    await waitFor(() => b.isLeader(), {
      timeoutMs: 3000,
      intervalMs: 10,
      what: 'operator b to take over within the 3 s lease',
    });
    console.error(`leader stopped → standby leading in ${Date.now() - t0} ms (lease 3000 ms, retry 500 ms)`);
    expect(await leaseHolder()).toBe('sa-operator-b');
    await createFsvc('failover');
    await waitReady('failover', 1);
    expect(b.reconcileCount(`${NS}/failover`)).toBeGreaterThan(0);
    expect(lostLeadership).toEqual([]);
  });
});

test('deleting a FunctionService garbage-collects its Deployment through the real garbage collector', async () => {
  const name = 'gc';
  await createFsvc(name);
  await waitFor(() => getDeployment(name), { what: 'the Deployment' });
  const t0 = Date.now();
  await kubectl(['delete', 'fsvc', name, '-n', NS, '--wait=false']);
  // The controller-manager's garbage collector re-reads API discovery every 30 s (fixed in its code), so for
  // a CRD installed moments ago it may first answer "unable to get REST mapping" and retry with back-off.
  // That is the GC learning the kind, not the operator: the deadline allows for it, and the time is logged.
  await waitFor(async () => (await getDeployment(name)) === undefined, {
    timeoutMs: 90_000,
    intervalMs: 100,
    what: 'the Deployment to be garbage-collected',
  });
  console.error(
    `FunctionService deleted → Deployment garbage-collected in ${Date.now() - t0} ms (CRD installed ${Date.now() - crdInstalledAt} ms ago)`,
  );
});

describe('the operator process (fnmesh operator)', () => {
  // Built by `npm run build` (scripts/test.sh builds before Jest); FNMESH_TEST_CLI points elsewhere.
  const cli = process.env.FNMESH_TEST_CLI ?? path.join(repo, 'dist', 'cli', 'main.js');

  function spawnOperator(env: Record<string, string>): {
    child: ChildProcess;
    stdout: () => string;
    stderr: () => string;
    exited: Promise<number | null>;
  } {
    if (!existsSync(cli)) throw new Error(`${cli} does not exist: run npm run build first`);
    const child = spawn(process.execPath, [cli, 'operator'], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { child, stdout: () => out, stderr: () => err, exited };
  }

  beforeAll(async () => {
    // The in-process operators step down; the process takes the lease.
    await operators.stopAll();
  });

  test('exits 2 naming the variable when the configuration is bad', async () => {
    const p = spawnOperator({ KUBECONFIG: cp.kubeconfig, FNMESH_SIDECAR_NATS_URL: NATS_URL });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toContain('FNMESH_SIDECAR_IMAGE is required');
  });

  test('reconciles, serves /readyz and /metrics, and on SIGTERM releases the lease and exits 0', async () => {
    const port = await freePort();
    const p = spawnOperator({
      KUBECONFIG: cp.kubeconfig,
      POD_NAME: 'process-operator',
      FNMESH_SIDECAR_IMAGE: SIDECAR_IMAGE,
      FNMESH_SIDECAR_NATS_URL: NATS_URL,
      FNMESH_OPERATOR_LISTEN: `127.0.0.1:${port}`,
      FNMESH_LEASE_NAMESPACE: LEASE_NS,
      FNMESH_LEASE_DURATION_MS: '3000',
      FNMESH_RENEW_DEADLINE_MS: '2000',
      FNMESH_RETRY_PERIOD_MS: '500',
      // as every operator of this file (testOperatorConfig): minted credentials would roll out every Deployment
      // made so far with a volume; test/operator-nats-creds.test.ts covers them
      FNMESH_NATS_AUTH: 'none',
    });
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, {
        timeoutMs: 20_000,
        what: `/readyz (stderr: ${p.stderr()})`,
      });
      await waitFor(async () => (await leaseHolder()) === 'process-operator', {
        timeoutMs: 10_000,
        what: 'the process to hold the lease',
      });
      await createFsvc('process');
      await waitReady('process', 1);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/fnmesh_operator_reconciles_total\{[^}]*outcome="ok"[^}]*\} [1-9]/);
      expect(metrics).toContain('fnmesh_operator_leader{component="operator"} 1');
      p.child.kill('SIGTERM');
      expect(await p.exited).toBe(0);
      expect(await leaseHolder()).toBe('');
      const lines = p
        .stdout()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { component?: string; message?: string });
      expect(lines.every((l) => l.component === 'operator')).toBe(true);
      expect(lines.map((l) => l.message)).toEqual(
        expect.arrayContaining(['became the leader', 'released the lease', 'operator stopped']),
      );
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  });
});
