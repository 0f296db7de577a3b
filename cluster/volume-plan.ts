/**
 * The volumes of a `fnmesh cluster` pod, decided the way the kubelet decides them: which files with which
 * contents and modes each volume holds (secret, configMap, downwardAPI, projected — with the
 * service-account token —, emptyDir, hostPath, and a persistentVolumeClaim's folder: its bound
 * PersistentVolume's hostPath or local path), and where each container mounts which volume (its
 * volumeMounts: mountPath, readOnly, subPath). Pure: the Secrets, ConfigMaps, tokens, claims and their volumes
 * the pod reads are passed in (`volumeNeeds` says which). The mounting itself is cluster/pod-volumes.ts and the script of
 * `mountScript`, run in each container's own mount namespace.
 *
 * What cannot be mounted (a volume type this does not model, a missing Secret or ConfigMap that is not
 * optional, a missing key, a token that could not be had, a claim that does not exist or is not bound yet) is
 * a problem with the kubelet's wording (`MountVolume.SetUp failed for volume "x" : ...`, for a claim the
 * kubelet's `error processing PVC ns/name: PVC is not bound` and the like), shown in the pod's status and as a
 * FailedMount Event.
 */
import type {
  V1Container,
  V1KeyToPath,
  V1ObjectFieldSelector,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Volume,
} from '@kubernetes/client-node';
import { podFieldValue } from './pod-fields';

/** The kubelet's defaults: files 0644, a token valid for an hour. */
export const DEFAULT_FILE_MODE = 0o644;
export const DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600;
/** The API server refuses a TokenRequest for less than ten minutes. */
export const MIN_TOKEN_EXPIRATION_SECONDS = 600;

/** The volume types this models; the others are refused with this list in the message. */
export const MODELLED_VOLUME_TYPES = [
  'configMap',
  'secret',
  'emptyDir',
  'downwardAPI',
  'projected',
  'hostPath',
  'persistentVolumeClaim',
];

export interface TokenWanted {
  /** Identifies the token among a pod's (its audience and lifetime). */
  key: string;
  serviceAccountName: string;
  audience?: string;
  expirationSeconds: number;
}

/** What a pod's volumes read from the API server. */
export interface VolumeNeeds {
  secrets: string[];
  configMaps: string[];
  tokens: TokenWanted[];
  /** The persistentVolumeClaims the pod names. */
  claims: string[];
}

/** A claim as read: absent when it does not exist; its PersistentVolume when it names one that exists. */
export interface ClaimObjects {
  claim?: V1PersistentVolumeClaim;
  volume?: V1PersistentVolume;
}

/** What was fetched for `VolumeNeeds`: an absent Secret or ConfigMap was not found; a token is its text. */
export interface VolumeObjects {
  secrets: ReadonlyMap<string, Record<string, Buffer>>;
  configMaps: ReadonlyMap<string, Record<string, Buffer>>;
  /** By TokenWanted.key: the token, or why it could not be had. */
  tokens: ReadonlyMap<string, { token: string } | { error: string }>;
  /** By claim name (every one of VolumeNeeds.claims); a missing entry is a claim not found. */
  claims?: ReadonlyMap<string, ClaimObjects>;
  /** The pod's node (for spec.nodeName in a downwardAPI file). */
  nodeName: string;
}

export interface PlannedFile {
  /** Relative to the volume's root; may hold folders (`a/b`). */
  path: string;
  content: Buffer;
  mode: number;
}

export type PlannedVolume =
  | { name: string; kind: 'files'; files: PlannedFile[] }
  | { name: string; kind: 'emptyDir'; memory: boolean; sizeLimit?: string }
  | { name: string; kind: 'hostPath'; path: string; create: 'directory' | 'file' | 'none' }
  /**
   * A claim's folder: the bound PV's path, which must be a folder (`create` for a hostPath PV of type
   * DirectoryOrCreate); `readOnly` (the volume's readOnly) makes every mount of it read-only.
   */
  | {
      name: string;
      kind: 'claim';
      claimName: string;
      volumeName: string;
      path: string;
      create: boolean;
      readOnly: boolean;
    };

export interface PlannedMount {
  volume: string;
  mountPath: string;
  subPath?: string;
  readOnly: boolean;
}

export interface VolumeProblem {
  volume: string;
  message: string;
}

