import {
  countMemberTexts,
  countMembers,
  hasRepeatedKey,
  scanCallEnvelope,
  scanDepth,
  type EnvelopeScan,
  type Span,
} from './call-envelope';

const text = (body: string, span: Span | undefined): string | undefined =>
  span && Buffer.from(body).toString('utf8', span.start, span.end);

function spans(body: string, maxDepth = 64): { params?: string; timeout?: string } | EnvelopeScan {
  const r = scanCallEnvelope(Buffer.from(body), maxDepth);
  if (r.kind !== 'ok') return r;
  const out: { params?: string; timeout?: string } = {};
  if (r.params) out.params = text(body, r.params);
  if (r.timeout) out.timeout = text(body, r.timeout);
  return out;
}

describe('scanCallEnvelope', () => {
  it('finds the bytes of params and timeout as sent, trimmed of the whitespace around them', () => {
    expect(spans('{"params":{"a":1}}')).toEqual({ params: '{"a":1}' });
    expect(spans(' \n{ "timeout" : 5000 ,\t"params" :  [ 1 ,2 ] \r\n} \n')).toEqual({
      params: '[ 1 ,2 ]',
      timeout: '5000',
    });
    expect(spans('{"params":123456789012345678901234567890}')).toEqual({ params: '123456789012345678901234567890' });
    expect(spans('{"params":1e400,"x":2}')).toEqual({ params: '1e400' });
    expect(spans('{"params":-0}')).toEqual({ params: '-0' });
    expect(spans('{"params":"a\\"}],{b"}')).toEqual({ params: '"a\\"}],{b"' });
    expect(spans('{"params":"\\\\"}')).toEqual({ params: '"\\\\"' });
    expect(spans('{"params":null}')).toEqual({ params: 'null' });
    expect(spans('{"params":"é😀\\u00e9\\ud83d\\ude00"}')).toEqual({ params: '"é😀\\u00e9\\ud83d\\ude00"' });
  });

  it('leaves params out when the envelope has none', () => {
    expect(spans('{}')).toEqual({});
    expect(spans('{"timeout":10,"other":{"params":1}}')).toEqual({ timeout: '10' });
    expect(spans('{"p":"\\"params\\":1"}')).toEqual({});
  });

  it('decodes a top-level key written with escapes before comparing it', () => {
    expect(spans('{"par\\u0061ms":[1]}')).toEqual({ params: '[1]' });
    expect(spans('{"params":1,"par\\u0061ms":2}')).toEqual({ kind: 'duplicate', key: 'params' });
  });

  it('refuses a repeated envelope key, which JSON.parse would silently resolve to the last', () => {
    expect(spans('{"params":1,"params":2}')).toEqual({ kind: 'duplicate', key: 'params' });
    expect(spans('{"timeout":1,"params":{},"timeout":2}')).toEqual({ kind: 'duplicate', key: 'timeout' });
    // duplicates inside params are the caller's data and travel as they are
    expect(spans('{"params":{"a":1,"a":2}}')).toEqual({ params: '{"a":1,"a":2}' });
  });

  it('counts the depth of each value without recursion: [] is 1, a scalar 0', () => {
    const nest = (d: number): string => '['.repeat(d) + ']'.repeat(d);
    expect(spans(`{"params":${nest(64)}}`)).toEqual({ params: nest(64) });
    expect(spans(`{"params":${nest(65)}}`)).toEqual({ kind: 'too-deep', key: 'params', maxDepth: 64 });
    expect(spans(`{"params":[{"a":[{}]}]}`, 4)).toEqual({ params: '[{"a":[{}]}]' });
    expect(spans(`{"params":[{"a":[{}]}]}`, 3)).toEqual({ kind: 'too-deep', key: 'params', maxDepth: 3 });
    expect(spans(`{"other":${nest(5)},"params":1}`, 4)).toEqual({ kind: 'too-deep', key: 'other', maxDepth: 4 });
    expect(spans(`{"params":"${'['.repeat(100)}"}`, 1)).toEqual({ params: `"${'['.repeat(100)}"` });
    // a million levels: no stack involved
    expect(spans(`{"params":${nest(1_000_000)}}`)).toEqual({ kind: 'too-deep', key: 'params', maxDepth: 64 });
  });

  it.each([
    '',
    '   ',
    '[]',
    '"s"',
    'null',
    '{',
    '{"params":1',
    '{"params":"abc}',
    '{"params":1}}',
    '{"params":1} x',
    '}{',
    '{"par\\ums":1}',
  ])('answers malformed for %j (JSON.parse then names the problem), without throwing', (body) => {
    expect(scanCallEnvelope(Buffer.from(body), 64)).toEqual({ kind: 'malformed' });
  });

  it('never throws and ends on arbitrary bytes', () => {
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = '{}[]",:\\ a1\n';
    for (let t = 0; t < 2000; t++) {
      let s = '{';
      for (let k = 0; k < 40; k++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      expect(() => scanCallEnvelope(Buffer.from(s), 8)).not.toThrow();
    }
  });

  // Generated envelopes: the span's text is exactly the params text written, and JSON.parse of it equals
  // what JSON.parse of the whole body gives (the rule sees what the function receives).
  it('agrees with JSON.parse on generated envelopes', () => {
    let seed = 42;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const ws = (): string => pick(['', '', ' ', '\n', '\t ', '\r\n  ']);
    const long = (k: number): string => `"${'y'.repeat(k)}\\"${'z'.repeat(k)}\\\\"`;
    const strings = [
      long(30),
      long(62),
      long(63),
      long(64),
      long(100),
      '"a"',
      '"\\""',
      '"\\\\"',
      '"}]"',
      '"\\\\\\""',
      '"é"',
      '"\\u0022"',
      '"{\\"params\\":1}"',
      '""',
    ];
    const value = (d: number): string => {
      const r = rnd();
      if (d > 4 || r < 0.4) return pick([...strings, '1', '-0', '1e5', '0.5', 'true', 'false', 'null']);
      if (r < 0.7) {
        const items = Array.from({ length: Math.floor(rnd() * 4) }, () => ws() + value(d + 1) + ws());
        return `[${items.join(',')}]`;
      }
      const members = Array.from(
        { length: Math.floor(rnd() * 4) },
        () => `${ws()}${pick(strings)}${ws()}:${ws()}${value(d + 1)}${ws()}`,
      );
      return `{${members.join(',')}}`;
    };
    for (let t = 0; t < 3000; t++) {
      const params = value(0);
      const members = [`${ws()}${pick(['"params"', '"par\\u0061ms"'])}${ws()}:${ws()}${params}${ws()}`];
      for (let k = Math.floor(rnd() * 3); k > 0; k--) {
        const m = `${ws()}${pick(['"x"', '"timeou"', '"paramsx"', '"\\"params"'])}${ws()}:${ws()}${value(1)}${ws()}`;
        if (rnd() < 0.5) members.push(m);
        else members.unshift(m);
      }
      const body = `${ws()}{${members.join(',')}}${ws()}`;
      const got = spans(body, 100);
      expect(got).toEqual({ params });
      expect(JSON.parse(params)).toEqual((JSON.parse(body) as { params: unknown }).params);
    }
  });
});

describe('scanDepth', () => {
  it('counts arrays and objects outside strings', () => {
    expect(scanDepth(Buffer.from('[[1]]'), 2)).toEqual({ kind: 'ok' });
    expect(scanDepth(Buffer.from('[[1]]'), 1)).toEqual({ kind: 'too-deep', maxDepth: 1 });
    expect(scanDepth(Buffer.from('"[[[[\\"[["'), 0)).toEqual({ kind: 'ok' });
    expect(scanDepth(Buffer.from('1e400'), 0)).toEqual({ kind: 'ok' });
    expect(scanDepth(Buffer.from('['.repeat(1_000_000)), 64)).toEqual({ kind: 'too-deep', maxDepth: 64 });
    expect(scanDepth(Buffer.from('"abc'), 64)).toEqual({ kind: 'malformed' });
    expect(scanDepth(new Uint8Array(Buffer.from('{"a":[]}')), 2)).toEqual({ kind: 'ok' });
  });
});

describe('hasRepeatedKey', () => {
  const repeated = (t: string): boolean => hasRepeatedKey(Buffer.from(t), JSON.parse(t));
  it.each([
    ['{"a":1,"a":2}', true],
    ['{"a":1,"\\u0061":2}', true],
    ['[{"k":1},{"k":{"k":1,"k":2}}]', true],
    ['{"a":{"a":{"a":1}}}', false],
    ['[{"k":1},{"k":2}]', false],
    ['{"s":"a:b:c","t":"\\":"}', false],
    ['{"__proto__":1,"constructor":2}', false],
    ['{"__proto__":1,"__proto__":2}', true],
    ['1e400', false],
    ['"x:y"', false],
    ['[]', false],
  ])('%s → %s', (t, expected) => {
    expect(repeated(t)).toBe(expected);
  });

  it('counts members iteratively (a deep value cannot overflow the stack)', () => {
    const deep = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
    expect(countMemberTexts(Buffer.from(deep))).toBe(100_000);
    expect(countMembers(JSON.parse(deep))).toBe(100_000);
  });

  it('agrees with the repeats known when generating objects', () => {
    let seed = 7;
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    const gen = (depth: number): { text: string; repeats: boolean } => {
      if (depth > 3 || rand(3) === 0) return { text: ['1', '"k:v"', 'null', '[]', '"\\":"'][rand(5)]!, repeats: false };
      const items = Array.from({ length: rand(4) }, () => gen(depth + 1));
      let repeats = items.some((i) => i.repeats);
      if (rand(2) === 0) return { text: `[${items.map((i) => i.text).join(',')}]`, repeats };
      const keys = items.map(() => 'abc'[rand(3)]!);
      if (new Set(keys).size !== keys.length) repeats = true;
      return { text: `{${items.map((i, k) => `"${keys[k]}":${i.text}`).join(',')}}`, repeats };
    };
    for (let i = 0; i < 1000; i++) {
      const { text: t, repeats } = gen(0);
      expect([t, repeated(t)]).toEqual([t, repeats]);
    }
  });
});
