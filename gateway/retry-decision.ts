/**
 * The gateway's retry decisions, pure: how one attempt of a call ended, whether another attempt follows and
 * after what wait, each attempt's budget, and the error the caller gets when the attempts end without success.
 * The shell (resilient-call.ts) sends the attempts; the clock and the random source are passed in.
 *
 * - "Not executed" (the replica says it never ran the call, or nobody is subscribed at all) is always retried.
 * - "May have run" (the function's connection reset, an attempt's own timeout, the function's 5xx) is retried
 *   only when the function's `retryOn` covers it; the default is at-most-once.
 * - "Not sent" (the gateway had no NATS connection, the request was never published) is always retried once the
 *   connection is back, waiting for it at most RECONNECT_WAIT_MS after the disconnect (reconnectWaitMs).
 * - A request whose NATS connection dropped while it was in flight may have run: a `reset` failure, retried
 *   only for an idempotent function; an at-most-once call fails at once with 502, not at its deadline.
 * - Anything else is final. Never more than `attempts` attempts, never a wait or an attempt past the deadline.
 */
import {
  FnmeshError,
  retriesStatus,
  type BackoffPolicy,
  type DecodedReply,
  type MayHaveRunFailure,
  type NotExecutedReason,
  type RetryPolicy,
} from '../common';
import type { CallVerdict } from './circuit-breaker';

/** Why an attempt was not executed: a replica's reason, or NATS found no subscriber at all. */
export type NotExecutedCause = NotExecutedReason | 'no-responders';

export type AttemptEnd =
  | { kind: 'ok' }
  | { kind: 'not-executed'; reason: NotExecutedCause }
  | { kind: 'may-have-run'; failure: MayHaveRunFailure; status?: number }
  | { kind: 'not-sent' }
  | { kind: 'final' };

/** Every reason label a retry can have (metrics, logs): bounded. */
export type RetryReason = NotExecutedCause | MayHaveRunFailure | 'disconnected';

export function retryReason(end: AttemptEnd): RetryReason | undefined {
  if (end.kind === 'not-executed') return end.reason;
  if (end.kind === 'not-sent') return 'disconnected';
  if (end.kind === 'may-have-run') return end.failure;
  return undefined;
}

/** Less than this left before the deadline, another attempt cannot do anything useful. */
export const MIN_ATTEMPT_MS = 5;

const OK: AttemptEnd = { kind: 'ok' };
const FINAL: AttemptEnd = { kind: 'final' };

/** How an attempt whose replica answered ended. */
export function classifyReply(reply: DecodedReply): AttemptEnd {
  if (reply.ok) return OK;
  if (reply.notExecuted !== undefined) return { kind: 'not-executed', reason: reply.notExecuted };
  if (reply.failure === 'status') {
    return reply.functionStatus === undefined
      ? { kind: 'may-have-run', failure: 'status' }
      : { kind: 'may-have-run', failure: 'status', status: reply.functionStatus };
  }
  if (reply.failure !== undefined) return { kind: 'may-have-run', failure: reply.failure };
  return FINAL;
}

/** What the shell knows of an attempt that got no reply. */
export interface Rejection {
  /** NATS answered that nobody is subscribed to the subject. */
  noResponders: boolean;
  /** The attempt's timer fired. */
  timedOut: boolean;
  /** The attempt's budget was its per-try timeout, shorter than what was left of the call's deadline. */
  cutByPerTry: boolean;
  /** The gateway had no NATS connection: the request was never published. */
  notSent?: boolean;
  /** The NATS connection dropped after the request was published, before its reply came. */
  connectionLost?: boolean;
}

const NOT_SENT: AttemptEnd = { kind: 'not-sent' };

/** How an attempt that got no reply ended. */
export function classifyRejection(r: Rejection): AttemptEnd {
  if (r.noResponders) return { kind: 'not-executed', reason: 'no-responders' };
  if (r.notSent) return NOT_SENT;
  if (r.connectionLost) return { kind: 'may-have-run', failure: 'reset' };
  if (r.timedOut && r.cutByPerTry) return { kind: 'may-have-run', failure: 'timeout' };
  return FINAL;
}

/** True when the policy lets an attempt that ended so be sent again. */
export function isRetryable(end: AttemptEnd, policy: RetryPolicy): boolean {
  switch (end.kind) {
    case 'not-executed':
    case 'not-sent':
      return true;
    case 'may-have-run':
      if (end.failure === 'status') return end.status !== undefined && retriesStatus(policy, end.status);
      return policy.retryOn.includes(end.failure);
    default:
      return false;
  }
}

/** The longest wait before retry `n` (1 for the first retry): initialMs·2^(n−1), at most maxMs. */
export function backoffCapMs(n: number, backoff: BackoffPolicy): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** (n - 1));
}

/** The wait before retry `n`, drawn uniformly in [0, cap] (full jitter); `random` returns [0, 1). */
export function backoffMs(n: number, backoff: BackoffPolicy, random: () => number): number {
  return Math.floor(random() * (backoffCapMs(n, backoff) + 1));
}

/**
 * The budget of an attempt starting at `now`: what is left of the deadline, at most the per-try timeout.
 * `cutByPerTry` when the per-try timeout is the shorter.
 */
