/**
 * The gateway's size limits as pure decisions: their defaults, the header budget of a call on NATS, how the
 * body limit fits the broker's max payload, and the errors that name each limit. What the gateway accepts,
 * the transport carries: a NATS message counts its headers in `max_payload` too, so the body limit plus the
 * headers a call may carry must fit in it. Light: settings.ts imports it.
 */
import { ConfigError, FnmeshError } from '../common/errors';

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** Below the defaults of common JSON parsers a function may use (Ruby's max_nesting 100, serde_json's 128). */
export const DEFAULT_MAX_PARAMS_DEPTH = 64;
export const DEFAULT_MAX_TOKEN_BYTES = 8 * 1024;
/**
 * The headers of a call other than what grows with the claims, with room to spare: framing, header names, a
 * request id (≤ 128), a parent id (≤ 128), a timeout, a traceparent (55), a caller (≤ 127), and the delegation
 * token's own fields and signature (≈ 450).
 */
export const FIXED_HEADER_BYTES = 2048;
/**
 * Header bytes per byte of bearer token: the verified claims (the token's payload decoded, ≤ ¾ of the token)
 * travel as JSON in Fnmesh-Claims and again, base64url-encoded, in the delegation token (gateway/delegation.ts).
 */
export const HEADER_BYTES_PER_TOKEN_BYTE = 3;

export interface BodyLimits {
  /** FNMESH_MAX_BODY_BYTES when set. */
  maxBodyBytes?: number;
  maxTokenBytes: number;
}

/** The most header bytes a call may carry on NATS: the claims twice over (JSON, delegation token), the rest. */
export function headerBudget(maxTokenBytes: number): number {
  return FIXED_HEADER_BYTES + HEADER_BYTES_PER_TOKEN_BYTE * maxTokenBytes;
}

/** The embedded broker's max payload: the largest accepted body plus the headers of a call. */
export function embeddedMaxPayload(limits: BodyLimits): number {
  return (limits.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES) + headerBudget(limits.maxTokenBytes);
}

/**
 * The body limit in force on a NATS server that announces `maxPayload`: FNMESH_MAX_BODY_BYTES when set and it
 * fits (a ConfigError naming both settings when it does not), else the default lowered to fit.
 */
export function effectiveBodyLimit(maxPayload: number, limits: BodyLimits): number {
  const budget = headerBudget(limits.maxTokenBytes);
  const room = maxPayload - budget;
  const headers = `a call carries up to ${budget} bytes of NATS headers besides its params (${FIXED_HEADER_BYTES} plus ${HEADER_BYTES_PER_TOKEN_BYTE} × FNMESH_MAX_TOKEN_BYTES=${limits.maxTokenBytes}, for the verified claims and the delegation token that carries them)`;
  if (limits.maxBodyBytes !== undefined) {
    if (limits.maxBodyBytes <= room) return limits.maxBodyBytes;
    throw new ConfigError(
      `FNMESH_MAX_BODY_BYTES=${limits.maxBodyBytes} does not fit the NATS server's max_payload of ${maxPayload} bytes: ${headers}, so FNMESH_MAX_BODY_BYTES can be at most ${Math.max(0, room)} there; lower FNMESH_MAX_BODY_BYTES or FNMESH_MAX_TOKEN_BYTES, or raise max_payload in the NATS server's configuration to at least ${limits.maxBodyBytes + budget}`,
    );
  }
  if (room < 16)
    throw new ConfigError(
      `the NATS server's max_payload of ${maxPayload} bytes leaves no room for params: ${headers}; raise max_payload in the NATS server's configuration or lower FNMESH_MAX_TOKEN_BYTES`,
    );
  return Math.min(DEFAULT_MAX_BODY_BYTES, room);
}

export function bodyTooLarge(limit: number): FnmeshError {
  return new FnmeshError(
    'payload_too_large',
    `the request body is larger than the limit of ${limit} bytes (FNMESH_MAX_BODY_BYTES)`,
  );
}

export function internalParamsTooLarge(size: number, limit: number): FnmeshError {
  return new FnmeshError(
    'payload_too_large',
    `the internal call's params are ${size} bytes, more than the limit of ${limit} bytes (FNMESH_MAX_BODY_BYTES)`,
  );
}

/** `key` is the envelope key whose value is too deep (`params`, or another key of the body). */
export function paramsTooDeep(maxDepth: number, key = 'params'): FnmeshError {
  const what = key === 'params' ? 'params nest' : `the value of ${JSON.stringify(key.slice(0, 80))} nests`;
  return new FnmeshError(
    'bad_request',
    `${what} arrays/objects more than ${maxDepth} levels deep, the gateway's limit (FNMESH_MAX_PARAMS_DEPTH=${maxDepth}): send flatter params`,
  );
}

export function tokenTooLarge(size: number, limit: number): FnmeshError {
  return new FnmeshError(
    'token_too_large',
    `the bearer token is ${size} bytes, more than the limit of ${limit} bytes (FNMESH_MAX_TOKEN_BYTES)`,
  );
}
