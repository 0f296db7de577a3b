/**
 * The Deployment a FunctionService should have, as a plain object for server-side apply. Pure and
 * deterministic: the same FunctionService and configuration always give a deep-equal object (no
 * timestamps, no random names, fixed key and list order), so reconciling twice changes nothing.
 *
 * The sidecar's env is the sidecar's contract (sidecar/config.ts): every variable it reads that the
 * operator decides is set here, and nothing else.
 */
import type {
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1PodSpec,
  V1Probe,
  V1SecurityContext,
} from '@kubernetes/client-node';
import { API_VERSION, KIND } from '../common/crd-names';
import { FUNCTION_ENV, functionEnv as meshFunctionEnv } from '../common/function-protocol';
import type { FunctionService } from '../common/manifest';
import { SIDECAR_ENV, sidecarEnv, type SidecarEnvEntry } from '../common/sidecar-env';
import type { PullPolicy, SidecarTemplateConfig } from './config';
import { CREDS_MOUNT_FILE, credsSecretName, replicaIdentity } from '../common/nats-identity';
import { credsVolume, withCredsMount } from './creds-volume';
import { SIDECAR_CONTAINER_NAME, injectSidecar } from './sidecar-injection';
import { CA_HASH_ANNOTATION, CA_MOUNT_FILE, natsCaVolume, withNatsCaMount, type NatsCaBundle } from './sidecar-nats-ca';
import { natsCaSecretName } from './nats-ca-secret';

export const FIELD_MANAGER = 'fnmesh-operator';
export const SERVICE_LABEL = 'fnmesh.io/service';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const NAME_LABEL = 'app.kubernetes.io/name';
export const FUNCTION_CONTAINER_NAME = 'function';
export const OPS_PORT_NAME = 'fnmesh-ops';
/** The UID the sidecar image runs as (the Dockerfile's USER). */
export const SIDECAR_UID = 65532;
/** Env the operator sets on the function container; a FunctionService may not set them itself. */
export const RESERVED_FUNCTION_ENV: readonly string[] = Object.values(FUNCTION_ENV);
/** The sidecar's drain trigger (sidecar/ops.ts), called by the function container's preStop hook. */
export const DRAIN_PATH = '/drain';
/**
 * Time on top of the sidecar's drain timeout before the kubelet kills the pod: what the function has to
 * stop after the drain (the preStop hook's time counts against the grace period), with the sidecar's own
 * close after it (its subscription is already drained, so that is a NATS flush: milliseconds).
 */
export const GRACE_MARGIN_SECONDS = 10;

/** Where the sidecar's variables sit in the Deployment. */
export const SIDECAR_ENV_PATH = `spec.template.spec.initContainers[${SIDECAR_CONTAINER_NAME}].env`;
/**
 * The list items only the operator writes (drift.ts's `ownedNames`): every variable the sidecar reads, so that
 * one the operator stops setting (spec.outlierDetection taken out) rolls the Deployment.
 */
export const POD_PULL_SECRETS_PATH = 'spec.template.spec.imagePullSecrets';
export const OPERATOR_OWNED_ITEMS: Readonly<Record<string, readonly string[] | '*'>> = {
  [SIDECAR_ENV_PATH]: Object.values(SIDECAR_ENV),
  // the FunctionService's spec.imagePullSecrets, all of them: one taken out of the spec rolls the Deployment
  [POD_PULL_SECRETS_PATH]: '*',
};

/**
 * Kubernetes' default imagePullPolicy for an image (the API server's SetDefaults_Container): `Always` when
 * the tag is `latest`, or there is neither a tag nor a digest; else `IfNotPresent`. The operator always sets
 * the policy, this one when nothing says otherwise: what the server would default to, so that no drift check
 * fights the server's defaulting, and a policy taken out of the spec or the settings still reaches the pods.
 */
export function defaultPullPolicy(image: string): PullPolicy {
  const at = image.indexOf('@');
  const name = at >= 0 ? image.slice(0, at) : image;
  const last = name.slice(name.lastIndexOf('/') + 1);
  const colon = last.lastIndexOf(':');
  const tag = colon >= 0 ? last.slice(colon + 1) : at >= 0 ? '' : 'latest';
  return tag === 'latest' ? 'Always' : 'IfNotPresent';
}

/** A FunctionService read from the API server: it has a uid (owner references need it). */
export type ClusterFunctionService = FunctionService & { metadata: { uid: string } };

/** A spec the operator cannot turn into a Deployment; `field` is the path of the offending field. */
export class InvalidSpecError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'InvalidSpecError';
    this.field = field;
  }
}

