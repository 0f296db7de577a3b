/**
 * The reconciler's decisions over in-memory caches and a recording writer (the real API server proof is
 * test/operator.test.ts): what it writes, when it writes nothing, and how it reports an invalid spec.
 */
import type { CoreV1Event, V1Deployment, V1OwnerReference } from '@kubernetes/client-node';
import { silentLogger } from '../common/logger';
import type { SidecarTemplateConfig } from './config';
import { TerminalError } from './controller';
import { EventRecorder } from './events';
import type { KubeWriter } from './kube-writer';
import { resourceOfPath } from './operator';
import { FOREIGN_RECHECK_MS, FunctionServiceReconciler, type FunctionServiceObject } from './reconciler';
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

function setup(obj: FunctionServiceObject | undefined, watchLimit = 10, statusProgressIntervalMs = 0) {
  const state = {
    fs: obj,
    /** In the informer cache (Deployments with the operator's label). */
    deployment: undefined as V1Deployment | undefined,
    /** On the API server but outside the cache. */
    live: undefined as V1Deployment | undefined,
  };
  const applied: V1Deployment[] = [];
  const forced: boolean[] = [];
  const reads: string[] = [];
  const statuses: FunctionServiceStatus[] = [];
  const events: CoreV1Event[] = [];
  const watches = new Map<string, string | undefined>();
  let rv = 10;
  const writer: KubeWriter = {
    async applyDeployment(desired, { force }) {
      applied.push(desired);
      forced.push(force);
      return {
        ...structuredClone(desired),
        metadata: { ...desired.metadata, resourceVersion: String(++rv), generation: 1, uid: 'dep-uid' },
      };
    },
    async patchStatus(_ns, _name, status) {
      statuses.push(status);
      return String(++rv);
    },
    async readDeployment(ns, name) {
      reads.push(`${ns}/${name}`);
      return state.live;
    },
  };
  const recorder = new EventRecorder({ sink: { create: async (_ns, e) => void events.push(e) }, instance: 'test' });
  const clock = { now: new Date('2026-01-01T00:00:00Z') };
  const reconciler = new FunctionServiceReconciler({
    functionServices: { get: () => state.fs },
    deployments: { get: () => state.deployment },
    writer,
    events: recorder,
    sidecar,
    foreignWatches: {
      watch: (key, _ns, _name, resourceVersion) => {
        if (!watches.has(key) && watches.size >= watchLimit) return false;
        watches.set(key, resourceVersion);
        return true;
      },
      release: (key) => void watches.delete(key),
    },
    statusProgressIntervalMs,
    now: () => clock.now,
  });
  const run = () => reconciler.reconcile('ns/svc', silentLogger);
  return { state, applied, forced, reads, statuses, events, watches, reconciler, run, clock };
}

/** A Deployment named like the FunctionService that someone else made. */
function foreignDeployment(ownerReferences?: V1OwnerReference[]): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'svc',
      namespace: 'ns',
      uid: 'other-uid',
      resourceVersion: '5',
      generation: 1,
      ...(ownerReferences ? { ownerReferences } : {}),
    },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'svc' } },
      template: { metadata: { labels: { app: 'svc' } }, spec: { containers: [{ name: 'c', image: 'theirs:1' }] } },
    },
  };
}

