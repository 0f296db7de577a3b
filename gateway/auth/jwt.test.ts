import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CompactSign,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import { ConfigError, FnmeshError } from '../../common/errors';
import { devToken } from '../../common/process/dev-token';
import { bearerToken, createJwtVerifier, type JwtVerifier } from './index';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256!!';
const OTHER_SECRET = 'another-secret-that-is-also-long-enough-for-hs256';
const enc = new TextEncoder();
const b64u = (s: string | Buffer): string => Buffer.from(s).toString('base64url');
const nowSec = (): number => Math.floor(Date.now() / 1000);

let dir: string;
let rsa: { publicKey: CryptoKey; privateKey: CryptoKey };
let rsaOther: { publicKey: CryptoKey; privateKey: CryptoKey };
let ec: { publicKey: CryptoKey; privateKey: CryptoKey };
let jwksPath: string;
let server: Server;
let jwksUrl: string;
let serverHits = 0;

async function publicJwk(key: CryptoKey, kid: string, alg: string): Promise<JWK> {
  return { ...(await exportJWK(key)), kid, alg, use: 'sig' };
}

async function sign(claims: JWTPayload, key: CryptoKey | Uint8Array, alg: string, kid?: string): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader(kid ? { alg, kid } : { alg }).setIssuedAt();
  if (claims.exp === undefined) jwt.setExpirationTime('1h');
  return jwt.sign(key);
}
const hs = (claims: JWTPayload = { sub: 'u1' }, secret = SECRET): Promise<string> =>
  sign(claims, enc.encode(secret), 'HS256');
const rs = (claims: JWTPayload = { sub: 'u1' }, key = rsa.privateKey, kid = 'rsa-1'): Promise<string> =>
  sign(claims, key, 'RS256', kid);
const es = (claims: JWTPayload = { sub: 'u1' }): Promise<string> => sign(claims, ec.privateKey, 'ES256', 'ec-1');

