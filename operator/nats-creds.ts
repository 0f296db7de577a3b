/**
 * The operator's NATS credentials, the pure part: the Secret a FunctionService's replicas (or the gateway)
 * get their `.creds` from, and whether a stored `.creds`
 * must be minted again (rotation due, another signer, other permissions). The shell is creds-minter.ts.
 */
import type { V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import type { FunctionService } from '../common/manifest';
import {
  DEFAULT_RESPONSE_TTL_MS,
  credsSecretData,
  permissionsFor,
  rotationDecision,
  userClaims,
  type MeshIdentity,
  type ParsedCreds,
  type RotationPolicy,
} from '../common/nats-identity';
import { FIELD_MANAGER, MANAGED_BY_LABEL } from './desired-deployment';

/** Marks the Secrets the operator mints (and which identity each is for). */
export const NATS_IDENTITY_ANNOTATION = 'fnmesh.io/nats-user';

/**
 * How long a replica may take to answer a call (its JWT's allow_responses window): at least the longest
 * call it serves (the service's and each function's timeoutMs), and never less than the mesh default.
 */
export function responseTtlMsFor(fs: Pick<FunctionService, 'spec'>): number {
  const timeouts = [fs.spec.timeoutMs, ...fs.spec.functions.map((f) => f.timeoutMs ?? 0)];
  return Math.max(DEFAULT_RESPONSE_TTL_MS, ...timeouts);
}

export interface CredsSecretSpec {
  namespace: string;
  name: string;
  identity: MeshIdentity;
  /** The `.creds` text. */
  creds: string;
  /** The FunctionService whose replicas use it: the Secret goes with it (garbage collector). */
  owner?: V1OwnerReference;
}

/** The Secret to server-side apply. Deterministic for the same `.creds`. */
export function desiredCredsSecret(spec: CredsSecretSpec): V1Secret {
  const data = Object.fromEntries(
    Object.entries(credsSecretData(spec.creds)).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]),
  );
  const secret: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: spec.name,
      namespace: spec.namespace,
      labels: { [MANAGED_BY_LABEL]: FIELD_MANAGER },
      annotations: { [NATS_IDENTITY_ANNOTATION]: identityText(spec.identity) },
    },
    type: 'Opaque',
    data,
  };
  if (spec.owner) secret.metadata!.ownerReferences = [{ ...spec.owner }];
  return secret;
}

function identityText(identity: MeshIdentity): string {
  return identity.kind === 'replica' ? `replica ${identity.namespace}/${identity.service}` : identity.kind;
}

export interface MintWanted {
  identity: MeshIdentity;
  /** The public key of the account signing key that must have signed it. */
  signer: string;
  /** The account the JWT must name. */
  account: string;
  responseTtlMs: number;
}

export type MintDecision = { mint: true; reason: string } | { mint: false; checkAt: Date };

/** The permission claims a JWT carries, in a comparable form. */
function permissionClaims(nats: Partial<ReturnType<typeof userClaims>> | undefined): string {
  return JSON.stringify({ pub: nats?.pub ?? {}, sub: nats?.sub ?? {}, resp: nats?.resp ?? null });
}

/**
 * Whether `existing` (the `.creds` stored in the Secret, or undefined: none or unusable) must be minted
 * again, and otherwise when to look again. Level-based: the stored JWT is compared with what it should be.
 */
export function mintDecision(
  existing: ParsedCreds | undefined,
  wanted: MintWanted,
  now: Date,
  policy: RotationPolicy,
): MintDecision {
  if (!existing) return { mint: true, reason: 'there are no credentials yet' };
  const claims = existing.claims;
  if (claims.iss !== wanted.signer)
    return { mint: true, reason: `the JWT was signed by ${claims.iss}, not by the account signing key` };
  if (claims.nats?.issuer_account !== wanted.account)
    return { mint: true, reason: 'the JWT names another account than the mesh account' };
  const want = userClaims(permissionsFor(wanted.identity, { responseTtlMs: wanted.responseTtlMs }));
  if (permissionClaims(claims.nats) !== permissionClaims(want))
    return { mint: true, reason: "the JWT's permissions are not the identity's current ones" };
  const r = rotationDecision(
    { issuedAt: existing.issuedAt, ...(existing.expiresAt ? { expiresAt: existing.expiresAt } : {}) },
    now,
    policy,
  );
  return r.rotate ? { mint: true, reason: r.reason } : { mint: false, checkAt: r.checkAt };
}
