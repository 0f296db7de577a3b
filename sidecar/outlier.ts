/**
 * Outlier detection of this replica (pure; the clock is passed in): its function's answers, failure or not, in
 * a row and over a sliding window, decide when the replica should leave its queue group for a while.
 *
 * A failure is a call the function may have run and failed: its 5xx, a call that ran past its deadline, a
 * connection that broke mid-call. Not a 4xx (the caller's fault), nor a call it never ran. The window is ten
 * buckets of windowMs/10 (O(1) memory and work per call; a bucket's calls leave the window together).
 *
 * The n-th ejection in a row lasts baseEjectionMs·2^(n−1), at most maxEjectionMs; n goes down by one for every
 * maxEjectionMs the replica served since it last came back, so a replica that behaves is forgiven.
 *
 * Before ejecting, the shell asks the service's replicas for their state (ejectionAllowed): the cap
 * maxEjectionPercent keeps calls that fail for some inputs from taking the whole service out.
 */
import type { OutlierDetectionPolicy, PeerState } from './common';

const BUCKETS = 10;

/** After a refusal by the cap: wait at least this (plus jitter) before asking the replicas again. */
export const ASK_AGAIN_MS = 500;

export class OutlierDetector {
  private consecutive = 0;
  private readonly bucketMs: number;
  private readonly epochs = new Array<number>(BUCKETS).fill(-1);
  private readonly calls = new Array<number>(BUCKETS).fill(0);
  private readonly failures = new Array<number>(BUCKETS).fill(0);
  /** Ejections in a row (before decay). */
  private ejections = 0;
  private servingSince = 0;
  /** No verdict before this (asking the replicas, or refused lately). */
  private quietUntil = 0;
  private asking = false;

  constructor(
    readonly policy: OutlierDetectionPolicy,
    now: number,
  ) {
    this.bucketMs = Math.max(1, policy.windowMs / BUCKETS);
    this.servingSince = now;
  }

  get enabled(): boolean {
    return this.policy.consecutiveFailures > 0 || this.policy.failureRatio > 0;
  }

  /** Records one answer of the function; true when the replica should be ejected now (ask the cap first). */
  record(failed: boolean, now: number): boolean {
    const epoch = Math.floor(now / this.bucketMs);
    const i = epoch % BUCKETS;
    if (this.epochs[i] !== epoch) {
      this.epochs[i] = epoch;
      this.calls[i] = 0;
      this.failures[i] = 0;
    }
    this.calls[i]!++;
    if (!failed) {
      this.consecutive = 0;
      return false;
    }
    this.failures[i]!++;
    this.consecutive++;
    if (this.asking || now < this.quietUntil) return false;
    const p = this.policy;
    if (p.consecutiveFailures > 0 && this.consecutive >= p.consecutiveFailures) return this.verdict();
    if (p.failureRatio > 0) {
      let calls = 0;
      let failures = 0;
      for (let b = 0; b < BUCKETS; b++) {
        if (this.epochs[b]! > epoch - BUCKETS) {
          calls += this.calls[b]!;
          failures += this.failures[b]!;
        }
      }
      if (calls >= p.minCalls && failures >= p.failureRatio * calls) return this.verdict();
    }
    return false;
  }

  /** True while the shell asks the replicas about a verdict. */
  get deciding(): boolean {
    return this.asking;
  }

  /** The replica is ejected now: how long, ms. Counts the ejection. */
  eject(now: number): number {
    this.asking = false;
    const p = this.policy;
    const decay = p.maxEjectionMs > 0 ? Math.floor((now - this.servingSince) / p.maxEjectionMs) : 0;
    this.ejections = Math.max(0, this.ejections - decay) + 1;
    return Math.min(p.maxEjectionMs, p.baseEjectionMs * 2 ** (this.ejections - 1));
  }

  /** The cap refused the ejection: keep serving, and ask again no sooner than ASK_AGAIN_MS (+ `jitterMs`). */
  refused(now: number, jitterMs = 0): void {
    this.asking = false;
    this.quietUntil = now + ASK_AGAIN_MS + jitterMs;
  }

  /** The replica serves again after an ejection: the calls before it are forgotten. */
  returned(now: number): void {
    this.servingSince = now;
    this.consecutive = 0;
    this.epochs.fill(-1);
  }

  private verdict(): boolean {
    this.asking = true;
    return true;
  }
}

/** States that count as out of rotation by outlier detection (another replica deciding counts as ejected). */
const EJECTED_STATES = new Set(['ejected', 'ejecting']);

/**
 * May this replica be ejected? Only if, after it, the share of the service's replicas ejected stays within
 * maxEjectionPercent. `peers` are the PING answers (this replica's own included or not).
 */
export function ejectionAllowed(selfId: string, peers: readonly PeerState[], maxEjectionPercent: number): boolean {
  if (maxEjectionPercent >= 100) return true;
  const others = new Map<string, string>();
  for (const p of peers) if (p.id !== selfId) others.set(p.id, p.state);
  let ejected = 1; // this one
  for (const state of others.values()) if (EJECTED_STATES.has(state)) ejected++;
  const total = others.size + 1;
  return ejected * 100 <= maxEjectionPercent * total;
}
