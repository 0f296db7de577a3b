/**
 * The HTTP shell. The hot path, POST /v1/api/{ns}/functions/{svc}/{fn}, is handled on raw node:http
 * (express costs several times more per request); everything else (probes, and for the ops listener or an
 * admin GET /v1/services and /metrics; 404s) goes to a small express app.
 */
import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import express from 'express';
import {
  ATTEMPTS_HTTP_HEADER,
  FnmeshError,
  codeForStatus,
  errorMessage,
  handleOps,
  type Logger,
  type OpsHandlerOptions,
} from '../common';
import { adminAccess, isAdminPath } from './admin-access';
import type { GatewayConfig } from './config';
import {
  CALL_ROUTE_PREFIX,
  computeTimeoutMs,
  isJsonContentType,
  parseCallBody,
  refuseAmbiguousParams,
  parseCallRoute,
  pickRequestId,
  pickTraceparent,
  resultEnvelope,
} from './call-path';
import { denialError, evaluateRule, makeFuncCaller } from './authorize';
import { toHttpError } from './errors-http';
import type { Connection } from './invoke';
import type { CircuitBreakers } from './circuit-breaker';
import { callFunction, type ResilientCalls } from './resilient-call';
import type { GatewayMetrics } from './metrics';
import { withReplicaStates, type ReplicaStates } from './replica-listing';
import { describeRegistry, unknownFunctionError, type Registry, type ResolvedFunction } from './registry';
import { bearerToken, type JwtVerifier } from './auth';
import { corsDecider } from './cors';
import type { DelegationTokens } from './delegation';
import { clientErrorOf } from './front-door';
import { bodyTooLarge, tokenTooLarge } from './limits';
import { serveOpenApi } from './openapi-route';