/** A token whose parts are written by hand, signed with HS256 over exactly those bytes. */
function handMade(header: string | Buffer, payload: string | Buffer, secret = SECRET): string {
  return signedSegments(b64u(header), b64u(payload), secret);
}
/** A token of the given (possibly non-canonical) segment texts, signed with HS256 over exactly that text. */
function signedSegments(header: string, payload: string, secret = SECRET): string {
  const input = `${header}.${payload}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

async function expectUnauthenticated(p: Promise<unknown>, message: RegExp): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FnmeshError);
  expect((err as FnmeshError).code).toBe('unauthenticated');
  expect((err as FnmeshError).status).toBe(401);
  expect((err as Error).message).toMatch(message);
  expect((err as Error).message).not.toMatch(/\n\s+at /);
}

async function expectConfigError(p: Promise<unknown>, message: RegExp): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(ConfigError);
  await expect(p).rejects.toThrow(message);
}

const verifiers: JwtVerifier[] = [];
async function verifier(...args: Parameters<typeof createJwtVerifier>): Promise<JwtVerifier> {
  const v = await createJwtVerifier(...args);
  verifiers.push(v);
  return v;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fnmesh-jwt-'));
  rsa = await generateKeyPair('RS256', { extractable: true });
  rsaOther = await generateKeyPair('RS256', { extractable: true });
  ec = await generateKeyPair('ES256', { extractable: true });
  const jwks = {
    keys: [await publicJwk(rsa.publicKey, 'rsa-1', 'RS256'), await publicJwk(ec.publicKey, 'ec-1', 'ES256')],
  };
  jwksPath = join(dir, 'jwks.json');
  writeFileSync(jwksPath, JSON.stringify(jwks));
  server = createServer((_req, res) => {
    serverHits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(jwks));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
});

afterAll(async () => {
  for (const v of verifiers) v.close();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('valid tokens', () => {
  it('verifies HS256 with any of the configured secrets', async () => {
    const v = await verifier({ secrets: [OTHER_SECRET, SECRET] });
    expect(v.enabled).toBe(true);
    expect(await v.verify(await hs({ sub: 'u1', role: 'admin' }))).toMatchObject({ sub: 'u1', role: 'admin' });
    expect(await v.verify(await hs({ sub: 'u2' }, OTHER_SECRET))).toMatchObject({ sub: 'u2' });
  });
  it('verifies RS256 and ES256 against a JWKS file', async () => {
    const v = await verifier({ jwksFile: jwksPath });
    expect(await v.verify(await rs())).toMatchObject({ sub: 'u1' });
    expect(await v.verify(await es())).toMatchObject({ sub: 'u1' });
  });
  it('verifies RS256 and ES256 against a JWKS served over HTTP', async () => {
    const v = await verifier({ jwksUrl });
    const before = serverHits;
    expect(await v.verify(await rs())).toMatchObject({ sub: 'u1' });
    expect(await v.verify(await es())).toMatchObject({ sub: 'u1' });
    expect(serverHits).toBeGreaterThan(before);
  });
  it('accepts matching issuer and audience', async () => {
    const v = await verifier({ secrets: [SECRET], issuer: 'https://id.example.com', audience: 'fnmesh' });
    expect(
      await v.verify(await hs({ sub: 'u1', iss: 'https://id.example.com', aud: ['other', 'fnmesh'] })),
    ).toMatchObject({ sub: 'u1' });
  });
  it('accepts a token expired by less than the clock tolerance', async () => {
    const v = await verifier({ secrets: [SECRET], clockToleranceSec: 30 });
    expect(await v.verify(await hs({ sub: 'u1', exp: nowSec() - 10 }))).toMatchObject({ sub: 'u1' });
  });
});

describe('tokens the project mints', () => {
  it("the local mesh's dev token (the README's signed-in curl) passes every check, exp included", async () => {
    const v = await verifier({ secrets: [SECRET] });
    expect(await v.verify(devToken(SECRET))).toMatchObject({ sub: 'ada', role: 'admin', exp: expect.any(Number) });
  });
});

describe('rejected tokens', () => {
  let both: JwtVerifier;
  let secretOnly: JwtVerifier;
  let jwksOnly: JwtVerifier;
  beforeAll(async () => {
    both = await verifier({ secrets: [SECRET], jwksFile: jwksPath });
    secretOnly = await verifier({ secrets: [SECRET] });
    jwksOnly = await verifier({ jwksFile: jwksPath });
  });

  it('expired: names the expiry time', async () => {
    const exp = nowSec() - 60;
    await expectUnauthenticated(
      both.verify(await hs({ exp })),
      new RegExp(`^the token expired at ${new Date(exp * 1000).toISOString()}$`),
    );
    await expectUnauthenticated(both.verify(await rs({ exp })), /^the token expired at /);
  });
  it('not yet valid: names the start time', async () => {
    const nbf = nowSec() + 120;
    await expectUnauthenticated(
      both.verify(await hs({ nbf })),
      new RegExp(`not yet valid: it is valid from ${new Date(nbf * 1000).toISOString()}`),
    );
  });
  it('wrong secret', async () => {
    await expectUnauthenticated(both.verify(await hs({ sub: 'x' }, OTHER_SECRET)), /signature is invalid/);
  });
  it('wrong RSA key with a known kid', async () => {
    await expectUnauthenticated(both.verify(await rs({}, rsaOther.privateKey, 'rsa-1')), /signature is invalid/);
  });
  it('unknown kid', async () => {
    await expectUnauthenticated(both.verify(await rs({}, rsaOther.privateKey, 'rsa-9')), /no key in the JWKS matches/);
  });
  it('alg "none", crafted by hand, is refused by every verifier', async () => {
    const token = `${b64u('{"alg":"none","typ":"JWT"}')}.${b64u(JSON.stringify({ sub: 'admin', exp: nowSec() + 600 }))}.`;
    for (const v of [both, secretOnly, jwksOnly])
      await expectUnauthenticated(v.verify(token), /unsupported algorithm "none"/);
    const upper = `${b64u('{"alg":"NONE"}')}.${b64u('{"sub":"admin"}')}.`;
    await expectUnauthenticated(both.verify(upper), /unsupported algorithm "none"/);
  });
  it('HS256 against a JWKS-only verifier', async () => {
    await expectUnauthenticated(
      jwksOnly.verify(await hs()),
      /unsupported algorithm "HS256": this gateway verifies only .* against its JWKS/,
    );
  });
  it('RS256 against a secret-only verifier', async () => {
    await expectUnauthenticated(
      secretOnly.verify(await rs()),
      /unsupported algorithm "RS256": this gateway has only HS256 shared secrets/,
    );
  });
  it('HS256 signed with the RSA public key PEM as the secret (algorithm confusion)', async () => {
    const pem = await exportSPKI(rsa.publicKey);
    const jwk = JSON.stringify(await exportJWK(rsa.publicKey));
    for (const secret of [pem, jwk]) {
      const token = await hs({ sub: 'admin' }, secret);
      await expectUnauthenticated(both.verify(token), /signature is invalid/);
      await expectUnauthenticated(jwksOnly.verify(token), /unsupported algorithm "HS256"/);
    }
  });
  it('an unknown algorithm', async () => {
    await expectUnauthenticated(
      both.verify(handMade('{"alg":"HS999"}', '{}')),
      /unsupported algorithm "HS999": accepted are HS256, RS256/,
    );
  });
  const malformed: [string, string, RegExp][] = [
    ['not three parts (two)', 'abc.def', /three dot-separated parts.*this one has 2/],
    ['not three parts (one)', 'abc', /this one has 1/],
    ['not three parts (four)', 'a.b.c.d', /this one has 4/],
    ['bad base64 header', '%%%.e30.sig', /header is not canonical base64url: it contains "%"/],
    ['bad JSON header', `${b64u('{alg:HS256')}.e30.sig`, /^the token is malformed: its header is not JSON$/],
    ['header without alg', `${b64u('{"typ":"JWT"}')}.e30.sig`, /header has no "alg"/],
    ['bad JSON payload, correctly signed', handMade('{"alg":"HS256"}', '{"sub":'), /malformed/],
    ['payload that is not an object, correctly signed', handMade('{"alg":"HS256"}', '[1,2]'), /malformed/],
    ['too long', `${'a'.repeat(17000)}.b.c`, /longer than/],
  ];
  it.each(malformed)('malformed: %s', async (_n, token, message) => {
    await expectUnauthenticated(both.verify(token), message);
  });
  it('an empty token', async () => {
    await expectUnauthenticated(both.verify(''), /empty/);
  });
  it('issuer mismatch', async () => {
    const v = await verifier({ secrets: [SECRET], issuer: 'https://id.example.com' });
    await expectUnauthenticated(
      v.verify(await hs({ iss: 'https://evil.example.com' })),
      /issuer "https:\/\/evil\.example\.com" is not the one/,
    );
    await expectUnauthenticated(v.verify(await hs({})), /^the token has no iss claim/);
  });
  it('audience mismatch', async () => {
    const v = await verifier({ jwksFile: jwksPath, audience: 'fnmesh' });
    await expectUnauthenticated(v.verify(await rs({ aud: 'billing' })), /audience "billing" does not include/);
  });
  it('no verifier configured', async () => {
    const v = await verifier({});
    expect(v.enabled).toBe(false);
    await expectUnauthenticated(
      v.verify(await hs()),
      /^this gateway has no JWT secret or JWKS configured; set FNMESH_JWT_SECRET or FNMESH_JWKS_FILE$/,
    );
  });
  it('a JWKS URL that does not answer is "unavailable", not the caller\'s fault', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise((r) => dead.close(r));
    const v = await verifier({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` });
    const err = await v.verify(await rs()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FnmeshError);
    expect((err as FnmeshError).code).toBe('unavailable');
    expect((err as Error).message).toMatch(/the JWKS at http:\/\/127\.0\.0\.1:\d+\/jwks\.json could not be fetched/);
  });
});

