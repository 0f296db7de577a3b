/**
 * A list-watch cache that does not die. The list-watch (list-watch.ts) re-lists by itself only after a 410;
 * after any other error (API server down, connection reset, 403, a failed list) it reports the error and
 * stops. This wrapper restarts it after every error with exponential back-off, keeps the last cache
 * meanwhile, and every `resyncMs` calls the update handler for every cached object, so that level-based
 * reconciles recover from any event that was missed. The operator, the gateway's Kubernetes rule source and
 * the node agent of `fnmesh cluster` all use it.
 *
 * The informer comes from a factory (the seam the unit tests replace); `jsonInformerFactory` (the plain-JSON
 * client, with a transform of every cached object) is the real one.
 */
import { errorMessage } from './errors';
import { JsonListWatch, type ListWatchOptions, type ObjectLike } from './list-watch';
import { silentLogger, type Logger } from './logger';

type ObjectVerb = 'add' | 'update' | 'delete';

/** What this wrapper uses of a list-watch (the shape of client-node's `Informer & ObjectCache`). */
export interface InformerLike<T> {
  on(verb: ObjectVerb, cb: (obj: T) => void): void;
  on(verb: 'error', cb: (err?: unknown) => void): void;
  /** Lists (or resumes from the last resource version) and watches; reports failures through 'error'. */
  start(): Promise<void>;
  stop(): Promise<void>;
  list(namespace?: string): ReadonlyArray<T>;
  get(name: string, namespace?: string): T | undefined;
}

export type InformerFactory<T> = () => InformerLike<T>;

export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(obj: T): void;
  delete?(obj: T): void;
}

export interface ResilientInformerOptions<T> {
  /** Names the resource in logs (`functionservices`, `deployments`). */
  resource: string;
  factory: InformerFactory<T>;
  handlers: InformerHandlers<T>;
  /** Every this many ms, `update` for every cached object (0 disables). */
  resyncMs: number;
  /** First restart delay (default 500 ms), doubling up to `maxBackoffMs` (default 30 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Running this long without an error resets the back-off (default 60 s). */
  stableAfterMs?: number;
  logger?: Logger;
  /** Called on every restart (for a metric). */
  onRestart?(err: unknown): void;
  now?: () => number;
}

export class ResilientInformer<T> {
  private readonly options: ResilientInformerOptions<T>;
  private informer: InformerLike<T> | undefined;
  private readonly log: Logger;
  private readonly now: () => number;
  private synced = false;
  private stopped = true;
  private failures = 0;
  private startedAt = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private erroredDuringStart = false;
  private starting = false;
  private restartPending = false;

  constructor(options: ResilientInformerOptions<T>) {
    this.options = options;
    this.log = (options.logger ?? silentLogger).child({ resource: options.resource });
    this.now = options.now ?? Date.now;
  }

  /** Starts listing and watching; resolves after the first attempt (synced or not: see hasSynced). */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    const informer = this.options.factory();
    this.informer = informer;
    const { handlers } = this.options;
    informer.on('add', (obj) => this.call('add', handlers.add, obj));
    informer.on('update', (obj) => this.call('update', handlers.update, obj));
    informer.on('delete', (obj) => this.call('delete', handlers.delete, obj));
    informer.on('error', (err) => this.onError(err));
    if (this.options.resyncMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), this.options.resyncMs);
      this.resyncTimer.unref?.();
    }
    await this.run();
  }

  /** True once a list has succeeded (the cache then stays usable through later restarts). */
  hasSynced(): boolean {
    return this.synced;
  }

  list(namespace?: string): ReadonlyArray<T> {
    return this.informer?.list(namespace) ?? [];
  }

  get(namespace: string, name: string): T | undefined {
    return this.informer?.get(name, namespace);
  }

  /** Consecutive failures since the informer last ran stably (the back-off exponent). */
  failureCount(): number {
    return this.failures;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.restartTimer = undefined;
    this.resyncTimer = undefined;
    try {
      await this.informer?.stop();
    } catch (err) {
      this.log.warn('stopping the informer failed', { error: errorMessage(err) });
    }
  }

  /** The delay before the restart after the `failures`-th consecutive error. */
  backoffMs(failures: number): number {
    const initial = this.options.initialBackoffMs ?? 500;
    const max = this.options.maxBackoffMs ?? 30_000;
    return Math.min(initial * 2 ** Math.max(0, failures - 1), max);
  }

  private async run(): Promise<void> {
    const informer = this.informer;
    if (!informer || this.stopped) return;
    this.starting = true;
    this.erroredDuringStart = false;
    this.startedAt = this.now();
    try {
      await informer.start();
    } catch (err) {
      // A list-watch reports through 'error'; a throw is treated the same way.
      this.starting = false;
      this.onError(err);
      return;
    }
    this.starting = false;
    if (!this.erroredDuringStart && !this.stopped) {
      if (!this.synced) this.log.info('informer synced', { objects: informer.list().length });
      this.synced = true;
    }
    if (this.restartPending) {
      this.restartPending = false;
      this.scheduleRestart();
    }
  }

  private onError(err: unknown): void {
    if (this.stopped) return;
    if (this.starting) this.erroredDuringStart = true;
    if (this.restartTimer) return; // a restart is already scheduled
    if (this.now() - this.startedAt >= (this.options.stableAfterMs ?? 60_000)) this.failures = 0;
    this.failures++;
    this.options.onRestart?.(err);
    this.log.warn('informer failed; restarting', {
      error: errorMessage(err),
      failures: this.failures,
      restartInMs: this.backoffMs(this.failures),
    });
    if (this.starting) {
      // Restart only once start() has returned, so two runs never overlap.
      this.restartPending = true;
      return;
    }
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopped || this.restartTimer) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.restart();
    }, this.backoffMs(this.failures));
    this.restartTimer.unref?.();
  }

  private async restart(): Promise<void> {
    if (this.stopped || !this.informer) return;
    try {
      await this.informer.stop();
    } catch {
      // already stopped
    }
    await this.run();
  }

  private resync(): void {
    if (!this.synced || this.stopped) return;
    for (const obj of this.list()) this.call('update', this.options.handlers.update, obj);
  }

  private call(verb: ObjectVerb, handler: ((obj: T) => void) | undefined, obj: T): void {
    if (!handler) return;
    try {
      handler(obj);
    } catch (err) {
      this.log.error('informer handler threw', { verb, error: errorMessage(err) });
    }
  }
}

/**
 * The real informer on the plain-JSON client (list-watch.ts): paged lists, watches with bookmarks, every
 * object transformed before it is cached.
 */
export function jsonInformerFactory<T extends ObjectLike>(o: ListWatchOptions<T>): InformerFactory<T> {
  return () => new JsonListWatch<T>(o);
}
