/**
 * Minting a user: a fresh user nkey and a user JWT with the identity's permissions and an expiry, signed by
 * the account signing key (the JWT names the account as issuer_account). The result is the user's `.creds`.
 */
import { decode, encodeUser, type User } from '@nats-io/jwt';
import { createUser } from '@nats-io/nkeys';
import { formatCreds } from './creds-format';
import { natsUserName, type MeshIdentity } from './identity';
import { permissionsFor, type NatsPermissions, type PermissionOptions } from './permissions';
import type { MeshTrust } from './trust-chain';

export interface MintOptions extends PermissionOptions {
  /** How long the JWT is valid from now. */
  ttlMs: number;
  now?: Date;
}

export interface MintedUser {
  identity: MeshIdentity;
  publicKey: string;
  jwt: string;
  seed: string;
  /** The `.creds` file's text (JWT and seed). */
  creds: string;
  issuedAt: Date;
  expiresAt: Date;
}

/** The user JWT's `nats` claims for these permissions (allow_responses' ttl is in nanoseconds, as in Go). */
export function userClaims(permissions: NatsPermissions): Partial<User> {
  const claims: Partial<User> = {
    pub: { allow: [...permissions.publish] },
    sub: { allow: [...permissions.subscribe] },
    subs: -1,
    data: -1,
    payload: -1,
    bearer_token: false,
  };
  if (permissions.responses) {
    claims.resp = { max: permissions.responses.max, ttl: permissions.responses.ttlMs * 1_000_000 };
  }
  return claims;
}

export async function mintUser(trust: MeshTrust, identity: MeshIdentity, options: MintOptions): Promise<MintedUser> {
  if (!(options.ttlMs > 0)) throw new Error(`a user JWT needs a positive lifetime, got ${options.ttlMs} ms`);
  const now = options.now ?? new Date();
  const user = createUser();
  const expiresAt = new Date(now.getTime() + options.ttlMs);
  const jwt = await encodeUser(
    natsUserName(identity),
    user,
    trust.account.getPublicKey(),
    userClaims(permissionsFor(identity, options)),
    { signer: trust.signingKey, exp: Math.floor(expiresAt.getTime() / 1000) },
  );
  const seed = new TextDecoder().decode(user.getSeed());
  return {
    identity,
    publicKey: user.getPublicKey(),
    jwt,
    seed,
    creds: formatCreds(jwt, seed),
    // @nats-io/jwt stamps iat with the wall clock at signing
    issuedAt: new Date(decode<User>(jwt).iat * 1000),
    expiresAt,
  };
}
