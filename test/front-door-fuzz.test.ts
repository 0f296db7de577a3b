/**
 * What schemathesis does not generate, against a real gateway process (test/helpers/front-door.ts): params
 * nested around the documented depth limit and far beyond it, bodies at the body limit ±1, huge and many
 * headers, malformed and hostile JWTs, unicode and raw bytes in paths, malformed HTTP. Every answer must be a
 * status the OpenAPI document lists for a call (no 5xx but 502/503/504) with a JSON `{"error": string}` body;
 * afterwards the gateway's memory must come back near where it started, and it must still answer.
 * The limits come from the document the gateway serves (`info.x-fnmesh-limits`).
 *
 * Alone: `npm run build && npx jest test/front-door-fuzz.test.ts`.
 */
import { createHmac } from 'node:crypto';
import { FUZZ_NAMESPACE, FUZZ_SECRET, FUZZ_SERVICE, startFrontDoor, type FrontDoor } from './helpers/front-door';
import { rawRequest, type RawAnswer } from './helpers/raw-http';
import { waitFor } from './helpers/wait';

jest.setTimeout(120_000);

interface Doc {
  info: { 'x-fnmesh-limits': Record<string, number> };
  paths: Record<string, { post?: { responses: Record<string, unknown> } }>;
}

const route = (fn: string, segment = 'functions'): string =>
  `/v1/api/${FUZZ_NAMESPACE}/${segment}/${FUZZ_SERVICE}/${fn}`;
const nest = (depth: number, inner = ''): string => '['.repeat(depth) + inner + ']'.repeat(depth);
const nestObjects = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
const b64url = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

/** A request with a body (content-length framing unless `chunked`). */
function post(
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
  options: { chunked?: boolean } = {},
): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const lines = [`POST ${path} HTTP/1.1`, 'host: 127.0.0.1', 'connection: close', 'content-type: application/json'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (options.chunked) {
    lines.push('transfer-encoding: chunked');
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 65536) {
      const part = bytes.subarray(i, i + 65536);
      chunks.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'));
    }
    return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), ...chunks, Buffer.from('0\r\n\r\n')]);
  }
  lines.push(`content-length: ${bytes.length}`);
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), bytes]);
}

