/**
 * Minting a user: a fresh user nkey and a user JWT with the identity's permissions and an expiry, signed by
 * the account signing key (the JWT names the account as issuer_account). The result is the user's `.creds`.
 */
import { encodeUser, type User } from '@nats-io/jwt';
import { Prefix } from '@nats-io/nkeys';
import { createNativeKeyPair } from './native-keys';
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
  const user = createNativeKeyPair(Prefix.User);
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
    // @nats-io/jwt stamps iat with the wall clock at signing. Read without decode(), which verifies the
    // signature with nkeys' JavaScript ed25519 (most of a mint's CPU): this process signed it a moment ago.
    issuedAt: new Date(issuedAtOf(jwt) * 1000),
    expiresAt,
  };
}

/** The `iat` of a JWT this process just signed, read without verifying it. */
function issuedAtOf(jwt: string): number {
  const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iat?: unknown };
  if (typeof payload.iat !== 'number') throw new Error('@nats-io/jwt signed a user JWT without iat');
  return payload.iat;
}
