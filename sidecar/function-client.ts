/**
 * The sidecar's HTTP client to the function process on 127.0.0.1:{port}: one keep-alive undici Pool,
 * sized to the concurrency limit so a call never waits for a connection.
 */
import { Client, Pool } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';

export interface FunctionResponse {
  status: number;
  body: Buffer;
}

export type FunctionHeaders = Record<string, string>;

export class FunctionClient {
  readonly origin: string;
  readonly address: string;
  private readonly pool: Pool;
  /** Its own connection, so a health check never waits behind calls when every pool connection is busy. */
  private readonly healthClient: Client;

  constructor(port: number, options: { connections: number; keepAliveTimeout?: number }) {
    this.address = `127.0.0.1:${port}`;
    this.origin = `http://${this.address}`;
    this.pool = new Pool(this.origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: options.keepAliveTimeout ?? 30_000,
      keepAliveMaxTimeout: 600_000,
      connect: { timeout: 2_000 },
    });
    this.healthClient = new Client(this.origin, { pipelining: 1, keepAliveTimeout: 5_000, connect: { timeout: 1_000 } });
  }

  /**
   * POSTs `body` to /{fn}. Rejects with the undici error on connection failures and with an AbortError
   * when `signal` aborts. A body larger than `maxBody` is cut off and flagged.
   */
  async call(fn: string, body: Uint8Array, headers: FunctionHeaders, signal: AbortSignal, maxBody: number): Promise<FunctionResponse & { tooLarge: boolean }> {
    const res = await this.pool.request({ path: `/${fn}`, method: 'POST', headers, body, signal });
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBody) {
        tooLarge = true;
        res.body.destroy();
        break;
      }
      chunks.push(chunk);
    }
    return { status: res.statusCode, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), tooLarge };
  }

  /** GET {path}; resolves to the status, or rejects when the function does not answer within `timeoutMs`. */
  async health(path: string, timeoutMs: number): Promise<{ status: number; headers: IncomingHttpHeaders }> {
    const res = await this.healthClient.request({ path, method: 'GET', signal: AbortSignal.timeout(timeoutMs) });
    await res.body.dump();
    return { status: res.statusCode, headers: res.headers };
  }

  /** Closes the connections; `force` aborts calls still running (after a drain timeout). */
  async close(force = false): Promise<void> {
    if (force) await Promise.all([this.pool.destroy(), this.healthClient.destroy()]);
    else await Promise.all([this.pool.close(), this.healthClient.close()]);
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
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `function process not reachable on ${address}: connect timeout`;
    default:
      return `calling function "${fn}" on ${address} failed: ${code ? `${code}: ` : ''}${message}`;
  }
}
