/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it:
 * - a replica takes the lease when it is free (no holder) or expired (renewTime + leaseDuration < now);
 * - the leader renews it every retry period; if it cannot renew for the renew deadline, it stops leading
 *   (the renew deadline is shorter than the lease, so it stops before anyone else may take over);
 * - every write carries the resourceVersion read, so of two replicas racing for the lease one gets a 409
 *   and loses;
 * - on a graceful stop the leader releases the lease (no holder, duration 1 s) so another takes over at once.
 *
 * `leaseDecision` is the pure part (table-tested); `LeaderElector` is the thin loop around a `LeaseClient`.
 */
import { errorMessage } from '../common/errors';
import type { KubeClient } from '../common/kube-client';
import { silentLogger, type Logger } from '../common/logger';
import { classifyApiError } from './api-errors';

export interface LeaseSpecLike {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: Date | string;
  renewTime?: Date | string;
  leaseTransitions?: number;
}

export interface LeaseLike {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpecLike;
}

export interface LeaseTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** The lease spec to write, with times as RFC 3339 micro-second strings (metav1.MicroTime). */
export interface LeaseSpecWrite {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
}

export type LeaseDecision =
  | { action: 'acquire'; reason: 'absent' | 'free' | 'expired'; spec: LeaseSpecWrite }
  | { action: 'renew'; spec: LeaseSpecWrite }
  | { action: 'wait'; holder: string; expiresAt: number };

/** metav1.MicroTime's format: `2026-01-02T03:04:05.123000Z`. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

function timeOf(t: Date | string | undefined): number | undefined {
  if (t === undefined) return undefined;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

export function leaseDurationSeconds(timing: LeaseTiming): number {
  return Math.max(1, Math.ceil(timing.leaseDurationMs / 1000));
}

/** When the lease expires: renewTime (or acquireTime) plus its duration; 0 when it never was held. */
export function leaseExpiry(lease: LeaseLike): number {
  const spec = lease.spec ?? {};
  const renewed = timeOf(spec.renewTime) ?? timeOf(spec.acquireTime);
  if (renewed === undefined) return 0;
  return renewed + (spec.leaseDurationSeconds ?? 0) * 1000;
}

/** What this replica should do about the lease as read (undefined: the lease does not exist). */
export function leaseDecision(
  lease: LeaseLike | undefined,
  identity: string,
  now: number,
  timing: LeaseTiming,
): LeaseDecision {
  const duration = leaseDurationSeconds(timing);
  const nowTime = microTime(now);
  if (!lease) {
    return {
      action: 'acquire',
      reason: 'absent',
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: duration,
        acquireTime: nowTime,
        renewTime: nowTime,
        leaseTransitions: 0,
      },
    };
  }
  const spec = lease.spec ?? {};
  const transitions = spec.leaseTransitions ?? 0;
  const holder = spec.holderIdentity ?? '';
  if (holder === identity) {
    const acquired = timeOf(spec.acquireTime);
    return {
      action: 'renew',
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: duration,
        acquireTime: acquired !== undefined ? microTime(acquired) : nowTime,
        renewTime: nowTime,
        leaseTransitions: transitions,
      },
    };
  }
  const takeOver = (reason: 'free' | 'expired'): LeaseDecision => ({
    action: 'acquire',
    reason,
    spec: {
      holderIdentity: identity,
      leaseDurationSeconds: duration,
      acquireTime: nowTime,
      renewTime: nowTime,
      leaseTransitions: transitions + 1,
    },
  });
  if (holder === '') return takeOver('free');
  const expiresAt = leaseExpiry(lease);
  if (expiresAt < now) return takeOver('expired');
  return { action: 'wait', holder, expiresAt };
}

/** The spec that releases a lease this replica holds: no holder, and a 1-second duration. */
export function releasedLeaseSpec(
  lease: LeaseLike,
  now: number,
): Omit<LeaseSpecWrite, 'holderIdentity'> & { holderIdentity?: string } {
  const spec = lease.spec ?? {};
  const acquired = timeOf(spec.acquireTime);
  return {
    leaseDurationSeconds: 1,
    acquireTime: acquired !== undefined ? microTime(acquired) : microTime(now),
    renewTime: microTime(now),
    leaseTransitions: spec.leaseTransitions ?? 0,
  };
}

/** Lease I/O: read, create, and replace with optimistic concurrency (throws a 409 when another wrote first). */
export interface LeaseClient {
  get(): Promise<LeaseLike | undefined>;
  create(spec: LeaseSpecWrite): Promise<LeaseLike>;
  replace(resourceVersion: string, spec: LeaseSpecLike): Promise<LeaseLike>;
}

