import { base64urlProblem, headerProblem, kindOf, parseCompactJwt } from './jwt-format';

const b64u = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

describe('base64urlProblem', () => {
  const cases: [string, RegExp | undefined][] = [
    ['', undefined],
    ['QQ', undefined], // "A"
    ['QUI', undefined], // "AB"
    ['QUJD', undefined], // "ABC"
    ['-_-_', undefined],
    ['QQ==', /ends with "=" padding/],
    ['QUI=', /ends with "=" padding/],
    ['Q=Q', /contains "="/],
    ['QR', /not canonical: its last character has non-zero unused bits/], // decodes to "A" like QQ
    ['QUJ', /non-zero unused bits/], // decodes to "AB" like QUI
    ['QUJDR', /length \(5\) is not that of any base64url text/],
    ['a+b/', /contains "\+".*that is base64; JWTs use base64url/],
    ['ab/c', /contains "\/"/],
    ['ab c', /contains " "/],
    ['ab\nc', /contains "\\n"/],
    ['abé', /contains "é"/],
  ];
  it.each(cases)('%j', (text, expected) => {
    const problem = base64urlProblem(text);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });
  it('accepts exactly what re-encoding gives, for every length of input', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = Buffer.from(Array.from({ length: n }, (_v, i) => (i * 37 + n) & 0xff));
      expect(base64urlProblem(bytes.toString('base64url'))).toBeUndefined();
    }
  });
});

describe('kindOf', () => {
  it.each([
    [null, 'null'],
    [[], 'an array'],
    [{}, 'an object'],
    [undefined, 'an undefined'],
    ['x', 'a string'],
    [1, 'a number'],
    [true, 'a boolean'],
  ])('%j is %s', (value, kind) => expect(kindOf(value)).toBe(kind));
});

describe('headerProblem', () => {
  it('takes the common headers', () => {
    expect(headerProblem({ alg: 'RS256', kid: 'k', typ: 'JWT' })).toBeUndefined();
    expect(headerProblem({ alg: 'ES256', typ: 'at+JWT', cty: 'json' })).toBeUndefined();
  });
  it('names crit before the other problems (a token with an unknown extension is never understood)', () => {
    expect(headerProblem({ alg: 'HS256', crit: ['x'], kid: 1 })).toMatch(/crit header names extensions .*"x"/);
  });
  it('refuses alg none in any case', () => {
    for (const alg of ['none', 'None', 'NONE']) expect(headerProblem({ alg })).toMatch(/unsupported algorithm "none"/);
  });
});

describe('parseCompactJwt', () => {
  it('returns the header and claims of a well-formed token', () => {
    const t = `${b64u('{"alg":"HS256"}')}.${b64u('{"sub":"a","n":1.5}')}.${b64u('sig')}`;
    expect(parseCompactJwt(t, 1000)).toEqual({ header: { alg: 'HS256' }, claims: { sub: 'a', n: 1.5 } });
  });
  it('reports alg none before the missing signature', () => {
    const t = `${b64u('{"alg":"none"}')}.${b64u('{}')}.`;
    expect(parseCompactJwt(t, 1000)).toEqual({ problem: expect.stringMatching(/algorithm "none"/) });
  });
  it('refuses a token over the length limit before reading it', () => {
    expect(parseCompactJwt('a'.repeat(11), 10)).toEqual({
      problem: 'the token is malformed: it is longer than 10 characters',
    });
  });
  describe('refuses a header or payload that gives a key twice in one object', () => {
    const sig = b64u('sig');
    it.each([
      ['payload', '{"alg":"HS256"}', '{"sub":"alice","sub":"mallory"}'],
      ['payload', '{"alg":"HS256"}', '{"sub":"alice","\\u0073ub":"mallory"}'],
      ['payload', '{"alg":"HS256"}', '{"sub":"a","org":{"role":"user","role":"admin"}}'],
      ['payload', '{"alg":"HS256"}', '{"sub":"a","groups":[{"id":1,"id":2}]}'],
      ['header', '{"alg":"HS256","alg":"RS256"}', '{"sub":"a"}'],
      ['header', '{"alg":"HS256","kid":"a","kid":"b"}', '{"sub":"a"}'],
    ])('in its %s: %s %s', (segment, header, payload) => {
      expect(parseCompactJwt(`${b64u(header)}.${b64u(payload)}.${sig}`, 1000)).toEqual({
        problem: `the token is malformed: its ${segment} gives a key twice in one object: JSON parsers disagree on which value counts (this one reads the last, others the first), so another verifier or a function could read a different ${segment === 'header' ? 'header' : 'claim'}; issue the token with each key once`,
      });
    });
    it('takes the same keys in different objects, and colons inside strings', () => {
      const payload = '{"sub":"a:b","org":{"sub":"c"},"groups":[{"id":1},{"id":2}],"note":"\\":"}';
      expect(parseCompactJwt(`${b64u('{"alg":"HS256"}')}.${b64u(payload)}.${sig}`, 1000)).toEqual({
        header: { alg: 'HS256' },
        claims: JSON.parse(payload),
      });
    });
  });
});
