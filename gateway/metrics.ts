/** The gateway's Prometheus metrics. Labels come only from routed (known) functions, never from raw paths. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS, createRegistry } from '../common';
import type { BreakerState, CircuitBreakers } from './circuit-breaker';
import type { RetryReason } from './retry-decision';

export interface GatewayMetrics {
  registry: Registry;
  requests: Counter<'namespace' | 'service' | 'function' | 'status' | 'kind'>;
  latency: Histogram<'namespace' | 'service' | 'function' | 'kind'>;
  denials: Counter<'namespace' | 'service' | 'function' | 'kind'>;
  inFlight: Gauge<'kind'>;
  ruleErrors: Counter<never>;
  /** The front door (front-door.ts), by listener (`call` or `ops`). */
  openConnections: Gauge<'listener'>;
  connectionsRefused: Counter<'listener'>;
  requestTimeouts: Counter<'listener' | 'phase'>;
  headersTooLarge: Counter<'listener'>;
  malformedRequests: Counter<'listener'>;
  /** Retries (attempts after the first) by why the attempt before failed: a not-executed reason or how it may have run. */
  retries: Counter<'namespace' | 'service' | 'function' | 'reason'>;
  /** Calls answered 503 at once by an open circuit breaker. */
  breakerRefusals: Counter<'namespace' | 'service' | 'function'>;
  breakerOpenings: Counter<'namespace' | 'service' | 'function'>;
  breakerState: Gauge<'namespace' | 'service' | 'function'>;
  /** Counts a retry of a call to `fn` (labels of its breaker: the functions a `default` routes count as it). */
  retried(fn: FunctionLabels, reason: RetryReason): void;
  /**
   * The label children of one function's calls, bound once and cached (the hot path then never validates
   * labels or builds label keys). `fn` undefined → the '-' labels of calls that matched no function.
   */
  forCall(fn: FunctionLabels | undefined, kind: CallKind): CallMetrics;
  /** The in-flight gauge child of one kind. */
  inFlightOf(kind: CallKind): { inc(): void; dec(): void };
}

export type CallKind = 'http' | 'internal';

export interface FunctionLabels {
  namespace: string;
  service: string;
  function: string;
  /** `ns/svc.fn` when the caller has it at hand (a ResolvedFunction does). */
  label?: string;
}

export interface CallMetrics {
  /** Counts an answered call and observes its duration. */
  answered(status: number, seconds: number): void;
  denied(): void;
}

/** Most functions whose label children are cached per kind; calls to more are counted uncached. */
const MAX_CACHED_FUNCTIONS = 2000;

/** The value of fnmesh_gateway_circuit_state for each state. */
export const BREAKER_STATE_VALUES: Record<BreakerState, number> = { closed: 0, open: 1, 'half-open': 2 };

