import { KubeApiError } from '../common/kube-client';
import {
  LeaderElector,
  jsonLeaseClient,
  leaseDecision,
  leaseExpiry,
  microTime,
  releasedLeaseSpec,
  type LeaseClient,
  type LeaseLike,
  type LeaseSpecLike,
  type LeaseTiming,
} from './leader-election';

const timing: LeaseTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
const T = Date.parse('2026-11-25T10:00:00Z');

function lease(spec: LeaseSpecLike, resourceVersion = '7'): LeaseLike {
  return { metadata: { name: 'fnmesh-operator', namespace: 'fnmesh-system', resourceVersion }, spec };
}

describe('leaseDecision', () => {
  test.each<[string, LeaseLike | undefined, number, Record<string, unknown>]>([
    [
      'no lease: create it',
      undefined,
      T,
      {
        action: 'acquire',
        reason: 'absent',
        spec: {
          holderIdentity: 'me',
          leaseDurationSeconds: 15,
          acquireTime: microTime(T),
          renewTime: microTime(T),
          leaseTransitions: 0,
        },
      },
    ],
    [
      'released (no holder): take it',
      lease({ leaseDurationSeconds: 1, renewTime: microTime(T - 500), leaseTransitions: 3 }),
      T,
      { action: 'acquire', reason: 'free', spec: { holderIdentity: 'me', leaseTransitions: 4 } },
    ],
    [
      'an empty holder: take it',
      lease({ holderIdentity: '', leaseDurationSeconds: 15, renewTime: microTime(T), leaseTransitions: 1 }),
      T,
      { action: 'acquire', reason: 'free' },
    ],
    [
      'held by another, fresh: wait',
      lease({ holderIdentity: 'other', leaseDurationSeconds: 15, renewTime: microTime(T - 5_000) }),
      T,
      { action: 'wait', holder: 'other', expiresAt: T + 10_000 },
    ],
    [
      'held by another, renewed exactly lease-duration ago: still wait',
      lease({ holderIdentity: 'other', leaseDurationSeconds: 15, renewTime: microTime(T - 15_000) }),
      T,
      { action: 'wait', holder: 'other' },
    ],
    [
      'held by another, expired: take over',
      lease({
        holderIdentity: 'other',
        leaseDurationSeconds: 15,
        renewTime: microTime(T - 15_001),
        leaseTransitions: 2,
      }),
      T,
      {
        action: 'acquire',
        reason: 'expired',
        spec: { holderIdentity: 'me', leaseTransitions: 3, acquireTime: microTime(T) },
      },
    ],
    [
      'held by another, never renewed, acquired long ago: take over',
      lease({ holderIdentity: 'other', leaseDurationSeconds: 15, acquireTime: new Date(T - 60_000) }),
      T,
      { action: 'acquire', reason: 'expired' },
    ],
    [
      'held by me: renew, keeping acquireTime and transitions',
      lease({
        holderIdentity: 'me',
        leaseDurationSeconds: 15,
        acquireTime: microTime(T - 60_000),
        renewTime: microTime(T - 2_000),
        leaseTransitions: 5,
      }),
      T,
      {
        action: 'renew',
        spec: {
          holderIdentity: 'me',
          acquireTime: microTime(T - 60_000),
          renewTime: microTime(T),
          leaseTransitions: 5,
          leaseDurationSeconds: 15,
        },
      },
    ],
    [
      'held by me even when expired: renew',
      lease({ holderIdentity: 'me', leaseDurationSeconds: 15, renewTime: microTime(T - 60_000) }),
      T,
      { action: 'renew' },
    ],
    [
      'times as Date objects (what a client may hand back)',
      lease({ holderIdentity: 'other', leaseDurationSeconds: 15, renewTime: new Date(T - 1000) }),
      T,
      { action: 'wait', expiresAt: T + 14_000 },
    ],
  ])('%s', (_name, l, now, expected) => {
    expect(leaseDecision(l, 'me', now, timing)).toMatchObject(expected);
  });

  test('lease duration is whole seconds, at least 1', () => {
    expect(leaseDecision(undefined, 'me', T, { ...timing, leaseDurationMs: 1500 })).toMatchObject({
      spec: { leaseDurationSeconds: 2 },
    });
    expect(leaseDecision(undefined, 'me', T, { ...timing, leaseDurationMs: 100 })).toMatchObject({
      spec: { leaseDurationSeconds: 1 },
    });
  });

  test('microTime is metav1.MicroTime format', () => {
    expect(microTime(Date.parse('2026-01-02T03:04:05.123Z'))).toBe('2026-01-02T03:04:05.123000Z');
  });

  test('a released lease has no holder and expires in a second', () => {
    const released = releasedLeaseSpec(
      lease({ holderIdentity: 'me', acquireTime: microTime(T - 10), leaseTransitions: 2 }),
      T,
    );
    expect(released).toEqual({
      leaseDurationSeconds: 1,
      acquireTime: microTime(T - 10),
      renewTime: microTime(T),
      leaseTransitions: 2,
    });
    expect(leaseExpiry(lease(released))).toBe(T + 1000);
    expect(leaseDecision(lease(released), 'next', T, timing)).toMatchObject({ action: 'acquire', reason: 'free' });
  });
});

