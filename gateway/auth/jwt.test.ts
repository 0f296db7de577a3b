import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { ConfigError, FnmeshError } from '../../common/errors';
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
function handMade(header: string, payload: string, secret = SECRET): string {
  const input = `${b64u(header)}.${b64u(payload)}`;
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
    ['bad base64 header', '%%%.e30.sig', /header is not base64url-encoded JSON/],
    ['bad JSON header', `${b64u('{alg:HS256')}.e30.sig`, /header is not base64url-encoded JSON/],
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
    await expectUnauthenticated(v.verify(await hs({})), /issuer null is not the one/);
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
