/**
 * Turns any failure into the HTTP answer `{"error": "<message>"}` with the status of common/errors.ts.
 * Anything that is not a FnmeshError is an internal error: its message is logged, never sent.
 */
import { FnmeshError } from '../common';

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
    const status = Number.isInteger(err.status) && err.status >= 400 && err.status <= 599 ? err.status : 500;
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