const condition = (s: FunctionServiceStatus | undefined, type: string) => s?.conditions.find((c) => c.type === type);

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
    // Not in the cache: read first (one without the operator's label may exist); none, so created
    // without force (a Deployment made meanwhile by someone else makes the apply conflict instead).
    expect(t.reads).toEqual(['ns/svc']);
    expect(t.forced).toEqual([false]);
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
    t.state.deployment = {
      ...structuredClone(t.applied[0]!),
      metadata: { ...t.applied[0]!.metadata, resourceVersion: '11', generation: 1 },
    };
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
    // Its own Deployment: applied with force (kubectl scale's field manager holds spec.replicas).
    expect(t.forced).toEqual([false, true]);
    expect(t.events.map((e) => e.reason)).toEqual(['Created', 'Updated']);
    expect(t.events[1]!.message).toContain('spec.replicas');
  });

  test('once in sync, a Deployment status update only recomputes the status: no desired Deployment, no drift check', async () => {
    const t = setup(fsvc(spec));
    await t.run();
    const synced: V1Deployment = {
      ...structuredClone(t.applied[0]!),
      metadata: { ...t.applied[0]!.metadata, uid: 'dep-uid', resourceVersion: '11', generation: 1 },
    };
    t.state.deployment = synced;
    t.state.fs = fsvc(spec, '12', t.statuses[0]);
    await t.run(); // the drift check finds none and remembers it
    // The cached Deployment's spec is changed behind the generation's back: only a new generation (or new
    // labels, annotations, owners) makes the reconciler look at the spec again.
    t.state.deployment = {
      ...synced,
      metadata: { ...synced.metadata, resourceVersion: '13' },
      spec: { ...synced.spec!, replicas: 9 },
      status: { observedGeneration: 1, replicas: 2 },
    };
    await t.run();
    expect(t.applied).toHaveLength(1);
    t.state.deployment = {
      ...t.state.deployment,
      metadata: { ...t.state.deployment.metadata, resourceVersion: '14', generation: 2 },
    };
    await t.run();
    expect(t.applied).toHaveLength(2);
  });

  test('status pacing: a new object rolling out gets its status after the interval, or at once when Ready', async () => {
    const t = setup(fsvc(spec), 10, 5000);
    expect(await t.run()).toEqual({ requeueAfterMs: 5000 }); // created; in progress: held
    expect(t.statuses).toHaveLength(0);
    const created: V1Deployment = {
      ...structuredClone(t.applied[0]!),
      metadata: { ...t.applied[0]!.metadata, uid: 'dep-uid', resourceVersion: '11', generation: 1 },
    };
    t.state.deployment = {
      ...created,
      status: { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 0 },
    };
    t.reconciler.deploymentChanged('ns/svc');
    t.clock.now = new Date('2026-01-01T00:00:02Z');
    expect(await t.run()).toEqual({ requeueAfterMs: 3000 });
    t.state.deployment = {
      ...created,
      metadata: { ...created.metadata, resourceVersion: '12' },
      status: { observedGeneration: 1, replicas: 2, readyReplicas: 2, updatedReplicas: 2, availableReplicas: 2 },
    };
    expect(await t.run()).toBeUndefined();
    expect(t.statuses).toHaveLength(1);
    expect(condition(t.statuses[0], 'Ready')?.status).toBe('True');
  });

  describe('a Deployment of the same name that the FunctionService does not control', () => {
    test('one outside the cache (no operator label) is left alone: Degraded/DeploymentNotOwned, one Warning, a watch from the read version', async () => {
      const t = setup(fsvc(spec));
      t.state.live = foreignDeployment();
      for (let i = 0; i < 3; i++) expect(await t.run()).toBeUndefined();
      expect(t.applied).toHaveLength(0);
      expect(t.statuses).toHaveLength(1);
      const degraded = condition(t.statuses[0], 'Degraded');
      expect(degraded).toEqual(expect.objectContaining({ status: 'True', reason: 'DeploymentNotOwned' }));
      expect(degraded!.message).toContain('Deployment ns/svc');
      expect(degraded!.message).toContain('delete or rename');
      expect(condition(t.statuses[0], 'Ready')).toEqual(
        expect.objectContaining({ status: 'False', reason: 'DeploymentNotOwned' }),
      );
      expect(t.statuses[0]!.replicas).toBe(0);
      expect(t.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'DeploymentNotOwned' })]);
      expect([...t.watches]).toEqual([['ns/svc', '5']]);
    });

    test('once it is deleted, the operator creates its own and stops watching', async () => {
      const t = setup(fsvc(spec));
      t.state.live = foreignDeployment();
      await t.run();
      t.state.fs = fsvc(spec, '12', t.statuses[0]);
      t.state.live = undefined;
      await t.run();
      expect(t.applied).toHaveLength(1);
      expect(t.forced).toEqual([false]);
      expect(t.watches.size).toBe(0);
      expect(condition(t.statuses[1], 'Degraded')?.status).toBe('False');
    });

    test('one controlled by another object is not touched even with the operator label, and needs no watch (the informer sees it)', async () => {
      const t = setup(fsvc(spec));
      t.state.deployment = foreignDeployment([
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'x', uid: 'rs-uid', controller: true },
      ]);
      await t.run();
      expect(t.applied).toHaveLength(0);
      expect(t.reads).toEqual([]);
      expect(t.watches.size).toBe(0);
      expect(condition(t.statuses[0], 'Degraded')!.message).toContain('controlled by ReplicaSet x');
    });

    test('the Deployment of an earlier FunctionService of the same name (another uid) is waited for, not adopted', async () => {
      const t = setup(fsvc(spec));
      t.state.deployment = foreignDeployment([
        { apiVersion: 'fnmesh.io/v1alpha1', kind: 'FunctionService', name: 'svc', uid: 'old-uid', controller: true },
      ]);
      t.state.deployment.metadata!.deletionTimestamp = new Date('2026-01-01T00:00:00Z');
      await t.run();
      expect(t.applied).toHaveLength(0);
      expect(condition(t.statuses[0], 'Degraded')!.message).toMatch(/earlier FunctionService.*being deleted/);
    });

    test('past the watch limit it is re-checked on a timer instead', async () => {
      const t = setup(fsvc(spec), 0);
      t.state.live = foreignDeployment();
      expect(await t.run()).toEqual({ requeueAfterMs: FOREIGN_RECHECK_MS });
      expect(t.applied).toHaveLength(0);
    });
  });

  test('an invalid spec: Degraded/InvalidSpec once, one Warning event, a TerminalError every time, no Deployment', async () => {
    const t = setup(fsvc({ replicas: 1, functions: [{ name: 'f' }] }));
    await expect(t.run()).rejects.toBeInstanceOf(TerminalError);
    await expect(t.run()).rejects.toThrow(/spec\.container/);
    expect(t.applied).toHaveLength(0);
    expect(t.statuses).toHaveLength(1);
    expect(t.statuses[0]!.conditions.find((c) => c.type === 'Degraded')).toEqual(
      expect.objectContaining({ status: 'True', reason: 'InvalidSpec' }),
    );
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
    const err = Object.assign(new Error('HTTP-Code: 422'), {
      code: 422,
      body: JSON.stringify({ kind: 'Status', reason: 'Invalid', code: 422, message: 'bad image' }),
    });
    const failing = new FunctionServiceReconciler({
      functionServices: { get: () => t.state.fs },
      deployments: { get: () => undefined },
      writer: {
        applyDeployment: () => Promise.reject(err),
        patchStatus: async (_n, _m, s) => {
          t.statuses.push(s);
          return '1';
        },
        readDeployment: async () => undefined,
      },
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
    [
      '/apis/fnmesh.io/v1alpha1/namespaces/ns/functionservices/svc/status',
      { resource: 'functionservices/status', namespace: 'ns' },
    ],
    ['/api/v1/namespaces/ns/events', { resource: 'events', namespace: 'ns' }],
    ['/apis/apps/v1/deployments', { resource: 'deployments' }],
    [
      '/apis/coordination.k8s.io/v1/namespaces/fnmesh-system/leases/fnmesh-operator',
      { resource: 'leases', namespace: 'fnmesh-system' },
    ],
  ])('%s', (p, expected) => {
    expect(resourceOfPath(p)).toEqual(expected);
  });
});

