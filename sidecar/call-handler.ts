/**
 * One NATS message → one function call → one reply. Params and results pass through as bytes; only the
 * result is checked to be JSON. Never throws: every failure becomes an error reply.
 */
import { randomUUID } from 'node:crypto';
import type { Msg, NatsConnection } from '@nats-io/nats-core';
import {
  CALL_PREFIX,
  FUNCTION_HEADERS,
  FnmeshError,
  codeForStatus,
  decodeCallHeaders,
  encodeClaimsHeader,
  encodeErrorReply,
  errorMessage,
  isFunctionName,
  type Logger,
} from './common';
import type { InFlight } from './concurrency';
import { describeConnectionError, isDeadlineError, type FunctionClient, type FunctionHeaders } from './function-client';
import type { InboundCall, InboundCalls } from './inbound';
import type { SidecarMetrics } from './metrics';
import type { CallStats } from './micro';

export interface CallHandlerDeps {
  nc: NatsConnection;
  namespace: string;
  service: string;
  /** Budget for a message without Fnmesh-Timeout-Ms. */
  defaultTimeoutMs: number;
  client: FunctionClient;
  inFlight: InFlight;
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
  /** Release the call's concurrency slot once the reply is sent. */
  release: boolean;
}

export function createCallHandler(deps: CallHandlerDeps): (err: Error | null, msg: Msg) => void {
  const { nc, client, inFlight, inbound, metrics, stats } = deps;
  const log = deps.logger;
  const prefix = `${CALL_PREFIX}.${deps.namespace}.${deps.service}.`;

  /**
   * Replies of one event-loop turn go out together: nats.js writes to its socket once per microtask
   * checkpoint, i.e. once per function answer otherwise; batched, it is one write for all of them. A call's
   * concurrency slot is released when its reply is handed to NATS, so a drain never closes the connection
   * with a reply still queued here.
   */
  let replies: PendingReply[] = [];
  const sendReplies = (): void => {
    const batch = replies;
    replies = [];
    for (const r of batch) {
      const { msg, fn, error } = r;
      try {
        if (error) {
          const e = encodeErrorReply(error);
          msg.respond(e.data, { headers: e.headers });
        } else {
          msg.respond(r.data);
        }
      } catch (err) {
        log.warn('could not send a reply', { function: fn, error: errorMessage(err) });
      }
      if (r.release) {
        inFlight.release();
        metrics.inFlight.dec();
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
  ): void => {
    const ms = performance.now() - started;
    metrics.call(fn, error ? error.code : 'ok', ms / 1000);
    stats.record(fn, ms, error);
    if (replies.push({ msg, fn, error, data, release }) === 1) setImmediate(sendReplies);
  };

  const run = async (
    msg: Msg,
    fn: string,
    started: number,
    timeoutMs: number,
    headers: FunctionHeaders,
    entry: InboundCall | undefined,
    requestId: string,
  ): Promise<void> => {
    let error: FnmeshError | undefined;
    let data: Uint8Array | undefined;
    try {
      const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
      const res = await client.call(fn, msg.data, headers, timeoutMs, maxPayload);
      if (performance.now() - started >= timeoutMs) {
        // One deadline: an answer that lands after it (e.g. a function that gives up at ctx.signal) is a 504,
        // as the caller has stopped waiting at the same instant.
        error = new FnmeshError(
          'deadline_exceeded',
          `function "${fn}" did not answer within its deadline of ${timeoutMs} ms`,
        );
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
          error = new FnmeshError(
            'deadline_exceeded',
            `function "${fn}" did not answer within its deadline of ${timeoutMs} ms`,
          );
        } else error = mapped.error;
      }
    } catch (err) {
      if (isDeadlineError(err)) {
        error = new FnmeshError(
          'deadline_exceeded',
          `function "${fn}" did not answer within its deadline of ${timeoutMs} ms`,
        );
      } else {
        error = new FnmeshError('function_failed', describeConnectionError(err, client.address, fn));
      }
    } finally {
      if (entry) inbound.remove(requestId, entry);
    }
    reply(msg, fn, started, error, data, true);
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
    if (!isFunctionName(fn)) {
      reply(msg, fn || '_invalid', started, new FnmeshError('not_found', `"${fn}" is not a valid function name`));
      return;
    }
    let meta;
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
    if (!inFlight.tryAcquire()) {
      metrics.overloaded.inc();
      reply(
        msg,
        fn,
        started,
        new FnmeshError(
          'overloaded',
          `replica of ${deps.namespace}/${deps.service} is at its concurrency limit of ${inFlight.limit} calls; retry later`,
        ),
      );
      return;
    }
    metrics.inFlight.inc();
    const requestId = meta.requestId || randomUUID();
    const deadline = Date.now() + meta.timeoutMs;
    const headers: FunctionHeaders = {
      'content-type': 'application/json',
      [FUNCTION_HEADERS.requestId]: requestId,
      [FUNCTION_HEADERS.deadline]: String(deadline),
      [FUNCTION_HEADERS.timeoutMs]: String(meta.timeoutMs),
    };
    if (meta.claims) headers[FUNCTION_HEADERS.claims] = encodeClaimsHeader(meta.claims);
    if (meta.caller) headers[FUNCTION_HEADERS.caller] = meta.caller;
    if (meta.traceparent) headers[FUNCTION_HEADERS.traceparent] = meta.traceparent;
    // The delegation token stays here (for calls the function makes through the call API); never sent on.
    const entry: InboundCall = { deadline };
    if (meta.delegation) entry.delegation = meta.delegation;
    if (meta.traceparent) entry.traceparent = meta.traceparent;
    inbound.add(requestId, entry);
    void run(msg, fn, started, meta.timeoutMs, headers, entry, requestId);
  };
}
