import type { V1DeploymentCondition } from '@kubernetes/client-node';
import {
  computeStatus,
  kubeTime,
  statusEqual,
  unavailableReplicasHint,
  type Condition,
  type ObservedDeployment,
  type StatusSubject,
} from './status';

const fs: StatusSubject = { metadata: { name: 'orders', generation: 4 }, spec: { replicas: 3 } };
const t0 = new Date('2026-11-25T10:00:00.456Z');
const t1 = new Date('2026-11-25T10:05:00.000Z');

function deployment(
  status: { replicas?: number; ready?: number; updated?: number; available?: number; observedGeneration?: number },
  conditions: V1DeploymentCondition[] = [],
  desired = 3,
  generation = 7,
): ObservedDeployment {
  return {
    metadata: { name: 'orders', generation },
    spec: { replicas: desired, selector: {}, template: {} },
    status: {
      observedGeneration: status.observedGeneration ?? generation,
      replicas: status.replicas,
      readyReplicas: status.ready,
      updatedReplicas: status.updated,
      availableReplicas: status.available,
      conditions,
    },
  };
}

const progressing = (status: string, reason: string, message = `Progressing ${reason}`): V1DeploymentCondition => ({
  type: 'Progressing',
  status,
  reason,
  message,
});
const replicaFailure: V1DeploymentCondition = {
  type: 'ReplicaFailure',
  status: 'True',
  reason: 'FailedCreate',
  message: 'pods "orders-x" is forbidden: exceeded quota',
};

function conditions(c: Condition[]): Record<string, string> {
  return Object.fromEntries(c.map((x) => [x.type, `${x.status}/${x.reason}`]));
}

