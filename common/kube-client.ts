/**
 * A plain-JSON Kubernetes API client for hot paths, on node:https: a pool of keep-alive connections to
 * the API server, TLS material and auth headers from a KubeAccess (kube-access.ts), request and response
 * bodies as JSON (what JSON.parse gives, no typed models), and a streaming watch.
 *
 * Why not client-node's generated API: client-node 1.4 builds a new https.Agent for every request
 * (KubeConfig.applySecurityAuthentication → createAgent) and re-reads the CA, certificate and key files,
 * so every request opens a new TCP connection with a full TLS handshake, and responses are turned into
 * model instances (ObjectSerializer). Here requests share at most `connections` persistent connections;
 * each watch has a connection of its own (not from that pool), so a long-lived watch never holds a
 * connection requests wait for.
 *
 * A 401 re-reads the credentials and retries once. When the TLS material changes (a rotated client
 * certificate), new agents are built; requests in flight finish on the old ones.
 *
 * Errors: an HTTP status ≥ 400 throws a KubeApiError (`code`/`statusCode` = status, `body` = the response
 * text, `headers`), the shape operator/api-errors.ts classifies; transport failures throw Node's errors
 * (`code` ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...).
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import tls from 'node:tls';
import type { Credentials, KubeAccess, TlsMaterial } from './kube-access';

export type Query = Record<string, string | number | boolean | undefined>;

export interface KubeRequestOptions {
  query?: Query;
  /** Sent as JSON (a string is sent as it is). */
  body?: unknown;
  /** Default `application/json` when there is a body. */
  contentType?: string;
}

export interface KubeClientOptions {
  /** Persistent connections for requests (watches have their own). Default 16. */
  connections?: number;
  /** Called for every request (not for watches), before it is sent: for request metrics. */
  onRequest?(method: string, path: string): void;
  /** Per-request time limit on socket inactivity (default 60 s). */
  requestTimeoutMs?: number;
}

/** A response with an HTTP status ≥ 400. */
export class KubeApiError extends Error {
  /** The HTTP status (api-errors.ts reads `code`, informers `statusCode`). */
  readonly code: number;
  readonly statusCode: number;
  /** The response body as text (a JSON `Status` from the API server). */
  readonly body: string;
  readonly headers: Record<string, string>;

  constructor(method: string, path: string, status: number, body: string, headers: Record<string, string>) {
    super(`${method} ${path}: HTTP ${status}${body ? `: ${body.slice(0, 300)}` : ''}`);
    this.name = 'KubeApiError';
    this.code = status;
    this.statusCode = status;
    this.body = body;
    this.headers = headers;
  }
}

/** One watch: abort() ends it without calling its `onDone`. */
export interface WatchHandle {
  abort(): void;
}

export type WatchEventHandler = (type: string, object: unknown) => void;

/** `path?query`, leaving out undefined values. Pure. */
export function withQuery(path: string, query: Query | undefined): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}

/**
 * Splits a stream of text chunks into lines (`\n`), calling `onLine` for every non-empty line; a line may
 * span chunks. Pure apart from the callback.
 */
export function lineSplitter(onLine: (line: string) => void): (chunk: string) => void {
  let pending: string[] = [];
  return (chunk) => {
    let start = 0;
    for (let i = chunk.indexOf('\n'); i !== -1; i = chunk.indexOf('\n', start)) {
      const tail = chunk.slice(start, i);
      const line = pending.length ? pending.join('') + tail : tail;
      pending = [];
      start = i + 1;
      if (line.trim() !== '') onLine(line);
    }
    if (start < chunk.length) pending.push(chunk.slice(start));
  };
}

function headerRecord(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function sameBytes(a: Buffer | string | undefined, b: Buffer | string | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a).equals(Buffer.from(b));
}

/** True when two TLS materials are the same (same agents can serve both). Pure. */
export function sameTls(a: TlsMaterial, b: TlsMaterial): boolean {
  return (
    sameBytes(a.ca, b.ca) &&
    sameBytes(a.cert, b.cert) &&
    sameBytes(a.key, b.key) &&
    sameBytes(a.pfx, b.pfx) &&
    a.passphrase === b.passphrase &&
    a.rejectUnauthorized === b.rejectUnauthorized &&
    a.servername === b.servername
  );
}

