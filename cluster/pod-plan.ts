/**
 * How `fnmesh cluster` runs a pod as local processes: for each container, the argv (the pod spec's command
 * and args over the image's ENTRYPOINT and CMD, with `$(VAR)` references expanded), the working folder,
 * the environment (the image's ENV, then envFrom, then env, with fieldRef, secretKeyRef and
 * configMapKeyRef resolved), the probes and the preStop hook with named ports resolved. Pure: the Secrets
 * and ConfigMaps the pod reads are passed in (`referencedObjects` says which).
 *
 * A container that cannot be started is planned as an error with the reason the kubelet would report
 * (ErrImageNeverPull for an image with no local folder or a tag it cannot run — the official `nats` image of
 * another version —, CreateContainerConfigError for a bad env source)
 * and a message that says how to fix it.
 */
import type { V1Container, V1EnvVar, V1LifecycleHandler, V1Pod, V1Probe } from '@kubernetes/client-node';
import { containerArgv } from './dockerfile';
import { podFieldValue } from './pod-fields';
import { mapImagePath, resolveImage, type LocalImages } from './images';
import type { HostMount } from './volume-plan';

export type ContainerRole = 'init' | 'sidecar' | 'main';

export type Action =
  { kind: 'http'; port: number; path: string } | { kind: 'tcp'; port: number } | { kind: 'exec'; argv: string[] };

export interface ProbePlan {
  action: Action;
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
  failureThreshold: number;
  successThreshold: number;
}

export interface ContainerPlan {
  name: string;
  role: ContainerRole;
  image: string;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  startupProbe?: ProbePlan;
  readinessProbe?: ProbePlan;
  livenessProbe?: ProbePlan;
  preStop?: Action;
  /** Its volumeMounts resolved to this machine (set by the node agent from cluster/pod-volumes.ts). */
  mounts?: HostMount[];
  /** securityContext.readOnlyRootFilesystem: everything but its volumes (and /proc, /sys, /dev) read-only. */
  readOnlyRootFilesystem?: boolean;
  /** The folders and files of this machine that stand for its image (root, mapped files): never hidden by a volume. */
  imagePaths: string[];
}

export interface ContainerError {
  name: string;
  role: ContainerRole;
  image: string;
  reason: 'ErrImageNeverPull' | 'CreateContainerConfigError';
  message: string;
}

export interface PodPlan {
  /** Init containers (plain and native sidecars) in order, then the main containers. */
  containers: Array<ContainerPlan | ContainerError>;
  restartPolicy: 'Always' | 'OnFailure' | 'Never';
  terminationGracePeriodMs: number;
}

export interface PlanContext {
  images: LocalImages;
  nodeName: string;
  podIP: string;
  hostIP: string;
  /** Secret data (values already base64-decoded) by Secret name, in the pod's namespace. */
  secrets: ReadonlyMap<string, Record<string, string>>;
  configMaps: ReadonlyMap<string, Record<string, string>>;
  /** Variables every container gets under the image's ENV (PATH and the like from this machine). */
  baseEnv: Record<string, string>;
}

export function isPlanError(c: ContainerPlan | ContainerError): c is ContainerError {
  return 'reason' in c;
}

/** Expands `$(VAR)` from `vars`; `$$` is a literal `$`; an unknown reference stays as written (Kubernetes' rules). */
export function expandVars(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][-._A-Za-z0-9]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return name !== undefined && Object.prototype.hasOwnProperty.call(vars, name) ? vars[name]! : m;
  });
}

/** The Secrets and ConfigMaps the pod's containers read through env and envFrom. */
export function referencedObjects(pod: V1Pod): { secrets: string[]; configMaps: string[] } {
  const secrets = new Set<string>();
  const configMaps = new Set<string>();
  for (const c of allContainers(pod)) {
    for (const e of c.env ?? []) {
      if (e.valueFrom?.secretKeyRef?.name) secrets.add(e.valueFrom.secretKeyRef.name);
      if (e.valueFrom?.configMapKeyRef?.name) configMaps.add(e.valueFrom.configMapKeyRef.name);
    }
    for (const f of c.envFrom ?? []) {
      if (f.secretRef?.name) secrets.add(f.secretRef.name);
      if (f.configMapRef?.name) configMaps.add(f.configMapRef.name);
    }
  }
  return { secrets: [...secrets].sort(), configMaps: [...configMaps].sort() };
}

function allContainers(pod: V1Pod): V1Container[] {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
}

class ConfigError extends Error {}

