/**
 * Restart back-off for supervised processes (pure): the delay doubles from `initialMs` up to `maxMs` with
 * each consecutive crash, and the count resets once a process has stayed up for `resetAfterMs`.
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** A run at least this long counts as healthy: the next crash starts again at `initialMs`. */
  resetAfterMs: number;
  /** From this many consecutive crashes on, the process is reported as "keeps crashing". */
  crashLoopAfter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: 200,
  maxMs: 10_000,
  resetAfterMs: 30_000,
  crashLoopAfter: 5,
};

export interface BackoffState {
  /** Crashes in a row without a healthy run between them. */
  consecutiveCrashes: number;
}

export interface CrashDecision {
  state: BackoffState;
  /** Wait this long before starting the process again. */
  delayMs: number;
  /** True when the process keeps crashing (report it loudly). */
  crashLoop: boolean;
}

export function delayFor(consecutiveCrashes: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  if (consecutiveCrashes <= 0) return 0;
  // 2^(n-1) overflows to Infinity for huge n, and Math.min keeps the cap.
  return Math.min(policy.maxMs, policy.initialMs * 2 ** (consecutiveCrashes - 1));
}

/** What to do after a process that ran for `uptimeMs` exited unexpectedly. */
export function onCrash(state: BackoffState, uptimeMs: number, policy: BackoffPolicy = DEFAULT_BACKOFF): CrashDecision {
  const previous = uptimeMs >= policy.resetAfterMs ? 0 : state.consecutiveCrashes;
  const consecutiveCrashes = previous + 1;
  return {
    state: { consecutiveCrashes },
    delayMs: delayFor(consecutiveCrashes, policy),
    crashLoop: consecutiveCrashes >= policy.crashLoopAfter,
  };
}
