/**
 * The circuit breaker of one function, a pure state machine (the clock is passed in, epoch milliseconds):
 *
 *   closed ──(consecutiveFailures calls in a row that no replica could take)──▶ open
 *   open ──(openMs passed: the next call is the probe)──▶ half-open
 *   half-open ──(the probe was taken by a replica)──▶ closed
 *   half-open ──(no replica could take the probe)──▶ open, for twice as long (at most maxOpenMs)
 *
 * Only calls that no replica could take count (every attempt not executed, or nobody subscribed): a caller
 * cannot open the circuit with short deadlines, bad params or a function's own errors. While open, and while
 * the probe runs (at most as long as the circuit was open; then the next call is a probe too), calls are
 * refused at once.
 */
import type { CircuitBreakerPolicy } from '../common';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** What the breaker says to a call about to be sent: go, go as the one probe, or refused. */
export type Admission = 'pass' | 'probe' | 'refuse';

/** How a call that was let through ended, as the breaker counts it. */
export type CallVerdict =
  /** Every attempt was not executed, or nobody was subscribed. */
  | 'no-replica'
  /** A replica took the call (whatever its answer). */
  | 'taken'
  /** Says nothing about the replicas (no attempt could be made, the gateway lost NATS). */
  | 'neutral';

export interface BreakerSnapshot {
  state: BreakerState;
  /** Calls in a row that no replica could take. */
  failuresInARow: number;
  /** While open: when the next probe may go (epoch ms). */
  openUntil?: number;
}

export class CircuitBreaker {
  private stateNow: BreakerState = 'closed';
  private failures = 0;
  private until = 0;
  /** How long the next opening lasts: openMs, doubled by each failed probe, reset when the circuit closes. */
  private openFor: number;
  private probing = false;
  private probeSince = 0;

  constructor(public policy: CircuitBreakerPolicy) {
    this.openFor = policy.openMs;
  }

  get state(): BreakerState {
    return this.stateNow;
  }

  get failuresInARow(): number {
    return this.failures;
  }

  /** The state as the listing shows it. */
  snapshot(): BreakerSnapshot {
    const s: BreakerSnapshot = { state: this.stateNow, failuresInARow: this.failures };
    if (this.stateNow === 'open') s.openUntil = this.until;
    return s;
  }

  admit(now: number): Admission {
    if (this.stateNow === 'closed') return 'pass';
    if (this.stateNow === 'open') {
      if (now < this.until) return 'refuse';
      this.stateNow = 'half-open';
    }
    // A probe that hangs (a replica took it and sits on it) must not hold the circuit: after as long as the
    // circuit was open, the next call is a probe too.
    if (this.probing && now - this.probeSince < this.openFor) return 'refuse';
    this.probing = true;
    this.probeSince = now;
    return 'probe';
  }

  /**
   * Milliseconds until a refused call is worth sending again: the rest of the open period, or while a probe
   * runs, the period the circuit would reopen for if it failed.
   */
  retryAfterMs(now: number): number {
    if (this.stateNow === 'open') return Math.max(0, this.until - now);
    return this.openFor;
  }

  /** Counts how a call that was admitted (`probe` when it was the probe) ended. Returns true when it opened the circuit. */
  record(verdict: CallVerdict, probe: boolean, now: number): boolean {
    if (probe) this.probing = false;
    if (verdict === 'neutral') return false;
    if (verdict === 'taken') {
      this.failures = 0;
      if (this.stateNow !== 'closed') {
        this.stateNow = 'closed';
        this.openFor = this.policy.openMs;
      }
      return false;
    }
    this.failures++;
    if (probe) {
      this.openFor = Math.min(this.policy.maxOpenMs, this.openFor * 2);
      return this.open(now);
    }
    const threshold = this.policy.consecutiveFailures;
    if (this.stateNow === 'closed' && threshold > 0 && this.failures >= threshold) return this.open(now);
    return false;
  }

  private open(now: number): boolean {
    this.stateNow = 'open';
    this.until = now + this.openFor;
    return true;
  }
}

const samePolicy = (a: CircuitBreakerPolicy, b: CircuitBreakerPolicy): boolean =>
  a === b || (a.consecutiveFailures === b.consecutiveFailures && a.openMs === b.openMs && a.maxOpenMs === b.maxOpenMs);

/**
 * What names one function's breaker and its policy, made with the routing table (registry.ts): one per declared
 * function, and one per service for the functions its `default` function routes (they share it, so callers
 * cannot make breakers without bound by calling made-up names).
 */
export interface BreakerRef {
  /** `ns/svc.fn` (`ns/svc.default` for the functions a `default` function routes). */
  key: string;
  namespace: string;
  service: string;
  function: string;
  policy: CircuitBreakerPolicy;
}

interface Entry {
  ref: BreakerRef;
  breaker: CircuitBreaker;
}

/**
 * The breakers of all functions, by key. Outlives the routing table: a rebuild of an unchanged service keeps
 * its breakers; a changed policy starts a fresh one. A breaker is made at a function's first call that no
 * replica could take, so calls that succeed cost one map lookup.
 */
export class CircuitBreakers {
  private readonly byKey = new Map<string, Entry>();

  /** The breaker of `ref` if one was made (a changed policy drops it). */
  find(ref: BreakerRef): CircuitBreaker | undefined {
    const e = this.byKey.get(ref.key);
    if (e === undefined) return undefined;
    if (e.ref === ref) return e.breaker;
    if (samePolicy(e.breaker.policy, ref.policy)) {
      e.ref = ref;
      e.breaker.policy = ref.policy;
      return e.breaker;
    }
    this.byKey.delete(ref.key);
    return undefined;
  }

  /**
   * Counts a call's verdict, making the breaker at its first failure. Returns true when this opened the
   * circuit.
   */
  record(ref: BreakerRef, verdict: CallVerdict, probe: boolean, now: number): boolean {
    let b = this.find(ref);
    if (b === undefined) {
      if (verdict !== 'no-replica' || ref.policy.consecutiveFailures === 0) return false;
      b = new CircuitBreaker(ref.policy);
      this.byKey.set(ref.key, { ref, breaker: b });
    }
    return b.record(verdict, probe, now);
  }

  /** Keeps only the breakers of these keys (those of the current routing table). */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.byKey.keys()) if (!keys.has(key)) this.byKey.delete(key);
  }

  /** Every breaker made, with its function. */
  *all(): IterableIterator<{ ref: BreakerRef; breaker: CircuitBreaker }> {
    yield* this.byKey.values();
  }

  /** The snapshot of `ref` (closed with no failures when it has no breaker). */
  snapshot(ref: BreakerRef): BreakerSnapshot {
    return this.find(ref)?.snapshot() ?? { state: 'closed', failuresInARow: 0 };
  }
}
