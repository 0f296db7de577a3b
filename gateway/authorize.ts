/**
 * Rule evaluation shared by HTTP calls and internal calls, and the FuncCaller that `func` rules use: a NATS
 * request to the rule's function inside the same deadline as the call it guards.
 */
import { DEFAULT_RETRY, FnmeshError, callSubject, isFunctionName, isNamespaceName, isServiceName } from '../common';
import type { DelegationTokens } from './delegation';
import type { Registry, ResolvedFunction } from './registry';
import { callFunction, type Callee, type ResilientCalls } from './resilient-call';
import type { Decision, FuncCaller, RuleInput } from './rules';

export interface CallIdentity {
  requestId: string;
  traceparent: string;
  /** Issues the delegation token a rule function gets with verified claims, to call on the user's behalf. */
  delegation: DelegationTokens;
}

const decoder = new TextDecoder();

/** The rule's target as the routing table knows it (its retry policy and breaker), else with the defaults. */
function ruleTarget(registry: Registry, target: { namespace: string; service: string; function: string }): Callee {
  const found = registry.lookup(target.namespace, target.service, target.function);
  if (found.kind === 'ok') return found.fn;
  return {
    ...target,
    label: `${target.namespace}/${target.service}.${target.function}`,
    subject: callSubject(target.namespace, target.service, target.function),
    retry: DEFAULT_RETRY,
  };
}

/**
 * A FuncCaller bound to one call's deadline (performance.now() based) and identity; the rule's function gets
 * `paramsBytes`, the call's params as the caller sent them, when given. Its calls retry as any call does.
 */
export function makeFuncCaller(
  calls: ResilientCalls,
  registry: () => Registry,
  deadline: number,
  identity: CallIdentity,
  paramsBytes?: Uint8Array,
): FuncCaller {
  return async (target, args) => {
    if (!isNamespaceName(target.namespace) || !isServiceName(target.service) || !isFunctionName(target.function)) {
      throw new FnmeshError(
        'internal',
        `the func rule names an invalid target ${target.namespace}/${target.service}.${target.function}`,
      );
    }
    const timeoutMs = Math.floor(deadline - performance.now());
    const payload = paramsBytes ?? Buffer.from(JSON.stringify(args.params === undefined ? null : args.params));
    const meta = {
      requestId: identity.requestId,
      timeoutMs,
      traceparent: identity.traceparent,
      ...(args.auth
        ? {
            claims: args.auth,
            delegation: identity.delegation.forCall(target, identity.requestId, args.auth, timeoutMs),
          }
        : {}),
      ...(args.caller ? { caller: args.caller } : {}),
    };
    const outcome = await callFunction(calls, ruleTarget(registry(), target), payload, meta, deadline);
    if (!outcome.reply.ok) throw outcome.reply.error;
    const body = outcome.reply.body;
    if (body.length === 0) return null;
    try {
      return JSON.parse(decoder.decode(body)) as unknown;
    } catch {
      throw new FnmeshError(
        'function_failed',
        `the rule function ${target.namespace}/${target.service}.${target.function} did not answer JSON`,
      );
    }
  };
}

/** Evaluates the function's rule; resolves with the decision, rejects only with a FnmeshError. */
export async function evaluateRule(fn: ResolvedFunction, input: RuleInput, callFunc: FuncCaller): Promise<Decision> {
  try {
    return await fn.rule.evaluate(input, callFunc);
  } catch (err) {
    if (err instanceof FnmeshError) throw err;
    throw new FnmeshError('internal', `the rule of ${fn.label} failed to evaluate`);
  }
}

/**
 * The error for a denied call: 401 when the call carried no end-user token and the rule reads the caller's
 * identity (signing in may change the answer), else 403.
 */
export function denialError(
  fn: ResolvedFunction,
  reason: string,
  exposeReasons: boolean,
  anonymous: boolean,
): FnmeshError {
  if (anonymous && fn.rule.needsAuth) {
    const base = `the rule of ${fn.namespace}/${fn.service}.${fn.function} needs a signed-in caller: send Authorization: Bearer <JWT>`;
    return new FnmeshError('unauthenticated', exposeReasons && reason ? `${base} (${reason})` : base);
  }
  return new FnmeshError('forbidden', denialMessage(fn, reason, exposeReasons));
}

export function denialMessage(fn: ResolvedFunction, reason: string, exposeReasons: boolean): string {
  const base = `the rule of ${fn.namespace}/${fn.service}.${fn.function} denies this call`;
  return exposeReasons && reason ? `${base}: ${reason}` : base;
}
