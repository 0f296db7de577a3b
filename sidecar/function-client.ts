/**
 * The sidecar's HTTP client to the function process on 127.0.0.1:{port}: node's own http client with one
 * keep-alive Agent sized to the concurrency limit, so a call never waits for a connection. (node:http parses
 * with the native llhttp; undici compiles llhttp to WebAssembly, which alone costs the sidecar ~15–20 MB.)
 */
import http, { type IncomingHttpHeaders } from 'node:http';

export interface FunctionResponse {
  status: number;
  body: Buffer;
}

export type FunctionHeaders = Record<string, string>;

const CONNECT_TIMEOUT_MS = 2_000;
const HEALTH_CONNECT_TIMEOUT_MS = 1_000;

function connectTimeoutError(address: string): Error {
  return Object.assign(new Error(`connect timeout to ${address}`), { code: 'ECONNECT_TIMEOUT' });
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
      timeout: options.keepAliveTimeout ?? 30_000,
      noDelay: true,
    } as http.AgentOptions);
    this.healthAgent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, timeout: 5_000, noDelay: true } as http.AgentOptions);
  }

  private request(
    agent: http.Agent,
    method: string,
    path: string,
    headers: http.OutgoingHttpHeaders,
    body: Uint8Array | undefined,
    signal: AbortSignal,
    connectTimeoutMs: number,
    maxBody: number,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer; tooLarge: boolean }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        reject(err);
      };
      let responded = false;
      const req = http.request({ host: '127.0.0.1', port: this.port, method, path, headers, agent, signal }, (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          size += chunk.length;
          if (size > maxBody) {
            settled = true;
            res.destroy();
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.alloc(0), tooLarge: true });
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), tooLarge: false });
        });
        res.on('error', fail);
        res.on('close', () => {
          if (!res.complete) fail(Object.assign(new Error('the connection closed before the answer was complete'), { code: 'ECONNRESET' }));
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        // reset on a reused connection before any byte of an answer: the function closed it while idle
        if (req.reusedSocket && !responded && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) Object.assign(err, { staleSocket: true });
        fail(err);
      });
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => req.destroy(connectTimeoutError(this.address)), connectTimeoutMs);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      req.end(body);
    });
  }

  /**
   * POSTs `body` to /{fn}. Rejects with the socket error on connection failures and with an AbortError
   * when `signal` aborts. A body larger than `maxBody` is cut off and flagged.
   */
  async call(fn: string, body: Uint8Array, headers: FunctionHeaders, signal: AbortSignal, maxBody: number): Promise<FunctionResponse & { tooLarge: boolean }> {
    this.active++;
    try {
      const h = { ...headers, 'content-length': body.byteLength };
      let res;
      try {
        res = await this.request(this.agent, 'POST', `/${fn}`, h, body, signal, CONNECT_TIMEOUT_MS, maxBody);
      } catch (err) {
        // A kept-alive connection the function closed while idle (its FIN not yet seen here) fails at once
        // with a reset and no answer; the call never reached the function, so it goes once more on a new one.
        if (!(err as { staleSocket?: boolean }).staleSocket || signal.aborted) throw err;
        res = await this.request(this.agent, 'POST', `/${fn}`, h, body, signal, CONNECT_TIMEOUT_MS, maxBody);
      }
      return { status: res.status, body: res.body, tooLarge: res.tooLarge };
    } finally {
      if (--this.active === 0 && this.onIdle) this.onIdle();
    }
  }

  /** GET {path}; resolves to the status, or rejects when the function does not answer within `timeoutMs`. */
  async health(path: string, timeoutMs: number): Promise<{ status: number; headers: IncomingHttpHeaders }> {
    const res = await this.request(this.healthAgent, 'GET', path, {}, undefined, AbortSignal.timeout(timeoutMs), HEALTH_CONNECT_TIMEOUT_MS, 1024 * 1024);
    return { status: res.status, headers: res.headers };
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
