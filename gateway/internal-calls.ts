/**
 * Internal calls: a function calls another function through its sidecar, which publishes on
 * fnmesh.gw.{callerNs}.{callerSvc}.{ns}.{svc}.{fn}. The caller identity is the subject (NATS publish
 * permissions make it unforgeable); the end user's claims come only from a delegation token this mesh's
 * gateways issued to that service for the inbound call the internal call is made within. The TARGET's rule
 * decides, with args.caller = "callerNs/callerSvc"; then the call is forwarded and the reply
 * relayed.
 */
import { isUtf8 } from 'node:buffer';
import { headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import {
  FnmeshError,
  GATEWAY_QUEUE_GROUP,
  INTERNAL_WILDCARD,
  NATS_HEADERS,
  decodeCallHeaders,
  encodeErrorReply,
  errorMessage,
  isFunctionName,
  isNamespaceName,
  isServiceName,
  parseInternalSubject,
  type Logger,
} from '../common';
import { scanDepth } from '../common/call-envelope';
import { denialError, evaluateRule, makeFuncCaller } from './authorize';
import { internalParamsTooLarge, paramsTooDeep } from './limits';
import { computeTimeoutMs, pickRequestId, pickTraceparent, refuseAmbiguousParams } from './call-path';
import type { Connection } from './invoke';
import type { CircuitBreakers } from './circuit-breaker';
import { callFunction, type ResilientCalls } from './resilient-call';
import type { GatewayMetrics } from './metrics';
import { unknownFunctionError, type Registry, type ResolvedFunction } from './registry';
import type { DelegationTokens } from './delegation';

export interface InternalDeps {
  conn: Connection;
  breakers: CircuitBreakers;
  registry: () => Registry;
  delegation: DelegationTokens;
  metrics: GatewayMetrics;
  logger: Logger;
  maxTimeoutMs: number;
  exposeRuleReasons: boolean;
  /** The limits of the HTTP call path, the same for calls from functions. */
  maxBodyBytes: number;
  maxParamsDepth: number;
}

const decoder = new TextDecoder();

export function subscribeInternalCalls(
  nc: NatsConnection,
  deps: InternalDeps,
): { subscription: Subscription; inFlight: () => number } {
  let inFlight = 0;
  const calls = resilientCalls(deps);
  const subscription = nc.subscribe(INTERNAL_WILDCARD, {
    queue: GATEWAY_QUEUE_GROUP,
    callback: (err, msg) => {
      if (err) {
        deps.logger.error('the internal-call subscription failed', { error: errorMessage(err) });
        return;
      }
      inFlight++;
      handleInternalCall(msg, deps, calls).finally(() => inFlight--);
    },
  });
  return { subscription, inFlight: () => inFlight };
}

function resilientCalls(deps: InternalDeps): ResilientCalls {
  return {
    conn: deps.conn,
    breakers: deps.breakers,
    metrics: deps.metrics,
    logger: deps.logger,
  };
}

export async function handleInternalCall(
  msg: Msg,
  deps: InternalDeps,
  calls: ResilientCalls = resilientCalls(deps),
): Promise<void> {
  const started = performance.now();
  const { metrics, logger } = deps;
  let fn: ResolvedFunction | undefined;
  let requestId = '';
  let caller = '';
  const inFlight = metrics.inFlightOf('internal');
  inFlight.inc();
  const done = (status: number, err?: FnmeshError, reason?: string): void => {
    inFlight.dec();
    metrics.forCall(fn, 'internal').answered(status, (performance.now() - started) / 1000);
    if (err) {
      const meta: Record<string, unknown> = { requestId, caller, status, code: err.code, error: err.message };
      if (fn) meta.function = fn.label;
      else meta.subject = msg.subject;
      if (reason) meta.reason = reason;
      if (status >= 500) logger.error('internal call failed', meta);
      else logger.warn('internal call failed', meta);
    } else if (fn) {
      logger.debug('internal call succeeded', { requestId, caller, function: fn.label });
    }
  };
  const reject = (err: unknown, reason?: string): void => {
    const e = err instanceof FnmeshError ? err : new FnmeshError('internal', 'internal error');
    if (!(err instanceof FnmeshError))
      logger.error('unexpected error in an internal call', { requestId, error: errorMessage(err) });
    if (msg.reply) {
      const reply = encodeErrorReply(e);
      msg.respond(reply.data, { headers: reply.headers });
    }
    done(e.status, e, reason);
  };

  try {
    const parsed = parseInternalSubject(msg.subject);
    if (
      !parsed ||
      !isNamespaceName(parsed.caller.namespace) ||
      !isServiceName(parsed.caller.service) ||
      !isNamespaceName(parsed.target.namespace) ||
      !isServiceName(parsed.target.service) ||
      !isFunctionName(parsed.target.function)
    ) {
      throw new FnmeshError(
        'bad_request',
        `internal call subject "${msg.subject}" is not fnmesh.gw.{callerNs}.{callerSvc}.{namespace}.{service}.{function}`,
      );
    }
    caller = `${parsed.caller.namespace}/${parsed.caller.service}`;
    const { target } = parsed;
    const found = deps.registry().lookup(target.namespace, target.service, target.function);
    if (found.kind === 'no-service')
      throw new FnmeshError('not_found', `service "${target.service}" is not in namespace "${target.namespace}"`);
    if (found.kind === 'no-function') {
      logger.debug('internal call to an undeclared function', {
        caller,
        function: `${target.namespace}/${target.service}.${target.function}`,
        declared: found.known,
      });
      throw unknownFunctionError(target.namespace, target.service, target.function);
    }
    fn = found.fn;
    const meta = decodeCallHeaders(msg.headers, fn.timeoutMs);
    requestId = pickRequestId(meta.requestId || undefined);
    const timeoutMs = computeTimeoutMs(meta.timeoutMs > 0 ? meta.timeoutMs : 1, fn.timeoutMs, deps.maxTimeoutMs);
    const deadline = started + timeoutMs;
    const traceparent = pickTraceparent(meta.traceparent);
    if (msg.data.length > deps.maxBodyBytes) throw internalParamsTooLarge(msg.data.length, deps.maxBodyBytes);
    // Before anything else reads the params: their depth, without recursion.
    const depth = scanDepth(msg.data, deps.maxParamsDepth);
    if (depth.kind === 'too-deep') throw paramsTooDeep(depth.maxDepth);
    // Claims are never taken from the sidecar: only a delegation token verified here counts.
    const claims = meta.delegation
      ? deps.delegation.verify(meta.delegation, { caller, parentId: meta.parentId, now: Date.now() })
      : undefined;
    let params: unknown = null;
    if (msg.data.length > 0) {
      if (!isUtf8(msg.data))
        throw new FnmeshError('bad_request', "the internal call's params are not valid UTF-8, which JSON must be");
      try {
        params = JSON.parse(decoder.decode(msg.data));
      } catch (err) {
        throw new FnmeshError(
          'bad_request',
          `the internal call's params are not valid JSON: ${(err as Error).message}`,
        );
      }
    }
    refuseAmbiguousParams(fn, msg.data, params);
    const identity = { requestId, traceparent, delegation: deps.delegation };
    const decision = await evaluateRule(
      fn,
      { ...(claims ? { auth: claims } : {}), params, caller },
      makeFuncCaller(calls, deps.registry, deadline, identity, msg.data.length > 0 ? msg.data : undefined),
    );
    if (!decision.allow) {
      metrics.forCall(fn, 'internal').denied();
      reject(denialError(fn, decision.reason, deps.exposeRuleReasons, claims === undefined), decision.reason);
      return;
    }
    const timeLeftMs = Math.floor(deadline - performance.now());
    const outcome = await callFunction(
      calls,
      fn,
      msg.data,
      {
        requestId,
        timeoutMs: timeLeftMs,
        traceparent,
        caller,
        ...(claims ? { claims, delegation: deps.delegation.forCall(fn, requestId, claims, timeLeftMs) } : {}),
      },
      deadline,
    );
    const reply = outcome.msg;
    if (reply === undefined) {
      // The gateway's own answer (no replica could take it, or the circuit is open): no reply to relay.
      reject(outcome.reply.ok ? new FnmeshError('internal', 'internal error') : outcome.reply.error);
      return;
    }
    let h = reply.headers;
    // The sidecar tells its function how many attempts the call took (fnmesh-attempts on the call API).
    if (outcome.attempts > 1) (h ??= natsHeaders()).set(NATS_HEADERS.attempt, String(outcome.attempts));
    if (msg.reply) msg.respond(reply.data, h ? { headers: h } : undefined);
    const status = Number(reply.headers?.get(NATS_HEADERS.status) || 200);
    done(status);
  } catch (err) {
    reject(err);
  }
}
