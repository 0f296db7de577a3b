/**
 * The OpenAPI 3.1 document of the gateway, built from the code's own definitions: the call route
 * (call-path.ts), the name rules (common/names.ts), the error table (common/errors.ts) and the limits of the
 * settings table (settings.ts, every row named `max…`). The gateway serves it at GET /openapi.json with the
 * limits it runs with; `npm run generate` (cli/openapi-file.ts) writes it with the defaults to
 * docs/openapi.json, and openapi.test.ts fails when that file differs. A plain typed object: nothing here parses or validates.
 */
import {
  ATTEMPTS_HTTP_HEADER,
  DNS_LABEL,
  ERROR_TABLE,
  FUNCTION_NAME,
  NAME_RULES,
  TRACEPARENT,
  type ErrorCode,
} from '../common';
import { CALL_ROUTE_PREFIX, CALL_ROUTE_SEGMENTS } from './call-path';
import { DEFAULT_MAX_BODY_BYTES } from './limits';
import { GATEWAY_SETTINGS } from './settings';

export const OPENAPI_PATH = '/openapi.json';
/** The ops endpoints (common/ops-server.ts and the registry listing). */
export const OPS_PATHS = { services: '/v1/services', healthz: '/healthz', readyz: '/readyz', metrics: '/metrics' };

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/**
 * A 500 is a defect of the gateway, never an answer the API promises: `internal` is the one code left out
 * of the document (the fuzz tests fail on it).
 */
export const UNDOCUMENTED_CODES: readonly ErrorCode[] = ['internal'];

/** What each status of the error table means to a caller (the table's default message when not listed). */
const MEANING: Partial<Record<ErrorCode, string>> = {
  bad_request:
    'a bad path segment, a body that is not JSON or not an object, `params` or `timeout` of the wrong type, or a value over a documented limit',
  unauthenticated:
    'a token that does not verify (expired, not yet valid, bad signature, `alg: none`, wrong algorithm, malformed), or no token and the rule that denied reads the caller identity',
  forbidden: "the function's rule denies the call (with no rule configured the gateway's default is deny)",
  not_found:
    'no such route, namespace or service, or a function neither listed nor covered by a `default` rule of its service',
  method_not_allowed: 'the call route takes POST (and OPTIONS for a CORS preflight); `CONNECT` anywhere',
  request_timeout:
    'the request head did not arrive within `FNMESH_HEADERS_TIMEOUT_MS`, or the whole request within `FNMESH_RECEIVE_TIMEOUT_MS`',
  payload_too_large: 'the body is over `FNMESH_MAX_BODY_BYTES`, or its chunk extensions are too large',
  token_too_large: 'the bearer token is over `FNMESH_MAX_TOKEN_BYTES`',
  unsupported_media_type: 'a `content-type` that is not JSON (`application/json` or `application/*+json`)',
  overloaded: 'every replica that got the call was at its concurrency limit: retry later',
  function_failed: 'the function failed (answered 5xx, crashed, or answered something that is not JSON)',
  unavailable:
    "no replica of the service could take the call within its attempts, the function's circuit breaker is open (then with `retry-after`), or the gateway lost NATS",
  deadline_exceeded: 'the deadline passed before the function answered',
};

/**
 * Statuses of the front door (front-door.ts) that no code of the error table has: what Node's HTTP parser
 * refuses before any route runs, answered as JSON errors.
 */
export const TRANSPORT_STATUSES: Readonly<Record<number, string>> = {
  400: 'the request is not valid HTTP/1.1 (or has no `Host`)',
  417: 'an `Expect` header other than `100-continue`',
  431: 'the request head (request line and headers, a bearer token included) is over `FNMESH_MAX_HEADER_BYTES`',
};

/** A function's own 4xx (an SDK `FunctionError`) is passed through with its status and message. */
const FUNCTION_4XX = "a function's own 4xx (an SDK `FunctionError`), passed through with its status and message";

