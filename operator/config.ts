/**
 * The operator's configuration: read once from env into a typed object. A bad value stops the process at
 * start with a ConfigError naming the variable and what it accepts. The `sidecar` part is everything the
 * operator needs to build the injected sidecar container (desired-deployment.ts).
 *
 * Throughput settings: FNMESH_CONCURRENT_RECONCILES (16) FunctionServices reconciled at once, over at most
 * FNMESH_KUBE_API_CONNECTIONS (16) keep-alive connections to the API server (watches use their own);
 * FNMESH_STATUS_PROGRESS_INTERVAL_MS (5000) paces in-progress status updates (status-pacing.ts: Ready,
 * failures and other real transitions are written at once); FNMESH_RESYNC_MS (300000) reconciles every
 * FunctionService again this often.
 */
import { ConfigError } from '../common/errors';
import { KUBECONFIG_VAR } from '../common/kube-access';
import { DNS_LABEL, NAME_RULES } from '../common/names';
import {
  readBool,
  readInt,
  readListen,
  readLogLevel,
  readNatsServers,
  readString,
  requireString,
  type Env,
} from '../common/config';
import type { LogLevel } from '../common/logger';

export interface SecretKeyRef {
  name: string;
  key: string;
}

/** Resource quantities as Kubernetes takes them (`50m`, `64Mi`); an absent one is not set. */
export interface QuantityPair {
  cpu?: string;
  memory?: string;
}

export interface SidecarTemplateConfig {
  image: string;
  /** What sidecars connect to (comma-separated NATS URLs), passed as FNMESH_NATS_URL. */
  natsUrl: string;
  /** Secret key holding the NATS token, passed as FNMESH_NATS_TOKEN through a secretKeyRef. */
  natsTokenSecret?: SecretKeyRef;
  resources: { requests: QuantityPair; limits: QuantityPair };
  opsPort: number;
  callPort: number;
  /** How long a stopping sidecar lets in-flight calls finish; the pod's grace period is longer. */
  drainTimeoutMs: number;
}

export interface LeaderElectionConfig {
  enabled: boolean;
  leaseName: string;
  leaseNamespace: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface OperatorConfig {
  sidecar: SidecarTemplateConfig;
  /** FNMESH_KUBECONFIG; absent: KUBECONFIG, ~/.kube/config or in-cluster (common/kubeconfig.ts). */
  kubeconfig?: string;
  /** Only this namespace is watched; all namespaces when undefined. */
  watchNamespace?: string;
  listen: { host: string; port: number };
  leaderElection: LeaderElectionConfig;
  concurrentReconciles: number;
  /** Persistent connections to the API server for requests (watches have their own). */
  apiConnections: number;
  resyncMs: number;
  /** In-progress status updates are written at most this often per FunctionService (status-pacing.ts). */
  statusProgressIntervalMs: number;
  logLevel: LogLevel;
}

/** A Kubernetes resource quantity: a decimal number with an optional SI or binary suffix. */
const QUANTITY = /^(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][-+]?\d+)?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/** A quantity, `fallback` when unset, and undefined (not set at all) when the value is `none`. */
function readQuantity(env: Env, name: string, fallback: string | undefined): string | undefined {
  const v = readString(env, name);
  if (v === undefined) return fallback;
  if (v.toLowerCase() === 'none') return undefined;
  if (!QUANTITY.test(v)) {
    throw new ConfigError(
      `${name}="${v}" is not valid: it accepts a Kubernetes quantity such as 50m, 0.5, 64Mi or 1Gi, or "none" for no value`,
    );
  }
  return v;
}

function readSecretKeyRef(env: Env, name: string): SecretKeyRef | undefined {
  const v = readString(env, name);
  if (v === undefined) return undefined;
  const parts = v.split('/');
  const [secret, key] = parts;
  if (
    parts.length !== 2 ||
    !secret ||
    !key ||
    !DNS_SUBDOMAIN.test(secret) ||
    secret.length > 253 ||
    !SECRET_KEY.test(key)
  ) {
    throw new ConfigError(
      `${name}="${v}" is not valid: it accepts SECRET/KEY, a Secret name and a key in it, such as nats-auth/token`,
    );
  }
  return { name: secret, key };
}

function readDnsLabel(env: Env, name: string, fallback: string): string {
  const v = readString(env, name, fallback);
  if (!DNS_LABEL.test(v)) throw new ConfigError(`${name}="${v}" is not valid: it accepts ${NAME_RULES.namespace}`);
  return v;
}

