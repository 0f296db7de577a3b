/**
 * JWT verification for the gateway (jose underneath).
 *
 * Decisions:
 * - Algorithms are pinned per key source: shared secrets verify HS256 only; a JWKS (file and/or URL)
 *   verifies asymmetric algorithms only (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA). The token
 *   header's `alg` picks the source; `none` and anything else are refused before any key is touched, so
 *   an HS256 token can never be checked against a JWKS public key (algorithm confusion), and an RS256
 *   token is refused when only secrets are configured.
 * - A JWKS must hold public asymmetric keys: `oct` (symmetric) keys and keys with private material (`d`)
 *   are configuration errors. Secrets must be at least 32 bytes (HS256's key size).
 * - The token's text is checked first (jwt-format.ts: three canonical base64url segments, JSON object header
 *   and payload, no crit/b64 extensions), then jose verifies the signature over exactly that text
 *   (compactVerify), then the claims are judged (jwt-claims.ts): exp (required unless `requireExp` is
 *   false), nbf and iat (not in the future) with `clockToleranceSec` (default 5), issuer/audience when
 *   configured. Keys embedded in or pointed to by the token (jwk, jku, x5c, x5u) are never used.
 * - Every failure is FnmeshError('unauthenticated', <clear message>), except a JWKS URL that cannot be
 *   fetched, which is FnmeshError('unavailable') (the server's problem, not the caller's).
 * - Hot path: verified claims are cached by token string (LRU, 10k entries by default) until the earliest
 *   of the token's `exp` (+ tolerance) and a short TTL (60 s default), so revocation-by-key-rotation
 *   takes effect within the TTL; a JWKS reload clears the cache. Cached claims are deep-frozen (shared).
 * - A JWKS file is watched (its directory, so atomic replaces and Kubernetes ConfigMap symlink swaps are
 *   seen) and reloaded after a 200 ms debounce; a bad new file keeps the old keys and logs the error.
 *   `close()` stops the watcher.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import {
  compactVerify,
  createLocalJWKSet,
  createRemoteJWKSet,
  importJWK,
  type JWK,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  type VerifyOptions,
} from 'jose';
import { ConfigError, FnmeshError, errorMessage } from '../../common/errors';
import { silentLogger, type Logger } from '../../common/logger';
import { claimsProblem, type ClaimsPolicy } from './jwt-claims';
import { parseCompactJwt } from './jwt-format';

export interface JwtConfig {
  /** HS256 shared secrets, any of which may verify (rotation: list the new and the old). */
  secrets?: string[];
  /** Path to a JWKS JSON file (RS256/ES256/... public keys). */
  jwksFile?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** Clock skew allowed for exp, nbf and iat, seconds; default 5. */
  clockToleranceSec?: number;
  /** Refuse tokens without `exp` (default true). */
  requireExp?: boolean;
}

export interface JwtVerifier {
  /** Resolves to the verified claims; throws FnmeshError('unauthenticated', <why>) otherwise. */
  verify(token: string): Promise<Record<string, unknown>>;
  /** True when a secret or a JWKS is configured. */
  readonly enabled: boolean;
  /** Stops watching the JWKS file (no-op otherwise). */
  close(): void;
}

export interface JwtVerifierOptions {
  logger?: Logger;
  /** Verified-claims cache size; 0 disables the cache. Default 10 000. */
  cacheMaxEntries?: number;
  /** Longest time a verification is reused, milliseconds. Default 60 000. */
  cacheTtlMs?: number;
  /** Watch the JWKS file and reload it on change. Default true. */
  watchJwksFile?: boolean;
  /** Debounce of JWKS file reloads, milliseconds. Default 200. */
  reloadDebounceMs?: number;
  /** Called after each JWKS file reload attempt (tests, metrics). */
  onJwksReload?: (error?: Error) => void;
}

export const HMAC_ALGORITHMS = ['HS256'] as const;
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
const MIN_SECRET_BYTES = 32;
const MAX_TOKEN_LENGTH = 16 * 1024;
const NO_VERIFIER = 'this gateway has no JWT secret or JWKS configured; set FNMESH_JWT_SECRET or FNMESH_JWKS_FILE';

const unauthenticated = (message: string): FnmeshError => new FnmeshError('unauthenticated', message);

