/**
 * Classifies what the operator's API client throws, and what to do about each class. Pure.
 *
 * Every request and watch of the operator (informers, applies, status, Events, the Lease) goes through the
 * plain-JSON client, common/kube-client.ts, whatever the kubeconfig: client-node, when it is loaded for an
 * exec plugin or an auth provider (common/kubeconfig.ts), only supplies the credentials. So what reaches
 * here is:
 * - `KubeApiError`: a response with an HTTP status ≥ 400 (`.code` = the status, `.body` = the response text,
 *   a JSON `Status` `{kind: 'Status', reason, code, message, details}` or empty, `.headers` = lower-cased
 *   response headers such as `retry-after`); a watch refused with a status is one too;
 * - Node's transport errors (`.code` = `ECONNREFUSED`, `ECONNRESET`, ...; the client's own time limits
 *   throw `ETIMEDOUT`);
 * - anything else (a failed exec plugin, a TLS verification error, a bug): `server`, retried with back-off.
 */
export type ApiErrorClass =
  'not-found' | 'conflict' | 'invalid' | 'forbidden' | 'gone' | 'throttled' | 'server' | 'network';

export interface ClassifiedApiError {
  class: ApiErrorClass;
  /** HTTP status, when there was a response. */
  status?: number;
  /** The Status reason (`NotFound`, `Conflict`, `Invalid`, ...) or the system error code. */
  reason?: string;
  /** For humans: the API server's message, not the exception's dump of headers. */
  message: string;
  /** From `Retry-After` or the Status's `details.retryAfterSeconds`. */
  retryAfterMs?: number;
}

export type RetryPolicy =
  /** Retrying cannot help (the request is wrong or not allowed): report it, do not retry. */
  | { kind: 'terminal' }
  /** Re-read and retry at once (with only the queue's first, millisecond back-off step). */
  | { kind: 'retry-now' }
  /** The server said when to come back. */
  | { kind: 'retry-after'; ms: number }
  /** Exponential back-off per key. */
  | { kind: 'backoff' };

interface KubeStatus {
  kind?: unknown;
  reason?: unknown;
  code?: unknown;
  message?: unknown;
  details?: { retryAfterSeconds?: unknown; causes?: Array<{ field?: unknown; message?: unknown }> };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'ESOCKETTIMEDOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object';
}

function parseStatus(body: unknown): KubeStatus | undefined {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  if (isObject(value) && value.kind === 'Status') return value as KubeStatus;
  return undefined;
}

function header(headers: unknown, name: string): string | undefined {
  if (!isObject(headers)) return undefined;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name && typeof v === 'string') return v;
  return undefined;
}

/** Retry-After: seconds, or an HTTP date. */
function retryAfterMs(headers: unknown, status: KubeStatus | undefined, now: number): number | undefined {
  const fromStatus = status?.details?.retryAfterSeconds;
  if (typeof fromStatus === 'number' && fromStatus >= 0) return fromStatus * 1000;
  const h = header(headers, 'retry-after');
  if (h === undefined) return undefined;
  if (/^\d+$/.test(h.trim())) return Number(h.trim()) * 1000;
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function classOfStatus(code: number, reason: string | undefined): ApiErrorClass {
  if (code === 404) return 'not-found';
  if (code === 409) return 'conflict';
  if (code === 410 || reason === 'Expired' || reason === 'Gone') return 'gone';
  if (code === 422 || code === 400 || code === 413 || code === 415 || code === 405) return 'invalid';
  if (code === 401 || code === 403) return 'forbidden';
  if (code === 429) return 'throttled';
  return 'server';
}

function statusMessage(status: KubeStatus | undefined): string | undefined {
  if (!status || typeof status.message !== 'string') return undefined;
  return status.message;
}

/** Classifies a thrown value. `now` is only used to turn a Retry-After date into a delay. */
export function classifyApiError(err: unknown, now: number = Date.now()): ClassifiedApiError {
  if (!isObject(err)) return { class: 'server', message: String(err) };
  const httpCode = typeof err.code === 'number' ? err.code : undefined;
  if (httpCode !== undefined && httpCode >= 400) {
    const status = parseStatus(err.body);
    const reason = typeof status?.reason === 'string' ? status.reason : undefined;
    const cls = classOfStatus(httpCode, reason);
    const text =
      typeof err.body === 'string' && err.body.trim() !== ''
        ? `HTTP ${httpCode}: ${err.body.trim().slice(0, 300)}`
        : undefined;
    const fallback =
      httpCode === 401
        ? "Unauthorized: the operator's credentials were not accepted"
        : (text ?? (err instanceof Error ? firstLine(err.message) : `HTTP ${httpCode}`));
    const out: ClassifiedApiError = { class: cls, status: httpCode, message: statusMessage(status) ?? fallback };
    if (reason !== undefined) out.reason = reason;
    else if (httpCode === 401) out.reason = 'Unauthorized';
    const after = retryAfterMs(err.headers, status, now);
    if (after !== undefined) out.retryAfterMs = after;
    return out;
  }
  const sysCode = typeof err.code === 'string' ? err.code : undefined;
  const message = err instanceof Error ? firstLine(err.message) : String(err);
  if (sysCode !== undefined && NETWORK_CODES.has(sysCode)) return { class: 'network', reason: sysCode, message };
  return { class: 'server', message };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

/** What a controller does with an error of each class. */
export function retryPolicy(e: Pick<ClassifiedApiError, 'class' | 'retryAfterMs'>): RetryPolicy {
  switch (e.class) {
    case 'invalid':
    case 'forbidden':
      return { kind: 'terminal' };
    case 'conflict':
    case 'gone':
      return { kind: 'retry-now' };
    case 'throttled':
      return e.retryAfterMs !== undefined ? { kind: 'retry-after', ms: e.retryAfterMs } : { kind: 'backoff' };
    case 'server':
      return e.retryAfterMs !== undefined ? { kind: 'retry-after', ms: e.retryAfterMs } : { kind: 'backoff' };
    case 'not-found':
    case 'network':
      return { kind: 'backoff' };
  }
}

export function isNotFound(err: unknown): boolean {
  return classifyApiError(err).class === 'not-found';
}

export function isConflict(err: unknown): boolean {
  return classifyApiError(err).class === 'conflict';
}