describe("computeStatus through a Deployment's life", () => {
  test.each<[string, Parameters<typeof computeStatus>[1], Record<string, string>, StatusSubject?]>([
    [
      'no Deployment yet',
      {},
      { Ready: 'False/DeploymentNotFound', Progressing: 'True/Creating', Degraded: 'False/AsExpected' },
    ],
    [
      'created, not yet seen by the Deployment controller',
      { deployment: deployment({ observedGeneration: 6 }) },
      { Ready: 'False/DeploymentNotObserved', Progressing: 'True/RolloutInProgress', Degraded: 'False/AsExpected' },
    ],
    [
      'progressing',
      {
        deployment: deployment({ replicas: 3, ready: 1, updated: 3, available: 1 }, [
          progressing('True', 'ReplicaSetUpdated'),
        ]),
      },
      { Ready: 'False/ReplicasNotAvailable', Progressing: 'True/ReplicaSetUpdated', Degraded: 'False/AsExpected' },
    ],
    [
      'available',
      {
        deployment: deployment({ replicas: 3, ready: 3, updated: 3, available: 3 }, [
          progressing('True', 'NewReplicaSetAvailable'),
        ]),
      },
      { Ready: 'True/Available', Progressing: 'False/RolloutComplete', Degraded: 'False/AsExpected' },
    ],
    [
      'rolling: old replicas still running beside the new',
      {
        deployment: deployment({ replicas: 4, ready: 4, updated: 3, available: 3 }, [
          progressing('True', 'ReplicaSetUpdated'),
        ]),
      },
      { Ready: 'False/ReplicasNotAvailable', Progressing: 'True/ReplicaSetUpdated', Degraded: 'False/AsExpected' },
    ],
    [
      'stuck past the progress deadline',
      {
        deployment: deployment({ replicas: 3, ready: 1, updated: 3, available: 1 }, [
          progressing('False', 'ProgressDeadlineExceeded', 'ReplicaSet "orders-1" has timed out progressing.'),
        ]),
      },
      {
        Ready: 'False/ProgressDeadlineExceeded',
        Progressing: 'False/ProgressDeadlineExceeded',
        Degraded: 'True/ReplicasUnavailable',
      },
    ],
    [
      'pods cannot be created',
      {
        deployment: deployment({ replicas: 0, updated: 0, available: 0 }, [
          progressing('True', 'NewReplicaSetCreated'),
          replicaFailure,
        ]),
      },
      { Ready: 'False/ReplicasNotAvailable', Progressing: 'True/NewReplicaSetCreated', Degraded: 'True/FailedCreate' },
    ],
    [
      'a Deployment of that name the operator does not own',
      { notOwned: { message: 'Deployment ns/orders already exists and was not created by this operator' } },
      {
        Ready: 'False/DeploymentNotOwned',
        Progressing: 'False/DeploymentNotOwned',
        Degraded: 'True/DeploymentNotOwned',
      },
    ],
    [
      'an invalid spec, with the old Deployment still running',
      {
        specError: 'spec.container.env[0].name: PORT is set by the operator',
        deployment: deployment({ replicas: 3, ready: 3, updated: 3, available: 3 }),
      },
      { Ready: 'False/InvalidSpec', Progressing: 'False/InvalidSpec', Degraded: 'True/InvalidSpec' },
    ],
    [
      'an apply the API server refused',
      { applyError: { reason: 'Invalid', message: 'spec.template.spec.containers[0].image: Required value' } },
      { Ready: 'False/ApplyFailed', Progressing: 'False/ApplyFailed', Degraded: 'True/ApplyFailed' },
    ],
    [
      'scaled to 0',
      { deployment: deployment({}, [progressing('True', 'NewReplicaSetAvailable')], 0) },
      { Ready: 'True/ScaledToZero', Progressing: 'False/RolloutComplete', Degraded: 'False/AsExpected' },
      { metadata: { name: 'orders', generation: 5 }, spec: { replicas: 0 } },
    ],
    [
      'scaled up, the Deployment not applied yet',
      { deployment: deployment({ replicas: 3, ready: 3, updated: 3, available: 3 }) },
      { Ready: 'False/ReplicasNotAvailable', Progressing: 'True/RolloutInProgress', Degraded: 'False/AsExpected' },
      { metadata: { name: 'orders', generation: 5 }, spec: { replicas: 5 } },
    ],
  ])('%s', (_name, observed, expected, subject = fs) => {
    const s = computeStatus(subject, observed, t0);
    expect(conditions(s.conditions)).toEqual(expected);
    expect(s.observedGeneration).toBe(subject.metadata.generation);
    expect(s.selector).toBe('fnmesh.io/service=orders');
    for (const c of s.conditions) {
      expect(c.lastTransitionTime).toBe('2026-11-25T10:00:00Z');
      expect(c.observedGeneration).toBe(subject.metadata.generation);
      expect(c.message).not.toBe('');
    }
  });

  test('replica counts come from the Deployment', () => {
    const s = computeStatus(fs, { deployment: deployment({ replicas: 4, ready: 2, updated: 3, available: 1 }) }, t0);
    expect(s).toMatchObject({ replicas: 4, readyReplicas: 2, updatedReplicas: 3, availableReplicas: 1 });
    expect(computeStatus(fs, {}, t0)).toMatchObject({
      replicas: 0,
      readyReplicas: 0,
      updatedReplicas: 0,
      availableReplicas: 0,
    });
  });

  test('messages say what is wrong', () => {
    const invalid = computeStatus(fs, { specError: 'spec.port: 9090 is taken by the fnmesh sidecar' }, t0);
    expect(invalid.conditions.find((c) => c.type === 'Degraded')!.message).toContain('spec.port');
    const refused = computeStatus(fs, { applyError: { reason: 'Forbidden', message: 'cannot patch deployments' } }, t0);
    expect(refused.conditions.find((c) => c.type === 'Degraded')!.message).toContain('cannot patch deployments');
    const long = computeStatus(fs, { applyError: { reason: 'Invalid', message: 'x'.repeat(100_000) } }, t0);
    expect(long.conditions.every((c) => c.message.length <= 4096)).toBe(true);
    const failing = computeStatus(fs, { deployment: deployment({}, [replicaFailure]) }, t0);
    expect(failing.conditions.find((c) => c.type === 'Degraded')!.message).toBe(replicaFailure.message);
  });
});

describe('lastTransitionTime and statusEqual', () => {
  const progressingObs = {
    deployment: deployment({ replicas: 3, ready: 1, updated: 3, available: 1 }, [
      progressing('True', 'ReplicaSetUpdated'),
    ]),
  };
  const availableObs = {
    deployment: deployment({ replicas: 3, ready: 3, updated: 3, available: 3 }, [
      progressing('True', 'NewReplicaSetAvailable'),
    ]),
  };

  test('the same observation later gives an equal status (no write needed)', () => {
    const first = computeStatus(fs, progressingObs, t0);
    const again = computeStatus(fs, progressingObs, t1, first);
    expect(again).toEqual(first);
    expect(statusEqual(again, first)).toBe(true);
  });

  test('only conditions whose status changed get a new time', () => {
    const first = computeStatus(fs, progressingObs, t0);
    const next = computeStatus(fs, availableObs, t1, first);
    const time = (type: string) => next.conditions.find((c) => c.type === type)!.lastTransitionTime;
    expect(time('Ready')).toBe(kubeTime(t1));
    expect(time('Progressing')).toBe(kubeTime(t1));
    expect(time('Degraded')).toBe(kubeTime(t0));
    expect(statusEqual(next, first)).toBe(false);
  });

  test('a changed reason or message with the same status keeps the time but is a change', () => {
    const a = computeStatus(fs, { deployment: deployment({ replicas: 3, ready: 1, updated: 3, available: 1 }) }, t0);
    const b = computeStatus(fs, { deployment: deployment({ replicas: 3, ready: 2, updated: 3, available: 2 }) }, t1, a);
    expect(b.conditions.find((c) => c.type === 'Ready')!.lastTransitionTime).toBe(kubeTime(t0));
    expect(statusEqual(a, b)).toBe(false);
  });

  test.each<[string, boolean, (s: ReturnType<typeof computeStatus>) => unknown]>([
    ['conditions in another order', true, (s) => ({ ...s, conditions: [...s.conditions].reverse() })],
    ['keys in another order', true, (s) => Object.fromEntries(Object.entries(s).reverse())],
    ['an undefined field', true, (s) => ({ ...s, extra: undefined })],
    ['another observedGeneration', false, (s) => ({ ...s, observedGeneration: 5 })],
    ['another replica count', false, (s) => ({ ...s, readyReplicas: 2 })],
    ['a missing condition', false, (s) => ({ ...s, conditions: s.conditions.slice(1) })],
  ])('statusEqual with %s is %s', (_name, equal, change) => {
    const s = computeStatus(fs, availableObs, t0);
    expect(statusEqual(s, change(s) as typeof s)).toBe(equal);
  });

  test('no previous status is never equal to a computed one', () => {
    expect(statusEqual(undefined, computeStatus(fs, {}, t0))).toBe(false);
  });
});

