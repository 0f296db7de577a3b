/**
 * The pure decisions of one call: which route, whether the body is acceptable, which deadline. No I/O here;
 * the HTTP shell and the internal-call handler feed bytes in and act on the answers.
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes, randomUUID } from 'node:crypto';
import { FnmeshError, NAME_RULES, TRACEPARENT, isFunctionName, isNamespaceName, isServiceName } from '../common';
import { hasRepeatedKey, scanCallEnvelope } from '../common/call-envelope';
import { paramsTooDeep } from './limits';

export const CALL_ROUTE_PREFIX = '/v1/api/';
/**
 * The second segment of a call route. `functions` is fnmesh's own; `services` is the same route as Space
 * Cloud's client sends it (`space-api` 0.19: `api.call(service, fn, …)` posts to /v1/api/{project}/services/…).
 */
export const CALL_ROUTE_SEGMENTS: readonly string[] = ['functions', 'services'];

export interface CallRoute {
  namespace: string;
  service: string;
  function: string;
}

/**
 * Parses `/v1/api/{namespace}/functions/{service}/{function}` (or `.../services/...`; query string ignored).
 * Returns undefined when the path is not a call route at all (→ 404 by the caller);
 * throws FnmeshError('bad_request') naming the segment when it is the route with a bad name.
 */
export function parseCallRoute(url: string): CallRoute | undefined {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (!path.startsWith(CALL_ROUTE_PREFIX)) return undefined;
  const parts = path.slice(CALL_ROUTE_PREFIX.length).split('/');
  if (parts.length !== 4 || !CALL_ROUTE_SEGMENTS.includes(parts[1]!)) return undefined;
  const [namespace, , service, fn] = parts as [string, string, string, string];
  if (!isNamespaceName(namespace))
    throw new FnmeshError(
      'bad_request',
      `namespace ${quote(namespace)} in the path is not valid: it must be ${NAME_RULES.namespace}`,
    );
  if (!isServiceName(service))
    throw new FnmeshError(
      'bad_request',
      `service ${quote(service)} in the path is not valid: it must be ${NAME_RULES.service}`,
    );
  if (!isFunctionName(fn))
    throw new FnmeshError(
      'bad_request',
      `function ${quote(fn)} in the path is not valid: it must be ${NAME_RULES.function}`,
    );
  return { namespace, service, function: fn };
}

function quote(s: string): string {
  const short = s.length > 80 ? `${s.slice(0, 80)}…` : s;
  return JSON.stringify(short);
}

/** True when a content-type header (if any) says JSON: application/json or any +json type. */
export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined || value === '') return true;
  const mime = value.split(';', 1)[0]!.trim().toLowerCase();
  return mime === 'application/json' || (mime.startsWith('application/') && mime.endsWith('+json'));
}

export interface CallBody {
  /** The parsed params, for the rule. */
  params: unknown;
  /** The bytes of params exactly as the caller sent them (`null` when absent), sent to the function as is. */
  paramsBytes: Buffer;
  /** Requested deadline in milliseconds, if the caller gave one. */
  timeoutMs?: number;
}

const NULL_PARAMS = Buffer.from('null');

/**
 * Validates a call body `{"params": any, "timeout"?: ms}`. Unknown keys are allowed (space-api sends some).
 * The nesting depth is checked first, without recursion; a repeated "params" or "timeout" is refused (JSON.parse
 * would keep the last silently); the params travel on as the bytes the caller sent.
 */
