/**
 * One pod as local processes, in the order the kubelet keeps: the sandbox (the pod's own network and mount
 * namespaces), then the init containers one at a time (a native sidecar — `restartPolicy: Always` — counts
 * as done once it has started, and keeps running), then the main containers together. Stopping runs each
 * main container's preStop hook, then SIGTERM, then stops the sidecars in reverse order, all within the
 * pod's grace period, and SIGKILLs what is left at its end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { ContainerRunner, type ContainerDeps } from './container-runner';
import { runAction } from './pod-actions';
import { isPlanError, type ContainerError, type PodPlan } from './pod-plan';
import type { ContainerObserved } from './pod-status';
import type { SandboxControl, SandboxReport, SandboxRoute } from './sandbox-control';

export interface PodRunnerDeps extends Omit<ContainerDeps, 'sandboxPid' | 'ingressPath'> {
  sandboxScript: string;
  /** The pod's ingress socket path (the sandbox creates it; keep it short: Unix socket paths max 107 bytes). */
  ingressPath: string;
  /** Ports inside the pod relayed to Unix sockets the agent serves (the broker). */
  egress: ReadonlyArray<{ port: number; socketPath: string }>;
  /** Folders the sandbox mounts a tmpfs on (emptyDir volumes with medium Memory). */
  tmpfsDirs?: readonly string[];
  /** How long the sandbox may take to report ready. */
  sandboxTimeoutMs?: number;
  /** The file the sandbox binds on /etc/hosts (the agent rewrites it in place). */
  hostsFile?: string;
  /** The pod's hostname (its own UTS namespace). */
  hostname?: string;
  /** The agent's routes socket, and the pod's routes when it starts (cluster/sandbox-control.ts). */
  routesSocket?: string;
  routes?: readonly SandboxRoute[];
  /** Each answer of the sandbox to a routes change. */
  onRoutes?(report: SandboxReport): void;
}

export class PodRunner {
  private sandbox: ChildProcess | undefined;
  private sandboxReady = false;
  private readonly runners: ContainerRunner[] = [];
  private readonly errors: ContainerError[] = [];
  private stopping = false;
  private routes: readonly SandboxRoute[];

  constructor(
    readonly plan: PodPlan,
    private readonly deps: PodRunnerDeps,
  ) {
    this.routes = deps.routes ?? [];
    const cdeps: ContainerDeps = { ...deps, sandboxPid: () => this.sandbox?.pid ?? 0, ingressPath: deps.ingressPath };
    for (const c of plan.containers) {
      if (isPlanError(c)) this.errors.push(c);
      else this.runners.push(new ContainerRunner(c, cdeps, plan.restartPolicy));
    }
  }

  observed(): { sandboxReady: boolean; containers: ContainerObserved[] } {
    const byName = new Map<string, ContainerObserved>();
    for (const r of this.runners) byName.set(r.name, r.observed());
    for (const e of this.errors) byName.set(e.name, ContainerRunner.waitingObservation(e, e.reason, e.message));
    return { sandboxReady: this.sandboxReady, containers: this.plan.containers.map((c) => byName.get(c.name)!) };
  }

  /** Starts the sandbox and the containers; resolves once the main containers are started (or it stopped). */
  async start(): Promise<void> {
    await this.startSandbox();
    if (this.stopping) return;
    for (const c of this.plan.containers) {
      if (c.role === 'main') continue;
      if (isPlanError(c)) {
        this.deps.report('warn', `init container ${c.name} cannot start: ${c.message}`);
        return; // the pod stays Pending at this init container, as on a kubelet
      }
      const runner = this.runners.find((r) => r.name === c.name)!;
      runner.start();
      if (c.role === 'sidecar') await runner.whenStarted();
      else if (!(await runner.whenCompleted())) return;
      if (this.stopping) return;
    }
    for (const e of this.errors.filter((x) => x.role === 'main'))
      this.deps.report('warn', `container ${e.name} cannot start: ${e.message}`);
    for (const r of this.runners.filter((x) => x.plan.role === 'main')) r.start();
  }

  /** Tells the running sandbox the pod's routes (the full set); its answer comes to `onRoutes`. */
  setRoutes(routes: readonly SandboxRoute[]): void {
    this.routes = routes; // a sandbox not started yet gets these first
    const s = this.sandbox;
    if (!s || s.exitCode !== null || s.signalCode !== null || !s.stdin?.writable) return;
    const control: SandboxControl = { routes: [...routes] };
    s.stdin.write(`${JSON.stringify(control)}\n`);
  }

