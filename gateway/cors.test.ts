import { corsDecider, originMatches, parseOriginPattern, type CorsPolicy, type CorsRequest } from './cors';

const APP = 'https://app.example.com';
const list: CorsPolicy = { origins: [APP, 'http://localhost:*'], credentials: true };
const noCredentials: CorsPolicy = { ...list, credentials: false };
const any: CorsPolicy = { origins: '*', credentials: false };
const none: CorsPolicy = { origins: [], credentials: true };

const call = (origin?: string): CorsRequest => ({ origin, preflight: false });
const preflight = (origin?: string, requestHeaders?: string): CorsRequest => ({
  origin,
  preflight: true,
  requestHeaders,
});

const echoed = (origin: string): Record<string, string> => ({
  vary: 'Origin',
  'access-control-allow-origin': origin,
  'access-control-allow-credentials': 'true',
  'access-control-expose-headers': 'x-request-id, fnmesh-attempts, retry-after',
});

describe('corsDecider', () => {
  test.each<[string, CorsPolicy, CorsRequest, Record<string, string>]>([
    ['a listed origin: echoed, with credentials', list, call(APP), echoed(APP)],
    ['a port wildcard: any port of that host', list, call('http://localhost:5173'), echoed('http://localhost:5173')],
    ['a port wildcard: the default port too', list, call('http://localhost'), echoed('http://localhost')],
    ['a port wildcard: not another scheme', list, call('https://localhost:5173'), { vary: 'Origin' }],
    ['a port wildcard: not another host', list, call('http://localhost.evil.com:80'), { vary: 'Origin' }],
    ['a port wildcard: not a host that starts the same', list, call('http://localhostx:1'), { vary: 'Origin' }],
    ['an exact entry: not another port', list, call('https://app.example.com:8443'), { vary: 'Origin' }],
    ['an unknown origin: no CORS headers, still Vary', list, call('https://evil.example.com'), { vary: 'Origin' }],
    ['no Origin (not a browser): only Vary', list, call(), { vary: 'Origin' }],
    [
      'credentials switched off: echoed without them',
      noCredentials,
      call(APP),
      {
        vary: 'Origin',
        'access-control-allow-origin': APP,
        'access-control-expose-headers': 'x-request-id, fnmesh-attempts, retry-after',
      },
    ],
    [
      '"*": any origin, never credentials, no Vary',
      { origins: '*', credentials: true },
      call('https://x.example'),
      {
        'access-control-allow-origin': '*',
        'access-control-expose-headers': 'x-request-id, fnmesh-attempts, retry-after',
      },
    ],
    [
      '"*" without an Origin: the same answer',
      any,
      call(),
      {
        'access-control-allow-origin': '*',
        'access-control-expose-headers': 'x-request-id, fnmesh-attempts, retry-after',
      },
    ],
    ['an empty list: nothing', none, call(APP), {}],
    [
      'preflight of a listed origin: method, the requested headers it allows, max age',
      list,
      preflight('http://localhost:5173', 'Authorization, content-type,traceparent'),
      {
        vary: 'Origin, Access-Control-Request-Headers',
        'access-control-allow-origin': 'http://localhost:5173',
        'access-control-allow-credentials': 'true',
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'authorization, content-type, traceparent',
        'access-control-max-age': '600',
      },
    ],
    [
      'preflight asking for a header the gateway does not read: left out (the browser then refuses)',
      list,
      preflight(APP, 'content-type, x-secret'),
      {
        vary: 'Origin, Access-Control-Request-Headers',
        'access-control-allow-origin': APP,
        'access-control-allow-credentials': 'true',
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'content-type',
        'access-control-max-age': '600',
      },
    ],
    [
      'preflight without requested headers',
      any,
      preflight(APP),
      {
        vary: 'Access-Control-Request-Headers',
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'POST',
        'access-control-max-age': '600',
      },
    ],
    [
      'preflight of an unknown origin: no CORS headers',
      list,
      preflight('https://evil.example.com', 'authorization'),
      { vary: 'Origin, Access-Control-Request-Headers' },
    ],
    ['preflight with CORS off: nothing', none, preflight(APP, 'authorization'), {}],
  ])('%s', (_name, policy, req, headers) => {
    expect(corsDecider(policy)(req)).toEqual(headers);
  });
});

describe('parseOriginPattern', () => {
  test.each<[string, ReturnType<typeof parseOriginPattern>]>([
    ['https://app.example.com', { base: 'https://app.example.com', anyPort: false }],
    ['http://localhost:3000', { base: 'http://localhost:3000', anyPort: false }],
    ['http://localhost:*', { base: 'http://localhost', anyPort: true }],
    ['http://127.0.0.1:*', { base: 'http://127.0.0.1', anyPort: true }],
    ['http://[::1]:*', { base: 'http://[::1]', anyPort: true }],
    ['https://a.com/', undefined],
    ['https://a.com/path', undefined],
    ['ftp://a.com', undefined],
    ['HTTPS://A.COM', undefined],
    ['http://localhost:3000:*', undefined],
    ['http://*.example.com', undefined],
    ['http://localhost:3*', undefined],
    ['*', undefined],
    ['localhost:3000', undefined],
  ])('%s', (text, pattern) => {
    expect(parseOriginPattern(text)).toEqual(pattern);
  });

  it('a port wildcard matches ports, not suffixes', () => {
    const p = parseOriginPattern('http://localhost:*')!;
    expect(originMatches(p, 'http://localhost:65535')).toBe(true);
    expect(originMatches(p, 'http://localhost:')).toBe(false);
    expect(originMatches(p, 'http://localhost:80/x')).toBe(false);
    expect(originMatches(p, 'http://localhost:123456')).toBe(false);
  });
});
