import type { Condition, FunctionServiceStatus } from './status';
import { isSettled, isTransition, statusWrite } from './status-pacing';

function status(
  gen: number,
  ready: string,
  progressing: string,
  degraded = 'False',
  counts = 0,
  reason = 'R',
): FunctionServiceStatus {
  const c = (type: Condition['type'], s: string): Condition => ({
    type,
    status: s as Condition['status'],
    reason,
    message: 'm',
    lastTransitionTime: 't',
    observedGeneration: gen,
  });
  return {
    observedGeneration: gen,
    replicas: counts,
    readyReplicas: counts,
    updatedReplicas: counts,
    availableReplicas: counts,
    selector: 's',
    conditions: [c('Ready', ready), c('Progressing', progressing), c('Degraded', degraded)],
  };
}

const ctx = (now: number, lastActivityAt?: number) => ({
  now,
  intervalMs: 5000,
  ...(lastActivityAt !== undefined ? { lastActivityAt } : {}),
});

describe('statusWrite', () => {
  const rolling = status(1, 'False', 'True');
  const ready = status(1, 'True', 'False', 'False', 1);

  test('an equal status is not written', () => {
    expect(statusWrite(ready, structuredClone(ready), ctx(0))).toEqual({ kind: 'none' });
  });

  test('a settled status (Ready, a failure, a stuck rollout) is written at once', () => {
    expect(statusWrite(undefined, ready, ctx(10, 5))).toEqual({ kind: 'now' });
    expect(statusWrite(rolling, status(1, 'False', 'True', 'True'), ctx(10, 5))).toEqual({ kind: 'now' });
    expect(isSettled(status(1, 'False', 'False'))).toBe(true);
  });

  test('a new object in progress is held for the interval after the apply, then written', () => {
    expect(statusWrite(undefined, rolling, ctx(1000, 0))).toEqual({ kind: 'later', inMs: 4000 });
    expect(statusWrite(undefined, rolling, ctx(5000, 0))).toEqual({ kind: 'now' });
    // Nothing applied by this process (a restart): no reason to wait.
    expect(statusWrite(undefined, rolling, ctx(1000))).toEqual({ kind: 'now' });
  });

  test('a real transition from a stored status is written at once: a new generation, a condition status', () => {
    expect(statusWrite(ready, status(2, 'False', 'True'), ctx(1, 0))).toEqual({ kind: 'now' });
    expect(isTransition(ready, status(1, 'False', 'True', 'False', 1))).toBe(true);
    expect(statusWrite(ready, status(1, 'False', 'True', 'False', 1), ctx(1, 0))).toEqual({ kind: 'now' });
  });

  test('progress: counts at most once per interval; reasons or messages alone are not written', () => {
    const more = status(1, 'False', 'True', 'False', 2);
    expect(statusWrite(rolling, more, ctx(3000, 1000))).toEqual({ kind: 'later', inMs: 3000 });
    expect(statusWrite(rolling, more, ctx(6000, 1000))).toEqual({ kind: 'now' });
    expect(statusWrite(rolling, status(1, 'False', 'True', 'False', 0, 'Other'), ctx(60_000, 0))).toEqual({
      kind: 'none',
    });
  });

  test('an interval of 0 writes every change at once', () => {
    expect(statusWrite(undefined, rolling, { now: 1, lastActivityAt: 1, intervalMs: 0 })).toEqual({ kind: 'now' });
  });
});
