/**
 * One container of a process-backed pod: its process (started inside the pod's network and mount namespaces
 * with `nsenter --net --mount --uts`, then in a mount namespace of its own — `unshare --mount` — where the
 * script of cluster/volume-plan.ts binds its volumeMounts before it execs the container's argv; in its own
 * process group), its restarts with back-off, and its probes. It keeps the
 * observation the pod's status is built from (cluster/pod-status.ts) and calls `onChange` whenever that may
 * have changed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import os from 'node:os';
import { onCrash, type BackoffPolicy, type BackoffState } from '../common/process/backoff';
import { signalGroup } from '../common/process/supervisor';
import { runAction, type PodHandle } from './pod-actions';
import type { ContainerPlan, ProbePlan } from './pod-plan';
import { mountScript } from './volume-plan';
import type { ContainerObserved, ContainerState } from './pod-status';

export interface ContainerDeps {
  sandboxPid: () => number;
  ingressPath: string;
  podName: string;
  output(container: string, stream: 'stdout' | 'stderr', chunk: Buffer): void;
  report(level: 'info' | 'warn', message: string): void;
  onChange(): void;
  /** Told about each process group started and ended (the reaper's copy). */
  groups?: { added(pgid: number): void; removed(pgid: number): void };
  backoff?: BackoffPolicy;
}

/**
 * The kubelet's restart back-off: 1 s doubling to 30 s, reset by a run of 60 s. A container waiting to be
 * restarted is in CrashLoopBackOff from the first restart on, as in Kubernetes.
 */
