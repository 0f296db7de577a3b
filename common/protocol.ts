/**
 * The wire protocol between gateway, sidecar and function. This module is the single place that knows
 * subject names, header names and reply encoding; every part imports it and nothing else of the others.
 *
 * Calls:        fnmesh.call.{namespace}.{service}.{function}     queue group fnmesh.{namespace}.{service}
 * Internal:     fnmesh.gw.{callerNs}.{callerSvc}.{targetNs}.{targetSvc}.{function}   (gateway-only;
 *               the caller identity is the subject itself, so NATS publish permissions make it unforgeable)
 * Replies:      success: no Fnmesh-Status header, body = the function's JSON result bytes
 *               failure: Fnmesh-Status: <http status>, Fnmesh-Error: <error code>, body = {"error": "..."}
 */
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import { FnmeshError, codeForStatus, isErrorCode, type ErrorCode } from './errors';
import { isNotExecutedReason, type NotExecutedReason } from './resilience';

export const CALL_PREFIX = 'fnmesh.call';
export const INTERNAL_PREFIX = 'fnmesh.gw';
/** Queue group of the gateways answering internal calls. */
export const GATEWAY_QUEUE_GROUP = 'fnmesh.gateway';

export function callSubject(namespace: string, service: string, fn: string): string {
  return `${CALL_PREFIX}.${namespace}.${service}.${fn}`;
}
/** The one subscription a replica makes for all functions of its service. */
export function serviceCallWildcard(namespace: string, service: string): string {
  return `${CALL_PREFIX}.${namespace}.${service}.*`;
}
export function serviceQueueGroup(namespace: string, service: string): string {
  return `fnmesh.${namespace}.${service}`;
}

export interface CallAddress {
  namespace: string;
  service: string;
  function: string;
}

export function parseCallSubject(subject: string): CallAddress | undefined {
  const parts = subject.split('.');
  if (parts.length !== 5 || parts[0] !== 'fnmesh' || parts[1] !== 'call') return undefined;
  return { namespace: parts[2]!, service: parts[3]!, function: parts[4]! };
}

export function internalCallSubject(caller: { namespace: string; service: string }, target: CallAddress): string {
  return `${INTERNAL_PREFIX}.${caller.namespace}.${caller.service}.${target.namespace}.${target.service}.${target.function}`;
}
/** What a sidecar of `namespace/service` may publish to (its NATS publish permission). */
export function internalPublishPermission(namespace: string, service: string): string {
  return `${INTERNAL_PREFIX}.${namespace}.${service}.>`;
}
export const INTERNAL_WILDCARD = `${INTERNAL_PREFIX}.>`;

export function parseInternalSubject(
  subject: string,
): { caller: { namespace: string; service: string }; target: CallAddress } | undefined {
  const parts = subject.split('.');
  if (parts.length !== 7 || parts[0] !== 'fnmesh' || parts[1] !== 'gw') return undefined;
  return {
    caller: { namespace: parts[2]!, service: parts[3]! },
    target: { namespace: parts[4]!, service: parts[5]!, function: parts[6]! },
  };
}

/** NATS header names. */
export const NATS_HEADERS = {
  requestId: 'Fnmesh-Request-Id',
  /** Remaining budget in milliseconds when the message was sent (relative: immune to clock skew). */
  timeoutMs: 'Fnmesh-Timeout-Ms',
  traceparent: 'traceparent',
  /** Verified JWT claims as JSON (set only by the gateway). */
  claims: 'Fnmesh-Claims',
  /** `namespace/service` of the calling service, for internal calls (set only by the gateway). */
  caller: 'Fnmesh-Caller',
  /**
   * A gateway-signed delegation token (gateway → sidecar with a call that has verified claims; sidecar →
   * gateway on the internal calls made within that call). Never the end user's JWT.
   */
  delegation: 'Fnmesh-Delegation',
  /** Request id of the inbound call an internal call is made within (sidecar → gateway). */
  parentId: 'Fnmesh-Parent-Id',
  status: 'Fnmesh-Status',
  errorCode: 'Fnmesh-Error',
  /**
   * On an error reply only: the replica did not run the call (a NotExecutedReason), so the gateway may send it
   * to another replica whatever the function's retry policy. A replica sets it only when it knows.
   */
  notExecuted: 'Fnmesh-Not-Executed',
  /** On an error reply: the replica that answered (its FNMESH_REPLICA_ID), for logs and metrics. */
  replica: 'Fnmesh-Replica',
  /**
   * On an error reply of a call that may have run: how it failed, a MayHaveRunFailure ("reset": the function's
   * connection broke after it read the request; "timeout": the function did not answer within the budget the
   * message gave; "status": the function answered a 5xx, given in Fnmesh-Function-Status).
   */
  failure: 'Fnmesh-Failure',
  /** The 5xx status the function itself answered (the reply's own status is then 502). */
  functionStatus: 'Fnmesh-Function-Status',
  /** Which attempt of the call this message is (1 for the first; gateway → sidecar → function). */
  attempt: 'Fnmesh-Attempt',
} as const;