function readSidecar(env: Env): SidecarTemplateConfig {
  const image = requireString(env, 'FNMESH_SIDECAR_IMAGE', 'the sidecar image, such as ghcr.io/fnmesh/fnmesh:0.1.0');
  if (/\s/.test(image))
    throw new ConfigError(`FNMESH_SIDECAR_IMAGE="${image}" is not valid: it accepts an image reference without spaces`);
  const servers = readNatsServers(env, 'FNMESH_SIDECAR_NATS_URL');
  if (!servers || servers.length === 0) {
    throw new ConfigError(
      'FNMESH_SIDECAR_NATS_URL is required: set it to the NATS URLs sidecars connect to, such as nats://nats.fnmesh-system:4222',
    );
  }
  const opsPort = readInt(env, 'FNMESH_SIDECAR_OPS_PORT', 9090, { min: 1, max: 65535 });
  const callPort = readInt(env, 'FNMESH_SIDECAR_CALL_PORT', 3500, { min: 1, max: 65535 });
  if (opsPort === callPort) {
    throw new ConfigError(
      `FNMESH_SIDECAR_OPS_PORT and FNMESH_SIDECAR_CALL_PORT are both ${opsPort}: the sidecar needs two different ports`,
    );
  }
  const requests: QuantityPair = {};
  const limits: QuantityPair = {};
  const cpuRequest = readQuantity(env, 'FNMESH_SIDECAR_CPU_REQUEST', '50m');
  const memoryRequest = readQuantity(env, 'FNMESH_SIDECAR_MEMORY_REQUEST', '64Mi');
  const cpuLimit = readQuantity(env, 'FNMESH_SIDECAR_CPU_LIMIT', undefined);
  const memoryLimit = readQuantity(env, 'FNMESH_SIDECAR_MEMORY_LIMIT', '128Mi');
  if (cpuRequest) requests.cpu = cpuRequest;
  if (memoryRequest) requests.memory = memoryRequest;
  if (cpuLimit) limits.cpu = cpuLimit;
  if (memoryLimit) limits.memory = memoryLimit;
  const sidecar: SidecarTemplateConfig = {
    image,
    natsUrl: servers.join(','),
    resources: { requests, limits },
    opsPort,
    callPort,
    drainTimeoutMs: readInt(env, 'FNMESH_SIDECAR_DRAIN_TIMEOUT_MS', 30_000, { min: 0, max: 3_600_000 }),
  };
  const tokenSecret = readSecretKeyRef(env, 'FNMESH_SIDECAR_NATS_TOKEN_SECRET');
  if (tokenSecret) sidecar.natsTokenSecret = tokenSecret;
  return sidecar;
}

function readLeaderElection(env: Env): LeaderElectionConfig {
  const leaseName = readString(env, 'FNMESH_LEASE_NAME', 'fnmesh-operator');
  if (!DNS_SUBDOMAIN.test(leaseName) || leaseName.length > 253) {
    throw new ConfigError(
      `FNMESH_LEASE_NAME="${leaseName}" is not valid: it accepts a DNS subdomain name such as fnmesh-operator`,
    );
  }
  const leaseNamespace = readDnsLabel(env, 'FNMESH_LEASE_NAMESPACE', readString(env, 'POD_NAMESPACE', 'fnmesh-system'));
  const leaseDurationMs = readInt(env, 'FNMESH_LEASE_DURATION_MS', 15_000, { min: 1000, max: 3_600_000 });
  const renewDeadlineMs = readInt(env, 'FNMESH_RENEW_DEADLINE_MS', 10_000, { min: 1, max: 3_600_000 });
  const retryPeriodMs = readInt(env, 'FNMESH_RETRY_PERIOD_MS', 2_000, { min: 1, max: 3_600_000 });
  // The same constraints client-go's leader election enforces: a leader gives up before its lease can
  // expire, and tries to renew more than once before it gives up.
  if (renewDeadlineMs >= leaseDurationMs) {
    throw new ConfigError(
      `FNMESH_RENEW_DEADLINE_MS (${renewDeadlineMs}) must be less than FNMESH_LEASE_DURATION_MS (${leaseDurationMs}), ` +
        'or a leader could keep working after its lease expired and another replica took it',
    );
  }
  if (retryPeriodMs * 1.2 >= renewDeadlineMs) {
    throw new ConfigError(
      `FNMESH_RETRY_PERIOD_MS (${retryPeriodMs}) is too long for FNMESH_RENEW_DEADLINE_MS (${renewDeadlineMs}): ` +
        'the retry period times 1.2 must be less than the renew deadline, so a leader retries a failed renewal before it gives up',
    );
  }
  return {
    enabled: readBool(env, 'FNMESH_LEADER_ELECT', true),
    leaseName,
    leaseNamespace,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
  };
}

export function loadOperatorConfig(env: Env): OperatorConfig {
  const config: OperatorConfig = {
    sidecar: readSidecar(env),
    listen: readListen(env, 'FNMESH_OPERATOR_LISTEN', '0.0.0.0:8081'),
    leaderElection: readLeaderElection(env),
    concurrentReconciles: readInt(env, 'FNMESH_CONCURRENT_RECONCILES', 16, { min: 1, max: 1000 }),
    apiConnections: readInt(env, 'FNMESH_KUBE_API_CONNECTIONS', 16, { min: 1, max: 1000 }),
    resyncMs: readInt(env, 'FNMESH_RESYNC_MS', 300_000, { min: 0, max: 24 * 3600 * 1000 }),
    statusProgressIntervalMs: readInt(env, 'FNMESH_STATUS_PROGRESS_INTERVAL_MS', 5_000, { min: 0, max: 3_600_000 }),
    logLevel: readLogLevel(env),
  };
  const kubeconfig = readString(env, KUBECONFIG_VAR);
  if (kubeconfig !== undefined) config.kubeconfig = kubeconfig;
  const watchNamespace = readString(env, 'FNMESH_WATCH_NAMESPACE');
  if (watchNamespace !== undefined) {
    if (!DNS_LABEL.test(watchNamespace)) {
      throw new ConfigError(
        `FNMESH_WATCH_NAMESPACE="${watchNamespace}" is not valid: it accepts ${NAME_RULES.namespace}, or unset for all namespaces`,
      );
    }
    config.watchNamespace = watchNamespace;
  }
  return config;
}
