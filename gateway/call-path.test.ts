import { FnmeshError } from '../common';
import {
  computeTimeoutMs,
  isJsonContentType,
  parseCallBody,
  parseCallRoute,
  pickRequestId,
  pickTraceparent,
  resultEnvelope,
} from './call-path';

function err(fn: () => unknown): FnmeshError {
  try {
    fn();
  } catch (e) {
    if (e instanceof FnmeshError) return e;
    throw e;
  }
  throw new Error('expected a FnmeshError');
}

describe('parseCallRoute', () => {
  it('parses the call route and ignores the query string', () => {
    expect(parseCallRoute('/v1/api/default/functions/greeter/hello')).toEqual({
      namespace: 'default',
      service: 'greeter',
      function: 'hello',
    });
    expect(parseCallRoute('/v1/api/ns-1/functions/svc/do_it?x=1')).toEqual({
      namespace: 'ns-1',
      service: 'svc',
      function: 'do_it',
    });
  });
  it("takes Space Cloud's path (space-api 0.19 posts to /v1/api/{project}/services/{service}/{function})", () => {
    expect(parseCallRoute('/v1/api/default/services/greeter/hello')).toEqual({
      namespace: 'default',
      service: 'greeter',
      function: 'hello',
    });
  });
  it('returns undefined for paths that are not the call route', () => {
    expect(parseCallRoute('/v1/services')).toBeUndefined();
    expect(parseCallRoute('/v1/api/default/functions/greeter')).toBeUndefined();
    expect(parseCallRoute('/v1/api/default/things/greeter/hello')).toBeUndefined();
    expect(parseCallRoute('/v1/api/default/functions/greeter/hello/extra')).toBeUndefined();
  });
  it('names the bad segment', () => {
    const e1 = err(() => parseCallRoute('/v1/api/Default/functions/greeter/hello'));
    expect(e1.status).toBe(400);
    expect(e1.message).toMatch(/^namespace "Default" in the path is not valid/);
    expect(err(() => parseCallRoute('/v1/api/default/functions/gr.eeter/hello')).message).toMatch(
      /^service "gr.eeter"/,
    );
    expect(err(() => parseCallRoute('/v1/api/default/functions/greeter/he*llo')).message).toMatch(
      /^function "he\*llo"/,
    );
    expect(err(() => parseCallRoute('/v1/api/default/functions/greeter/')).message).toMatch(/^function ""/);
  });
});

