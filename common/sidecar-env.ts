/**
 * The sidecar's environment: the one contract between the sidecar (which reads it, sidecar/config.ts) and
 * whoever starts it (the operator's Deployment, the local mesh's processes). The variable names and the
 * function that builds the values from a FunctionService live here, so every writer sets the same variables
 * from the same fields. Light on purpose: no zod or yaml is loaded (the sidecar and the CLI import it).
 */
import { LOG_LEVEL_VAR } from './log-levels';
import { DEFAULT_FUNCTION } from './names';
import type { FunctionService } from './manifest';
import { NATS_CLIENT_ENV, type NatsTlsFiles } from './nats-client-settings';

/** Every variable the sidecar reads, by the setting it carries. */
export const SIDECAR_ENV = {
  namespace: 'FNMESH_NAMESPACE',
  service: 'FNMESH_SERVICE',
  functions: 'FNMESH_FUNCTIONS',
  natsUrl: 'FNMESH_NATS_URL',
  natsToken: 'FNMESH_NATS_TOKEN',
  natsUser: 'FNMESH_NATS_USER',
  natsPassword: 'FNMESH_NATS_PASSWORD',
  natsCreds: NATS_CLIENT_ENV.creds,
  natsTlsCa: NATS_CLIENT_ENV.tlsCa,
  natsTlsCert: NATS_CLIENT_ENV.tlsCert,
  natsTlsKey: NATS_CLIENT_ENV.tlsKey,
  functionPort: 'FNMESH_FUNCTION_PORT',
  healthPath: 'FNMESH_HEALTH_PATH',
  concurrency: 'FNMESH_CONCURRENCY',
  queueLength: 'FNMESH_QUEUE_LENGTH',
  /** JSON of the manifest's `spec.outlierDetection` (fields left out take common/resilience.ts's defaults). */
  outlierDetection: 'FNMESH_OUTLIER_DETECTION',
  timeoutMs: 'FNMESH_TIMEOUT_MS',
  opsListen: 'FNMESH_OPS_LISTEN',
  callListen: 'FNMESH_CALL_LISTEN',
  drainTimeoutMs: 'FNMESH_DRAIN_TIMEOUT_MS',
  idleGcMs: 'FNMESH_IDLE_GC_MS',
  replicaId: 'FNMESH_REPLICA_ID',
  logLevel: LOG_LEVEL_VAR,
} as const;

export type SidecarEnvName = (typeof SIDECAR_ENV)[keyof typeof SIDECAR_ENV];

/** The sidecar's ops port (probes, metrics, /drain) when its starter sets none. */
export const DEFAULT_SIDECAR_OPS_PORT = 9090;

/** How long a stopping sidecar waits for its in-flight calls when its starter sets no drain timeout. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/**
 * Where a value comes from: a literal, or (in a pod) a field of the pod or a key of a Secret, resolved by
 * the kubelet.
 */
export type SidecarEnvValue = string | { fieldPath: string } | { secretKeyRef: { name: string; key: string } };

export interface SidecarEnvEntry {
  name: SidecarEnvName;
  value: SidecarEnvValue;
}

/** Where one replica's sidecar runs: what its starter decides, as opposed to what the manifest says. */
export interface SidecarPlacement {
  natsUrl: string;
  /** The port the function listens on; the manifest's `spec.port` when not given (a pod). */
  functionPort?: number;
  /** host:port of the ops server (probes, metrics, /drain). */
  opsListen: string;
  /** host:port (loopback) of the call API the function calls other functions through. */
  callListen: string;
  drainTimeoutMs: number;
  natsToken?: SidecarEnvValue;
  /** Path of the replica's `.creds` file (in a pod: where its Secret is mounted). */
  natsCredsFile?: string;
  natsTls?: NatsTlsFiles;
  replicaId?: SidecarEnvValue;
  logLevel?: string;
}

/** The functions a sidecar announces (FNMESH_FUNCTIONS): every declared one but the `default` rule holder. */
export function declaredFunctions(fs: Pick<FunctionService, 'spec'>): string[] {
  return fs.spec.functions.map((f) => f.name).filter((n) => n !== DEFAULT_FUNCTION);
}

/** The sidecar's environment for one replica of `fs`, in a fixed order (the operator's output is deterministic). */
export function sidecarEnv(fs: Pick<FunctionService, 'metadata' | 'spec'>, where: SidecarPlacement): SidecarEnvEntry[] {
  const spec = fs.spec;
  const env: SidecarEnvEntry[] = [
    { name: SIDECAR_ENV.namespace, value: fs.metadata.namespace },
    { name: SIDECAR_ENV.service, value: fs.metadata.name },
    { name: SIDECAR_ENV.functions, value: declaredFunctions(fs).join(',') },
    { name: SIDECAR_ENV.natsUrl, value: where.natsUrl },
  ];
  if (where.natsToken !== undefined) env.push({ name: SIDECAR_ENV.natsToken, value: where.natsToken });
  if (where.natsCredsFile !== undefined) env.push({ name: SIDECAR_ENV.natsCreds, value: where.natsCredsFile });
  const tls = where.natsTls ?? {};
  if (tls.caFile !== undefined) env.push({ name: SIDECAR_ENV.natsTlsCa, value: tls.caFile });
  if (tls.certFile !== undefined) env.push({ name: SIDECAR_ENV.natsTlsCert, value: tls.certFile });
  if (tls.keyFile !== undefined) env.push({ name: SIDECAR_ENV.natsTlsKey, value: tls.keyFile });
  env.push(
    { name: SIDECAR_ENV.functionPort, value: String(where.functionPort ?? spec.port) },
    { name: SIDECAR_ENV.healthPath, value: spec.healthPath },
    { name: SIDECAR_ENV.concurrency, value: String(spec.concurrency) },
    { name: SIDECAR_ENV.queueLength, value: String(spec.queueLength) },
    { name: SIDECAR_ENV.timeoutMs, value: String(spec.timeoutMs) },
    { name: SIDECAR_ENV.opsListen, value: where.opsListen },
    { name: SIDECAR_ENV.callListen, value: where.callListen },
    { name: SIDECAR_ENV.drainTimeoutMs, value: String(where.drainTimeoutMs) },
  );
  if (spec.outlierDetection !== undefined)
    env.push({ name: SIDECAR_ENV.outlierDetection, value: JSON.stringify(spec.outlierDetection) });
  if (where.replicaId !== undefined) env.push({ name: SIDECAR_ENV.replicaId, value: where.replicaId });
  if (where.logLevel !== undefined) env.push({ name: SIDECAR_ENV.logLevel, value: where.logLevel });
  return env;
}

/** The entries as a process environment; every value must be a literal (no pod field or Secret to resolve). */
export function literalEnv(entries: readonly { name: string; value: SidecarEnvValue }[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { name, value } of entries) {
    if (typeof value !== 'string')
      throw new Error(`${name} refers to a pod field or a Secret; a process needs a value`);
    out[name] = value;
  }
  return out;
}
