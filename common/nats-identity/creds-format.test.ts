import fs from 'node:fs';
import { mkdtempSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decode, type User } from '@nats-io/jwt';
import { createAccount } from '@nats-io/nkeys';
import { ConfigError } from '../errors';
import { checkCredsDates, formatCreds, parseCreds } from './creds-format';
import { readCredsFile } from './creds-file';
import { replicaIdentity } from './identity';
import { accountJwt, createMeshTrust, operatorJwt } from './trust-chain';
import { mintUser } from './user-credentials';

const FIX = 'mint new credentials';
const SRC = 'the file x.creds';
const HOUR = 3_600_000;

async function minted(): Promise<Awaited<ReturnType<typeof mintUser>>> {
  return mintUser(createMeshTrust(), replicaIdentity('shop', 'orders'), { ttlMs: HOUR });
}

test('a minted user: signed by the signing key for the account, with its permissions and expiry', async () => {
  const trust = createMeshTrust();
  const now = new Date();
  const user = await mintUser(trust, replicaIdentity('shop', 'orders'), { ttlMs: HOUR, now, responseTtlMs: 5_000 });
  const claims = decode<User>(user.jwt);
  expect(claims.iss).toBe(trust.signingKey.getPublicKey());
  expect(claims.nats.issuer_account).toBe(trust.account.getPublicKey());
  expect(claims.sub).toBe(user.publicKey);
  expect(claims.name).toBe('fnmesh-service-shop-orders');
  expect(claims.exp).toBe(Math.floor((now.getTime() + HOUR) / 1000));
  expect(claims.nats.pub?.allow).toEqual(['fnmesh.gw.shop.orders.>', '$SRV.PING.fnmesh-shop-orders']);
  expect(claims.nats.sub?.allow?.[0]).toBe('fnmesh.call.shop.orders.* fnmesh.shop.orders');
  expect(claims.nats.resp).toEqual({ max: 1, ttl: 5_000 * 1_000_000 });
  expect(claims.nats.bearer_token).toBe(false);
  expect(user.expiresAt.getTime()).toBe(now.getTime() + HOUR);
  expect(Math.abs(user.issuedAt.getTime() - Date.now())).toBeLessThan(60_000);
});

test('a lifetime that is not positive is refused', async () => {
  await expect(mintUser(createMeshTrust(), { kind: 'gateway' }, { ttlMs: 0 })).rejects.toThrow(/positive lifetime/);
});

test('the .creds text is the standard armored format and parses back', async () => {
  const user = await minted();
  expect(user.creds).toMatch(/^-----BEGIN NATS USER JWT-----\n/);
  expect(user.creds).toContain('\n------END NATS USER JWT------\n');
  expect(user.creds).toContain('-----BEGIN USER NKEY SEED-----\n' + user.seed + '\n------END USER NKEY SEED------');
  expect(formatCreds(user.jwt, user.seed)).toBe(user.creds);
  const parsed = parseCreds(user.creds, SRC, FIX);
  expect(parsed).toMatchObject({ jwt: user.jwt, seed: user.seed, publicKey: user.publicKey });
  expect(parsed.expiresAt?.getTime()).toBe(Math.floor(user.expiresAt.getTime() / 1000) * 1000);
});

test('CRLF line ends (a file edited on Windows) still parse', async () => {
  const user = await minted();
  expect(parseCreds(user.creds.replace(/\n/g, '\r\n'), SRC, FIX).jwt).toBe(user.jwt);
});