/** `metadata.labels['app']` → the label's value. */
function fieldValue(pod: V1Pod, fieldPath: string, ctx: PlanContext): string {
  const value = podFieldValue(pod, fieldPath, ctx);
  if (value === undefined) throw new ConfigError(`fieldRef ${fieldPath} is not one the kubelet supports`);
  return value;
}

function keyOf(
  source: 'Secret' | 'ConfigMap',
  data: Record<string, string> | undefined,
  name: string,
  key: string,
  optional: boolean,
): string | undefined {
  if (!data) {
    if (optional) return undefined;
    throw new ConfigError(
      `${source.toLowerCase()} "${name}" not found: create it in the pod's namespace or mark the reference optional`,
    );
  }
  if (!Object.hasOwn(data, key)) {
    if (optional) return undefined;
    throw new ConfigError(`couldn't find key ${key} in ${source} ${name}: add the key or mark the reference optional`);
  }
  return data[key];
}

function envValue(pod: V1Pod, e: V1EnvVar, vars: Record<string, string>, ctx: PlanContext): string | undefined {
  if (e.value !== undefined) return expandVars(e.value, vars);
  const from = e.valueFrom;
  if (!from) return '';
  if (from.fieldRef) return fieldValue(pod, from.fieldRef.fieldPath, ctx);
  if (from.secretKeyRef) {
    const r = from.secretKeyRef;
    return keyOf('Secret', ctx.secrets.get(r.name ?? ''), r.name ?? '', r.key, r.optional ?? false);
  }
  if (from.configMapKeyRef) {
    const r = from.configMapKeyRef;
    return keyOf('ConfigMap', ctx.configMaps.get(r.name ?? ''), r.name ?? '', r.key, r.optional ?? false);
  }
  throw new ConfigError(
    `env ${e.name}: only value, fieldRef, secretKeyRef and configMapKeyRef are supported by fnmesh cluster`,
  );
}

/**
 * The container's environment, and the variables its pod spec defines (envFrom, env): `$(VAR)` in env values
 * and in the spec's command and args sees only those, as on a kubelet (not the image's ENV).
 */
function containerEnv(
  pod: V1Pod,
  c: V1Container,
  imageEnv: Record<string, string>,
  ctx: PlanContext,
): { env: Record<string, string>; specVars: Record<string, string> } {
  const specVars: Record<string, string> = {};
  for (const f of c.envFrom ?? []) {
    const ref = f.secretRef ?? f.configMapRef;
    if (!ref?.name) continue;
    const data = f.secretRef ? ctx.secrets.get(ref.name) : ctx.configMaps.get(ref.name);
    if (!data) {
      if (ref.optional) continue;
      throw new ConfigError(
        `${f.secretRef ? 'secret' : 'configmap'} "${ref.name}" not found: create it in the pod's namespace or mark envFrom optional`,
      );
    }
    for (const [k, v] of Object.entries(data)) specVars[`${f.prefix ?? ''}${k}`] = v;
  }
  for (const e of c.env ?? []) {
    const v = envValue(pod, e, specVars, ctx);
    if (v !== undefined) specVars[e.name] = v;
  }
  return { env: { ...ctx.baseEnv, ...imageEnv, HOSTNAME: pod.metadata?.name ?? '', ...specVars }, specVars };
}

/** A probe's or hook's port: a number, or a name looked up among this container's own ports. */
function resolvePort(c: V1Container, port: number | string | undefined, what: string): number {
  if (typeof port === 'number') return port;
  if (port !== undefined && /^\d+$/.test(port)) return Number(port);
  const named = (c.ports ?? []).find((p) => p.name === port);
  if (!named)
    throw new ConfigError(
      `${what}: port "${String(port)}" is not a number nor the name of one of container ${c.name}'s ports`,
    );
  return named.containerPort;
}

function actionOf(
  c: V1Container,
  h: Pick<V1LifecycleHandler, 'httpGet' | 'tcpSocket' | 'exec'>,
  what: string,
  vars: Record<string, string>,
): Action {
  if (h.httpGet) {
    const host = h.httpGet.host;
    if (host && host !== 'localhost' && host !== '127.0.0.1')
      throw new ConfigError(`${what}: httpGet host ${host} is not supported (fnmesh cluster probes the pod itself)`);
    return { kind: 'http', port: resolvePort(c, h.httpGet.port as number | string, what), path: h.httpGet.path || '/' };
  }
  if (h.tcpSocket) return { kind: 'tcp', port: resolvePort(c, h.tcpSocket.port as number | string, what) };
  if (h.exec?.command?.length) return { kind: 'exec', argv: h.exec.command.map((a) => expandVars(a, vars)) };
  throw new ConfigError(`${what}: needs httpGet, tcpSocket or exec`);
}

