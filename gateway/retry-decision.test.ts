import { DEFAULT_RETRY, FnmeshError, IDEMPOTENT_RETRY_ON, type DecodedReply, type RetryPolicy } from '../common';
import {
  MIN_ATTEMPT_MS,
  RECONNECT_WAIT_MS,
  attemptBudget,
  attemptVerdict,
  backoffCapMs,
  backoffMs,
  classifyRejection,
  classifyReply,
  finalError,
  foldVerdict,
  isRetryable,
  nextStep,
  reconnectWaitMs,
  type AttemptEnd,
} from './retry-decision';

const target = { namespace: 'default', service: 'greeter', function: 'hello' };
const failed = (facts: Omit<Extract<DecodedReply, { ok: false }>, 'ok' | 'error'>, status = 502): DecodedReply => ({
  ok: false,
  error: new FnmeshError(status === 429 ? 'overloaded' : status === 503 ? 'unavailable' : 'function_failed', 'x'),
  ...facts,
});
const atMostOnce: RetryPolicy = { ...DEFAULT_RETRY, retryOn: [] };
const idempotent: RetryPolicy = { ...DEFAULT_RETRY, retryOn: IDEMPOTENT_RETRY_ON };
/** A random source that always draws the same value. */
const draws = (value: number) => (): number => value;

const notExecuted = (reason: 'function-down' | 'overloaded' | 'no-responders'): AttemptEnd => ({
  kind: 'not-executed',
  reason,
});

describe('classifying how an attempt ended', () => {
  it('reads the facts of a reply: ok, not executed, may have run, or final', () => {
    expect(classifyReply({ ok: true, body: new Uint8Array() })).toEqual({ kind: 'ok' });
    expect(classifyReply(failed({ notExecuted: 'draining', replica: 'r1' }, 503))).toEqual({
      kind: 'not-executed',
      reason: 'draining',
    });
    expect(classifyReply(failed({ failure: 'reset' }))).toEqual({ kind: 'may-have-run', failure: 'reset' });
    expect(classifyReply(failed({ failure: 'timeout' }, 504))).toEqual({ kind: 'may-have-run', failure: 'timeout' });
    expect(classifyReply(failed({ failure: 'status', functionStatus: 503 }))).toEqual({
      kind: 'may-have-run',
      failure: 'status',
      status: 503,
    });
    expect(classifyReply(failed({}))).toEqual({ kind: 'final' });
    expect(classifyReply({ ok: false, error: new FnmeshError('bad_request', 'no', 422) })).toEqual({ kind: 'final' });
  });

  it('takes no responders as not executed, and a timer that fired as a timeout only when the per-try timeout cut it', () => {
    expect(classifyRejection({ noResponders: true, timedOut: false, cutByPerTry: false })).toEqual(
      notExecuted('no-responders'),
    );
    expect(classifyRejection({ noResponders: false, timedOut: true, cutByPerTry: true })).toEqual({
      kind: 'may-have-run',
      failure: 'timeout',
    });
    // the call's own deadline: never retried
    expect(classifyRejection({ noResponders: false, timedOut: true, cutByPerTry: false })).toEqual({ kind: 'final' });
    expect(classifyRejection({ noResponders: false, timedOut: false, cutByPerTry: true })).toEqual({ kind: 'final' });
  });
});

describe('what is retried', () => {
  it('retries a call that was not executed whatever the policy', () => {
    expect(isRetryable(notExecuted('function-down'), atMostOnce)).toBe(true);
    expect(isRetryable(notExecuted('no-responders'), atMostOnce)).toBe(true);
  });

  it('retries a call that may have run only when retryOn covers how it failed', () => {
    const reset: AttemptEnd = { kind: 'may-have-run', failure: 'reset' };
    const timeout: AttemptEnd = { kind: 'may-have-run', failure: 'timeout' };
    const s503: AttemptEnd = { kind: 'may-have-run', failure: 'status', status: 503 };
    const s500: AttemptEnd = { kind: 'may-have-run', failure: 'status', status: 500 };
    for (const end of [reset, timeout, s503, s500]) {
      expect(isRetryable(end, atMostOnce)).toBe(false);
      expect(isRetryable(end, idempotent)).toBe(true);
    }
    const only503: RetryPolicy = { ...atMostOnce, retryOn: [503] };
    expect(isRetryable(s503, only503)).toBe(true);
    expect(isRetryable(s500, only503)).toBe(false);
    expect(isRetryable(reset, only503)).toBe(false);
    expect(isRetryable(reset, { ...atMostOnce, retryOn: ['reset'] })).toBe(true);
    expect(isRetryable(timeout, { ...atMostOnce, retryOn: ['reset'] })).toBe(false);
    expect(isRetryable({ kind: 'may-have-run', failure: 'status' }, idempotent)).toBe(false);
  });

  it('never retries a final end or a success', () => {
    expect(isRetryable({ kind: 'final' }, idempotent)).toBe(false);
    expect(isRetryable({ kind: 'ok' }, idempotent)).toBe(false);
  });
});

