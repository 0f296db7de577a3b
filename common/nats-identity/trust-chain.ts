/**
 * The mesh's NATS trust chain (decentralized JWT authentication): an operator, one account for the mesh,
 * an account signing key that signs every user JWT, and the system account (nats-server's own account for
 * its internal traffic: cluster-wide JetStream needs one). The account's identity key signs nothing after the
 * account exists; the operator key signs the account JWTs (again when a user is revoked). No fnmesh part is a
 * user of the system account: its seed is kept so that an administrator can mint one (`nats server report`).
 * Keys are ed25519 nkeys (@nats-io/nkeys), JWTs are signed with @nats-io/jwt.
 */
import { encodeAccount, encodeOperator, type Account, type RevocationList } from '@nats-io/jwt';
import { Prefix, fromSeed, type KeyPair } from '@nats-io/nkeys';
import { createNativeKeyPair, nativeKeyPair } from './native-keys';
import { ConfigError } from '../errors';

export interface MeshTrust {
  operator: KeyPair;
  account: KeyPair;
  /** Signs user JWTs; listed in the account JWT's signing_keys. */
  signingKey: KeyPair;
  /** The system account (the operator JWT's `system_account`); no JetStream, no fnmesh users. */
  systemAccount: KeyPair;
}

/** The trust chain as text (what a Secret holds): four nkey seeds. */
export interface MeshTrustSeeds {
  operator: string;
  account: string;
  signingKey: string;
  systemAccount: string;
}

export const MESH_OPERATOR_NAME = 'fnmesh';
export const MESH_ACCOUNT_NAME = 'fnmesh';
/** The system account's name (nsc's and the NATS docs' `SYS`). */
export const MESH_SYSTEM_ACCOUNT_NAME = 'SYS';

/** The kind of key an nkey seed holds, by its second letter (`SO…` operator, `SA…` account, `SU…` user). */
export type NkeyKind = 'operator' | 'account' | 'user' | 'server' | 'cluster' | 'curve' | 'unknown';

export function seedKind(seed: string): NkeyKind {
  if (seed[0] !== 'S') return 'unknown';
  switch (seed[1]) {
    case 'O':
      return 'operator';
    case 'A':
      return 'account';
    case 'U':
      return 'user';
    case 'N':
      return 'server';
    case 'C':
      return 'cluster';
    case 'X':
      return 'curve';
    default:
      return 'unknown';
  }
}

const SEED_PREFIX: Record<NkeyKind, string> = {
  operator: 'SO',
  account: 'SA',
  user: 'SU',
  server: 'SN',
  cluster: 'SC',
  curve: 'SX',
  unknown: 'S',
};

/**
 * What is wrong with `seed` as a key of `kind`, as words that follow "the seed": undefined when it is one
 * (an nkey seed of that kind with a valid checksum).
 */
export function seedProblem(seed: string, kind: NkeyKind): string | undefined {
  const found = seedKind(seed);
  const wanted = `${article(kind)} ${kind} seed (${SEED_PREFIX[kind]}…)`;
  if (found === 'unknown') return `is not an nkey seed, where ${wanted} belongs`;
  if (found !== kind) return `is ${article(found)} ${found} seed (${SEED_PREFIX[found]}…), where ${wanted} belongs`;
  try {
    fromSeed(new TextEncoder().encode(seed));
  } catch (err) {
    return `is not a valid nkey seed (${(err as Error).message}), where ${wanted} belongs`;
  }
  return undefined;
}

/** A key pair from a seed that must be of `kind`; `what` names the seed ("the account seed in Secret x/y"). */
export function keyFromSeed(seed: string, kind: NkeyKind, what: string): KeyPair {
  const trimmed = seed.trim();
  const problem = seedProblem(trimmed, kind);
  if (problem) throw new ConfigError(`${what} ${problem}: give it the ${kind} key's seed`);
  return nativeKeyPair(new TextEncoder().encode(trimmed));
}

function article(word: string): string {
  return /^[aeio]/.test(word) ? 'an' : 'a'; // "a user", "an account"
}

export function createMeshTrust(): MeshTrust {
  return {
    operator: createNativeKeyPair(Prefix.Operator),
    account: createNativeKeyPair(Prefix.Account),
    signingKey: createNativeKeyPair(Prefix.Account),
    systemAccount: createNativeKeyPair(Prefix.Account),
  };
}

/** A new system account seed (for a trust chain stored before it had one). */
export function createSystemAccountSeed(): string {
  return new TextDecoder().decode(createNativeKeyPair(Prefix.Account).getSeed());
}

