/** The gateway's Prometheus metrics. Labels come only from routed (known) functions, never from raw paths. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS, createRegistry } from '../common';

export interface GatewayMetrics {
  registry: Registry;
  requests: Counter<'namespace' | 'service' | 'function' | 'status' | 'kind'>;
  latency: Histogram<'namespace' | 'service' | 'function' | 'kind'>;
  denials: Counter<'namespace' | 'service' | 'function' | 'kind'>;
  inFlight: Gauge<'kind'>;
  ruleErrors: Counter<never>;
}

export function createGatewayMetrics(registry: Registry = createRegistry('gateway')): GatewayMetrics {
  return {
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
  };
}
