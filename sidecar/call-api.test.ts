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
    expect(parseCallBody('{"params": {"a": 1}, "timeout": 100}')).toEqual({ params: { a: 1 }, timeout: 100 });
    expect(parseCallBody('{}')).toEqual({ params: null });
    expect(parseCallBody('{"params": [1], "timeout": null}')).toEqual({ params: [1] });
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