/**
 * HTTP header on the gateway's answer to a call that took more than one attempt (absent for one): how many
 * attempts it took. Also on the call API's answer to a function that made such a call.
 */
export const ATTEMPTS_HTTP_HEADER = 'fnmesh-attempts';

export { FUNCTION_HEADERS } from './function-protocol';

export interface CallMeta {
  requestId: string;
  /** Remaining budget in milliseconds. */
  timeoutMs: number;
  traceparent?: string;
  claims?: Record<string, unknown>;
  caller?: string;
  delegation?: string;
  parentId?: string;
  /** The attempt this message is, when it is not the first. */
  attempt?: number;
}

export function encodeCallHeaders(meta: CallMeta): MsgHdrs {
  const h = natsHeaders();
  h.set(NATS_HEADERS.requestId, meta.requestId);
  h.set(NATS_HEADERS.timeoutMs, String(Math.max(0, Math.floor(meta.timeoutMs))));
  if (meta.traceparent) h.set(NATS_HEADERS.traceparent, meta.traceparent);
  if (meta.claims) h.set(NATS_HEADERS.claims, JSON.stringify(meta.claims));
  if (meta.caller) h.set(NATS_HEADERS.caller, meta.caller);
  if (meta.delegation) h.set(NATS_HEADERS.delegation, meta.delegation);
  if (meta.parentId) h.set(NATS_HEADERS.parentId, meta.parentId);
  if (meta.attempt !== undefined && meta.attempt > 1) h.set(NATS_HEADERS.attempt, String(meta.attempt));
  return h;
}

/** Reads call metadata; throws FnmeshError('bad_request') when a header is malformed. */
export function decodeCallHeaders(h: MsgHdrs | undefined, fallbackTimeoutMs: number): CallMeta {
  const requestId = h?.get(NATS_HEADERS.requestId) || '';
  const timeoutRaw = h?.get(NATS_HEADERS.timeoutMs) || '';
  let timeoutMs = fallbackTimeoutMs;
  if (timeoutRaw !== '') {
    timeoutMs = Number(timeoutRaw);
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
      throw new FnmeshError(
        'bad_request',
        `header ${NATS_HEADERS.timeoutMs} must be a non-negative number of milliseconds, got "${timeoutRaw}"`,
      );
    }
  }
  const meta: CallMeta = { requestId, timeoutMs };
  const traceparent = h?.get(NATS_HEADERS.traceparent);
  if (traceparent) meta.traceparent = traceparent;
  const claimsRaw = h?.get(NATS_HEADERS.claims);
  if (claimsRaw) {
    try {
      const claims: unknown = JSON.parse(claimsRaw);
      if (claims && typeof claims === 'object' && !Array.isArray(claims))
        meta.claims = claims as Record<string, unknown>;
    } catch {
      throw new FnmeshError('bad_request', `header ${NATS_HEADERS.claims} is not valid JSON`);
    }
  }
  const caller = h?.get(NATS_HEADERS.caller);
  if (caller) meta.caller = caller;
  const delegation = h?.get(NATS_HEADERS.delegation);
  if (delegation) meta.delegation = delegation;
  const parentId = h?.get(NATS_HEADERS.parentId);
  if (parentId) meta.parentId = parentId;
  const attempt = Number(h?.get(NATS_HEADERS.attempt) || 1);
  if (Number.isInteger(attempt) && attempt > 1) meta.attempt = attempt;
  return meta;
}

