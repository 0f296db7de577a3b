/** The JWT decisions, in nats-server's order: trust chain, dates, signature, revocation, restrictions, limits. */
import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  newScopedSigner,
  type KeyPair,
  type User,
} from '@nats-io/jwt';
import { isRevoked, JwtAuthenticator } from './jwt-auth';

const UNLIMITED = { conn: -1, subs: -1, data: -1, payload: -1 };
const NONCE = 'bm9uY2Utbm9uY2U';

function sign(key: KeyPair, nonce = NONCE): string {
  return Buffer.from(key.sign(new TextEncoder().encode(nonce))).toString('base64url');
}

describe('JwtAuthenticator', () => {
  let operator: KeyPair;
  let account: KeyPair;
  let signer: KeyPair;
  let scoped: KeyPair;
  let auth: JwtAuthenticator;

  beforeAll(async () => {
    operator = createOperator();
    account = createAccount();
    signer = createAccount();
    scoped = createAccount();
    const scope = newScopedSigner(scoped, 'svc', { pub: { allow: ['only.this'] }, subs: 5, payload: 100 });
    const accountJwt = await encodeAccount(
      'mesh',
      account,
      { limits: { ...UNLIMITED, subs: 50, payload: 1000 }, signing_keys: [signer.getPublicKey(), scope] },
      { signer: operator },
    );
    auth = new JwtAuthenticator([await encodeOperator('op', operator)], [accountJwt]);
  });

  const user = async (u: Partial<User> = {}, opts: { key?: KeyPair; by?: KeyPair; nbf?: number } = {}) => {
    const key = opts.key ?? createUser();
    const jwt = await encodeUser('u', key, account, u, {
      signer: opts.by ?? signer,
      nbf: opts.nbf,
      scopedUser: opts.by === scoped,
    });
    return { key, jwt };
  };

  it('accepts a user of the account and takes the tighter of user and account limits', async () => {
    const u = await user({ subs: 10, payload: -1 });
    const r = auth.authenticate({ jwt: u.jwt, sig: sign(u.key) }, NONCE, '127.0.0.1');
    expect(r).toMatchObject({ ok: true, limits: { subs: 10, payload: 1000 }, expiresAt: undefined });
  });

  it('refuses a signature of another nonce', async () => {
    const u = await user();
    expect(auth.authenticate({ jwt: u.jwt, sig: sign(u.key, 'other') }, NONCE, '127.0.0.1')).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/signature/),
    });
  });

  it('refuses a JWT that is not valid yet', async () => {
    const u = await user({}, { nbf: Math.floor(Date.now() / 1000) + 600 });
    expect(auth.authenticate({ jwt: u.jwt, sig: sign(u.key) }, NONCE, '127.0.0.1')).toMatchObject({
      ok: false,
      reason: 'user JWT is not yet valid',
    });
  });

  it('applies the template of a scoped signing key instead of what the user JWT says', async () => {
    const u = await user({}, { by: scoped });
    const r = auth.authenticate({ jwt: u.jwt, sig: sign(u.key) }, NONCE, '127.0.0.1');
    expect(r).toMatchObject({
      ok: true,
      limits: { subs: 5, payload: 100 },
      permissions: { publish: { allow: ['only.this'] } },
    });
  });

  it('checks src networks against the client address', async () => {
    const u = await user({ src: ['10.0.0.0/8', '127.0.0.1/32'] });
    expect(auth.authenticate({ jwt: u.jwt, sig: sign(u.key) }, NONCE, '::ffff:127.0.0.1').ok).toBe(true);
    expect(auth.authenticate({ jwt: u.jwt, sig: sign(u.key) }, NONCE, '192.168.1.2').ok).toBe(false);
  });

  it('refuses what it does not enforce (time windows) and connection types other than standard', async () => {
    const timed = await user({ times: [{ start: '09:00:00', end: '17:00:00' }] });
    expect(auth.authenticate({ jwt: timed.jwt, sig: sign(timed.key) }, NONCE, '127.0.0.1')).toMatchObject({
      ok: false,
    });
    const ws = await user({ allowed_connection_types: ['WEBSOCKET'] });
    expect(auth.authenticate({ jwt: ws.jwt, sig: sign(ws.key) }, NONCE, '127.0.0.1')).toMatchObject({ ok: false });
  });

  it('reads allow_responses with nats-server units (ttl in nanoseconds)', async () => {
    const u = await user({ resp: { max: 3, ttl: 5_000_000_000 } });
    const r = auth.authenticate({ jwt: u.jwt, sig: sign(u.key) }, NONCE, '127.0.0.1');
    expect(r).toMatchObject({ ok: true, permissions: { responses: { max: 3, ttlMs: 5000 } } });
  });

  it('fails at start on an account its operator did not sign, and on something that is no operator', async () => {
    const stranger = await encodeAccount('x', createAccount(), {}, { signer: createOperator() });
    expect(() => new JwtAuthenticator([operator.getPublicKey()], [stranger])).toThrow(
      /not signed by a trusted operator/,
    );
    expect(() => new JwtAuthenticator(['nonsense'], [])).toThrow(/neither an operator JWT nor an operator public key/);
  });
});

describe('isRevoked', () => {
  it('revokes JWTs issued at or before the revocation time, for the user or for all (*)', () => {
    expect(isRevoked({ U1: 100 }, 'U1', 100)).toBe(true);
    expect(isRevoked({ U1: 100 }, 'U1', 101)).toBe(false);
    expect(isRevoked({ '*': 100 }, 'U2', 99)).toBe(true);
    expect(isRevoked(undefined, 'U1', 1)).toBe(false);
  });
});
