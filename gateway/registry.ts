/**
 * The compiled routing table. `buildRegistry` is pure: FunctionServices in, a table of compiled rules and
 * deadlines out, plus the errors of services whose rules did not compile (their previous good version is
 * kept, so one bad edit never opens or closes a running service by accident).
 */
import {
  DEFAULT_FUNCTION,
  FnmeshError,
  callSubject,
  errorMessage,
  resolveCircuitBreaker,
  resolveRetryPolicy,
  serviceKey,
  type FunctionService,
  type RetryPolicy,
  type Rule,
} from '../common';
import type { BreakerRef, BreakerSnapshot, CircuitBreakers } from './circuit-breaker';
import { DENY_ALL, compileRule, type CompiledRule } from './rules';

// The annotation a rule source sets so that errors name the file a service came from.
import { SOURCE_FILE_ANNOTATION } from '../common/manifest-source';

/** Where the rule of a function came from, for listings and logs. */
export type RuleOrigin = 'function' | 'service-default' | 'gateway-default';

export interface ResolvedFunction {
  namespace: string;
  service: string;
  function: string;
  /** `ns/svc.fn`, used in messages and logs. */
  label: string;
  subject: string;
  rule: CompiledRule;
  ruleOrigin: RuleOrigin;
  timeoutMs: number;
  /** The function's retry policy (service `retry`, then its own `retry` and `idempotent`). */
  retry: RetryPolicy;
  /** Its circuit breaker's name and policy (the state lives in CircuitBreakers, across rebuilds). */
  breaker: BreakerRef;
}

/** What undeclared functions of a service with a `default` function are routed with: the default's. */
export type Fallback = Pick<ResolvedFunction, 'rule' | 'ruleOrigin' | 'timeoutMs' | 'retry' | 'breaker'>;

export interface ServiceEntry {
  namespace: string;
  name: string;
  /** The manifest this entry was compiled from (kept when a later version fails). */
  source: FunctionService;
  functions: Map<string, ResolvedFunction>;
  /** Undeclared functions are routed with these when the service declares a `default` function. */
  fallback?: Fallback;
}

export type Lookup =
  { kind: 'ok'; fn: ResolvedFunction } | { kind: 'no-service' } | { kind: 'no-function'; known: string[] };

/**
 * The 404 of a function the service does not declare. It names what was asked for and the fix, never the
 * service's other functions: callers may be anonymous, and the names of internal functions are not theirs
 * to learn (the gateway's debug log and `fnmesh validate` list them).
 */
export function unknownFunctionError(namespace: string, service: string, fn: string): FnmeshError {
  return new FnmeshError(
    'not_found',
    `service ${namespace}/${service} has no function "${fn}": check the function name, or declare "${fn}" (or a "default" function) in the service's manifest under spec.functions`,
  );
}

export interface RegistryError {
  /** `namespace/name` of the service. */
  service: string;
  message: string;
}

export class Registry {
  readonly services: ReadonlyMap<string, ServiceEntry>;
  private readonly byNamespace = new Map<string, Map<string, ServiceEntry>>();

  constructor(services: Map<string, ServiceEntry>) {
    this.services = services;
    for (const entry of services.values()) {
      let ns = this.byNamespace.get(entry.namespace);
      if (!ns) this.byNamespace.set(entry.namespace, (ns = new Map()));
      ns.set(entry.name, entry);
    }
  }

  service(namespace: string, service: string): ServiceEntry | undefined {
    return this.byNamespace.get(namespace)?.get(service);
  }

  lookup(namespace: string, service: string, fn: string): Lookup {
    const entry = this.byNamespace.get(namespace)?.get(service);
    if (!entry) return { kind: 'no-service' };
    const declared = entry.functions.get(fn);
    if (declared) return { kind: 'ok', fn: declared };
    const fb = entry.fallback;
    if (!fb) return { kind: 'no-function', known: [...entry.functions.keys()].filter((n) => n !== DEFAULT_FUNCTION) };
    return {
      kind: 'ok',
      fn: {
        namespace,
        service,
        function: fn,
        label: `${namespace}/${service}.${fn}`,
        subject: callSubject(namespace, service, fn),
        rule: fb.rule,
        ruleOrigin: fb.ruleOrigin,
        timeoutMs: fb.timeoutMs,
        retry: fb.retry,
        breaker: fb.breaker,
      },
    };
  }
}