/** An in-memory lease store with resourceVersion checks, to drive the loop; the real API server test comes with the wiring. */
class MemoryLeases {
  lease: LeaseLike | undefined;
  version = 0;
  down = false;

  client(): LeaseClient {
    const conflict = () =>
      new KubeApiError(
        'PUT',
        '/apis/coordination.k8s.io/v1/namespaces/fnmesh-system/leases/fnmesh-operator',
        409,
        JSON.stringify({ kind: 'Status', code: 409, reason: 'Conflict', message: 'the object has been modified' }),
        {},
      );
    const check = () => {
      if (this.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    };
    return {
      get: async () => {
        check();
        return this.lease && structuredClone(this.lease);
      },
      create: async (spec) => {
        check();
        if (this.lease) throw conflict();
        this.lease = lease({ ...spec }, String(++this.version));
        return structuredClone(this.lease);
      },
      replace: async (rv, spec) => {
        check();
        if (!this.lease || this.lease.metadata!.resourceVersion !== rv) throw conflict();
        this.lease = lease({ ...spec }, String(++this.version));
        return structuredClone(this.lease);
      },
    };
  }
}

describe('LeaderElector', () => {
  function elector(store: MemoryLeases, identity: string, clock: { now: number }, log: string[]) {
    return new LeaderElector({
      client: store.client(),
      identity,
      timing,
      now: () => clock.now,
      onStartedLeading: () => log.push(`${identity} started`),
      onStoppedLeading: () => log.push(`${identity} stopped`),
    });
  }

  test('one of two candidates leads; the other takes over only after the lease expires', async () => {
    const store = new MemoryLeases();
    const clock = { now: T };
    const log: string[] = [];
    const a = elector(store, 'a', clock, log);
    const b = elector(store, 'b', clock, log);
    expect(await a.tryOnce()).toBe(true);
    expect(await b.tryOnce()).toBe(false);
    clock.now += 2_000;
    expect(await a.tryOnce()).toBe(true); // renew
    clock.now += 15_000; // a died: no renewal for the lease duration
    expect(await b.tryOnce()).toBe(false); // exactly at expiry
    clock.now += 1;
    expect(await b.tryOnce()).toBe(true);
    expect(store.lease!.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    expect(log).toEqual(['a started', 'b started']);
  });

  test('a leader that sees another holder stops leading', async () => {
    const store = new MemoryLeases();
    const clock = { now: T };
    const log: string[] = [];
    const a = elector(store, 'a', clock, log);
    await a.tryOnce();
    store.lease = lease({ holderIdentity: 'b', leaseDurationSeconds: 15, renewTime: microTime(clock.now) }, 'x');
    expect(await a.tryOnce()).toBe(false);
    expect(a.isLeader()).toBe(false);
    expect(log).toEqual(['a started', 'a stopped']);
  });

  test('a lost race (409) does not lead', async () => {
    const store = new MemoryLeases();
    const clock = { now: T };
    const log: string[] = [];
    const client = store.client();
    const racing: LeaseClient = {
      ...client,
      get: async () => {
        const l = await client.get();
        // Another replica writes between this read and our write.
        store.lease = lease(
          { holderIdentity: 'b', leaseDurationSeconds: 15, renewTime: microTime(clock.now) },
          'b-wrote',
        );
        return l;
      },
    };
    const a = new LeaderElector({
      client: racing,
      identity: 'a',
      timing,
      now: () => clock.now,
      onStartedLeading: () => log.push('a started'),
      onStoppedLeading: () => log.push('a stopped'),
    });
    expect(await a.tryOnce()).toBe(false);
    expect(log).toEqual([]);
  });

  test('a leader that cannot renew gives up at the renew deadline, before the lease expires', async () => {
    const store = new MemoryLeases();
    const clock = { now: T };
    const log: string[] = [];
    const a = elector(store, 'a', clock, log);
    await a.tryOnce();
    store.down = true;
    clock.now += 9_999;
    expect(await a.tryOnce()).toBe(true);
    clock.now += 1;
    expect(await a.tryOnce()).toBe(false);
    expect(log).toEqual(['a started', 'a stopped']);
    expect(clock.now - T).toBeLessThan(timing.leaseDurationMs);
  });

  test('stop releases the lease so another replica takes it at once', async () => {
    const store = new MemoryLeases();
    const clock = { now: T };
    const log: string[] = [];
    const a = elector(store, 'a', clock, log);
    a.start();
    const deadline = Date.now() + 5000;
    while (!a.isLeader() && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(a.isLeader()).toBe(true);
    await a.stop();
    expect(log).toEqual(['a started', 'a stopped']);
    expect(store.lease!.spec!.holderIdentity).toBeUndefined();
    const b = elector(store, 'b', clock, log);
    expect(await b.tryOnce()).toBe(true);
  });
});

describe('jsonLeaseClient', () => {
  test('reads, creates and replaces the Lease with the resourceVersion; a missing one is undefined', async () => {
    const calls: Array<[string, string, unknown]> = [];
    let missing = true;
    const client = jsonLeaseClient(
      {
        async request<T>(method: string, path: string, options?: { body?: unknown }): Promise<T> {
          calls.push([method, path, options?.body]);
          if (method === 'GET' && missing)
            throw Object.assign(new Error('not found'), {
              code: 404,
              body: JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound' }),
            });
          return { metadata: { resourceVersion: '2' } } as T;
        },
      },
      'fnmesh-system',
      'lease',
    );
    expect(await client.get()).toBeUndefined();
    missing = false;
    expect(await client.get()).toEqual({ metadata: { resourceVersion: '2' } });
    const spec = {
      holderIdentity: 'me',
      leaseDurationSeconds: 15,
      acquireTime: microTime(T),
      renewTime: microTime(T),
      leaseTransitions: 0,
    };
    await client.create(spec);
    await client.replace('2', spec);
    expect(calls.map(([m, p]) => `${m} ${p}`)).toEqual([
      'GET /apis/coordination.k8s.io/v1/namespaces/fnmesh-system/leases/lease',
      'GET /apis/coordination.k8s.io/v1/namespaces/fnmesh-system/leases/lease',
      'POST /apis/coordination.k8s.io/v1/namespaces/fnmesh-system/leases',
      'PUT /apis/coordination.k8s.io/v1/namespaces/fnmesh-system/leases/lease',
    ]);
    expect(calls[3]![2]).toEqual({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'lease', namespace: 'fnmesh-system', resourceVersion: '2' },
      spec,
    });
  });
});
