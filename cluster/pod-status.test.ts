import type { ContainerRole } from './pod-plan';
import {
  podStatus,
  type ContainerObserved,
  type ContainerState,
  type PodCondition,
  type PodObserved,
} from './pod-status';

const T_START = '2025-03-01T10:00:00.000Z';
const T_PREV = '2025-03-01T10:00:05.000Z';
const NOW = '2025-03-01T10:01:00.000Z';
const LATER = '2025-03-01T10:02:00.000Z';

type Terminated = Extract<ContainerState, { kind: 'terminated' }>;

const running: ContainerState = { kind: 'running', startedAt: T_START };
const completed: Terminated = {
  kind: 'terminated',
  exitCode: 0,
  reason: 'Completed',
  startedAt: T_START,
  finishedAt: T_PREV,
};
const failed: Terminated = { kind: 'terminated', exitCode: 1, reason: 'Error', startedAt: T_START, finishedAt: T_PREV };

function container(name: string, role: ContainerRole, over: Partial<ContainerObserved> = {}): ContainerObserved {
  return {
    name,
    role,
    image: `ghcr.io/me/${name}:1`,
    state: running,
    started: true,
    ready: true,
    restartCount: 0,
    pid: 4242,
    ...over,
  };
}

/** Waiting for its turn: what the agent reports for a container it has not started yet. */
function notStarted(name: string, role: ContainerRole, reason = 'PodInitializing'): ContainerObserved {
  return container(name, role, { state: { kind: 'waiting', reason }, started: false, ready: false, pid: undefined });
}

function observed(containers: ContainerObserved[], over: Partial<PodObserved> = {}): PodObserved {
  return {
    podName: 'web-1',
    sandboxReady: true,
    podIP: '127.0.0.10',
    hostIP: '192.168.1.5',
    startTime: T_START,
    containers,
    ...over,
  };
}

function cond(conditions: PodCondition[], type: string): PodCondition {
  const c = conditions.find((x) => x.type === type);
  if (!c) throw new Error(`no ${type} condition`);
  return c;
}

/** Type → status of each condition. */
function statuses(conditions: PodCondition[]): Record<string, string> {
  return Object.fromEntries(conditions.map((c) => [c.type, c.status]));
}

