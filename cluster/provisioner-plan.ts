/**
 * What the local provisioner of `fnmesh cluster` (cluster/local-provisioner.ts) should do, decided from what
 * the cluster holds, as an external provisioner of Kubernetes does it (sig-storage-lib-external-provisioner):
 *   - a claim of the `fnmesh-local` class (or any claim the PV controller handed to `fnmesh.io/local`) that the
 *     scheduler gave this node (`volume.kubernetes.io/selected-node`), still Pending and with no volume yet,
 *     gets a PersistentVolume: a folder of this node (`<volumesDir>/pvc-<claim uid>`), pre-bound to the claim
 *     (claimRef with its uid), node affinity to this node, capacity and access modes of the claim, the class's
 *     reclaim policy; the kube-controller-manager's PV controller then binds the two, and the scheduler binds
 *     the waiting pod;
 *   - a PersistentVolume it made on this node that is `Released` (its claim deleted) with policy Delete loses
 *     its folder and is deleted (the PV controller leaves volumes of an external provisioner to it);
 *   - a claim it cannot serve (a selector, volumeMode Block, a data source, a class with Immediate binding) is
 *     refused with the reason and the fix (a ProvisioningFailed Event on the claim).
 * Pure and level-based: the same view gives the same actions, and carrying them out twice changes nothing.
 */
import path from 'node:path';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import {
  ANN_BETA_STORAGE_PROVISIONER,
  ANN_PROVISIONED_BY,
  ANN_SELECTED_NODE,
  ANN_STORAGE_PROVISIONER,
  LOCAL_PROVISIONER,
} from './local-storage-class';

/** The folder mode: every container user may write its volume (as local-path-provisioner makes it). */
export const VOLUME_DIR_MODE = 0o777;
/** The node label the PVs' node affinity names (the node agent sets it to the node's name). */
const HOSTNAME_LABEL = 'kubernetes.io/hostname';

export interface ProvisionerView {
  nodeName: string;
  /** Where this node's volumes are made (`<runDir>/volumes`). */
  volumesDir: string;
  claims: readonly V1PersistentVolumeClaim[];
  volumes: readonly V1PersistentVolume[];
  classes: readonly V1StorageClass[];
}

export type ProvisionerAction =
  /** Make `dir` (mode VOLUME_DIR_MODE), then create `volume`. */
  | { kind: 'provision'; claim: ClaimRef; dir: string; volume: V1PersistentVolume }
  /** Remove `dir` (when set: only a folder of `volumesDir`), then delete the PV. */
  | { kind: 'delete'; volume: string; dir?: string }
  /** The claim cannot be served: a ProvisioningFailed Event. */
  | { kind: 'refuse'; claim: ClaimRef; message: string };

export interface ClaimRef {
  namespace: string;
  name: string;
  uid: string;
}

/** The name of the PV of a claim (the external provisioners' convention). */
export const volumeNameOf = (claimUid: string): string => `pvc-${claimUid}`;

function claimRef(c: V1PersistentVolumeClaim): ClaimRef {
  return { namespace: c.metadata?.namespace ?? 'default', name: c.metadata?.name ?? '', uid: c.metadata?.uid ?? '' };
}

/** Whether the claim is for this provisioner: its class names it, or the PV controller handed the claim to it. */
export function isLocalClaim(c: V1PersistentVolumeClaim, classes: readonly V1StorageClass[]): boolean {
  const ann = c.metadata?.annotations ?? {};
  const handedTo = ann[ANN_STORAGE_PROVISIONER] ?? ann[ANN_BETA_STORAGE_PROVISIONER];
  if (handedTo !== undefined) return handedTo === LOCAL_PROVISIONER;
  const className = c.spec?.storageClassName;
  return (
    Boolean(className) && classes.some((k) => k.metadata?.name === className && k.provisioner === LOCAL_PROVISIONER)
  );
}

/** Whether the PV was made by this provisioner for this node. */
export function isLocalVolume(v: V1PersistentVolume, nodeName: string): boolean {
  if (v.metadata?.annotations?.[ANN_PROVISIONED_BY] !== LOCAL_PROVISIONER) return false;
  return (v.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? []).some((t) =>
    (t.matchExpressions ?? []).some(
      (e) => e.key === HOSTNAME_LABEL && e.operator === 'In' && (e.values ?? []).includes(nodeName),
    ),
  );
}

