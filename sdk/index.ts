/**
 * The fnmesh SDK for Node functions: `serve({ name: async (params, ctx) => result })`.
 * Dependency-free (node:http and fetch only) so it can be copied into any project.
 *
 * Serves POST /{name} on 127.0.0.1:{port} for the sidecar, GET /healthz for its health check, and gives
 * each call a Context with the verified claims, request id, deadline (and an AbortSignal at it), caller,
 * traceparent, and `ctx.call(service, fn, params)` to call other functions through the mesh.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import {
  DEFAULT_CALL_API_PORT,
  DEFAULT_FUNCTION_PORT,
  FUNCTION_ENV,
  FUNCTION_HEADERS,
  callApiPath,
  sidecarUrl as sidecarUrlOn,
} from '../common/function-protocol';

export interface CallOptions {
  namespace?: string;
  timeoutMs?: number;
}

export interface Context {
  /** Verified JWT claims of the end user (absent for anonymous calls). */
  claims?: Record<string, unknown>;
  requestId: string;
  deadline: Date;
  /** Aborted at the deadline (and when the caller goes away). */
  signal: AbortSignal;
  /** `namespace/service` of the calling service, for calls from another function. */
  caller?: string;
  traceparent?: string;
  /** Calls another function through the mesh (its rule applies); resolves to its result or throws CallError. */
  call<T = unknown>(service: string, fn: string, params?: unknown, options?: CallOptions): Promise<T>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type FnmeshFunction = (params: any, ctx: Context) => Promise<unknown> | unknown;
export type Functions = Record<string, FnmeshFunction>;

export interface ServeOptions {
  /** Defaults to env PORT, then FNMESH_FUNCTION_PORT, then 8080. 0 picks a free port. */
  port?: number;
  /** Defaults to 127.0.0.1 (only the sidecar beside it calls the function). */
  host?: string;
  /** The sidecar's call API; defaults to env FNMESH_SIDECAR_URL, then http://127.0.0.1:3500. */
  sidecarUrl?: string;
  /** Install SIGTERM/SIGINT handlers that close gracefully and exit (default true). */
  handleSignals?: boolean;
  /** Largest request body accepted, bytes (default 8 MiB). */
  maxBodyBytes?: number;
  /** Budget when the request carries no deadline (default 10000 ms). */
  defaultTimeoutMs?: number;
  /** Where to report errors thrown by functions (default: console.error). */
  onError?: (err: unknown, fn: string) => void;
}

export interface ServeHandle {
  port: number;
  /** Stops taking connections, lets in-flight calls finish, closes idle keep-alive connections. */
  close(): Promise<void>;
}

/** Throw from a function to answer with a 4xx status (e.g. 400 for bad input) and a message. */
export class FunctionError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'FunctionError';
    this.status = status;
  }
}

/** A failed `ctx.call`: the status and message the mesh answered. */
export class CallError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'CallError';
    this.status = status;
  }
}

const H = FUNCTION_HEADERS;

