/**
 * Delegation tokens: what a function's sidecar presents, instead of the end user's JWT, when the function
 * calls another function on that user's behalf. The gateway issues one with every call it forwards that
 * carries verified claims, and accepts it back on an internal call only when
 *   - its MAC verifies (only gateways hold the key: a sidecar cannot mint or alter one),
 *   - it was issued to the service that now presents it (`aud` = the caller the subject names),
 *   - the internal call says it is made within the call the token was issued for (parent request id), and
 *   - that call's deadline has not passed.
 * So a token that leaks from a pod is worth the claims it carries, for one service, until one call's
 * deadline: never the user's JWT, which functions never see.
 *
 * Format: `v1.<base64url(JSON payload)>.<base64url(HMAC-SHA256(key, "v1." + payload))>`. Written with
 * node:crypto rather than jose: it is issued on the hot path of every authenticated call, jose's JWS is
 * async (WebCrypto) and several times the cost, and no other party ever needs to read it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, FnmeshError } from '../common';

const VERSION = 'v1';
const PREFIX = `${VERSION}.`;
/** Bytes of a generated key, and the least a configured one may have (HMAC-SHA256's block security). */
export const DELEGATION_KEY_MIN_BYTES = 32;

export interface DelegationGrant {
  /** Request id of the call the token was issued with. */
  rid: string;
  /** `namespace/service` the token was issued to. */
  aud: string;
  /** That call's deadline, epoch milliseconds on the issuing gateway's clock. */
  dl: number;
  /** The end user's verified claims. */
  auth: Record<string, unknown>;
}

/** What an internal call presents along with the token. */
export interface DelegationUse {
  /** `namespace/service` of the calling service (from the subject, which only that service may publish on). */
  caller: string;
  /** The request id of the inbound call the caller says it is calling within. */
  parentId: string | undefined;
  /** Epoch milliseconds now. */
  now: number;
}

const CANONICAL_B64URL = /^[A-Za-z0-9_-]*$/;

function refused(why: string): FnmeshError {
  return new FnmeshError('unauthenticated', `the delegation token of this internal call ${why}`);
}

export class DelegationTokens {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (key.length < DELEGATION_KEY_MIN_BYTES) {
      throw new ConfigError(
        `the delegation key has ${key.length} bytes; it needs at least ${DELEGATION_KEY_MIN_BYTES}: generate one with \`openssl rand -base64 32\``,
      );
    }
    this.key = key;
  }

  /** A gateway with a key of its own (one replica; several must share one key). */
  static generate(): DelegationTokens {
    return new DelegationTokens(randomBytes(DELEGATION_KEY_MIN_BYTES));
  }

  private mac(signed: string): string {
    return createHmac('sha256', this.key).update(signed).digest('base64url');
  }

  issue(grant: DelegationGrant): string {
    const signed = PREFIX + Buffer.from(JSON.stringify(grant), 'utf8').toString('base64url');
    return `${signed}.${this.mac(signed)}`;
  }

  /** The token that goes with a call to `target` made with `requestId`, `timeoutMs` before its deadline. */
  forCall(
    target: { namespace: string; service: string },
    requestId: string,
    claims: Record<string, unknown>,
    timeoutMs: number,
  ): string {
    return this.issue({
      rid: requestId,
      aud: `${target.namespace}/${target.service}`,
      dl: Date.now() + timeoutMs,
      auth: claims,
    });
  }

  /** The claims the token carries; throws FnmeshError('unauthenticated') naming why it is refused. */
  verify(token: string, use: DelegationUse): Record<string, unknown> {
    const dot = token.lastIndexOf('.');
    if (!token.startsWith(PREFIX) || dot <= PREFIX.length) throw refused('is malformed');
    const signed = token.slice(0, dot);
    const sig = token.slice(dot + 1);
    const payload = signed.slice(PREFIX.length);
    if (!CANONICAL_B64URL.test(payload) || !CANONICAL_B64URL.test(sig)) throw refused('is malformed');
    const expected = Buffer.from(this.mac(signed), 'utf8');
    const given = Buffer.from(sig, 'utf8');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw refused('was not issued by this mesh (its signature does not verify)');
    }
    const grant = parseGrant(payload);
    if (!grant) throw refused('is malformed');
    if (grant.aud !== use.caller) {
      throw refused(`was issued to ${grant.aud}, not to the calling service ${use.caller}`);
    }
    if (use.parentId !== grant.rid) {
      throw refused(
        use.parentId === undefined
          ? 'names no inbound call (the parent request id header is missing)'
          : `belongs to call ${grant.rid}, not to call ${use.parentId}`,
      );
    }
    if (use.now >= grant.dl) {
      throw refused(`expired with the deadline of call ${grant.rid}, ${use.now - grant.dl} ms ago`);
    }
    return grant.auth;
  }
}

/**
 * The key from FNMESH_DELEGATION_KEY_FILE (its bytes, without a trailing newline), or a random one. Throws a
 * ConfigError naming the file and the fix.
 */
export function loadDelegationTokens(file: string | undefined, setting: string): DelegationTokens {
  if (file === undefined) return DelegationTokens.generate();
  let key: Buffer;
  try {
    key = readFileSync(file);
  } catch (err) {
    throw new ConfigError(
      `${setting}: cannot read the delegation key file ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}): mount the Secret that holds it, or unset ${setting} on a single gateway replica`,
    );
  }
  let end = key.length;
  while (end > 0 && (key[end - 1] === 0x0a || key[end - 1] === 0x0d)) end--;
  key = key.subarray(0, end);
  if (key.length < DELEGATION_KEY_MIN_BYTES) {
    throw new ConfigError(
      `${setting}: the delegation key in ${file} has ${key.length} bytes; it needs at least ${DELEGATION_KEY_MIN_BYTES}: write one with \`openssl rand -base64 48 > ${file}\``,
    );
  }
  return new DelegationTokens(key);
}

function parseGrant(payload: string): DelegationGrant | undefined {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object') return undefined;
  const g = v as Partial<DelegationGrant>;
  if (typeof g.rid !== 'string' || typeof g.aud !== 'string' || typeof g.dl !== 'number') return undefined;
  if (!g.auth || typeof g.auth !== 'object' || Array.isArray(g.auth)) return undefined;
  return g as DelegationGrant;
}
