/**
 * The replica's call slots: `limit` calls run at once, up to `queueLength` more wait for a slot in arrival
 * order. Tells when none are left (for a graceful drain), and when the replica is full (no slot and no place
 * in the queue: it leaves its queue group) and has room again (the queue is empty).
 */

/** A call waiting for a slot. */
export interface WaitingCall {
  /** A slot is this call's now: run it (it releases the slot when it ends). */
  start(): void;
  /** The call leaves the queue without running: its deadline passed, or the queue was emptied (`refuseWaiting`). */
  refuse(why: 'deadline' | 'refused'): void;
}

interface Waiter {
  call: WaitingCall;
  timer: NodeJS.Timeout | undefined;
  /** Out of the queue (started, expired or refused); left in the array until it reaches the head. */
  gone: boolean;
}

export interface SlotEvents {
  /** The replica became full (true) or has room again (false); once per change. */
  onFull?(full: boolean): void;
  /** The number of waiting calls changed. */
  onQueued?(queued: number): void;
}

export class CallSlots {
  private running = 0;
  private waiting: Waiter[] = [];
  private head = 0;
  private queuedCount = 0;
  private isFull = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly limit: number,
    readonly queueLength: number,
    private readonly events: SlotEvents = {},
  ) {}

  /** Calls running or waiting. */
  get size(): number {
    return this.running + this.queuedCount;
  }

  get queued(): number {
    return this.queuedCount;
  }

  /** No slot and no place in the queue: the next call would be refused. */
  get full(): boolean {
    return this.isFull;
  }

  /** Takes a slot when one is free (the hot path: no allocation). */
  tryAcquire(): boolean {
    if (this.running >= this.limit) return false;
    this.running++;
    if (this.running >= this.limit && this.queueLength === 0) this.setFull(true);
    return true;
  }

  /**
   * Queues a call that found no free slot; false when the queue is full too. After `timeoutMs` a call still
   * waiting is refused with 'deadline' (it never runs).
   */
  enqueue(call: WaitingCall, timeoutMs: number): boolean {
    if (this.queuedCount >= this.queueLength) return false;
    const w: Waiter = { call, timer: undefined, gone: false };
    w.timer = setTimeout(() => {
      if (w.gone) return;
      this.leaveQueue(w);
      call.refuse('deadline');
    }, timeoutMs);
    this.waiting.push(w);
    this.queuedCount++;
    this.events.onQueued?.(this.queuedCount);
    if (this.queuedCount >= this.queueLength) this.setFull(true);
    return true;
  }

  /** A call ended: its slot goes to the call waiting longest, else it is freed. */
  release(): void {
    const next = this.queuedCount > 0 ? this.nextWaiter() : undefined;
    if (next) {
      this.leaveQueue(next);
      next.call.start(); // the slot passes on: `running` stays
      return;
    }
    if (this.running > 0) this.running--;
    if (this.isFull) this.setFull(false);
    if (this.running === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Every waiting call leaves the queue refused (the function went down: none of them can run here). */
  refuseWaiting(): void {
    for (let w = this.nextWaiter(); w; w = this.nextWaiter()) {
      this.leaveQueue(w);
      w.call.refuse('refused');
    }
  }

  /** Resolves true when nothing runs or waits, or false when `timeoutMs` passes first. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  private nextWaiter(): Waiter | undefined {
    while (this.head < this.waiting.length) {
      const w = this.waiting[this.head]!;
      if (!w.gone) return w;
      this.head++;
    }
    this.waiting = [];
    this.head = 0;
    return undefined;
  }

  private leaveQueue(w: Waiter): void {
    w.gone = true;
    clearTimeout(w.timer);
    this.queuedCount--;
    this.events.onQueued?.(this.queuedCount);
    // expired waiters behind a stuck head: drop them once they outnumber the live ones
    if (this.waiting.length - this.head > 2 * this.queueLength + 16) {
      this.waiting = this.waiting.slice(this.head).filter((x) => !x.gone);
      this.head = 0;
    }
    if (this.isFull && this.queuedCount === 0 && (this.queueLength > 0 || this.running < this.limit))
      this.setFull(false);
  }

  private setFull(full: boolean): void {
    if (this.isFull === full) return;
    this.isFull = full;
    this.events.onFull?.(full);
  }
}