describe('configuration errors', () => {
  it('a too-short secret says how long and how to generate one', async () => {
    await expectConfigError(
      createJwtVerifier({ secrets: ['short'] }),
      /secret #1 is 5 bytes; HS256 needs at least 32 bytes.*openssl rand -base64 48/,
    );
  });
  it('an unreadable JWKS file', async () => {
    await expectConfigError(
      createJwtVerifier({ jwksFile: join(dir, 'missing.json') }),
      /missing\.json \(FNMESH_JWKS_FILE\) cannot be read/,
    );
  });
  const bad: [string, string, RegExp][] = [
    ['not JSON', '{keys:', /is not valid JSON/],
    ['not a JWKS', '{"kty":"RSA"}', /is not a JWKS: it must be a JSON object \{"keys"/],
    ['empty keys', '{"keys":[]}', /has no keys/],
    ['a symmetric key', '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}', /symmetric \(oct\) key.*FNMESH_JWT_SECRET/],
    ['an unknown kty', '{"keys":[{"kty":"XYZ"}]}', /kty "XYZ"/],
    [
      'a short RSA key',
      '{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB","alg":"RS256"}]}',
      /keys\[0\] is an RSA key of 24 bits; RSA keys must have at least 2048 bits/,
    ],
    [
      'an invalid EC key',
      '{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"AAAA","y":"AAAA"}]}',
      /keys\[0\] \(kid "k1"\) is not a valid ES256 public key/,
    ],
  ];
  it.each(bad)('a JWKS file that is %s', async (_n, text, message) => {
    const p = join(dir, `bad-${Math.random()}.json`);
    writeFileSync(p, text);
    await expectConfigError(createJwtVerifier({ jwksFile: p }), message);
  });
  it('a JWKS with private key material', async () => {
    const p = join(dir, 'private.json');
    writeFileSync(p, JSON.stringify({ keys: [{ ...(await exportJWK(rsa.privateKey)), kid: 'k' }] }));
    await expectConfigError(
      createJwtVerifier({ jwksFile: p }),
      /private key material \("d"\); publish only the public key/,
    );
  });
  it('a bad JWKS URL', async () => {
    await expectConfigError(
      createJwtVerifier({ jwksUrl: 'ftp://x/jwks' }),
      /FNMESH_JWKS_URL="ftp:\/\/x\/jwks" is not valid/,
    );
    await expectConfigError(createJwtVerifier({ jwksUrl: 'not a url' }), /is not valid: it accepts an http\(s\) URL/);
  });
});

describe('cache', () => {
  afterEach(() => jest.useRealTimers());
  it('answers a repeated token from the cache with frozen claims', async () => {
    const v = await verifier({ secrets: [SECRET] });
    const t = await hs({ sub: 'u1', roles: ['a'] });
    const a = await v.verify(t);
    const b = await v.verify(t);
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.roles)).toBe(true);
  });
  it('never answers an expired token from the cache', async () => {
    const v = await verifier({ secrets: [SECRET], clockToleranceSec: 0 });
    const t = await hs({ sub: 'u1', exp: nowSec() + 2 });
    await v.verify(t);
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'], now: Date.now() + 10_000 });
    await expectUnauthenticated(v.verify(t), /expired/);
  });
  it('reuses a verification for at most the TTL', async () => {
    const v = await verifier({ secrets: [SECRET] }, { cacheTtlMs: 1000 });
    const t = await hs();
    const a = await v.verify(t);
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'], now: Date.now() + 1500 });
    const b = await v.verify(t);
    expect(b).not.toBe(a);
    expect(b).toEqual(a);
  });
  it('can be disabled', async () => {
    const v = await verifier({ secrets: [SECRET] }, { cacheMaxEntries: 0 });
    const t = await hs();
    expect(await v.verify(t)).not.toBe(await v.verify(t));
  });
});