export interface VolumePlan {
  volumes: PlannedVolume[];
  /** By container name (init containers included), in mount order (parents before children). */
  mounts: Record<string, PlannedMount[]>;
  problems: VolumeProblem[];
}

const tokenKey = (audience: string | undefined, expirationSeconds: number): string =>
  `${audience ?? ''}|${expirationSeconds}`;

function tokenExpiration(seconds: number | undefined): number {
  return Math.max(MIN_TOKEN_EXPIRATION_SECONDS, seconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS);
}

/** The Secrets, ConfigMaps and service-account tokens the pod's volumes read. */
export function volumeNeeds(pod: V1Pod): VolumeNeeds {
  const secrets = new Set<string>();
  const configMaps = new Set<string>();
  const tokens = new Map<string, TokenWanted>();
  const claims = new Set<string>();
  const serviceAccountName = pod.spec?.serviceAccountName || 'default';
  for (const v of pod.spec?.volumes ?? []) {
    if (v.secret?.secretName) secrets.add(v.secret.secretName);
    if (v.configMap?.name) configMaps.add(v.configMap.name);
    if (v.persistentVolumeClaim?.claimName) claims.add(v.persistentVolumeClaim.claimName);
    for (const s of v.projected?.sources ?? []) {
      if (s.secret?.name) secrets.add(s.secret.name);
      if (s.configMap?.name) configMaps.add(s.configMap.name);
      if (s.serviceAccountToken) {
        const expirationSeconds = tokenExpiration(s.serviceAccountToken.expirationSeconds);
        const audience = s.serviceAccountToken.audience || undefined;
        const key = tokenKey(audience, expirationSeconds);
        tokens.set(key, { key, serviceAccountName, expirationSeconds, ...(audience ? { audience } : {}) });
      }
    }
  }
  return {
    secrets: [...secrets].sort(),
    configMaps: [...configMaps].sort(),
    tokens: [...tokens.values()],
    claims: [...claims].sort(),
  };
}

class MountError extends Error {}

/** A file path inside a volume: relative, no `..` element, no empty element (the API server's rule too). */
function checkedPath(p: string, what: string): string {
  const parts = p.split('/');
  if (p === '' || p.startsWith('/') || parts.some((x) => x === '..' || x === '') || p.startsWith('..'))
    throw new MountError(
      `${what}: path "${p}" must be relative, without ".." or empty elements, and not start with ".."`,
    );
  return p;
}

/** The kubelet's format of a labels or annotations file: `key="value"` lines, sorted by key. */
export function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(m![k])}`)
    .join('\n');
}

function fieldFile(pod: V1Pod, ref: V1ObjectFieldSelector, nodeName: string): string {
  const fp = ref.fieldPath;
  if (fp === 'metadata.labels') return formatMap(pod.metadata?.labels);
  if (fp === 'metadata.annotations') return formatMap(pod.metadata?.annotations);
  // no addresses: a downwardAPI volume cannot name status.podIP or status.hostIP
  const value = podFieldValue(pod, fp, { nodeName });
  if (value === undefined)
    throw new MountError(
      `fieldRef ${fp} is not one a downwardAPI volume supports (metadata.name, metadata.namespace, metadata.uid, metadata.labels, metadata.annotations, a single label or annotation)`,
    );
  return value;
}

/** The files of a Secret's or ConfigMap's keys: every key, or the `items` (a missing key is an error unless optional). */
function keyFiles(
  kind: 'secret' | 'configmap',
  name: string,
  data: Record<string, Buffer> | undefined,
  items: V1KeyToPath[] | undefined,
  optional: boolean,
  mode: number,
): PlannedFile[] {
  if (!data) {
    if (optional) return [];
    throw new MountError(`${kind} "${name}" not found: create it in the pod's namespace, or mark the volume optional`);
  }
  if (!items?.length)
    return Object.keys(data)
      .sort()
      .map((key) => ({ path: checkedPath(key, `${kind} "${name}" key ${key}`), content: data[key]!, mode }));
  const out: PlannedFile[] = [];
  for (const item of items) {
    if (!Object.hasOwn(data, item.key)) {
      if (optional) continue;
      throw new MountError(
        `configuration of ${kind} "${name}": key ${item.key} not found (items name it): add the key, or mark the volume optional`,
      );
    }
    out.push({
      path: checkedPath(item.path, `${kind} "${name}" item ${item.key}`),
      content: data[item.key]!,
      mode: item.mode ?? mode,
    });
  }
  return out;
}

