import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DELEGATION_KEY_MIN_BYTES, DelegationTokens, loadDelegationTokens } from './delegation';

const KEY = Buffer.alloc(DELEGATION_KEY_MIN_BYTES, 7);
const grant = { rid: 'call-1', aud: 'shop/cart', dl: 10_000, auth: { sub: 'u1', roles: ['a'] } };
const use = { caller: 'shop/cart', parentId: 'call-1', now: 5_000 };

describe('DelegationTokens', () => {
  const tokens = new DelegationTokens(KEY);

  test('round-trips the claims for the service it was issued to, within its call, before the deadline', () => {
    expect(tokens.verify(tokens.issue(grant), use)).toEqual(grant.auth);
  });

  test.each([
    [
      'another service',
      { ...use, caller: 'shop/other' },
      'was issued to shop/cart, not to the calling service shop/other',
    ],
    ['another call', { ...use, parentId: 'call-2' }, 'belongs to call call-1, not to call call-2'],
    ['no parent call', { ...use, parentId: undefined }, 'names no inbound call'],
    ['at the deadline', { ...use, now: 10_000 }, 'expired with the deadline of call call-1, 0 ms ago'],
    ['after the deadline', { ...use, now: 12_500 }, 'expired with the deadline of call call-1, 2500 ms ago'],
  ])('refuses a token used by %s', (_what, u, message) => {
    expect(() => tokens.verify(tokens.issue(grant), u)).toThrow(message);
  });

  test('refuses a token of another key, an altered payload, and malformed ones', () => {
    const other = DelegationTokens.generate().issue(grant);
    expect(() => tokens.verify(other, use)).toThrow('was not issued by this mesh');
    const [v, , mac] = tokens.issue(grant).split('.');
    const forged = Buffer.from(JSON.stringify({ ...grant, auth: { sub: 'admin' } })).toString('base64url');
    expect(() => tokens.verify(`${v}.${forged}.${mac}`, use)).toThrow('was not issued by this mesh');
    const good = tokens.issue(grant);
    for (const bad of ['', 'v1', 'v1.', 'v1..', 'v2' + good.slice(2), `${good}=`, good.replace('.', '.+'), 'x.y.z']) {
      expect(() => tokens.verify(bad, use)).toThrow(/delegation token of this internal call (is malformed|was not)/);
    }
    // A validly signed payload of the wrong shape is refused, not trusted.
    const t = tokens as unknown as { mac(s: string): string };
    const shapeless = `v1.${Buffer.from('{"rid":"call-1","aud":"shop/cart","dl":"soon","auth":{}}').toString('base64url')}`;
    expect(() => tokens.verify(`${shapeless}.${t.mac(shapeless)}`, use)).toThrow('is malformed');
  });

  test('errors are 401s', () => {
    try {
      tokens.verify('garbage', use);
      throw new Error('not refused');
    } catch (err) {
      expect((err as { status?: number }).status).toBe(401);
    }
  });

  test('forCall binds the target service, request id and remaining time', () => {
    const before = Date.now();
    const token = tokens.forCall({ namespace: 'shop', service: 'cart' }, 'r-7', { sub: 'u' }, 1000);
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as typeof grant;
    expect(payload).toMatchObject({ rid: 'r-7', aud: 'shop/cart', auth: { sub: 'u' } });
    expect(payload.dl).toBeGreaterThanOrEqual(before + 1000);
    expect(payload.dl).toBeLessThanOrEqual(Date.now() + 1000);
  });

  test('refuses a key shorter than the minimum', () => {
    expect(() => new DelegationTokens(Buffer.alloc(DELEGATION_KEY_MIN_BYTES - 1))).toThrow(/at least 32/);
  });
});

describe('loadDelegationTokens', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-delegation-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('reads the key file (a trailing newline is not part of the key); two gateways with it agree', () => {
    const file = path.join(dir, 'key');
    writeFileSync(file, `${'k'.repeat(40)}\n`);
    const a = loadDelegationTokens(file, 'FNMESH_DELEGATION_KEY_FILE');
    const b = loadDelegationTokens(file, 'FNMESH_DELEGATION_KEY_FILE');
    expect(b.verify(a.issue(grant), use)).toEqual(grant.auth);
    expect(new DelegationTokens(Buffer.from('k'.repeat(40))).verify(a.issue(grant), use)).toEqual(grant.auth);
  });

  test('without a file, each gateway has a random key of its own', () => {
    const a = loadDelegationTokens(undefined, 'X');
    expect(() => loadDelegationTokens(undefined, 'X').verify(a.issue(grant), use)).toThrow('was not issued');
  });

  test('a missing or short key file fails naming the setting, the file and the fix', () => {
    expect(() => loadDelegationTokens(path.join(dir, 'absent'), 'FNMESH_DELEGATION_KEY_FILE')).toThrow(
      /FNMESH_DELEGATION_KEY_FILE: cannot read the delegation key file .*absent \(ENOENT\): mount the Secret/,
    );
    const short = path.join(dir, 'short');
    writeFileSync(short, 'tooshort\n');
    expect(() => loadDelegationTokens(short, 'FNMESH_DELEGATION_KEY_FILE')).toThrow(
      /has 8 bytes; it needs at least 32: write one with `openssl rand -base64 48/,
    );
  });
});