describe('JWKS file reload', () => {
  it('picks up a rotated key, drops the old one and keeps the old keys when the new file is bad', async () => {
    const p = join(dir, 'rotating.json');
    writeFileSync(p, JSON.stringify({ keys: [await publicJwk(rsa.publicKey, 'rsa-1', 'RS256')] }));
    const reloads: (Error | undefined)[] = [];
    let notify: () => void = () => undefined;
    const v = await verifier(
      { jwksFile: p },
      { reloadDebounceMs: 20, onJwksReload: (e) => (reloads.push(e), notify()) },
    );
    const oldToken = await rs();
    expect(await v.verify(oldToken)).toMatchObject({ sub: 'u1' });
    const newToken = await rs({ sub: 'u2' }, rsaOther.privateKey, 'rsa-2');
    await expectUnauthenticated(v.verify(newToken), /no key in the JWKS matches/);

    const reloaded = (): Promise<void> => new Promise((r) => (notify = r));
    let wait = reloaded();
    writeFileSync(p, JSON.stringify({ keys: [await publicJwk(rsaOther.publicKey, 'rsa-2', 'RS256')] }));
    await wait;
    expect(reloads.at(-1)).toBeUndefined();
    expect(await v.verify(newToken)).toMatchObject({ sub: 'u2' });
    await expectUnauthenticated(v.verify(oldToken), /no key in the JWKS matches/); // the cache was cleared

    wait = reloaded();
    writeFileSync(p, '{not json');
    await wait;
    expect(reloads.at(-1)).toBeInstanceOf(ConfigError);
    expect(await v.verify(await rs({ sub: 'u3' }, rsaOther.privateKey, 'rsa-2'))).toMatchObject({ sub: 'u3' });
    v.close();
  });
});

describe('bearerToken', () => {
  const ok: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['', undefined],
    ['   ', undefined],
    ['Bearer abc.def.ghi', 'abc.def.ghi'],
    ['bearer abc.def.ghi', 'abc.def.ghi'],
    ['BEARER  abc.def.ghi  ', 'abc.def.ghi'],
  ];
  it.each(ok)('%j → %j', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });
  const bad: [string, RegExp][] = [
    ['Basic dXNlcjpwYXNz', /the scheme is not Bearer/],
    ['Bearer', /the token is missing/],
    ['Bearer ', /the token is missing/],
    ['Bearer a b', /malformed/],
    ['abc.def.ghi', /the scheme is not Bearer/],
  ];
  it.each(bad)('%j is refused', (header, message) => {
    let err: unknown;
    try {
      bearerToken(header);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FnmeshError);
    expect((err as FnmeshError).code).toBe('unauthenticated');
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toMatch(/send "Authorization: Bearer <token>"/);
  });
});

// ------------------------------------------------------------------------------------------- issue 9

/** A copy of `segment` spelled differently (its last character's unused bits set) that decodes to the same bytes. */
function respelled(segment: string): string {
  const bytes = Buffer.from(segment, 'base64url');
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (const c of alphabet) {
    const other = segment.slice(0, -1) + c;
    if (other !== segment && Buffer.from(other, 'base64url').equals(bytes)) return other;
  }
  throw new Error(`${segment} has no other spelling (its length is a multiple of 4)`);
}

/** A token over the given header and payload texts, signed by jose with an asymmetric key (kid from the JWKS). */
async function asymmetric(alg: string, key: CryptoKey, kid: string, payload: string): Promise<string> {
  return new CompactSign(enc.encode(payload)).setProtectedHeader({ alg, kid }).sign(key);
}