function downwardFiles(
  pod: V1Pod,
  items: Array<{ path: string; fieldRef?: V1ObjectFieldSelector; resourceFieldRef?: unknown; mode?: number }>,
  mode: number,
  nodeName: string,
): PlannedFile[] {
  return items.map((item) => {
    const p = checkedPath(item.path, 'downwardAPI item');
    if (!item.fieldRef)
      throw new MountError(
        `downwardAPI item ${item.path}: only fieldRef is modelled by fnmesh cluster (no resourceFieldRef: it sets no resource limits)`,
      );
    return { path: p, content: Buffer.from(fieldFile(pod, item.fieldRef, nodeName)), mode: item.mode ?? mode };
  });
}

function volumeType(v: V1Volume): string {
  const t = Object.keys(v).find((k) => k !== 'name' && (v as unknown as Record<string, unknown>)[k] != null);
  return t ?? '(none)';
}

/**
 * A claim's folder, checked as the kubelet checks it (its desired-state populator): the claim exists, is not
 * being deleted, is Bound to a PV that exists and whose claimRef is this claim; the PV is a folder of this
 * machine (hostPath or local).
 */
function planClaim(pod: V1Pod, v: V1Volume, objects: VolumeObjects): PlannedVolume {
  const name = v.persistentVolumeClaim!.claimName;
  const ns = pod.metadata?.namespace ?? 'default';
  const what = `error processing PVC ${ns}/${name}`;
  const got = objects.claims?.get(name);
  const claim = got?.claim;
  if (!claim)
    throw new MountError(
      `${what}: failed to fetch PVC from API server: persistentvolumeclaims "${name}" not found: create the claim in namespace ${ns} (a StatefulSet makes its claims from its volumeClaimTemplates); the pod starts once it is bound`,
    );
  if (claim.metadata?.deletionTimestamp)
    throw new MountError(
      `${what}: PVC is being deleted: a pod cannot start on a claim being deleted; use another claim`,
    );
  if (claim.status?.phase !== 'Bound') {
    const className = claim.spec?.storageClassName;
    throw new MountError(
      `${what}: PVC is not bound (phase ${claim.status?.phase ?? 'Pending'}): the pod starts once it is; ` +
        (className
          ? `a claim of StorageClass ${className} with volumeBindingMode WaitForFirstConsumer is bound when the scheduler places a pod using it (not a pod given spec.nodeName): see kubectl describe pvc ${name} -n ${ns}`
          : `a claim with no StorageClass binds only to a PersistentVolume that matches it: create one, or name a StorageClass`),
    );
  }
  const volumeName = claim.spec?.volumeName;
  if (!volumeName) throw new MountError(`${what}: PVC has empty pvc.Spec.VolumeName`);
  const pv = got.volume;
  if (!pv)
    throw new MountError(
      `${what}: failed to fetch PV ${volumeName} from API server: persistentvolumes "${volumeName}" not found`,
    );
  if (!pv.spec?.claimRef)
    throw new MountError(
      `${what}: found PV object ${volumeName} but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim`,
    );
  if (pv.spec.claimRef.uid !== claim.metadata?.uid)
    throw new MountError(
      `${what}: found PV object ${volumeName} but its pv.Spec.ClaimRef.UID ${pv.spec.claimRef.uid ?? ''} does not point to claim.UID ${claim.metadata?.uid ?? ''}`,
    );
  if ((pv.spec.volumeMode ?? 'Filesystem') !== 'Filesystem')
    throw new MountError(`volume ${v.name} has volumeMode ${pv.spec.volumeMode}, but is specified in volumeMounts`);
  const folder = pv.spec.hostPath?.path ?? pv.spec.local?.path;
  if (!folder) {
    const t = Object.keys(pv.spec).find(
      (k) => !PV_SPEC_FIELDS.has(k) && (pv.spec as Record<string, unknown>)[k] != null,
    );
    throw new MountError(
      `${what}: PersistentVolume ${volumeName} is a ${t ?? 'volume without a source'} volume; fnmesh cluster mounts hostPath and local PersistentVolumes (a folder of this machine): use the StorageClass fnmesh-local, or a hostPath PV`,
    );
  }
  if (!folder.startsWith('/'))
    throw new MountError(`${what}: PersistentVolume ${volumeName}'s path ${folder} must be an absolute path`);
  return {
    name: v.name,
    kind: 'claim',
    claimName: name,
    volumeName,
    path: folder,
    create: pv.spec.hostPath?.type === 'DirectoryOrCreate',
    readOnly: v.persistentVolumeClaim!.readOnly ?? false,
  };
}