/** The token from an `Authorization: Bearer <token>` header; undefined when there is no header. */
export function bearerToken(authorizationHeader: string | undefined): string | undefined {
  if (authorizationHeader === undefined || authorizationHeader.trim() === '') return undefined;
  const m = /^\s*Bearer +([^\s]+)\s*$/i.exec(authorizationHeader);
  if (!m) {
    const scheme = /^\s*(\S+)/.exec(authorizationHeader)?.[1] ?? '';
    const what = /^bearer$/i.test(scheme) ? 'the token is missing' : `the scheme is not Bearer`;
    throw unauthenticated(`the Authorization header is malformed (${what}): send "Authorization: Bearer <token>"`);
  }
  return m[1];
}

// ------------------------------------------------------------------------------------------- JWKS

function checkJwks(value: unknown, source: string): JSONWebKeySet {
  if (value === null || typeof value !== 'object' || !Array.isArray((value as { keys?: unknown }).keys)) {
    throw new ConfigError(`${source} is not a JWKS: it must be a JSON object {"keys": [<public JWK>, ...]}`);
  }
  const keys = (value as { keys: unknown[] }).keys;
  if (keys.length === 0) throw new ConfigError(`${source} has no keys: add at least one public JWK to "keys"`);
  keys.forEach((k, i) => {
    if (k === null || typeof k !== 'object') throw new ConfigError(`${source}: keys[${i}] is not a JWK object`);
    const jwk = k as Record<string, unknown>;
    if (jwk.kty === 'oct') {
      throw new ConfigError(
        `${source}: keys[${i}] is a symmetric (oct) key; a JWKS holds public keys only; put shared HS256 secrets in FNMESH_JWT_SECRET`,
      );
    }
    if (!['RSA', 'EC', 'OKP'].includes(String(jwk.kty))) {
      throw new ConfigError(
        `${source}: keys[${i}] has kty ${JSON.stringify(jwk.kty)}; supported are RSA, EC and OKP public keys`,
      );
    }
    if (jwk.kty === 'RSA' && typeof jwk.n === 'string' && Buffer.from(jwk.n, 'base64url').length < 256) {
      throw new ConfigError(
        `${source}: keys[${i}] is an RSA key of ${Buffer.from(jwk.n, 'base64url').length * 8} bits; RSA keys must have at least 2048 bits`,
      );
    }
    if ('d' in jwk) {
      throw new ConfigError(
        `${source}: keys[${i}] contains private key material ("d"); publish only the public key (export it with exportJWK(publicKey))`,
      );
    }
    if (typeof jwk.alg === 'string' && !(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(jwk.alg)) {
      throw new ConfigError(
        `${source}: keys[${i}] has alg ${JSON.stringify(jwk.alg)}; supported are ${ASYMMETRIC_ALGORITHMS.join(', ')}`,
      );
    }
  });
  return value as JSONWebKeySet;
}

/** jose imports JWKS keys lazily; import each once now so that a broken key fails at start, not per call. */
async function importAll(jwks: JSONWebKeySet, source: string): Promise<void> {
  for (const [i, jwk] of jwks.keys.entries()) {
    const crv = (jwk as JWK).crv;
    const alg =
      jwk.alg ??
      (jwk.kty === 'RSA'
        ? 'RS256'
        : jwk.kty === 'OKP'
          ? 'EdDSA'
          : crv === 'P-384'
            ? 'ES384'
            : crv === 'P-521'
              ? 'ES512'
              : 'ES256');
    try {
      await importJWK(jwk as JWK, alg);
    } catch (err) {
      throw new ConfigError(
        `${source}: keys[${i}]${jwk.kid ? ` (kid ${JSON.stringify(jwk.kid)})` : ''} is not a valid ${alg} public key: ${errorMessage(err)}`,
      );
    }
  }
}

async function loadJwksFile(path: string): Promise<JWTVerifyGetKey> {
  const source = `the JWKS file ${path} (FNMESH_JWKS_FILE)`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${source} cannot be read: ${errorMessage(err)}; check the path and that the file is mounted`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source} is not valid JSON: ${errorMessage(err)}`);
  }
  const jwks = checkJwks(json, source);
  await importAll(jwks, source);
  try {
    return createLocalJWKSet(jwks);
  } catch (err) {
    throw new ConfigError(`${source} is not a valid JWKS: ${errorMessage(err)}`);
  }
}

// ------------------------------------------------------------------------------------------- cache

interface CacheEntry {
  claims: Record<string, unknown>;
  until: number;
}

class ClaimsCache {
  private readonly map = new Map<string, CacheEntry>();
  constructor(
    private readonly max: number,
    private readonly ttlMs: number,
  ) {}

