/**
 * What the operator's informer caches keep of each object (client-go's transform funcs). Pure.
 *
 * The API server's objects carry much the operator never reads: `metadata.managedFields` (often the
 * largest part of a Deployment), kubectl's last-applied annotation, timestamps. The caches hold only what
 * the reconciler (drift.ts, status.ts, the ownership check) and the key functions read:
 * - a FunctionService: its identity, labels, spec and status;
 * - a Deployment: its identity, labels, annotations, owner references and whole spec (drift compares the
 *   desired Deployment with it), and of its status the counts and the conditions' type, status, reason
 *   and message.
 */
import type { V1Deployment, V1DeploymentStatus, V1ObjectMeta } from '@kubernetes/client-node';
import type { FunctionServiceObject } from './reconciler';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

type Meta = Record<string, unknown>;

/** The metadata fields kept for every cached object. */
function slimMeta(m: Meta | undefined, keepOwners: boolean): Meta {
  const out: Meta = {};
  if (!m) return out;
  for (const k of [
    'name',
    'namespace',
    'uid',
    'resourceVersion',
    'generation',
    'deletionTimestamp',
    'labels',
  ] as const) {
    if (m[k] !== undefined) out[k] = m[k];
  }
  const annotations = m.annotations as Record<string, string> | undefined;
  if (annotations) {
    const { [LAST_APPLIED]: _lastApplied, ...rest } = annotations;
    if (Object.keys(rest).length > 0) out.annotations = rest;
  }
  if (keepOwners && m.ownerReferences !== undefined) out.ownerReferences = m.ownerReferences;
  return out;
}

export function slimFunctionService(obj: FunctionServiceObject): FunctionServiceObject {
  const out: FunctionServiceObject = { metadata: slimMeta(obj.metadata, false) as FunctionServiceObject['metadata'] };
  if (obj.apiVersion !== undefined) out.apiVersion = obj.apiVersion;
  if (obj.kind !== undefined) out.kind = obj.kind;
  if (obj.spec !== undefined) out.spec = obj.spec;
  if (obj.status !== undefined) out.status = obj.status;
  return out;
}

function slimDeploymentStatus(s: V1DeploymentStatus): V1DeploymentStatus {
  const out: V1DeploymentStatus = {};
  for (const k of [
    'observedGeneration',
    'replicas',
    'readyReplicas',
    'updatedReplicas',
    'availableReplicas',
    'unavailableReplicas',
  ] as const) {
    if (s[k] !== undefined) out[k] = s[k];
  }
  if (s.conditions) {
    out.conditions = s.conditions.map((c) => {
      const kept: NonNullable<V1DeploymentStatus['conditions']>[number] = { type: c.type, status: c.status };
      if (c.reason !== undefined) kept.reason = c.reason;
      if (c.message !== undefined) kept.message = c.message;
      return kept;
    });
  }
  return out;
}

export function slimDeployment(obj: V1Deployment): V1Deployment {
  const out: V1Deployment = { metadata: slimMeta(obj.metadata as Meta | undefined, true) as V1ObjectMeta };
  if (obj.apiVersion !== undefined) out.apiVersion = obj.apiVersion;
  if (obj.kind !== undefined) out.kind = obj.kind;
  if (obj.spec !== undefined) out.spec = obj.spec;
  if (obj.status !== undefined) out.status = slimDeploymentStatus(obj.status);
  return out;
}
