/**
 * What a FunctionService says about failures, and the defaults when it says nothing: the one definition the
 * manifest schema (common/manifest.ts), the gateway (retries, the per-function circuit breaker), the sidecar
 * (its queue and its outlier detection) and the docs all use. Light on purpose: no zod (the sidecar imports it).
 *
 * Three guarantees, each owned by one part:
 * - A call that never reached the function ("not executed": the function's port refused the connection or
 *   reset it unread, the replica's queue was full, the replica was draining, ejected or its function unhealthy)
 *   is retried by the gateway on another replica, within the call's one deadline, up to `retry.attempts`
 *   attempts in all, with jittered exponential back-off. No configuration needed.
 * - A call that may have run (the connection closed mid-answer, an attempt's per-try timeout, the function's
 *   own 5xx) is retried only when the function opts in: `idempotent: true`, or a `retry.retryOn` list.
 *   The default is at-most-once.
 * - A replica whose function keeps failing leaves its queue group for a back-off period (outlier detection,
 *   in its sidecar); a function for which no replica could take calls answers 503 at once for a back-off
 *   period (the circuit breaker, in the gateway).
 */

/** Why a replica did not run a call it was sent. Sent back in the reply's Fnmesh-Not-Executed header. */
export const NOT_EXECUTED_REASONS = [
  /** The function's port refused the connection, or reset it before reading the request. */
  'function-down',
  /** The function failed its health check. */
  'unhealthy',
  /** Every concurrency slot and the whole queue were taken. */
  'overloaded',
  /** The replica is stopping (its drain began). */
  'draining',
  /** Outlier detection took the replica out of rotation. */
  'ejected',
] as const;
export type NotExecutedReason = (typeof NOT_EXECUTED_REASONS)[number];

export function isNotExecutedReason(value: string): value is NotExecutedReason {
  return (NOT_EXECUTED_REASONS as readonly string[]).includes(value);
}

/**
 * The failures of a call that may have run, which `retry.retryOn` can name:
 * - `reset`: the function's connection closed after it read the request and before its answer was complete;
 * - `timeout`: an attempt's `perTryTimeoutMs` passed (the call's own deadline is never retried past);
 * - `5xx`: the function answered a status from 500 to 599 (a single status, such as 503, names only that one).
 */
export const RETRY_CONDITIONS = ['reset', 'timeout', '5xx'] as const;
export type RetryCondition = (typeof RETRY_CONDITIONS)[number];
/** An entry of `retryOn`: a condition, or one 5xx status the function answers. */
export type RetryOn = RetryCondition | number;

/** What `idempotent: true` retries when `retryOn` is not given. */
export const IDEMPOTENT_RETRY_ON: readonly RetryOn[] = ['reset', 'timeout', '5xx'];

export interface BackoffPolicy {
  /** The first back-off, milliseconds; each next one doubles, up to maxMs. The wait is drawn in [0, that] (full jitter). */
  initialMs: number;
  maxMs: number;
}

/** The retry policy of one function, resolved from its manifest (every field set). */
export interface RetryPolicy {
  /** Attempts in all, the first one included (1: never retried). Never past the call's deadline. */
  attempts: number;
  backoff: BackoffPolicy;
  /** Failures of calls that may have run that are retried; empty: at-most-once (the default). */
  retryOn: readonly RetryOn[];
  /** The budget of one attempt, milliseconds, when set (the rest of the deadline otherwise). */
  perTryTimeoutMs?: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 4,
  backoff: { initialMs: 10, maxMs: 250 },
  retryOn: [],
};

