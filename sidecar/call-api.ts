/**
 * The localhost call API a function uses to call other functions through the mesh:
 *   POST /v1/call/{service}/{function}  or  POST /v1/call/{namespace}/{service}/{function}
 *   body {"params": any, "timeout"?: ms}, header x-fnmesh-request-id = the inbound call it is part of.
 * The call goes to the gateway on fnmesh.gw.{ns}.{svc}.{targetNs}.{targetSvc}.{fn}; the gateway checks
 * the target's rule. Answers like the gateway: 200 {"result": ...} or {"error": ...} with a status.
 * The params travel on as the bytes the function sent, and the result comes back as the bytes it was.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { errors as natsErrors } from '@nats-io/nats-core';
import {
  ATTEMPTS_HTTP_HEADER,
  CALL_API_PREFIX,
  FUNCTION_HEADERS,
  FnmeshError,
  NAME_RULES,
  NATS_HEADERS,
  decodeReply,
  encodeCallHeaders,
  errorMessage,
  internalCallSubject,
  isFunctionName,
  isNamespaceName,
  isServiceName,
  scanCallEnvelope,
  type CallAddress,
  type CallMeta,
  type Logger,
} from './common';
import type { InboundCalls } from './inbound';
import type { NatsLinks } from './nats-link';
import type { SidecarMetrics } from './metrics';

/** The body limit when the NATS server announces no max_payload (it always does). */
const DEFAULT_MAX_CALL_BODY = 1024 * 1024;
const CALL_PATH = CALL_API_PREFIX;

export interface CallApiDeps {
  /** The connection calls go on (replaced by a credentials handover). */
  nats: NatsLinks;
  namespace: string;
  service: string;
  defaultTimeoutMs: number;
  inbound: InboundCalls;
  metrics: SidecarMetrics;
  logger: Logger;
}

export interface CallRequest {
  /** The bytes of params as the function sent them (`null` when absent). */
  params: Buffer;
  timeout?: number;
}

const NULL_PARAMS = Buffer.from('null');

/** Parses the path into a target; undefined when the path is not a call path (→ 404). */
export function parseCallPath(url: string, defaultNamespace: string): CallAddress | FnmeshError | undefined {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (!path.startsWith(CALL_PATH)) return undefined;
  const parts = path.slice(CALL_PATH.length).split('/');
  if (parts.length !== 2 && parts.length !== 3) return undefined;
  let decoded: string[];
  try {
    decoded = parts.map((p) => decodeURIComponent(p));
  } catch {
    return new FnmeshError('bad_request', `the path ${path} is not validly percent-encoded`);
  }
  const [namespace, service, fn] = decoded.length === 3 ? decoded : [defaultNamespace, ...decoded];
  if (!isNamespaceName(namespace!))
    return new FnmeshError('bad_request', `namespace "${namespace}" is not valid: it must be ${NAME_RULES.namespace}`);
  if (!isServiceName(service!))
    return new FnmeshError('bad_request', `service "${service}" is not valid: it must be ${NAME_RULES.service}`);
  if (!isFunctionName(fn!))
    return new FnmeshError('bad_request', `function "${fn}" is not valid: it must be ${NAME_RULES.function}`);
  return { namespace: namespace!, service: service!, function: fn! };
}

/**
 * Validates the body; returns the request or a 400 error naming what is wrong. The gateway checks the params
 * (depth, UTF-8) as it does for calls from outside; here they are only found, not rebuilt.
 */