describe('NATS credentials', () => {
  test("the credentials come first, for the FunctionService's identity, and the key comes back at their next rotation", async () => {
    const t = setup(fsvc({ ...spec, functions: [{ name: 'f', timeoutMs: 1_200_000 }] }));
    const targets: unknown[] = [];
    const reconciler = new FunctionServiceReconciler({
      functionServices: { get: () => t.state.fs },
      deployments: { get: () => t.state.deployment },
      writer: {
        applyDeployment: async (d) => {
          expect(targets).toHaveLength(1); // the Secret exists before the pods that mount it
          return { ...d, metadata: { ...d.metadata, resourceVersion: '5', generation: 1 } };
        },
        patchStatus: async () => '6',
        readDeployment: async () => undefined,
      },
      events: new EventRecorder({ sink: { create: async () => undefined }, instance: 'test' }),
      sidecar,
      natsCreds: {
        ensure: async (target) => {
          targets.push(target);
          return new Date(t.clock.now.getTime() + 90_000);
        },
      },
      now: () => t.clock.now,
    });
    const result = await reconciler.reconcile('ns/svc', silentLogger);
    expect(result).toEqual({ requeueAfterMs: 90_000 });
    expect(targets).toEqual([
      {
        identity: { kind: 'replica', namespace: 'ns', service: 'svc' },
        namespace: 'ns',
        name: 'fnmesh-service-ns-svc-nats',
        responseTtlMs: 1_200_000,
        owner: expect.objectContaining({ kind: 'FunctionService', name: 'svc', uid: 'uid-1', controller: true }),
      },
    ]);
  });

  test('an invalid spec mints nothing (it is reported as InvalidSpec)', async () => {
    const t = setup(fsvc({ functions: 'nope' }));
    const ensure = jest.fn();
    const reconciler = new FunctionServiceReconciler({
      functionServices: { get: () => t.state.fs },
      deployments: { get: () => undefined },
      writer: { applyDeployment: jest.fn(), patchStatus: async () => '1', readDeployment: async () => undefined },
      events: new EventRecorder({ sink: { create: async () => undefined }, instance: 'test' }),
      sidecar,
      natsCreds: { ensure },
    });
    await expect(reconciler.reconcile('ns/svc', silentLogger)).rejects.toBeInstanceOf(TerminalError);
    expect(ensure).not.toHaveBeenCalled();
  });
});