/** `breakers`: the circuit breakers whose states the gauge reports at each scrape. */
export function createGatewayMetrics(
  registry: Registry = createRegistry('gateway'),
  breakers?: CircuitBreakers,
): GatewayMetrics {
  const metrics = {
    registry,
    requests: new Counter({
      name: 'fnmesh_gateway_requests_total',
      help: 'Calls answered by the gateway, by function and status (kind: http or internal)',
      labelNames: ['namespace', 'service', 'function', 'status', 'kind'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'fnmesh_gateway_request_duration_seconds',
      help: 'Time from receiving a call to answering it',
      labelNames: ['namespace', 'service', 'function', 'kind'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    denials: new Counter({
      name: 'fnmesh_gateway_rule_denials_total',
      help: 'Calls denied by a rule',
      labelNames: ['namespace', 'service', 'function', 'kind'],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'fnmesh_gateway_in_flight_requests',
      help: 'Calls being handled right now',
      labelNames: ['kind'],
      registers: [registry],
    }),
    ruleErrors: new Counter({
      name: 'fnmesh_gateway_rule_source_errors_total',
      help: 'FunctionServices whose rules did not compile (their previous version was kept)',
      registers: [registry],
    }),
    openConnections: new Gauge({
      name: 'fnmesh_gateway_open_connections',
      help: 'HTTP connections open now, by listener (call or ops)',
      labelNames: ['listener'],
      registers: [registry],
    }),
    connectionsRefused: new Counter({
      name: 'fnmesh_gateway_connections_refused_total',
      help: 'Connections closed at once because FNMESH_MAX_CONNECTIONS were open',
      labelNames: ['listener'],
      registers: [registry],
    }),
    requestTimeouts: new Counter({
      name: 'fnmesh_gateway_request_timeouts_total',
      help: 'Requests answered 408 because their head (FNMESH_HEADERS_TIMEOUT_MS) or the whole request (FNMESH_RECEIVE_TIMEOUT_MS) did not arrive in time',
      labelNames: ['listener', 'phase'],
      registers: [registry],
    }),
    headersTooLarge: new Counter({
      name: 'fnmesh_gateway_headers_too_large_total',
      help: 'Requests answered 431 because their head was over FNMESH_MAX_HEADER_BYTES',
      labelNames: ['listener'],
      registers: [registry],
    }),
    malformedRequests: new Counter({
      name: 'fnmesh_gateway_malformed_requests_total',
      help: 'Requests answered 400 (or 413 for chunk extensions) because they were not valid HTTP/1.1',
      labelNames: ['listener'],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'fnmesh_gateway_retries_total',
      help: 'Attempts of calls after their first, by why the attempt before failed (reason: function-down, unhealthy, overloaded, draining, ejected, no-responders: not executed; reset, timeout, status: may have run; disconnected: not sent, the gateway had no NATS connection)',
      labelNames: ['namespace', 'service', 'function', 'reason'],
      registers: [registry],
    }),
    breakerRefusals: new Counter({
      name: 'fnmesh_gateway_circuit_refusals_total',
      help: "Calls answered 503 at once because the function's circuit breaker was open (or half-open with its probe running)",
      labelNames: ['namespace', 'service', 'function'],
      registers: [registry],
    }),
    breakerOpenings: new Counter({
      name: 'fnmesh_gateway_circuit_openings_total',
      help: "Times a function's circuit breaker opened (calls in a row that no replica could take, or a failed probe)",
      labelNames: ['namespace', 'service', 'function'],
      registers: [registry],
    }),
    breakerState: new Gauge({
      name: 'fnmesh_gateway_circuit_state',
      help: "State of a function's circuit breaker: 0 closed, 1 open, 2 half-open (functions without a breaker yet are closed and not listed)",
      labelNames: ['namespace', 'service', 'function'],
      registers: [registry],
      collect() {
        if (!breakers) return;
        this.reset();
        for (const { ref, breaker } of breakers.all())
          this.labels(ref.namespace, ref.service, ref.function).set(BREAKER_STATE_VALUES[breaker.state]);
      },
    }),
  };
  const bind = (fn: FunctionLabels | undefined, kind: CallKind): CallMetrics => {
    const namespace = fn ? fn.namespace : '-';
    const service = fn ? fn.service : '-';
    const func = fn ? fn.function : '-';
    const latency = metrics.latency.labels(namespace, service, func, kind);
    const byStatus = new Map<number, { inc(): void }>();
    let denials: { inc(): void } | undefined;
    return {
      answered(status, seconds) {
        let c = byStatus.get(status);
        if (c === undefined) {
          c = metrics.requests.labels({ namespace, service, function: func, status: String(status), kind });
          byStatus.set(status, c);
        }
        c.inc();
        latency.observe(seconds);
      },
      denied() {
        (denials ??= metrics.denials.labels(namespace, service, func, kind)).inc();
      },
    };
  };
  const caches: Record<CallKind, Map<string, CallMetrics>> = { http: new Map(), internal: new Map() };
  const unmatched: Partial<Record<CallKind, CallMetrics>> = {};
  const inFlight = { http: metrics.inFlight.labels('http'), internal: metrics.inFlight.labels('internal') };
  return {
    ...metrics,
    forCall(fn, kind) {
      if (fn === undefined) return (unmatched[kind] ??= bind(undefined, kind));
      const cache = caches[kind];
      const key = fn.label ?? `${fn.namespace}/${fn.service}.${fn.function}`;
      let m = cache.get(key);
      if (m === undefined) {
        m = bind(fn, kind);
        if (cache.size < MAX_CACHED_FUNCTIONS) cache.set(key, m);
      }
      return m;
    },
    inFlightOf(kind) {
      return inFlight[kind];
    },
    retried(fn, reason) {
      metrics.retries.labels(fn.namespace, fn.service, fn.function, reason).inc();
    },
  };
}