export function parseCallBody(raw: Buffer | string): CallRequest | FnmeshError {
  const bytes = typeof raw === 'string' ? Buffer.from(raw) : raw;
  const scan = scanCallEnvelope(bytes, Infinity);
  if (scan.kind === 'duplicate')
    return new FnmeshError('bad_request', `the request body has the key "${scan.key}" more than once: send it once`);
  const text = bytes.toString('utf8');
  if (text.trim() === '')
    return new FnmeshError(
      'bad_request',
      'the request body is empty: send {"params": <any JSON>, "timeout": <ms, optional>}',
    );
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    return new FnmeshError('bad_request', `the request body is not valid JSON: ${errorMessage(err)}`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    return new FnmeshError(
      'bad_request',
      'the request body must be a JSON object such as {"params": {...}, "timeout": 5000}',
    );
  }
  if (scan.kind !== 'ok') return new FnmeshError('bad_request', 'the request body could not be read as a call');
  const b = body as { timeout?: unknown };
  const req: CallRequest = { params: scan.params ? bytes.subarray(scan.params.start, scan.params.end) : NULL_PARAMS };
  if (b.timeout !== undefined && b.timeout !== null) {
    if (typeof b.timeout !== 'number' || !Number.isInteger(b.timeout) || b.timeout <= 0) {
      return new FnmeshError(
        'bad_request',
        `"timeout" must be a positive whole number of milliseconds, got ${describeValue(b.timeout)}`,
      );
    }
    req.timeout = b.timeout;
  }
  return req;
}