interface Agents {
  tls: TlsMaterial;
  requests: http.Agent;
  watches: http.Agent;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** An https.Agent that reaches the server through an http(s) proxy's CONNECT tunnel. */
class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxy: URL,
    options: https.AgentOptions,
  ) {
    super(options);
  }

  override createConnection(
    options: tls.ConnectionOptions & { host?: string; port?: number },
    done: (err: Error | null, socket?: Duplex) => void,
  ): undefined {
    const auth = this.proxy.username
      ? {
          'proxy-authorization': `Basic ${Buffer.from(`${decodeURIComponent(this.proxy.username)}:${decodeURIComponent(this.proxy.password)}`).toString('base64')}`,
        }
      : {};
    const target = `${options.host}:${options.port}`;
    const req = (this.proxy.protocol === 'https:' ? https : http).request({
      host: this.proxy.hostname.replace(/^\[|\]$/g, ''),
      port: this.proxy.port || (this.proxy.protocol === 'https:' ? 443 : 80),
      method: 'CONNECT',
      path: target,
      headers: { host: target, ...auth },
      agent: false,
    });
    req.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        done(new Error(`the proxy ${this.proxy.host} refused to tunnel to ${target}: HTTP ${res.statusCode}`));
        return;
      }
      done(null, tls.connect({ ...options, socket }));
    });
    req.once('error', (err) => done(err));
    req.end();
    return undefined;
  }
}

export class KubeClient {
  private readonly access: KubeAccess;
  private readonly o: KubeClientOptions;
  private readonly url: URL;
  private readonly hostname: string;
  private readonly port: number;
  private readonly secure: boolean;
  /** The server URL's path (a proxy in front of the API server may serve it under one). */
  private readonly basePath: string;
  private readonly proxy: URL | undefined;
  private agents: Agents | undefined;
  private readonly watches = new Set<http.ClientRequest>();
  private closed = false;

  constructor(access: KubeAccess, options: KubeClientOptions = {}) {
    this.access = access;
    this.o = options;
    this.url = new URL(access.server);
    this.secure = this.url.protocol === 'https:';
    if (!this.secure && this.url.protocol !== 'http:')
      throw new Error(`the API server URL ${access.server} is neither https nor http`);
    this.hostname = this.url.hostname.replace(/^\[|\]$/g, '');
    this.port = this.url.port ? Number(this.url.port) : this.secure ? 443 : 80;
    this.basePath = this.url.pathname.replace(/\/+$/, '');
    if (access.proxyUrl) {
      const proxy = new URL(access.proxyUrl);
      if (!/^https?:$/.test(proxy.protocol) || !this.secure) {
        throw new Error(
          `the proxy ${access.proxyUrl} is not supported: only an http:// or https:// proxy in front of an https API server`,
        );
      }
      this.proxy = proxy;
    }
  }