export interface HttpDeps {
  config: Pick<
    GatewayConfig,
    | 'maxTimeoutMs'
    | 'corsOrigins'
    | 'corsCredentials'
    | 'exposeRuleReasons'
    | 'adminToken'
    | 'maxParamsDepth'
    | 'maxTokenBytes'
  > & {
    /** The body limit in force (FNMESH_MAX_BODY_BYTES, or the default fitted to the broker's max payload). */
    maxBodyBytes: number;
  };
  registry: () => Registry;
  conn: Connection;
  /** The circuit breakers of all functions (kept across routing-table rebuilds). */
  breakers: CircuitBreakers;
  /** Each service's replicas as they report themselves (micro PING), for the listing. */
  replicaStates: ReplicaStates;
  verifier: JwtVerifier;
  /** Issues the delegation tokens that go with calls carrying verified claims. */
  delegation: DelegationTokens;
  metrics: GatewayMetrics;
  logger: Logger;
  /** /healthz and /readyz are served on the call port too; /metrics only to FNMESH_ADMIN_TOKEN. */
  ops: OpsHandlerOptions;
  /** True once the gateway is stopping: answers carry `connection: close`. */
  stopping: () => boolean;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

const ROUTE_HINT = 'calls are POST /v1/api/{namespace}/functions/{service}/{function}';
export function createHttpHandler(deps: HttpDeps): { handler: RequestHandler; inFlight: () => number } {
  const { config, verifier, metrics, logger } = deps;
  const calls: ResilientCalls = {
    conn: deps.conn,
    breakers: deps.breakers,
    metrics,
    logger,
  };
  const cors = corsDecider({ origins: config.corsOrigins, credentials: config.corsCredentials });
  let inFlight = 0;
  const httpInFlight = metrics.inFlightOf('http');
  const app = createOpsApp(deps, 'call');
  const openApi = serveOpenApi(config);

  function handleCall(req: IncomingMessage, res: ServerResponse, url: string): void {
    const started = performance.now();
    const requestId = pickRequestId(req.headers['x-request-id']);
    const headers: OutgoingHttpHeaders = { 'content-type': 'application/json', 'x-request-id': requestId };
    const preflight = req.method === 'OPTIONS';
    Object.assign(
      headers,
      cors({ origin: req.headers.origin, preflight, requestHeaders: req.headers['access-control-request-headers'] }),
    );
    if (deps.stopping()) headers['connection'] = 'close';
    // eslint-disable-next-line prefer-const -- assigned once the route resolves, read by finish() before that
    let fn: ResolvedFunction | undefined;
    inFlight++;
    httpInFlight.inc();
    let finished = false;

    const finish = (
      status: number,
      body: string | Buffer,
      err?: { code: string; message: string; unexpected?: boolean; reason?: string },
    ): void => {
      if (finished) return;
      finished = true;
      inFlight--;
      httpInFlight.dec();
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(status, headers);
        res.end(body);
      }
      const seconds = (performance.now() - started) / 1000;
      metrics.forCall(fn, 'http').answered(status, seconds);
      if (err) {
        const meta: Record<string, unknown> = {
          requestId,
          status,
          code: err.code,
          error: err.message,
          durationMs: Math.round(seconds * 1e4) / 10,
        };
        if (fn) meta.function = fn.label;
        else meta.path = url.length > 200 ? url.slice(0, 200) : url;
        if (err.reason) meta.reason = err.reason;
        if (status >= 500) logger.error(err.unexpected ? 'call failed unexpectedly' : 'call failed', meta);
        else logger.warn('call failed', meta);
      } else if (fn) {
        logger.debug('call succeeded', { requestId, function: fn.label, durationMs: Math.round(seconds * 1e4) / 10 });
      }
    };
    const fail = (err: unknown, reason?: string): void => {
      const h = toHttpError(err);
      if (h.unexpected) logger.error('unexpected error in the call path', { requestId, error: errorMessage(err) });
      finish(h.status, h.body, {
        code: h.code,
        message: h.message,
        unexpected: h.unexpected,
        ...(reason ? { reason } : {}),
      });
    };

    if (preflight) {
      headers['allow'] = 'POST, OPTIONS';
      delete headers['content-type'];
      finish(204, '');
      return;
    }
    let route;
    try {
      route = parseCallRoute(url);
    } catch (err) {
      fail(err);
      return;
    }
    if (!route) {
      fail(new FnmeshError('not_found', `no route for ${req.method} ${url.split('?')[0]}: ${ROUTE_HINT}`));
      return;
    }
    if (req.method !== 'POST') {
      headers['allow'] = 'POST';
      fail(
        new FnmeshError('method_not_allowed', `method ${req.method} is not allowed on ${url.split('?')[0]}: use POST`),
      );
      return;
    }
    const found = deps.registry().lookup(route.namespace, route.service, route.function);
    if (found.kind === 'no-service') {
      fail(new FnmeshError('not_found', `service "${route.service}" is not in namespace "${route.namespace}"`));
      return;
    }
    if (found.kind === 'no-function') {
      logger.debug('call to an undeclared function', {
        function: `${route.namespace}/${route.service}.${route.function}`,
        declared: found.known,
      });
      fail(unknownFunctionError(route.namespace, route.service, route.function));
      return;
    }
    fn = found.fn;
    const target = fn;
    if (!isJsonContentType(req.headers['content-type'])) {
      fail(
        new FnmeshError(
          'unsupported_media_type',
          `the request body must be JSON (content-type application/json), got content-type "${req.headers['content-type']}"`,
        ),
      );
      return;
    }
    const limit = config.maxBodyBytes;
    const tooLarge = (): void => {
      headers['connection'] = 'close';
      fail(bodyTooLarge(limit));
      req.removeAllListeners('data');
      req.removeAllListeners('end');
      req.resume();
      res.once('finish', () => req.socket?.destroySoon?.());
    };
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) {
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        tooLarge();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => fail(new FnmeshError('bad_request', 'the request body could not be read')));
    req.on('end', () => {
      // A connection the front door answered (a 408 while the body trickled in) runs no call.
      if (finished || clientErrorOf(req.socket)) return;
      const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      run(raw).catch(fail);
    });
    res.on('close', () => {
      if (finished) return;
      // The front door answered it (the body did not arrive in time): count the call with that answer.
      const answered = clientErrorOf(req.socket);
      if (answered) {
        fail(new FnmeshError(codeForStatus(answered.status), answered.message, answered.status));
        return;
      }
      // The client went away: account for the call; its NATS request still ends at the deadline.
      fail(new FnmeshError('bad_request', 'the client closed the connection before the answer'));
    });

