/**
 * Carries the local mesh's plan (plan.ts) out on running replicas, one pass at a time: a plan given while
 * a pass runs waits for it, and plans given meanwhile collapse into one pass on the newest. Starting and
 * stopping a replica's processes is the caller's (`ReplicaOps`); this module decides in which order.
 */
import { errorMessage } from '../common/errors';
import { diff, type DesiredState, type RunningState, type ServicePlan } from './plan';

/** What the applier knows of a running replica. */
export interface AppliedReplica {
  key: string;
  index: number;
  id: string;
  plan: ServicePlan;
}

export interface ReplicaOps<R extends AppliedReplica> {
  /** Starts replica `index` of `plan` (its processes are started, not necessarily ready). */
  start(plan: ServicePlan, index: number): Promise<R>;
  /** Stops it; resolves once its processes are gone. */
  stop(replica: R): Promise<void>;
  /** Resolves true once it is ready, false after `timeoutMs` (or when the mesh stops). */
  waitReady(replica: R, timeoutMs: number): Promise<boolean>;
}

export interface ApplierOptions<R extends AppliedReplica> {
  replicas: ReplicaOps<R>;
  say(message: string): void;
  /** A restart moves on to the next replica of its service after this long even if one is not ready. */
  restartReadyTimeoutMs?: number;
}

export class PlanApplier<R extends AppliedReplica> {
  private readonly running = new Map<string, R[]>();
  private readonly skippedWarned = new Map<string, string>();
  private readonly restartReadyTimeoutMs: number;
  private next: DesiredState | undefined;
  private pass: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: ApplierOptions<R>) {
    this.restartReadyTimeoutMs = options.restartReadyTimeoutMs ?? 30_000;
  }

  /** True when no pass is running or waiting. */
  get idle(): boolean {
    return this.pass === undefined;
  }

  /** The running replicas of a service, by index. */
  replicasOf(key: string): R[] {
    return this.running.get(key) ?? [];
  }

  all(): R[] {
    return [...this.running.values()].flat();
  }

  /** Makes the running replicas match `desired`; resolves when the passes this call joined are done. */
  apply(desired: DesiredState): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.next = desired;
    this.pass ??= (async () => {
      while (this.next && !this.closed) {
        const plan = this.next;
        this.next = undefined;
        try {
          await this.applyOnce(plan);
        } catch (err) {
          this.options.say(`error: applying the manifests failed: ${errorMessage(err)}`);
        }
      }
      this.pass = undefined;
    })();
    return this.pass;
  }

  /** No more passes: waits for the one under way, then stops every replica. */
  async stopAll(): Promise<void> {
    this.closed = true;
    await this.pass;
    const all = this.all();
    this.running.clear();
    await Promise.all(all.map((r) => this.options.replicas.stop(r)));
  }

  private warnSkipped(desired: DesiredState): void {
    for (const s of desired.skipped) {
      if (this.skippedWarned.get(s.key) !== s.reason) this.options.say(`warning: ${s.key}: ${s.reason}`);
      this.skippedWarned.set(s.key, s.reason);
    }
    for (const key of [...this.skippedWarned.keys()])
      if (!desired.skipped.some((s) => s.key === key)) this.skippedWarned.delete(key);
  }

  private async applyOnce(desired: DesiredState): Promise<void> {
    const { replicas, say } = this.options;
    this.warnSkipped(desired);
    const now: RunningState = new Map(
      [...this.running].map(([key, list]) => [
        key,
        list.map((r) => ({ index: r.index, fingerprint: r.plan.fingerprint })),
      ]),
    );
    const stops: Promise<void>[] = [];
    const restartsByService = new Map<string, number[]>();
    for (const a of diff(desired.services, now)) {
      if (a.type === 'stop') {
        const r = this.take(a.key, a.index);
        if (r) {
          say(
            `${a.key}: stopping replica ${r.id}${desired.services.has(a.key) ? ' (scale down)' : ' (manifest removed)'}`,
          );
          stops.push(replicas.stop(r));
        }
      } else if (a.type === 'start') {
        this.add(await replicas.start(desired.services.get(a.key)!, a.index));
      } else {
        restartsByService.set(a.key, [...(restartsByService.get(a.key) ?? []), a.index]);
      }
    }
    // Each changed service restarts its replicas one at a time; different services in parallel. The pass
    // ends when all of them have (one failing does not leave the others running past it, unseen by stopAll).
    const outcomes = await Promise.allSettled([
      ...stops,
      ...[...restartsByService].map(([key, indices]) => this.restartOneByOne(desired.services.get(key)!, indices)),
    ]);
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed.length > 0) throw new Error(failed.map((f) => errorMessage(f.reason)).join('; '));
  }

  private async restartOneByOne(plan: ServicePlan, indices: number[]): Promise<void> {
    const { replicas, say } = this.options;
    say(
      `${plan.key}: its spec.local, ports, limits or sidecar settings changed; restarting ${indices.length} replica(s) one at a time`,
    );
    for (const index of indices) {
      if (this.closed) return;
      const old = this.take(plan.key, index);
      if (old) await replicas.stop(old);
      if (this.closed) return;
      const r = await replicas.start(plan, index);
      this.add(r);
      if (!(await replicas.waitReady(r, this.restartReadyTimeoutMs)))
        say(
          `warning: ${r.id} is not ready after ${Math.round(this.restartReadyTimeoutMs / 1000)} s; continuing the restart`,
        );
    }
  }

  private take(key: string, index: number): R | undefined {
    const list = this.running.get(key) ?? [];
    const r = list.find((x) => x.index === index);
    const rest = list.filter((x) => x.index !== index);
    if (rest.length > 0) this.running.set(key, rest);
    else this.running.delete(key);
    return r;
  }

  private add(r: R): void {
    const list = [...(this.running.get(r.key) ?? []), r].sort((a, b) => a.index - b.index);
    this.running.set(r.key, list);
  }
}
