/**
 * The front door: what a client may hold of the gateway's HTTP servers (head size, head and request
 * timeouts, keep-alive, the connection cap: Node's http.Server options, from the settings), and the answers
 * Node would send with empty bodies (408, 431, 400, 417, a silent close for CONNECT) as the gateway's JSON
 * errors naming the limit and its setting. `clientErrorAnswer` and `serverOptions` decide (pure);
 * `createGuardedServer` applies them and answers on the socket.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../common';
import type { FrontDoorLimits } from './config';
import type { GatewayMetrics } from './metrics';

export type Listener = 'call' | 'ops';
/** What had not arrived when a request timed out: its head, or (after the head) the rest of it. */
export type ReceivePhase = 'headers' | 'body';

export interface ClientErrorAnswer {
  status: number;
  message: string;
  /** What to count it as. */
  kind: 'headers_timeout' | 'body_timeout' | 'headers_too_large' | 'malformed';
}

/**
 * The answer to an error Node's HTTP parser or its request timer reports for a connection (the
 * 'clientError' event), or undefined for a connection error with nothing to answer (a reset).
 */
export function clientErrorAnswer(
  err: { code?: string; reason?: string },
  phase: ReceivePhase,
  limits: FrontDoorLimits,
): ClientErrorAnswer | undefined {
  const code = err.code ?? '';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return phase === 'headers'
      ? {
          status: 408,
          kind: 'headers_timeout',
          message: `the request head did not arrive within ${limits.headersTimeoutMs} ms (FNMESH_HEADERS_TIMEOUT_MS): send the request line and headers at once, or raise FNMESH_HEADERS_TIMEOUT_MS`,
        }
      : {
          status: 408,
          kind: 'body_timeout',
          message: `the request did not arrive within ${limits.receiveTimeoutMs} ms (FNMESH_RECEIVE_TIMEOUT_MS): send the whole body at once, with the content-length or the chunked end it announces, or raise FNMESH_RECEIVE_TIMEOUT_MS`,
        };
  }
  if (code === 'HPE_HEADER_OVERFLOW') {
    return {
      status: 431,
      kind: 'headers_too_large',
      message: `the request head is larger than the limit of ${limits.maxHeaderBytes} bytes (FNMESH_MAX_HEADER_BYTES): send fewer or smaller headers (cookies, a shorter token), or raise FNMESH_MAX_HEADER_BYTES`,
    };
  }
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') {
    return {
      status: 413,
      kind: 'malformed',
      message: 'the chunk extensions of the request body are too large: send the chunks without extensions',
    };
  }
  if (code.startsWith('HPE_')) {
    const detail = typeof err.reason === 'string' && err.reason ? `${code}: ${err.reason}` : code;
    return {
      status: 400,
      kind: 'malformed',
      message: `the request is not valid HTTP/1.1 (${detail.slice(0, 200)}): send a well-formed request, e.g. POST /v1/api/{namespace}/functions/{service}/{function} with a Host header`,
    };
  }
  return undefined;
}