export interface ErrorReply {
  headers: MsgHdrs;
  data: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a replica adds to an error reply: whether it ran the call, and who it is. */
export const MAY_HAVE_RUN_FAILURES = ['reset', 'timeout', 'status'] as const;
export type MayHaveRunFailure = (typeof MAY_HAVE_RUN_FAILURES)[number];

export interface ReplyFacts {
  /** Set when the replica did not run the call. */
  notExecuted?: NotExecutedReason;
  /** Set when the call reached the function and failed there (it may have run). */
  failure?: MayHaveRunFailure;
  /** With failure "status": the 5xx the function answered. */
  functionStatus?: number;
  replica?: string;
}

export function encodeErrorReply(err: FnmeshError, facts: ReplyFacts = {}): ErrorReply {
  const h = natsHeaders();
  h.set(NATS_HEADERS.status, String(err.status));
  h.set(NATS_HEADERS.errorCode, err.code);
  if (facts.notExecuted) h.set(NATS_HEADERS.notExecuted, facts.notExecuted);
  if (facts.failure) h.set(NATS_HEADERS.failure, facts.failure);
  if (facts.functionStatus !== undefined) h.set(NATS_HEADERS.functionStatus, String(facts.functionStatus));
  if (facts.replica) h.set(NATS_HEADERS.replica, facts.replica);
  return { headers: h, data: encoder.encode(JSON.stringify({ error: err.message })) };
}

export type DecodedReply = { ok: true; body: Uint8Array } | ({ ok: false; error: FnmeshError } & ReplyFacts);

/**
 * Decodes a reply message. `noResponders` is the NATS 503 status a server sends when nobody is
 * subscribed; it maps to `unavailable` (fast 503, no waiting for the deadline).
 */
export function decodeReply(data: Uint8Array, h: MsgHdrs | undefined): DecodedReply {
  const statusRaw = h?.get(NATS_HEADERS.status);
  if (!statusRaw) return { ok: true, body: data };
  const status = Number(statusRaw);
  const codeRaw = h?.get(NATS_HEADERS.errorCode) ?? '';
  const claimed: ErrorCode = isErrorCode(codeRaw) ? codeRaw : codeForStatus(status);
  // `internal` is the gateway's own defect; from a replica it is the function side failing
  const code: ErrorCode = claimed === 'internal' ? 'function_failed' : claimed;
  let message = `the function failed with status ${statusRaw}`;
  try {
    const parsed: unknown = JSON.parse(decoder.decode(data));
    if (parsed && typeof parsed === 'object' && typeof (parsed as { error?: unknown }).error === 'string') {
      message = (parsed as { error: string }).error;
    }
  } catch {
    // keep the generic message
  }
  const keepStatus = Number.isInteger(status) && code === claimed;
  const reply: DecodedReply = { ok: false, error: new FnmeshError(code, message, keepStatus ? status : undefined) };
  const notExecuted = h?.get(NATS_HEADERS.notExecuted) ?? '';
  if (isNotExecutedReason(notExecuted)) reply.notExecuted = notExecuted;
  const failure = h?.get(NATS_HEADERS.failure) ?? '';
  if ((MAY_HAVE_RUN_FAILURES as readonly string[]).includes(failure)) reply.failure = failure as MayHaveRunFailure;
  const functionStatus = Number(h?.get(NATS_HEADERS.functionStatus) || NaN);
  if (Number.isInteger(functionStatus) && functionStatus >= 500 && functionStatus <= 599)
    reply.functionStatus = functionStatus;
  const replica = h?.get(NATS_HEADERS.replica);
  if (replica) reply.replica = replica;
  return reply;
}

export function encodeClaimsHeader(claims: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url');
}
export function decodeClaimsHeader(value: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A W3C traceparent: version-traceid-parentid-flags. */
export const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
