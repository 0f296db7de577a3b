/**
 * The status a kubelet would report for a pod, from what `fnmesh cluster` observes of its processes.
 * Pure: conditions keep their lastTransitionTime while their status does not change, so the same
 * observation gives the same status and the agent writes only when something changed.
 */
import type { ContainerRole } from './pod-plan';

export type ContainerState =
  | { kind: 'waiting'; reason: string; message?: string }
  | { kind: 'running'; startedAt: string }
  | {
      kind: 'terminated';
      exitCode: number;
      signal?: number;
      reason: string;
      message?: string;
      startedAt: string;
      finishedAt: string;
    };

export interface ContainerObserved {
  name: string;
  role: ContainerRole;
  image: string;
  state: ContainerState;
  lastTerminated?: Extract<ContainerState, { kind: 'terminated' }>;
  /** The startup probe passed (or there is none) since the last start. */
  started: boolean;
  ready: boolean;
  restartCount: number;
  /** The process id of the current run (shown as the container id). */
  pid?: number;
}

export interface PodObserved {
  podName: string;
  sandboxReady: boolean;
  podIP: string;
  hostIP: string;
  startTime: string;
  containers: ContainerObserved[];
  /** The pod's restartPolicy (default Always): with Never or OnFailure the pod ends once its containers have. */
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
}

export interface PodCondition {
  type: string;
  status: 'True' | 'False';
  reason?: string;
  message?: string;
  lastTransitionTime: string;
  lastProbeTime: null;
}

interface StatusContainer {
  name: string;
  image: string;
  imageID: string;
  containerID?: string;
  ready: boolean;
  started: boolean;
  restartCount: number;
  state: Record<string, unknown>;
  lastState: Record<string, unknown>;
}

export interface PodStatusPatch {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  conditions: PodCondition[];
  hostIP: string;
  hostIPs: { ip: string }[];
  podIP: string;
  podIPs: { ip: string }[];
  startTime: string;
  initContainerStatuses: StatusContainer[];
  containerStatuses: StatusContainer[];
}

function stateJson(s: ContainerState): Record<string, unknown> {
  switch (s.kind) {
    case 'waiting':
      return { waiting: s.message ? { reason: s.reason, message: s.message } : { reason: s.reason } };
    case 'running':
      return { running: { startedAt: s.startedAt } };
    case 'terminated': {
      const t: Record<string, unknown> = {
        exitCode: s.exitCode,
        reason: s.reason,
        startedAt: s.startedAt,
        finishedAt: s.finishedAt,
      };
      if (s.message) t.message = s.message;
      if (s.signal) t.signal = s.signal;
      return { terminated: t };
    }
  }
}

function containerStatus(podName: string, c: ContainerObserved): StatusContainer {
  const out: StatusContainer = {
    name: c.name,
    image: c.image,
    imageID: '',
    ready: c.ready,
    started: c.started && c.state.kind === 'running',
    restartCount: c.restartCount,
    state: stateJson(c.state),
    lastState: c.lastTerminated ? stateJson(c.lastTerminated) : {},
  };
  if (c.pid !== undefined && c.state.kind !== 'waiting') out.containerID = `fnmesh://${podName}/${c.name}/${c.pid}`;
  return out;
}

function condition(
  type: string,
  ok: boolean,
  previous: ReadonlyArray<{ type: string; status: string; lastTransitionTime?: string | Date }>,
  now: string,
  reason?: string,
  message?: string,
): PodCondition {
  const status = ok ? 'True' : 'False';
  const prev = previous.find((c) => c.type === type);
  const since =
    prev && prev.status === status && prev.lastTransitionTime ? new Date(prev.lastTransitionTime).toISOString() : now;
  const c: PodCondition = { type, status, lastTransitionTime: since, lastProbeTime: null };
  if (!ok && reason) c.reason = reason;
  if (!ok && message) c.message = message;
  return c;
}

export function podStatus(
  o: PodObserved,
  previousConditions: ReadonlyArray<{ type: string; status: string; lastTransitionTime?: string | Date }>,
  now: string,
): PodStatusPatch {
  const init = o.containers.filter((c) => c.role !== 'main');
  const main = o.containers.filter((c) => c.role === 'main');
  // Once a pod has initialized it stays so (the kubelet does not re-run init containers, and a native
  // sidecar that crashes later is restarted without sending the pod back to Pending).
  const wasInitialized = previousConditions.some((c) => c.type === 'Initialized' && c.status === 'True');
  const initDone =
    wasInitialized ||
    init.every((c) =>
      c.role === 'init'
        ? c.state.kind === 'terminated' && c.state.exitCode === 0
        : c.started && c.state.kind === 'running',
    );
  const unready = [...init.filter((c) => c.role === 'sidecar'), ...main].filter((c) => !c.ready).map((c) => c.name);
  const pendingInit = init
    .filter((c) => (c.role === 'init' ? !(c.state.kind === 'terminated' && c.state.exitCode === 0) : !c.started))
    .map((c) => c.name);
  const everyMainStarted =
    main.length > 0 &&
    main.every((c) => c.state.kind === 'running' || c.restartCount > 0 || c.state.kind === 'terminated');
  // a pod whose containers are not known yet (no main container observed) is not ready
  const ready = initDone && main.length > 0 && unready.length === 0;
  const notReadyMessage = `containers with unready status: [${unready.join(' ')}]`;
  const conditions = [
    condition('PodReadyToStartContainers', o.sandboxReady, previousConditions, now),
    condition(
      'Initialized',
      initDone,
      previousConditions,
      now,
      'ContainersNotInitialized',
      `containers with incomplete status: [${pendingInit.join(' ')}]`,
    ),
    condition('Ready', ready, previousConditions, now, 'ContainersNotReady', notReadyMessage),
    condition('ContainersReady', ready, previousConditions, now, 'ContainersNotReady', notReadyMessage),
    condition('PodScheduled', true, previousConditions, now),
  ];
  // The kubelet's terminal phases: every main container exited and none will be restarted (Never: whatever
  // its exit code; OnFailure: with 0). Succeeded when each exited 0, else Failed (a `helm test` pod's verdict).
  const policy = o.restartPolicy ?? 'Always';
  const exitCode = (c: ContainerObserved): number | undefined =>
    c.state.kind === 'terminated' ? c.state.exitCode : undefined;
  const ended = (c: ContainerObserved): boolean =>
    exitCode(c) !== undefined && (policy === 'Never' || (policy === 'OnFailure' && exitCode(c) === 0));
  const terminal = policy !== 'Always' && main.length > 0 && main.every(ended);
  const phase: PodStatusPatch['phase'] = terminal
    ? main.every((c) => exitCode(c) === 0)
      ? 'Succeeded'
      : 'Failed'
    : initDone && everyMainStarted
      ? 'Running'
      : 'Pending';
  return {
    phase,
    conditions,
    hostIP: o.hostIP,
    hostIPs: [{ ip: o.hostIP }],
    podIP: o.podIP,
    podIPs: [{ ip: o.podIP }],
    startTime: o.startTime,
    initContainerStatuses: init.map((c) => containerStatus(o.podName, c)),
    containerStatuses: main.map((c) => containerStatus(o.podName, c)),
  };
}