export const CONTAINER_BACKOFF: BackoffPolicy = {
  initialMs: 1_000,
  maxMs: 30_000,
  resetAfterMs: 60_000,
  crashLoopAfter: 1,
};
const iso = (ms = Date.now()): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export class ContainerRunner {
  private child: ChildProcess | undefined;
  private state: ContainerState = { kind: 'waiting', reason: 'PodInitializing' };
  private lastTerminated: Extract<ContainerState, { kind: 'terminated' }> | undefined;
  private restartCount = 0;
  private started = false;
  private ready = false;
  private crashes: BackoffState = { consecutiveCrashes: 0 };
  private startedAtMs = 0;
  private stopping = false;
  private timers = new Set<NodeJS.Timeout>();
  private restartTimer: NodeJS.Timeout | undefined;
  private exited: Promise<void> = Promise.resolve();
  private startedWaiters: Array<() => void> = [];
  private completionWaiters: Array<(ok: boolean) => void> = [];
  /** Bumped on every start: probes of an earlier run stop themselves. */
  private generation = 0;

  constructor(
    readonly plan: ContainerPlan,
    private readonly deps: ContainerDeps,
    private readonly restartPolicy: 'Always' | 'OnFailure' | 'Never',
  ) {}

  get name(): string {
    return this.plan.name;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** The current run's process id (its mount namespace is the container's). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  observed(): ContainerObserved {
    const o: ContainerObserved = {
      name: this.plan.name,
      role: this.plan.role,
      image: this.plan.image,
      state: this.state,
      started: this.started,
      ready: this.ready,
      restartCount: this.restartCount,
    };
    if (this.lastTerminated) o.lastTerminated = this.lastTerminated;
    if (this.child?.pid !== undefined) o.pid = this.child.pid;
    return o;
  }

  /** Resolves once the container has started (its startup probe passed), or never if it is stopped first. */
  whenStarted(): Promise<void> {
    if (this.started) return Promise.resolve();
    return new Promise((resolve) => this.startedWaiters.push(resolve));
  }

  /** For a plain init container: resolves true once it has exited 0, false if it is stopped first. */
  whenCompleted(): Promise<boolean> {
    if (this.state.kind === 'terminated' && this.state.exitCode === 0) return Promise.resolve(true);
    return new Promise((resolve) => this.completionWaiters.push(resolve));
  }

  start(): void {
    if (this.stopping || this.child) return;
    const gen = ++this.generation;
    const sandbox = this.deps.sandboxPid();
    // nsenter and unshare exec (no fork), and so does the script: the process started is the container's.
    const [cmd, ...args] = [
      'nsenter',
      `--net=/proc/${sandbox}/ns/net`,
      `--mount=/proc/${sandbox}/ns/mnt`,
      `--uts=/proc/${sandbox}/ns/uts`,
      `--wd=${this.plan.cwd}`,
      '--',
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '--',
      '/bin/bash', // the mount script opens its sources on fds above 9 (dash stops at 9)
      '-c',
      mountScript(this.plan.mounts ?? [], {
        readOnlyRoot: this.plan.readOnlyRootFilesystem === true,
        keep: this.plan.imagePaths,
      }),
      `fnmesh-mounts-${this.plan.name}`,
      ...this.plan.argv,
    ];
    const child = spawn(cmd!, args, {
      cwd: this.plan.cwd,
      env: this.plan.env,
      // fd 3: the mount script says `mounted` on it once the volumes are in place, then closes it and execs
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    const handle = this.handle();
    this.startedAtMs = Date.now();
    this.started = false;
    this.ready = false;
    // Not running until its volumes are mounted (a kubelet starts the process after the mounts, too).
    this.state = { kind: 'waiting', reason: 'ContainerCreating' };
    const pid = child.pid;
    if (pid !== undefined) this.deps.groups?.added(pid);
    child.stdout!.on('data', (d: Buffer) => this.deps.output(this.plan.name, 'stdout', d));
    let setupErrors = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (this.state.kind === 'waiting') setupErrors = (setupErrors + d.toString()).slice(-500);
      this.deps.output(this.plan.name, 'stderr', d);
    });
    let spawnError: Error | undefined;
    child.on('error', (err) => {
      spawnError = err;
    });
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        if (pid !== undefined) this.deps.groups?.removed(pid);
        // exited before its volumes were mounted: the mount script's error is why it could not start
        if (!spawnError && this.state.kind === 'waiting' && code !== 0 && !signal)
          spawnError = new Error(`cannot mount its volumes: ${setupErrors.trim() || `exit code ${String(code)}`}`);
        this.onExit(gen, code, signal, spawnError);
        resolve();
      });
    });
    if (pid === undefined) return;
    this.deps.onChange();
    const setup = child.stdio[3] as Readable;
    let said = '';
    setup.on('error', () => undefined);
    setup.on('data', (d: Buffer) => {
      said += d.toString();
      if (!said.includes('mounted')) return;
      setup.removeAllListeners('data');
      setup.destroy();
      if (gen === this.generation && this.child === child) this.onMounted(gen, pid, handle);
    });
  }

  /** The container's volumes are mounted and its argv runs: it is running, and its probes begin. */
  private onMounted(gen: number, pid: number, handle: PodHandle): void {
    this.startedAtMs = Date.now();
    this.state = { kind: 'running', startedAt: iso(this.startedAtMs) };
    this.deps.report('info', `container ${this.plan.name} started (pid ${pid}): ${this.plan.argv.join(' ')}`);
    this.deps.onChange();

    const { startupProbe, readinessProbe, livenessProbe } = this.plan;
    const afterStartup = (): void => {
      if (gen !== this.generation) return;
      this.started = true;
      for (const w of this.startedWaiters.splice(0)) w();
      if (!readinessProbe) this.ready = this.plan.role !== 'init';
      this.deps.onChange();
      if (readinessProbe) this.probeLoop(gen, handle, readinessProbe, 'readiness', (ok) => this.setReady(gen, ok));
      if (livenessProbe)
        this.probeLoop(gen, handle, livenessProbe, 'liveness', (ok, detail) =>
          ok ? undefined : this.restartUnhealthy(gen, `liveness probe failed: ${detail}`),
        );
    };
    if (startupProbe) {
      this.probeLoop(gen, handle, startupProbe, 'startup', (ok, detail, stop) => {
        if (ok) {
          stop();
          afterStartup();
        } else this.restartUnhealthy(gen, `startup probe failed: ${detail}`);
      });
    } else afterStartup();
  }

  private handle(): PodHandle {
    return {
      ingressPath: this.deps.ingressPath,
      sandboxPid: this.deps.sandboxPid(),
      ...(this.child?.pid !== undefined ? { containerPid: this.child.pid } : {}),
      env: this.plan.env,
      cwd: this.plan.cwd,
    };
  }

  private setReady(gen: number, ok: boolean): void {
    if (gen !== this.generation || this.ready === ok) return;
    this.ready = ok;
    this.deps.onChange();
  }

  /**
   * Runs a probe every period after its initial delay; `onVerdict` hears when the success or failure
   * threshold is crossed (and again on every later probe that keeps it there).
   */
  private probeLoop(
    gen: number,
    handle: PodHandle,
    probe: ProbePlan,
    kind: string,
    onVerdict: (ok: boolean, detail: string, stop: () => void) => void,
  ): void {
    let successes = 0;
    let failures = 0;
    let stopped = false;
    const stop = (): void => {
      stopped = true;
    };
    const tick = async (): Promise<void> => {
      if (stopped || gen !== this.generation || this.stopping) return;
      const r = await runAction(handle, probe.action, probe.timeoutMs);
      if (stopped || gen !== this.generation || this.stopping) return;
      if (r.ok) {
        failures = 0;
        successes++;
        if (successes >= probe.successThreshold) onVerdict(true, '', stop);
      } else {
        successes = 0;
        failures++;
        if (failures >= probe.failureThreshold) {
          if (kind !== 'readiness' || failures === probe.failureThreshold)
            this.deps.report(
              'warn',
              `container ${this.plan.name}: ${kind} probe failed ${failures} times: ${r.detail}`,
            );
          onVerdict(false, r.detail, stop);
        }
      }
      schedule(probe.periodMs);
    };
    const schedule = (ms: number): void => {
      if (stopped || gen !== this.generation || this.stopping) return;
      const t = setTimeout(() => {
        this.timers.delete(t);
        void tick();
      }, ms);
      this.timers.add(t);
    };
    schedule(probe.initialDelayMs);
  }

  /** A failed liveness or startup probe: the kubelet kills the container and restarts it. */
  private restartUnhealthy(gen: number, why: string): void {
    if (gen !== this.generation || !this.child) return;
    this.deps.report('warn', `container ${this.plan.name} ${why}; restarting it`);
    this.signal('SIGTERM');
    const child = this.child;
    const t = setTimeout(() => {
      if (this.child === child) this.signal('SIGKILL');
    }, 5_000);
    this.timers.add(t);
  }

  private onExit(gen: number, code: number | null, signal: NodeJS.Signals | null, spawnError: Error | undefined): void {
    this.child = undefined;
    this.started = false;
    this.ready = false;
    this.clearTimers();
    const exitCode = code ?? (signal ? 128 + (signalNumber(signal) ?? 9) : 1);
    const startedAt = this.state.kind === 'running' ? this.state.startedAt : iso(this.startedAtMs);
    const terminated: Extract<ContainerState, { kind: 'terminated' }> = {
      kind: 'terminated',
      exitCode,
      reason: spawnError ? 'StartError' : exitCode === 0 ? 'Completed' : 'Error',
      startedAt,
      finishedAt: iso(),
    };
    if (spawnError) terminated.message = spawnError.message;
    if (signal) {
      terminated.signal = signalNumber(signal) ?? 9;
      terminated.message = `killed by ${signal}`;
    }
    this.state = terminated;
    const ranMs = Date.now() - this.startedAtMs;
    if (gen === this.generation)
      this.deps.report(
        exitCode === 0 || this.stopping ? 'info' : 'warn',
        `container ${this.plan.name} exited (${signal ? `signal ${signal}` : `code ${exitCode}`}) after ${ranMs} ms`,
      );
    if (this.plan.role === 'init' && exitCode === 0) {
      for (const w of this.completionWaiters.splice(0)) w(true);
      this.deps.onChange();
      return;
    }
    const restart =
      !this.stopping &&
      (this.restartPolicy === 'Always' ||
        this.plan.role === 'sidecar' ||
        (this.restartPolicy === 'OnFailure' && exitCode !== 0));
    if (!restart) {
      this.deps.onChange();
      return;
    }
    const decision = onCrash(this.crashes, ranMs, this.deps.backoff ?? CONTAINER_BACKOFF);
    this.crashes = decision.state;
    const delay = decision.delayMs;
    this.lastTerminated = terminated;
    this.restartCount++;
    this.state = {
      kind: 'waiting',
      reason: 'CrashLoopBackOff',
      message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${this.plan.name} pod=${this.deps.podName}`,
    };
    this.deps.onChange();
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.start();
    }, delay);
  }

  /** Sets the container waiting with a reason (a container that cannot be created). */
  static waitingObservation(
    plan: { name: string; role: ContainerObserved['role']; image: string },
    reason: string,
    message: string,
  ): ContainerObserved {
    return {
      name: plan.name,
      role: plan.role,
      image: plan.image,
      state: { kind: 'waiting', reason, message },
      started: false,
      ready: false,
      restartCount: 0,
    };
  }

  private signal(sig: NodeJS.Signals): void {
    if (this.child) signalGroup(this.child, sig);
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** No more restarts or probes; pending waiters give up. */
  beginStop(): void {
    this.stopping = true;
    this.clearTimers();
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    for (const w of this.completionWaiters.splice(0)) w(false);
  }

  /** SIGTERM, then SIGKILL at `deadlineMs` (a Date.now() value); resolves when the process is gone. */
  async terminate(deadlineMs: number): Promise<void> {
    this.beginStop();
    if (!this.child) return;
    this.signal('SIGTERM');
    const left = Math.max(0, deadlineMs - Date.now());
    const t = setTimeout(() => this.signal('SIGKILL'), left);
    await this.exited;
    clearTimeout(t);
  }

  kill(): void {
    this.beginStop();
    this.signal('SIGKILL');
  }
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return os.constants.signals[sig];
}
