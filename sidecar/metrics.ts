/** The sidecar's Prometheus metrics, with label children cached so the hot path does no lookups. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS, NOT_EXECUTED_REASONS, type NotExecutedReason } from './common';

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
  readonly queued: Gauge;
  readonly takingCalls: Gauge;
  readonly leaves: Counter<'reason'>;
  readonly ejections: Counter;
  private readonly notExecutedTotal: Counter<'reason'>;
  private readonly notExecutedChildren = new Map<string, { inc(): void }>();
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
      help: 'Calls refused because every concurrency slot and the whole queue were taken',
      registers,
    });
    this.queued = new Gauge({
      name: 'fnmesh_sidecar_queued_calls',
      help: 'Calls waiting for a concurrency slot now',
      registers,
    });
    this.takingCalls = new Gauge({
      name: 'fnmesh_sidecar_taking_calls',
      help: "1 while the replica is in its service's queue group (takes calls)",
      registers,
    });
    this.leaves = new Counter({
      name: 'fnmesh_sidecar_queue_group_leaves_total',
      help: 'Times the replica left its queue group, by reason (function-down, unhealthy, overloaded, ejected, draining)',
      labelNames: ['reason'],
      registers,
    });
    this.ejections = new Counter({
      name: 'fnmesh_sidecar_ejections_total',
      help: 'Times outlier detection ejected this replica',
      registers,
    });
    this.notExecutedTotal = new Counter({
      name: 'fnmesh_sidecar_not_executed_total',
      help: 'Calls answered "not executed" (never run here; the gateway may send them to another replica), by reason',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of NOT_EXECUTED_REASONS) {
      this.notExecutedChildren.set(reason, this.notExecutedTotal.labels(reason));
      this.leaves.labels(reason); // every reason shows, at 0
    }
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

  notExecuted(reason: NotExecutedReason): void {
    this.notExecutedChildren.get(reason)?.inc();
    if (reason === 'overloaded') this.overloaded.inc();
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
