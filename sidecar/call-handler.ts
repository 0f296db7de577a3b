/**
 * One NATS message → one function call → one reply. Params and results pass through as bytes; only the
 * result is checked to be JSON. Never throws: every failure becomes an error reply, which says whether the call
 * ran: "not executed" (503, Fnmesh-Not-Executed: the function never read it, the replica was out of rotation
 * or full) or may have run (Fnmesh-Failure: reset, timeout, or the function's 5xx status). A call that finds
 * every slot taken waits in the replica's queue (FIFO) for one.
 */
import { randomUUID } from 'node:crypto';
import type { Msg } from '@nats-io/nats-core';
import {
  CALL_PREFIX,
  FUNCTION_HEADERS,
  FnmeshError,
  codeForStatus,
  type CallMeta,
  type NotExecutedReason,
  type ReplyFacts,
  decodeCallHeaders,
  encodeClaimsHeader,
  encodeErrorReply,
  errorMessage,
  isFunctionName,
  type Logger,
} from './common';
import { classifyConnectionError } from './call-outcome';
import type { CallSlots } from './concurrency';
import { describeConnectionError, type FunctionClient, type FunctionHeaders } from './function-client';
import type { InboundCall, InboundCalls } from './inbound';
import type { Membership } from './membership';
import type { NatsLink } from './nats-link';
import type { SidecarMetrics } from './metrics';
import type { CallStats } from './micro';

export interface CallHandlerDeps {
  /** The connection this handler's calls come in on: its size limit, and the replies it is owed. */
  link: NatsLink;
  namespace: string;
  service: string;
  /** Budget for a message without Fnmesh-Timeout-Ms. */
  defaultTimeoutMs: number;
  /** FNMESH_REPLICA_ID: named in the facts of an error reply. */
  replicaId: string;
  client: FunctionClient;
  slots: CallSlots;
  /** Read only: whether the replica takes calls now (`refusing`). */
  membership: Pick<Membership, 'refusing'>;
  /** A call could not reach the function (it never read it): leave the queue group now. */
  onFunctionDown(detail: string): void;
  /** The function answered (or broke) a call; `failed` for outlier detection. */
  onAnswer(failed: boolean): void;
  inbound: InboundCalls;
  metrics: SidecarMetrics;
  stats: CallStats;
  logger: Logger;
}

const NULL_JSON = Buffer.from('null');
const MAX_ERROR_TEXT = 500;
/** How early (ms) a function may fail at its deadline and still be reported as a 504 (epoch-ms rounding, timers). */
const DEADLINE_SKEW_MS = 5;

export function truncate(text: string, max = MAX_ERROR_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** The message a function's non-2xx answer carries: its {"error": "..."} if present, else its text. */
export function functionErrorText(body: Buffer): string {
  if (body.length === 0) return '';
  const text = body.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const e = (parsed as { error?: unknown }).error;
      if (typeof e === 'string') return truncate(e);
      if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') {
        return truncate((e as { message: string }).message);
      }
    }
  } catch {
    // not JSON: use the text
  }
  return truncate(text.trim());
}

/** Maps a finished HTTP answer from the function to the reply bytes or an error. */
export function mapFunctionResponse(
  fn: string,
  status: number,
  body: Buffer,
): { ok: true; data: Buffer } | { ok: false; error: FnmeshError } {
  if (status >= 200 && status < 300) {
    if (body.length === 0) return { ok: true, data: NULL_JSON };
    try {
      JSON.parse(body.toString('utf8'));
    } catch {
      return {
        ok: false,
        error: new FnmeshError(
          'function_failed',
          `function "${fn}" answered status ${status} with a body that is not JSON; a function must answer JSON (got: ${truncate(body.toString('utf8').trim(), 100)})`,
        ),
      };
    }
    return { ok: true, data: body };
  }
  const text = functionErrorText(body);
  if (status >= 400 && status < 500) {
    return {
      ok: false,
      error: new FnmeshError(
        codeForStatus(status),
        text || `function "${fn}" rejected the call with status ${status}`,
        status,
      ),
    };
  }
  return {
    ok: false,
    error: new FnmeshError(
      'function_failed',
      `function "${fn}" failed with status ${status}${text ? `: ${text}` : ''}`,
    ),
  };
}

interface PendingReply {
  msg: Msg;
  fn: string;
  error: FnmeshError | undefined;
  data: Uint8Array | undefined;
  /** What the error reply tells the gateway (whether the call ran); undefined on the success path. */
  facts: ReplyFacts | undefined;
  /** Release the call's concurrency slot once the reply is sent. */
  release: boolean;
}