describe('the gateway under generated hostile input', () => {
  let door: FrontDoor;
  let port: number;
  let doc: Doc;
  let limits: Record<string, number>;
  let documented: Set<string>;
  let baseline: number;

  beforeAll(async () => {
    door = await startFrontDoor();
    port = Number(new URL(door.url).port);
    doc = (await (await fetch(`${door.url}/openapi.json`)).json()) as Doc;
    limits = doc.info['x-fnmesh-limits'];
    const callPath = Object.keys(doc.paths).find((p) => p.includes('/functions/'))!;
    documented = new Set(Object.keys(doc.paths[callPath]!.post!.responses));
    // warm up, then the memory the gateway settles at before the hostile input
    for (let i = 0; i < 50; i++) await rawRequest(port, post(route('open'), `{"params":${i}}`));
    baseline = await settledMemory(door);
  });

  afterAll(async () => {
    await door?.stop();
  });

  /** The answer is a documented status with a JSON `{"error": string}` body (or `{"result"}` for a 200). */
  function expectDocumented(a: RawAnswer, what: string): void {
    const where = `${what}: answered ${a.status} ${a.body.toString('utf8').slice(0, 300)}${a.error ? ` (${a.error})` : ''}`;
    if (a.status === 0) throw new Error(`${where}: no HTTP answer`);
    const listed = documented.has(String(a.status)) || (a.status >= 400 && a.status < 500 && documented.has('4XX'));
    if (!listed) throw new Error(`${where}: status not in the OpenAPI document`);
    if (!/^application\/json/.test(a.headers['content-type'] ?? ''))
      throw new Error(`${where}: content-type ${a.headers['content-type']}, not JSON`);
    let body: unknown;
    try {
      body = JSON.parse(a.body.toString('utf8'));
    } catch {
      throw new Error(`${where}: the body is not JSON`);
    }
    if (a.status === 200) {
      if (typeof body !== 'object' || body === null || !('result' in body)) throw new Error(`${where}: no result`);
      return;
    }
    const error = (body as { error?: unknown }).error;
    if (typeof error !== 'string' || error === '') throw new Error(`${where}: no "error" string`);
  }

  const send = async (request: Buffer | string, what: string): Promise<RawAnswer> => {
    const a = await rawRequest(port, request);
    expectDocumented(a, what);
    return a;
  };
  const errorOf = (a: RawAnswer): string => (JSON.parse(a.body.toString('utf8')) as { error: string }).error;

  describe('nesting', () => {
    it('documents its params depth limit', () => {
      expect(limits['FNMESH_MAX_PARAMS_DEPTH']).toEqual(expect.any(Number));
    });

    it.each([2, 100, 1000, 4100, 5000, 20_000, 100_000])(
      'answers params %d levels deep (arrays, objects, in another key) without a server error',
      async (depth) => {
        await send(post(route('open'), `{"params":${nest(depth)}}`), `arrays ${depth} deep`);
        await send(post(route('open'), `{"params":${nestObjects(depth)}}`), `objects ${depth} deep`);
        await send(post(route('open'), `{"params":1,"extra":${nest(depth)}}`), `another key ${depth} deep`);
        await send(post(route('closed'), `{"params":${nest(depth)}}`), `arrays ${depth} deep, denied`);
      },
    );

    it('passes params up to the limit through unchanged and refuses one level more, naming the limit', async () => {
      const max = limits['FNMESH_MAX_PARAMS_DEPTH'];
      if (max === undefined) throw new Error('the document has no FNMESH_MAX_PARAMS_DEPTH limit');
      for (const depth of [max - 1, max]) {
        const a = await send(post(route('open'), `{"params":${nest(depth, '1')}}`), `arrays ${depth} deep`);
        expect(a.status).toBe(200);
        expect(a.body.toString()).toBe(`{"result":${nest(depth, '1')}}`);
      }
      const over = await send(post(route('open'), `{"params":${nest(max + 1)}}`), `arrays ${max + 1} deep`);
      expect(over.status).toBe(400);
      expect(errorOf(over)).toContain('FNMESH_MAX_PARAMS_DEPTH');
    });
  });

  describe('body size', () => {
    /** A call body of exactly `size` bytes: `{"params":"xxx…"}`. */
    const bodyOf = (size: number): string => `{"params":"${'x'.repeat(size - 13)}"}`;

    it.each([
      ['content-length', false],
      ['chunked', true],
    ])('accepts a body at the limit and one byte under it, and answers 413 one byte over (%s)', async (_, chunked) => {
      const limit = limits['FNMESH_MAX_BODY_BYTES']!;
      expect(limit).toEqual(expect.any(Number));
      for (const size of [limit - 1, limit]) {
        expect(Buffer.byteLength(bodyOf(size))).toBe(size);
        const a = await send(post(route('open'), bodyOf(size), {}, { chunked }), `body of ${size} bytes`);
        expect(a.status).toBe(200);
        expect(a.body.length).toBe(size - 13 + '{"result":""}'.length);
      }
      const over = await send(post(route('open'), bodyOf(limit + 1), {}, { chunked }), `body of ${limit + 1} bytes`);
      expect(over.status).toBe(413);
      expect(errorOf(over)).toContain(String(limit));
    });

    it('accepts a body at the limit with the largest token the gateway takes', async () => {
      const limit = limits['FNMESH_MAX_BODY_BYTES']!;
      const maxToken = limits['FNMESH_MAX_TOKEN_BYTES'];
      if (maxToken === undefined) throw new Error('the document has no FNMESH_MAX_TOKEN_BYTES limit');
      const base = await door.token({ sub: 'fuzzer', pad: '' });
      // base64url: 4 characters for every 3 bytes of the claims
      const token = await door.token({
        sub: 'fuzzer',
        pad: 'p'.repeat(Math.floor(((maxToken - base.length - 8) * 3) / 4)),
      });
      expect(token.length).toBeLessThanOrEqual(maxToken);
      expect(token.length).toBeGreaterThan(maxToken - 16);
      const a = await send(
        post(route('members'), bodyOf(limit), { authorization: `Bearer ${token}` }),
        `body of ${limit} bytes with a token of ${token.length} bytes`,
      );
      expect(a.status).toBe(200);
    });

    it('answers bodies far over the limit, declared or not, with 413', async () => {
      const limit = limits['FNMESH_MAX_BODY_BYTES']!;
      const big = Buffer.alloc(limit * 3, 'x');
      expect((await send(post(route('open'), big), 'body 3× the limit')).status).toBe(413);
      expect((await send(post(route('open'), big, {}, { chunked: true }), 'chunked body 3× the limit')).status).toBe(
        413,
      );
      const lying = `POST ${route('open')} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${limit * 10}\r\n\r\n{"params":1}`;
      expect((await send(lying, 'declared length 10× the limit')).status).toBe(413);
    });
  });

  describe('headers', () => {
    it.each([
      ['one header of 20 KB', { 'x-big': 'h'.repeat(20_000) }],
      ['one header of 1 MB', { 'x-big': 'h'.repeat(1024 * 1024) }],
      ['3000 small headers', Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`x-h${i}`, 'v']))],
      ['an x-request-id of 10 KB', { 'x-request-id': 'r'.repeat(10_000) }],
      ['a traceparent of 10 KB', { traceparent: `00-${'a'.repeat(10_000)}-01` }],
      ['an Expect it cannot meet', { expect: 'the-impossible' }],
      [
        '200 headers of 50 bytes',
        Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-h${i}`, 'v'.repeat(50)])),
      ],
      ['a unicode header value', { 'x-note': Buffer.from('héllo ☃ 𝄞', 'utf8').toString('latin1') }],
    ])('answers a call with %s as documented', async (what, headers) => {
      await send(post(route('open'), '{"params":1}', headers as Record<string, string>), what);
    });
  });

  describe('tokens', () => {
    const header = (h: object): string => b64url(JSON.stringify(h));
    const claims = (): string =>
      b64url(
        JSON.stringify({ sub: 'x', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 3600 }),
      );

    async function hostileTokens(): Promise<[string, string][]> {
      const valid = await door.token();
      const [h, p, s] = valid.split('.') as [string, string, string];
      const now = Math.floor(Date.now() / 1000);
      /** A correctly signed HS256 token of any header and claims (jose refuses to sign some of these). */
      const sign = (
        c: Record<string, unknown>,
        protectedHeader: Record<string, unknown> = { alg: 'HS256' },
      ): string => {
        const input = `${header(protectedHeader)}.${b64url(JSON.stringify(c))}`;
        return `${input}.${createHmac('sha256', FUZZ_SECRET).update(input).digest('base64url')}`;
      };
      return [
        ['one segment', 'abc'],
        ['two segments', `${h}.${p}`],
        ['four segments', `${valid}.x`],
        ['empty segments', '..'],
        ['bad base64 in the header', `${h}!.${p}.${s}`],
        ['standard base64 (+/) in the signature', `${h}.${p}.${s.replace(/-/g, '+').replace(/_/g, '/')}+/`],
        ['padding on the signature', `${valid}=`],
        ['padding on the payload', `${h}.${p}==.${s}`],
        ['alg none', `${header({ alg: 'none', typ: 'JWT' })}.${claims()}.`],
        ['alg None with a signature', `${header({ alg: 'None' })}.${claims()}.${s}`],
        ['a header that is not JSON', `${b64url('not json')}.${p}.${s}`],
        ['a payload that is an array', `${h}.${b64url('[1,2]')}.${s}`],
        ['a payload that is not JSON', `${h}.${b64url('{"sub":')}.${s}`],
        ['a changed payload', `${h}.${b64url(JSON.stringify({ sub: 'root', exp: now + 3600 }))}.${s}`],
        ['a 10 KB token', `${h}.${b64url(JSON.stringify({ sub: 'x', pad: 'p'.repeat(7500) }))}.${s}`],
        ['a 100 KB token', `${h}.${'A'.repeat(100_000)}.${s}`],
        ['an expired token', sign({ sub: 'x', iat: now - 7200, exp: now - 3600 })],
        ['iat ten years ahead', sign({ sub: 'x', iat: now + 10 * 365 * 86400, exp: now + 11 * 365 * 86400 })],
        [
          'an unknown crit header',
          sign({ sub: 'x', exp: now + 3600 }, { alg: 'HS256', crit: ['x-unknown'], 'x-unknown': 1 }),
        ],
        ['control characters', `${h}.\u0001\u0002.${s}`],
      ];
    }

    it('refuses each malformed or hostile token with 401 (or a documented header status), as JSON', async () => {
      const wrong: string[] = [];
      const check = async (
        what: string,
        authorization: string,
        refused: (status: number) => boolean,
      ): Promise<void> => {
        const a = await rawRequest(port, post(route('members'), '{"params":1}', { authorization }));
        try {
          expectDocumented(a, what);
        } catch (err) {
          wrong.push((err as Error).message);
          return;
        }
        if (!refused(a.status)) wrong.push(`${what}: answered ${a.status}, not refused`);
      };
      // 400/431: node:http refuses some of these (control characters, size) before the gateway reads them
      for (const [what, token] of await hostileTokens())
        await check(`token: ${what}`, `Bearer ${token}`, (s) => s === 401 || s === 431 || s === 400);
      for (const value of ['Bearer', 'Bearer  ', 'Basic dXNlcjpwYXNz', 'bearer', `Token ${await door.token()}`])
        await check(`authorization: ${value.slice(0, 20)}`, value, (s) => s === 401);
      expect(wrong).toEqual([]);
    });
  });

  describe('paths and framing', () => {
    it.each([
      ['a percent-encoded é', route('%C3%A9')],
      ['a raw UTF-8 é', route('\u00e9')],
      ['raw UTF-8 in a function name', route('caf\u00e9')],
      ['raw UTF-8 in the service', `/v1/api/${FUZZ_NAMESPACE}/functions/${'é'.repeat(3)}/open`],
      ['an encoded NUL', route('open%00')],
      ['encoded dot segments', route('..%2F..%2Fopen')],
      ['a trailing dot segment', route('open/..')],
      ['an empty segment', `/v1/api/${FUZZ_NAMESPACE}//${FUZZ_SERVICE}/open`],
      ['one segment too many', `/v1/api/${FUZZ_NAMESPACE}/functions/${FUZZ_SERVICE}/open/extra`],
      ['a namespace of 10 KB', `/v1/api/${'n'.repeat(10_000)}/functions/${FUZZ_SERVICE}/open`],
      ['a query of 8 KB', `${route('open')}?${'q'.repeat(8000)}`],
      ['an emoji', `/v1/api/${FUZZ_NAMESPACE}/functions/${FUZZ_SERVICE}/${'\u{1F600}'}`],
      ['the bare prefix', '/v1/api/'],
      ['encoded bytes that are not UTF-8', '/%ff%fe'],
      ['raw bytes that are not ASCII', '/\u00ff\u00fe'],
    ])('answers a call to a path with %s as documented', async (what, path) => {
      // raw bytes: the path's UTF-8 as is, the way a hostile client may send it
      const request = Buffer.concat([
        Buffer.from(`POST `, 'latin1'),
        Buffer.from(path, 'utf8'),
        Buffer.from(
          ' HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{"params":1}',
          'latin1',
        ),
      ]);
      await send(request, `a path with ${what}`);
    });

    it.each([
      ['two content-lengths', 'content-length: 12\r\ncontent-length: 13\r\n'],
      ['content-length and chunked', 'content-length: 12\r\ntransfer-encoding: chunked\r\n'],
      ['a negative content-length', 'content-length: -1\r\n'],
      ['a header without a colon', 'broken header\r\ncontent-length: 12\r\n'],
    ])('answers a request with %s as documented', async (what, headers) => {
      const request = `POST ${route('open')} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n${headers}\r\n{"params":1}`;
      await send(request, what);
    });

    it.each(['GET', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'FOO'])(
      'answers %s on the call route as documented',
      async (method) => {
        const a = await rawRequest(port, `${method} ${route('open')} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
        if (method === 'HEAD') {
          expect(a.status).toBe(405);
          return;
        }
        expectDocumented(a, `${method} on the call route`);
      },
    );

    it.each([
      [
        'invalid UTF-8 in a string',
        Buffer.concat([Buffer.from('{"params":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]),
      ],
      ['a UTF-8 BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"params":1}')])],
      ['a NUL byte', Buffer.from('{"params":"\u0000"}')],
      ['timeout 0', Buffer.from('{"params":1,"timeout":0}')],
      ['timeout 1e400', Buffer.from('{"params":1,"timeout":1e400}')],
      ['timeout 1.5', Buffer.from('{"params":1,"timeout":1.5}')],
      ['timeout "5"', Buffer.from('{"params":1,"timeout":"5"}')],
      ['timeout 1', Buffer.from('{"params":1,"timeout":1}')],
      ['a 30-digit number', Buffer.from('{"params":123456789012345678901234567890}')],
      ['duplicate params keys', Buffer.from('{"params":1,"params":2}')],
      ['a lone surrogate escape', Buffer.from('{"params":"\\ud800"}')],
      ['trailing garbage', Buffer.from('{"params":1}}')],
      ['a body that is an array', Buffer.from('[{"params":1}]')],
    ])('answers a body with %s as documented', async (what, body) => {
      await send(post(route('open'), body), what);
    });
  });

  it('comes back to its memory baseline and still answers', async () => {
    // the heaviest input again, many times: a gateway that kept what it was sent would grow by 100s of MB
    const limit = limits['FNMESH_MAX_BODY_BYTES']!;
    for (let i = 0; i < 100; i++) {
      await rawRequest(port, post(route('open'), Buffer.alloc(limit * 2, 'x')));
      await rawRequest(port, post(route('open'), `{"params":${nest(20_000)}}`));
      await rawRequest(port, post(route('open'), `{"params":"${'y'.repeat(limit - 100)}"}`));
    }
    const margin = 48 * 1024 * 1024;
    await waitFor(async () => (await door.memoryBytes()) < baseline + margin, {
      timeoutMs: 60_000,
      intervalMs: 500,
      what: `the gateway's heap + external memory to come back under ${Math.round((baseline + margin) / 1e6)} MB (baseline ${Math.round(baseline / 1e6)} MB)`,
    });
    expect(door.gateway.child.exitCode).toBeNull();
    const a = await send(post(route('open'), '{"params":"still here"}'), 'a call after the storm');
    expect(a.body.toString()).toBe('{"result":"still here"}');
  });
});

/** The gateway's memory at rest: the least of a few readings. */
async function settledMemory(door: FrontDoor): Promise<number> {
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) readings.push(await door.memoryBytes());
  return Math.min(...readings);
}
