/**
 * The operator's configuration: read once from env through its settings table (settings.ts) into a typed
 * object. A bad value stops the process at start with a ConfigError naming the variable and what it accepts.
 * The `sidecar` part is everything the operator needs to build the injected sidecar container
 * (desired-deployment.ts).
 */
import { ConfigError } from '../common/errors';
import { readSettings, type Env, type ListenAddress, type SettingValues } from '../common/config';
import type { LogLevel } from '../common/log-levels';
import { GATEWAY_IDENTITY, TRUST_SECRET_NAME, credsSecretName } from '../common/nats-identity';
import {
  DEFAULT_LEASE_NAMESPACE,
  OPERATOR_SETTINGS,
  type NatsAuthMode,
  type ObjectRef,
  type SecretKeyRef,
} from './settings';
import type { PullPolicy } from '../common/pull-policy';

export { OPERATOR_SETTINGS, type NatsAuthMode, type ObjectRef, type SecretKeyRef } from './settings';
export { PULL_POLICIES, type PullPolicy } from '../common/pull-policy';

/** Resource quantities as Kubernetes takes them (`50m`, `64Mi`); an absent one is not set. */
export interface QuantityPair {
  cpu?: string;
  memory?: string;
}

export interface SidecarTemplateConfig {
  image: string;
  /** The sidecar's imagePullPolicy; absent: Kubernetes' default for the image (desired-deployment.ts sets it). */
  imagePullPolicy?: PullPolicy;
  /** What sidecars connect to (comma-separated NATS URLs), passed as FNMESH_NATS_URL. */
  natsUrl: string;
  /** Secret key holding the NATS token, passed as FNMESH_NATS_TOKEN through a secretKeyRef. */
  natsTokenSecret?: SecretKeyRef;
  /** `jwt`: the sidecar mounts its replica's credentials Secret (FNMESH_NATS_CREDS); absent or `none`: no creds. */
  natsAuth?: NatsAuthMode;
  /**
   * The PEM file of the NATS servers' CA that the operator copies beside each FunctionService for its sidecars
   * (nats-ca-source.ts reads it at start and at every reconcile); absent: the sidecars use the system CAs.
   */
  natsTlsCaFile?: string;
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

/** Where the operator keeps the mesh's NATS trust chain and mints credentials (FNMESH_NATS_AUTH=jwt). */
export interface NatsCredsConfig {
  /** The Secret with the seeds (only the operator reads it). */
  trustSecret: ObjectRef;
  /** Create the trust Secret with a new chain when it is absent (the default name); a named one must exist. */
  createTrust: boolean;
  /** The Secret the operator publishes the public parts to (operator and account JWT, resolver.conf). */
  accountSecret: ObjectRef;
  /** Lifetime of a minted user JWT. */
  userTtlMs: number;
  /** The Secret the gateway's credentials are minted into. */
  gatewayCreds: ObjectRef;
}

export interface OperatorConfig {
  sidecar: SidecarTemplateConfig;
  /** Undefined when FNMESH_NATS_AUTH=none. */
  nats?: NatsCredsConfig;
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
    natsAuth: s.natsAuth,
  };
  if (s.sidecarNatsTokenSecret) sidecar.natsTokenSecret = s.sidecarNatsTokenSecret;
  if (s.sidecarImagePullPolicy) sidecar.imagePullPolicy = s.sidecarImagePullPolicy;
  if (s.sidecarNatsTlsCaFile) sidecar.natsTlsCaFile = s.sidecarNatsTlsCaFile;
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

/** The operator's own namespace: `explicit`, else POD_NAMESPACE (downward API), else the default. */
function ownNamespace(env: Env, explicit: string | undefined, settingEnv: string): string {
  if (explicit !== undefined) return explicit;
  const podNamespace = env.POD_NAMESPACE?.trim();
  const parse = OPERATOR_SETTINGS.leaseNamespace.parse;
  return podNamespace ? parse(podNamespace, 'POD_NAMESPACE') : parse(DEFAULT_LEASE_NAMESPACE, settingEnv);
}

function natsCreds(env: Env, s: Settings): NatsCredsConfig | undefined {
  if (s.natsAuth === 'none') return undefined;
  if (s.sidecarNatsTokenSecret)
    throw new ConfigError(
      'FNMESH_SIDECAR_NATS_TOKEN_SECRET is set while FNMESH_NATS_AUTH is jwt: a sidecar logs in with its minted user JWT, not a shared token; unset the token Secret, or set FNMESH_NATS_AUTH=none',
    );
  const namespace = ownNamespace(env, s.natsTrustNamespace, OPERATOR_SETTINGS.natsTrustNamespace.env);
  return {
    trustSecret: { namespace, name: s.natsTrustSecret ?? TRUST_SECRET_NAME },
    createTrust: s.natsTrustSecret === undefined,
    accountSecret: { namespace, name: s.natsAccountSecret },
    userTtlMs: s.natsUserTtlMs,
    gatewayCreds: s.gatewayCredsSecret ?? { namespace, name: credsSecretName(GATEWAY_IDENTITY) },
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
  const nats = natsCreds(env, s);
  if (nats) config.nats = nats;
  if (s.watchNamespace !== undefined) config.watchNamespace = s.watchNamespace;
  if (s.kubeconfig !== undefined) config.kubeconfig = s.kubeconfig;
  return config;
}