/** A whole HTTP/1.1 answer with a JSON error body, for a socket that has no response object. */
export function rawJsonAnswer(status: number, message: string): string {
  const body = JSON.stringify({ error: message });
  return (
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

/** How often Node looks for requests past their timeouts: a tenth of the shorter one, within 10 ms–1 s. */
export function checkingIntervalMs(limits: FrontDoorLimits): number {
  return Math.min(1000, Math.max(10, Math.floor(Math.min(limits.headersTimeoutMs, limits.receiveTimeoutMs) / 10)));
}

/** Node's http.Server options for the limits. A missing Host is answered by the guard, with a JSON body. */
export function serverOptions(limits: FrontDoorLimits): http.ServerOptions {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.receiveTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: checkingIntervalMs(limits),
    requireHostHeader: false,
  };
}

/** The 400 of an HTTP/1.1 request without Host (RFC 9112 §3.2), or undefined when it is fine. */
export function missingHostMessage(req: Pick<http.IncomingMessage, 'httpVersion' | 'headers'>): string | undefined {
  if (req.httpVersion !== '1.1' || req.headers.host !== undefined) return undefined;
  return 'an HTTP/1.1 request needs a Host header: add one, e.g. Host: gateway.example.com';
}

/** The 417 of an Expect header other than 100-continue. */
export function expectationMessage(expect: string | undefined): string {
  return `the Expect header ${JSON.stringify((expect ?? '').slice(0, 100))} is not supported: only "100-continue" is; send the request without it`;
}

/** Answers a JSON error and closes the connection after it (its body, if any, is not read). */
function endJson(res: http.ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({ error: message });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

/** How long an answered connection may stay open for the client to read the answer and close. */
const LINGER_MS = 1000;

/** The answer a connection got from the guard (408, 431, 400...), for the call path's accounting. */
const answered = new WeakMap<Socket, ClientErrorAnswer>();
export function clientErrorOf(socket: Socket | null | undefined): ClientErrorAnswer | undefined {
  return socket ? answered.get(socket) : undefined;
}

export interface GuardOptions {
  listener: Listener;
  limits: FrontDoorLimits;
  /** Close connections over `limits.maxConnections` at once (the call listener). */
  capConnections: boolean;
  metrics: GatewayMetrics;
  logger: Logger;
}

/**
 * An http.Server with the limits applied, whose client errors are answered with JSON and counted. The
 * answer is written, the socket half-closed, and destroyed once the client has closed or after LINGER_MS:
 * destroying at once (as Node does) resets a connection that is still sending, and the client then often
 * never reads the answer. Requests that arrive on an answered connection are not handled.
 */
export function createGuardedServer(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
  options: GuardOptions,
): http.Server {
  const { listener, limits, metrics, logger } = options;
  const current = new WeakMap<Socket, { req: http.IncomingMessage; res: http.ServerResponse }>();
  const open = metrics.openConnections.labels(listener);

  const answer = (socket: Socket, a: ClientErrorAnswer, code: string): void => {
    answered.set(socket, a);
    if (a.kind === 'headers_timeout' || a.kind === 'body_timeout') {
      metrics.requestTimeouts.labels(listener, a.kind === 'headers_timeout' ? 'headers' : 'body').inc();
    } else if (a.kind === 'headers_too_large') metrics.headersTooLarge.labels(listener).inc();
    else metrics.malformedRequests.labels(listener).inc();
    logger.debug('answered a client error', { listener, status: a.status, code, remote: socket.remoteAddress });
    const inFlight = current.get(socket);
    const canWrite = socket.writable && (!inFlight || !inFlight.res.headersSent || inFlight.res.writableFinished);
    if (!canWrite) {
      socket.destroy();
      return;
    }
    socket.end(rawJsonAnswer(a.status, a.message));
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };

  const server = http.createServer(serverOptions(limits), (req, res) => {
    if (answered.has(req.socket)) {
      // A request pipelined behind one that was answered with an error: the connection is closing.
      req.resume();
      return;
    }
    current.set(req.socket, { req, res });
    const noHost = missingHostMessage(req);
    if (noHost) {
      metrics.malformedRequests.labels(listener).inc();
      endJson(res, 400, noHost);
      return;
    }
    handler(req, res);
  });
  if (options.capConnections) {
    server.maxConnections = limits.maxConnections;
    const refused = metrics.connectionsRefused.labels(listener);
    server.on('drop', () => refused.inc());
  }
  server.on('connection', (socket: Socket) => {
    open.inc();
    socket.once('close', () => open.dec());
  });
  server.on('clientError', (err: Error & { code?: string; reason?: string }, socket: Socket) => {
    if (answered.has(socket)) {
      socket.destroy();
      return;
    }
    const inFlight = current.get(socket);
    const phase: ReceivePhase = inFlight && !inFlight.req.complete ? 'body' : 'headers';
    const a = clientErrorAnswer(err, phase, limits);
    if (a) answer(socket, a, err.code ?? '');
    else socket.destroy();
  });
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
    endJson(res, 417, expectationMessage(req.headers.expect));
  });
  // CONNECT: the gateway is no proxy (Node would close the connection without a word).
  server.on('connect', (_req: http.IncomingMessage, socket: Socket) => {
    answer(
      socket,
      {
        status: 405,
        kind: 'malformed',
        message: `method CONNECT is not allowed: the gateway is no proxy; calls are POST /v1/api/{namespace}/functions/{service}/{function}`,
      },
      'CONNECT',
    );
  });
  return server;
}