describe('malformed credentials each say what is wrong, where, and the fix', () => {
  test('not a creds file', () => {
    expect(() => parseCreds('hello', SRC, FIX)).toThrow(
      new ConfigError(`${SRC} is not a NATS credentials file (no "-----BEGIN NATS USER JWT-----" block): ${FIX}`),
    );
  });

  test('no seed', async () => {
    const user = await minted();
    const noSeed = user.creds.slice(0, user.creds.indexOf('-----BEGIN USER NKEY SEED'));
    expect(() => parseCreds(noSeed, SRC, FIX)).toThrow(`${SRC} has no user seed`);
  });

  test('a JWT that is not one', async () => {
    const user = await minted();
    expect(() => parseCreds(user.creds.replace(user.jwt, 'abc.def'), SRC, FIX)).toThrow(
      /holds a malformed user JWT \(invalid jwt - 2 chunks\): mint new credentials$/,
    );
  });

  test('a JWT whose signature fails (tampered claims)', async () => {
    const user = await minted();
    const [h, b, s] = user.jwt.split('.');
    const claims = JSON.parse(Buffer.from(b!, 'base64url').toString()) as { nats: { pub: { allow: string[] } } };
    claims.nats.pub.allow = ['>'];
    const tampered = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    expect(() => parseCreds(user.creds.replace(user.jwt, tampered), SRC, FIX)).toThrow(/sig verification failed/);
  });

  test('an account JWT where a user JWT belongs', async () => {
    const user = await minted();
    const acc = await accountJwt(createMeshTrust());
    expect(() => parseCreds(user.creds.replace(user.jwt, acc), SRC, FIX)).toThrow(
      `${SRC} holds an account JWT where a user JWT belongs: ${FIX}`,
    );
    const op = await operatorJwt(createMeshTrust());
    expect(() => parseCreds(user.creds.replace(user.jwt, op), SRC, FIX)).toThrow(/holds an operator JWT/);
  });

  test('an account seed where the user seed belongs', async () => {
    const user = await minted();
    const accountSeed = new TextDecoder().decode(createAccount().getSeed());
    expect(() => parseCreds(user.creds.replace(user.seed, accountSeed), SRC, FIX)).toThrow(
      `${SRC} has a seed that is an account seed (SA…), where a user seed (SU…) belongs: ${FIX}`,
    );
  });

  test("another user's seed", async () => {
    const user = await minted();
    const other = await minted();
    expect(() => parseCreds(user.creds.replace(user.seed, other.seed), SRC, FIX)).toThrow(
      `${SRC} has a seed that does not belong to its JWT's user ${user.publicKey}: ${FIX}`,
    );
  });
});

test('expired credentials, or a clock far behind, are refused at start', async () => {
  const user = await minted();
  const parsed = parseCreds(user.creds, SRC, FIX);
  expect(() => checkCredsDates(parsed, new Date(), SRC, FIX)).not.toThrow();
  expect(() => checkCredsDates(parsed, new Date(Date.now() + 2 * HOUR), SRC, FIX)).toThrow(
    /holds a user JWT that expired at .*: mint new credentials, or correct the clock if it is wrong/,
  );
});

describe('reading the file', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-creds-'));
  const SETTING = 'FNMESH_NATS_CREDS';

  test('a good file', async () => {
    const user = await minted();
    const file = path.join(dir, 'good.creds');
    writeFileSync(file, user.creds);
    expect(readCredsFile(file, SETTING).publicKey).toBe(user.publicKey);
  });

  test('missing', () => {
    const file = path.join(dir, 'nope.creds');
    expect(() => readCredsFile(file, SETTING)).toThrow(
      new RegExp(
        `^the NATS credentials file ${file} \\(FNMESH_NATS_CREDS\\) does not exist: point FNMESH_NATS_CREDS at`,
      ),
    );
  });

  test('a directory', () => {
    const sub = path.join(dir, 'sub');
    mkdirSync(sub);
    expect(() => readCredsFile(sub, SETTING)).toThrow(/is a directory, not a file: point FNMESH_NATS_CREDS/);
  });

  test('unreadable', () => {
    const file = path.join(dir, 'locked.creds');
    writeFileSync(file, 'x');
    chmodSync(file, 0o000);
    // root reads every file whatever its mode: there, the permission error the kernel would give is simulated.
    const spy =
      process.getuid?.() === 0
        ? jest.spyOn(fs, 'readFileSync').mockImplementation(() => {
            throw Object.assign(new Error(`EACCES: permission denied, open '${file}'`), { code: 'EACCES' });
          })
        : undefined;
    try {
      expect(() => readCredsFile(file, SETTING)).toThrow(/is not readable by this process \(permission denied\)/);
    } finally {
      spy?.mockRestore();
    }
  });

  test('malformed names the file and the setting', () => {
    const file = path.join(dir, 'bad.creds');
    writeFileSync(file, 'garbage');
    expect(() => readCredsFile(file, SETTING)).toThrow(
      new RegExp(`^the NATS credentials file ${file} \\(FNMESH_NATS_CREDS\\) is not a NATS credentials file`),
    );
  });
});
