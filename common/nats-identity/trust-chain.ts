/**
 * The mesh's NATS trust chain (decentralized JWT authentication): an operator, one account for the mesh,
 * and an account signing key that signs every user JWT. The account's identity key signs nothing after the
 * account exists; the operator key signs the account JWT (again when a user is revoked). Keys are ed25519
 * nkeys (@nats-io/nkeys), JWTs are signed with @nats-io/jwt.
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
}

/** The trust chain as text (what a Secret holds): three nkey seeds. */
export interface MeshTrustSeeds {
  operator: string;
  account: string;
  signingKey: string;
}

export const MESH_OPERATOR_NAME = 'fnmesh';
export const MESH_ACCOUNT_NAME = 'fnmesh';

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
  };
}

export function meshTrustSeeds(trust: MeshTrust): MeshTrustSeeds {
  const seed = (kp: KeyPair): string => new TextDecoder().decode(kp.getSeed());
  return { operator: seed(trust.operator), account: seed(trust.account), signingKey: seed(trust.signingKey) };
}

/** The trust chain back from its seeds; `where` names their source (e.g. the Secret) in errors. */
export function meshTrustFromSeeds(seeds: MeshTrustSeeds, where: string): MeshTrust {
  return {
    operator: keyFromSeed(seeds.operator, 'operator', `the operator seed in ${where}`),
    account: keyFromSeed(seeds.account, 'account', `the account seed in ${where}`),
    signingKey: keyFromSeed(seeds.signingKey, 'account', `the account signing key in ${where}`),
  };
}

export async function operatorJwt(trust: MeshTrust): Promise<string> {
  return encodeOperator(MESH_OPERATOR_NAME, trust.operator);
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

/** The account JWT, signed by the operator, with the signing key and the revoked users. */
export async function accountJwt(trust: MeshTrust, revocations: RevocationList = {}): Promise<string> {
  const account: Partial<Account> = {
    limits: { ...UNLIMITED_ACCOUNT_LIMITS },
    signing_keys: [trust.signingKey.getPublicKey()],
  };
  if (Object.keys(revocations).length > 0) account.revocations = { ...revocations };
  return encodeAccount(MESH_ACCOUNT_NAME, trust.account, account, { signer: trust.operator });
}

/**
 * The revocation list with `userPublicKey` revoked: nats-server refuses every JWT of that user issued at or
 * before `at` (seconds), so a user minted again later (a new FunctionService of the same name) gets in.
 */
export function revokeUser(revocations: RevocationList, userPublicKey: string, at: Date): RevocationList {
  return { ...revocations, [userPublicKey]: Math.floor(at.getTime() / 1000) };
}
