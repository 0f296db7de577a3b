/**
 * CORS: which headers an answer carries for a browser, decided from the policy and the request alone (pure;
 * the HTTP shell copies the result onto its answer).
 *
 * - An origin list (`FNMESH_CORS_ORIGINS=https://app.example.com,http://localhost:*`): a listed origin is
 *   echoed back, with `Access-Control-Allow-Credentials: true` unless credentials are switched off, so pages
 *   that send cookies or `credentials: "include"` (Space Cloud's `space-api` does) can read the answer. An
 *   entry may end in `:*`: that scheme and host, any port (`http://localhost:*`); nothing else is wildcarded.
 *   Every answer carries `Vary: Origin`, since its CORS headers depend on the origin. Other origins get no
 *   CORS headers, so the browser keeps the answer from the page.
 * - `*`: any origin, never with credentials (browsers refuse `*` with credentials; config.ts rejects it).
 *   `Access-Control-Allow-Origin: *` is on every answer, so it does not vary with the origin.
 * - An empty list: no CORS headers at all.
 *
 * A preflight (OPTIONS with `Access-Control-Request-Method`) of an allowed origin answers the method (POST),
 * those of the requested headers the gateway reads (`CORS_REQUEST_HEADERS`) and how long the browser may
 * cache the answer.
 */
import { ATTEMPTS_HTTP_HEADER } from '../common/protocol';

/** The request headers a page may send on a call. */
export const CORS_REQUEST_HEADERS: readonly string[] = [
  'authorization',
  'content-type',
  'x-request-id',
  'traceparent',
  'tracestate',
];
/**
 * The answer headers a page may read besides the CORS-safelisted ones: the call id, the attempts a retried
 * call took, and how long to wait when an open circuit refused it.
 */
export const CORS_EXPOSED_HEADERS = ['x-request-id', ATTEMPTS_HTTP_HEADER, 'retry-after'].join(', ');
/** Seconds a browser may reuse a preflight's answer. */
export const CORS_MAX_AGE_SECONDS = 600;

export interface CorsPolicy {
  /** Allowed origins, exact or `scheme://host:*`; '*' allows any; empty disables CORS. */
  origins: readonly string[] | '*';
  /** Answer listed origins with `Access-Control-Allow-Credentials: true` (never with '*'). */
  credentials: boolean;
}

export interface CorsRequest {
  /** The `Origin` header, if any. */
  origin: string | undefined;
  /** True for a preflight (OPTIONS). */
  preflight: boolean;
  /** The `Access-Control-Request-Headers` header of a preflight, if any. */
  requestHeaders?: string | undefined;
}

/** An origin the gateway may echo: an exact origin, or scheme and host with any port. */
export interface OriginPattern {
  /** `https://app.example.com` or, for a port wildcard, `http://localhost` (no port). */
  base: string;
  anyPort: boolean;
}

const PORT_WILDCARD = ':*';

/**
 * Parses one entry of an origin list: `scheme://host[:port]` (http or https, no path, no trailing slash,
 * lowercase as browsers send it) or `scheme://host:*`. Undefined when it is neither.
 */
export function parseOriginPattern(text: string): OriginPattern | undefined {
  const anyPort = text.endsWith(PORT_WILDCARD);
  const base = anyPort ? text.slice(0, -PORT_WILDCARD.length) : text;
  if (base.includes('*')) return undefined; // the WHATWG URL parser takes "*" in a host name
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.origin !== base) return undefined;
  if (anyPort && url.port !== '') return undefined;
  return { base, anyPort };
}

const PORT = /^:[0-9]{1,5}$/;

/** True when the `Origin` header matches the pattern: the same origin, or (`:*`) the same scheme and host. */
export function originMatches(pattern: OriginPattern, origin: string): boolean {
  if (origin === pattern.base) return true;
  if (!pattern.anyPort || !origin.startsWith(pattern.base)) return false;
  return PORT.test(origin.slice(pattern.base.length));
}

/** The patterns of a policy's list, parsed once; entries that do not parse are skipped (config.ts refuses them). */
export function compileOrigins(origins: readonly string[]): OriginPattern[] {
  return origins.map(parseOriginPattern).filter((p): p is OriginPattern => p !== undefined);
}

function allowedRequestHeaders(requested: string | undefined): string | undefined {
  if (requested === undefined) return undefined;
  const allowed = requested
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => CORS_REQUEST_HEADERS.includes(h));
  return allowed.length > 0 ? [...new Set(allowed)].join(', ') : undefined;
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** Makes the decision function of one policy (patterns parsed once). */
export function corsDecider(policy: CorsPolicy): (req: CorsRequest) => Readonly<Record<string, string>> {
  const wildcard = policy.origins === '*';
  const patterns = policy.origins === '*' ? [] : compileOrigins(policy.origins);
  const credentials = policy.credentials && !wildcard;
  return (req) => {
    if (!wildcard && patterns.length === 0) return NO_HEADERS; // CORS off: nothing to add, nothing allocated
    const headers: Record<string, string> = {};
    // With a list the answer depends on the origin, whatever it is (or is absent): caches must key on it.
    if (!wildcard) headers['vary'] = req.preflight ? 'Origin, Access-Control-Request-Headers' : 'Origin';
    else if (req.preflight) headers['vary'] = 'Access-Control-Request-Headers';
    const origin = req.origin;
    if (wildcard) headers['access-control-allow-origin'] = '*';
    else if (origin !== undefined && patterns.some((p) => originMatches(p, origin)))
      headers['access-control-allow-origin'] = origin;
    else return headers;
    if (credentials) headers['access-control-allow-credentials'] = 'true';
    if (!req.preflight) {
      headers['access-control-expose-headers'] = CORS_EXPOSED_HEADERS;
      return headers;
    }
    headers['access-control-allow-methods'] = 'POST';
    const allowHeaders = allowedRequestHeaders(req.requestHeaders);
    if (allowHeaders !== undefined) headers['access-control-allow-headers'] = allowHeaders;
    headers['access-control-max-age'] = String(CORS_MAX_AGE_SECONDS);
    return headers;
  };
}
