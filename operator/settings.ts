/**
 * The operator's settings, one row each (common/config.ts): read by config.ts, offered as flags by the CLI,
 * listed in the README's configuration reference. Light: the CLI imports it into every process.
 *
 * Throughput: FNMESH_CONCURRENT_RECONCILES FunctionServices reconciled at once, over at most
 * FNMESH_KUBE_API_CONNECTIONS keep-alive connections to the API server (watches use their own);
 * FNMESH_STATUS_PROGRESS_INTERVAL_MS paces in-progress status updates (status-pacing.ts: Ready, failures and
 * other real transitions are written at once); FNMESH_RESYNC_MS reconciles every FunctionService again this often.
 */
import { kubeconfigSetting, logLevelSetting, setting } from '../common/config';
import { DNS_SUBDOMAIN, NAME_RULES, isNamespaceName } from '../common/names';
import * as parsers from '../common/parsers';
import { DEFAULT_CALL_API_PORT } from '../common/function-protocol';
import { DEFAULT_USER_TTL_MS } from '../common/nats-identity/rotation';
import { TRUST_SECRET_NAME, credsSecretName } from '../common/nats-identity/secret-layout';
import { GATEWAY_IDENTITY } from '../common/nats-identity/identity';
import { PULL_POLICIES } from '../common/pull-policy';
import { DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_SIDECAR_OPS_PORT } from '../common/sidecar-env';

export interface SecretKeyRef {
  name: string;
  key: string;
}

/** A Kubernetes resource quantity: a decimal number with an optional SI or binary suffix. */
const QUANTITY = /^(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][-+]?\d+)?$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/** A quantity, or undefined (not set at all) for `none`. */
const quantity: parsers.Parser<string | undefined> = (v, name) => {
  if (v.toLowerCase() === 'none') return undefined;
  if (!QUANTITY.test(v))
    throw parsers.invalid(name, v, 'a Kubernetes quantity such as 50m, 0.5, 64Mi or 1Gi, or "none" for no value');
  return v;
};

const secretKeyRef: parsers.Parser<SecretKeyRef> = (v, name) => {
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
    throw parsers.invalid(name, v, 'SECRET/KEY, a Secret name and a key in it, such as nats-auth/token');
  }
  return { name: secret, key };
};

const dnsSubdomain = parsers.matching(
  'a DNS subdomain name such as fnmesh-operator',
  (v) => DNS_SUBDOMAIN.test(v) && v.length <= 253,
);
const milliseconds = parsers.wholeNumber({ min: 1, max: 3_600_000 });

export interface ObjectRef {
  namespace: string;
  name: string;
}

const objectRef: parsers.Parser<ObjectRef> = (v, name) => {
  const parts = v.split('/');
  const [namespace, object] = parts;
  if (parts.length !== 2 || !namespace || !object || !isNamespaceName(namespace) || !DNS_SUBDOMAIN.test(object))
    throw parsers.invalid(name, v, 'NAMESPACE/NAME, such as fnmesh-system/fnmesh-gateway-nats');
  return { namespace, name: object };
};

/** How the operator gives sidecars their NATS identity: minted user JWTs (Secrets), or none. */
export const NATS_AUTH_MODES = ['jwt', 'none'] as const;
export type NatsAuthMode = (typeof NATS_AUTH_MODES)[number];

/** The default name of the Secret with the trust chain's public parts (for nats-server; no seeds). */
export const ACCOUNT_SECRET_NAME = 'fnmesh-nats-account';

/** The leader Lease's namespace when neither FNMESH_LEASE_NAMESPACE nor POD_NAMESPACE says. */
export const DEFAULT_LEASE_NAMESPACE = 'fnmesh-system';