  /** A request; resolves with the parsed JSON body (undefined when empty). Throws KubeApiError on ≥ 400. */
  async request<T = unknown>(method: string, path: string, options: KubeRequestOptions = {}): Promise<T> {
    const target = this.basePath + withQuery(path, options.query);
    this.o.onRequest?.(method, path);
    let body: string | undefined;
    if (options.body !== undefined)
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    for (let attempt = 0; ; attempt++) {
      const creds = await this.access.credentials(attempt > 0);
      const headers: Record<string, string | number> = { accept: 'application/json', ...creds.headers };
      if (body !== undefined) {
        headers['content-type'] = options.contentType ?? 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      const res = await this.send(this.agentsFor(creds).requests, method, target, headers, body);
      if (res.status === 401 && attempt === 0) continue; // credentials may have rotated: re-read once
      if (res.status >= 400) throw new KubeApiError(method, path, res.status, res.text, res.headers);
      return (res.text ? JSON.parse(res.text) : undefined) as T;
    }
  }

  /**
   * Watches `path` (a collection) from `query.resourceVersion`: `onEvent(type, object)` for every event
   * (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR); `onDone(err?)` once when the watch ends by itself (the
   * server closed it, an error, a status ≥ 400 as KubeApiError). Resolves once the response has started
   * (or failed). `abort()` ends it without `onDone`.
   */
  async watch(
    path: string,
    query: Query,
    onEvent: WatchEventHandler,
    onDone: (err?: unknown) => void,
  ): Promise<WatchHandle> {
    let finished = false;
    let req: http.ClientRequest | undefined;
    const finish = (err?: unknown): void => {
      if (finished) return;
      finished = true;
      if (req) {
        this.watches.delete(req);
        req.destroy();
      }
      onDone(err);
    };
    const handle: WatchHandle = {
      abort: () => {
        finished = true;
        if (req) {
          this.watches.delete(req);
          req.destroy();
        }
      },
    };
    const timeoutSeconds = typeof query.timeoutSeconds === 'number' ? query.timeoutSeconds : undefined;
    try {
      const creds = await this.access.credentials(false);
      if (finished) return handle;
      const agent = this.agentsFor(creds).watches;
      await new Promise<void>((started) => {
        const r = (this.secure ? https : http).request(
          {
            hostname: this.hostname,
            port: this.port,
            method: 'GET',
            path: this.basePath + withQuery(path, { ...query, watch: 'true' }),
            headers: { accept: 'application/json', ...creds.headers },
            agent,
          },
          (res) => {
            started();
            if (res.statusCode !== 200) {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => {
                if (res.statusCode === 401) void this.access.credentials(true).catch(() => undefined);
                finish(
                  new KubeApiError(
                    'WATCH',
                    path,
                    res.statusCode ?? 0,
                    Buffer.concat(chunks).toString('utf8'),
                    headerRecord(res.headers),
                  ),
                );
              });
              res.on('error', (err) => finish(err));
              return;
            }
            const decoder = new StringDecoder('utf8');
            const split = lineSplitter((line) => {
              if (finished) return;
              let event: { type?: unknown; object?: unknown };
              try {
                event = JSON.parse(line) as { type?: unknown; object?: unknown };
              } catch {
                finish(new Error(`watch ${path}: a line that is not JSON: ${line.slice(0, 200)}`));
                return;
              }
              try {
                onEvent(String(event.type), event.object);
              } catch (err) {
                finish(err);
              }
            });
            res.on('data', (c: Buffer) => split(decoder.write(c)));
            res.on('end', () => finish());
            res.on('error', (err) => finish(err));
            res.on('close', () => finish(res.complete ? undefined : new Error(`watch ${path}: the connection closed`)));
          },
        );
        req = r;
        this.watches.add(r);
        if (finished) r.destroy();
        r.on('socket', (s) => s.setKeepAlive(true, 30_000));
        // The server ends the watch after timeoutSeconds; silence well past that means a dead connection.
        if (timeoutSeconds !== undefined)
          r.setTimeout((timeoutSeconds + 60) * 1000, () =>
            r.destroy(
              Object.assign(new Error(`watch ${path}: no data for ${timeoutSeconds + 60} s`), { code: 'ETIMEDOUT' }),
            ),
          );
        r.on('error', (err) => {
          started();
          finish(err);
        });
        r.end();
      });
    } catch (err) {
      finish(err);
    }
    return handle;
  }

  /** Ends the watches and closes idle connections (requests in flight finish). */
  async close(): Promise<void> {
    this.closed = true;
    for (const req of this.watches) req.destroy();
    this.watches.clear();
    const a = this.agents;
    this.agents = undefined;
    a?.requests.destroy();
    a?.watches.destroy();
  }

  private send(
    agent: http.Agent,
    method: string,
    path: string,
    headers: Record<string, string | number>,
    body: string | undefined,
  ): Promise<RawResponse> {
    const timeout = this.o.requestTimeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const req = (this.secure ? https : http).request(
        { hostname: this.hostname, port: this.port, method, path, headers, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: headerRecord(res.headers),
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(timeout, () =>
        req.destroy(Object.assign(new Error(`${method} ${path}: no answer for ${timeout} ms`), { code: 'ETIMEDOUT' })),
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  private agentsFor(creds: Credentials): Agents {
    if (this.closed) throw new Error('the Kubernetes client is closed');
    const current = this.agents;
    if (current && sameTls(current.tls, creds.tls)) return current;
    const make = (options: https.AgentOptions): http.Agent => {
      if (!this.secure) return new http.Agent(options);
      const withTls: https.AgentOptions = { ...options, ...creds.tls };
      return this.proxy ? new TunnelAgent(this.proxy, withTls) : new https.Agent(withTls);
    };
    const connections = this.o.connections ?? 16;
    const next: Agents = {
      tls: creds.tls,
      // Idle connections close after 30 s, well before the API server's own idle timeout.
      requests: make({
        keepAlive: true,
        maxSockets: connections,
        maxFreeSockets: connections,
        scheduling: 'lifo',
        timeout: 30_000,
      }),
      watches: make({ keepAlive: false }),
    };
    this.agents = next;
    // New TLS material (a rotated client certificate): requests in flight finish on the old agents, whose
    // idle connections close by their timeout.
    return next;
  }
}