/** The statuses of the call route's errors with what each means, in order. */
export function callErrorStatuses(): Map<number, string> {
  const byStatus = new Map<number, string[]>();
  const add = (status: number, meaning: string): void => {
    const list = byStatus.get(status) ?? [];
    if (!list.includes(meaning)) list.push(meaning);
    byStatus.set(status, list);
  };
  for (const [code, entry] of Object.entries(ERROR_TABLE) as [ErrorCode, { status: number; message: string }][]) {
    if (UNDOCUMENTED_CODES.includes(code)) continue;
    add(entry.status, MEANING[code] ?? entry.message);
  }
  for (const [status, meaning] of Object.entries(TRANSPORT_STATUSES)) add(Number(status), meaning);
  return new Map([...byStatus.entries()].sort(([a], [b]) => a - b).map(([s, m]) => [s, m.join('; or ')]));
}

export interface Limit {
  env: string;
  value: number;
}

/** The front door's timeouts (config.front): limits a client meets although their names do not start with `max`. */
const TIMEOUT_LIMITS = ['headersTimeoutMs', 'receiveTimeoutMs', 'keepAliveTimeoutMs'] as const;

type SettingKey = keyof typeof GATEWAY_SETTINGS;
/** Limits whose setting has no default because the value in force is computed (the body limit fits NATS). */
const COMPUTED_DEFAULTS: Partial<Record<SettingKey, number>> = { maxBodyBytes: DEFAULT_MAX_BODY_BYTES };
const isLimit = (key: SettingKey): boolean =>
  key.startsWith('max') || (TIMEOUT_LIMITS as readonly string[]).includes(key);

/** A value of the configuration by its setting's key, at the top level or in `front` (FrontDoorLimits). */
function configValue(config: Readonly<Record<string, unknown>>, key: string): unknown {
  if (config[key] !== undefined) return config[key];
  const front = config.front;
  return front !== null && typeof front === 'object' ? (front as Record<string, unknown>)[key] : undefined;
}

/**
 * The limits of a request or a client: every gateway setting named `max…` and the front door's timeouts, with
 * the value in force (`config`, else the setting's default).
 */
export function gatewayLimits(config: Readonly<Record<string, unknown>> = {}): Limit[] {
  return (Object.keys(GATEWAY_SETTINGS) as SettingKey[]).filter(isLimit).map((key) => {
    const s = GATEWAY_SETTINGS[key];
    const fallback = s.default === undefined ? COMPUTED_DEFAULTS[key] : Number(s.parse(s.default, s.env));
    const given = configValue(config, key);
    const value = typeof given === 'number' ? given : fallback;
    if (value === undefined) throw new Error(`the limit ${s.env} has neither a value nor a default`);
    return { env: s.env, value };
  });
}

export interface OpenApiOptions {
  /** The gateway's configuration (the limits in force are read from its `max…` keys); defaults when absent. */
  config?: Readonly<Record<string, unknown>>;
}

const errorSchema: JsonObject = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'string', minLength: 1, description: 'what went wrong and what to do about it' } },
};

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });

const requestIdHeader: JsonObject = {
  description: 'the call id: the one sent when it was sane (`[A-Za-z0-9._-]{1,128}`), else a new one',
  schema: { type: 'string' },
};

const attemptsHeader: JsonObject = {
  description:
    'how many attempts the call took, when more than one: calls that no replica ran are sent to another one, calls that may have run only when the function allows it (`retry`, `idempotent`)',
  schema: { type: 'integer', minimum: 2 },
};

const retryAfterHeader: JsonObject = {
  description:
    "with a 503 of an open circuit breaker: whole seconds until the gateway tries the function's replicas again",
  schema: { type: 'integer', minimum: 1 },
};

/** The headers of every answer of the call route. */
const callHeaders: JsonObject = { 'x-request-id': requestIdHeader, [ATTEMPTS_HTTP_HEADER]: attemptsHeader };

function jsonAnswer(description: string, schema: JsonObject, headers?: JsonObject): JsonObject {
  return { description, ...(headers ? { headers } : {}), content: { 'application/json': { schema } } };
}

