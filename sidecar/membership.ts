/**
 * Whether this replica belongs in its service's queue group now, and why not: a pure state machine fed by
 * health checks, calls that could not reach the function, the call queue and outlier detection. The shell
 * (sidecar.ts) subscribes while `joined` is true and drains the subscription the moment it turns false.
 *
 * - function down (refused/reset unread, on a call or a health check) or unhealthy (a failed health check):
 *   out until a health check passes; health is checked every 50 ms meanwhile;
 * - ejected (outlier detection): out until the ejection ends and then a health check passes;
 * - overloaded (no slot and no place in the queue): out until the queue is empty again; still ready (it is
 *   momentary), and a call that still arrives is taken when there is room;
 * - draining: out for good (the calls already on their way still run, unless the function is down).
 */
import type { NotExecutedReason } from './common';

/** What the replica reports of itself (micro metadata `fnmesh.state`): a reason it is out, or that it serves. */
export type ReplicaState = 'starting' | 'serving' | NotExecutedReason;

export type FunctionHealth = 'unknown' | 'up' | 'down' | 'unhealthy';

/** Health checks while the replica serves, and while it waits to rejoin. */
export const HEALTH_SLOW_MS = 1_000;
export const HEALTH_FAST_MS = 50;

export class Membership {
  private health: FunctionHealth = 'unknown';
  private healthReason: string;
  private ejectedUntil: number | undefined;
  private overloaded = false;
  private draining = false;
  /**
   * The not-executed reason for a call arriving now (function-down, unhealthy or ejected), or undefined: the
   * replica takes it (a draining replica still runs the calls already on their way; an overloaded one runs a
   * call it has room for). Kept as a field, recomputed on every change, so the call path reads it without work.
   */
  refusing: NotExecutedReason | undefined = 'unhealthy';
  /** Why the replica is out of the queue group, or undefined while it belongs in it. */
  out: NotExecutedReason | undefined = 'unhealthy';
  /** True while the replica belongs in the queue group. */
  joined = false;

  constructor(initialReason: string) {
    this.healthReason = initialReason;
  }

  get functionHealth(): FunctionHealth {
    return this.health;
  }

  get ejected(): boolean {
    return this.ejectedUntil !== undefined;
  }

  /** A health check passed: the function is up; an ejection whose time is over ends. */
  healthPassed(now: number): void {
    this.health = 'up';
    if (this.ejectedUntil !== undefined && now >= this.ejectedUntil) this.ejectedUntil = undefined;
    this.update();
  }

  /** The function is down (a call or a health check could not reach it) or unhealthy (its health check failed). */
  functionFailed(health: 'down' | 'unhealthy', reason: string): void {
    this.health = health;
    this.healthReason = reason;
    this.update();
  }

  eject(now: number, ms: number): void {
    this.ejectedUntil = now + ms;
    this.update();
  }

  setOverloaded(overloaded: boolean): void {
    this.overloaded = overloaded;
    this.update();
  }

  drain(): void {
    this.draining = true;
    this.update();
  }

  state(): ReplicaState {
    if (this.health === 'unknown' && !this.draining) return 'starting';
    return this.outBecause() ?? 'serving';
  }

  /** Readiness: false while the replica cannot run calls for a while (not for a momentary overload). */
  readiness(): { ready: true } | { ready: false; reason: string } {
    if (this.draining) return { ready: false, reason: 'the sidecar is draining: it takes no new calls' };
    if (this.health !== 'up') return { ready: false, reason: this.healthReason };
    if (this.ejectedUntil !== undefined)
      return {
        ready: false,
        reason:
          'outlier detection ejected this replica: its function kept failing; it rejoins after the ejection and a passing health check',
      };
    return { ready: true };
  }

  /** When to check the function's health next, ms from now; undefined: no more checks (draining). */
  nextHealthCheckMs(now: number): number | undefined {
    if (this.draining) return undefined;
    if (this.health !== 'up') return HEALTH_FAST_MS;
    if (this.ejectedUntil !== undefined)
      return Math.max(HEALTH_FAST_MS, Math.min(HEALTH_SLOW_MS, this.ejectedUntil - now));
    return HEALTH_SLOW_MS;
  }

  private outBecause(): NotExecutedReason | undefined {
    if (this.draining) return 'draining';
    if (this.health === 'down') return 'function-down';
    if (this.health !== 'up') return 'unhealthy';
    if (this.ejectedUntil !== undefined) return 'ejected';
    if (this.overloaded) return 'overloaded';
    return undefined;
  }

  private update(): void {
    const out = this.outBecause();
    this.out = out;
    this.refusing = out === 'draining' || out === 'overloaded' ? undefined : out;
    if (this.draining && this.health !== 'up') this.refusing = this.health === 'down' ? 'function-down' : 'unhealthy';
    this.joined = out === undefined;
  }
}
