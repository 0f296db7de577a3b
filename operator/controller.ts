/**
 * Runs N workers that take keys from a work queue and reconcile them, in the manner of controller-runtime:
 * a reconcile gets a key (`namespace/name`) and reads everything it needs itself; success forgets the
 * key's back-off (and may ask to be requeued after a delay); a failure is classified: terminal errors are
 * reported and not retried, the rest are retried with the policy of their class. Every log line of one
 * reconcile carries its reconcile id.
 */
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../common/errors';
import type { Logger } from '../common/logger';
import { classifyApiError, retryPolicy, type ApiErrorClass, type RetryPolicy } from './api-errors';
import type { OperatorMetrics, ReconcileOutcome } from './metrics';
import type { WorkQueue } from './workqueue';

export interface ReconcileResult {
  /** Reconcile this key again after this many milliseconds (for example to re-check a rollout). */
  requeueAfterMs?: number;
}

export type Reconciler = (key: string, log: Logger) => Promise<ReconcileResult | void>;

/** Thrown by a reconciler for a failure that retrying cannot fix (it has already reported it). */
export class TerminalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TerminalError';
  }
}

export interface ControllerOptions {
  /** Names the controller in logs and metrics. */
  name: string;
  queue: WorkQueue;
  reconcile: Reconciler;
  /** Keys reconciled at once (distinct keys only: the queue never hands out one key twice). */
  workers: number;
  logger: Logger;
  metrics?: OperatorMetrics;
  /** Id of one reconcile (default: 6 random hex digits for this controller, then a hex counter). */
  newReconcileId?: () => string;
}

/** What a failed reconcile leads to: the error's class, and the retry policy (terminal: none). */
export function failurePolicy(err: unknown): {
  class: ApiErrorClass | 'terminal';
  message: string;
  policy: RetryPolicy;
} {
  if (err instanceof TerminalError) return { class: 'terminal', message: err.message, policy: { kind: 'terminal' } };
  const c = classifyApiError(err);
  return { class: c.class, message: c.message, policy: retryPolicy(c) };
}

export class Controller {
  private readonly options: ControllerOptions;
  private readonly newId: () => string;
  private running: Promise<void>[] = [];

  constructor(options: ControllerOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1)
      throw new Error(`workers must be a whole number of at least 1, not ${options.workers}`);
    this.options = options;
    // A random prefix per controller and a counter: unique, and no random bytes per reconcile.
    const prefix = randomBytes(3).toString('hex');
    let n = 0;
    this.newId = options.newReconcileId ?? (() => `${prefix}${(n++).toString(16).padStart(6, '0')}`);
  }

  /** Starts the workers; they run until `stop()`. */
  start(): void {
    if (this.running.length > 0) return;
    for (let i = 0; i < this.options.workers; i++) this.running.push(this.worker());
  }

  /** Shuts the queue down and waits for reconciles in progress to finish. */
  async stop(): Promise<void> {
    this.options.queue.shutdown();
    await Promise.all(this.running);
    this.running = [];
  }

  private async worker(): Promise<void> {
    const { queue } = this.options;
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        await this.reconcileOne(key);
      } finally {
        queue.done(key);
      }
    }
  }

  private async reconcileOne(key: string): Promise<void> {
    const { queue, name, metrics } = this.options;
    const log = this.options.logger.child({ controller: name, key, reconcileId: this.newId() });
    const started = performance.now();
    let outcome: ReconcileOutcome = 'ok';
    try {
      const result = await this.options.reconcile(key, log);
      queue.forget(key);
      if (result && result.requeueAfterMs !== undefined && result.requeueAfterMs >= 0) {
        outcome = 'requeue';
        queue.addAfter(key, result.requeueAfterMs);
      }
      log.debug('reconciled', {
        durationMs: Math.round(performance.now() - started),
        requeueAfterMs: result?.requeueAfterMs,
      });
    } catch (err) {
      const failure = failurePolicy(err);
      metrics?.reconcileErrors.labels(name, failure.class).inc();
      const meta = {
        errorClass: failure.class,
        error: failure.message || errorMessage(err),
        retries: queue.numRequeues(key),
      };
      switch (failure.policy.kind) {
        case 'terminal':
          outcome = 'terminal';
          queue.forget(key);
          log.error('reconcile failed; not retrying until the object changes', meta);
          break;
        case 'retry-after':
          outcome = 'retry';
          queue.addRateLimited(key, failure.policy.ms);
          log.warn('reconcile failed; retrying when the server asked', { ...meta, retryAfterMs: failure.policy.ms });
          break;
        case 'retry-now':
        case 'backoff':
          outcome = 'retry';
          // A conflict goes back at the queue's first, millisecond back-off step; only repeated
          // failures wait longer, so a hot loop cannot form.
          log[failure.policy.kind === 'retry-now' ? 'info' : 'warn']('reconcile failed; retrying', {
            ...meta,
            retryInMs: queue.nextDelayMs(key),
          });
          queue.addRateLimited(key);
          break;
      }
    } finally {
      metrics?.reconciles.labels(name, outcome).inc();
      metrics?.reconcileDuration.labels(name).observe((performance.now() - started) / 1000);
    }
  }
}
