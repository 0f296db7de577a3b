/**
 * The sidecar's configuration: read once from env through its settings table (settings.ts) into a typed
 * object. A bad value stops the process at start with a ConfigError naming the variable and what it accepts.
 */
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../common/errors';
import { readSettings, type Env, type ListenAddress } from '../common/config';
import type { LogLevel } from '../common/log-levels';
import { natsClientCredentials, type NatsClientCredentials } from '../common/nats-client-settings';
import type { OutlierDetectionPolicy } from '../common/resilience';
import { resolveOutlierDetection } from '../common/resilience';
import { SIDECAR_SETTINGS } from './settings';

export { SIDECAR_SETTINGS, isLoopbackHost } from './settings';
export type { ListenAddress } from '../common/config';

export interface SidecarConfig {
  namespace: string;
  service: string;
  /** Declared function names (for discovery); empty when not declared. */
  functions: string[];
  natsServers: string[];
  natsToken?: string;
  natsUser?: string;
  natsPassword?: string;
  /** The `.creds` file and TLS files (FNMESH_NATS_CREDS, FNMESH_NATS_TLS_*). */
  natsClient?: NatsClientCredentials;
  /** The function serves HTTP on 127.0.0.1:functionPort. */
  functionPort: number;
  healthPath: string;
  concurrency: number;
  /** Calls that may wait for a concurrency slot (FIFO). */
  queueLength: number;
  outlierDetection: OutlierDetectionPolicy;
  /** Budget for a message that carries no Fnmesh-Timeout-Ms, and for call API calls with no budget. */
  timeoutMs: number;
  opsListen: ListenAddress;
  callListen: ListenAddress;
  drainTimeoutMs: number;
  /** Quiet time after the last call before one heap compaction (idle-gc.ts); 0 = never. */
  idleGcMs: number;
  replicaId: string;
  logLevel: LogLevel;
}

export function randomReplicaId(): string {
  return randomBytes(9).toString('base64url');
}

export function loadSidecarConfig(env: Env): SidecarConfig {
  const s = readSettings(env, SIDECAR_SETTINGS);
  if (s.natsPassword && !s.natsUser)
    throw new ConfigError('FNMESH_NATS_PASSWORD is set but FNMESH_NATS_USER is not: set both or neither');
  const config: SidecarConfig = {
    namespace: s.namespace,
    service: s.service,
    functions: s.functions ?? [],
    natsServers: s.natsUrl,
    functionPort: s.functionPort,
    healthPath: s.healthPath,
    concurrency: s.concurrency,
    queueLength: s.queueLength,
    outlierDetection: s.outlierDetection ?? resolveOutlierDetection(undefined),
    timeoutMs: s.timeoutMs,
    opsListen: s.opsListen,
    callListen: s.callListen,
    drainTimeoutMs: s.drainTimeoutMs,
    idleGcMs: s.idleGcMs,
    replicaId: s.replicaId ?? randomReplicaId(),
    logLevel: s.logLevel,
  };
  if (s.natsToken) config.natsToken = s.natsToken;
  if (s.natsUser) config.natsUser = s.natsUser;
  if (s.natsPassword) config.natsPassword = s.natsPassword;
  const natsClient = natsClientCredentials(s);
  if (natsClient.credsFile || natsClient.tls) config.natsClient = natsClient;
  return config;
}