function probePlan(
  c: V1Container,
  p: V1Probe | undefined,
  what: string,
  vars: Record<string, string>,
): ProbePlan | undefined {
  if (!p) return undefined;
  return {
    action: actionOf(c, p, what, vars),
    initialDelayMs: (p.initialDelaySeconds ?? 0) * 1000,
    periodMs: (p.periodSeconds ?? 10) * 1000,
    timeoutMs: (p.timeoutSeconds ?? 1) * 1000,
    failureThreshold: p.failureThreshold ?? 3,
    successThreshold: p.successThreshold ?? 1,
  };
}

/** Whether `p` is a container's mountPath or inside one. */
function underMount(c: V1Container, p: string): boolean {
  return (c.volumeMounts ?? []).some((m) => {
    const at = m.mountPath.replace(/\/+$/, '') || '/';
    return p === at || p.startsWith(at === '/' ? '/' : `${at}/`);
  });
}

function planContainer(
  pod: V1Pod,
  c: V1Container,
  role: ContainerRole,
  ctx: PlanContext,
): ContainerPlan | ContainerError {
  const image = resolveImage(ctx.images, c.image ?? '');
  if (image && 'problem' in image)
    return { name: c.name, role, image: c.image ?? '', reason: 'ErrImageNeverPull', message: image.problem };
  if (!image) {
    const known = [...ctx.images.keys()].sort().join(', ');
    return {
      name: c.name,
      role,
      image: c.image ?? '',
      reason: 'ErrImageNeverPull',
      message: `no local folder for image ${c.image ?? '(none)'} (fnmesh cluster runs images from folders: ${known}); start fnmesh cluster with --image ${c.image ?? 'IMAGE'}=FOLDER, FOLDER holding its Dockerfile`,
    };
  }
  try {
    const { env, specVars } = containerEnv(pod, c, image.config.env, ctx);
    const expand = (list: string[] | undefined): string[] | undefined => list?.map((a) => expandVars(a, specVars));
    // a path inside one of the container's volumeMounts is what the mount holds there, not the image's file
    const argv = containerArgv(image.config, expand(c.command), expand(c.args)).map((a) =>
      underMount(c, a) ? a : mapImagePath(image, a),
    );
    if (argv.length === 0)
      throw new ConfigError(`no command: image ${c.image} has no ENTRYPOINT or CMD and the container sets no command`);
    const cwd = c.workingDir ? mapImagePath(image, c.workingDir) : image.root;
    const imagePaths = [image.root, ...Object.values(image.files ?? {})];
    const plan: ContainerPlan = { name: c.name, role, image: c.image ?? '', argv, cwd, env, imagePaths };
    const startupProbe = probePlan(c, c.startupProbe, `container ${c.name} startupProbe`, env);
    const readinessProbe = probePlan(c, c.readinessProbe, `container ${c.name} readinessProbe`, env);
    const livenessProbe = probePlan(c, c.livenessProbe, `container ${c.name} livenessProbe`, env);
    if (startupProbe) plan.startupProbe = startupProbe;
    if (readinessProbe) plan.readinessProbe = readinessProbe;
    if (livenessProbe) plan.livenessProbe = livenessProbe;
    if (c.lifecycle?.preStop) plan.preStop = actionOf(c, c.lifecycle.preStop, `container ${c.name} preStop`, env);
    if (c.securityContext?.readOnlyRootFilesystem) plan.readOnlyRootFilesystem = true;
    return plan;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { name: c.name, role, image: c.image ?? '', reason: 'CreateContainerConfigError', message: err.message };
  }
}

export function planPod(pod: V1Pod, ctx: PlanContext): PodPlan {
  const spec = pod.spec;
  const containers: PodPlan['containers'] = [];
  for (const c of spec?.initContainers ?? [])
    containers.push(planContainer(pod, c, c.restartPolicy === 'Always' ? 'sidecar' : 'init', ctx));
  for (const c of spec?.containers ?? []) containers.push(planContainer(pod, c, 'main', ctx));
  const restartPolicy = (spec?.restartPolicy ?? 'Always') as PodPlan['restartPolicy'];
  return { containers, restartPolicy, terminationGracePeriodMs: (spec?.terminationGracePeriodSeconds ?? 30) * 1000 };
}
