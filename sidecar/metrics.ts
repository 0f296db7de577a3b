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
  /** Per function label: its duration child and its call counter child per outcome. */
  private readonly children = new Map<
    string,
    { label: string; duration: { observe(v: number): void }; outcomes: Map<string, { inc(): void }> }
  >();

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
    this.inFlight = new Gauge({
      name: 'fnmesh_sidecar_inflight_calls',
      help: 'Calls running on this replica now',
      registers,
    });
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
    this.natsConnected = new Gauge({
      name: 'fnmesh_sidecar_nats_connected',
      help: '1 when connected to NATS',
      registers,
    });
    this.outboundCalls = new Counter({
      name: 'fnmesh_sidecar_outbound_calls_total',
      help: 'Calls made by the function through the localhost call API, by outcome',
      labelNames: ['outcome'],
      registers,
    });
  }

  call(fn: string, outcome: string, seconds: number): void {
    let f = this.children.get(fn);
    if (f === undefined) {
      const label = this.children.size < MAX_FUNCTION_LABELS ? fn : '_other';
      f = this.children.get(label);
      if (f === undefined) {
        f = { label, duration: this.duration.labels(label), outcomes: new Map() };
        this.children.set(label, f);
      }
    }
    let c = f.outcomes.get(outcome);
    if (c === undefined) {
      c = this.calls.labels(f.label, outcome);
      f.outcomes.set(outcome, c);
    }
    c.inc();
    f.duration.observe(seconds);
  }
}
