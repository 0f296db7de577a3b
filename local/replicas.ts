/**
 * The local mesh's replicas as processes: each is a function process and a sidecar process, supervised,
 * on free local ports, polled until the sidecar says ready, and stopped sidecar first (it drains its calls).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Prefixer } from '../common/process/log-prefix';
import { freePort } from '../common/process/ports';
import { Supervisor, describeExit } from '../common/process/supervisor';
import type { AppliedReplica, ReplicaOps } from './applier';
import { replicaId, type ServicePlan } from './plan';
import { drainTimeoutMs, functionProcessEnv, sidecarProcessEnv, type ReplicaEnvOptions } from './replica-env';

export interface LocalReplica extends AppliedReplica {
  fnPort: number;
  opsPort: number;
  callPort: number;
  fn: Supervisor;
  sc: Supervisor;
  ready: boolean;
  pollGeneration: number;
  stopping: boolean;
}

export interface LocalReplicasOptions {
  prefixer: Prefixer;
  say(message: string): void;
  /** The checkout the sidecar runs from (`bin/fnmesh.js sidecar`). */
  root: string;
  env: ReplicaEnvOptions;
  /** The `.creds` file of a service's NATS user; absent: the sidecars connect without one. */
  natsCreds?: (plan: ServicePlan) => Promise<string>;
}

const usedPorts = new Set<number>();
async function allocatePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (!usedPorts.has(p)) {
      usedPorts.add(p);
      return p;
    }
  }
  throw new Error('cannot find a free local port');
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class LocalReplicas implements ReplicaOps<LocalReplica> {
  private closed = false;

  constructor(private readonly options: LocalReplicasOptions) {}

  /** The mesh is stopping: readiness polls and waits give up. */
  close(): void {
    this.closed = true;
  }

  async start(plan: ServicePlan, index: number): Promise<LocalReplica> {
    const { prefixer, say, root, env } = this.options;
    const id = replicaId(plan, index);
    const [fnPort, opsPort, callPort] = [await allocatePort(), await allocatePort(), await allocatePort()];
    const natsCredsFile = this.options.natsCreds ? await this.options.natsCreds(plan) : undefined;
    const placement = {
      ...env,
      plan,
      id,
      ports: { fnPort, opsPort, callPort },
      ...(natsCredsFile ? { natsCredsFile } : {}),
    };
    const [program, ...args] = plan.command;
    const fnLabel = `${id} fn`;
    const scLabel = `${id} sc`;
    const report = (level: 'info' | 'warn' | 'error', message: string): void =>
      say(level === 'info' ? message : `${level === 'warn' ? 'warning' : 'error'}: ${message}`);
    const r: LocalReplica = {
      key: plan.key,
      index,
      id,
      plan,
      fnPort,
      opsPort,
      callPort,
      ready: false,
      pollGeneration: 0,
      stopping: false,
      fn: new Supervisor({
        label: fnLabel,
        command: program === 'node' ? process.execPath : program!,
        args,
        cwd: plan.cwd,
        env: functionProcessEnv(placement),
        stdout: prefixer.splitter(fnLabel, plan.key),
        stderr: prefixer.splitter(fnLabel, plan.key),
        report,
        graceMs: 5_000,
        onStart: () => this.pollReady(r),
      }),
      sc: new Supervisor({
        label: scLabel,
        command: process.execPath,
        args: [path.join(root, 'bin', 'fnmesh.js'), 'sidecar'],
        cwd: root,
        env: sidecarProcessEnv(placement),
        stdout: prefixer.splitter(scLabel, plan.key),
        stderr: prefixer.splitter(scLabel, plan.key),
        report,
        graceMs: drainTimeoutMs(plan) + 5_000,
        onStart: () => this.pollReady(r),
      }),
    };
    if (!existsSync(plan.cwd))
      say(`warning: ${id}: spec.local.cwd ${plan.cwd} does not exist (manifest ${plan.manifestFile ?? '?'})`);
    r.fn.start();
    r.sc.start();
    return r;
  }

  async waitReady(r: LocalReplica, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!r.ready && Date.now() < deadline && !this.closed) await sleep(50);
    return r.ready;
  }

  async stop(r: LocalReplica): Promise<void> {
    const { say } = this.options;
    r.stopping = true;
    const sc = await r.sc.stop('SIGTERM');
    say(`${r.id} sidecar exited (${describeExit(sc)}); stopping its function`);
    await r.fn.stop('SIGTERM');
    usedPorts.delete(r.fnPort);
    usedPorts.delete(r.opsPort);
    usedPorts.delete(r.callPort);
    say(`${r.id} stopped`);
  }

  /** Polls the sidecar's /readyz until it answers 200; says so once per (re)start. */
  private pollReady(r: LocalReplica): void {
    r.ready = false;
    const generation = ++r.pollGeneration;
    void (async () => {
      while (!r.stopping && !this.closed && generation === r.pollGeneration) {
        try {
          const res = await fetch(`http://127.0.0.1:${r.opsPort}/readyz`, { signal: AbortSignal.timeout(1_000) });
          await res.arrayBuffer();
          if (res.status === 200) {
            if (generation !== r.pollGeneration || r.stopping) return;
            r.ready = true;
            this.options.say(
              `${r.id} ready (function pid ${r.fn.pid ?? '-'}, sidecar pid ${r.sc.pid ?? '-'}, sidecar ops http://127.0.0.1:${r.opsPort})`,
            );
            return;
          }
        } catch {
          // not up yet
        }
        await sleep(100);
      }
    })();
  }
}