/** The selector of the pods of a service; also the status `selector` for the scale subresource. */
export function serviceSelector(name: string): Record<string, string> {
  return { [SERVICE_LABEL]: name };
}

export function serviceLabels(name: string): Record<string, string> {
  return { [NAME_LABEL]: name, [MANAGED_BY_LABEL]: FIELD_MANAGER, [SERVICE_LABEL]: name };
}

const SIDECAR_SECURITY_CONTEXT: V1SecurityContext = {
  runAsNonRoot: true,
  runAsUser: SIDECAR_UID,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

/**
 * The function container's default: no privilege escalation, no capabilities, not root. The root file
 * system stays writable (arbitrary user images often write to it) and the UID is the image's own.
 */
const FUNCTION_SECURITY_CONTEXT: V1SecurityContext = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

function httpProbe(path: string, periodSeconds: number, failureThreshold: number): V1Probe {
  return { httpGet: { path, port: OPS_PORT_NAME }, periodSeconds, failureThreshold, timeoutSeconds: 1 };
}

function resourcesOf(cfg: SidecarTemplateConfig): V1Container['resources'] {
  const out: NonNullable<V1Container['resources']> = {};
  if (Object.keys(cfg.resources.requests).length > 0) out.requests = { ...cfg.resources.requests };
  if (Object.keys(cfg.resources.limits).length > 0) out.limits = { ...cfg.resources.limits };
  return out;
}

/** A sidecar env entry as a container env var: pod fields and Secrets become `valueFrom` references. */
function containerEnvVar({ name, value }: SidecarEnvEntry): V1EnvVar {
  if (typeof value === 'string') return { name, value };
  if ('fieldPath' in value) return { name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: value.fieldPath } } };
  return { name, valueFrom: { secretKeyRef: { name: value.secretKeyRef.name, key: value.secretKeyRef.key } } };
}

/** The injected sidecar container for one FunctionService (`natsCa`: the sidecars' NATS CA, when configured). */
export function sidecarContainer(
  fs: FunctionService,
  cfg: SidecarTemplateConfig,
  natsCa?: Pick<NatsCaBundle, 'sha256'>,
): V1Container {
  const env = sidecarEnv(fs, {
    natsUrl: cfg.natsUrl,
    ...(cfg.natsTokenSecret ? { natsToken: { secretKeyRef: cfg.natsTokenSecret } } : {}),
    ...(cfg.natsAuth === 'jwt' ? { natsCredsFile: CREDS_MOUNT_FILE } : {}),
    ...(natsCa ? { natsTls: { caFile: CA_MOUNT_FILE } } : {}),
    opsListen: `0.0.0.0:${cfg.opsPort}`,
    callListen: `127.0.0.1:${cfg.callPort}`,
    drainTimeoutMs: cfg.drainTimeoutMs,
    replicaId: { fieldPath: 'metadata.name' },
  }).map(containerEnvVar);
  const container: V1Container = {
    name: SIDECAR_CONTAINER_NAME,
    image: cfg.image,
    imagePullPolicy: cfg.imagePullPolicy ?? defaultPullPolicy(cfg.image),
    args: ['sidecar'],
    // A native sidecar: started before the function container, stopped after it.
    restartPolicy: 'Always',
    env,
    ports: [{ name: OPS_PORT_NAME, containerPort: cfg.opsPort, protocol: 'TCP' }],
    // The startup probe must not wait on /readyz: the kubelet starts the function container only once the
    // native sidecar has started, and /readyz is not ready until the function answers its health check.
    startupProbe: httpProbe('/healthz', 1, 60),
    readinessProbe: httpProbe('/readyz', 2, 2),
    livenessProbe: httpProbe('/healthz', 10, 3),
    resources: resourcesOf(cfg),
    securityContext: SIDECAR_SECURITY_CONTEXT,
  };
  const withCreds = cfg.natsAuth === 'jwt' ? withCredsMount(container) : container;
  return natsCa ? withNatsCaMount(withCreds) : withCreds;
}

function functionContainerEnv(fs: FunctionService, cfg: SidecarTemplateConfig): V1EnvVar[] {
  const user = (fs.spec.container?.env ?? []) as V1EnvVar[];
  const seen = new Set<string>();
  user.forEach((e, i) => {
    if (RESERVED_FUNCTION_ENV.includes(e.name)) {
      throw new InvalidSpecError(
        `spec.container.env[${i}].name`,
        `${e.name} is set by the operator (the function's port and the sidecar's call API); remove it`,
      );
    }
    if (seen.has(e.name))
      throw new InvalidSpecError(`spec.container.env[${i}].name`, `${e.name} is listed twice; list each variable once`);
    seen.add(e.name);
  });
  return [
    ...user.map((e) => ({ ...e })),
    ...meshFunctionEnv({ functionPort: fs.spec.port, callApiPort: cfg.callPort }),
  ];
}

