/**
 * A work queue of string keys in the manner of client-go's rate-limited work queue:
 * - a key added while it waits is queued once (de-duplication);
 * - a key being processed is never handed out again until `done(key)`; if it was added meanwhile, it
 *   is queued again after `done`;
 * - `addRateLimited` re-adds a key after a per-key exponential back-off (base doubling to a cap), and
 *   `forget` resets it;
 * - `addAfter` adds a key later (a key waiting for several delays is added at the earliest);
 * - `get()` resolves with the next key, or with undefined once the queue is shut down.
 */

export interface WorkQueueMetrics {
  /** Keys waiting (not counting delayed or in-process keys). */
  depth?(n: number): void;
  /** Every add call that queued or marked a key. */
  add?(): void;
  /** Every rate-limited re-add. */
  retry?(): void;
  /** Seconds between get and done for one key. */
  workDuration?(seconds: number): void;
  /** Seconds a key waited in the queue before get. */
  queueDuration?(seconds: number): void;
}

export interface WorkQueueOptions {
  /** First back-off delay (default 5 ms). */
  baseDelayMs?: number;
  /** Back-off cap (default 5 minutes). */
  maxDelayMs?: number;
  metrics?: WorkQueueMetrics;
  /** Clock in milliseconds (default Date.now); timers use the global setTimeout. */
  now?: () => number;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  /** Keys that need processing: waiting in `queue`, or marked while being processed. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, number>();
  private readonly addedAt = new Map<string, number>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly metrics: WorkQueueMetrics;
  private readonly now: () => number;
  private stopped = false;

  constructor(options: WorkQueueOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 5 * 60_000;
    this.metrics = options.metrics ?? {};
    this.now = options.now ?? Date.now;
  }

  add(key: string): void {
    if (this.stopped) return;
    this.metrics.add?.();
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.enqueue(key);
  }

  /** Resolves with the next key to process, or undefined once shut down. */
  get(): Promise<string | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks a key processed; a key added while it was processed is queued again now. */
  done(key: string): void {
    const started = this.processing.get(key);
    if (started === undefined) return;
    this.processing.delete(key);
    this.metrics.workDuration?.((this.now() - started) / 1000);
    if (this.dirty.has(key) && !this.stopped) this.enqueue(key);
  }

  /** Adds the key after `ms`; a key already waiting for an earlier time keeps it. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref?.();
    this.delayed.set(key, { at, timer });
  }

  /** The back-off the next `addRateLimited(key)` would use. */
  nextDelayMs(key: string): number {
    const n = this.failures.get(key) ?? 0;
    // 2^n overflows to Infinity long before it matters; min() caps it.
    return Math.min(this.baseDelayMs * 2 ** n, this.maxDelayMs);
  }

  /** Re-adds the key after its back-off (at least `minDelayMs`), and grows the back-off. */
  addRateLimited(key: string, minDelayMs = 0): void {
    if (this.stopped) return;
    const delay = Math.max(this.nextDelayMs(key), minDelayMs);
    this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
    this.metrics.retry?.();
    this.addAfter(key, delay);
  }

  /** Resets the key's back-off (after a success, or when retrying cannot help). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Rate-limited re-adds since the last forget. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Keys waiting to be handed out. */
  len(): number {
    return this.queue.length;
  }

  /** Keys handed out and not yet done. */
  inProgress(): number {
    return this.processing.size;
  }

  isShutdown(): boolean {
    return this.stopped;
  }

  /** Stops the queue: waiting and later `get` calls resolve undefined; delayed adds are dropped. */
  shutdown(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  private enqueue(key: string): void {
    this.addedAt.set(key, this.now());
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter(this.take(key));
      return;
    }
    this.queue.push(key);
    this.metrics.depth?.(this.queue.length);
  }

  private take(key: string): string {
    const now = this.now();
    this.dirty.delete(key);
    this.processing.set(key, now);
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (added !== undefined) this.metrics.queueDuration?.((now - added) / 1000);
    this.metrics.depth?.(this.queue.length);
    return key;
  }
}