export const OPERATOR_SETTINGS = {
  sidecarImage: setting({
    env: 'FNMESH_SIDECAR_IMAGE',
    flag: '--sidecar-image <image>',
    required: 'the sidecar image, such as ghcr.io/fnmesh/fnmesh:0.1.0',
    parse: parsers.matching('an image reference without spaces', (v) => !/\s/.test(v)),
    help: 'image of the injected sidecar (the fnmesh image, run as `sidecar`)',
  }),
  sidecarImagePullPolicy: setting({
    env: 'FNMESH_SIDECAR_IMAGE_PULL_POLICY',
    flag: '--sidecar-image-pull-policy <policy>',
    unset: "Kubernetes' default for the image: `Always` for `:latest` or no tag, else `IfNotPresent`",
    parse: parsers.oneOf(PULL_POLICIES),
    help: "the injected sidecar's `imagePullPolicy`: `Always`, `IfNotPresent` or `Never` (always set on the container, so a change rolls the pods)",
  }),
  sidecarNatsUrl: setting({
    env: 'FNMESH_SIDECAR_NATS_URL',
    flag: '--sidecar-nats-url <urls>',
    required: 'the NATS URLs sidecars connect to, such as nats://nats.fnmesh-system:4222',
    parse: parsers.natsUrls,
    help: 'comma-separated NATS URLs the sidecars connect to',
  }),
  sidecarNatsTokenSecret: setting({
    env: 'FNMESH_SIDECAR_NATS_TOKEN_SECRET',
    flag: '--sidecar-nats-token-secret <secret/key>',
    parse: secretKeyRef,
    help: '`SECRET/KEY` holding the NATS token, given to sidecars through a `secretKeyRef`',
  }),
  sidecarNatsTlsCaFile: setting({
    env: 'FNMESH_SIDECAR_NATS_TLS_CA_FILE',
    flag: '--sidecar-nats-tls-ca-file <file>',
    unset: 'none: the sidecars verify the NATS servers against the system CAs',
    parse: parsers.text,
    help: "PEM file (read by the operator) of the CA that signed the NATS servers' certificates: copied into a Secret beside each FunctionService and mounted into its sidecars (`FNMESH_NATS_TLS_CA`, TLS on); re-read at every reconcile, so a changed file rolls the pods within `FNMESH_RESYNC_MS`; not PEM certificates: the operator does not start",
  }),
  sidecarOpsPort: setting({
    env: 'FNMESH_SIDECAR_OPS_PORT',
    flag: '--sidecar-ops-port <port>',
    default: String(DEFAULT_SIDECAR_OPS_PORT),
    parse: parsers.port(),
    help: "the sidecar's ops port (probes, `/drain`)",
  }),
  sidecarCallPort: setting({
    env: 'FNMESH_SIDECAR_CALL_PORT',
    flag: '--sidecar-call-port <port>',
    default: String(DEFAULT_CALL_API_PORT),
    parse: parsers.port(),
    help: "the sidecar's loopback call API port",
  }),
  sidecarCpuRequest: setting({
    env: 'FNMESH_SIDECAR_CPU_REQUEST',
    flag: '--sidecar-cpu-request <quantity>',
    default: '50m',
    parse: quantity,
    help: "the sidecar's CPU request (`none` for no value)",
  }),
  sidecarMemoryRequest: setting({
    env: 'FNMESH_SIDECAR_MEMORY_REQUEST',
    flag: '--sidecar-memory-request <quantity>',
    default: '64Mi',
    parse: quantity,
    help: "the sidecar's memory request (`none` for no value)",
  }),
  sidecarCpuLimit: setting({
    env: 'FNMESH_SIDECAR_CPU_LIMIT',
    flag: '--sidecar-cpu-limit <quantity>',
    default: 'none',
    parse: quantity,
    help: "the sidecar's CPU limit",
  }),
  sidecarMemoryLimit: setting({
    env: 'FNMESH_SIDECAR_MEMORY_LIMIT',
    flag: '--sidecar-memory-limit <quantity>',
    default: '128Mi',
    parse: quantity,
    help: "the sidecar's memory limit (`none` for no value)",
  }),
  sidecarDrainTimeoutMs: setting({
    env: 'FNMESH_SIDECAR_DRAIN_TIMEOUT_MS',
    flag: '--sidecar-drain-timeout-ms <ms>',
    default: String(DEFAULT_DRAIN_TIMEOUT_MS),
    parse: parsers.wholeNumber({ min: 0, max: 3_600_000 }),
    help: "how long a stopping pod's in-flight calls may take; the pod's grace period is this plus 10 s",
  }),
  natsAuth: setting({
    env: 'FNMESH_NATS_AUTH',
    flag: '--nats-auth <mode>',
    default: 'jwt',
    parse: parsers.oneOf(NATS_AUTH_MODES),
    help: '`jwt`: mint each FunctionService (and the gateway) a NATS user JWT into a Secret mounted into its sidecar; `none`: no NATS credentials (a NATS without auth)',
  }),
  natsTrustSecret: setting({
    env: 'FNMESH_NATS_TRUST_SECRET',
    flag: '--nats-trust-secret <name>',
    unset: `\`${TRUST_SECRET_NAME}\`, created with a new trust chain when absent (one of an older operator gets its system account seed added)`,
    parse: dnsSubdomain,
    help: 'the Secret (in the trust namespace) with the operator, account, signing key and system account seeds (`operator.nk`, `account.nk`, `signing-key.nk`, `system-account.nk`); when set, it must exist with all four (the operator never creates or writes one you name)',
  }),
  natsTrustNamespace: setting({
    env: 'FNMESH_NATS_TRUST_NAMESPACE',
    flag: '--nats-trust-namespace <ns>',
    unset: `\`POD_NAMESPACE\`, else \`${DEFAULT_LEASE_NAMESPACE}\``,
    parse: parsers.namespaceName,
    help: "namespace of the trust Secret and of the account Secret (the operator's own)",
  }),
  natsAccountSecret: setting({
    env: 'FNMESH_NATS_ACCOUNT_SECRET',
    flag: '--nats-account-secret <name>',
    default: ACCOUNT_SECRET_NAME,
    parse: dnsSubdomain,
    help: 'Secret (in the trust namespace) the operator publishes the operator JWT, account JWT and a nats-server `resolver.conf` (with the system account) to, for the brokers to mount (no seeds; nats-server reads it at start only)',
  }),
  natsUserTtlMs: setting({
    env: 'FNMESH_NATS_USER_TTL_MS',
    flag: '--nats-user-ttl-ms <ms>',
    default: String(DEFAULT_USER_TTL_MS),
    parse: parsers.wholeNumber({ min: 3000, max: 30 * 24 * 3600 * 1000 }),
    help: "lifetime of a minted user JWT, renewed at two thirds; also how long a deleted FunctionService's credentials keep working (revocation by expiry)",
  }),
  gatewayCredsSecret: setting({
    env: 'FNMESH_GATEWAY_NATS_CREDS_SECRET',
    flag: '--gateway-nats-creds-secret <ns/name>',
    unset: `the trust namespace, \`${credsSecretName(GATEWAY_IDENTITY)}\``,
    parse: objectRef,
    help: "`NAMESPACE/NAME` of the Secret the gateway's own NATS credentials are minted into (key `nats.creds`)",
  }),
  kubeconfig: kubeconfigSetting,
  watchNamespace: setting({
    env: 'FNMESH_WATCH_NAMESPACE',
    flag: '--watch-namespace <ns>',
    unset: 'all namespaces',
    parse: (v, name) => {
      if (!isNamespaceName(v)) throw parsers.invalid(name, v, `${NAME_RULES.namespace}, or unset for all namespaces`);
      return v;
    },
    help: "reconcile only this namespace's FunctionServices",
  }),
  listen: setting({
    env: 'FNMESH_OPERATOR_LISTEN',
    flag: '--listen <host:port>',
    default: '0.0.0.0:8081',
    parse: parsers.listenAddress,
    help: '`/healthz`, `/readyz`, `/metrics`',
  }),
  leaderElect: setting({
    env: 'FNMESH_LEADER_ELECT',
    flag: '--leader-elect <bool>',
    default: 'true',
    parse: parsers.bool,
    help: 'one active replica, elected through a Lease',
  }),
  leaseName: setting({
    env: 'FNMESH_LEASE_NAME',
    flag: '--lease-name <name>',
    default: 'fnmesh-operator',
    parse: dnsSubdomain,
    help: 'name of the leader Lease',
  }),
  leaseNamespace: setting({
    env: 'FNMESH_LEASE_NAMESPACE',
    flag: '--lease-namespace <ns>',
    unset: `\`POD_NAMESPACE\`, else \`${DEFAULT_LEASE_NAMESPACE}\``,
    parse: parsers.namespaceName,
    help: 'namespace of the leader Lease',
  }),
  leaseDurationMs: setting({
    env: 'FNMESH_LEASE_DURATION_MS',
    flag: '--lease-duration-ms <ms>',
    default: '15000',
    parse: parsers.wholeNumber({ min: 1000, max: 3_600_000 }),
    help: 'how long a Lease holds without renewal (leader election timing as client-go’s)',
  }),
  renewDeadlineMs: setting({
    env: 'FNMESH_RENEW_DEADLINE_MS',
    flag: '--renew-deadline-ms <ms>',
    default: '10000',
    parse: milliseconds,
    help: 'a leader that could not renew for this long gives up (less than the lease duration)',
  }),
  retryPeriodMs: setting({
    env: 'FNMESH_RETRY_PERIOD_MS',
    flag: '--retry-period-ms <ms>',
    default: '2000',
    parse: milliseconds,
    help: 'how often to try to take or renew the Lease (times 1.2, less than the renew deadline)',
  }),
  concurrentReconciles: setting({
    env: 'FNMESH_CONCURRENT_RECONCILES',
    flag: '--concurrent-reconciles <n>',
    default: '16',
    parse: parsers.wholeNumber({ min: 1, max: 1000 }),
    help: 'FunctionServices reconciled at once',
  }),
  kubeApiConnections: setting({
    env: 'FNMESH_KUBE_API_CONNECTIONS',
    flag: '--kube-api-connections <n>',
    default: '16',
    parse: parsers.wholeNumber({ min: 1, max: 1000 }),
    help: 'keep-alive connections to the API server for requests (watches use their own)',
  }),
  statusProgressIntervalMs: setting({
    env: 'FNMESH_STATUS_PROGRESS_INTERVAL_MS',
    flag: '--status-progress-interval-ms <ms>',
    default: '5000',
    parse: parsers.wholeNumber({ min: 0, max: 3_600_000 }),
    help: "a rollout's replica counts go to status at most this often per FunctionService; transitions (Ready, failures, a new generation, a condition's status) are written at once; 0 writes every change",
  }),
  resyncMs: setting({
    env: 'FNMESH_RESYNC_MS',
    flag: '--resync-ms <ms>',
    default: '300000',
    parse: parsers.wholeNumber({ min: 0, max: 24 * 3600 * 1000 }),
    help: 'every FunctionService is reconciled this often even without changes',
  }),
  logLevel: logLevelSetting,
};