describe('podStatus: phase and conditions', () => {
  test('everything started and ready: Running, every condition True without reason or message', () => {
    const s = podStatus(
      observed([
        container('migrate', 'init', { state: completed, started: false, ready: false }),
        container('proxy', 'sidecar'),
        container('app', 'main'),
      ]),
      [],
      NOW,
    );
    expect(s.phase).toBe('Running');
    expect(s.conditions).toEqual([
      { type: 'PodReadyToStartContainers', status: 'True', lastTransitionTime: NOW, lastProbeTime: null },
      { type: 'Initialized', status: 'True', lastTransitionTime: NOW, lastProbeTime: null },
      { type: 'Ready', status: 'True', lastTransitionTime: NOW, lastProbeTime: null },
      { type: 'ContainersReady', status: 'True', lastTransitionTime: NOW, lastProbeTime: null },
      { type: 'PodScheduled', status: 'True', lastTransitionTime: NOW, lastProbeTime: null },
    ]);
  });

  test('no container observed yet (the pod still being set up, its volumes just mounted): not Ready', () => {
    const s = podStatus(observed([], { sandboxReady: false }), [], NOW);
    expect(cond(s.conditions, 'Ready').status).toBe('False');
    expect(cond(s.conditions, 'ContainersReady').status).toBe('False');
  });

  test('restartPolicy Never: Succeeded once every container exited 0, Failed when one did not; Always never ends', () => {
    const done = container('call', 'main', { state: completed, started: false, ready: false });
    const bad = container('call', 'main', { state: failed, started: false, ready: false });
    expect(podStatus(observed([done], { restartPolicy: 'Never' }), [], NOW).phase).toBe('Succeeded');
    expect(podStatus(observed([bad], { restartPolicy: 'Never' }), [], NOW).phase).toBe('Failed');
    expect(podStatus(observed([done, container('other', 'main')], { restartPolicy: 'Never' }), [], NOW).phase).toBe(
      'Running',
    );
    expect(podStatus(observed([done], { restartPolicy: 'OnFailure' }), [], NOW).phase).toBe('Succeeded');
    expect(podStatus(observed([bad], { restartPolicy: 'OnFailure' }), [], NOW).phase).not.toMatch(/Succeeded|Failed/);
    expect(podStatus(observed([done]), [], NOW).phase).not.toMatch(/Succeeded|Failed/);
  });

  test('a plain init container still running: Pending, not Initialized, naming it', () => {
    const s = podStatus(observed([container('migrate', 'init', { ready: false }), notStarted('app', 'main')]), [], NOW);
    expect(s.phase).toBe('Pending');
    expect(cond(s.conditions, 'Initialized')).toEqual({
      type: 'Initialized',
      status: 'False',
      reason: 'ContainersNotInitialized',
      message: 'containers with incomplete status: [migrate]',
      lastTransitionTime: NOW,
      lastProbeTime: null,
    });
    expect(cond(s.conditions, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ContainersNotReady',
      message: 'containers with unready status: [app]',
    });
  });

  test('a plain init container that exited non-zero does not complete initialization', () => {
    const s = podStatus(
      observed([
        container('migrate', 'init', { state: failed, started: false, ready: false }),
        notStarted('app', 'main'),
      ]),
      [],
      NOW,
    );
    expect(s.phase).toBe('Pending');
    expect(cond(s.conditions, 'Initialized')).toMatchObject({
      status: 'False',
      message: 'containers with incomplete status: [migrate]',
    });
  });

  test('a plain init container that exited 0 is done, whatever its ready flag', () => {
    const s = podStatus(
      observed([
        container('migrate', 'init', { state: completed, started: false, ready: false }),
        container('app', 'main'),
      ]),
      [],
      NOW,
    );
    expect(cond(s.conditions, 'Initialized').status).toBe('True');
    expect(cond(s.conditions, 'Ready').status).toBe('True');
  });

  test('a native sidecar running but not yet started (startup probe pending): not Initialized', () => {
    const s = podStatus(
      observed([container('proxy', 'sidecar', { started: false, ready: false }), notStarted('app', 'main')]),
      [],
      NOW,
    );
    expect(s.phase).toBe('Pending');
    expect(cond(s.conditions, 'Initialized')).toMatchObject({
      status: 'False',
      message: 'containers with incomplete status: [proxy]',
    });
  });

  test('several pending init containers are listed in order, space-separated', () => {
    const s = podStatus(
      observed([
        container('a', 'init', { state: failed }),
        container('b', 'sidecar', { started: false, ready: false }),
        container('c', 'init', { state: completed }),
        notStarted('app', 'main'),
      ]),
      [],
      NOW,
    );
    expect(cond(s.conditions, 'Initialized').message).toBe('containers with incomplete status: [a b]');
  });

  test('the sidecar started but the main container not started yet: Initialized, still Pending', () => {
    const s = podStatus(
      observed([container('proxy', 'sidecar'), notStarted('app', 'main', 'ContainerCreating')]),
      [],
      NOW,
    );
    expect(cond(s.conditions, 'Initialized').status).toBe('True');
    expect(s.phase).toBe('Pending');
  });

  test('the main containers started but not ready: Running, not Ready, naming the unready sidecars then main containers', () => {
    const s = podStatus(
      observed([
        container('proxy', 'sidecar', { ready: false }),
        container('app', 'main', { ready: false }),
        container('worker', 'main'),
        container('metrics', 'main', { ready: false }),
      ]),
      [],
      NOW,
    );
    expect(s.phase).toBe('Running');
    expect(cond(s.conditions, 'Initialized').status).toBe('True');
    for (const type of ['Ready', 'ContainersReady']) {
      expect(cond(s.conditions, type)).toEqual({
        type,
        status: 'False',
        reason: 'ContainersNotReady',
        message: 'containers with unready status: [proxy app metrics]',
        lastTransitionTime: NOW,
        lastProbeTime: null,
      });
    }
  });

  test('Ready needs initialization too, even when every container says ready', () => {
    const s = podStatus(
      observed([
        container('migrate', 'init', { state: failed, ready: true }),
        container('app', 'main', { ready: true, state: { kind: 'waiting', reason: 'PodInitializing' } }),
      ]),
      [],
      NOW,
    );
    expect(statuses(s.conditions)).toMatchObject({ Initialized: 'False', Ready: 'False', ContainersReady: 'False' });
  });

  test('plain init containers are not part of readiness', () => {
    const s = podStatus(
      observed([container('migrate', 'init', { state: completed, ready: false }), container('app', 'main')]),
      [],
      NOW,
    );
    expect(statuses(s.conditions)).toMatchObject({ Ready: 'True', ContainersReady: 'True' });
  });

  test('a main container that has terminated or restarted counts as started: Running', () => {
    expect(podStatus(observed([container('app', 'main', { state: failed, ready: false })]), [], NOW).phase).toBe(
      'Running',
    );
    expect(
      podStatus(
        observed([
          container('app', 'main', {
            state: { kind: 'waiting', reason: 'CrashLoopBackOff' },
            ready: false,
            restartCount: 2,
          }),
        ]),
        [],
        NOW,
      ).phase,
    ).toBe('Running');
    expect(
      podStatus(
        observed([
          container('app', 'main', {
            state: { kind: 'waiting', reason: 'ContainerCreating' },
            ready: false,
            restartCount: 0,
          }),
        ]),
        [],
        NOW,
      ).phase,
    ).toBe('Pending');
  });

  test('every main container must have started', () => {
    expect(
      podStatus(observed([container('app', 'main'), notStarted('worker', 'main', 'ContainerCreating')]), [], NOW).phase,
    ).toBe('Pending');
  });

  test('a pod with no main container stays Pending', () => {
    expect(podStatus(observed([container('proxy', 'sidecar')]), [], NOW).phase).toBe('Pending');
  });

  test('PodReadyToStartContainers follows the sandbox, without a reason; PodScheduled is always True', () => {
    const s = podStatus(observed([notStarted('app', 'main', 'ContainerCreating')], { sandboxReady: false }), [], NOW);
    expect(cond(s.conditions, 'PodReadyToStartContainers')).toEqual({
      type: 'PodReadyToStartContainers',
      status: 'False',
      lastTransitionTime: NOW,
      lastProbeTime: null,
    });
    expect(cond(s.conditions, 'PodScheduled').status).toBe('True');
    expect(
      cond(podStatus(observed([container('app', 'main')]), [], NOW).conditions, 'PodReadyToStartContainers').status,
    ).toBe('True');
  });
});