/** A short, non-recursive description of a JSON value (a hostile body may nest it a million levels). */
function describeValue(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value !== null && typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function isNoResponders(err: unknown): boolean {
  if (err instanceof natsErrors.NoRespondersError) return true;
  if (err instanceof natsErrors.RequestError) return err.isNoResponders();
  return false;
}

function isTimeout(err: unknown): boolean {
  return (
    err instanceof natsErrors.TimeoutError || (err instanceof Error && err.cause instanceof natsErrors.TimeoutError)
  );
}

const JSON_HEADERS = { 'content-type': 'application/json' };
/** Params this far below max_payload always fit with their headers: their size is computed only above it. */
const HEADER_CHECK_MARGIN = 64 * 1024;

function sendError(res: ServerResponse, err: FnmeshError, extra?: Record<string, string>): void {
  const body = JSON.stringify({ error: err.message });
  res.writeHead(err.status, extra ? { ...JSON_HEADERS, ...extra } : JSON_HEADERS);
  res.end(body);
}

export function createCallApiHandler(deps: CallApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { nats, inbound, metrics } = deps;
  const caller = { namespace: deps.namespace, service: deps.service };

  const call = async (
    target: CallAddress,
    body: CallRequest,
    parentId: string | undefined,
    res: ServerResponse,
  ): Promise<void> => {
    const parent = inbound.get(parentId);
    let timeoutMs: number;
    const meta: CallMeta = { requestId: randomUUID(), timeoutMs: 0 };
    if (parent) {
      const remaining = parent.deadline - Date.now();
      timeoutMs = body.timeout !== undefined ? Math.min(remaining, body.timeout) : remaining;
      if (parentId) meta.parentId = parentId;
      if (parent.delegation) meta.delegation = parent.delegation;
      if (parent.traceparent) meta.traceparent = parent.traceparent;
    } else {
      timeoutMs = body.timeout ?? deps.defaultTimeoutMs;
    }
    if (timeoutMs < 1) {
      metrics.outboundCalls.labels('deadline_exceeded').inc();
      sendError(
        res,
        new FnmeshError(
          'deadline_exceeded',
          `no time is left before the deadline of the inbound call ${parentId} to call ${target.service}/${target.function}`,
        ),
      );
      return;
    }
    meta.timeoutMs = timeoutMs;
    const subject = internalCallSubject(caller, target);
    const data = body.params;
    const headers = encodeCallHeaders(meta);
    const link = nats.current;
    const maxPayload = link.nc.info?.max_payload;
    if (maxPayload !== undefined && data.length > maxPayload - HEADER_CHECK_MARGIN) {
      const headerBytes = (headers as { encode?: () => Uint8Array }).encode?.().length ?? 0;
      if (data.length + headerBytes > maxPayload) {
        metrics.outboundCalls.labels('payload_too_large').inc();
        sendError(
          res,
          new FnmeshError(
            'payload_too_large',
            `the call to ${target.namespace}/${target.service}/${target.function} is too large for NATS: ${data.length} bytes of params and ${headerBytes} bytes of headers, more than the NATS server's max_payload of ${maxPayload} bytes; send smaller params`,
          ),
        );
        return;
      }
    }
    link.outbound++;
    try {
      const msg = await link.nc.request(subject, data, { timeout: timeoutMs, headers });
      const reply = decodeReply(msg.data, msg.headers);
      // The gateway says how many attempts the call took when it took more than one (fnmesh-attempts).
      const attempts = msg.headers?.get(NATS_HEADERS.attempt);
      const extra = attempts ? { [ATTEMPTS_HTTP_HEADER]: attempts } : undefined;
      if (reply.ok) {
        metrics.outboundCalls.labels('ok').inc();
        const result =
          reply.body.length === 0
            ? 'null'
            : Buffer.from(reply.body.buffer, reply.body.byteOffset, reply.body.byteLength);
        res.writeHead(200, extra ? { ...JSON_HEADERS, ...extra } : JSON_HEADERS);
        res.write('{"result":');
        res.write(result);
        res.end('}');
      } else {
        metrics.outboundCalls.labels(reply.error.code).inc();
        sendError(res, reply.error, extra);
      }
    } catch (err) {
      let e: FnmeshError;
      if (isNoResponders(err))
        e = new FnmeshError('unavailable', 'no fnmesh gateway is answering internal calls on NATS');
      else if (isTimeout(err))
        e = new FnmeshError(
          'deadline_exceeded',
          `the call to ${target.namespace}/${target.service}/${target.function} did not finish within ${timeoutMs} ms`,
        );
      else
        e = new FnmeshError(
          'unavailable',
          `the call to ${target.namespace}/${target.service}/${target.function} could not be sent over NATS: ${errorMessage(err)}`,
        );
      metrics.outboundCalls.labels(e.code).inc();
      sendError(res, e);
    } finally {
      link.outbound--;
    }
  };

  return (req, res) => {
    const target = parseCallPath(req.url ?? '/', deps.namespace);
    if (target === undefined) {
      sendError(
        res,
        new FnmeshError(
          'not_found',
          `no such path ${req.method} ${req.url}; use POST /v1/call/{service}/{function} or POST /v1/call/{namespace}/{service}/{function}`,
        ),
      );
      req.resume();
      return;
    }
    if (req.method !== 'POST') {
      sendError(res, new FnmeshError('method_not_allowed', `method ${req.method} is not allowed here; use POST`), {
        allow: 'POST',
      });
      req.resume();
      return;
    }
    if (target instanceof FnmeshError) {
      sendError(res, target);
      req.resume();
      return;
    }
    const limit = nats.current.nc.info?.max_payload ?? DEFAULT_MAX_CALL_BODY;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      sendError(
        res,
        new FnmeshError(
          'payload_too_large',
          `the request body is ${declared} bytes; the limit is ${limit} bytes, the NATS server's max_payload`,
        ),
        { connection: 'close' },
      );
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > limit) {
        tooLarge = true;
        sendError(
          res,
          new FnmeshError(
            'payload_too_large',
            `the request body is larger than the limit of ${limit} bytes, the NATS server's max_payload`,
          ),
          { connection: 'close' },
        );
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (tooLarge) return;
      const parsed = parseCallBody(Buffer.concat(chunks, size));
      if (parsed instanceof FnmeshError) {
        sendError(res, parsed);
        return;
      }
      const parentHeader = req.headers[FUNCTION_HEADERS.requestId];
      const parentId = Array.isArray(parentHeader) ? parentHeader[0] : parentHeader;
      call(target, parsed, parentId, res).catch((err: unknown) => {
        deps.logger.error('call API failed', { error: errorMessage(err) });
        if (!res.headersSent) sendError(res, new FnmeshError('internal'));
        else res.destroy();
      });
    });
  };
}

export function createCallApiServer(deps: CallApiDeps): http.Server {
  const server = http.createServer({ keepAliveTimeout: 65_000 }, createCallApiHandler(deps));
  server.headersTimeout = 66_000;
  return server;
}
