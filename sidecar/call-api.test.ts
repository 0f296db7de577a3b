import { FnmeshError } from './common';
import { parseCallBody, parseCallPath } from './call-api';

describe('parseCallPath', () => {
  test('two and three segments', () => {
    expect(parseCallPath('/v1/call/inventory/reserve', 'shop')).toEqual({
      namespace: 'shop',
      service: 'inventory',
      function: 'reserve',
    });
    expect(parseCallPath('/v1/call/other/inventory/reserve?x=1', 'shop')).toEqual({
      namespace: 'other',
      service: 'inventory',
      function: 'reserve',
    });
  });
  test('other paths → undefined (404)', () => {
    for (const p of ['/', '/v1/call', '/v1/call/a', '/v1/call/a/b/c/d', '/v2/call/a/b'])
      expect(parseCallPath(p, 'ns')).toBeUndefined();
  });
  test('invalid names → 400 naming the part (no wildcard or dot can reach a subject)', () => {
    for (const [p, what] of [
      ['/v1/call/a*/b', 'service'],
      ['/v1/call/a/b.c', 'function'],
      ['/v1/call/A/s/f', 'namespace'],
      ['/v1/call/s/%3E', 'function'],
      ['/v1/call/s/%zz', 'percent'],
    ] as const) {
      const r = parseCallPath(p, 'ns');
      expect(r).toBeInstanceOf(FnmeshError);
      expect((r as FnmeshError).status).toBe(400);
      expect((r as FnmeshError).message).toContain(what);
    }
  });
});

describe('parseCallBody', () => {
  test('valid bodies', () => {
    expect(parseCallBody('{"params": {"a": 1}, "timeout": 100}')).toEqual({
      params: Buffer.from('{"a": 1}'),
      timeout: 100,
    });
    expect(parseCallBody('{}')).toEqual({ params: Buffer.from('null') });
    expect(parseCallBody('{"params": [1], "timeout": null}')).toEqual({ params: Buffer.from('[1]') });
  });
  test('params travel as the bytes the function sent', () => {
    const params = '{"big":123456789012345678901234567890,"e":1e400,"z":-0,"u":"\\u00e9","a":1,"a":2}';
    expect(parseCallBody(Buffer.from(`{ "params" : ${params} }`))).toEqual({ params: Buffer.from(params) });
  });
  test('a repeated "params" → 400; a deep timeout is described, not serialized', () => {
    expect((parseCallBody('{"params":1,"params":2}') as FnmeshError).message).toMatch(/"params" more than once/);
    const deep = `{"timeout":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect((parseCallBody(deep) as FnmeshError).message).toMatch(/got an array/);
  });
  test.each([
    '',
    'x',
    '[]',
    '"s"',
    'null',
    '{"timeout": 0}',
    '{"timeout": -5}',
    '{"timeout": 2.5}',
    '{"timeout": "10"}',
  ])('%s → 400', (text) => {
    const r = parseCallBody(text);
    expect(r).toBeInstanceOf(FnmeshError);
    expect((r as FnmeshError).status).toBe(400);
  });
});