  get(token: string, now: number): Record<string, unknown> | undefined {
    const e = this.map.get(token);
    if (!e) return undefined;
    this.map.delete(token);
    if (e.until <= now) return undefined;
    this.map.set(token, e); // most recently used goes last
    return e.claims;
  }

  set(token: string, claims: Record<string, unknown>, expMs: number | undefined, now: number): void {
    if (this.max <= 0) return;
    const until = Math.min(now + this.ttlMs, expMs ?? Infinity);
    if (until <= now) return;
    this.map.delete(token);
    this.map.set(token, { claims, until });
    if (this.map.size > this.max) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }

  clear(): void {
    this.map.clear();
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

// ------------------------------------------------------------------------------------------- errors

/** jose's errors (signature and key lookup; claims are judged by jwt-claims.ts) → one clear sentence each. */
function mapJoseError(err: unknown, jwksUrl?: string): FnmeshError {
  if (err instanceof FnmeshError) return err;
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return unauthenticated(
        'the token signature is invalid: it was not signed by a key or secret this gateway trusts',
      );
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return unauthenticated('the token signature is invalid: no key in the JWKS matches its kid and algorithm');
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return unauthenticated('the token has no kid and several JWKS keys could verify it; sign tokens with a kid');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return unauthenticated(`the token's alg header is not accepted: ${e.message ?? ''}`.trim());
    case 'ERR_JWS_INVALID':
      return unauthenticated(`the token is malformed: ${e.message ?? 'not a JWS'}`);
    case 'ERR_JWKS_TIMEOUT':
      return new FnmeshError(
        'unavailable',
        `the JWKS at ${jwksUrl ?? '?'} did not answer in time; the token cannot be verified now`,
      );
    case 'ERR_JWKS_INVALID':
      return new FnmeshError(
        'unavailable',
        `the JWKS at ${jwksUrl ?? '?'} is not a valid JWKS; the token cannot be verified now`,
      );
    default:
      if (jwksUrl && (e.code === undefined || e.code === 'ERR_JOSE_GENERIC')) {
        return new FnmeshError(
          'unavailable',
          `the JWKS at ${jwksUrl} could not be fetched (${errorMessage(err)}); the token cannot be verified now`,
        );
      }
      return unauthenticated(`the token cannot be verified: ${errorMessage(err)}`);
  }
}

// ------------------------------------------------------------------------------------------- verifier

export async function createJwtVerifier(config: JwtConfig, options: JwtVerifierOptions = {}): Promise<JwtVerifier> {
  const logger = options.logger ?? silentLogger;
  const secrets = (config.secrets ?? []).map((s, i) => {
    const bytes = new TextEncoder().encode(s);
    if (bytes.length < MIN_SECRET_BYTES) {
      throw new ConfigError(
        `FNMESH_JWT_SECRET: secret #${i + 1} is ${bytes.length} bytes; HS256 needs at least ${MIN_SECRET_BYTES} bytes (256 bits). ` +
          "Generate one with `openssl rand -base64 48` (or `node -e \"console.log(require('crypto').randomBytes(48).toString('base64url'))\"`)",
      );
    }
    return bytes;
  });

  const tol = config.clockToleranceSec ?? 5;
  if (!Number.isFinite(tol) || tol < 0 || tol > 3600) {
    throw new ConfigError(`clockToleranceSec=${String(tol)} is not valid: it accepts seconds from 0 to 3600`);
  }
  const policy: ClaimsPolicy = { clockToleranceSec: tol, requireExp: config.requireExp ?? true };
  if (config.issuer) policy.issuer = config.issuer;
  if (config.audience) policy.audience = config.audience;
  const hmacOptions: VerifyOptions = { algorithms: [...HMAC_ALGORITHMS] };
  const asymOptions: VerifyOptions = { algorithms: [...ASYMMETRIC_ALGORITHMS] };

  const cache = new ClaimsCache(options.cacheMaxEntries ?? 10_000, options.cacheTtlMs ?? 60_000);

  // JWKS sources: the file (reloadable) and the URL (jose caches and refetches on an unknown kid).
  let fileKeys: JWTVerifyGetKey | undefined;
  let watcher: FSWatcher | undefined;
  let reloadTimer: NodeJS.Timeout | undefined;
  if (config.jwksFile) {
    const path = resolve(config.jwksFile);
    fileKeys = await loadJwksFile(path);
    if (options.watchJwksFile ?? true) {
      const reload = async (): Promise<void> => {
        reloadTimer = undefined;
        try {
          fileKeys = await loadJwksFile(path);
          cache.clear();
          logger.info('reloaded the JWKS file', { path });
          options.onJwksReload?.();
        } catch (err) {
          logger.error('the changed JWKS file is not valid; keeping the previous keys', {
            path,
            error: errorMessage(err),
          });
          options.onJwksReload?.(err as Error);
        }
      };
      const name = basename(path);
      try {
        watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
          // ConfigMap updates swap a "..data" symlink: reload on any change in the directory that could be ours.
          if (file && file !== name && !String(file).startsWith('..')) return;
          if (reloadTimer) clearTimeout(reloadTimer);
          reloadTimer = setTimeout(() => void reload(), options.reloadDebounceMs ?? 200);
          reloadTimer.unref();
        });
        watcher.on('error', (err) => logger.warn('stopped watching the JWKS file', { path, error: errorMessage(err) }));
      } catch (err) {
        logger.warn('cannot watch the JWKS file; changes need a restart', { path, error: errorMessage(err) });
      }
    }
  }

  let urlKeys: JWTVerifyGetKey | undefined;
  const jwksUrl = config.jwksUrl;
  if (jwksUrl) {
    let url: URL;
    try {
      url = new URL(jwksUrl);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('not http(s)');
    } catch {
      throw new ConfigError(
        `FNMESH_JWKS_URL="${jwksUrl}" is not valid: it accepts an http(s) URL of a JWKS document, such as https://issuer.example.com/.well-known/jwks.json`,
      );
    }
    urlKeys = createRemoteJWKSet(url, { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
  }

  const hasJwks = fileKeys !== undefined || urlKeys !== undefined;
  const enabled = secrets.length > 0 || hasJwks;

  /** The claims of a token whose format and signature are right; throws unauthenticated (or unavailable) otherwise. */
  const verifyUncached = async (token: string): Promise<Record<string, unknown>> => {
    const parsed = parseCompactJwt(token, MAX_TOKEN_LENGTH);
    if ('problem' in parsed) throw unauthenticated(parsed.problem);
    const alg = parsed.header.alg as string;
    if ((HMAC_ALGORITHMS as readonly string[]).includes(alg)) {
      if (secrets.length === 0) {
        throw unauthenticated(
          `the token uses the unsupported algorithm "${alg}": this gateway verifies only ${ASYMMETRIC_ALGORITHMS.join('/')} tokens against its JWKS`,
        );
      }
      let lastErr: unknown;
      for (const secret of secrets) {
        try {
          await compactVerify(token, secret, hmacOptions);
          return parsed.claims;
        } catch (err) {
          lastErr = err;
          if ((err as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') break;
        }
      }
      throw mapJoseError(lastErr);
    }
    if ((ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) {
      if (!hasJwks) {
        throw unauthenticated(
          `the token uses the unsupported algorithm "${alg}": this gateway has only HS256 shared secrets, no JWKS`,
        );
      }
      let lastErr: unknown;
      for (const [keys, url] of [
        [fileKeys, undefined],
        [urlKeys, jwksUrl],
      ] as const) {
        if (!keys) continue;
        try {
          await compactVerify(token, keys, asymOptions);
          return parsed.claims;
        } catch (err) {
          lastErr = err;
          const code = (err as { code?: string }).code;
          // Try the next source only when this one has no key for the token.
          if (code !== 'ERR_JWKS_NO_MATCHING_KEY' && code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')
            throw mapJoseError(err, url);
        }
      }
      throw mapJoseError(lastErr);
    }
    throw unauthenticated(
      `the token uses the unsupported algorithm ${JSON.stringify(alg)}: accepted are ${[...HMAC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS].join(', ')}`,
    );
  };

  return {
    enabled,
    async verify(token: string): Promise<Record<string, unknown>> {
      if (!enabled) throw unauthenticated(NO_VERIFIER);
      if (typeof token !== 'string' || token === '') throw unauthenticated('the token is empty');
      const now = Date.now();
      const hit = cache.get(token, now);
      if (hit) return hit;
      let payload: Record<string, unknown>;
      try {
        payload = await verifyUncached(token);
      } catch (err) {
        throw mapJoseError(err, jwksUrl);
      }
      const problem = claimsProblem(payload, policy, now);
      if (problem) throw unauthenticated(problem);
      const claims = deepFreeze(payload);
      cache.set(token, claims, typeof claims.exp === 'number' ? (claims.exp + tol) * 1000 : undefined, now);
      return claims;
    },
    close(): void {
      if (reloadTimer) clearTimeout(reloadTimer);
      reloadTimer = undefined;
      watcher?.close();
      watcher = undefined;
    },
  };
}
