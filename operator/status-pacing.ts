/**
 * When a computed status is written: one write per real transition, progress at a bounded rate. Pure.
 *
 * On its way to Ready a new FunctionService passes through several in-progress statuses within seconds
 * (the Deployment not yet observed by its controller, replicas not yet available, with changing counts and
 * reasons); writing each one costs an API write and a watch event for every watcher, and in a burst those
 * writes slow down the very controllers the service waits for. So:
 * - a settled status (nothing in progress: Progressing not True, or Degraded True) is written at once:
 *   Ready, a failure, a stuck rollout;
 * - a real transition from a stored status is written at once: another observedGeneration (a spec change
 *   seen) or any condition changing its status (Ready True → False when replicas are lost, ...);
 * - a new object's first status, while in progress, is written only once `intervalMs` has passed since
 *   the Deployment was applied: a rollout that completes within that time costs one status write;
 * - progress during a rollout (replica counts) is written at most once per `intervalMs`; a change of
 *   only reasons or messages within the same state is not written by itself (the next write carries it).
 */
import { statusEqual, type FunctionServiceStatus } from './status';

export type StatusWrite = { kind: 'none' } | { kind: 'now' } | { kind: 'later'; inMs: number };

export interface PacingContext {
  now: number;
  /** When this process last wrote this key's status or applied its Deployment; undefined when never. */
  lastActivityAt?: number;
  /** 0 writes every change at once. */
  intervalMs: number;
}

function conditionStatus(s: Partial<FunctionServiceStatus> | undefined, type: string): string | undefined {
  return s?.conditions?.find((c) => c.type === type)?.status;
}

/** Nothing is in progress: the status is an outcome (Ready, a failure, a stuck rollout). */
export function isSettled(s: Partial<FunctionServiceStatus>): boolean {
  return conditionStatus(s, 'Progressing') !== 'True' || conditionStatus(s, 'Degraded') === 'True';
}

/** Another observed generation, or a condition whose status (not only its reason or message) changed. */
export function isTransition(previous: Partial<FunctionServiceStatus>, next: Partial<FunctionServiceStatus>): boolean {
  if (previous.observedGeneration !== next.observedGeneration) return true;
  for (const type of ['Ready', 'Progressing', 'Degraded'])
    if (conditionStatus(previous, type) !== conditionStatus(next, type)) return true;
  return false;
}

/** Another replica count (total, ready, updated, available). */
export function countsChanged(previous: Partial<FunctionServiceStatus>, next: Partial<FunctionServiceStatus>): boolean {
  return (
    previous.replicas !== next.replicas ||
    previous.readyReplicas !== next.readyReplicas ||
    previous.updatedReplicas !== next.updatedReplicas ||
    previous.availableReplicas !== next.availableReplicas
  );
}

export function statusWrite(
  previous: Partial<FunctionServiceStatus> | undefined,
  next: FunctionServiceStatus,
  ctx: PacingContext,
): StatusWrite {
  if (statusEqual(previous, next)) return { kind: 'none' };
  if (ctx.intervalMs <= 0 || isSettled(next)) return { kind: 'now' };
  const stored = previous?.conditions?.length ? previous : undefined;
  if (stored && isTransition(stored, next)) return { kind: 'now' };
  if (stored && !countsChanged(stored, next)) return { kind: 'none' };
  if (ctx.lastActivityAt === undefined) return { kind: 'now' };
  const wait = ctx.lastActivityAt + ctx.intervalMs - ctx.now;
  return wait <= 0 ? { kind: 'now' } : { kind: 'later', inMs: wait };
}