describe('parseCallBody', () => {
  it('accepts params, timeout and unknown keys', () => {
    expect(parseCallBody(Buffer.from('{"params":{"a":1},"timeout":500,"extra":true}'), 64)).toEqual({
      params: { a: 1 },
      paramsBytes: Buffer.from('{"a":1}'),
      timeoutMs: 500,
    });
  });
  it('treats an empty body and missing params as null', () => {
    expect(parseCallBody(Buffer.alloc(0), 64)).toEqual({ params: null, paramsBytes: Buffer.from('null') });
    expect(parseCallBody(' \n', 64)).toEqual({ params: null, paramsBytes: Buffer.from('null') });
    expect(parseCallBody('{}', 64)).toEqual({ params: null, paramsBytes: Buffer.from('null') });
  });
  it('keeps the bytes of params as sent: numbers JSON.parse would change, escapes, whitespace inside', () => {
    const params = '{ "big":123456789012345678901234567890,"e":1e400,"z":-0,"u":"\\u00e9\\ud83d\\ude00","a":1,"a":2 }';
    const body = parseCallBody(Buffer.from(`{"params":\t${params}\n}`), 64);
    expect(body.paramsBytes.toString('utf8')).toBe(params);
    // the rule sees the parsed value
    expect(body.params).toEqual({ big: 1.2345678901234568e29, e: Infinity, z: -0, u: 'é😀', a: 2 });
  });
  it('refuses params nested deeper than the limit, naming the setting, without overflowing the stack', () => {
    const nest = (d: number): string => '['.repeat(d) + ']'.repeat(d);
    expect(parseCallBody(`{"params":${nest(64)}}`, 64).paramsBytes.toString()).toBe(nest(64));
    for (const d of [65, 5000, 1_000_000]) {
      const e = err(() => parseCallBody(`{"params":${nest(d)}}`, 64));
      expect(e.status).toBe(400);
      expect(e.message).toMatch(/params nest arrays\/objects more than 64 levels deep.*FNMESH_MAX_PARAMS_DEPTH=64/);
    }
  });
  it('refuses a repeated "params" (JSON.parse would keep the last silently) and a body that is not UTF-8', () => {
    const e = err(() => parseCallBody('{"params":{"admin":false},"params":{"admin":true}}', 64));
    expect(e.status).toBe(400);
    expect(e.message).toMatch(/the key "params" more than once/);
    const bad = Buffer.concat([Buffer.from('{"params":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    expect(err(() => parseCallBody(bad, 64)).message).toMatch(/not valid UTF-8/);
  });
  it('rejects malformed JSON with the parser detail', () => {
    const e = err(() => parseCallBody('{"params": ', 64));
    expect(e.status).toBe(400);
    expect(e.message).toMatch(/^request body is not valid JSON: /);
  });
  it('rejects a body that is not an object', () => {
    expect(err(() => parseCallBody('[1]', 64)).message).toMatch(/must be a JSON object.*an array/);
    expect(err(() => parseCallBody('"x"', 64)).message).toMatch(/must be a JSON object/);
    expect(err(() => parseCallBody('null', 64)).message).toMatch(/must be a JSON object/);
  });
  it('type-checks timeout', () => {
    for (const bad of ['"5000"', '0', '-1', '1.5', 'true']) {
      const e = err(() => parseCallBody(`{"params":1,"timeout":${bad}}`, 64));
      expect(e.message).toMatch(/^field "timeout" must be a positive whole number of milliseconds/);
    }
    expect(parseCallBody('{"params":1,"timeout":null}', 64).timeoutMs).toBeUndefined();
  });
});

describe('isJsonContentType', () => {
  it('accepts JSON types or none', () => {
    expect(isJsonContentType(undefined)).toBe(true);
    expect(isJsonContentType('application/json; charset=utf-8')).toBe(true);
    expect(isJsonContentType('application/vnd.api+json')).toBe(true);
    expect(isJsonContentType('text/plain')).toBe(false);
    expect(isJsonContentType('application/x-www-form-urlencoded')).toBe(false);
  });
});

describe('computeTimeoutMs', () => {
  it('uses the function timeout as default and cap, and the gateway cap above all', () => {
    expect(computeTimeoutMs(undefined, 10_000, 60_000)).toBe(10_000);
    expect(computeTimeoutMs(500, 10_000, 60_000)).toBe(500);
    expect(computeTimeoutMs(20_000, 10_000, 60_000)).toBe(10_000);
    expect(computeTimeoutMs(undefined, 120_000, 60_000)).toBe(60_000);
    expect(computeTimeoutMs(0.2, 10, 60)).toBe(1);
  });
});

describe('request ids and traceparent', () => {
  it('keeps a sane x-request-id and replaces others', () => {
    expect(pickRequestId('abc-123_x.y')).toBe('abc-123_x.y');
    expect(pickRequestId('has space')).toMatch(/^[0-9a-f-]{36}$/);
    expect(pickRequestId('x'.repeat(129))).toMatch(/^[0-9a-f-]{36}$/);
    expect(pickRequestId(undefined)).toMatch(/^[0-9a-f-]{36}$/);
    expect(pickRequestId(['a', 'b'])).toMatch(/^[0-9a-f-]{36}$/);
  });
  it('forwards a valid traceparent and creates one otherwise', () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(pickTraceparent(tp)).toBe(tp);
    expect(pickTraceparent('garbage')).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(pickTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).not.toContain(
      '0000000000000000000000000000',
    );
    expect(pickTraceparent(undefined)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });
});

describe('resultEnvelope', () => {
  it('wraps the result bytes without parsing them', () => {
    expect(resultEnvelope(Buffer.from('{"a":[1,2]}')).toString()).toBe('{"result":{"a":[1,2]}}');
    expect(resultEnvelope(new Uint8Array()).toString()).toBe('{"result":null}');
  });
});
