/**
 * One table of every failure fnmesh reports: a stable code, the HTTP status it maps to, and a default
 * message. Every part raises `FnmeshError` with one of these codes; the gateway turns it into
 * `{"error": "<message>"}` with the status below.
 */
export const ERROR_TABLE = {
  bad_request: { status: 400, message: 'the request is malformed' },
  unauthenticated: { status: 401, message: 'a valid bearer token is required' },
  forbidden: { status: 403, message: 'the rule of this function denies the call' },
  not_found: { status: 404, message: 'no such service or function' },
  method_not_allowed: { status: 405, message: 'method not allowed' },
  request_timeout: { status: 408, message: 'the request did not arrive in time' },
  payload_too_large: { status: 413, message: 'the request body is too large' },
  unsupported_media_type: { status: 415, message: 'the request body must be JSON' },
  token_too_large: { status: 431, message: 'the bearer token is too large' },
  overloaded: { status: 429, message: 'the service is at its concurrency limit; retry later' },
  internal: { status: 500, message: 'internal error' },
  function_failed: { status: 502, message: 'the function failed' },
  unavailable: { status: 503, message: 'no ready replica of the service answered' },
  deadline_exceeded: { status: 504, message: 'the call did not finish before its deadline' },
} as const;

export type ErrorCode = keyof typeof ERROR_TABLE;

const codeByStatus = new Map<number, ErrorCode>(
  Object.entries(ERROR_TABLE).map(([code, e]) => [e.status, code as ErrorCode]),
);

export function isErrorCode(value: string): value is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_TABLE, value);
}

/** The code for an HTTP status (a function's own 4xx keeps its status; the code is the closest family). */
export function codeForStatus(status: number): ErrorCode {
  const exact = codeByStatus.get(status);
  if (exact) return exact;
  if (status >= 400 && status < 500) return 'bad_request';
  return 'function_failed';
}

export class FnmeshError extends Error {
  readonly code: ErrorCode;
  /** HTTP status; equals the table's unless a function chose its own 4xx. */
  readonly status: number;

  constructor(code: ErrorCode, message?: string, status?: number) {
    super(message ?? ERROR_TABLE[code].message);
    this.name = 'FnmeshError';
    this.code = code;
    this.status = status ?? ERROR_TABLE[code].status;
  }

  toJSON(): { error: string; code: ErrorCode } {
    return { error: this.message, code: this.code };
  }
}

/** A configuration value that stops a process at start: names the setting and what it accepts. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