describe('back-off', () => {
  const backoff = { initialMs: 10, maxMs: 250 };

  it('doubles the cap from initialMs up to maxMs', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffCapMs(n, backoff))).toEqual([10, 20, 40, 80, 160, 250, 250]);
  });

  it('draws the wait uniformly from 0 to the cap (full jitter)', () => {
    expect(backoffMs(3, backoff, draws(0))).toBe(0);
    expect(backoffMs(3, backoff, draws(0.5))).toBe(20);
    expect(backoffMs(3, backoff, draws(0.999999))).toBe(40);
    expect(backoffMs(9, backoff, draws(0.999999))).toBe(250);
  });
});

describe('the budget of an attempt', () => {
  it('is what is left of the deadline, cut to the per-try timeout when that is shorter', () => {
    expect(attemptBudget({}, 1000, 200.4)).toEqual({ timeoutMs: 799, cutByPerTry: false });
    expect(attemptBudget({ perTryTimeoutMs: 300 }, 1000, 200)).toEqual({ timeoutMs: 300, cutByPerTry: true });
    expect(attemptBudget({ perTryTimeoutMs: 300 }, 1000, 800)).toEqual({ timeoutMs: 200, cutByPerTry: false });
  });
});

describe('the next step', () => {
  const deadline = 10_000;

  it('stops at a success, a final end, or an end the policy does not retry', () => {
    expect(nextStep({ kind: 'ok' }, 1, idempotent, deadline, 0, draws(0))).toEqual({ kind: 'stop', why: 'done' });
    expect(nextStep({ kind: 'final' }, 1, idempotent, deadline, 0, draws(0))).toEqual({
      kind: 'stop',
      why: 'not-retryable',
    });
    expect(nextStep({ kind: 'may-have-run', failure: 'reset' }, 1, atMostOnce, deadline, 0, draws(0))).toEqual({
      kind: 'stop',
      why: 'not-retryable',
    });
  });

  it('retries after the drawn wait, up to the attempts of the policy in all', () => {
    const end = notExecuted('function-down');
    expect(nextStep(end, 1, atMostOnce, deadline, 0, draws(0.5))).toEqual({ kind: 'retry', waitMs: 5 });
    expect(nextStep(end, 2, atMostOnce, deadline, 0, draws(0.5))).toEqual({ kind: 'retry', waitMs: 10 });
    expect(nextStep(end, 3, atMostOnce, deadline, 0, draws(0.5))).toEqual({ kind: 'retry', waitMs: 20 });
    expect(nextStep(end, 4, atMostOnce, deadline, 0, draws(0.5))).toEqual({ kind: 'stop', why: 'attempts' });
    expect(nextStep(end, 1, { ...atMostOnce, attempts: 1 }, deadline, 0, draws(0.5))).toEqual({
      kind: 'stop',
      why: 'attempts',
    });
  });

  it('never waits past the deadline, nor plans an attempt with too little time left', () => {
    const end = notExecuted('function-down');
    // a 10 ms wait would end 2 ms before the deadline
    expect(nextStep(end, 1, atMostOnce, 1000, 988, draws(0.999))).toEqual({ kind: 'stop', why: 'deadline' });
    // no wait, and exactly the least useful time left
    expect(nextStep(end, 1, atMostOnce, 1000, 1000 - MIN_ATTEMPT_MS, draws(0))).toEqual({ kind: 'retry', waitMs: 0 });
    expect(nextStep(end, 1, atMostOnce, 1000, 1000 - MIN_ATTEMPT_MS + 1, draws(0))).toEqual({
      kind: 'stop',
      why: 'deadline',
    });
    expect(nextStep(end, 1, atMostOnce, 1000, 1200, draws(0))).toEqual({ kind: 'stop', why: 'deadline' });
  });
});

