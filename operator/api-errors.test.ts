import { KubeApiError } from '../common/kube-client';
import { classifyApiError, retryPolicy, type ApiErrorClass } from './api-errors';

function status(code: number, reason: string, message: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message, ...extra });
}

/** What the operator's client (common/kube-client.ts) throws for a response with this status. */
function apiError(code: number, body: string | undefined, headers: Record<string, string> = {}): KubeApiError {
  return new KubeApiError('PATCH', '/apis/apps/v1/namespaces/default/deployments/orders', code, body ?? '', headers);
}

/** Node's error for a failed connection, as node:https rejects the client's request with it. */
function systemError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:6443`), {
    code,
    errno: -111,
    syscall: 'connect',
    address: '127.0.0.1',
    port: 6443,
  });
}

describe('classifyApiError', () => {
  test.each<[string, unknown, ApiErrorClass, string | undefined, string]>([
    [
      '404 NotFound',
      apiError(404, status(404, 'NotFound', 'deployments.apps "orders" not found')),
      'not-found',
      'NotFound',
      'deployments.apps "orders" not found',
    ],
    [
      '409 Conflict',
      apiError(409, status(409, 'Conflict', 'the object has been modified')),
      'conflict',
      'Conflict',
      'the object has been modified',
    ],
    [
      '409 AlreadyExists',
      apiError(409, status(409, 'AlreadyExists', 'leases "x" already exists')),
      'conflict',
      'AlreadyExists',
      'leases "x" already exists',
    ],
    [
      '410 Expired',
      apiError(410, status(410, 'Expired', 'too old resource version')),
      'gone',
      'Expired',
      'too old resource version',
    ],
    [
      '422 Invalid',
      apiError(
        422,
        status(
          422,
          'Invalid',
          'Deployment.apps "orders" is invalid: spec.template.spec.containers[0].image: Required value',
        ),
      ),
      'invalid',
      'Invalid',
      'Deployment.apps "orders" is invalid: spec.template.spec.containers[0].image: Required value',
    ],
    ['400 BadRequest', apiError(400, status(400, 'BadRequest', 'bad patch')), 'invalid', 'BadRequest', 'bad patch'],
    [
      '403 Forbidden',
      apiError(403, status(403, 'Forbidden', 'cannot patch deployments')),
      'forbidden',
      'Forbidden',
      'cannot patch deployments',
    ],
    [
      '401 without a body',
      apiError(401, undefined),
      'forbidden',
      'Unauthorized',
      "Unauthorized: the operator's credentials were not accepted",
    ],
    [
      '429 TooManyRequests',
      apiError(429, status(429, 'TooManyRequests', 'slow down')),
      'throttled',
      'TooManyRequests',
      'slow down',
    ],
    [
      '500 InternalError',
      apiError(500, status(500, 'InternalError', 'etcd is down')),
      'server',
      'InternalError',
      'etcd is down',
    ],
    [
      '504 Timeout',
      apiError(504, status(504, 'Timeout', 'the request timed out')),
      'server',
      'Timeout',
      'the request timed out',
    ],
    [
      '500 with a non-JSON body',
      apiError(500, 'upstream connect error'),
      'server',
      undefined,
      'HTTP 500: upstream connect error',
    ],
    [
      'a watch refused with 410 and no body',
      new KubeApiError('WATCH', '/apis/apps/v1/deployments', 410, '', {}),
      'gone',
      undefined,
      'WATCH /apis/apps/v1/deployments: HTTP 410',
    ],
    [
      'connection refused',
      systemError('ECONNREFUSED'),
      'network',
      'ECONNREFUSED',
      'connect ECONNREFUSED 127.0.0.1:6443',
    ],
    ['connection reset', systemError('ECONNRESET'), 'network', 'ECONNRESET', 'connect ECONNRESET 127.0.0.1:6443'],
    [
      'a socket hang up',
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      'network',
      'ECONNRESET',
      'socket hang up',
    ],
    [
      "the client's time limit",
      Object.assign(new Error('GET /api/v1/namespaces/default/events: no answer for 60000 ms'), { code: 'ETIMEDOUT' }),
      'network',
      'ETIMEDOUT',
      'GET /api/v1/namespaces/default/events: no answer for 60000 ms',
    ],
    [
      'a TLS verification failure',
      Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
      'server',
      undefined,
      'self-signed certificate',
    ],
    ['an unknown error', new TypeError('x is undefined'), 'server', undefined, 'x is undefined'],
    ['a thrown string', 'boom', 'server', undefined, 'boom'],
  ])('%s', (_name, err, cls, reason, message) => {
    const c = classifyApiError(err);
    expect(c.class).toBe(cls);
    expect(c.reason).toBe(reason);
    expect(c.message).toBe(message);
  });

  test('the HTTP status is kept', () => {
    expect(classifyApiError(apiError(422, status(422, 'Invalid', 'x'))).status).toBe(422);
    expect(classifyApiError(systemError('ECONNREFUSED')).status).toBeUndefined();
  });

  test.each<[string, unknown, number | undefined]>([
    ['Retry-After seconds', apiError(429, status(429, 'TooManyRequests', 'x'), { 'retry-after': '3' }), 3000],
    [
      'Retry-After as a date',
      apiError(429, status(429, 'TooManyRequests', 'x'), {
        'retry-after': new Date(1_000_000 + 5000).toUTCString(),
      }),
      5000,
    ],
    [
      'details.retryAfterSeconds',
      apiError(429, status(429, 'TooManyRequests', 'x', { details: { retryAfterSeconds: 2 } })),
      2000,
    ],
    ['none', apiError(429, status(429, 'TooManyRequests', 'x')), undefined],
  ])('reads the delay from %s', (_name, err, ms) => {
    expect(classifyApiError(err, 1_000_000).retryAfterMs).toBe(ms);
  });
});

describe('retryPolicy', () => {
  test.each<[ApiErrorClass, number | undefined, ReturnType<typeof retryPolicy>]>([
    ['invalid', undefined, { kind: 'terminal' }],
    ['forbidden', undefined, { kind: 'terminal' }],
    ['conflict', undefined, { kind: 'retry-now' }],
    ['gone', undefined, { kind: 'retry-now' }],
    ['throttled', 3000, { kind: 'retry-after', ms: 3000 }],
    ['throttled', undefined, { kind: 'backoff' }],
    ['server', undefined, { kind: 'backoff' }],
    ['server', 1000, { kind: 'retry-after', ms: 1000 }],
    ['network', undefined, { kind: 'backoff' }],
    ['not-found', undefined, { kind: 'backoff' }],
  ])('%s (retry after %s) → %j', (cls, after, policy) => {
    expect(retryPolicy(after === undefined ? { class: cls } : { class: cls, retryAfterMs: after })).toEqual(policy);
  });
});
