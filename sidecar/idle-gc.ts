/**
 * Full collections once the sidecar has gone quiet (FNMESH_IDLE_GC_MS after the last call, none in
 * flight), so its resident memory returns towards the idle figure after a burst of calls. Under load V8 grows
 * the young generation (up to 16 MB per semi-space) and the old generation's pages and keeps them while
 * nothing allocates; nothing allocates in an idle sidecar, so no collection would ever give them back.
 *
 * Two collections, SHRINK_GAP_MS apart: the first frees the garbage, but V8 shrinks the young generation only
 * in a collection that sees a low allocation rate over its last 5 s (its allocation-throughput window), and
 * the last collection before the first one was under load. Measured on the echo bench's sidecar: 92 MB
 * after load, 91 after the first collection (the young generation still 2 × 16 MB), 61 after the second.
 *
 * The collector: `gc` when the process was started with --expose-gc; otherwise the same function taken from
 * a fresh V8 context after `v8.setFlagsFromString('--expose-gc')` (V8 installs `gc` into contexts created
 * while the flag is on; the flag is turned off again at once, so no other code sees a global `gc`). That keeps
 * the setting in the sidecar instead of in every starter's node command line (operator, `fnmesh local`,
 * `fnmesh cluster`, the image).
 *
 * A call costs one `performance.now()`; an idle sidecar runs no timer (it is armed by the first call after
 * the collections).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SHRINK_GAP_MS } from './settings';

export { SHRINK_GAP_MS } from './settings';

/** A full, synchronous collection of the whole heap. */
export type Collect = () => void;

/** The engine's collector (see above). */
export function exposedGc(): Collect {
  const global = globalThis as { gc?: Collect };
  if (typeof global.gc === 'function') return global.gc;
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as Collect;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/** What the timer does when it fires. Pure: `quietMs` is the time since the last call. */
export function idleGcStep(s: {
  quietMs: number;
  busy: boolean;
  idleMs: number;
}): { action: 'collect' } | { action: 'wait'; ms: number } {
  if (s.busy) return { action: 'wait', ms: s.idleMs };
  if (s.quietMs >= s.idleMs) return { action: 'collect' };
  return { action: 'wait', ms: s.idleMs - s.quietMs };
}

export interface IdleGcOptions {
  /** Quiet time before the compaction; 0 turns it off. */
  idleMs: number;
  /** True while calls are in flight (no compaction then). */
  busy: () => boolean;
  collect?: Collect;
  now?: () => number;
  /** Told after each collection: how long it took. */
  onCollected?: (tookMs: number) => void;
}

export class IdleGc {
  private last = 0;
  /** Collections done since the last call (two per quiet spell). */
  private rounds = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly collect: Collect | undefined;
  private readonly now: () => number;

  constructor(private readonly options: IdleGcOptions) {
    this.collect = options.idleMs > 0 ? (options.collect ?? exposedGc()) : undefined;
    this.now = options.now ?? (() => performance.now());
  }

  /** A call started (or ended): the quiet time starts again. */
  touch(): void {
    if (!this.collect) return;
    this.last = this.now();
    this.rounds = 0;
    if (!this.timer && !this.stopped) this.arm(this.options.idleMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.fire(), ms);
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    if (this.stopped || !this.collect) return;
    const step = idleGcStep({
      quietMs: this.now() - this.last,
      busy: this.options.busy(),
      idleMs: this.options.idleMs,
    });
    if (step.action === 'wait') return this.arm(step.ms);
    const start = this.now();
    this.collect();
    this.options.onCollected?.(this.now() - start);
    if (++this.rounds < 2) this.arm(SHRINK_GAP_MS);
  }
}