describe('issue 9: the defects the front-door check found', () => {
  let secretOnly: JwtVerifier;
  let jwksOnly: JwtVerifier;
  let ed: { publicKey: CryptoKey; privateKey: CryptoKey };
  beforeAll(async () => {
    secretOnly = await verifier({ secrets: [SECRET] });
    ed = await generateKeyPair('EdDSA', { extractable: true });
    const p = join(dir, 'jwks-ed.json');
    const keys = [
      await publicJwk(rsa.publicKey, 'rsa-1', 'RS256'),
      await publicJwk(ec.publicKey, 'ec-1', 'ES256'),
      await publicJwk(ed.publicKey, 'ed-1', 'EdDSA'),
    ];
    writeFileSync(p, JSON.stringify({ keys }));
    jwksOnly = await verifier({ jwksFile: p });
  });
  const asymmetricKeys = (): [string, CryptoKey, string][] => [
    ['RS256', rsa.privateKey, 'rsa-1'],
    ['ES256', ec.privateKey, 'ec-1'],
    ['EdDSA', ed.privateKey, 'ed-1'],
  ];
  const tenYears = 10 * 365 * 24 * 3600;

  it('refuses a token issued ten years in the future (HS256 and every JWKS algorithm)', async () => {
    const payload = JSON.stringify({ sub: 'u1', iat: nowSec() + tenYears, exp: nowSec() + 3600 });
    await expectUnauthenticated(secretOnly.verify(handMade('{"alg":"HS256"}', payload)), /issued in the future \(iat/);
    for (const [alg, key, kid] of asymmetricKeys()) {
      await expectUnauthenticated(jwksOnly.verify(await asymmetric(alg, key, kid, payload)), /issued in the future/);
    }
  });
  it('applies the same checks to tokens verified by a JWKS served over HTTP', async () => {
    const byUrl = await verifier({ jwksUrl });
    const ok = await asymmetric('RS256', rsa.privateKey, 'rsa-1', JSON.stringify({ sub: 'u1', exp: nowSec() + 60 }));
    expect(await byUrl.verify(ok)).toMatchObject({ sub: 'u1' });
    const future = JSON.stringify({ sub: 'u1', iat: nowSec() + tenYears, exp: nowSec() + 60 });
    await expectUnauthenticated(
      byUrl.verify(await asymmetric('ES256', ec.privateKey, 'ec-1', future)),
      /issued in the future/,
    );
    await expectUnauthenticated(byUrl.verify(`${ok}=`), /signature is not canonical base64url/);
    const noExp = await asymmetric('RS256', rsa.privateKey, 'rsa-1', '{"sub":"u1"}');
    await expectUnauthenticated(byUrl.verify(noExp), /has no exp claim/);
  });
  it('accepts an iat within the clock tolerance, refuses one just beyond it', async () => {
    const v = await verifier({ secrets: [SECRET], clockToleranceSec: 30 });
    const at = (iat: number): string => handMade('{"alg":"HS256"}', JSON.stringify({ sub: 'u1', iat, exp: iat + 60 }));
    expect(await v.verify(at(nowSec() + 20))).toMatchObject({ sub: 'u1' });
    await expectUnauthenticated(v.verify(at(nowSec() + 90)), /issued in the future/);
  });
  it('refuses a signature with base64url padding appended (HS256 and every JWKS algorithm)', async () => {
    const good = await hs();
    expect(await secretOnly.verify(good)).toMatchObject({ sub: 'u1' });
    for (const pad of ['=', '==']) {
      await expectUnauthenticated(
        secretOnly.verify(good + pad),
        /^the token is malformed: its signature is not canonical base64url: it ends with "=" padding/,
      );
    }
    const claims = JSON.stringify({ sub: 'u1', exp: nowSec() + 3600 });
    for (const [alg, key, kid] of asymmetricKeys()) {
      const t = await asymmetric(alg, key, kid, claims);
      expect(await jwksOnly.verify(t)).toMatchObject({ sub: 'u1' });
      await expectUnauthenticated(jwksOnly.verify(`${t}=`), /signature is not canonical base64url/);
      const [h, p, sig] = t.split('.');
      await expectUnauthenticated(
        jwksOnly.verify(`${h}.${p}.${respelled(sig!)}`),
        /signature is not canonical base64url.*unused bits/,
      );
    }
  });
  it('refuses a token without exp by default, and accepts it with requireExp: false', async () => {
    const noExp = handMade('{"alg":"HS256"}', JSON.stringify({ sub: 'u1', iat: nowSec() }));
    await expectUnauthenticated(secretOnly.verify(noExp), /^the token has no exp claim/);
    const lax = await verifier({ secrets: [SECRET], requireExp: false });
    expect(await lax.verify(noExp)).toMatchObject({ sub: 'u1' });
  });
  it('iat "now" names the iat claim and its type, not the future', async () => {
    await expectUnauthenticated(
      secretOnly.verify(handMade('{"alg":"HS256"}', JSON.stringify({ iat: 'now', exp: nowSec() + 60 }))),
      /^the token's iat claim must be a number of seconds since 1970 \(a NumericDate, RFC 7519 §2\), got a string "now"$/,
    );
  });
  it('nbf "yesterday" names the nbf claim and its type, not a start time', async () => {
    await expectUnauthenticated(
      secretOnly.verify(handMade('{"alg":"HS256"}', JSON.stringify({ nbf: 'yesterday', exp: nowSec() + 60 }))),
      /^the token's nbf claim must be a number .*got a string "yesterday"$/,
    );
  });
  it('an unknown crit extension names the crit header, not the algorithm', async () => {
    const t = handMade('{"alg":"HS256","crit":["x-ext"],"x-ext":1}', JSON.stringify({ exp: nowSec() + 60 }));
    await expectUnauthenticated(
      secretOnly.verify(t),
      /^the token's crit header names extensions this gateway does not support: "x-ext"; send a token without crit$/,
    );
  });
  it('exp 1e400 (Infinity in JSON) does not make a token that never expires', async () => {
    await expectUnauthenticated(
      secretOnly.verify(handMade('{"alg":"HS256"}', '{"sub":"u1","exp":1e400}')),
      /^the token's exp claim \(Infinity\) is out of range/,
    );
  });
  it('a huge negative exp is a 401, not an exception of the date formatter', async () => {
    await expectUnauthenticated(
      secretOnly.verify(handMade('{"alg":"HS256"}', '{"sub":"u1","exp":-1e300}')),
      /exp claim \(-1e\+300\) is out of range/,
    );
  });
});

describe('crafted tokens: every header, claim and format problem is named', () => {
  const HS = '{"alg":"HS256"}';
  const later = (): number => nowSec() + 3600;
  const claims = (extra: Record<string, unknown> = {}): string => JSON.stringify({ sub: 'u1', exp: later(), ...extra });
  let v: JwtVerifier;
  let strict: JwtVerifier;
  beforeAll(async () => {
    v = await verifier({ secrets: [SECRET] });
    strict = await verifier({ secrets: [SECRET], issuer: 'https://id.example.com', audience: 'fnmesh' });
  });

  const headers: [string, string, RegExp | 'ok'][] = [
    ['typ JWT', '{"alg":"HS256","typ":"JWT"}', 'ok'],
    ['typ at+jwt', '{"alg":"HS256","typ":"at+jwt"}', 'ok'],
    ['typ application/jwt', '{"alg":"HS256","typ":"application/jwt"}', 'ok'],
    ['a kid', '{"alg":"HS256","kid":"k1"}', 'ok'],
    ['b64 true', '{"alg":"HS256","b64":true}', 'ok'],
    ['no alg', '{"typ":"JWT"}', /^the token is malformed: its header has no "alg"/],
    ['a numeric alg', '{"alg":256}', /^the token's alg header must be a string, got a number$/],
    ['alg null', '{"alg":null}', /^the token's alg header must be a string, got null$/],
    ['alg RS256 from a secret-only gateway', '{"alg":"RS256"}', /unsupported algorithm "RS256"/],
    ['alg hs256 (wrong case)', '{"alg":"hs256"}', /unsupported algorithm "hs256": accepted are HS256/],
    [
      'crit naming an extension',
      '{"alg":"HS256","crit":["x-a","x-b"],"x-a":1,"x-b":2}',
      /crit header names extensions this gateway does not support: "x-a", "x-b"/,
    ],
    ['crit naming a registered claim', '{"alg":"HS256","crit":["exp"]}', /crit header names extensions .*"exp"/],
    ['crit b64 with b64 false', '{"alg":"HS256","crit":["b64"],"b64":false}', /crit header names extensions .*"b64"/],
    [
      'an empty crit',
      '{"alg":"HS256","crit":[]}',
      /^the token's crit header must be a non-empty array of header names .*got an array; leave it out$/,
    ],
    ['crit a string', '{"alg":"HS256","crit":"x"}', /crit header must be a non-empty array .*got a string/],
    ['crit with a number', '{"alg":"HS256","crit":[1]}', /crit header must be a non-empty array/],
    [
      'b64 false without crit',
      '{"alg":"HS256","b64":false}',
      /^the token's b64 header is false \(an unencoded payload, RFC 7797\)/,
    ],
    ['b64 a string', '{"alg":"HS256","b64":"no"}', /^the token's b64 header must be a boolean, got a string/],
    ['a numeric kid', '{"alg":"HS256","kid":7}', /^the token's kid header must be a non-empty string, got a number$/],
    ['an empty kid', '{"alg":"HS256","kid":""}', /kid header must be a non-empty string, got an empty string/],
    ['a numeric typ', '{"alg":"HS256","typ":1}', /^the token's typ header must be a string, got a number$/],
    ['typ JOSE', '{"alg":"HS256","typ":"JOSE"}', /^the token's typ header "JOSE" is not a JWT type: use "JWT"/],
    ['cty JWT (nested)', '{"alg":"HS256","cty":"JWT"}', /cty header "JWT" marks a nested JWT/],
    [
      'a header that is an array',
      '[{"alg":"HS256"}]',
      /^the token is malformed: its header must be a JSON object, this one is an array$/,
    ],
    ['a header that is null', 'null', /its header must be a JSON object, this one is null/],
    ['a header that is a string', '"HS256"', /its header must be a JSON object, this one is a string/],
    ['a header that is not JSON', '{"alg":"HS256"', /^the token is malformed: its header is not JSON$/],
  ];
  it.each(headers)('header with %s', async (_n, header, expected) => {
    const t = handMade(header, claims());
    if (expected === 'ok') expect(await v.verify(t)).toMatchObject({ sub: 'u1' });
    else await expectUnauthenticated(v.verify(t), expected);
  });
  it('a header that is not UTF-8', async () => {
    const t = handMade(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), claims());
    await expectUnauthenticated(v.verify(t), /^the token is malformed: its header is not valid UTF-8$/);
  });

  const NUMERIC = /must be a number of seconds since 1970 \(a NumericDate, RFC 7519 §2\)/;
  const payloads: [string, string, RegExp | 'ok'][] = [
    ['a fractional exp', `{"sub":"u1","exp":${nowSec() + 60.5}}`, 'ok'],
    ['iat now and nbf now', claims({ iat: nowSec(), nbf: nowSec() }), 'ok'],
    ['a huge number in a claim the gateway does not read', `{"sub":"u1","n":1e400,"exp":${later()}}`, 'ok'],
    [
      'a payload that is an array',
      '[1,2]',
      /^the token is malformed: its payload must be a JSON object, this one is an array$/,
    ],
    ['a payload that is a number', '42', /its payload must be a JSON object, this one is a number/],
    ['a payload that is not JSON', '{"sub":', /^the token is malformed: its payload is not JSON$/],
    [
      'exp "tomorrow"',
      claims({ exp: 'tomorrow' }),
      new RegExp(`^the token's exp claim ${NUMERIC.source}, got a string "tomorrow"$`),
    ],
    ['exp null', claims({ exp: null }), /^the token's exp claim must be a number .*got null$/],
    ['exp true', claims({ exp: true }), /^the token's exp claim must be a number .*got a boolean true$/],
    ['exp an object', claims({ exp: {} }), /exp claim must be a number .*got an object$/],
    ['exp an array', claims({ exp: [1] }), /exp claim must be a number .*got an array$/],
    ['exp a numeric string', claims({ exp: String(later()) }), /exp claim must be a number .*got a string "\d+"$/],
    [
      'exp beyond the dates',
      claims({ exp: 1e13 }),
      /^the token's exp claim \(10000000000000\) is out of range: a NumericDate is seconds since 1970, at most 8640000000000$/,
    ],
    ['exp 1e400', '{"sub":"u1","exp":1e400}', /exp claim \(Infinity\) is out of range/],
    [
      'exp 1e16 (milliseconds by mistake, and more)',
      claims({ exp: 1e16 }),
      /exp claim \(10000000000000000\) is out of range/,
    ],
    ['an expired fractional exp', claims({ exp: 12.5 }), /^the token expired at 1970-01-01T00:00:12\.500Z$/],
    ['exp in the past, negative', claims({ exp: -1 }), /^the token expired at 1969-12-31T23:59:59\.000Z$/],
    [
      'nbf "yesterday"',
      claims({ nbf: 'yesterday' }),
      /^the token's nbf claim must be a number .*got a string "yesterday"$/,
    ],
    ['nbf 1e400', `{"sub":"u1","nbf":1e400,"exp":${later()}}`, /nbf claim \(Infinity\) is out of range/],
    ['nbf in an hour', claims({ nbf: later() }), /^the token is not yet valid: it is valid from \d{4}-/],
    ['iat "now"', claims({ iat: 'now' }), /^the token's iat claim must be a number .*got a string "now"$/],
    ['iat -1e400', `{"sub":"u1","iat":-1e400,"exp":${later()}}`, /iat claim \(-Infinity\) is out of range/],
    [
      'iat in an hour',
      claims({ iat: later() }),
      /^the token was issued in the future \(iat \d{4}-.*; this gateway's clock reads \d{4}-.*, with 5 s of tolerance\): check the issuer's clock$/,
    ],
    ['a long string iat is cut short', claims({ iat: 'x'.repeat(500) }), /got a string "x{39}…$/],
    [
      'no exp',
      JSON.stringify({ sub: 'u1' }),
      /^the token has no exp claim, and this gateway accepts only tokens that expire \(FNMESH_JWT_REQUIRE_EXP\): issue it with an exp$/,
    ],
    ['exp present but iat bad: the type is named first', claims({ exp: 1, iat: 'now' }), /iat claim must be a number/],
  ];
  it.each(payloads)('payload with %s', async (_n, payload, expected) => {
    const t = handMade(HS, payload);
    if (expected === 'ok') expect(await v.verify(t)).toMatchObject({ sub: 'u1' });
    else await expectUnauthenticated(v.verify(t), expected);
  });
  it('a payload that is not UTF-8', async () => {
    const t = handMade(HS, Buffer.concat([Buffer.from('{"sub":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]));
    await expectUnauthenticated(v.verify(t), /^the token is malformed: its payload is not valid UTF-8$/);
  });

  const issuerAudience: [string, Record<string, unknown>, RegExp | 'ok'][] = [
    ['both right', { iss: 'https://id.example.com', aud: 'fnmesh' }, 'ok'],
    ['an audience list', { iss: 'https://id.example.com', aud: ['x', 'fnmesh'] }, 'ok'],
    [
      'no iss',
      { aud: 'fnmesh' },
      /^the token has no iss claim; this gateway accepts only tokens of its configured issuer$/,
    ],
    ['a numeric iss', { iss: 5, aud: 'fnmesh' }, /^the token's iss claim must be a string, got a number$/],
    [
      'another iss',
      { iss: 'https://evil.example.com', aud: 'fnmesh' },
      /^the token's issuer "https:\/\/evil\.example\.com" is not the one this gateway accepts$/,
    ],
    [
      'no aud',
      { iss: 'https://id.example.com' },
      /^the token has no aud claim; this gateway accepts only tokens whose audience includes its own$/,
    ],
    [
      'a numeric aud',
      { iss: 'https://id.example.com', aud: 5 },
      /^the token's aud claim must be a string or an array of strings, got a number$/,
    ],
    [
      'an aud list with a number',
      { iss: 'https://id.example.com', aud: ['fnmesh', 1] },
      /aud claim must be a string or an array of strings, got an array/,
    ],
    [
      'another aud',
      { iss: 'https://id.example.com', aud: ['billing'] },
      /^the token's audience \["billing"\] does not include the one this gateway accepts$/,
    ],
  ];
  it.each(issuerAudience)('issuer and audience: %s', async (_n, extra, expected) => {
    const t = handMade(HS, claims(extra));
    if (expected === 'ok') expect(await strict.verify(t)).toMatchObject({ sub: 'u1' });
    else await expectUnauthenticated(strict.verify(t), expected);
  });

  // Each segment spelled in a way that decodes to the same bytes but is not the canonical text.
  const HEADER22 = '{"alg":"HS256","ty":1}'; // 22 bytes: its base64url has unused bits to play with
  const segmentCases = (): [string, string, RegExp][] => {
    const h = b64u(HEADER22);
    // A signature with a - or _ in it, so that its base64 spelling differs (about one in four has neither).
    let p = '';
    let good = '';
    for (let n = 0; !/[-_]/.test(good.split('.')[2] ?? ''); n++) {
      p = b64u(claims({ n }));
      good = signedSegments(h, p);
    }
    const sig = good.split('.')[2]!;
    return [
      [
        'header padded',
        signedSegments(`${b64u('{"alg":"HS256","t":"a"}')}=`, p),
        /its header is not canonical base64url: it ends with "=" padding/,
      ],
      [
        'payload padded',
        signedSegments(h, `${b64u(claims({ x: 'ab' }))}==`),
        /its payload is not canonical base64url: it ends with "=" padding/,
      ],
      ['signature padded', `${good}=`, /its signature is not canonical base64url: it ends with "=" padding/],
      [
        'header respelled',
        signedSegments(respelled(h), p),
        /its header is not canonical base64url: it is not canonical: its last character has non-zero unused bits/,
      ],
      ['payload respelled', signedSegments(h, respelled(p)), /its payload is not canonical base64url: .*unused bits/],
      ['signature respelled', `${h}.${p}.${respelled(sig)}`, /its signature is not canonical base64url: .*unused bits/],
      [
        'signature in base64 (+ and /)',
        `${h}.${p}.${Buffer.from(sig, 'base64url').toString('base64').replace(/=+$/, '')}`,
        /signature is not canonical base64url: it contains "[+/]".*\(that is base64; JWTs use base64url, with - and _\)/,
      ],
      [
        'a space in the payload',
        `${h}.${p.slice(0, 4)} ${p.slice(4)}.${sig}`,
        /payload is not canonical base64url: it contains " "/,
      ],
      [
        'a signature of impossible length',
        `${good}AA`,
        /its signature is not canonical base64url: its length \(45\) is not that of any base64url text/,
      ],
      ['an empty header', `.${p}.${sig}`, /^the token is malformed: its header is empty$/],
      ['an empty payload', `${h}..${sig}`, /^the token is malformed: its payload is empty$/],
      ['no signature', `${h}.${p}.`, /^the token is malformed: it has no signature$/],
      ['five segments (a JWE)', 'a.b.c.d.e', /this one has 5 \(five is an encrypted JWE/],
      ['a valid token for contrast', good, /^$/],
    ];
  };
  it('refuses every non-canonical spelling of a segment, and accepts the canonical one', async () => {
    for (const [name, token, message] of segmentCases()) {
      if (message.source === '^$') {
        expect(await v.verify(token)).toMatchObject({ sub: 'u1' });
        continue;
      }
      await expectUnauthenticated(v.verify(token), message).catch((err: unknown) => {
        throw new Error(`${name}: ${String(err)}`);
      });
    }
  });
});
