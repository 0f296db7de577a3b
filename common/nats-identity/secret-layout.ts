/**
 * What the operator's Secrets hold, under one set of key names: the trust chain (the operator's own Secret,
 * readable by the operator only) and each identity's user credentials (mounted into the sidecar, or read by
 * the gateway). Reading a Secret back names the Secret and the key in every error.
 */
import { ConfigError } from '../errors';
import { parseCreds, type ParsedCreds } from './creds-format';
import { natsUserName, type MeshIdentity } from './identity';
import { createSystemAccountSeed, meshTrustFromSeeds, type MeshTrust, type MeshTrustSeeds } from './trust-chain';

/** The keys of the trust Secret (nkey seeds, one each). */
export const TRUST_SECRET_KEYS = {
  operatorSeed: 'operator.nk',
  accountSeed: 'account.nk',
  signingKeySeed: 'signing-key.nk',
  /** Added after the first three (JetStream under JWT auth): a Secret of an older operator lacks it. */
  systemAccountSeed: 'system-account.nk',
} as const;

/** The one key of a user-credentials Secret: the `.creds` file. */
export const CREDS_SECRET_KEY = 'nats.creds';
/** Where the sidecar finds its user credentials Secret mounted, and so its FNMESH_NATS_CREDS. */
export const CREDS_MOUNT_DIR = '/var/run/fnmesh/nats';
export const CREDS_MOUNT_FILE = `${CREDS_MOUNT_DIR}/${CREDS_SECRET_KEY}`;

/** The default name of the trust Secret (in the operator's namespace). */
export const TRUST_SECRET_NAME = 'fnmesh-nats-trust';

/** The name of an identity's credentials Secret (a replica's lives in its FunctionService's namespace). */
export function credsSecretName(identity: MeshIdentity): string {
  // fnmesh-gateway, fnmesh-observer, fnmesh-service-{ns}-{svc}: DNS labels joined by '-', ≤ 253 characters
  return `${natsUserName(identity)}-nats`;
}

export function trustSecretData(seeds: MeshTrustSeeds): Record<string, string> {
  return {
    [TRUST_SECRET_KEYS.operatorSeed]: seeds.operator,
    [TRUST_SECRET_KEYS.accountSeed]: seeds.account,
    [TRUST_SECRET_KEYS.signingKeySeed]: seeds.signingKey,
    [TRUST_SECRET_KEYS.systemAccountSeed]: seeds.systemAccount,
  };
}

/**
 * The keys to add to a trust Secret that an older operator created without a system account: a new system
 * account seed, or undefined when it has one (level-based: the same data never gets a second key). Only for
 * a Secret the operator owns; missingSystemAccountError is the answer for one the user names.
 */
export function trustSecretUpgrade(data: Record<string, string | undefined>): Record<string, string> | undefined {
  if (data[TRUST_SECRET_KEYS.systemAccountSeed]?.trim()) return undefined;
  return { [TRUST_SECRET_KEYS.systemAccountSeed]: createSystemAccountSeed() };
}

/** The error for a trust Secret the user names (FNMESH_NATS_TRUST_SECRET) that lacks the system account seed. */
export function missingSystemAccountError(where: string, namespace: string, name: string): ConfigError {
  const key = TRUST_SECRET_KEYS.systemAccountSeed;
  return new ConfigError(
    `${where} has no key ${key}: the trust chain needs a system account (nats-server starts JetStream only with one), and the operator never writes a trust Secret you name; add a new account seed (SA…, from \`nk -gen account\` or \`nsc generate nkey --account\`) under that key: kubectl -n ${namespace} patch secret ${name} -p '{"stringData":{"${key}":"SA…"}}'`,
  );
}

/** `data` as decoded strings (the operator base64-decodes a Secret's data first); `where` names the Secret. */
export function trustFromSecretData(data: Record<string, string | undefined>, where: string): MeshTrust {
  const key = (k: string): string => {
    const v = data[k];
    if (!v?.trim())
      throw new ConfigError(
        `${where} has no key ${k}: the trust Secret needs ${Object.values(TRUST_SECRET_KEYS).join(', ')}; delete it to let the operator create a new trust chain, or add the key`,
      );
    return v.trim();
  };
  return meshTrustFromSeeds(
    {
      operator: key(TRUST_SECRET_KEYS.operatorSeed),
      account: key(TRUST_SECRET_KEYS.accountSeed),
      signingKey: key(TRUST_SECRET_KEYS.signingKeySeed),
      systemAccount: key(TRUST_SECRET_KEYS.systemAccountSeed),
    },
    where,
  );
}

export function credsSecretData(creds: string): Record<string, string> {
  return { [CREDS_SECRET_KEY]: creds };
}

/** The credentials a Secret holds, for the rotation decision; an unusable Secret is an error naming it. */
export function credsFromSecretData(data: Record<string, string | undefined>, where: string): ParsedCreds {
  const creds = data[CREDS_SECRET_KEY];
  const fix = 'delete the Secret to let the operator mint it again';
  if (!creds) throw new ConfigError(`${where} has no key ${CREDS_SECRET_KEY}: ${fix}`);
  return parseCreds(creds, `the key ${CREDS_SECRET_KEY} of ${where}`, fix);
}