/** The fields of a PV spec that are not its volume source. */
const PV_SPEC_FIELDS = new Set([
  'accessModes',
  'capacity',
  'claimRef',
  'mountOptions',
  'nodeAffinity',
  'persistentVolumeReclaimPolicy',
  'storageClassName',
  'volumeAttributesClassName',
  'volumeMode',
]);

function planVolume(pod: V1Pod, v: V1Volume, objects: VolumeObjects): PlannedVolume {
  if (v.persistentVolumeClaim) return planClaim(pod, v, objects);
  if (v.secret) {
    const s = v.secret;
    const name = s.secretName ?? '';
    const mode = s.defaultMode ?? DEFAULT_FILE_MODE;
    return {
      name: v.name,
      kind: 'files',
      files: keyFiles('secret', name, objects.secrets.get(name), s.items, s.optional ?? false, mode),
    };
  }
  if (v.configMap) {
    const c = v.configMap;
    const name = c.name ?? '';
    const mode = c.defaultMode ?? DEFAULT_FILE_MODE;
    return {
      name: v.name,
      kind: 'files',
      files: keyFiles('configmap', name, objects.configMaps.get(name), c.items, c.optional ?? false, mode),
    };
  }
  if (v.downwardAPI) {
    const mode = v.downwardAPI.defaultMode ?? DEFAULT_FILE_MODE;
    return {
      name: v.name,
      kind: 'files',
      files: downwardFiles(pod, v.downwardAPI.items ?? [], mode, objects.nodeName),
    };
  }
  if (v.projected) {
    const mode = v.projected.defaultMode ?? DEFAULT_FILE_MODE;
    const files: PlannedFile[] = [];
    for (const s of v.projected.sources ?? []) {
      if (s.secret) {
        const name = s.secret.name ?? '';
        files.push(
          ...keyFiles('secret', name, objects.secrets.get(name), s.secret.items, s.secret.optional ?? false, mode),
        );
      } else if (s.configMap) {
        const name = s.configMap.name ?? '';
        files.push(
          ...keyFiles(
            'configmap',
            name,
            objects.configMaps.get(name),
            s.configMap.items,
            s.configMap.optional ?? false,
            mode,
          ),
        );
      } else if (s.downwardAPI) {
        files.push(...downwardFiles(pod, s.downwardAPI.items ?? [], mode, objects.nodeName));
      } else if (s.serviceAccountToken) {
        const t = s.serviceAccountToken;
        const key = tokenKey(t.audience || undefined, tokenExpiration(t.expirationSeconds));
        const got = objects.tokens.get(key);
        if (!got || 'error' in got)
          throw new MountError(
            `cannot get a token for ServiceAccount ${pod.metadata?.namespace ?? 'default'}/${pod.spec?.serviceAccountName || 'default'}: ${got && 'error' in got ? got.error : 'not requested'}`,
          );
        files.push({ path: checkedPath(t.path, 'serviceAccountToken'), content: Buffer.from(got.token), mode });
      } else {
        const kind = Object.keys(s).find((k) => (s as Record<string, unknown>)[k] != null) ?? '(none)';
        throw new MountError(
          `a projected ${kind} source is not modelled by fnmesh cluster (it projects secret, configMap, downwardAPI and serviceAccountToken)`,
        );
      }
    }
    const seen = new Set<string>();
    for (const f of files) {
      if (seen.has(f.path)) throw new MountError(`two projected sources write the same path ${f.path}`);
      seen.add(f.path);
    }
    return { name: v.name, kind: 'files', files };
  }
  if (v.emptyDir) {
    const medium = v.emptyDir.medium ?? '';
    if (medium !== '' && medium !== 'Memory')
      throw new MountError(`emptyDir medium ${medium} is not modelled by fnmesh cluster (use "" or Memory)`);
    const out: PlannedVolume = { name: v.name, kind: 'emptyDir', memory: medium === 'Memory' };
    if (v.emptyDir.sizeLimit !== undefined) out.sizeLimit = String(v.emptyDir.sizeLimit);
    return out;
  }
  if (v.hostPath) {
    const type = v.hostPath.type ?? '';
    const create = type === 'DirectoryOrCreate' ? 'directory' : type === 'FileOrCreate' ? 'file' : 'none';
    if (!v.hostPath.path.startsWith('/')) throw new MountError(`hostPath ${v.hostPath.path} must be an absolute path`);
    return { name: v.name, kind: 'hostPath', path: v.hostPath.path, create };
  }
  throw new MountError(
    `${volumeType(v)} volumes are not modelled by fnmesh cluster (it mounts ${MODELLED_VOLUME_TYPES.join(', ')}): use one of those`,
  );
}

