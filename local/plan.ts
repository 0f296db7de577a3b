/**
 * The local mesh's decisions, free of I/O: which replicas the manifests ask for, and which actions turn
 * the running set into that (start, stop, restart). `mesh.ts` carries the actions out.
 */
import path from 'node:path';
import { serviceKey, type FunctionService } from '../common/manifest';

/** A manifest and the file it came from (relative paths in `spec.local` are relative to that file's folder). */
export interface SourcedService {
  service: FunctionService;
  /** Absolute path of the manifest file, when known. */
  file?: string;
}

/** Everything one replica of a service is started from; two equal fingerprints mean "no restart needed". */
export interface ServicePlan {
  key: string;
  /** The manifest the plan was made from (the sidecar's environment is built from it). */
  manifest: FunctionService;
  namespace: string;
  service: string;
  replicas: number;
  /** Argv of the function process; the first element is the program. */
  command: string[];
  /** Absolute working directory of the function process. */
  cwd: string;
  env: Record<string, string>;
  functions: string[];
  /** The manifest's port (in a pod); locally each replica gets a free port instead, but a change restarts. */
  port: number;
  healthPath: string;
  concurrency: number;
  timeoutMs: number;
  manifestFile?: string;
  fingerprint: string;
}

export interface SkippedService {
  key: string;
  reason: string;
}

export interface DesiredState {
  services: Map<string, ServicePlan>;
  skipped: SkippedService[];
}

export const NO_LOCAL_COMMAND = 'no spec.local.command: fnmesh local cannot start it; it only gets its rules';

/** The desired state from the current manifests. `baseDir` resolves cwd when a manifest's file is unknown. */
export function desiredState(sourced: SourcedService[], baseDir: string): DesiredState {
  const services = new Map<string, ServicePlan>();
  const skipped: SkippedService[] = [];
  for (const { service: fs, file } of sourced) {
    const key = serviceKey(fs);
    const spec = fs.spec;
    if (!spec.local) {
      skipped.push({ key, reason: NO_LOCAL_COMMAND });
      continue;
    }
    const manifestDir = file ? path.dirname(path.resolve(file)) : path.resolve(baseDir);
    const cwd = path.resolve(manifestDir, spec.local.cwd ?? '.');
    const env = { ...(spec.local.env ?? {}) };
    const functions = spec.functions.map((f) => f.name);
    const fingerprintOf = {
      command: spec.local.command,
      cwd,
      env: Object.keys(env)
        .sort()
        .map((k) => [k, env[k]]),
      functions,
      port: spec.port,
      healthPath: spec.healthPath,
      concurrency: spec.concurrency,
      queueLength: spec.queueLength,
      outlierDetection: spec.outlierDetection ?? null,
      timeoutMs: spec.timeoutMs,
    };
    services.set(key, {
      key,
      manifest: fs,
      namespace: fs.metadata.namespace,
      service: fs.metadata.name,
      replicas: spec.replicas,
      command: [...spec.local.command],
      cwd,
      env,
      functions,
      port: spec.port,
      healthPath: spec.healthPath,
      concurrency: spec.concurrency,
      timeoutMs: spec.timeoutMs,
      manifestFile: file,
      fingerprint: JSON.stringify(fingerprintOf),
    });
  }
  return { services, skipped };
}

/** What runs now, per service key: each replica's index and the fingerprint it was started with. */
export type RunningState = Map<string, { index: number; fingerprint: string }[]>;

export type Action =
  | { type: 'start'; key: string; index: number }
  | { type: 'stop'; key: string; index: number }
  /** Stop the replica and start it again from the new plan (done one replica at a time per service). */
  | { type: 'restart'; key: string; index: number };

/**
 * Actions that make `running` match `desired`, in the order to run them: stops first (highest index
 * first, so scale-down removes the newest replicas), then starts, then restarts (lowest index first).
 */
export function diff(desired: Map<string, ServicePlan>, running: RunningState): Action[] {
  const stops: Action[] = [];
  const starts: Action[] = [];
  const restarts: Action[] = [];
  for (const [key, replicas] of running) {
    const plan = desired.get(key);
    const sorted = [...replicas].sort((a, b) => b.index - a.index);
    for (const r of sorted) {
      if (!plan || r.index >= plan.replicas) stops.push({ type: 'stop', key, index: r.index });
    }
  }
  for (const [key, plan] of desired) {
    const have = new Map((running.get(key) ?? []).map((r) => [r.index, r.fingerprint]));
    for (let index = 0; index < plan.replicas; index++) {
      const fingerprint = have.get(index);
      if (fingerprint === undefined) starts.push({ type: 'start', key, index });
      else if (fingerprint !== plan.fingerprint) restarts.push({ type: 'restart', key, index });
    }
  }
  return [...stops, ...starts, ...restarts];
}

/** `greeter-0`: the replica id a sidecar reports and the label its log lines carry. */
export function replicaId(plan: { namespace: string; service: string }, index: number): string {
  return plan.namespace === 'default' ? `${plan.service}-${index}` : `${plan.namespace}-${plan.service}-${index}`;
}