export function parseCallBody(raw: Buffer | string, maxDepth: number): CallBody {
  const bytes = typeof raw === 'string' ? Buffer.from(raw) : raw;
  const scan = scanCallEnvelope(bytes, maxDepth);
  if (scan.kind === 'too-deep') throw paramsTooDeep(scan.maxDepth, scan.key);
  if (scan.kind === 'duplicate')
    throw new FnmeshError('bad_request', `the request body has the key "${scan.key}" more than once: send it once`);
  if (!isUtf8(bytes)) throw new FnmeshError('bad_request', 'the request body is not valid UTF-8, which JSON must be');
  const text = bytes.toString('utf8');
  if (scan.kind === 'malformed' && text.trim() === '') return { params: null, paramsBytes: NULL_PARAMS };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FnmeshError('bad_request', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FnmeshError(
      'bad_request',
      `request body must be a JSON object such as {"params": {...}, "timeout": 5000}, got ${describe(value)}`,
    );
  }
  // Valid JSON and an object is never malformed to the scanner; refused all the same should that ever differ.
  if (scan.kind !== 'ok') throw new FnmeshError('bad_request', 'the request body could not be read as a call');
  const obj = value as Record<string, unknown>;
  const body: CallBody = scan.params
    ? { params: obj.params, paramsBytes: bytes.subarray(scan.params.start, scan.params.end) }
    : { params: null, paramsBytes: NULL_PARAMS };
  const timeout = obj.timeout;
  if (timeout !== undefined && timeout !== null) {
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout <= 0) {
      throw new FnmeshError(
        'bad_request',
        `field "timeout" must be a positive whole number of milliseconds, got ${describe(timeout)}`,
      );
    }
    body.timeoutMs = timeout;
  }
  return body;
}

/**
 * Params travel on as sent, duplicate keys included; but a rule sees JSON.parse's value (the last of a
 * repeated key) while the function's parser may keep the first, so a rule that reads params could allow what
 * the function then reads differently. Such calls are refused when the function's rule reads params.
 */
export function refuseAmbiguousParams(
  fn: { label: string; rule: { readsParams: boolean } },
  bytes: Uint8Array,
  params: unknown,
): void {
  if (!fn.rule.readsParams || !hasRepeatedKey(bytes, params)) return;
  throw new FnmeshError(
    'bad_request',
    `params give a key twice in one object, and the rule of ${fn.label} reads params: the rule and the function could read different values; send each key once`,
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${quote(value)}`;
  if (typeof value === 'number') return String(value);
  return `a ${typeof value}`;
}

/**
 * The one deadline of a call: the caller's timeout capped by the function's timeoutMs (which is also the
 * default) and by the gateway's absolute cap. Returns milliseconds (≥ 1).
 */
export function computeTimeoutMs(
  requested: number | undefined,
  functionTimeoutMs: number,
  maxTimeoutMs: number,
): number {
  const cap = Math.min(functionTimeoutMs, maxTimeoutMs);
  const t = requested === undefined ? cap : Math.min(requested, cap);
  return Math.max(1, Math.floor(t));
}

/** Milliseconds left until an absolute deadline (performance.now() based). */
export function remainingMs(deadline: number, now: number): number {
  return Math.floor(deadline - now);
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** The incoming x-request-id when it is sane, else a new UUID. */
export function pickRequestId(incoming: string | string[] | undefined): string {
  if (typeof incoming === 'string' && REQUEST_ID.test(incoming)) return incoming;
  return randomUUID();
}

/** A valid incoming traceparent (all-zero ids are invalid per W3C), else a new sampled one. */
export function pickTraceparent(incoming: string | string[] | undefined): string {
  if (typeof incoming === 'string') {
    const t = incoming.trim().toLowerCase();
    if (
      TRACEPARENT.test(t) &&
      !t.startsWith('ff') &&
      t.slice(3, 35) !== '0'.repeat(32) &&
      t.slice(36, 52) !== '0'.repeat(16)
    )
      return t;
  }
  return newTraceparent();
}

// Random ids come from a pool refilled 256 ids at a time: one randomBytes call per request was ~6% of a call's CPU.
const ID_BYTES = 24;
let pool = Buffer.alloc(0);
let poolOffset = 0;

export function newTraceparent(): string {
  if (poolOffset + ID_BYTES > pool.length) {
    pool = randomBytes(ID_BYTES * 256);
    poolOffset = 0;
  }
  const b = pool.toString('hex', poolOffset, poolOffset + ID_BYTES);
  poolOffset += ID_BYTES;
  return `00-${b.slice(0, 32)}-${b.slice(32, 48)}-01`;
}

/** Builds `{"result": <bytes>}` without parsing the function's result (empty result → null). */
const RESULT_OPEN = Buffer.from('{"result":');
const RESULT_CLOSE = Buffer.from('}');
const NULL = Buffer.from('null');
export function resultEnvelope(body: Uint8Array): Buffer {
  const inner = body.length === 0 ? NULL : body;
  return Buffer.concat([RESULT_OPEN, inner, RESULT_CLOSE], RESULT_OPEN.length + inner.length + 1);
}