function containerMounts(c: V1Container, volumes: ReadonlySet<string>, problems: VolumeProblem[]): PlannedMount[] {
  const out: PlannedMount[] = [];
  for (const m of c.volumeMounts ?? []) {
    const what = `container ${c.name} volumeMount ${m.name} at ${m.mountPath}`;
    if (!volumes.has(m.name)) {
      problems.push({ volume: m.name, message: `${what}: the pod has no volume ${m.name}` });
      continue;
    }
    if (!m.mountPath.startsWith('/')) {
      problems.push({ volume: m.name, message: `${what}: mountPath must be absolute` });
      continue;
    }
    if (m.subPathExpr) {
      problems.push({
        volume: m.name,
        message: `${what}: subPathExpr is not modelled by fnmesh cluster (use subPath)`,
      });
      continue;
    }
    const mount: PlannedMount = { volume: m.name, mountPath: m.mountPath.replace(/\/+$/, '') || '/', readOnly: false };
    if (m.readOnly) mount.readOnly = true;
    if (m.subPath) {
      try {
        mount.subPath = checkedPath(m.subPath.replace(/\/+$/, ''), `${what}: subPath`);
      } catch (err) {
        problems.push({ volume: m.name, message: (err as Error).message });
        continue;
      }
    }
    out.push(mount);
  }
  // Parents before children (a mount at /a/b must come after one at /a, or /a would hide it).
  return out.sort((a, b) => a.mountPath.split('/').length - b.mountPath.split('/').length);
}

/** Every volume's files and every container's mounts, or the problems that keep the pod from starting. */
export function planVolumes(pod: V1Pod, objects: VolumeObjects): VolumePlan {
  const volumes: PlannedVolume[] = [];
  const problems: VolumeProblem[] = [];
  for (const v of pod.spec?.volumes ?? []) {
    try {
      volumes.push(planVolume(pod, v, objects));
    } catch (err) {
      if (!(err instanceof MountError)) throw err;
      problems.push({ volume: v.name, message: `MountVolume.SetUp failed for volume "${v.name}" : ${err.message}` });
    }
  }
  const names = new Set((pod.spec?.volumes ?? []).map((v) => v.name));
  const mounts: Record<string, PlannedMount[]> = {};
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])])
    mounts[c.name] = containerMounts(c, names, problems);
  // secret, configMap, downwardAPI and projected volumes are read-only to containers, as on a kubelet, and a
  // claim mounted readOnly
  const readOnlyVolumes = new Set(volumes.filter((v) => v.kind === 'files').map((v) => v.name));
  for (const v of volumes) if (v.kind === 'claim' && v.readOnly) readOnlyVolumes.add(v.name);
  for (const list of Object.values(mounts)) for (const m of list) if (readOnlyVolumes.has(m.volume)) m.readOnly = true;
  return { volumes, mounts, problems };
}

/**
 * Whether a projected service-account token must be requested again: the kubelet's rule, once 80% of its
 * lifetime has passed or it is older than 24 hours.
 */
export function tokenDue(issuedAtMs: number, expiresAtMs: number, nowMs: number): boolean {
  const lifetime = expiresAtMs - issuedAtMs;
  return nowMs >= issuedAtMs + lifetime * 0.8 || nowMs >= issuedAtMs + 24 * 3600_000;
}

/** The message of the pod's FailedMount: every problem, one per volume. */
export function mountProblemMessage(problems: readonly VolumeProblem[]): string {
  return problems.map((p) => p.message).join('; ');
}

