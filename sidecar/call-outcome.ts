/**
 * Did the function run the call? The answer for one failed attempt to reach it, from the socket error alone.
 *
 * Not executed (proven): the connection was refused (nothing listens on the port), the connect timed out, or
 * the kernel reset the connection before any byte of an answer — a real RST, which a peer's kernel sends when
 * its socket is closed with data it never read (the process died before reading the request, seen here on a
 * `read`), or when data arrives at a socket already closed (seen here as EPIPE or ECONNRESET on a `write`);
 * or a kept-alive connection that had already seen the function's FIN when the request was handed to it.
 *
 * May have run: Node's "socket hang up" (ECONNRESET with no syscall: an orderly EOF after the request was
 * written — the process read the request, then closed or died), a connection that closed mid-answer, a deadline
 * that passed while the function ran, the function's own 5xx. Those are never retried by the sidecar.
 */
import type { MayHaveRunFailure } from './common';

export type ConnectionOutcome =
  /** The function never read the request: `refused`/`connect-timeout` (nothing answered), `reset-unread`. */
  | { executed: false; cause: 'refused' | 'connect-timeout' | 'reset-unread' }
  /** The function may have read it: the connection broke (`reset`) or the deadline passed (`timeout`). */
  | { executed: 'maybe'; failure: Extract<MayHaveRunFailure, 'reset' | 'timeout'> };

/** The code the client gives its own connect timer (function-client.ts). */
export const CONNECT_TIMEOUT_CODE = 'ECONNECT_TIMEOUT';

interface SocketError {
  code?: unknown;
  syscall?: unknown;
  deadline?: unknown;
  /** Set by the client when any byte of an answer had arrived (a response started). */
  answerStarted?: unknown;
  /** Set by the client when the reused connection had seen the function's FIN before the request was written. */
  closedBeforeWrite?: unknown;
}

/** True when the error proves the function never read the request (a fresh connection may carry it again). */
export function isProvenUnread(err: unknown): boolean {
  const e = (err ?? {}) as SocketError;
  if (e.answerStarted === true || e.deadline === true) return false;
  if (e.closedBeforeWrite === true) return true;
  if (e.code === 'ECONNRESET') return e.syscall === 'read' || e.syscall === 'write';
  return e.code === 'EPIPE' && e.syscall === 'write';
}

/** Classifies the rejection of one attempt to call the function (a socket error or the deadline's abort). */
export function classifyConnectionError(err: unknown): ConnectionOutcome {
  const e = (err ?? {}) as SocketError;
  if (e.deadline === true) return { executed: 'maybe', failure: 'timeout' };
  if (e.code === 'ECONNREFUSED') return { executed: false, cause: 'refused' };
  if (e.code === CONNECT_TIMEOUT_CODE) return { executed: false, cause: 'connect-timeout' };
  if (isProvenUnread(err)) return { executed: false, cause: 'reset-unread' };
  // 'socket hang up', a close mid-answer, a parse error of the answer, anything else after connecting
  return { executed: 'maybe', failure: 'reset' };
}