/** The message of a not-executed reply: the replica did not run the call, and why. */
export function notExecutedMessage(reason: NotExecutedReason, fn: string, replica: string, detail?: string): string {
  const why: Record<NotExecutedReason, string> = {
    'function-down': 'its function process is down',
    unhealthy: 'its function fails its health check',
    overloaded: 'every concurrency slot and its whole queue are taken',
    draining: 'it is stopping',
    ejected: 'outlier detection ejected it (its function kept failing)',
  };
  return `replica ${replica} did not run "${fn}": ${why[reason]}${detail ? ` (${detail})` : ''}; another replica may take it`;
}

export function createCallHandler(deps: CallHandlerDeps): (err: Error | null, msg: Msg) => void {
  const { link, client, slots, membership, inbound, metrics, stats, replicaId } = deps;
  const log = deps.logger;
  const prefix = `${CALL_PREFIX}.${deps.namespace}.${deps.service}.`;

  /**
   * Replies of one event-loop turn go out together: nats.js writes to its socket once per microtask
   * checkpoint, i.e. once per function answer otherwise; batched, it is one write for all of them. A call's
   * concurrency slot is released when its reply is handed to NATS, so a drain never closes the connection
   * with a reply still queued here. (A not-executed reply is queued after the subscription's UNSUB was
   * written, so the gateway's retry cannot come back to this replica.)
   */
  let replies: PendingReply[] = [];
  const sendReplies = (): void => {
    const batch = replies;
    replies = [];
    for (const r of batch) {
      const { msg, fn, error } = r;
      try {
        if (error) {
          const e = encodeErrorReply(error, r.facts);
          msg.respond(e.data, { headers: e.headers });
        } else {
          msg.respond(r.data);
        }
      } catch (err) {
        log.warn('could not send a reply', { function: fn, error: errorMessage(err) });
      }
      link.owed--;
      if (r.release) {
        metrics.inFlight.dec();
        slots.release(); // may start the call waiting longest
      }
    }
  };
  const reply = (
    msg: Msg,
    fn: string,
    started: number,
    error: FnmeshError | undefined,
    data?: Uint8Array,
    release = false,
    facts?: ReplyFacts,
  ): void => {
    const ms = performance.now() - started;
    metrics.call(fn, error ? error.code : 'ok', ms / 1000);
    stats.record(fn, ms, error);
    if (replies.push({ msg, fn, error, data, facts, release }) === 1) setImmediate(sendReplies);
  };
  const notExecuted = (
    msg: Msg,
    fn: string,
    started: number,
    reason: NotExecutedReason,
    detail?: string,
    release = false,
  ): void => {
    metrics.notExecuted(reason);
    reply(
      msg,
      fn,
      started,
      new FnmeshError('unavailable', notExecutedMessage(reason, fn, replicaId, detail)),
      undefined,
      release,
      { notExecuted: reason, replica: replicaId },
    );
  };
  const deadlineError = (fn: string, timeoutMs: number): FnmeshError =>
    new FnmeshError('deadline_exceeded', `function "${fn}" did not answer within its deadline of ${timeoutMs} ms`);

  const run = async (
    msg: Msg,
    fn: string,
    started: number,
    timeoutMs: number,
    /** What is left of timeoutMs (less for a call that waited in the queue). */
    budgetMs: number,
    headers: FunctionHeaders,
    entry: InboundCall | undefined,
    requestId: string,
  ): Promise<void> => {
    let error: FnmeshError | undefined;
    let data: Uint8Array | undefined;
    let facts: ReplyFacts | undefined;
    /** The function's answer counts as a failure for outlier detection (its 5xx, past its deadline, a reset). */
    let failed = false;
    try {
      const maxPayload = link.nc.info?.max_payload ?? 1024 * 1024;
      const res = await client.call(fn, msg.data, headers, budgetMs, maxPayload);
      if (performance.now() - started >= timeoutMs) {
        // One deadline: an answer that lands after it (e.g. a function that gives up at ctx.signal) is a 504,
        // as the caller has stopped waiting at the same instant.
        error = deadlineError(fn, timeoutMs);
        facts = { failure: 'timeout', replica: replicaId };
        failed = true;
      } else if (res.tooLarge) {
        error = new FnmeshError(
          'function_failed',
          `function "${fn}" answered more than ${maxPayload} bytes, the largest message NATS carries here`,
        );
      } else {
        const mapped = mapFunctionResponse(fn, res.status, res.body);
        if (mapped.ok) data = mapped.data;
        else if (res.status >= 500 && performance.now() - started >= timeoutMs - DEADLINE_SKEW_MS) {
          // x-fnmesh-deadline is whole epoch ms: a function that gives up at it (the SDK's ctx.signal) fails
          // a moment before this timer; that failure is the deadline's, not the function's.
          error = deadlineError(fn, timeoutMs);
          facts = { failure: 'timeout', replica: replicaId };
          failed = true;
        } else {
          error = mapped.error;
          if (res.status >= 500 && res.status <= 599) {
            facts = { failure: 'status', functionStatus: res.status, replica: replicaId };
            failed = true;
          }
        }
      }
    } catch (err) {
      const outcome = classifyConnectionError(err);
      if (outcome.executed === false) {
        const detail = describeConnectionError(err, client.address, fn);
        // leaves the queue group now (its UNSUB is written before this reply), and refuses the waiting calls
        deps.onFunctionDown(detail);
        notExecuted(msg, fn, started, 'function-down', detail, true);
        return; // (finally still removes the inbound entry)
      }
      failed = true;
      if (outcome.failure === 'timeout') {
        error = deadlineError(fn, timeoutMs);
        facts = { failure: 'timeout', replica: replicaId };
      } else {
        error = new FnmeshError('function_failed', describeConnectionError(err, client.address, fn));
        facts = { failure: 'reset', replica: replicaId };
      }
    } finally {
      if (entry) inbound.remove(requestId, entry);
    }
    deps.onAnswer(failed);
    reply(msg, fn, started, error, data, true, facts);
  };

  /** Runs an admitted call (it holds a slot). */
  const start = (msg: Msg, fn: string, started: number, meta: CallMeta, queued: boolean): void => {
    metrics.inFlight.inc();
    const requestId = meta.requestId || randomUUID();
    const timeoutMs = meta.timeoutMs;
    // a call that waited in the queue has less left
    const budgetMs = queued ? Math.max(1, Math.round(timeoutMs - (performance.now() - started))) : timeoutMs;
    const deadline = Date.now() + budgetMs;
    const headers: FunctionHeaders = {
      'content-type': 'application/json',
      [FUNCTION_HEADERS.requestId]: requestId,
      [FUNCTION_HEADERS.deadline]: String(deadline),
      [FUNCTION_HEADERS.timeoutMs]: String(budgetMs),
    };
    if (meta.claims) headers[FUNCTION_HEADERS.claims] = encodeClaimsHeader(meta.claims);
    if (meta.caller) headers[FUNCTION_HEADERS.caller] = meta.caller;
    if (meta.traceparent) headers[FUNCTION_HEADERS.traceparent] = meta.traceparent;
    if (meta.attempt !== undefined) headers[FUNCTION_HEADERS.attempt] = String(meta.attempt);
    // The delegation token stays here (for calls the function makes through the call API); never sent on.
    const entry: InboundCall = { deadline };
    if (meta.delegation) entry.delegation = meta.delegation;
    if (meta.traceparent) entry.traceparent = meta.traceparent;
    inbound.add(requestId, entry);
    void run(msg, fn, started, timeoutMs, budgetMs, headers, entry, requestId);
  };

  return (err, msg) => {
    if (err) {
      log.error('call subscription failed', { error: errorMessage(err) });
      return;
    }
    const started = performance.now();
    const fn = msg.subject.startsWith(prefix) ? msg.subject.slice(prefix.length) : '';
    if (!msg.reply) {
      log.warn('dropped a call message without a reply subject', { subject: msg.subject });
      return;
    }
    link.owed++; // every path below ends in one reply (sendReplies)
    if (!isFunctionName(fn)) {
      reply(msg, fn || '_invalid', started, new FnmeshError('not_found', `"${fn}" is not a valid function name`));
      return;
    }
    let meta: CallMeta;
    try {
      meta = decodeCallHeaders(msg.headers, deps.defaultTimeoutMs);
    } catch (e) {
      reply(msg, fn, started, e instanceof FnmeshError ? e : new FnmeshError('bad_request', errorMessage(e)));
      return;
    }
    if (meta.timeoutMs <= 0) {
      reply(
        msg,
        fn,
        started,
        new FnmeshError('deadline_exceeded', `the call to "${fn}" arrived with no time left before its deadline`),
      );
      return;
    }
    // Out of the queue group because its function is down, unhealthy or ejected (a message sent before the
    // broker saw the UNSUB): answered at once, never run here.
    const refusing = membership.refusing;
    if (refusing !== undefined) {
      notExecuted(msg, fn, started, refusing);
      return;
    }
    if (slots.tryAcquire()) {
      start(msg, fn, started, meta, false);
      return;
    }
    const queued = slots.enqueue(
      {
        start: () => start(msg, fn, started, meta, true),
        refuse: (why) => {
          if (why === 'deadline')
            reply(
              msg,
              fn,
              started,
              new FnmeshError(
                'deadline_exceeded',
                `the call to "${fn}" waited for a free slot of replica ${replicaId} until its deadline of ${meta.timeoutMs} ms passed; it never ran`,
              ),
            );
          else notExecuted(msg, fn, started, membership.refusing ?? 'function-down');
        },
      },
      meta.timeoutMs,
    );
    if (!queued) notExecuted(msg, fn, started, 'overloaded');
  };
}