/** Why the claim cannot be a folder, with the fix; undefined when it can. */
function refusal(c: V1PersistentVolumeClaim, klass: V1StorageClass | undefined): string | undefined {
  const spec = c.spec ?? {};
  if (spec.selector)
    return `claim Selector is not supported: ${LOCAL_PROVISIONER} makes a new volume for each claim; remove spec.selector, or create a PersistentVolume that matches it`;
  if (spec.volumeMode === 'Block')
    return `volumeMode Block is not supported: ${LOCAL_PROVISIONER} makes folders; use volumeMode Filesystem`;
  if (spec.dataSource || spec.dataSourceRef)
    return `a data source (${(spec.dataSourceRef ?? spec.dataSource)!.kind}) is not supported: ${LOCAL_PROVISIONER} makes empty folders; remove spec.dataSource`;
  if (klass && (klass.volumeBindingMode ?? 'Immediate') === 'Immediate')
    return `StorageClass ${klass.metadata?.name ?? ''} has volumeBindingMode Immediate: ${LOCAL_PROVISIONER} makes the folder on the node of the claim's first pod, so its class needs volumeBindingMode WaitForFirstConsumer`;
  return undefined;
}

/** The PersistentVolume of a claim: a folder of this node, pre-bound to the claim. Pure. */
export function desiredVolume(
  c: V1PersistentVolumeClaim,
  klass: V1StorageClass | undefined,
  nodeName: string,
  dir: string,
): V1PersistentVolume {
  const ref = claimRef(c);
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name: volumeNameOf(ref.uid),
      annotations: { [ANN_PROVISIONED_BY]: LOCAL_PROVISIONER },
    },
    spec: {
      capacity: { storage: String(c.spec?.resources?.requests?.storage ?? '0') },
      accessModes: c.spec?.accessModes?.length ? [...c.spec.accessModes] : ['ReadWriteOnce'],
      volumeMode: 'Filesystem',
      persistentVolumeReclaimPolicy: klass?.reclaimPolicy ?? 'Delete',
      ...(c.spec?.storageClassName ? { storageClassName: c.spec.storageClassName } : {}),
      claimRef: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        namespace: ref.namespace,
        name: ref.name,
        uid: ref.uid,
      },
      // Directory: a folder that went missing is a mount problem, not a silently empty volume
      hostPath: { path: dir, type: 'Directory' },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: HOSTNAME_LABEL, operator: 'In', values: [nodeName] }] }],
        },
      },
    },
  };
}

/** Whether `dir` is a folder directly inside `root` (the only folders the provisioner ever removes). */
function isInside(dir: string, root: string): boolean {
  const rel = path.relative(root, dir);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) && !rel.includes(path.sep);
}

/** Everything to do now. Pure. */
export function provisionerActions(view: ProvisionerView): ProvisionerAction[] {
  const out: ProvisionerAction[] = [];
  const classes = new Map(view.classes.map((k) => [k.metadata?.name ?? '', k]));
  const boundTo = new Set(view.volumes.map((v) => v.spec?.claimRef?.uid).filter((u): u is string => Boolean(u)));
  const names = new Set(view.volumes.map((v) => v.metadata?.name));
  for (const c of view.claims) {
    const ref = claimRef(c);
    if (!ref.uid || c.metadata?.deletionTimestamp) continue;
    if (c.spec?.volumeName || (c.status?.phase ?? 'Pending') !== 'Pending') continue;
    if (!isLocalClaim(c, view.classes)) continue;
    if (c.metadata?.annotations?.[ANN_SELECTED_NODE] !== view.nodeName) {
      // a claim of an Immediate class never gets a selected node: say why it waits
      const klass = classes.get(c.spec?.storageClassName ?? '');
      const why = klass && (klass.volumeBindingMode ?? 'Immediate') === 'Immediate' ? refusal(c, klass) : undefined;
      if (why) out.push({ kind: 'refuse', claim: ref, message: why });
      continue;
    }
    const name = volumeNameOf(ref.uid);
    if (boundTo.has(ref.uid) || names.has(name)) continue; // made already: the PV controller binds it
    const klass = classes.get(c.spec?.storageClassName ?? '');
    const why = refusal(c, klass);
    if (why) {
      out.push({ kind: 'refuse', claim: ref, message: why });
      continue;
    }
    const dir = path.join(view.volumesDir, name);
    out.push({ kind: 'provision', claim: ref, dir, volume: desiredVolume(c, klass, view.nodeName, dir) });
  }
  for (const v of view.volumes) {
    if (!isLocalVolume(v, view.nodeName) || v.metadata?.deletionTimestamp) continue;
    if (v.status?.phase !== 'Released' || v.spec?.persistentVolumeReclaimPolicy !== 'Delete') continue;
    const dir = v.spec?.hostPath?.path;
    out.push({
      kind: 'delete',
      volume: v.metadata?.name ?? '',
      ...(dir && isInside(dir, view.volumesDir) ? { dir } : {}),
    });
  }
  return out;
}