describe('replicas lost after the service was Ready', () => {
  const complete = [
    progressing('True', 'NewReplicaSetAvailable', 'ReplicaSet "orders-1" has successfully progressed.'),
  ];
  const healthy = deployment({ replicas: 3, ready: 3, updated: 3, available: 3 }, complete);
  const failing = deployment({ replicas: 3, ready: 1, updated: 3, available: 1 }, complete);

  test('at the generation it was Ready: Degraded, the rollout complete, not Progressing; and it stays so until the replicas are back', () => {
    const ready = computeStatus(fs, { deployment: healthy }, t0);
    const lost = computeStatus(fs, { deployment: failing }, t1, ready);
    expect(conditions(lost.conditions)).toEqual({
      Ready: 'False/ReplicasNotAvailable',
      Progressing: 'False/RolloutComplete',
      Degraded: 'True/ReplicasUnavailable',
    });
    expect(lost.conditions.find((c) => c.type === 'Degraded')?.message).toBe(
      '1/3 replicas available, 3 updated; replicas became unavailable after the service was ready (pods failing or ' +
        'not ready); unready replicas include those their sidecar took out of rotation (function down or unhealthy, ' +
        'or ejected by outlier detection); see kubectl describe pod -l fnmesh.io/service=orders, the reason in the ' +
        "sidecar's GET /readyz on its fnmesh-ops port, and the gateway's GET /v1/services",
    );
    expect(lost.conditions.find((c) => c.type === 'Ready')?.message).toBe(
      `1/3 replicas available, 3 updated; ${unavailableReplicasHint('orders')}`,
    );
    const still = computeStatus(fs, { deployment: failing }, t1, lost);
    expect(statusEqual(lost, still)).toBe(true);
    const back = computeStatus(fs, { deployment: healthy }, t1, still);
    expect(conditions(back.conditions)).toEqual({
      Ready: 'True/Available',
      Progressing: 'False/RolloutComplete',
      Degraded: 'False/AsExpected',
    });
  });

  test('after a spec change (a new generation, such as a scale-up) the same counts are a rollout in progress', () => {
    const readyBefore = computeStatus(
      { ...fs, metadata: { name: 'orders', generation: 3 } },
      { deployment: healthy },
      t0,
    );
    const scaling = computeStatus(fs, { deployment: failing }, t1, readyBefore);
    expect(conditions(scaling.conditions)).toEqual({
      Ready: 'False/ReplicasNotAvailable',
      Progressing: 'True/NewReplicaSetAvailable',
      Degraded: 'False/AsExpected',
    });
  });

  test('the hint of where to look comes with replicas that are unavailable, not with a rollout starting pods', () => {
    const stuck = computeStatus(
      fs,
      {
        deployment: deployment({ replicas: 3, ready: 1, updated: 3, available: 1 }, [
          progressing('False', 'ProgressDeadlineExceeded', 'ReplicaSet "orders-1" has timed out progressing.'),
        ]),
      },
      t0,
    );
    expect(stuck.conditions.find((c) => c.type === 'Degraded')?.message).toBe(
      `1/3 replicas available, 3 updated; the rollout passed its progress deadline; ${unavailableReplicasHint('orders')}`,
    );
    const rolling = computeStatus(fs, { deployment: failing }, t0);
    expect(rolling.conditions.find((c) => c.type === 'Ready')?.message).toBe('1/3 replicas available, 3 updated');
  });

  test('never Ready at this generation: not Degraded', () => {
    const first = computeStatus(fs, { deployment: failing }, t0);
    expect(conditions(first.conditions).Degraded).toBe('False/AsExpected');
  });
});
