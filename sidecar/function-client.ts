/**
 * The sidecar's HTTP client to the function process on 127.0.0.1:{port}: node's own http client with one
 * keep-alive Agent sized to the concurrency limit, so a call never waits for a connection. (node:http parses
 * with the native llhttp; undici compiles llhttp to WebAssembly, which alone costs the sidecar ~15–20 MB.)
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import { CONNECT_TIMEOUT_CODE, isProvenUnread } from './call-outcome';

export interface FunctionResponse {
  status: number;
  body: Buffer;
}

export type FunctionHeaders = Record<string, string>;

const CONNECT_TIMEOUT_MS = 2_000;
/**
 * Idle call connections close after this. Shorter than the idle timeout of the usual servers (Node 5 s,
 * uvicorn 5 s, gunicorn 2 s), so the sidecar closes an idle connection before the function does: a call
 * written onto a connection the function is closing at that instant is the one reset that cannot be told from
 * a crash after reading ("socket hang up"), and is never retried. Costs a loopback connect for a call that
 * follows more than a second of idleness.
 */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 1_000;
const HEALTH_CONNECT_TIMEOUT_MS = 1_000;

/** setTimeout's largest delay (about 24.8 days); longer budgets are clamped to it. */
const MAX_TIMER_MS = 2_147_483_647;

interface Deadline {
  expired: boolean;
  req: http.ClientRequest | undefined;
  timer: NodeJS.Timeout | undefined;
}

function deadlineError(): Error {
  return Object.assign(new Error('the call was aborted at its deadline'), {
    name: 'AbortError',
    code: 'ABORT_ERR',
    deadline: true,
  });
}

/** True for the rejection of a call or health check whose time ran out. */
export function isDeadlineError(err: unknown): boolean {
  return (err as { deadline?: unknown } | null)?.deadline === true;
}

function connectTimeoutError(address: string): Error {
  return Object.assign(new Error(`connect timeout to ${address}`), { code: CONNECT_TIMEOUT_CODE });
}

export class FunctionClient {
  readonly origin: string;
  readonly address: string;
  private readonly port: number;
  private readonly agent: http.Agent;
  /** Its own connection, so a health check never waits behind calls when every call connection is busy. */
  private readonly healthAgent: http.Agent;
  private active = 0;
  private onIdle: (() => void) | undefined;