describe('the error when the attempts ended without success', () => {
  const last = new FnmeshError('unavailable', 'the replica is draining');

  it("is the last attempt's own error when it may have run or was final", () => {
    const own = new FnmeshError('function_failed', 'the function crashed');
    expect(finalError({ kind: 'may-have-run', failure: 'reset' }, own, 1, 'not-retryable', target)).toBe(own);
    expect(finalError({ kind: 'final' }, own, 3, 'not-retryable', target)).toBe(own);
  });

  it('is a 503 that says no replica could take the call, and after how many attempts', () => {
    const e = finalError(notExecuted('function-down'), last, 4, 'attempts', target);
    expect(e).toMatchObject({ code: 'unavailable', status: 503 });
    expect(e.message).toBe(
      "no replica of default/greeter could take the call to default/greeter.hello (4 attempts; the last replica's function process was down); check that the service's replicas are running and their functions healthy",
    );
    expect(finalError(notExecuted('no-responders'), last, 1, 'deadline', target).message).toBe(
      "no replica of default/greeter could take the call to default/greeter.hello (1 attempt, and too little of its deadline was left for another; no replica of the service is subscribed); check that the service's replicas are running and their functions healthy",
    );
  });

  it('is a 429 when the last replica was full', () => {
    const e = finalError(notExecuted('overloaded'), last, 2, 'attempts', target);
    expect(e).toMatchObject({ code: 'overloaded', status: 429 });
    expect(e.message).toBe(
      'every replica of default/greeter that got the call to default/greeter.hello was at its concurrency limit (2 attempts); retry later, or give the service more replicas or concurrency',
    );
  });
});

describe("what a call's attempts tell the circuit breaker", () => {
  it('counts an attempt no replica took, one a replica took, and one that says nothing', () => {
    expect(attemptVerdict(notExecuted('function-down'), true, false)).toBe('no-replica');
    expect(attemptVerdict(notExecuted('no-responders'), false, false)).toBe('no-replica');
    expect(attemptVerdict({ kind: 'ok' }, true, false)).toBe('taken');
    expect(attemptVerdict({ kind: 'may-have-run', failure: 'reset' }, true, false)).toBe('taken');
    expect(attemptVerdict({ kind: 'final' }, true, false)).toBe('taken');
    expect(attemptVerdict({ kind: 'final' }, false, true)).toBe('taken');
    expect(attemptVerdict({ kind: 'final' }, false, false)).toBe('neutral');
  });

  it('makes a call no-replica only when every attempt was, and taken when any was', () => {
    expect(foldVerdict(undefined, 'no-replica')).toBe('no-replica');
    expect(foldVerdict('no-replica', 'no-replica')).toBe('no-replica');
    expect(foldVerdict('no-replica', 'taken')).toBe('taken');
    expect(foldVerdict('no-replica', 'neutral')).toBe('neutral');
    expect(foldVerdict('neutral', 'taken')).toBe('taken');
    expect(foldVerdict('taken', 'no-replica')).toBe('taken');
  });
});

describe('a call and a NATS connection that dropped', () => {
  const rejection = { noResponders: false, timedOut: false, cutByPerTry: false };

  it('retries a call that was not sent, after the reconnect and without back-off, whatever the policy', () => {
    const notSent = classifyRejection({ ...rejection, notSent: true });
    expect(notSent).toEqual({ kind: 'not-sent' });
    expect(isRetryable(notSent, atMostOnce)).toBe(true);
    expect(nextStep(notSent, 1, atMostOnce, 1000, 0, draws(0.99))).toEqual({ kind: 'retry', waitMs: 0 });
    expect(nextStep(notSent, 4, atMostOnce, 1000, 0, draws(0))).toEqual({ kind: 'stop', why: 'attempts' });
    // nothing reached a replica: the breaker learns nothing
    expect(attemptVerdict(notSent, false, false)).toBe('neutral');
  });

  it('treats a call whose connection dropped in flight as may-have-run: retried only when idempotent', () => {
    const lost = classifyRejection({ ...rejection, connectionLost: true });
    expect(lost).toEqual({ kind: 'may-have-run', failure: 'reset' });
    expect(nextStep(lost, 1, atMostOnce, 1000, 0, draws(0))).toEqual({ kind: 'stop', why: 'not-retryable' });
    expect(nextStep(lost, 1, idempotent, 1000, 0, draws(0))).toEqual({ kind: 'retry', waitMs: 0 });
    // the caller gets the attempt's own error (the may-have-run 502)
    const e = new FnmeshError('function_failed', 'lost');
    expect(finalError(lost, e, 1, 'not-retryable', target)).toBe(e);
  });

  it('waits for the reconnect at most RECONNECT_WAIT_MS after the disconnect, never past the deadline', () => {
    expect(reconnectWaitMs(0, 0, 10_000)).toBe(RECONNECT_WAIT_MS);
    expect(reconnectWaitMs(0, 500, 10_000)).toBe(RECONNECT_WAIT_MS - 500);
    // NATS down for longer: calls fail at once
    expect(reconnectWaitMs(0, RECONNECT_WAIT_MS, 10_000)).toBe(0);
    expect(reconnectWaitMs(0, RECONNECT_WAIT_MS + 5000, 100_000)).toBe(0);
    // the deadline is nearer: the wait leaves room for the attempt
    expect(reconnectWaitMs(0, 100, 400)).toBe(300 - MIN_ATTEMPT_MS);
    expect(reconnectWaitMs(0, 100, 100 + MIN_ATTEMPT_MS - 1)).toBe(0);
  });
});
