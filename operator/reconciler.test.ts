/**
 * The reconciler's decisions over in-memory caches and a recording writer (the real API server proof is
 * test/operator.test.ts): what it writes, when it writes nothing, and how it reports an invalid spec.
 */
import type { CoreV1Event, V1Deployment } from '@kubernetes/client-node';
import { silentLogger } from '../common/logger';
import type { SidecarTemplateConfig } from './config';
import { TerminalError } from './controller';
import { EventRecorder } from './events';
import type { KubeWriter } from './kube-writer';
import { asWatchedList, resourceOfPath } from './operator';
import { FunctionServiceReconciler, type FunctionServiceObject } from './reconciler';
import type { FunctionServiceStatus } from './status';

const sidecar: SidecarTemplateConfig = {
  image: 'fnmesh:test',
  natsUrl: 'nats://n:4222',
  resources: { requests: { cpu: '50m' }, limits: {} },
  opsPort: 9090,
  callPort: 3500,
  drainTimeoutMs: 30_000,
};

function fsvc(spec: Record<string, unknown>, rv = '1', status?: Partial<FunctionServiceStatus>): FunctionServiceObject {
  return {
    apiVersion: 'fnmesh.io/v1alpha1',
    kind: 'FunctionService',
    metadata: { name: 'svc', namespace: 'ns', uid: 'uid-1', generation: 1, resourceVersion: rv, managedFields: [] },
    spec,
    ...(status ? { status } : {}),
  };
}

function setup(obj: FunctionServiceObject | undefined) {
  const state = { fs: obj, deployment: undefined as V1Deployment | undefined };
  const applied: V1Deployment[] = [];
  const statuses: FunctionServiceStatus[] = [];
  const events: CoreV1Event[] = [];
  let rv = 10;
  const writer: KubeWriter = {
    async applyDeployment(desired) {
      applied.push(desired);
      return { ...structuredClone(desired), metadata: { ...desired.metadata, resourceVersion: String(++rv), generation: 1, uid: 'dep-uid' } };
    },
    async patchStatus(_ns, _name, status) {
      statuses.push(status);
      return String(++rv);
    },
  };
  const recorder = new EventRecorder({ sink: { create: async (_ns, e) => void events.push(e) }, instance: 'test' });
  const reconciler = new FunctionServiceReconciler({
    functionServices: { get: () => state.fs },
    deployments: { get: () => state.deployment },
    writer,
    events: recorder,
    sidecar,
    now: () => new Date('2026-01-01T00:00:00Z'),
  });
  const run = () => reconciler.reconcile('ns/svc', silentLogger);
  return { state, applied, statuses, events, reconciler, run };
}

const spec = { replicas: 2, functions: [{ name: 'f' }], container: { image: 'img:1' } };