/** `host:port` of a listen setting's default, or undefined. */
function defaultAddress(s: { default?: string }): { host: string; port: string } | undefined {
  if (s.default === undefined) return undefined;
  const i = s.default.lastIndexOf(':');
  const host = s.default.slice(0, i);
  return { host: host === '0.0.0.0' || host === '' ? '127.0.0.1' : host, port: s.default.slice(i + 1) };
}

function server(
  setting: { env: string; default?: string; unset?: string },
  fallback: { host: string; port: string },
  what: string,
): JsonObject {
  const address = defaultAddress(setting) ?? fallback;
  const unset = setting.default === undefined && setting.unset ? ` (unset: ${setting.unset})` : '';
  return {
    url: 'http://{host}:{port}',
    description: `${what}: \`${setting.env}\`${unset}`,
    variables: { host: { default: address.host }, port: { default: address.port } },
  };
}

function callOperation(segment: string): JsonObject {
  const responses: JsonObject = {
    '200': jsonAnswer(
      'the function answered; `result` is its JSON answer as it sent it',
      ref('CallResult'),
      callHeaders,
    ),
  };
  for (const [status, meaning] of callErrorStatuses())
    responses[String(status)] = jsonAnswer(
      meaning,
      ref('Error'),
      status === ERROR_TABLE.unavailable.status ? { ...callHeaders, 'retry-after': retryAfterHeader } : callHeaders,
    );
  responses['4XX'] = jsonAnswer(FUNCTION_4XX, ref('Error'), callHeaders);
  const alias = segment === 'functions' ? '' : " (the path Space Cloud's client `space-api` posts to)";
  return {
    operationId: `call${segment === 'functions' ? 'Function' : 'Service'}`,
    summary: `call a function${alias}`,
    description: `Checks the caller against the function's rule, then calls it over NATS and answers its result. The limits it runs with are in \`info.x-fnmesh-limits\`.`,
    tags: ['calls'],
    security: [{}, { bearer: [] }],
    parameters: [{ $ref: '#/components/parameters/traceparent' }, { $ref: '#/components/parameters/requestId' }],
    requestBody: {
      required: false,
      description: 'an empty body is `{"params": null}`',
      content: { 'application/json': { schema: ref('CallBody') } },
    },
    responses,
  };
}

function preflightOperation(segment: string): JsonObject {
  return {
    operationId: `preflight${segment === 'functions' ? 'Function' : 'Service'}`,
    summary: 'CORS preflight',
    description: 'Answers the CORS headers of `FNMESH_CORS_ORIGINS` (none for an origin not allowed).',
    tags: ['calls'],
    responses: {
      '204': {
        description: 'the methods and headers a browser may use',
        headers: {
          allow: { schema: { type: 'string' } },
          'x-request-id': requestIdHeader,
        },
      },
    },
  };
}

const statusSchema: JsonObject = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string', enum: ['ok', 'unavailable'] }, reason: { type: 'string' } },
};

