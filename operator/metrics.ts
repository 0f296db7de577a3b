/** The operator's Prometheus metrics: reconciles, their errors and durations, the work queue. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS } from '../common/metrics';
import type { WorkQueueMetrics } from './workqueue';

/** How one reconcile ended: ok, requeued after a delay, or the error's class and what was done about it. */
export type ReconcileOutcome = 'ok' | 'requeue' | 'retry' | 'terminal';

export class OperatorMetrics {
  readonly reconciles: Counter<'controller' | 'outcome'>;
  readonly reconcileErrors: Counter<'controller' | 'class'>;
  readonly reconcileDuration: Histogram<'controller'>;
  readonly queueDepth: Gauge<'controller'>;
  readonly queueAdds: Counter<'controller'>;
  readonly queueRetries: Counter<'controller'>;
  readonly queueWorkDuration: Histogram<'controller'>;
  readonly queueWait: Histogram<'controller'>;
  readonly leader: Gauge;
  readonly informerRestarts: Counter<'resource'>;

  constructor(readonly registry: Registry) {
    const registers = [registry];
    this.reconciles = new Counter({
      name: 'fnmesh_operator_reconciles_total',
      help: 'Reconciles by controller and outcome (ok, requeue, retry, terminal)',
      labelNames: ['controller', 'outcome'],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: 'fnmesh_operator_reconcile_errors_total',
      help: 'Failed reconciles by controller and error class',
      labelNames: ['controller', 'class'],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'fnmesh_operator_reconcile_duration_seconds',
      help: 'Time one reconcile took',
      labelNames: ['controller'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'fnmesh_operator_workqueue_depth',
      help: 'Keys waiting in the work queue',
      labelNames: ['controller'],
      registers,
    });
    this.queueAdds = new Counter({
      name: 'fnmesh_operator_workqueue_adds_total',
      help: 'Keys added to the work queue',
      labelNames: ['controller'],
      registers,
    });
    this.queueRetries = new Counter({
      name: 'fnmesh_operator_workqueue_retries_total',
      help: 'Keys re-added after a back-off',
      labelNames: ['controller'],
      registers,
    });
    this.queueWorkDuration = new Histogram({
      name: 'fnmesh_operator_workqueue_work_duration_seconds',
      help: 'Time from taking a key to done',
      labelNames: ['controller'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueWait = new Histogram({
      name: 'fnmesh_operator_workqueue_queue_duration_seconds',
      help: 'Time a key waited in the queue',
      labelNames: ['controller'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.leader = new Gauge({
      name: 'fnmesh_operator_leader',
      help: '1 while this replica holds the leader lease',
      registers,
    });
    this.informerRestarts = new Counter({
      name: 'fnmesh_operator_informer_restarts_total',
      help: 'Informer restarts after an error, by resource',
      labelNames: ['resource'],
      registers,
    });
  }

  /** The hooks a controller's work queue reports to. */
  queueHooks(controller: string): WorkQueueMetrics {
    const depth = this.queueDepth.labels(controller);
    const adds = this.queueAdds.labels(controller);
    const retries = this.queueRetries.labels(controller);
    const work = this.queueWorkDuration.labels(controller);
    const wait = this.queueWait.labels(controller);
    return {
      depth: (n) => depth.set(n),
      add: () => adds.inc(),
      retry: () => retries.inc(),
      workDuration: (s) => work.observe(s),
      queueDuration: (s) => wait.observe(s),
    };
  }
}