describe('FunctionServiceReconciler', () => {
  test('a missing FunctionService is nothing to do and writes nothing', async () => {
    const t = setup(undefined);
    await t.run();
    expect(t.applied).toHaveLength(0);
    expect(t.statuses).toHaveLength(0);
  });

  test('creates the Deployment once, records one Created event, and does not apply again while the cache lags', async () => {
    const t = setup(fsvc(spec));
    await t.run();
    expect(t.applied).toHaveLength(1);
    expect(t.applied[0]!.spec?.replicas).toBe(2);
    expect(t.events.map((e) => e.reason)).toEqual(['Created']);
    expect(t.statuses).toHaveLength(1);
    // The Deployment's watch event has not arrived: the cache still shows none.
    await t.run();
    expect(t.applied).toHaveLength(1);
    expect(t.statuses).toHaveLength(1);
  });

  test('once the cache holds the applied Deployment, a reconcile writes nothing', async () => {
    const t = setup(fsvc(spec));
    await t.run();
    t.state.deployment = { ...structuredClone(t.applied[0]!), metadata: { ...t.applied[0]!.metadata, resourceVersion: '11', generation: 1 } };
    t.reconciler.deploymentChanged('ns/svc');
    // The status write is in the cache too.
    t.state.fs = fsvc(spec, '12', t.statuses[0]);
    await t.run();
    await t.run();
    expect(t.applied).toHaveLength(1);
    expect(t.statuses).toHaveLength(1);
  });

  test('a Deployment from a LIST (no apiVersion and kind on its items) is not drift: after a restart a resync writes nothing', async () => {
    const t = setup(fsvc(spec));
    await t.run();
    const { apiVersion: _apiVersion, kind: _kind, ...listed } = structuredClone(t.applied[0]!);
    t.state.deployment = { ...listed, metadata: { ...listed.metadata, resourceVersion: '11', generation: 1 } };
    t.state.fs = fsvc(spec, '12', t.statuses[0]);
    for (let i = 0; i < 3; i++) {
      t.reconciler.deploymentChanged('ns/svc'); // every resync calls the update handler
      await t.run();
    }
    expect(t.applied).toHaveLength(1);
    expect(t.events.map((e) => e.reason)).toEqual(['Created']);
  });

  test('a deleted Deployment is created again even when the add and the delete were coalesced', async () => {
    const t = setup(fsvc(spec));
    await t.run();
    t.reconciler.deploymentChanged('ns/svc'); // add event, then delete event: the cache shows none again
    await t.run();
    expect(t.applied).toHaveLength(2);
  });

  test('drift is applied and recorded as Updated', async () => {
    const t = setup(fsvc(spec));
    await t.run();
    const observed = structuredClone(t.applied[0]!);
    observed.metadata = { ...observed.metadata, resourceVersion: '11', generation: 2 };
    observed.spec!.replicas = 5;
    t.state.deployment = observed;
    t.reconciler.deploymentChanged('ns/svc');
    await t.run();
    expect(t.applied).toHaveLength(2);
    expect(t.events.map((e) => e.reason)).toEqual(['Created', 'Updated']);
    expect(t.events[1]!.message).toContain('spec.replicas');
  });

  test('an invalid spec: Degraded/InvalidSpec once, one Warning event, a TerminalError every time, no Deployment', async () => {
    const t = setup(fsvc({ replicas: 1, functions: [{ name: 'f' }] }));
    await expect(t.run()).rejects.toBeInstanceOf(TerminalError);
    await expect(t.run()).rejects.toThrow(/spec\.container/);
    expect(t.applied).toHaveLength(0);
    expect(t.statuses).toHaveLength(1);
    expect(t.statuses[0]!.conditions.find((c) => c.type === 'Degraded')).toEqual(expect.objectContaining({ status: 'True', reason: 'InvalidSpec' }));
    expect(t.events).toHaveLength(1);
    expect(t.events[0]).toEqual(expect.objectContaining({ type: 'Warning', reason: 'InvalidSpec' }));
  });

  test('a spec the schema refuses names the field', async () => {
    const t = setup(fsvc({ replicas: -1, container: { image: 'x' } }));
    await expect(t.run()).rejects.toThrow(/replicas/);
    expect(t.statuses[0]!.conditions[0]!.message).toContain('spec.replicas');
  });

  test('an apply the API server refuses as invalid is Degraded/ApplyFailed and terminal', async () => {
    const t = setup(fsvc(spec));
    const err = Object.assign(new Error('HTTP-Code: 422'), { code: 422, body: JSON.stringify({ kind: 'Status', reason: 'Invalid', code: 422, message: 'bad image' }) });
    const failing = new FunctionServiceReconciler({
      functionServices: { get: () => t.state.fs },
      deployments: { get: () => undefined },
      writer: { applyDeployment: () => Promise.reject(err), patchStatus: async (_n, _m, s) => {
        t.statuses.push(s);
        return '1';
      } },
      events: new EventRecorder({ sink: { create: async (_ns, e) => void t.events.push(e) }, instance: 'test' }),
      sidecar,
    });
    await expect(failing.reconcile('ns/svc', silentLogger)).rejects.toBeInstanceOf(TerminalError);
    expect(t.statuses[0]!.conditions.find((c) => c.type === 'Degraded')?.reason).toBe('ApplyFailed');
    expect(t.events.map((e) => e.reason)).toEqual(['ApplyFailed']);
  });
});

describe('resourceOfPath', () => {
  test.each([
    ['/apis/apps/v1/namespaces/ns/deployments/svc', { resource: 'deployments', namespace: 'ns' }],
    ['/apis/fnmesh.io/v1alpha1/namespaces/ns/functionservices/svc/status', { resource: 'functionservices/status', namespace: 'ns' }],
    ['/api/v1/namespaces/ns/events', { resource: 'events', namespace: 'ns' }],
    ['/apis/apps/v1/deployments', { resource: 'deployments' }],
    ['/apis/coordination.k8s.io/v1/namespaces/fnmesh-system/leases/fnmesh-operator', { resource: 'leases', namespace: 'fnmesh-system' }],
  ])('%s', (p, expected) => {
    expect(resourceOfPath(p)).toEqual(expected);
  });
});

describe('asWatchedList', () => {
  test('gives every listed item the apiVersion and kind watch events carry, and keeps the ones it has', () => {
    const list = asWatchedList(
      { apiVersion: 'apps/v1', kind: 'DeploymentList', metadata: { resourceVersion: '7' }, items: [{ metadata: { name: 'a' } }, { apiVersion: 'x/v1', kind: 'X', metadata: { name: 'b' } }] },
      'apps/v1',
      'Deployment',
    );
    expect(list.metadata?.resourceVersion).toBe('7');
    expect(list.items).toEqual([
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'a' } },
      { apiVersion: 'x/v1', kind: 'X', metadata: { name: 'b' } },
    ]);
  });
});