    async function run(raw: Buffer): Promise<void> {
      const token = bearerToken(req.headers.authorization);
      if (token !== undefined && Buffer.byteLength(token) > config.maxTokenBytes)
        throw tokenTooLarge(Buffer.byteLength(token), config.maxTokenBytes);
      const body = parseCallBody(raw, config.maxParamsDepth);
      refuseAmbiguousParams(target, body.paramsBytes, body.params);
      let claims: Record<string, unknown> | undefined;
      if (token !== undefined) claims = await verifier.verify(token);
      const timeoutMs = computeTimeoutMs(body.timeoutMs, target.timeoutMs, config.maxTimeoutMs);
      const deadline = started + timeoutMs;
      const traceparent = pickTraceparent(req.headers.traceparent);
      const identity = { requestId, traceparent, delegation: deps.delegation };
      const input = claims ? { auth: claims, params: body.params } : { params: body.params };
      const decision = await evaluateRule(
        target,
        input,
        makeFuncCaller(calls, deps.registry, deadline, identity, body.paramsBytes),
      );
      if (!decision.allow) {
        metrics.forCall(target, 'http').denied();
        fail(denialError(target, decision.reason, config.exposeRuleReasons, claims === undefined), decision.reason);
        return;
      }
      const timeLeftMs = Math.floor(deadline - performance.now());
      const meta = {
        requestId,
        timeoutMs: timeLeftMs,
        traceparent,
        ...(claims ? { claims, delegation: deps.delegation.forCall(target, requestId, claims, timeLeftMs) } : {}),
      };
      const outcome = await callFunction(calls, target, body.paramsBytes, meta, deadline);
      if (outcome.attempts > 1) headers[ATTEMPTS_HTTP_HEADER] = String(outcome.attempts);
      if (outcome.retryAfterSeconds !== undefined) headers['retry-after'] = String(outcome.retryAfterSeconds);
      if (!outcome.reply.ok) {
        fail(outcome.reply.error);
        return;
      }
      finish(200, resultEnvelope(outcome.reply.body));
    }
  }

  const handler: RequestHandler = (req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith(CALL_ROUTE_PREFIX)) {
      handleCall(req, res, url);
      return;
    }
    if (openApi(req, res)) return;
    if (!isAdminPath(url.split('?')[0]!) && handleOps(req, res, deps.ops)) return;
    app(req, res);
  };
  return { handler, inFlight: () => inFlight };
}

/**
 * Express for the routes that are not hot: the listing and the metrics (on the ops listener; on the call
 * port to FNMESH_ADMIN_TOKEN only) and JSON 404s.
 */
function createOpsApp(
  deps: Pick<HttpDeps, 'registry' | 'breakers' | 'replicaStates' | 'logger' | 'ops'> & {
    config: Pick<GatewayConfig, 'adminToken'>;
  },
  listener: 'call' | 'ops',
): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // Exact paths only: `/Metrics` or `/metrics/` must not reach a route past its guard.
  app.enable('case sensitive routing');
  app.enable('strict routing');
  // On the call port, each admin route checks the admin token itself, whatever path matched it.
  const guard: express.RequestHandler =
    listener === 'ops'
      ? (_req, _res, next) => next()
      : (req, res, next) => {
          const access = adminAccess(req.path, req.headers.authorization, deps.config.adminToken);
          if (access.ok) return next();
          if (access.status === 401) res.setHeader('www-authenticate', 'Bearer');
          res.status(access.status).json({ error: access.message });
        };
  app.get('/v1/services', guard, async (_req, res) => {
    const services = describeRegistry(deps.registry(), deps.breakers);
    res.json({ services: await withReplicaStates(services, deps.replicaStates) });
  });
  app.get('/metrics', guard, (req, res) => {
    handleOps(req, res, deps.ops);
  });
  app.use((req, res) => {
    const hint = listener === 'ops' ? OPS_HINT : ROUTE_HINT;
    res.status(404).json({ error: `no route for ${req.method} ${req.path}: ${hint}` });
  });
  app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    deps.logger.error('unexpected error on an ops route', { error: errorMessage(err) });
    if (!res.headersSent) res.status(500).json({ error: 'internal error' });
  });
  return app;
}

const OPS_HINT = 'the ops listener serves GET /healthz, /readyz, /metrics and /v1/services';

/** The ops listener (FNMESH_OPS_LISTEN): probes, metrics and the listing with every rule's definition. */
export function createOpsHandler(
  deps: Pick<HttpDeps, 'registry' | 'breakers' | 'replicaStates' | 'logger' | 'ops'>,
): RequestHandler {
  const app = createOpsApp({ ...deps, config: {} }, 'ops');
  return (req, res) => {
    if (handleOps(req, res, deps.ops)) return;
    app(req, res);
  };
}