describe('podStatus: a pod that has initialized', () => {
  test('a native sidecar crashing later keeps the pod Running and Initialized, but not Ready', () => {
    const s = podStatus(
      observed([
        container('proxy', 'sidecar', {
          state: { kind: 'waiting', reason: 'CrashLoopBackOff' },
          started: false,
          ready: false,
          restartCount: 1,
          lastTerminated: failed,
        }),
        container('app', 'main'),
      ]),
      [{ type: 'Initialized', status: 'True', lastTransitionTime: T_PREV }],
      NOW,
    );
    expect(s.phase).toBe('Running');
    expect(cond(s.conditions, 'Initialized')).toMatchObject({
      status: 'True',
      lastTransitionTime: new Date(T_PREV).toISOString(),
    });
    expect(cond(s.conditions, 'Ready')).toMatchObject({
      status: 'False',
      message: 'containers with unready status: [proxy]',
    });
  });
});

describe('podStatus: lastTransitionTime', () => {
  const ready = observed([container('proxy', 'sidecar'), container('app', 'main')]);
  const unready = observed([container('proxy', 'sidecar'), container('app', 'main', { ready: false })]);

  test('kept while the status does not change, set to now when it changes', () => {
    const first = podStatus(unready, [], NOW);
    expect(first.conditions.every((c) => c.lastTransitionTime === NOW)).toBe(true);

    const second = podStatus(ready, first.conditions, LATER);
    expect(cond(second.conditions, 'Ready').lastTransitionTime).toBe(LATER);
    expect(cond(second.conditions, 'ContainersReady').lastTransitionTime).toBe(LATER);
    expect(cond(second.conditions, 'Initialized').lastTransitionTime).toBe(NOW);
    expect(cond(second.conditions, 'PodScheduled').lastTransitionTime).toBe(NOW);
    expect(cond(second.conditions, 'PodReadyToStartContainers').lastTransitionTime).toBe(NOW);
  });

  test('the same observation twice gives deep-equal output', () => {
    const first = podStatus(unready, [], NOW);
    const again = podStatus(unready, first.conditions, LATER);
    expect(again).toEqual(first);
  });

  test('previous conditions as the API server returns them: Date objects or strings without milliseconds', () => {
    const prev = [
      { type: 'Ready', status: 'True', lastTransitionTime: new Date(T_PREV) },
      { type: 'PodScheduled', status: 'True', lastTransitionTime: '2025-03-01T09:00:00Z' },
    ];
    const s = podStatus(ready, prev, NOW);
    expect(cond(s.conditions, 'Ready').lastTransitionTime).toBe(T_PREV);
    expect(cond(s.conditions, 'PodScheduled').lastTransitionTime).toBe('2025-03-01T09:00:00.000Z');
  });

  test('now when there is no previous condition of that type, or it has no time, or another status', () => {
    const prev = [
      { type: 'Ready', status: 'True' },
      { type: 'Initialized', status: 'False', lastTransitionTime: T_PREV },
    ];
    const s = podStatus(ready, prev, NOW);
    expect(cond(s.conditions, 'Ready').lastTransitionTime).toBe(NOW);
    expect(cond(s.conditions, 'Initialized').lastTransitionTime).toBe(NOW);
    expect(cond(s.conditions, 'ContainersReady').lastTransitionTime).toBe(NOW);
  });
});

