/**
 * The Secret holding the sidecars' NATS CA (sidecar-nats-ca.ts) in a FunctionService's namespace: one per
 * FunctionService, beside its credentials Secret, owned by it (the garbage collector removes it with the
 * FunctionService), written only by the operator. Pure.
 */
import type { V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import { credsSecretName, replicaIdentity } from '../common/nats-identity';
import { FIELD_MANAGER, MANAGED_BY_LABEL } from './desired-deployment';
import { CA_HASH_ANNOTATION, CA_SECRET_KEY, type NatsCaBundle } from './sidecar-nats-ca';

/** The name of the CA Secret of a FunctionService's replicas, beside their credentials Secret. */
export function natsCaSecretName(namespace: string, service: string): string {
  return `${credsSecretName(replicaIdentity(namespace, service))}-ca`;
}

export interface NatsCaSecretSpec {
  namespace: string;
  name: string;
  ca: NatsCaBundle;
  /** The FunctionService whose pods mount it: the Secret goes with it (garbage collector). */
  owner: V1OwnerReference;
}

/** The Secret to server-side apply. Deterministic for the same bundle and owner. */
export function desiredNatsCaSecret(spec: NatsCaSecretSpec): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: spec.name,
      namespace: spec.namespace,
      labels: { [MANAGED_BY_LABEL]: FIELD_MANAGER },
      annotations: { [CA_HASH_ANNOTATION]: spec.ca.sha256 },
      ownerReferences: [{ ...spec.owner }],
    },
    type: 'Opaque',
    data: { [CA_SECRET_KEY]: Buffer.from(spec.ca.pem, 'utf8').toString('base64') },
  };
}

/** What to do with the stored Secret (undefined: none): nothing, apply, or refuse (someone else's). Pure. */
export function natsCaSecretDecision(
  stored: V1Secret | undefined,
  want: NatsCaSecretSpec,
): { action: 'none' } | { action: 'apply'; reason: string } | { action: 'refuse'; message: string } {
  if (!stored) return { action: 'apply', reason: 'there is no CA Secret yet' };
  const where = `Secret ${want.namespace}/${want.name}`;
  if (stored.metadata?.labels?.[MANAGED_BY_LABEL] !== FIELD_MANAGER)
    return {
      action: 'refuse',
      message: `${where} exists and was not made by the fnmesh operator: it holds the NATS CA of the sidecars of FunctionService ${want.namespace}/${want.owner.name}; delete or rename it`,
    };
  const data = stored.data?.[CA_SECRET_KEY];
  const text = data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8');
  if (text !== want.ca.pem) return { action: 'apply', reason: 'the CA changed' };
  const owner = stored.metadata?.ownerReferences?.find((r) => r.controller)?.uid;
  if (owner !== want.owner.uid)
    return { action: 'apply', reason: 'the Secret belongs to an earlier object of that name' };
  return { action: 'none' };
}
