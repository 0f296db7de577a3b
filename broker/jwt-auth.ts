/**
 * Decentralized JWT authentication as nats-server runs it in operator mode with a memory resolver: trusted
 * operators (their JWT or public key), account JWTs preloaded, and user JWTs presented in CONNECT together
 * with an ed25519 signature of the server's nonce. The operator's and accounts' JWTs (at start) are checked by
 * @nats-io/jwt's `decode`; a user's JWT and nonce signature, on every CONNECT, by the native port of those
 * checks in common/nats-identity/native-keys.ts (nkeys' JavaScript ed25519 cost ~10–40 ms a CONNECT); the trust chain, validity dates, revocations, bearer
 * tokens, connection types, source networks and limits are checked here, in nats-server's order.
 */
import net from 'node:net';
import { decode, type Account, type ClaimsData, type Operator, type SigningKeys, type User } from '@nats-io/jwt';
import { fromPublic } from '@nats-io/nkeys';
import { decodeNatsJwt, verifyWithPublicNkey } from '../common/nats-identity/native-keys';
import type { PermissionSpec } from './permissions';

/**
 * -1 is unlimited, as in the JWTs. Only what nats-server 2.9 applies to a client connection
 * (client.go applyAccountLimits: the user's and the account's `subs` and `payload`; accounts.go: the
 * account's `conn`). A JWT's `data` (bytes) is not enforced on core NATS by nats-server, nor here.
 */
export interface ConnectionLimits {
  subs: number;
  payload: number;
}

export interface JwtAccount {
  readonly publicKey: string;
  readonly name: string;
  /** Connections the account allows at once (-1 unlimited). */
  readonly maxConnections: number;
  connections: number;
}

export type JwtAuthResult =
  | { ok: false; reason: string }
  | {
      ok: true;
      identity: string;
      account: JwtAccount;
      permissions: PermissionSpec | undefined;
      limits: ConnectionLimits;
      /** Unix ms when the credentials stop being valid (the user's or its account's `exp`), if ever. */
      expiresAt: number | undefined;
    };

export interface JwtCredentials {
  jwt?: unknown;
  sig?: unknown;
}

interface AccountEntry {
  claims: ClaimsData<Account>;
  state: JwtAccount;
  /** Signing keys (string or scoped) by public key; scoped ones carry the user template. */
  signers: Map<string, SigningKeyEntry>;
}

interface SigningKeyEntry {
  scoped: boolean;
  template?: Partial<User>;
}

/** nats-server's limit for an account JWT field that is absent (Go's zero value). */
const ABSENT = 0;
const NO_LIMIT = -1;

export class JwtAuthenticator {
  private readonly trusted = new Set<string>();
  private readonly accounts = new Map<string, AccountEntry>();

  /**
   * @param operators operator JWTs (self-signed; their signing keys are trusted too) or operator public keys
   * @param accountJwts account JWTs, each signed by a trusted operator key (the memory resolver's preload)
   */
  constructor(operators: string[], accountJwts: string[], now = Date.now()) {
    if (operators.length === 0) throw new Error('broker: JWT auth needs at least one trusted operator');
    for (const op of operators) this.trustOperator(op.trim());
    for (const a of accountJwts) this.preload(a.trim(), now);
  }

