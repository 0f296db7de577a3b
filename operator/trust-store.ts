/**
 * The mesh's NATS trust chain in Kubernetes: the operator's seeds Secret (only the operator reads it), created
 * once when absent, and the public parts published into a separate Secret that nats-server (or anything
 * else) can mount without seeing a seed. Two operator replicas racing to create the chain produce one:
 * the create uses the fixed name, and the loser (409 AlreadyExists) reads the winner's. A trust Secret of
 * an older operator (no system account seed) gets one added the same way: a patch conditional on the
 * resourceVersion it read, and the loser (409 Conflict) reads the winner's. A trust Secret the user names is
 * never written: one without the key is an error naming the key and the fix.
 */
import type { V1Secret } from '@kubernetes/client-node';
import { ConfigError } from '../common/errors';
import {
  MESH_JETSTREAM_LIMITS,
  TRUST_SECRET_KEYS,
  accountJwt,
  createMeshTrust,
  meshOperatorModeConfig,
  meshTrustSeeds,
  missingSystemAccountError,
  operatorJwt,
  trustFromSecretData,
  trustSecretData,
  trustSecretUpgrade,
  type MeshTrust,
} from '../common/nats-identity';
import { decode, type Account, type Operator } from '@nats-io/jwt';
import type { NatsCredsConfig, ObjectRef } from './config';
import { FIELD_MANAGER, MANAGED_BY_LABEL } from './desired-deployment';
import type { SecretWriter } from './kube-writer';

/** The keys of the account Secret: what a broker needs, nothing it must not see. */
export const ACCOUNT_SECRET_KEYS = {
  operatorJwt: 'operator.jwt',
  accountJwt: 'account.jwt',
  /**
   * A nats-server config fragment (operator, system account, MEMORY resolver, both accounts preloaded):
   * `include` it. nats-server reads it at start only: restart the servers after it changes.
   */
  resolverConf: 'resolver.conf',
} as const;

const b64 = (v: string): string => Buffer.from(v, 'utf8').toString('base64');

/** A Secret's data as strings (the API server returns base64). Pure. */
export function decodedSecretData(secret: V1Secret | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

function where(ref: ObjectRef): string {
  return `Secret ${ref.namespace}/${ref.name}`;
}

function secretObject(ref: ObjectRef, data: Record<string, string>): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: ref.name, namespace: ref.namespace, labels: { [MANAGED_BY_LABEL]: FIELD_MANAGER } },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  };
}

/** The trust chain: read from its Secret, or (when allowed) created with a new chain if there is none. */
export async function loadTrust(secrets: SecretWriter, cfg: NatsCredsConfig): Promise<MeshTrust> {
  const ref = cfg.trustSecret;
  let secret = await secrets.readSecret(ref.namespace, ref.name);
  if (!secret) {
    if (!cfg.createTrust)
      throw new ConfigError(
        `the trust ${where(ref)} named by FNMESH_NATS_TRUST_SECRET does not exist: create it with the keys ${Object.values(TRUST_SECRET_KEYS).join(', ')} (nkey seeds), or unset FNMESH_NATS_TRUST_SECRET to let the operator create one`,
      );
    const created = await secrets.createSecret(secretObject(ref, trustSecretData(meshTrustSeeds(createMeshTrust()))));
    // undefined: another replica created it first; its chain is the one.
    secret = created ?? (await secrets.readSecret(ref.namespace, ref.name));
    if (!secret) throw new Error(`${where(ref)} was created by someone else and is gone again; retrying`);
  }
  for (let attempt = 0; ; attempt++) {
    const added = trustSecretUpgrade(decodedSecretData(secret));
    if (!added) break;
    if (!cfg.createTrust) throw missingSystemAccountError(where(ref), ref.namespace, ref.name);
    const rv = secret.metadata?.resourceVersion;
    if (!rv || attempt >= 3)
      throw new Error(`${where(ref)} keeps changing while the operator adds its system account seed; retrying`);
    const encoded = Object.fromEntries(Object.entries(added).map(([k, v]) => [k, b64(v)]));
    // undefined: another replica (or someone) changed it first; read it again and decide again
    const updated = await secrets.addSecretData(ref.namespace, ref.name, rv, encoded);
    secret = updated ?? (await secrets.readSecret(ref.namespace, ref.name));
    if (!secret) throw new Error(`${where(ref)} is gone while the operator adds its system account seed; retrying`);
  }
  return trustFromSecretData(decodedSecretData(secret), where(ref));
}

/** True when the published account Secret already describes this trust chain (its JWTs' keys). Pure. */
export function accountSecretCurrent(data: Record<string, string>, trust: MeshTrust): boolean {
  try {
    const op = decode<Operator>(data[ACCOUNT_SECRET_KEYS.operatorJwt] ?? '');
    const acc = decode<Account>(data[ACCOUNT_SECRET_KEYS.accountJwt] ?? '');
    const sys = trust.systemAccount.getPublicKey();
    return (
      op.sub === trust.operator.getPublicKey() &&
      op.nats.system_account === sys &&
      // JetStream for the mesh account (published by an operator from before it had it: none)
      acc.nats.limits?.disk_storage === MESH_JETSTREAM_LIMITS.disk_storage &&
      acc.sub === trust.account.getPublicKey() &&
      acc.iss === trust.operator.getPublicKey() &&
      (acc.nats.signing_keys ?? []).some(
        (k) => (typeof k === 'string' ? k : k.key) === trust.signingKey.getPublicKey(),
      ) &&
      (data[ACCOUNT_SECRET_KEYS.resolverConf] ?? '').includes(`system_account: ${JSON.stringify(sys)}`)
    );
  } catch {
    return false;
  }
}

/** The account Secret's data for this chain. */
export async function accountSecretData(trust: MeshTrust): Promise<Record<string, string>> {
  return {
    [ACCOUNT_SECRET_KEYS.operatorJwt]: await operatorJwt(trust),
    [ACCOUNT_SECRET_KEYS.accountJwt]: await accountJwt(trust),
    [ACCOUNT_SECRET_KEYS.resolverConf]: await meshOperatorModeConfig(trust),
  };
}

/** Publishes the public parts unless they are there already (no write at steady state). */
export async function publishAccount(secrets: SecretWriter, ref: ObjectRef, trust: MeshTrust): Promise<boolean> {
  const existing = await secrets.readSecret(ref.namespace, ref.name);
  if (existing && accountSecretCurrent(decodedSecretData(existing), trust)) return false;
  await secrets.applySecret(secretObject(ref, await accountSecretData(trust)));
  return true;
}
