/**
 * The sidecar's configuration: read once from env into a typed object. A bad value stops the process at
 * start with a ConfigError naming the variable and what it accepts.
 */
import { randomBytes } from 'node:crypto';
import {
  ConfigError,
  NAME_RULES,
  isFunctionName,
  isNamespaceName,
  isServiceName,
  readInt,
  readListen,
  readLogLevel,
  readNatsServers,
  readString,
  requireString,
  type Env,
  type LogLevel,
} from './common';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface SidecarConfig {
  namespace: string;
  service: string;
  /** Declared function names (for discovery); empty when not declared. */
  functions: string[];
  natsServers: string[];
  natsToken?: string;
  natsUser?: string;
  natsPassword?: string;
  /** The function serves HTTP on 127.0.0.1:functionPort. */
  functionPort: number;
  healthPath: string;
  concurrency: number;
  /** Budget for a message that carries no Fnmesh-Timeout-Ms, and for call API calls with no budget. */
  timeoutMs: number;
  opsListen: ListenAddress;
  callListen: ListenAddress;
  drainTimeoutMs: number;
  replicaId: string;
  logLevel: LogLevel;
}

const REPLICA_ID = /^[A-Za-z0-9_-]{1,128}$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function randomReplicaId(): string {
  return randomBytes(9).toString('base64url');
}

export function loadSidecarConfig(env: Env): SidecarConfig {
  const namespace = readString(env, 'FNMESH_NAMESPACE', 'default');
  if (!isNamespaceName(namespace)) {
    throw new ConfigError(`FNMESH_NAMESPACE="${namespace}" is not valid: it accepts ${NAME_RULES.namespace}`);
  }
  const service = requireString(env, 'FNMESH_SERVICE', `the service name, ${NAME_RULES.service}`);
  if (!isServiceName(service)) {
    throw new ConfigError(`FNMESH_SERVICE="${service}" is not valid: it accepts ${NAME_RULES.service}`);
  }
  const functions = (readString(env, 'FNMESH_FUNCTIONS') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const fn of functions) {
    if (!isFunctionName(fn)) {
      throw new ConfigError(
        `FNMESH_FUNCTIONS: "${fn}" is not a valid function name: it accepts ${NAME_RULES.function}`,
      );
    }
  }
  const natsServers = readNatsServers(env, 'FNMESH_NATS_URL');
  if (!natsServers || natsServers.length === 0) {
    throw new ConfigError('FNMESH_NATS_URL is required: set it to comma-separated NATS URLs such as nats://nats:4222');
  }
  const healthPath = readString(env, 'FNMESH_HEALTH_PATH', '/healthz');
  if (!healthPath.startsWith('/') || /\s/.test(healthPath)) {
    throw new ConfigError(
      `FNMESH_HEALTH_PATH="${healthPath}" is not valid: it accepts a URL path starting with "/", such as /healthz`,
    );
  }
  const callListen = readListen(env, 'FNMESH_CALL_LISTEN', '127.0.0.1:3500');
  if (!isLoopbackHost(callListen.host)) {
    throw new ConfigError(
      `FNMESH_CALL_LISTEN="${env.FNMESH_CALL_LISTEN ?? ''}" is not valid: the call API lets any caller act as this service, ` +
        'so it must listen on a loopback address only, such as 127.0.0.1:3500',
    );
  }
  const replicaId = readString(env, 'FNMESH_REPLICA_ID') ?? randomReplicaId();
  if (!REPLICA_ID.test(replicaId)) {
    throw new ConfigError(
      `FNMESH_REPLICA_ID="${replicaId}" is not valid: it accepts letters, digits, "-" and "_" (at most 128)`,
    );
  }
  const config: SidecarConfig = {
    namespace,
    service,
    functions,
    natsServers,
    functionPort: readInt(env, 'FNMESH_FUNCTION_PORT', 8080, { min: 1, max: 65535 }),
    healthPath,
    concurrency: readInt(env, 'FNMESH_CONCURRENCY', 64, { min: 1, max: 100_000 }),
    timeoutMs: readInt(env, 'FNMESH_TIMEOUT_MS', 10_000, { min: 1, max: 24 * 3600 * 1000 }),
    opsListen: readListen(env, 'FNMESH_OPS_LISTEN', '0.0.0.0:9090'),
    callListen,
    drainTimeoutMs: readInt(env, 'FNMESH_DRAIN_TIMEOUT_MS', 30_000, { min: 0, max: 24 * 3600 * 1000 }),
    replicaId,
    logLevel: readLogLevel(env),
  };
  const token = readString(env, 'FNMESH_NATS_TOKEN');
  const user = readString(env, 'FNMESH_NATS_USER');
  const password = readString(env, 'FNMESH_NATS_PASSWORD');
  if (token) config.natsToken = token;
  if (user) config.natsUser = user;
  if (password) config.natsPassword = password;
  if (password && !user)
    throw new ConfigError('FNMESH_NATS_PASSWORD is set but FNMESH_NATS_USER is not: set both or neither');
  return config;
}