export function attemptBudget(
  policy: Pick<RetryPolicy, 'perTryTimeoutMs'>,
  deadline: number,
  now: number,
): { timeoutMs: number; cutByPerTry: boolean } {
  const left = Math.floor(deadline - now);
  const perTry = policy.perTryTimeoutMs;
  if (perTry !== undefined && perTry < left) return { timeoutMs: perTry, cutByPerTry: true };
  return { timeoutMs: left, cutByPerTry: false };
}

/**
 * How long a call waits for NATS after the disconnect at `disconnectedAt`: calls that arrive in the first
 * RECONNECT_WAIT_MS after it wait for the reconnect (a NATS server of a cluster died, the client moves to
 * another within milliseconds); later ones (NATS is down for good) fail at once. Never past the deadline.
 */
export const RECONNECT_WAIT_MS = 2000;

export function reconnectWaitMs(disconnectedAt: number, now: number, deadline: number): number {
  const left = Math.min(RECONNECT_WAIT_MS - (now - disconnectedAt), deadline - now - MIN_ATTEMPT_MS);
  return Math.max(0, Math.floor(left));
}

export type NextStep = { kind: 'retry'; waitMs: number } | { kind: 'stop'; why: StopReason };
/** Why no further attempt: the attempt ended for good, the policy's attempts are spent, or the deadline is near. */
export type StopReason = 'done' | 'not-retryable' | 'attempts' | 'deadline';

/**
 * After attempt number `made` ended so at `now`: retry (after waitMs), or stop. A retry is only planned when
 * the wait ends at least MIN_ATTEMPT_MS before the deadline.
 */
export function nextStep(
  end: AttemptEnd,
  made: number,
  policy: RetryPolicy,
  deadline: number,
  now: number,
  random: () => number,
): NextStep {
  if (end.kind === 'ok') return { kind: 'stop', why: 'done' };
  if (!isRetryable(end, policy)) return { kind: 'stop', why: 'not-retryable' };
  if (made >= policy.attempts) return { kind: 'stop', why: 'attempts' };
  // not sent: no back-off, the shell waits for the connection instead (reconnectWaitMs)
  const waitMs = end.kind === 'not-sent' ? 0 : backoffMs(made, policy.backoff, random);
  if (deadline - (now + waitMs) < MIN_ATTEMPT_MS) return { kind: 'stop', why: 'deadline' };
  return { kind: 'retry', waitMs };
}

/**
 * What an attempt says to the circuit breaker: a replica took it (any answer from a function, or a timeout:
 * something was subscribed and held it), no replica could (not executed, nobody subscribed), or nothing
 * (the gateway lost NATS, the call had no time left, it was too large).
 */
export function attemptVerdict(end: AttemptEnd, replied: boolean, timedOut: boolean): CallVerdict {
  if (end.kind === 'not-executed') return 'no-replica';
  if (end.kind === 'ok' || end.kind === 'may-have-run' || replied || timedOut) return 'taken';
  return 'neutral';
}

/** The verdict of a call from its attempts' so far: taken if any was, no-replica only if every one was. */
export function foldVerdict(sofar: CallVerdict | undefined, next: CallVerdict): CallVerdict {
  if (sofar === undefined || sofar === next) return next;
  return sofar === 'taken' || next === 'taken' ? 'taken' : 'neutral';
}

export interface CallTarget {
  namespace: string;
  service: string;
  function: string;
}

/** What each cause of a not-executed attempt means, in an error message. */
const NOT_EXECUTED_CAUSES: Record<NotExecutedCause, string> = {
  'no-responders': 'no replica of the service is subscribed',
  'function-down': "the last replica's function process was down",
  unhealthy: "the last replica's function failed its health check",
  overloaded: 'the last replica was at its concurrency limit',
  draining: 'the last replica was stopping',
  ejected: 'the last replica was taken out of rotation for failing calls',
};

const plural = (n: number): string => (n === 1 ? '1 attempt' : `${n} attempts`);

/**
 * The error the caller gets when the attempts ended without success: the last attempt's own error, except
 * when that attempt was not executed, which names the fact and the attempts (429 when the replica was full,
 * 503 otherwise). `why` says why no further attempt was made.
 */
export function finalError(
  last: AttemptEnd,
  lastError: FnmeshError,
  attempts: number,
  why: StopReason,
  target: CallTarget,
): FnmeshError {
  if (last.kind !== 'not-executed') return lastError;
  const svc = `${target.namespace}/${target.service}`;
  const fn = `${svc}.${target.function}`;
  const stopped = why === 'deadline' ? ', and too little of its deadline was left for another' : '';
  if (last.reason === 'overloaded')
    return new FnmeshError(
      'overloaded',
      `every replica of ${svc} that got the call to ${fn} was at its concurrency limit (${plural(attempts)}${stopped}); retry later, or give the service more replicas or concurrency`,
    );
  const cause = NOT_EXECUTED_CAUSES[last.reason];
  return new FnmeshError(
    'unavailable',
    `no replica of ${svc} could take the call to ${fn} (${plural(attempts)}${stopped}; ${cause}); check that the service's replicas are running and their functions healthy`,
  );
}