export function meshTrustSeeds(trust: MeshTrust): MeshTrustSeeds {
  const seed = (kp: KeyPair): string => new TextDecoder().decode(kp.getSeed());
  return {
    operator: seed(trust.operator),
    account: seed(trust.account),
    signingKey: seed(trust.signingKey),
    systemAccount: seed(trust.systemAccount),
  };
}

/** The trust chain back from its seeds; `where` names their source (e.g. the Secret) in errors. */
export function meshTrustFromSeeds(seeds: MeshTrustSeeds, where: string): MeshTrust {
  const trust = {
    operator: keyFromSeed(seeds.operator, 'operator', `the operator seed in ${where}`),
    account: keyFromSeed(seeds.account, 'account', `the account seed in ${where}`),
    signingKey: keyFromSeed(seeds.signingKey, 'account', `the account signing key in ${where}`),
    systemAccount: keyFromSeed(seeds.systemAccount, 'account', `the system account seed in ${where}`),
  };
  const sys = trust.systemAccount.getPublicKey();
  if (sys === trust.account.getPublicKey() || sys === trust.signingKey.getPublicKey())
    throw new ConfigError(
      `the system account seed in ${where} is the mesh account's own key or its signing key: the system account must be a key of its own (a new account seed), or every mesh user would be a system user`,
    );
  return trust;
}

/** The operator JWT: self-signed, naming the system account (nats-server reads it from here too). */
export async function operatorJwt(trust: MeshTrust): Promise<string> {
  return encodeOperator(MESH_OPERATOR_NAME, trust.operator, { system_account: trust.systemAccount.getPublicKey() });
}

/**
 * Explicitly unlimited: an account JWT without limits allows zero connections (nats-server 2.9.10). What a
 * user may do is bounded by its permissions, not by counts.
 */
export const UNLIMITED_ACCOUNT_LIMITS = {
  conn: -1,
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  leaf: -1,
  wildcards: true,
  // only signed users (a JWT and a signature of the server's nonce), never a bearer JWT alone
  disallow_bearer: true,
} as const;

/**
 * JetStream for the mesh account (an account without JetStream limits has no JetStream): file storage, as
 * much as each server's `max_file_store` holds (the chart sets it from its volume's size), any number of
 * streams and consumers. No memory storage: a memory stream would grow the NATS pods past their memory
 * limits, which nothing in the server config bounds. Who may use JetStream is a user's permissions: no fnmesh
 * part's user may publish to `$JS.API.>` today.
 */
export const MESH_JETSTREAM_LIMITS = {
  disk_storage: -1,
  mem_storage: 0,
  streams: -1,
  consumer: -1,
} as const;

/** The account JWT, signed by the operator, with the signing key and the revoked users. */
export async function accountJwt(trust: MeshTrust, revocations: RevocationList = {}): Promise<string> {
  const account: Partial<Account> = {
    limits: { ...UNLIMITED_ACCOUNT_LIMITS, ...MESH_JETSTREAM_LIMITS },
    signing_keys: [trust.signingKey.getPublicKey()],
  };
  if (Object.keys(revocations).length > 0) account.revocations = { ...revocations };
  return encodeAccount(MESH_ACCOUNT_NAME, trust.account, account, { signer: trust.operator });
}

/**
 * The system account's JWT, signed by the operator: unlimited connections (for an administrator's system
 * user), no signing keys, no JetStream (nats-server refuses JetStream on the system account).
 */
export async function systemAccountJwt(trust: MeshTrust): Promise<string> {
  return encodeAccount(
    MESH_SYSTEM_ACCOUNT_NAME,
    trust.systemAccount,
    { limits: { ...UNLIMITED_ACCOUNT_LIMITS } },
    { signer: trust.operator },
  );
}

/** Every account nats-server preloads for the mesh: public key → account JWT (the mesh's and the system's). */
export async function meshAccountJwts(
  trust: MeshTrust,
  revocations: RevocationList = {},
): Promise<Record<string, string>> {
  return {
    [trust.account.getPublicKey()]: await accountJwt(trust, revocations),
    [trust.systemAccount.getPublicKey()]: await systemAccountJwt(trust),
  };
}

/**
 * The revocation list with `userPublicKey` revoked: nats-server refuses every JWT of that user issued at or
 * before `at` (seconds), so a user minted again later (a new FunctionService of the same name) gets in.
 */
export function revokeUser(revocations: RevocationList, userPublicKey: string, at: Date): RevocationList {
  return { ...revocations, [userPublicKey]: Math.floor(at.getTime() / 1000) };
}
