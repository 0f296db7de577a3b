/**
 * One call to a function as every caller makes it (HTTP calls, internal calls, func rules): the function's
 * circuit breaker first, then attempts over requestRaw until one succeeds or retry-decision.ts says stop,
 * all within the call's one deadline. Every attempt carries the same request id (a function may use it as
 * its idempotency key) and the same delegation token (minted once by the caller); retries carry their
 * attempt number. The caller sees the attempts only in the count this returns. While NATS is disconnected, an
 * attempt first waits for the reconnect (bounded: reconnectWaitMs).
 *
 * The first attempt's success costs what a plain request does: no extra timer or promise (the attempt's budget
 * is requestRaw's own timer), one map lookup for the breaker.
 */
import type { Msg } from '@nats-io/nats-core';
import { FnmeshError, decodeReply, type CallMeta, type DecodedReply, type Logger, type RetryPolicy } from '../common';
import type { BreakerRef, CallVerdict, CircuitBreaker, CircuitBreakers } from './circuit-breaker';
import {
  ConnectionLostError,
  NoRespondersError,
  NotConnectedError,
  requestRaw,
  type Connection,
  type Target,
} from './invoke';
import type { GatewayMetrics } from './metrics';
import {
  attemptBudget,
  attemptVerdict,
  classifyRejection,
  classifyReply,
  finalError,
  foldVerdict,
  nextStep,
  reconnectWaitMs,
  retryReason,
  type AttemptEnd,
} from './retry-decision';

/** What a call needs to know of the function it calls (a ResolvedFunction is one). */
export interface Callee extends Target {
  label: string;
  subject: string;
  retry: RetryPolicy;
  /** Its circuit breaker; none for a func rule's target the routing table does not have. */
  breaker?: BreakerRef;
}

export interface ResilientCalls {
  conn: Connection;
  breakers: CircuitBreakers;
  metrics: Pick<GatewayMetrics, 'retried' | 'breakerRefusals' | 'breakerOpenings'>;
  logger: Logger;
  /** [0, 1); Math.random unless a test gives its own. */
  random?: () => number;
}

export interface CallOutcome {
  /** The function's result, or the error the caller gets. */
  reply: DecodedReply;
  /** The last attempt's reply message when `reply` is that reply as it came (success, or the attempt's own error). */
  msg?: Msg;
  /** Attempts made (0 when an open circuit refused the call). */
  attempts: number;
  /** When an open circuit refused the call: whole seconds until trying again is worth it. */
  retryAfterSeconds?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** While NATS is disconnected: waits for the reconnect, as long as reconnectWaitMs allows. */
async function waitForNats(conn: Connection, deadline: number): Promise<void> {
  const down = conn.connected() ? undefined : conn.disconnect?.();
  if (down === undefined) return;
  const ms = reconnectWaitMs(down.since, performance.now(), deadline);
  if (ms <= 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([down.reconnected, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * Calls `fn` with `payload` until `deadline` (performance.now() based). Sets `meta.timeoutMs` to each
 * attempt's budget. Resolves with the outcome; rejects only with what is not a FnmeshError (a defect).
 */
export async function callFunction(
  calls: ResilientCalls,
  fn: Callee,
  payload: Uint8Array,
  meta: CallMeta,
  deadline: number,
): Promise<CallOutcome> {
  const ref = fn.breaker;
  const breaker = ref === undefined ? undefined : calls.breakers.find(ref);
  let probe = false;
  if (breaker !== undefined) {
    const admission = breaker.admit(Date.now());
    if (admission === 'refuse') return refused(calls, fn, ref!, breaker);
    probe = admission === 'probe';
  }
  const policy = fn.retry;
  let verdict: CallVerdict | undefined;
  for (let attempt = 1; ; attempt++) {
    if (!calls.conn.connected()) await waitForNats(calls.conn, deadline);
    const { timeoutMs, cutByPerTry } = attemptBudget(policy, deadline, performance.now());
    const m = attempt === 1 ? meta : { ...meta, attempt };
    m.timeoutMs = timeoutMs;
    let end: AttemptEnd;
    let error: FnmeshError;
    let msg: Msg | undefined;
    let reply: DecodedReply | undefined;
    let timedOut = false;
    try {
      msg = await requestRaw(calls.conn, fn.subject, fn, payload, m);
      reply = decodeReply(msg.data, msg.headers);
      if (reply.ok) {
        if (ref !== undefined) settle(calls, ref, 'taken', probe);
        return { reply, msg, attempts: attempt };
      }
      end = classifyReply(reply);
      error = reply.error;
    } catch (err) {
      if (!(err instanceof FnmeshError)) {
        if (ref !== undefined) settle(calls, ref, 'neutral', probe); // a defect: free the probe slot
        throw err;
      }
      // A call with no time left was never sent: that says nothing about the replicas.
      timedOut = err.code === 'deadline_exceeded' && timeoutMs >= 1;
      end = classifyRejection({
        noResponders: err instanceof NoRespondersError,
        timedOut,
        cutByPerTry,
        notSent: err instanceof NotConnectedError,
        connectionLost: err instanceof ConnectionLostError,
      });
      error = err;
    }
    verdict = foldVerdict(verdict, attemptVerdict(end, reply !== undefined, timedOut));
    const step = nextStep(end, attempt, policy, deadline, performance.now(), calls.random ?? Math.random);
    if (step.kind === 'stop') {
      if (ref !== undefined) settle(calls, ref, verdict, probe);
      const e = finalError(end, error, attempt, step.why, fn);
      if (e === error && reply !== undefined) return { reply, msg: msg!, attempts: attempt };
      return { reply: { ok: false, error: e }, attempts: attempt };
    }
    const reason = retryReason(end)!;
    calls.metrics.retried(ref ?? fn, reason);
    calls.logger.debug('retrying a call', {
      requestId: meta.requestId,
      function: fn.label,
      attempt: attempt + 1,
      reason,
      ...(reply !== undefined && !reply.ok && reply.replica ? { replica: reply.replica } : {}),
      waitMs: step.waitMs,
    });
    if (step.waitMs > 0) await sleep(step.waitMs);
  }
}

function settle(calls: ResilientCalls, ref: BreakerRef, verdict: CallVerdict, probe: boolean): void {
  if (!calls.breakers.record(ref, verdict, probe, Date.now())) return;
  const b = calls.breakers.find(ref)!;
  calls.metrics.breakerOpenings.labels(ref.namespace, ref.service, ref.function).inc();
  calls.logger.warn('circuit breaker opened: no replica could take the calls', {
    function: ref.key,
    failuresInARow: b.failuresInARow,
    openMs: b.retryAfterMs(Date.now()),
  });
}

function refused(calls: ResilientCalls, fn: Callee, ref: BreakerRef, breaker: CircuitBreaker): CallOutcome {
  calls.metrics.breakerRefusals.labels(ref.namespace, ref.service, ref.function).inc();
  const ms = breaker.retryAfterMs(Date.now());
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  const svc = `${fn.namespace}/${fn.service}`;
  const why =
    breaker.state === 'open'
      ? `is open: ${breaker.failuresInARow} calls in a row found no replica of ${svc} that could take them; the gateway lets a trial call through in ${Math.max(0, ms)} ms`
      : `is half-open: a trial call is testing whether a replica of ${svc} is back`;
  const error = new FnmeshError(
    'unavailable',
    `the circuit breaker of ${fn.label} ${why}; retry after ${seconds} s, and check that the service's replicas are running and their functions healthy`,
  );
  return { reply: { ok: false, error }, attempts: 0, retryAfterSeconds: seconds };
}