const JSON_HEADERS = { 'content-type': 'application/json' };
const MAX_TIMER_MS = 2_147_483_647;

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function decodeClaims(value: string | undefined): Record<string, unknown> | undefined {
  if (!value) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function envPort(): number | undefined {
  for (const name of [FUNCTION_ENV.port, 'FNMESH_FUNCTION_PORT']) {
    const v = process.env[name];
    if (v && v.trim() !== '') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name}="${v}" is not a valid port`);
      return n;
    }
  }
  return undefined;
}

function deadlineOf(req: IncomingMessage, defaultTimeoutMs: number): number {
  const abs = Number(header(req, H.deadline));
  if (Number.isFinite(abs) && abs > 0) return abs;
  const rel = Number(header(req, H.timeoutMs));
  if (Number.isFinite(rel) && rel >= 0 && header(req, H.timeoutMs) !== undefined) return Date.now() + rel;
  return Date.now() + defaultTimeoutMs;
}

function send(res: ServerResponse, status: number, body: string, closing: boolean): void {
  res.writeHead(status, closing ? { ...JSON_HEADERS, connection: 'close' } : JSON_HEADERS);
  res.end(body);
}

function errorBody(message: string): string {
  return JSON.stringify({ error: message });
}

/** Makes `ctx.call` for one inbound call. */
function makeCall(sidecarUrl: string, requestId: string, signal: AbortSignal) {
  return async function call<T = unknown>(
    service: string,
    fn: string,
    params?: unknown,
    options: CallOptions = {},
  ): Promise<T> {
    const path = callApiPath(service, fn, options.namespace);
    const body: { params: unknown; timeout?: number } = { params: params === undefined ? null : params };
    if (options.timeoutMs !== undefined) body.timeout = options.timeoutMs;
    let res: Response;
    try {
      res = await fetch(sidecarUrl + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [H.requestId]: requestId },
        body: JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (signal.aborted)
        throw new CallError(504, `the call to ${service}/${fn} was cut off at the deadline of this call`);
      throw new CallError(
        503,
        `the fnmesh sidecar is not reachable at ${sidecarUrl}: ${(err as Error).cause ? String((err as Error).cause) : String(err)}`,
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.ok) {
      if (parsed && typeof parsed === 'object' && 'result' in parsed) return (parsed as { result: T }).result;
      throw new CallError(502, `the sidecar answered ${res.status} without a result`);
    }
    const message =
      parsed && typeof parsed === 'object' && typeof (parsed as { error?: unknown }).error === 'string'
        ? (parsed as { error: string }).error
        : text || `the call to ${service}/${fn} failed with status ${res.status}`;
    throw new CallError(res.status, message);
  };
}

function unknownFunctionMessage(name: string): string {
  return `no function "${name}" in this service: serve it from this process (and declare it in the manifest's spec.functions) or call another name`;
}

export async function serve(functions: Functions, options: ServeOptions = {}): Promise<ServeHandle> {
  const maxBody = options.maxBodyBytes ?? 8 * 1024 * 1024;
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 10_000;
  const sidecarUrl = (
    options.sidecarUrl ??
    process.env[FUNCTION_ENV.sidecarUrl] ??
    sidecarUrlOn(DEFAULT_CALL_API_PORT)
  ).replace(/\/+$/, '');
  const onError =
    options.onError ?? ((err: unknown, fn: string) => console.error(`fnmesh: function "${fn}" failed:`, err));
  let closing = false;
  let inFlight = 0;
  let onIdle: (() => void) | undefined;

  const run = async (
    fn: FnmeshFunction,
    name: string,
    req: IncomingMessage,
    res: ServerResponse,
    raw: Buffer,
  ): Promise<void> => {
    let params: unknown = null;
    if (raw.length > 0) {
      try {
        params = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        send(res, 400, errorBody(`the request body is not valid JSON: ${(err as Error).message}`), closing);
        return;
      }
    }
    const requestId = header(req, H.requestId) || randomUUID();
    const deadline = deadlineOf(req, defaultTimeoutMs);
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Error('deadline exceeded')),
      Math.max(0, Math.min(deadline - Date.now(), MAX_TIMER_MS)),
    );
    const onClose = (): void => {
      if (!res.writableEnded) controller.abort(new Error('the caller went away'));
    };
    res.once('close', onClose);
    const ctx: Context = {
      requestId,
      deadline: new Date(deadline),
      signal: controller.signal,
      call: makeCall(sidecarUrl, requestId, controller.signal),
    };
    const claims = decodeClaims(header(req, H.claims));
    if (claims) ctx.claims = claims;
    const caller = header(req, H.caller);
    if (caller) ctx.caller = caller;
    const traceparent = header(req, H.traceparent);
    if (traceparent) ctx.traceparent = traceparent;
    try {
      const result = await fn(params, ctx);
      let body: string;
      try {
        body = JSON.stringify(result === undefined ? null : result);
      } catch (err) {
        send(
          res,
          500,
          errorBody(`the result of function "${name}" cannot be turned into JSON: ${(err as Error).message}`),
          closing,
        );
        return;
      }
      send(res, 200, body, closing);
    } catch (err) {
      const status = (err as { status?: unknown })?.status;
      const message = err instanceof Error ? err.message : String(err);
      if (typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 499) {
        send(res, status, errorBody(message), closing);
      } else {
        onError(err, name);
        send(res, 500, errorBody(message || `function "${name}" failed`), closing);
      }
    } finally {
      clearTimeout(timer);
      res.off('close', onClose);
    }
  };

  const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      send(res, closing ? 503 : 200, closing ? '{"status":"closing"}' : '{"status":"ok"}', closing);
      req.resume();
      return;
    }
    let name: string;
    try {
      name = decodeURIComponent(path.slice(1));
    } catch {
      name = path.slice(1);
    }
    if (!Object.prototype.hasOwnProperty.call(functions, name) || typeof functions[name] !== 'function') {
      // The answer may reach an anonymous caller (through a `default` rule): it names no other function.
      send(res, 404, errorBody(unknownFunctionMessage(name)), closing);
      req.resume();
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      send(res, 405, errorBody(`method ${req.method} is not allowed; call a function with POST /${name}`), closing);
      req.resume();
      return;
    }
    inFlight++;
    const done = (): void => {
      inFlight--;
      if (inFlight === 0 && onIdle) onIdle();
    };
    res.once('close', done);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > maxBody) {
        tooLarge = true;
        send(res, 413, errorBody(`the request body is larger than ${maxBody} bytes`), true);
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (tooLarge) return;
      void run(functions[name]!, name, req, res, Buffer.concat(chunks, size)).catch((err: unknown) => {
        onError(err, name);
        if (!res.headersSent) send(res, 500, errorBody('internal error'), closing);
      });
    });
  });

  const port = options.port ?? envPort() ?? DEFAULT_FUNCTION_PORT;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const boundPort = (server.address() as AddressInfo).port;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      closing = true;
      server.close(() => resolve());
      server.closeIdleConnections();
      const finish = (): void => {
        // Responses sent while closing carry "connection: close"; drop whatever keep-alive sockets remain.
        server.closeAllConnections();
      };
      if (inFlight === 0) finish();
      else onIdle = finish;
    });
    return closed;
  };

  if (options.handleSignals !== false) {
    const onSignal = (): void => {
      void close().then(() => process.exit(0));
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  return { port: boundPort, close };
}