  private startSandbox(): Promise<void> {
    const d = this.deps;
    const args = [
      '--mount',
      '--net',
      '--uts',
      '--',
      process.execPath,
      d.sandboxScript,
      d.ingressPath,
      ...(d.tmpfsDirs ?? []).map((dir) => `--tmpfs=${dir}`),
      ...(d.hostsFile ? [`--hosts=${d.hostsFile}`] : []),
      ...(d.hostname ? [`--hostname=${d.hostname}`] : []),
      ...(d.routesSocket ? [`--routes=${d.routesSocket}`] : []),
      ...d.egress.map((e) => `${e.port}=${e.socketPath}`),
    ];
    const child = spawn('unshare', args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.sandbox = child;
    if (child.pid !== undefined) this.deps.groups?.added(child.pid);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    child.stdin!.on('error', () => undefined);
    // The first routes go before the sandbox reports ready (it waits for them).
    this.setRoutes(this.routes);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `the pod sandbox did not start within ${this.deps.sandboxTimeoutMs ?? 10_000} ms: ${stderr.trim()}`,
            ),
          ),
        this.deps.sandboxTimeoutMs ?? 10_000,
      );
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === 'ready') {
          if (this.sandboxReady) return;
          clearTimeout(timer);
          this.sandboxReady = true;
          this.deps.onChange();
          resolve();
        } else if (line.startsWith('{')) {
          try {
            this.deps.onRoutes?.(JSON.parse(line) as SandboxReport);
          } catch {
            // not a report: ignored
          }
        }
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot start the pod sandbox (unshare --mount --net --uts): ${err.message}`));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (child.pid !== undefined) this.deps.groups?.removed(child.pid);
        const was = this.sandboxReady;
        this.sandboxReady = false;
        if (!was) {
          reject(
            new Error(
              `the pod sandbox exited (code ${String(code)}): ${stderr.trim() || 'no output'}; fnmesh cluster needs root to give each pod its own network, mount and UTS namespaces (unshare --mount --net --uts)`,
            ),
          );
          return;
        }
        if (!this.stopping) {
          this.deps.report(
            'warn',
            `the pod sandbox exited unexpectedly (code ${String(code)}); stopping the pod's containers`,
          );
          for (const r of this.runners) r.kill();
          this.deps.onChange();
        }
      });
    });
  }

  /** The graceful stop of a deleted pod, within `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const deadline = Date.now() + graceMs;
    for (const r of this.runners) r.beginStop();
    const mains = this.runners.filter((r) => r.plan.role === 'main');
    await Promise.all(
      mains.map(async (r) => {
        const hook = r.plan.preStop;
        if (hook && r.running) {
          const left = Math.max(0, deadline - Date.now());
          const res = await runAction(
            {
              ingressPath: this.deps.ingressPath,
              sandboxPid: this.sandbox?.pid ?? 0,
              ...(r.pid !== undefined ? { containerPid: r.pid } : {}),
              env: r.plan.env,
              cwd: r.plan.cwd,
            },
            hook,
            left,
          );
          if (!res.ok) this.deps.report('warn', `container ${r.name}: preStop hook failed: ${res.detail}`);
        }
        await r.terminate(deadline);
      }),
    );
    // Plain init containers still running, then the sidecars in reverse order (they outlive the main ones).
    await Promise.all(this.runners.filter((r) => r.plan.role === 'init').map((r) => r.terminate(deadline)));
    for (const r of this.runners.filter((x) => x.plan.role === 'sidecar').reverse()) {
      // Like the kubelet, a sidecar gets at least 2 s even when the main containers used the grace period up.
      await r.terminate(Math.max(deadline, Date.now() + 2_000));
    }
    this.stopSandbox();
    this.deps.onChange();
  }

  /** Everything at once, now (the agent is shutting down hard, or the pod was force-deleted). */
  kill(): void {
    this.stopping = true;
    for (const r of this.runners) r.kill();
    this.stopSandbox();
  }

  private stopSandbox(): void {
    const s = this.sandbox;
    if (!s || s.exitCode !== null || s.signalCode !== null) return;
    s.stdin?.end();
    s.kill('SIGTERM');
  }
}