/** Outlier detection of one replica, in its sidecar: when its function keeps failing, it stops taking calls. */
export interface OutlierDetectionPolicy {
  /**
   * Failures in a row that eject the replica (0: off). A failure is an answer of the function with a 5xx, a
   * call that ran past its deadline, or a connection to the function that broke.
   */
  consecutiveFailures: number;
  /** The share of failed calls in the window that ejects the replica (0: off). */
  failureRatio: number;
  /** Calls in the window before failureRatio is judged. */
  minCalls: number;
  windowMs: number;
  /** The first ejection lasts this long; each next one in a row doubles, up to maxEjectionMs. */
  baseEjectionMs: number;
  maxEjectionMs: number;
  /**
   * Ejection never takes more than this share of the service's replicas out of rotation (as the replicas
   * themselves report it), so that calls that fail for some inputs cannot take the whole service down. A
   * replica whose function is down or unhealthy always leaves, whatever this says.
   */
  maxEjectionPercent: number;
}

export const DEFAULT_OUTLIER_DETECTION: OutlierDetectionPolicy = {
  consecutiveFailures: 5,
  failureRatio: 0.5,
  minCalls: 20,
  windowMs: 10_000,
  baseEjectionMs: 5_000,
  maxEjectionMs: 60_000,
  maxEjectionPercent: 50,
};

/** The circuit breaker of one function, in the gateway: open when no replica could take its calls. */
export interface CircuitBreakerPolicy {
  /**
   * Calls in a row that no replica could take (every attempt not executed, or no replica subscribed) that
   * open the circuit (0: off). Only these count: a caller cannot open it with short timeouts or bad params.
   */
  consecutiveFailures: number;
  /** How long the circuit stays open first; each reopening after a failed probe doubles it, up to maxOpenMs. */
  openMs: number;
  maxOpenMs: number;
}

export const DEFAULT_CIRCUIT_BREAKER: CircuitBreakerPolicy = {
  consecutiveFailures: 5,
  openMs: 500,
  maxOpenMs: 5_000,
};

/** Calls a replica holds waiting for a concurrency slot when its manifest gives no `queueLength`. */
export const DEFAULT_QUEUE_LENGTH = 64;

/** The parts of a function's manifest entry this module reads (common/manifest.ts has the full schema). */
export interface RetryManifest {
  attempts?: number;
  backoff?: Partial<BackoffPolicy>;
  retryOn?: readonly RetryOn[];
  perTryTimeoutMs?: number;
}

/**
 * The policy of one function: the service's `retry`, then the function's own `retry` over it field by field,
 * then the function's `idempotent: true` as `retryOn` when neither gave a `retryOn`.
 */
export function resolveRetryPolicy(
  service: { retry?: RetryManifest },
  fn: { retry?: RetryManifest; idempotent?: boolean } | undefined,
): RetryPolicy {
  const s = service.retry ?? {};
  const f = fn?.retry ?? {};
  const retryOn = f.retryOn ?? s.retryOn ?? (fn?.idempotent ? IDEMPOTENT_RETRY_ON : []);
  const policy: RetryPolicy = {
    attempts: f.attempts ?? s.attempts ?? DEFAULT_RETRY.attempts,
    backoff: {
      initialMs: f.backoff?.initialMs ?? s.backoff?.initialMs ?? DEFAULT_RETRY.backoff.initialMs,
      maxMs: f.backoff?.maxMs ?? s.backoff?.maxMs ?? DEFAULT_RETRY.backoff.maxMs,
    },
    retryOn,
  };
  const perTry = f.perTryTimeoutMs ?? s.perTryTimeoutMs;
  if (perTry !== undefined) policy.perTryTimeoutMs = perTry;
  return policy;
}

/** True when the policy retries the function's answer with this status (a 5xx). */
export function retriesStatus(policy: Pick<RetryPolicy, 'retryOn'>, status: number): boolean {
  return policy.retryOn.some((r) => r === status || (r === '5xx' && status >= 500 && status <= 599));
}

export function resolveOutlierDetection(manifest: Partial<OutlierDetectionPolicy> | undefined): OutlierDetectionPolicy {
  return { ...DEFAULT_OUTLIER_DETECTION, ...(manifest ?? {}) };
}

export function resolveCircuitBreaker(manifest: Partial<CircuitBreakerPolicy> | undefined): CircuitBreakerPolicy {
  return { ...DEFAULT_CIRCUIT_BREAKER, ...(manifest ?? {}) };
}
