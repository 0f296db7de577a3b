import { ApiException } from '@kubernetes/client-node';
import { classifyApiError, retryPolicy, type ApiErrorClass } from './api-errors';

function status(code: number, reason: string, message: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message, ...extra });
}

function apiException(
  code: number,
  body: string | undefined,
  headers: Record<string, string> = {},
): ApiException<unknown> {
  return new ApiException(code, code === 401 ? 'Unauthorized' : 'Unknown API Status Code!', body, headers);
}

function systemError(code: string): Error {
  return Object.assign(new Error(`request to https://127.0.0.1:6443/api failed, reason: connect ${code}`), {
    name: 'FetchError',
    type: 'system',
    code,
    errno: code,
  });
}

describe('classifyApiError', () => {
  test.each<[string, unknown, ApiErrorClass, string | undefined, string]>([
    [
      '404 NotFound',
      apiException(404, status(404, 'NotFound', 'deployments.apps "orders" not found')),
      'not-found',
      'NotFound',
      'deployments.apps "orders" not found',
    ],
    [
      '409 Conflict',
      apiException(409, status(409, 'Conflict', 'the object has been modified')),
      'conflict',
      'Conflict',
      'the object has been modified',
    ],
    [
      '409 AlreadyExists',
      apiException(409, status(409, 'AlreadyExists', 'leases "x" already exists')),
      'conflict',
      'AlreadyExists',
      'leases "x" already exists',
    ],
    [
      '410 Expired',
      apiException(410, status(410, 'Expired', 'too old resource version')),
      'gone',
      'Expired',
      'too old resource version',
    ],
    [
      '422 Invalid',
      apiException(
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
    ['400 BadRequest', apiException(400, status(400, 'BadRequest', 'bad patch')), 'invalid', 'BadRequest', 'bad patch'],
    [
      '403 Forbidden',
      apiException(403, status(403, 'Forbidden', 'cannot patch deployments')),
      'forbidden',
      'Forbidden',
      'cannot patch deployments',
    ],
    [
      '401 without a body',
      apiException(401, undefined),
      'forbidden',
      'Unauthorized',
      "Unauthorized: the operator's credentials were not accepted",
    ],
    [
      '429 TooManyRequests',
      apiException(429, status(429, 'TooManyRequests', 'slow down')),
      'throttled',
      'TooManyRequests',
      'slow down',
    ],
    [
      '500 InternalError',
      apiException(500, status(500, 'InternalError', 'etcd is down')),
      'server',
      'InternalError',
      'etcd is down',
    ],
    [
      '504 Timeout',
      apiException(504, status(504, 'Timeout', 'the request timed out')),
      'server',
      'Timeout',
      'the request timed out',
    ],
    [
      '500 with a non-JSON body',
      apiException(500, 'upstream connect error'),
      'server',
      undefined,
      'HTTP 500: upstream connect error',
    ],
    ['a watch that ended with 410', Object.assign(new Error('Gone'), { statusCode: 410 }), 'gone', undefined, 'Gone'],
    [
      'a watch ERROR event Status',
      { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' },
      'gone',
      'Expired',
      'too old',
    ],
    [
      'connection refused',
      systemError('ECONNREFUSED'),
      'network',
      'ECONNREFUSED',
      'request to https://127.0.0.1:6443/api failed, reason: connect ECONNREFUSED',
    ],
    [
      'connection reset',
      systemError('ECONNRESET'),
      'network',
      'ECONNRESET',
      'request to https://127.0.0.1:6443/api failed, reason: connect ECONNRESET',
    ],
    [
      'an undici socket error',
      Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }),
      'network',
      'UND_ERR_SOCKET',
      'other side closed',
    ],
    [
      'an abort',
      Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }),
      'network',
      undefined,
      'The operation was aborted',
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
    expect(classifyApiError(apiException(422, status(422, 'Invalid', 'x'))).status).toBe(422);
    expect(classifyApiError(systemError('ECONNREFUSED')).status).toBeUndefined();
  });

  test.each<[string, unknown, number | undefined]>([
    ['Retry-After seconds', apiException(429, status(429, 'TooManyRequests', 'x'), { 'retry-after': '3' }), 3000],
    [
      'Retry-After as a date',
      apiException(429, status(429, 'TooManyRequests', 'x'), {
        'retry-after': new Date(1_000_000 + 5000).toUTCString(),
      }),
      5000,
    ],
    [
      'details.retryAfterSeconds',
      apiException(429, status(429, 'TooManyRequests', 'x', { details: { retryAfterSeconds: 2 } })),
      2000,
    ],
    ['none', apiException(429, status(429, 'TooManyRequests', 'x')), undefined],
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