export const EMPTY_REGISTRY = new Registry(new Map());

function sourceOf(fs: FunctionService): string {
  const file = fs.metadata.annotations?.[SOURCE_FILE_ANNOTATION];
  return file ? `${file} (${serviceKey(fs)})` : `FunctionService ${serviceKey(fs)}`;
}

/** Compiles one service; throws the compiler's ConfigError (which names the field). */
export function compileService(fs: FunctionService, gatewayDefault: (namespace: string) => CompiledRule): ServiceEntry {
  const namespace = fs.metadata.namespace;
  const name = fs.metadata.name;
  const where = sourceOf(fs);
  const compile = (rule: Rule, field: string): CompiledRule => compileRule(rule, `${where}: ${field}`, { namespace });

  const specs = fs.spec.functions;
  const defaultSpec = specs.find((f) => f.name === DEFAULT_FUNCTION);
  const serviceDefault = defaultSpec?.rule
    ? compile(defaultSpec.rule, `spec.functions[${DEFAULT_FUNCTION}].rule`)
    : undefined;
  const inherited = serviceDefault
    ? { rule: serviceDefault, ruleOrigin: 'service-default' as const }
    : { rule: gatewayDefault(namespace), ruleOrigin: 'gateway-default' as const };

  const breakerPolicy = resolveCircuitBreaker(fs.spec.circuitBreaker);
  const breakerOf = (fn: string): BreakerRef => ({
    key: `${namespace}/${name}.${fn}`,
    namespace,
    service: name,
    function: fn,
    policy: breakerPolicy,
  });
  const functions = new Map<string, ResolvedFunction>();
  specs.forEach((spec) => {
    const own =
      spec.name === DEFAULT_FUNCTION
        ? serviceDefault
        : spec.rule
          ? compile(spec.rule, `spec.functions[${spec.name}].rule`)
          : undefined;
    const chosen = own
      ? { rule: own, ruleOrigin: (spec.name === DEFAULT_FUNCTION ? 'service-default' : 'function') as RuleOrigin }
      : inherited;
    functions.set(spec.name, {
      namespace,
      service: name,
      function: spec.name,
      label: `${namespace}/${name}.${spec.name}`,
      subject: callSubject(namespace, name, spec.name),
      rule: chosen.rule,
      ruleOrigin: chosen.ruleOrigin,
      timeoutMs: spec.timeoutMs ?? fs.spec.timeoutMs,
      retry: resolveRetryPolicy(fs.spec, spec),
      breaker: breakerOf(spec.name),
    });
  });

  const entry: ServiceEntry = { namespace, name, source: fs, functions };
  if (defaultSpec) {
    const declaredDefault = functions.get(DEFAULT_FUNCTION)!;
    entry.fallback = {
      ...inherited,
      timeoutMs: declaredDefault.timeoutMs,
      retry: declaredDefault.retry,
      breaker: declaredDefault.breaker,
    };
  }
  return entry;
}

/** Compiles the gateway-wide default rule for one namespace (func rules resolve relative to it). */
export function gatewayDefaultCompiler(defaultRule: Rule | undefined): (namespace: string) => CompiledRule {
  if (!defaultRule) return () => DENY_ALL;
  const cache = new Map<string, CompiledRule>();
  return (namespace) => {
    let compiled = cache.get(namespace);
    if (!compiled) {
      compiled = compileRule(defaultRule, 'FNMESH_DEFAULT_RULE', { namespace });
      cache.set(namespace, compiled);
    }
    return compiled;
  };
}