export function buildOpenApiDocument(options: OpenApiOptions = {}): JsonObject {
  const limits = gatewayLimits(options.config);
  const callServer = server(GATEWAY_SETTINGS.listen, { host: '127.0.0.1', port: '8080' }, 'the call listener');
  const callAddress = defaultAddress(GATEWAY_SETTINGS.listen) ?? { host: '127.0.0.1', port: '8080' };
  const opsServer = server(GATEWAY_SETTINGS.opsListen, callAddress, 'the ops listener');
  const nameParam = (name: string, pattern: RegExp, rule: string): JsonObject => ({
    name,
    in: 'path',
    required: true,
    description: rule,
    schema: { type: 'string', pattern: pattern.source },
  });
  const paths: JsonObject = {};
  for (const segment of CALL_ROUTE_SEGMENTS) {
    paths[`${CALL_ROUTE_PREFIX}{namespace}/${segment}/{service}/{function}`] = {
      parameters: [
        nameParam('namespace', DNS_LABEL, NAME_RULES.namespace),
        nameParam('service', DNS_LABEL, NAME_RULES.service),
        nameParam('function', FUNCTION_NAME, NAME_RULES.function),
      ],
      post: callOperation(segment),
      options: preflightOperation(segment),
    };
  }
  paths[OPENAPI_PATH] = {
    get: {
      operationId: 'openapi',
      summary: 'this document, with the limits the gateway runs with',
      tags: ['docs'],
      responses: { '200': jsonAnswer('the OpenAPI document', { type: 'object', required: ['openapi', 'paths'] }) },
    },
  };
  // the probes are on both listeners (a load balancer may check the call port); the listing and the metrics on
  // the ops listener, and on the call port to the admin token (admin-access.ts)
  const ops = (operationId: string, summary: string, responses: JsonObject): JsonObject => ({
    servers: [opsServer, callServer],
    get: { operationId, summary, tags: ['ops'], responses },
  });
  const adminOnCallPort: JsonObject = {
    '401': jsonAnswer('on the call port: the admin token (`FNMESH_ADMIN_TOKEN`) is missing or wrong', ref('Error')),
    '404': jsonAnswer(
      'on the call port: `FNMESH_ADMIN_TOKEN` is not set, so only the ops listener serves it',
      ref('Error'),
    ),
  };
  const adminOps = (operationId: string, summary: string, ok: JsonObject): JsonObject => ({
    servers: [opsServer, callServer],
    get: {
      operationId,
      summary,
      description: 'Served to anyone who reaches the ops listener, and on the call port to `FNMESH_ADMIN_TOKEN` only.',
      tags: ['ops'],
      security: [{}, { admin: [] }],
      responses: { '200': ok, ...adminOnCallPort },
    },
  });
  paths[OPS_PATHS.services] = adminOps(
    'listServices',
    'the routing table: services, functions, timeouts, rules, retry policies and circuit breakers',
    jsonAnswer('every service the gateway routes to', ref('ServiceList')),
  );
  paths[OPS_PATHS.healthz] = ops('healthz', 'alive', {
    '200': jsonAnswer('the process is alive', statusSchema),
    '503': jsonAnswer('the process is not alive', statusSchema),
  });
  paths[OPS_PATHS.readyz] = ops('readyz', 'ready to take calls', {
    '200': jsonAnswer('ready: connected to NATS, rules loaded', statusSchema),
    '503': jsonAnswer('not ready, with the reason (stopping, no NATS, rules not loaded)', statusSchema),
  });
  paths[OPS_PATHS.metrics] = adminOps('metrics', 'Prometheus metrics', {
    description: 'the Prometheus text format',
    content: { 'text/plain': { schema: { type: 'string' } } },
  });

  return {
    openapi: '3.1.0',
    info: {
      title: 'fnmesh gateway',
      version: '1',
      description:
        'The call API of the fnmesh gateway and its ops endpoints. Every error is `{"error": "<message>"}`. `x-fnmesh-limits` lists the limits the gateway runs with (settings named `FNMESH_MAX_…`).',
      'x-fnmesh-limits': Object.fromEntries(limits.map((l) => [l.env, l.value])),
    },
    servers: [callServer],
    tags: [
      { name: 'calls', description: 'the call API (the call listener)' },
      { name: 'docs', description: 'this document (the call listener)' },
      { name: 'ops', description: 'operations endpoints (the ops listener)' },
    ],
    paths,
    components: {
      securitySchemes: {
        admin: {
          type: 'http',
          scheme: 'bearer',
          description: '`FNMESH_ADMIN_TOKEN`, for the listing and the metrics on the call port',
        },
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'optional: a JWT signed with a key of `FNMESH_JWT_SECRET`, `FNMESH_JWKS_FILE` or `FNMESH_JWKS_URL`; its claims are `args.auth` in rules',
        },
      },
      parameters: {
        traceparent: {
          name: 'traceparent',
          in: 'header',
          required: false,
          description: `W3C trace context (\`${TRACEPARENT.source}\`); a new one when absent or not valid`,
          schema: { type: 'string' },
        },
        requestId: {
          name: 'x-request-id',
          in: 'header',
          required: false,
          description: 'the call id to log and pass on, `[A-Za-z0-9._-]{1,128}`; a new one when absent or not sane',
          schema: { type: 'string' },
        },
      },
      schemas: {
        CallBody: {
          type: 'object',
          description: 'other keys are allowed and ignored (Space Cloud clients send some)',
          properties: {
            params: { description: "the function's input, any JSON; absent is null" },
            timeout: {
              type: ['integer', 'null'],
              minimum: 1,
              description: "milliseconds; capped by the function's `timeoutMs` and `FNMESH_MAX_TIMEOUT_MS`",
            },
          },
        },
        CallResult: {
          type: 'object',
          required: ['result'],
          properties: { result: { description: "the function's answer, any JSON" } },
        },
        Error: errorSchema,
        RetryPolicy: {
          type: 'object',
          description: "the function's resolved retry policy (`spec.retry`, the function's `retry` and `idempotent`)",
          required: ['attempts', 'backoff', 'retryOn'],
          properties: {
            attempts: { type: 'integer', minimum: 1 },
            backoff: {
              type: 'object',
              properties: { initialMs: { type: 'integer' }, maxMs: { type: 'integer' } },
            },
            retryOn: {
              type: 'array',
              description: 'failures of calls that may have run that are retried: reset, timeout, 5xx, or a status',
              items: { oneOf: [{ type: 'string' }, { type: 'integer' }] },
            },
            perTryTimeoutMs: { type: 'integer' },
          },
        },
        CircuitBreaker: {
          type: 'object',
          description: "the function's circuit breaker: its policy (`spec.circuitBreaker`) and its state now",
          required: ['state', 'failuresInARow'],
          properties: {
            consecutiveFailures: { type: 'integer' },
            openMs: { type: 'integer' },
            maxOpenMs: { type: 'integer' },
            state: { enum: ['closed', 'open', 'half-open'] },
            failuresInARow: {
              type: 'integer',
              description: 'calls in a row that no replica could take',
            },
            openUntil: {
              type: 'string',
              format: 'date-time',
              description: 'while open: when the next trial call goes',
            },
          },
        },
        ServiceList: {
          type: 'object',
          required: ['services'],
          properties: {
            services: {
              type: 'array',
              items: {
                type: 'object',
                required: ['namespace', 'name', 'functions', 'replicas'],
                properties: {
                  namespace: { type: 'string' },
                  name: { type: 'string' },
                  functions: {
                    type: 'array',
                    items: {
                      type: 'object',
                      required: ['name', 'timeoutMs'],
                      properties: {
                        name: { type: 'string' },
                        timeoutMs: { type: 'integer' },
                        rule: { description: "the function's rule, described" },
                        retry: ref('RetryPolicy'),
                        circuitBreaker: ref('CircuitBreaker'),
                      },
                    },
                  },
                  acceptsOtherFunctions: { type: 'boolean' },
                  otherFunctions: {
                    type: 'object',
                    description:
                      'with acceptsOtherFunctions: how the functions the `default` function routes are called',
                    properties: {
                      timeoutMs: { type: 'integer' },
                      retry: ref('RetryPolicy'),
                      circuitBreaker: ref('CircuitBreaker'),
                    },
                  },
                  replicas: {
                    type: 'array',
                    description:
                      "the service's replicas as each reports itself over NATS micro discovery when the listing is read",
                    items: {
                      type: 'object',
                      required: ['id', 'state'],
                      properties: {
                        id: { type: 'string', description: 'the replica (its pod name in Kubernetes)' },
                        state: {
                          type: 'string',
                          description:
                            'serving, starting, or why it is out of the queue group: function-down, unhealthy, ejected, ejecting, overloaded, draining',
                        },
                      },
                    },
                  },
                  replicasUnknown: {
                    type: 'string',
                    description: 'set when the replicas could not be asked (NATS down): `replicas` is then empty',
                  },
                },
              },
            },
          },
        },
      },
    },
  };
}

/** The document as docs/openapi.json holds it. */
export function renderOpenApiDocument(): string {
  return `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
}
