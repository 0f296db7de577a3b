/**
 * Who connects to the mesh's NATS: the gateway, a replica of one FunctionService (every replica of a service
 * is the same NATS user: they share one Secret), or an observer (a read-only tool such as `nats micro ls`).
 * The one place that names an identity's NATS user and its inbox prefix.
 */

export type MeshIdentity =
  { kind: 'gateway' } | { kind: 'replica'; namespace: string; service: string } | { kind: 'observer' };

export const GATEWAY_IDENTITY: MeshIdentity = { kind: 'gateway' };

export function replicaIdentity(namespace: string, service: string): MeshIdentity {
  return { kind: 'replica', namespace, service };
}

/** The root of every fnmesh inbox; each identity gets its own subtree, and may subscribe only there. */
export const INBOX_ROOT = '_INBOX.fnmesh';

/**
 * The identity's inbox prefix (nats.js `inboxPrefix`): replies to its requests arrive below it, and its NATS
 * permissions let it subscribe nowhere else. Namespaces and services are DNS labels (no dots), so
 * `svc.{ns}.{svc}` never collides with another service's prefix or with `gateway`/`observer`.
 */
export function inboxPrefix(identity: MeshIdentity): string {
  switch (identity.kind) {
    case 'gateway':
      return `${INBOX_ROOT}.gateway`;
    case 'observer':
      return `${INBOX_ROOT}.observer`;
    case 'replica':
      return `${INBOX_ROOT}.svc.${identity.namespace}.${identity.service}`;
  }
}

/** The name in the identity's user JWT (what nats-server logs and `nats server report connections` shows). */
export function natsUserName(identity: MeshIdentity): string {
  switch (identity.kind) {
    case 'gateway':
      return 'fnmesh-gateway';
    case 'observer':
      return 'fnmesh-observer';
    case 'replica':
      return `fnmesh-service-${identity.namespace}-${identity.service}`;
  }
}
