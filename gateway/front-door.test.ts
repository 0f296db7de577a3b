import {
  checkingIntervalMs,
  clientErrorAnswer,
  expectationMessage,
  missingHostMessage,
  rawJsonAnswer,
  serverOptions,
} from './front-door';

const limits = {
  maxHeaderBytes: 16384,
  headersTimeoutMs: 10000,
  receiveTimeoutMs: 30000,
  keepAliveTimeoutMs: 65000,
  maxConnections: 100,
};

describe('clientErrorAnswer', () => {
  it.each([
    ['ERR_HTTP_REQUEST_TIMEOUT', 'headers', 408, 'headers_timeout', /within 10000 ms \(FNMESH_HEADERS_TIMEOUT_MS\)/],
    ['ERR_HTTP_REQUEST_TIMEOUT', 'body', 408, 'body_timeout', /within 30000 ms \(FNMESH_RECEIVE_TIMEOUT_MS\)/],
    ['HPE_HEADER_OVERFLOW', 'headers', 431, 'headers_too_large', /16384 bytes \(FNMESH_MAX_HEADER_BYTES\)/],
    ['HPE_CHUNK_EXTENSIONS_OVERFLOW', 'body', 413, 'malformed', /chunk extensions/],
    ['HPE_INVALID_METHOD', 'headers', 400, 'malformed', /not valid HTTP\/1\.1 \(HPE_INVALID_METHOD: Invalid method\)/],
  ] as const)('answers %s (%s) with %i', (code, phase, status, kind, message) => {
    const a = clientErrorAnswer({ code, reason: 'Invalid method' }, phase, limits);
    expect(a).toMatchObject({ status, kind });
    expect(a!.message).toMatch(message);
  });
  it('has nothing to answer to a connection error', () => {
    expect(clientErrorAnswer({ code: 'ECONNRESET' }, 'headers', limits)).toBeUndefined();
    expect(clientErrorAnswer({}, 'body', limits)).toBeUndefined();
  });
});

describe('the answers', () => {
  it('writes a whole HTTP/1.1 answer with a JSON body and its length', () => {
    const raw = rawJsonAnswer(408, 'too "slow"');
    const [head, body] = raw.split('\r\n\r\n');
    expect(head).toBe(
      'HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: 24\r\nConnection: close',
    );
    expect(JSON.parse(body!)).toEqual({ error: 'too "slow"' });
  });
  it('asks for a Host on HTTP/1.1 only', () => {
    expect(missingHostMessage({ httpVersion: '1.1', headers: {} })).toMatch(/Host header/);
    expect(missingHostMessage({ httpVersion: '1.1', headers: { host: 'x' } })).toBeUndefined();
    expect(missingHostMessage({ httpVersion: '1.0', headers: {} })).toBeUndefined();
  });
  it('quotes the Expect header it refuses, cut short', () => {
    expect(expectationMessage('x"y')).toBe(
      'the Expect header "x\\"y" is not supported: only "100-continue" is; send the request without it',
    );
    expect(expectationMessage('a'.repeat(500)).length).toBeLessThan(200);
  });
});

describe('serverOptions', () => {
  it('maps the limits onto Node, checking a tenth as often as the shorter timeout (10 ms to 1 s)', () => {
    expect(serverOptions(limits)).toEqual({
      maxHeaderSize: 16384,
      headersTimeout: 10000,
      requestTimeout: 30000,
      keepAliveTimeout: 65000,
      connectionsCheckingInterval: 1000,
      requireHostHeader: false,
    });
    expect(checkingIntervalMs({ ...limits, headersTimeoutMs: 300 })).toBe(30);
    expect(checkingIntervalMs({ ...limits, headersTimeoutMs: 1 })).toBe(10);
  });
});
