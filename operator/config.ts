/**
 * The operator's configuration: read once from env through its settings table (settings.ts) into a typed
 * object. A bad value stops the process at start with a ConfigError naming the variable and what it accepts.
 * The `sidecar` part is everything the operator needs to build the injected sidecar container
 * (desired-deployment.ts).
 */
import { ConfigError } from '../common/errors';
import { readSettings, type Env, type ListenAddress, type SettingValues } from '../common/config';
import type { LogLevel } from '../common/log-levels';
import { DEFAULT_LEASE_NAMESPACE, OPERATOR_SETTINGS, type SecretKeyRef } from './settings';

export { OPERATOR_SETTINGS, type SecretKeyRef } from './settings';

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
  /** Only this namespace is watched; all namespaces when undefined. */
  watchNamespace?: string;
  listen: ListenAddress;
  /** The kubeconfig to use; absent: KUBECONFIG, ~/.kube/config or the pod's service account. */
  kubeconfig?: string;
  leaderElection: LeaderElectionConfig;
  concurrentReconciles: number;
  /** Persistent connections to the API server for requests (watches have their own). */
  apiConnections: number;
  resyncMs: number;
  /** In-progress status updates are written at most this often per FunctionService (status-pacing.ts). */
  statusProgressIntervalMs: number;
  logLevel: LogLevel;
}

type Settings = SettingValues<typeof OPERATOR_SETTINGS>;

function sidecarTemplate(s: Settings): SidecarTemplateConfig {
  if (s.sidecarOpsPort === s.sidecarCallPort) {
    throw new ConfigError(
      `FNMESH_SIDECAR_OPS_PORT and FNMESH_SIDECAR_CALL_PORT are both ${s.sidecarOpsPort}: the sidecar needs two different ports`,
    );
  }
  const requests: QuantityPair = {};
  const limits: QuantityPair = {};
  if (s.sidecarCpuRequest) requests.cpu = s.sidecarCpuRequest;
  if (s.sidecarMemoryRequest) requests.memory = s.sidecarMemoryRequest;
  if (s.sidecarCpuLimit) limits.cpu = s.sidecarCpuLimit;
  if (s.sidecarMemoryLimit) limits.memory = s.sidecarMemoryLimit;
  const sidecar: SidecarTemplateConfig = {
    image: s.sidecarImage,
    natsUrl: s.sidecarNatsUrl.join(','),
    resources: { requests, limits },
    opsPort: s.sidecarOpsPort,
    callPort: s.sidecarCallPort,
    drainTimeoutMs: s.sidecarDrainTimeoutMs,
  };
  if (s.sidecarNatsTokenSecret) sidecar.natsTokenSecret = s.sidecarNatsTokenSecret;
  return sidecar;
}

function leaderElection(env: Env, s: Settings): LeaderElectionConfig {
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = s;
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
  // Unset: the operator's own namespace (POD_NAMESPACE, from the downward API), checked as the setting is.
  const lease = OPERATOR_SETTINGS.leaseNamespace;
  const podNamespace = env.POD_NAMESPACE?.trim();
  const leaseNamespace =
    s.leaseNamespace ??
    (podNamespace ? lease.parse(podNamespace, 'POD_NAMESPACE') : lease.parse(DEFAULT_LEASE_NAMESPACE, lease.env));
  return {
    enabled: s.leaderElect,
    leaseName: s.leaseName,
    leaseNamespace,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
  };
}

export function loadOperatorConfig(env: Env): OperatorConfig {
  const s = readSettings(env, OPERATOR_SETTINGS);
  const config: OperatorConfig = {
    sidecar: sidecarTemplate(s),
    listen: s.listen,
    leaderElection: leaderElection(env, s),
    concurrentReconciles: s.concurrentReconciles,
    apiConnections: s.kubeApiConnections,
    resyncMs: s.resyncMs,
    statusProgressIntervalMs: s.statusProgressIntervalMs,
    logLevel: s.logLevel,
  };
  if (s.watchNamespace !== undefined) config.watchNamespace = s.watchNamespace;
  if (s.kubeconfig !== undefined) config.kubeconfig = s.kubeconfig;
  return config;
}