/**
 * Builds the routing table from the whole current set of services. A service that fails to compile is
 * reported in `errors`; if `previous` had a good version of it (same namespace/name), that version stays.
 */
export function buildRegistry(
  services: readonly FunctionService[],
  defaultRule: Rule | undefined,
  previous: Registry = EMPTY_REGISTRY,
): { registry: Registry; errors: RegistryError[] } {
  const gatewayDefault = gatewayDefaultCompiler(defaultRule);
  const entries = new Map<string, ServiceEntry>();
  const errors: RegistryError[] = [];
  for (const fs of services) {
    const key = serviceKey(fs);
    if (entries.has(key)) {
      errors.push({
        service: key,
        message: `${sourceOf(fs)}: the service ${key} is defined twice; the first definition is used`,
      });
      continue;
    }
    try {
      entries.set(key, compileService(fs, gatewayDefault));
    } catch (err) {
      const old = previous.services.get(key);
      const kept = old ? '; its previous version stays in use' : '; the service is not routed until this is fixed';
      errors.push({ service: key, message: `${errorMessage(err)}${kept}` });
      if (old) {
        try {
          // Recompile the old source against the current default rule; fall back to the old entry.
          entries.set(key, compileService(old.source, gatewayDefault));
        } catch {
          entries.set(key, old);
        }
      }
    }
  }
  return { registry: new Registry(entries), errors };
}

/** How the listing describes a function's rule: its kind, where it came from, and the rule as written. */
export interface RuleDescription {
  type: Rule['rule'];
  from: RuleOrigin;
  definition: Rule;
}

export function describeRule(rule: CompiledRule, from: RuleOrigin): RuleDescription {
  return { type: rule.source.rule, from, definition: rule.source };
}

/** The keys of every breaker the table names (CircuitBreakers keeps only these across a rebuild). */
export function breakerKeys(registry: Registry): Set<string> {
  const keys = new Set<string>();
  for (const s of registry.services.values()) for (const f of s.functions.values()) keys.add(f.breaker.key);
  return keys;
}

/** How the listing describes a circuit breaker: its policy and its state now (`openUntil` as an ISO time). */
export interface BreakerDescription {
  consecutiveFailures: number;
  openMs: number;
  maxOpenMs: number;
  state: BreakerSnapshot['state'];
  failuresInARow: number;
  openUntil?: string;
}

function describeBreaker(ref: BreakerRef, breakers: CircuitBreakers | undefined): BreakerDescription {
  const snap = breakers?.snapshot(ref) ?? { state: 'closed', failuresInARow: 0 };
  return {
    ...ref.policy,
    state: snap.state,
    failuresInARow: snap.failuresInARow,
    ...(snap.openUntil !== undefined ? { openUntil: new Date(snap.openUntil).toISOString() } : {}),
  };
}

/**
 * The listing of `GET /v1/services`, rules with their definitions, retry policies and circuit breakers:
 * served on the ops listener and to FNMESH_ADMIN_TOKEN only, never to anonymous callers of the call port.
 */
export function describeRegistry(registry: Registry, breakers?: CircuitBreakers) {
  return [...registry.services.values()]
    .sort((a, b) => (a.namespace + '/' + a.name).localeCompare(b.namespace + '/' + b.name))
    .map((s) => ({
      namespace: s.namespace,
      name: s.name,
      functions: [...s.functions.values()]
        .filter((f) => f.function !== DEFAULT_FUNCTION)
        .map((f) => ({
          name: f.function,
          timeoutMs: f.timeoutMs,
          rule: describeRule(f.rule, f.ruleOrigin),
          retry: f.retry,
          circuitBreaker: describeBreaker(f.breaker, breakers),
        })),
      acceptsOtherFunctions: s.fallback !== undefined,
      ...(s.fallback
        ? {
            otherFunctions: {
              timeoutMs: s.fallback.timeoutMs,
              retry: s.fallback.retry,
              circuitBreaker: describeBreaker(s.fallback.breaker, breakers),
            },
          }
        : {}),
    }));
}