  /** Verifies a CONNECT's `jwt` and `sig` against the nonce the server sent. */
  authenticate(c: JwtCredentials, nonce: string, clientIp: string | undefined, now = Date.now()): JwtAuthResult {
    if (typeof c.jwt !== 'string' || c.jwt === '') return { ok: false, reason: 'no user JWT in CONNECT' };
    let user: ClaimsData<User>;
    try {
      user = decodeNatsJwt<ClaimsData<User>>(c.jwt);
    } catch (err) {
      return { ok: false, reason: `user JWT invalid: ${(err as Error).message}` };
    }
    if (user.nats?.type !== 'user' && user.type !== 'user') return { ok: false, reason: 'JWT is not a user JWT' };
    if (typeof user.sub !== 'string' || !user.sub.startsWith('U'))
      return { ok: false, reason: 'user JWT subject is not a user key' };
    const dates = checkDates(user, now);
    if (dates) return { ok: false, reason: `user JWT ${dates}` };
    const accountKey = user.nats.issuer_account ?? user.iss;
    const account = this.accounts.get(accountKey);
    if (!account) return { ok: false, reason: `account ${accountKey} is not known` };
    const accountDates = checkDates(account.claims, now);
    if (accountDates) return { ok: false, reason: `account JWT ${accountDates}` };
    let signer: SigningKeyEntry | undefined;
    if (user.iss !== accountKey) {
      signer = account.signers.get(user.iss);
      if (!signer) return { ok: false, reason: 'user JWT issuer is not the account or one of its signing keys' };
    }
    // as nats-server: a user of a scoped signing key gets the key's template and may claim nothing itself
    if (signer?.scoped && !hasNoOwnPermissions(user.nats))
      return { ok: false, reason: 'a user of a scoped signing key must not set permissions or limits' };
    const nats: Partial<User> = signer?.scoped ? (signer.template ?? {}) : user.nats;
    if (user.nats.bearer_token === true) {
      if (account.claims.nats.limits?.disallow_bearer === true || account.claims.nats.disallow_bearer === true)
        return { ok: false, reason: 'bearer tokens are not allowed in this account' };
    } else {
      if (typeof c.sig !== 'string' || !verifyNonce(user.sub, nonce, c.sig))
        return { ok: false, reason: 'signature of the nonce does not verify' };
    }
    if (isRevoked(account.claims.nats.revocations, user.sub, user.iat))
      return { ok: false, reason: 'user JWT is revoked' };
    const types = nats.allowed_connection_types;
    if (types && types.length > 0 && !types.includes('STANDARD'))
      return { ok: false, reason: 'user may not use a standard client connection' };
    if (nats.src && nats.src.length > 0 && !sourceAllowed(nats.src, clientIp))
      return { ok: false, reason: `client address ${clientIp ?? '?'} is not in the user's src networks` };
    // time-of-day windows are not implemented: refuse rather than allow more than the JWT says
    if (nats.times && nats.times.length > 0) return { ok: false, reason: 'user JWT time windows are not supported' };
    const accLimits = account.claims.nats.limits ?? {};
    const limits: ConnectionLimits = {
      subs: tighter(nats.subs ?? ABSENT, accLimits.subs ?? ABSENT),
      payload: tighter(nats.payload ?? ABSENT, accLimits.payload ?? ABSENT),
    };
    const exps = [user.exp, account.claims.exp].filter((e): e is number => typeof e === 'number' && e > 0);
    return {
      ok: true,
      identity: user.name ? `${user.name} (${user.sub})` : user.sub,
      account: account.state,
      permissions: permissionSpec(nats),
      limits,
      expiresAt: exps.length > 0 ? Math.min(...exps) * 1000 : undefined,
    };
  }

  private trustOperator(op: string): void {
    if (!op.includes('.')) {
      if (!/^O[A-Z2-7]{55}$/.test(op))
        throw new Error(`broker: ${short(op)} is neither an operator JWT nor an operator public key`);
      fromPublic(op);
      this.trusted.add(op);
      return;
    }
    let claims: ClaimsData<Operator>;
    try {
      claims = decode<Operator>(op);
    } catch (err) {
      throw new Error(
        `broker: operator JWT does not verify (${(err as Error).message}); give the operator's JWT or public key`,
      );
    }
    if (claims.nats?.type !== 'operator' || claims.iss !== claims.sub)
      throw new Error('broker: the trusted operator JWT is not a self-signed operator JWT');
    this.trusted.add(claims.sub);
    for (const k of signingKeys(claims.nats.signing_keys)) this.trusted.add(k.key);
  }

  private preload(accountJwt: string, now: number): void {
    let claims: ClaimsData<Account>;
    try {
      claims = decode<Account>(accountJwt);
    } catch (err) {
      throw new Error(`broker: an account JWT does not verify (${(err as Error).message})`);
    }
    if (claims.nats?.type !== 'account' || !claims.sub.startsWith('A'))
      throw new Error(`broker: ${short(accountJwt)} is not an account JWT`);
    if (!this.trusted.has(claims.iss))
      throw new Error(`broker: account ${claims.name} (${claims.sub}) is not signed by a trusted operator key`);
    const signers = new Map<string, SigningKeyEntry>();
    for (const k of signingKeys(claims.nats.signing_keys))
      signers.set(k.key, { scoped: k.template !== undefined, template: k.template });
    const limit = claims.nats.limits?.conn;
    this.accounts.set(claims.sub, {
      claims,
      signers,
      state: { publicKey: claims.sub, name: claims.name, maxConnections: limit ?? ABSENT, connections: 0 },
    });
    void now;
  }
}