  constructor(port: number, options: { connections: number; keepAliveTimeout?: number }) {
    this.port = port;
    this.address = `127.0.0.1:${port}`;
    this.origin = `http://${this.address}`;
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: options.connections,
      maxFreeSockets: options.connections,
      // reuse the most recently used connection: under light load the others idle out
      scheduling: 'lifo',
      // idle keep-alive connections close after this (the server's Keep-Alive hint wins when shorter)
      timeout: options.keepAliveTimeout ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
      noDelay: true,
    } as http.AgentOptions);
    this.healthAgent = new http.Agent({
      keepAlive: true,
      maxSockets: 1,
      maxFreeSockets: 1,
      timeout: 5_000,
      noDelay: true,
    } as http.AgentOptions);
  }

  private request(
    agent: http.Agent,
    method: string,
    path: string,
    headers: http.OutgoingHttpHeaders | string[],
    body: Uint8Array | undefined,
    deadline: Deadline,
    connectTimeoutMs: number,
    maxBody: number,
    wantHeaders: boolean,
  ): Promise<{ status: number; headers: IncomingHttpHeaders | undefined; body: Buffer; tooLarge: boolean }> {
    return new Promise((resolve, reject) => {
      if (deadline.expired) {
        reject(deadlineError());
        return;
      }
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        reject(err);
      };
      let responded = false;
      const req = http.request({ host: '127.0.0.1', port: this.port, method, path, headers, agent }, (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          size += chunk.length;
          if (size > maxBody) {
            settled = true;
            res.destroy();
            resolve({
              status: res.statusCode ?? 0,
              headers: wantHeaders ? res.headers : undefined,
              body: Buffer.alloc(0),
              tooLarge: true,
            });
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          // res.headers is built lazily from the raw headers: not touched unless asked for
          resolve({
            status: res.statusCode ?? 0,
            headers: wantHeaders ? res.headers : undefined,
            body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size),
            tooLarge: false,
          });
        });
        res.on('error', (err) => fail(Object.assign(err, { answerStarted: true })));
        res.on('close', () => {
          if (!res.complete)
            fail(
              Object.assign(new Error('the connection closed before the answer was complete'), {
                code: 'ECONNRESET',
                answerStarted: true,
              }),
            );
        });
      });
      deadline.req = req;
      /** The reused connection had already seen the function's FIN when this request got it (before writing). */
      let closedBeforeWrite = false;
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (responded) Object.assign(err, { answerStarted: true });
        // a real reset of a reused connection before any byte of an answer, or one known closed before the
        // request was written: the function closed it while idle with the request unread (never a plain
        // "socket hang up": that one may have been read)
        else if (req.reusedSocket && (closedBeforeWrite || isProvenUnread(err)))
          Object.assign(err, { staleSocket: true, ...(closedBeforeWrite ? { closedBeforeWrite: true } : {}) });
        fail(err);
      });
      req.on('socket', (socket) => {
        // the request is written after this event: a connection whose end the function already sent can only fail
        if (req.reusedSocket && (socket.destroyed || socket.readableEnded || !socket.writable))
          closedBeforeWrite = true;
        if (!socket.connecting) return;
        const timer = setTimeout(() => req.destroy(connectTimeoutError(this.address)), connectTimeoutMs);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      req.end(body);
    });
  }

  /** One timer for a whole call (both attempts): at `timeoutMs` it destroys the request in flight. */
  private deadline(timeoutMs: number, unref = false): Deadline {
    const d: Deadline = { expired: false, req: undefined, timer: undefined };
    d.timer = setTimeout(
      () => {
        d.expired = true;
        d.req?.destroy(deadlineError());
      },
      Math.min(Math.max(0, timeoutMs), MAX_TIMER_MS),
    );
    if (unref) d.timer.unref();
    return d;
  }

  /**
   * POSTs `body` to /{fn}. Rejects with the socket error on connection failures and with an error whose
   * `deadline` is true (see isDeadlineError) when `timeoutMs` passes first. A body larger than `maxBody` is
   * cut off and flagged.
   */
  async call(
    fn: string,
    body: Uint8Array,
    headers: FunctionHeaders,
    timeoutMs: number,
    maxBody: number,
  ): Promise<FunctionResponse & { tooLarge: boolean }> {
    this.active++;
    const deadline = this.deadline(timeoutMs);
    try {
      // A flat [name, value, ...] list goes to the request line as is; an object costs a setHeader (name
      // validation, lower-casing, a map) per header.
      const flat: string[] = ['host', this.address, 'content-length', String(body.byteLength)];
      for (const name in headers) flat.push(name, headers[name]!);
      const path = `/${fn}`;
      let res;
      try {
        res = await this.request(this.agent, 'POST', path, flat, body, deadline, CONNECT_TIMEOUT_MS, maxBody, false);
      } catch (err) {
        // A kept-alive connection the function closed while idle (its FIN not yet seen here) fails at once
        // with a real reset and no answer; the call never reached the function, so it goes once more on a new
        // one. A "socket hang up" is not retried: the function may have read the request before closing.
        if (!(err as { staleSocket?: boolean }).staleSocket || deadline.expired) throw err;
        res = await this.request(this.agent, 'POST', path, flat, body, deadline, CONNECT_TIMEOUT_MS, maxBody, false);
      }
      return { status: res.status, body: res.body, tooLarge: res.tooLarge };
    } catch (err) {
      throw deadline.expired ? deadlineError() : err;
    } finally {
      clearTimeout(deadline.timer);
      if (--this.active === 0 && this.onIdle) this.onIdle();
    }
  }

  /** GET {path}; resolves to the status, or rejects when the function does not answer within `timeoutMs`. */
  async health(path: string, timeoutMs: number): Promise<{ status: number; headers: IncomingHttpHeaders }> {
    const deadline = this.deadline(timeoutMs, true); // like AbortSignal.timeout: never keeps the process up
    try {
      const res = await this.request(
        this.healthAgent,
        'GET',
        path,
        {},
        undefined,
        deadline,
        HEALTH_CONNECT_TIMEOUT_MS,
        1024 * 1024,
        true,
      );
      return { status: res.status, headers: res.headers ?? {} };
    } catch (err) {
      throw deadline.expired ? Object.assign(deadlineError(), { code: 'ETIMEDOUT' }) : err;
    } finally {
      clearTimeout(deadline.timer);
    }
  }

  /** Closes the connections once the calls still running finish; `force` aborts them (after a drain timeout). */
  async close(force = false): Promise<void> {
    if (!force && this.active > 0) await new Promise<void>((resolve) => (this.onIdle = resolve));
    this.agent.destroy();
    this.healthAgent.destroy();
  }
}

/** A one-line description of why the function could not be reached (for a 502 message). */
export function describeConnectionError(err: unknown, address: string, fn: string): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.code ?? e?.cause?.code;
  const message = e?.message ?? String(err);
  switch (code) {
    case 'ECONNREFUSED':
      return `function process not reachable on ${address}: connect ECONNREFUSED`;
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
    case 'EPIPE':
      return `function process on ${address} closed the connection while answering "${fn}" (${code}: ${message}); did it crash?`;
    case 'ECONNECT_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `function process not reachable on ${address}: connect timeout`;
    default:
      return `calling function "${fn}" on ${address} failed: ${code ? `${code}: ` : ''}${message}`;
  }
}