/** A mount resolved to the host: the folder or file to bind (`source`) at `target`. */
export interface HostMount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** The first fd the mount script opens a source on (0-2 are stdio, 3 the `mounted` pipe). */
const MOUNT_FD_BASE = 10;

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The bash script that a container starts with inside its own (new) mount namespace: each mount bound at
 * its target (created when missing: a folder for a folder, an empty file for a file), read-only where
 * asked; then it says `mounted` on fd 3 (the runner counts the container as running from then on) and
 * execs the container's argv with fd 3 closed (`exec "$@"`: its process is the one the pod runs).
 * Every source is opened first (fd 10, 11, ...) and bound through `/proc/$$/fd/N`: a mount at a folder that
 * holds the pod's own files (an emptyDir at `/tmp` while this machine's run folder is under /tmp) would
 * otherwise hide the sources of the mounts after it.
 *
 * `keep`: the folders and files of this machine that stand for the container's image (its root, the files it
 * maps). A volume whose mountPath covers one (an emptyDir at `/tmp` while the checkout is under /tmp) would
 * hide the image from the container, as it cannot in a real one (the image is its own root): each is opened
 * first too and, only when a mount has hidden it, bound back at its own path inside that mount (the folders
 * leading to it are made there, the one trace of it in the volume).
 */
export function mountScript(
  mounts: readonly HostMount[],
  options: { readOnlyRoot?: boolean; keep?: readonly string[] } = {},
): string {
  const lines = ['set -e'];
  const fd = (i: number): number => MOUNT_FD_BASE + i;
  const keep = mounts.length > 0 ? (options.keep ?? []) : [];
  const keepFd = (i: number): number => fd(mounts.length + i);
  mounts.forEach((m, i) => lines.push(`exec ${fd(i)}<${quote(m.source)}`));
  keep.forEach((k, i) => lines.push(`exec ${keepFd(i)}<${quote(k)}`));
  const bindAt = (s: string, t: string): string[] => [
    `if [ -d ${s} ]; then mkdir -p ${t}; else mkdir -p "$(dirname ${t})"; [ -e ${t} ] || : > ${t}; fi`,
    // --no-canonicalize: mount(8) would otherwise resolve /proc/$$/fd/N to the path it names and bind whatever
    // that path is now (the folder just made at a kept path), not the folder the fd holds
    `mount --no-canonicalize --bind ${s} ${t}`,
  ];
  mounts.forEach((m, i) => {
    const t = quote(m.target);
    lines.push(...bindAt(`/proc/$$/fd/${fd(i)}`, t));
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${t}`);
  });
  keep.forEach((k, i) => {
    const s = `/proc/$$/fd/${keepFd(i)}`;
    const t = quote(k);
    // hidden: the path no longer names what was opened (another device and inode, or nothing)
    lines.push(
      `if [ "$(stat -L -c %d:%i ${t} 2>/dev/null)" != "$(stat -L -c %d:%i ${s})" ]; then`,
      ...bindAt(s, t).map((l) => `  ${l}`),
      // the image is read-only in a container with a read-only root, though it is now inside a writable volume
      ...(options.readOnlyRoot ? [`  mount -o remount,bind,ro ${t}`] : []),
      'fi',
    );
  });
  if (options.readOnlyRoot) {
    // readOnlyRootFilesystem: every other mount of this namespace (this machine's root and the rest) read-only
    // here, so a write outside the container's volumes fails with EROFS as in a real container; /proc, /sys
    // and /dev stay as they are, as a runtime leaves them.
    // each volume's mount point as the kernel lists it: a target through a symlink (/var/run -> /run) resolved
    const kept = ['/proc', '/sys', '/dev', ...mounts.map((m) => `"$(realpath -m ${quote(m.target)})"`)];
    lines.push(
      `fnmesh_keep=(${kept.join(' ')})`,
      'mapfile -t fnmesh_mounts < /proc/self/mountinfo',
      'for fnmesh_line in "${fnmesh_mounts[@]}"; do',
      '  read -r _ _ _ _ fnmesh_mp _ <<< "$fnmesh_line"',
      '  fnmesh_skip=',
      '  for fnmesh_k in "${fnmesh_keep[@]}"; do case "$fnmesh_mp" in "$fnmesh_k" | "$fnmesh_k"/*) fnmesh_skip=1 ;; esac; done',
      '  [ -n "$fnmesh_skip" ] && continue',
      '  if [ "$fnmesh_mp" = / ]; then mount -o remount,bind,ro /; else mount -o remount,bind,ro "$fnmesh_mp" 2>/dev/null || :; fi',
      'done',
    );
  }
  const opened = mounts.length + keep.length;
  lines.push('echo mounted >&3', `exec 3>&-${Array.from({ length: opened }, (_, i) => ` ${fd(i)}<&-`).join('')} "$@"`);
  return lines.join('\n');
}