/** The user JWT fields that scoped signing keys set instead (Go's UserPermissionLimits). */
const USER_PERMISSION_FIELDS = [
  'pub',
  'sub',
  'resp',
  'src',
  'times',
  'times_location',
  'locale',
  'subs',
  'data',
  'payload',
  'bearer_token',
  'allowed_connection_types',
] as const;

/** Zero as Go's reflect.DeepEqual against the zero value sees it: an array, even empty, is not zero. */
function isZero(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return true;
  if (Array.isArray(v)) return false;
  if (typeof v === 'object') return Object.values(v).every(isZero);
  return false;
}

function hasNoOwnPermissions(nats: Partial<User>): boolean {
  const fields = nats as Record<string, unknown>;
  return USER_PERMISSION_FIELDS.every((f) => isZero(fields[f]));
}

function signingKeys(keys: SigningKeys | undefined): Array<{ key: string; template?: Partial<User> }> {
  return (keys ?? []).map((k) => (typeof k === 'string' ? { key: k } : { key: k.key, template: k.template }));
}

/** nats-server's time check: `exp` passed or `nbf` not yet reached (seconds). */
function checkDates(c: { exp?: number; nbf?: number }, now: number): string | undefined {
  const s = Math.floor(now / 1000);
  if (typeof c.exp === 'number' && c.exp > 0 && s > c.exp) return 'has expired';
  if (typeof c.nbf === 'number' && c.nbf > 0 && s < c.nbf) return 'is not yet valid';
  return undefined;
}

/** Revoked when the account lists the user (or `*`) with a time at or after the JWT's issue time. */
export function isRevoked(revocations: Record<string, number> | undefined, user: string, issuedAt: number): boolean {
  if (!revocations) return false;
  const all = revocations['*'];
  if (all !== undefined && all >= issuedAt) return true;
  const t = revocations[user];
  return t !== undefined && t >= issuedAt;
}

/** The tighter of two limits where -1 is unlimited. */
function tighter(a: number, b: number): number {
  if (a === NO_LIMIT) return b;
  if (b === NO_LIMIT) return a;
  return Math.min(a, b);
}

/** nats-server accepts the nonce signature in raw base64url or in standard base64. */
function verifyNonce(userKey: string, nonce: string, sig: string): boolean {
  const bytes = /^[A-Za-z0-9_-]*$/.test(sig) ? Buffer.from(sig, 'base64url') : Buffer.from(sig, 'base64');
  if (bytes.length !== 64) return false;
  try {
    return verifyWithPublicNkey(userKey, new TextEncoder().encode(nonce), bytes);
  } catch {
    return false;
  }
}

function sourceAllowed(src: string[], ip: string | undefined): boolean {
  if (!ip) return false;
  const addr = ip.replace(/^::ffff:/, '');
  const family = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
  const list = new net.BlockList();
  for (const entry of src.flatMap((s) => s.split(','))) {
    const e = entry.trim();
    if (e === '') continue;
    const [base, bits] = e.split('/');
    if (!base || !net.isIP(base)) continue;
    const fam = net.isIPv6(base) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(base, fam);
    else list.addSubnet(base, Number(bits), fam);
  }
  return list.check(addr, family);
}

/** The permissions of a user JWT (or of a scoped signing key's template). */
function permissionSpec(u: Partial<User>): PermissionSpec | undefined {
  const nonEmpty = (xs: string[] | undefined): string[] | undefined => (xs && xs.length > 0 ? xs : undefined);
  const spec: PermissionSpec = {};
  const pubAllow = nonEmpty(u.pub?.allow);
  const pubDeny = nonEmpty(u.pub?.deny);
  const subAllow = nonEmpty(u.sub?.allow);
  const subDeny = nonEmpty(u.sub?.deny);
  if (pubAllow || pubDeny) spec.publish = { allow: pubAllow, deny: pubDeny };
  if (subAllow || subDeny) spec.subscribe = { allow: subAllow, deny: subDeny };
  if (u.resp) {
    // the JWT's ttl is a Go duration (nanoseconds); 0 means nats-server's defaults (1 message, 2 minutes)
    spec.responses = { max: u.resp.max ?? 0, ttlMs: (u.resp.ttl ?? 0) / 1e6 };
  }
  return spec.publish || spec.subscribe || spec.responses ? spec : undefined;
}

function short(s: string): string {
  return s.length > 16 ? `${s.slice(0, 12)}…` : s;
}
