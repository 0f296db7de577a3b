/**
 * Watches on single Deployments the operator does not own and its informer does not see (the informer
 * lists only Deployments with the operator's label), so that a FunctionService blocked by one
 * (ownership.ts) is reconciled again as soon as that Deployment changes or is deleted, instead of polling.
 *
 * One watch per blocked FunctionService (`fieldSelector=metadata.name=<name>` in its namespace), from the
 * resourceVersion of the read that found the Deployment, so no change in between is missed. Any event
 * queues the key; the reconcile decides (and releases the watch once the Deployment is gone or owned).
 * When the watch ends (the server's timeout, an error, an expired resourceVersion) the watch is dropped and
 * the key queued, and the reconcile reads the Deployment again and watches anew; a watch that ends within
 * `minLifetimeMs` queues the key only after that long, so a failing watch cannot spin. At most `max` watch
 * at once: past that `watch` returns false and the reconciler re-checks on a timer instead.
 */
import { errorMessage } from '../common/errors';
import type { KubeClient, WatchHandle } from '../common/kube-client';
import { silentLogger, type Logger } from '../common/logger';
import { deploymentPath } from './kube-writer';

export interface ForeignWatchesOptions {
  client: Pick<KubeClient, 'watch'>;
  enqueue(key: string): void;
  enqueueAfter(key: string, ms: number): void;
  /** Watches at once (default 100). */
  max?: number;
  /** A watch that ends sooner than this re-queues its key only after this long (default 5 s). */
  minLifetimeMs?: number;
  logger?: Logger;
  now?: () => number;
}

interface Entry {
  handle?: WatchHandle;
  released: boolean;
}

export class ForeignDeploymentWatches {
  private readonly o: ForeignWatchesOptions;
  private readonly entries = new Map<string, Entry>();
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(options: ForeignWatchesOptions) {
    this.o = options;
    this.log = (options.logger ?? silentLogger).child({ part: 'foreign-deployment-watches' });
    this.now = options.now ?? Date.now;
  }

  /** Watches (unless already watching) the Deployment `namespace/name` for `key`; false at the limit. */
  watch(key: string, namespace: string, name: string, resourceVersion: string | undefined): boolean {
    if (this.entries.has(key)) return true;
    if (this.entries.size >= (this.o.max ?? 100)) return false;
    const entry: Entry = { released: false };
    this.entries.set(key, entry);
    const startedAt = this.now();
    const ended = (err?: unknown): void => {
      if (entry.released) return;
      if (this.entries.get(key) === entry) this.entries.delete(key);
      const lived = this.now() - startedAt;
      const minLifetime = this.o.minLifetimeMs ?? 5_000;
      if (err) this.log.debug('the watch on a Deployment in the way ended', { key, error: errorMessage(err) });
      if (lived < minLifetime) this.o.enqueueAfter(key, minLifetime - lived);
      else this.o.enqueue(key);
    };
    const query = {
      fieldSelector: `metadata.name=${name}`,
      resourceVersion,
      timeoutSeconds: 600 + Math.floor(Math.random() * 300),
    };
    this.o.client
      .watch(
        deploymentPath(namespace),
        query,
        (type) => {
          if (!entry.released && type !== 'BOOKMARK') this.o.enqueue(key);
        },
        ended,
      )
      .then(
        (handle) => {
          if (entry.released) handle.abort();
          else entry.handle = handle;
        },
        (err: unknown) => ended(err),
      );
    return true;
  }

  /** Stops watching for `key` (the Deployment is gone or owned, or the FunctionService is gone). */
  release(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    entry.released = true;
    entry.handle?.abort();
  }

  watching(key: string): boolean {
    return this.entries.has(key);
  }

  size(): number {
    return this.entries.size;
  }

  stop(): void {
    for (const key of [...this.entries.keys()]) this.release(key);
  }
}