function functionContainer(fs: FunctionService, cfg: SidecarTemplateConfig): V1Container {
  const c = fs.spec.container;
  if (!c)
    throw new InvalidSpecError(
      'spec.container',
      'is required in a cluster: it names the image that runs the functions',
    );
  if (fs.spec.port === cfg.opsPort || fs.spec.port === cfg.callPort) {
    throw new InvalidSpecError(
      'spec.port',
      `${fs.spec.port} is taken by the fnmesh sidecar (ops ${cfg.opsPort}, call API ${cfg.callPort}); choose another port`,
    );
  }
  const container: V1Container = {
    name: FUNCTION_CONTAINER_NAME,
    image: c.image,
    imagePullPolicy: c.imagePullPolicy ?? defaultPullPolicy(c.image),
  };
  if (c.command) container.command = [...c.command];
  if (c.args) container.args = [...c.args];
  container.env = functionContainerEnv(fs, cfg);
  container.ports = [{ name: 'http', containerPort: fs.spec.port, protocol: 'TCP' }];
  if (c.resources) container.resources = structuredClone(c.resources) as V1Container['resources'];
  // With a native sidecar the kubelet signals the function first and the sidecar only once the function has
  // exited, so without this the sidecar would keep taking calls for a function that is stopping. The hook
  // drains the sidecar (readiness off, no new calls, in-flight calls finish) and returns when it is done;
  // only then does the function get SIGTERM. The port is the sidecar's number: a named port in a hook
  // resolves against this container's own ports, and fnmesh-ops belongs to the sidecar.
  container.lifecycle = { preStop: { httpGet: { path: DRAIN_PATH, port: cfg.opsPort, scheme: 'HTTP' } } };
  container.securityContext = FUNCTION_SECURITY_CONTEXT;
  return container;
}

/**
 * The Deployment to apply for a FunctionService. Throws InvalidSpecError when the spec cannot be run
 * (the reconciler reports it as Degraded/InvalidSpec and does not retry). `natsCa`: the sidecars' NATS CA
 * (FNMESH_SIDECAR_NATS_TLS_CA_FILE), whose Secret the reconciler writes before it applies the Deployment.
 */
export function desiredDeployment(
  fs: ClusterFunctionService,
  cfg: SidecarTemplateConfig,
  natsCa?: Pick<NatsCaBundle, 'sha256'>,
): V1Deployment {
  const name = fs.metadata.name;
  const base: V1PodSpec = { containers: [functionContainer(fs, cfg)] };
  const volumes = [];
  // The replica's NATS credentials (creds-minter.ts mints the Secret before the Deployment is applied).
  if (cfg.natsAuth === 'jwt')
    volumes.push(credsVolume(credsSecretName(replicaIdentity(fs.metadata.namespace, fs.metadata.name))));
  if (natsCa) volumes.push(natsCaVolume(natsCaSecretName(fs.metadata.namespace, name)));
  if (volumes.length > 0) base.volumes = volumes;
  const podSpec: V1PodSpec = {
    ...injectSidecar(base, sidecarContainer(fs, cfg, natsCa)),
    // Always a list (an empty one is what the API server stores as none), so that one taken out is drift.
    imagePullSecrets: (fs.spec.imagePullSecrets ?? []).map((s) => ({ name: s.name })),
    // The preStop drain (at most the drain timeout), then the function's own stop, then the sidecar's close.
    terminationGracePeriodSeconds: Math.ceil(cfg.drainTimeoutMs / 1000) + GRACE_MARGIN_SECONDS,
  };
  const podMeta: V1Deployment['metadata'] = { labels: serviceLabels(name) };
  // The sidecar reads the CA when it connects: a new one must roll the pods, not only update the mounted file.
  if (natsCa) podMeta.annotations = { [CA_HASH_ANNOTATION]: natsCa.sha256 };
  // Deep copy: the result shares nothing with module constants or the input, so a caller may mutate it.
  return structuredClone({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace: fs.metadata.namespace,
      labels: serviceLabels(name),
      ownerReferences: [
        { apiVersion: API_VERSION, kind: KIND, name, uid: fs.metadata.uid, controller: true, blockOwnerDeletion: true },
      ],
    },
    spec: {
      replicas: fs.spec.replicas,
      selector: { matchLabels: serviceSelector(name) },
      template: { metadata: podMeta, spec: podSpec },
    },
  });
}
