/** The sidecar's Prometheus metrics, with label children cached so the hot path does no lookups. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS } from './common';

/** Most distinct function labels kept; more (a caller inventing names) are counted as "_other". */
const MAX_FUNCTION_LABELS = 500;

export class SidecarMetrics {
  readonly calls: Counter<'function' | 'outcome'>;
  readonly duration: Histogram<'function'>;
  readonly inFlight: Gauge;
  readonly overloaded: Counter;
  readonly functionHealthy: Gauge;
  readonly natsConnected: Gauge;
  readonly outboundCalls: Counter<'outcome'>;
  private readonly callChildren = new Map<string, { inc(): void }>();
  private readonly durationChildren = new Map<string, { observe(v: number): void }>();

  constructor(readonly registry: Registry) {
    const registers = [registry];
    this.calls = new Counter({
      name: 'fnmesh_sidecar_calls_total',
      help: 'Calls handled by this replica, by function and outcome (ok or an error code)',
      labelNames: ['function', 'outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'fnmesh_sidecar_call_duration_seconds',
      help: 'Time from receiving a call to replying, by function',
      labelNames: ['function'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.inFlight = new Gauge({ name: 'fnmesh_sidecar_inflight_calls', help: 'Calls running on this replica now', registers });
    this.overloaded = new Counter({
      name: 'fnmesh_sidecar_overloaded_total',
      help: 'Calls refused at once because the concurrency limit was reached',
      registers,
    });
    this.functionHealthy = new Gauge({
      name: 'fnmesh_sidecar_function_healthy',
      help: '1 when the function answers its health check with a status below 500',
      registers,
    });
    this.natsConnected = new Gauge({ name: 'fnmesh_sidecar_nats_connected', help: '1 when connected to NATS', registers });
    this.outboundCalls = new Counter({
      name: 'fnmesh_sidecar_outbound_calls_total',
      help: 'Calls made by the function through the localhost call API, by outcome',
      labelNames: ['outcome'],
      registers,
    });
  }

  private functionLabel(fn: string): string {
    if (this.durationChildren.has(fn) || this.durationChildren.size < MAX_FUNCTION_LABELS) return fn;
    return '_other';
  }

  call(fn: string, outcome: string, seconds: number): void {
    const label = this.functionLabel(fn);
    const key = `${label}\u0000${outcome}`;
    let c = this.callChildren.get(key);
    if (!c) {
      c = this.calls.labels(label, outcome);
      this.callChildren.set(key, c);
    }
    c.inc();
    let h = this.durationChildren.get(label);
    if (!h) {
      h = this.duration.labels(label);
      this.durationChildren.set(label, h);
    }
    h.observe(seconds);
  }
}