describe('podStatus: container statuses', () => {
  test('init containers and native sidecars in initContainerStatuses, in order; main ones in containerStatuses', () => {
    const s = podStatus(
      observed([
        container('migrate', 'init', { state: completed }),
        container('proxy', 'sidecar'),
        container('app', 'main'),
        container('worker', 'main'),
      ]),
      [],
      NOW,
    );
    expect(s.initContainerStatuses.map((c) => c.name)).toEqual(['migrate', 'proxy']);
    expect(s.containerStatuses.map((c) => c.name)).toEqual(['app', 'worker']);
  });

  test('a running container: its full status', () => {
    const s = podStatus(observed([container('app', 'main', { restartCount: 3, pid: 777 })]), [], NOW);
    expect(s.containerStatuses[0]).toEqual({
      name: 'app',
      image: 'ghcr.io/me/app:1',
      imageID: '',
      containerID: 'fnmesh://web-1/app/777',
      ready: true,
      started: true,
      restartCount: 3,
      state: { running: { startedAt: T_START } },
      lastState: {},
    });
  });

  test('the pod addresses and start time', () => {
    const s = podStatus(observed([container('app', 'main')]), [], NOW);
    expect(s).toMatchObject({
      hostIP: '192.168.1.5',
      hostIPs: [{ ip: '192.168.1.5' }],
      podIP: '127.0.0.10',
      podIPs: [{ ip: '127.0.0.10' }],
      startTime: T_START,
    });
  });

  test('waiting: reason, and message only when there is one; no containerID even with a pid', () => {
    const s = podStatus(
      observed([
        container('a', 'main', {
          state: { kind: 'waiting', reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container' },
          pid: 12,
          ready: false,
        }),
        container('b', 'main', {
          state: { kind: 'waiting', reason: 'ContainerCreating' },
          pid: undefined,
          ready: false,
        }),
      ]),
      [],
      NOW,
    );
    const [a, b] = s.containerStatuses;
    expect(a!.state).toEqual({
      waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container' },
    });
    expect(b!.state).toEqual({ waiting: { reason: 'ContainerCreating' } });
    expect('containerID' in a!).toBe(false);
    expect('containerID' in b!).toBe(false);
  });

  test('terminated: exit code, numeric signal and message when present; containerID kept', () => {
    const killed: Terminated = {
      kind: 'terminated',
      exitCode: 137,
      signal: 9,
      reason: 'OOMKilled',
      message: 'killed',
      startedAt: T_START,
      finishedAt: T_PREV,
    };
    const s = podStatus(
      observed([
        container('a', 'main', { state: killed, pid: 55 }),
        container('b', 'main', { state: completed, pid: 56 }),
      ]),
      [],
      NOW,
    );
    const [a, b] = s.containerStatuses;
    expect(a!.state).toEqual({
      terminated: {
        exitCode: 137,
        signal: 9,
        reason: 'OOMKilled',
        message: 'killed',
        startedAt: T_START,
        finishedAt: T_PREV,
      },
    });
    expect(typeof (a!.state.terminated as { signal: unknown }).signal).toBe('number');
    expect(a!.containerID).toBe('fnmesh://web-1/a/55');
    expect(b!.state).toEqual({
      terminated: { exitCode: 0, reason: 'Completed', startedAt: T_START, finishedAt: T_PREV },
    });
  });

  test('no containerID without a pid', () => {
    const s = podStatus(observed([container('app', 'main', { pid: undefined })]), [], NOW);
    expect('containerID' in s.containerStatuses[0]!).toBe(false);
  });

  test('lastState comes from the last termination', () => {
    const s = podStatus(
      observed([
        container('app', 'main', { lastTerminated: { ...failed, signal: 15, message: 'stopped' }, restartCount: 1 }),
        container('fresh', 'main'),
      ]),
      [],
      NOW,
    );
    expect(s.containerStatuses[0]!.lastState).toEqual({
      terminated: {
        exitCode: 1,
        signal: 15,
        reason: 'Error',
        message: 'stopped',
        startedAt: T_START,
        finishedAt: T_PREV,
      },
    });
    expect(s.containerStatuses[1]!.lastState).toEqual({});
  });

  test('started only while running with its startup probe passed', () => {
    const s = podStatus(
      observed([
        container('up', 'main', { started: true }),
        container('probing', 'main', { started: false }),
        container('exited', 'main', { state: completed, started: true }),
        container('waiting', 'main', {
          state: { kind: 'waiting', reason: 'CrashLoopBackOff' },
          started: true,
          restartCount: 1,
        }),
      ]),
      [],
      NOW,
    );
    expect(s.containerStatuses.map((c) => [c.name, c.started])).toEqual([
      ['up', true],
      ['probing', false],
      ['exited', false],
      ['waiting', false],
    ]);
  });

  test('ready is reported as observed', () => {
    const s = podStatus(
      observed([container('proxy', 'sidecar', { ready: false }), container('app', 'main', { ready: true })]),
      [],
      NOW,
    );
    expect(s.initContainerStatuses[0]!.ready).toBe(false);
    expect(s.containerStatuses[0]!.ready).toBe(true);
  });
});