/** A LeaseClient on the plain-JSON client (keep-alive connections; the operator's). */
export function jsonLeaseClient(client: Pick<KubeClient, 'request'>, namespace: string, name: string): LeaseClient {
  const collection = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const body = (spec: LeaseSpecLike, resourceVersion?: string): unknown => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace, ...(resourceVersion ? { resourceVersion } : {}) },
    spec,
  });
  return {
    async get() {
      try {
        return await client.request<LeaseLike>('GET', `${collection}/${encodeURIComponent(name)}`);
      } catch (err) {
        if (classifyApiError(err).class === 'not-found') return undefined;
        throw err;
      }
    },
    async create(spec) {
      return client.request<LeaseLike>('POST', collection, { body: body(spec) });
    },
    async replace(resourceVersion, spec) {
      return client.request<LeaseLike>('PUT', `${collection}/${encodeURIComponent(name)}`, {
        body: body(spec, resourceVersion),
      });
    },
  };
}

export interface LeaderElectorOptions {
  client: LeaseClient;
  identity: string;
  timing: LeaseTiming;
  onStartedLeading(): void;
  /** Called once when leadership ends (lost or released); the process should stop reconciling. */
  onStoppedLeading(): void;
  logger?: Logger;
  now?: () => number;
}

export class LeaderElector {
  private readonly o: LeaderElectorOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private leading = false;
  private lastRenew = 0;
  private stopped = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(options: LeaderElectorOptions) {
    this.o = options;
    this.log = (options.logger ?? silentLogger).child({ lease: options.identity });
    this.now = options.now ?? Date.now;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Starts trying to lead; returns at once (the loop runs until stop). */
  start(): void {
    if (this.loop) return;
    // A request that hangs must not keep a leader leading past its renew deadline.
    this.watchdog = setInterval(() => this.checkDeadline(), Math.max(1, Math.floor(this.o.timing.retryPeriodMs / 2)));
    this.watchdog.unref?.();
    this.loop = this.run();
  }

  /** Stops the loop; a leader releases the lease and calls onStoppedLeading. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.watchdog) clearInterval(this.watchdog);
    this.wake?.();
    await this.loop;
    if (this.leading) {
      await this.release();
      this.lose('released');
    }
  }

  /** One attempt to acquire or renew; exposed for tests. Returns whether this replica leads afterwards. */
  async tryOnce(): Promise<boolean> {
    const now = this.now();
    try {
      const lease = await this.o.client.get();
      const decision = leaseDecision(lease, this.o.identity, now, this.o.timing);
      if (decision.action === 'wait') {
        if (this.leading) this.lose(`the lease is held by ${decision.holder}`);
        return false;
      }
      if (lease) await this.o.client.replace(lease.metadata?.resourceVersion ?? '', decision.spec);
      else await this.o.client.create(decision.spec);
      this.lastRenew = now;
      if (!this.leading) {
        this.leading = true;
        this.log.info('became the leader', { reason: decision.action === 'acquire' ? decision.reason : 'renew' });
        this.o.onStartedLeading();
      }
      return true;
    } catch (err) {
      const c = classifyApiError(err);
      if (c.class === 'conflict') this.log.debug('another replica wrote the lease first', { error: c.message });
      else this.log.warn('reading or writing the lease failed', { error: c.message, class: c.class });
      this.checkDeadline(c.message);
      return this.leading;
    }
  }

  private checkDeadline(cause?: string): void {
    if (this.leading && this.now() - this.lastRenew >= this.o.timing.renewDeadlineMs) {
      this.lose(`could not renew the lease for ${this.o.timing.renewDeadlineMs} ms${cause ? `: ${cause}` : ''}`);
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await this.tryOnce();
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.o.timing.retryPeriodMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private lose(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.log.warn('stopped leading', { reason: why });
    this.o.onStoppedLeading();
  }

  private async release(): Promise<void> {
    try {
      const lease = await this.o.client.get();
      if (!lease || lease.spec?.holderIdentity !== this.o.identity) return;
      await this.o.client.replace(lease.metadata?.resourceVersion ?? '', releasedLeaseSpec(lease, this.now()));
      this.log.info('released the lease');
    } catch (err) {
      this.log.warn('releasing the lease failed; another replica takes over when it expires', {
        error: errorMessage(err),
      });
    }
  }
}
