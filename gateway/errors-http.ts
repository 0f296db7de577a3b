/**
 * Turns any failure into the HTTP answer `{"error": "<message>"}` with the status of common/errors.ts.
 * Anything that is not a FnmeshError is an internal error: its message is logged, never sent.
 */
import { ERROR_TABLE, FnmeshError } from '../common';

export interface HttpError {
  status: number;
  code: string;
  message: string;
  /** The JSON body to send. */
  body: string;
  /** True when the failure was not an expected FnmeshError (log at error level). */
  unexpected: boolean;
}

export function toHttpError(err: unknown): HttpError {
  if (err instanceof FnmeshError) {
    const status = httpStatusOf(err);
    return {
      status,
      code: err.code,
      message: err.message,
      body: JSON.stringify({ error: err.message }),
      unexpected: false,
    };
  }
  return {
    status: 500,
    code: 'internal',
    message: 'internal error',
    body: '{"error":"internal error"}',
    unexpected: true,
  };
}

/**
 * A function's own 4xx keeps its status; any other status is its code's, and a 5xx that is not a code's
 * (a reply can carry any `Fnmesh-Status`) is 502 "the function failed": the gateway answers only the
 * statuses its API documents (gateway/openapi.ts).
 */
function httpStatusOf(err: FnmeshError): number {
  const s = err.status;
  if (Number.isInteger(s) && s >= 400 && s <= 499) return s;
  const own = ERROR_TABLE[err.code].status;
  if (s === own || own >= 500) return own;
  return ERROR_TABLE.function_failed.status;
}
