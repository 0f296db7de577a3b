/**
 * Security on the wire, with the same expectations on the real nats-server (2.9.10, operator mode with a
 * memory resolver) and on fnmesh's embedded broker: decentralized JWT authentication with nonce signatures,
 * user permissions with nats-server's exact error texts, allow_responses, account limits, expiry and
 * revocation; plus the protocol limits nats-server enforces (empty subject tokens, the control line).
 */
import {
  encodeAccount,
  encodeOperator,
  encodeUser,
  createAccount,
  createOperator,
  createUser,
  newScopedSigner,
  type KeyPair,
  type User,
} from '@nats-io/jwt';
import { connect } from '@nats-io/transport-node';
import { BROKER_TARGETS, type BrokerTarget, type RunningBroker } from './helpers/brokers';
import { errors, rawConnect, type RawNats } from './helpers/raw-nats';
import { makeTestPki, type TestPki } from './helpers/tls-certs';

jest.setTimeout(30_000);

const UNLIMITED = { conn: -1, subs: -1, data: -1, payload: -1 };
const NS_PER_MS = 1_000_000;

interface Trust {
  operatorJwt: string;
  accountJwts: string[];
  /** The mesh account: its identity and signing key, users signed by the signing key. */
  account: KeyPair;
  signer: KeyPair;
  /** A scoped signing key of the mesh account: its users get the key's template, whatever they say. */
  scoped: KeyPair;
  limited: KeyPair;
  /** An account whose `data` limit is tiny (nats-server does not enforce `data` on core NATS). */
  dataCapped: KeyPair;
  bare: KeyPair;
  revokedUser: KeyPair;
  reissuedUser: KeyPair;
}

async function makeTrust(): Promise<Trust> {
  const operator = createOperator();
  const operatorSigner = createOperator();
  const operatorJwt = await encodeOperator('fnmesh-test', operator, { signing_keys: [operatorSigner.getPublicKey()] });
  const account = createAccount();
  const signer = createAccount();
  const scoped = createAccount();
  const scope = newScopedSigner(scoped, 'svc', { pub: { allow: ['scoped.>'] }, sub: { allow: ['scoped.>'] } });
  const limited = createAccount();
  const dataCapped = createAccount();
  const bare = createAccount();
  const revokedUser = createUser();
  const reissuedUser = createUser();
  const now = Math.floor(Date.now() / 1000);
  const accountJwts = [
    // signed by the operator's signing key, users signed by the account's signing key
    await encodeAccount(
      'mesh',
      account,
      {
        limits: UNLIMITED,
        signing_keys: [signer.getPublicKey(), scope],
        // JWTs issued at or before the time are revoked: one far ahead, one an hour ago
        revocations: { [revokedUser.getPublicKey()]: now + 3600, [reissuedUser.getPublicKey()]: now - 3600 },
      },
      { signer: operatorSigner },
    ),
    await encodeAccount(
      'limited',
      limited,
      { limits: { conn: 1, subs: 1, data: -1, payload: 16 } },
      { signer: operator },
    ),
    await encodeAccount(
      'data-capped',
      dataCapped,
      { limits: { conn: -1, subs: -1, data: 8, payload: -1 } },
      { signer: operator },
    ),
    // no limits at all: nats-server takes every absent limit as 0
    await encodeAccount('bare', bare, {}, { signer: operator }),
  ];
  return { operatorJwt, accountJwts, account, signer, scoped, limited, dataCapped, bare, revokedUser, reissuedUser };
}

interface UserCreds {
  jwt: string;
  key: KeyPair;
}

async function mintUser(
  t: Trust,
  name: string,
  user: Partial<User>,
  opts: { exp?: number; key?: KeyPair; account?: KeyPair; signer?: KeyPair } = {},
): Promise<UserCreds> {
  const key = opts.key ?? createUser();
  const account = opts.account ?? t.account;
  const signer = opts.signer ?? (account === t.account ? t.signer : undefined);
  const scopedUser = signer !== undefined && signer === t.scoped;
  const jwt = await encodeUser(name, key, account, user, { signer, exp: opts.exp, scopedUser });
  return { jwt, key };
}

function connectLine(creds: UserCreds | undefined, nonce: string, extra: Record<string, unknown> = {}): string {
  const sig = creds ? Buffer.from(creds.key.sign(new TextEncoder().encode(nonce))).toString('base64url') : undefined;
  return (
    'CONNECT ' +
    JSON.stringify({ verbose: false, pedantic: false, protocol: 1, headers: true, jwt: creds?.jwt, sig, ...extra })
  );
}

/** Connects and logs in; the CONNECT is followed by a PING so that acceptance is visible as PONG. */
async function login(
  b: RunningBroker,
  creds: UserCreds | undefined,
  extra: Record<string, unknown> = {},
): Promise<RawNats> {
  const c = await rawConnect(b.port);
  c.send(connectLine(creds, String(c.info().nonce ?? ''), extra), 'PING');
  return c;
}

async function refused(
  b: RunningBroker,
  creds: UserCreds | undefined,
  extra: Record<string, unknown> = {},
): Promise<string[]> {
  const c = await login(b, creds, extra);
  await c.waitClosed();
  expect(c.text()).not.toContain('PONG');
  return errors(c.text());
}

async function accepted(b: RunningBroker, creds: UserCreds): Promise<RawNats> {
  const c = await login(b, creds);
  await c.waitFor('PONG\r\n', 'the server to accept the login');
  expect(errors(c.text())).toEqual([]);
  return c;
}

describe.each(BROKER_TARGETS)('JWT authentication and permissions (%s)', (target: BrokerTarget) => {
  let t: Trust;
  let broker: RunningBroker;
  const open: RawNats[] = [];
  const track = (c: RawNats): RawNats => (open.push(c), c);

  beforeAll(async () => {
    t = await makeTrust();
    broker = await target.start({ operator: { operatorJwt: t.operatorJwt, accountJwts: t.accountJwts } });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('announces auth with a nonce and refuses a client without credentials', async () => {
    const c = await rawConnect(broker.port);
    expect(c.info().auth_required).toBe(true);
    expect(typeof c.info().nonce).toBe('string');
    c.close();
    expect(await refused(broker, undefined)).toEqual(['Authorization Violation']);
  });

  it('accepts a user JWT signed by the account signing key with a valid nonce signature', async () => {
    const c = track(await accepted(broker, await mintUser(t, 'ok', {})));
    c.send('SUB x.y 1', 'PUB x.y 2', 'hi');
    await c.waitFor('MSG x.y 1 2\r\nhi\r\n');
  });

  it('accepts the nonce signature in standard base64 too', async () => {
    const creds = await mintUser(t, 'std64', {});
    const c = track(await rawConnect(broker.port));
    const sig = Buffer.from(creds.key.sign(new TextEncoder().encode(String(c.info().nonce)))).toString('base64');
    c.send(`CONNECT ${JSON.stringify({ verbose: false, jwt: creds.jwt, sig })}`, 'PING');
    await c.waitFor('PONG\r\n');
  });

  it('refuses a bad nonce signature, a missing one, and a JWT without its signature', async () => {
    const creds = await mintUser(t, 'sig', {});
    const other = createUser();
    const c = await rawConnect(broker.port);
    const wrongKeySig = Buffer.from(other.sign(new TextEncoder().encode(String(c.info().nonce)))).toString('base64url');
    c.send(`CONNECT ${JSON.stringify({ verbose: false, jwt: creds.jwt, sig: wrongKeySig })}`, 'PING');
    await c.waitClosed();
    expect(errors(c.text())).toEqual(['Authorization Violation']);
    expect(await refused(broker, { ...creds, jwt: creds.jwt }, { sig: undefined })).toEqual([
      'Authorization Violation',
    ]);
    const tampered = creds.jwt.slice(0, -4) + (creds.jwt.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect(await refused(broker, { ...creds, jwt: tampered })).toEqual(['Authorization Violation']);
  });

  it('refuses a user signed by a key the account does not list, and a user of an unknown account', async () => {
    const rogue = createAccount();
    // claims to belong to the mesh account, signed by a key it never listed
    const forged = await mintUser(t, 'forged', {}, { account: t.account, signer: rogue });
    expect(await refused(broker, forged)).toEqual(['Authorization Violation']);
    const stranger = await mintUser(t, 'stranger', {}, { account: rogue, signer: undefined });
    expect(await refused(broker, stranger)).toEqual(['Authorization Violation']);
  });

  it('refuses an expired user JWT, and closes a connection when its JWT expires', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await refused(broker, await mintUser(t, 'old', {}, { exp: now - 10 }))).toEqual(['Authorization Violation']);
    // valid for a few seconds (JWT times are whole seconds): accepted, then closed when it expires
    const short = await mintUser(t, 'short', {}, { exp: Math.floor(Date.now() / 1000) + 5 });
    const c = track(await login(broker, short));
    await c.waitClosed();
    expect(c.text()).toMatch(/PONG\r\n(PING\r\n)?-ERR 'User Authentication Expired'\r\n$/);
  });

  it('refuses a revoked user and accepts one whose JWT was issued after its revocation', async () => {
    const revoked = await mintUser(t, 'revoked', {}, { key: t.revokedUser });
    expect(await refused(broker, revoked)).toEqual(['Authorization Violation']);
    track(await accepted(broker, await mintUser(t, 'reissued', {}, { key: t.reissuedUser })));
  });

  it("gives a user of a scoped signing key the key's template, and refuses one that claims its own", async () => {
    const claiming = await mintUser(t, 'scoped-claims', { pub: { allow: ['>'] } }, { signer: t.scoped });
    expect(await refused(broker, claiming)).toEqual(['Authorization Violation']);
    const u = await mintUser(t, 'scoped', {}, { signer: t.scoped });
    const c = track(await accepted(broker, u));
    c.send('SUB scoped.a 1', 'SUB other.a 2', 'PUB scoped.a 1', 'x', 'PUB other.a 1', 'y');
    await c.waitFor('MSG scoped.a 1 1\r\nx\r\n');
    await c.roundTrip();
    expect(errors(c.text())).toEqual([
      'Permissions Violation for Subscription to "other.a"',
      'Permissions Violation for Publish to "other.a"',
    ]);
  });

  it('applies src networks and allowed connection types', async () => {
    track(await accepted(broker, await mintUser(t, 'local', { src: ['127.0.0.0/8'] })));
    expect(await refused(broker, await mintUser(t, 'remote', { src: ['10.0.0.0/8'] }))).toEqual([
      'Authorization Violation',
    ]);
    track(await accepted(broker, await mintUser(t, 'std', { allowed_connection_types: ['STANDARD'] })));
    expect(await refused(broker, await mintUser(t, 'ws', { allowed_connection_types: ['WEBSOCKET'] }))).toEqual([
      'Authorization Violation',
    ]);
  });

  it('refuses a bearer token unless the JWT says so, and then needs no signature', async () => {
    const bearer = await mintUser(t, 'bearer', { bearer_token: true });
    const c = track(await rawConnect(broker.port));
    c.send(`CONNECT ${JSON.stringify({ verbose: false, jwt: bearer.jwt })}`, 'PING');
    await c.waitFor('PONG\r\n');
    const plain = await mintUser(t, 'not-bearer', {});
    const d = await rawConnect(broker.port);
    d.send(`CONNECT ${JSON.stringify({ verbose: false, jwt: plain.jwt })}`, 'PING');
    await d.waitClosed();
    expect(errors(d.text())).toEqual(['Authorization Violation']);
  });

  it('applies an account without limits as nats-server does: no connections at all', async () => {
    const u = await mintUser(t, 'bare', {}, { account: t.bare, signer: undefined });
    const errs = await refused(broker, u);
    expect(errs).toEqual(['maximum account active connections exceeded']);
  });

  it("applies the account's connection, subscription and payload limits", async () => {
    const u = await mintUser(t, 'limited', {}, { account: t.limited, signer: undefined });
    const first = track(await accepted(broker, u));
    expect(await refused(broker, u)).toEqual(['maximum account active connections exceeded']);
    first.send('SUB a 1', 'SUB b 2', 'PING');
    await first.waitFor(/PONG\r\n[\s\S]*PONG\r\n/);
    expect(errors(first.text())).toEqual(['maximum subscriptions exceeded']);
    first.send('PUB a 17', 'x'.repeat(17));
    await first.waitClosed();
    expect(errors(first.text())).toEqual(['maximum subscriptions exceeded', 'Maximum Payload Violation']);
  });

  it("does not enforce `data` (bytes), neither the account's nor the user's: only subs and payload apply to a connection", async () => {
    // nats-server 2.9 applies a JWT's subs and payload per connection (client.go applyAccountLimits) and
    // leaves data (a JetStream-era account-wide byte budget) unenforced for core NATS; so does the broker
    const u = await mintUser(t, 'data-capped', { data: 8 }, { account: t.dataCapped, signer: undefined });
    const c = track(await accepted(broker, u));
    const pubs = Array.from({ length: 4 }, (_v, i) => [`PUB d 16`, String(i).repeat(16)]).flat();
    c.send('SUB d 1', ...pubs);
    await c.roundTrip();
    await c.waitFor(/(MSG d 1 16\r\n[0-9]{16}\r\n[\s\S]*){4}/, 'four 16-byte messages');
    expect(errors(c.text())).toEqual([]);
    expect(c.closed()).toBe(false);
  });

  describe('permissions', () => {
    let gateway: RawNats;
    beforeAll(async () => {
      gateway = await accepted(broker, await mintUser(t, 'gateway', {}));
    });
    afterAll(() => gateway.close());

    const service = (): Promise<UserCreds> =>
      mintUser(t, 'svc', {
        pub: { allow: ['fnmesh.gw.ns.svc.>'], deny: ['fnmesh.gw.ns.svc.secret'] },
        sub: { allow: ['fnmesh.call.ns.svc.* fnmesh.ns.svc', '_INBOX_svc.>'] },
        resp: { max: 1, ttl: 60_000 * NS_PER_MS },
      });

    it('refuses publishing outside the allow list or inside the deny list, with the exact text', async () => {
      const c = track(await accepted(broker, await service()));
      c.send(
        'PUB fnmesh.call.ns.other.fn 1',
        'x',
        'PUB fnmesh.gw.ns.svc.secret 1',
        'x',
        'PUB fnmesh.gw.ns.svc.ok 1',
        'x',
      );
      await c.roundTrip();
      await c.roundTrip();
      expect(errors(c.text())).toEqual([
        'Permissions Violation for Publish to "fnmesh.call.ns.other.fn"',
        'Permissions Violation for Publish to "fnmesh.gw.ns.svc.secret"',
      ]);
      expect(c.closed()).toBe(false);
    });

    it('refuses subscriptions outside the allow list and queue groups other than the allowed one', async () => {
      const c = track(await accepted(broker, await service()));
      c.send(
        'SUB fnmesh.call.> 1',
        'SUB fnmesh.call.ns.svc.a 2',
        'SUB fnmesh.call.ns.svc.a fnmesh.ns.other 3',
        'SUB fnmesh.call.ns.svc.a fnmesh.ns.svc 4',
        'SUB _INBOX.> 5',
        'SUB _INBOX_svc.x 6',
      );
      await c.roundTrip();
      await c.roundTrip();
      expect(errors(c.text())).toEqual([
        'Permissions Violation for Subscription to "fnmesh.call.>"',
        'Permissions Violation for Subscription to "fnmesh.call.ns.svc.a"',
        'Permissions Violation for Subscription to "fnmesh.call.ns.svc.a" using queue "fnmesh.ns.other"',
        'Permissions Violation for Subscription to "_INBOX.>"',
      ]);
      // the allowed queue subscription works
      gateway.send('PUB fnmesh.call.ns.svc.a 2', 'hi');
      await c.waitFor('MSG fnmesh.call.ns.svc.a 4 2\r\nhi\r\n');
    });

    it('lets a replier answer a request it received once, and nothing else', async () => {
      const c = track(await accepted(broker, await service()));
      c.send('SUB fnmesh.call.ns.svc.fn fnmesh.ns.svc 1');
      await c.roundTrip();
      gateway.send('SUB _INBOX.gw.1 9', 'SUB _INBOX.gw.other 10');
      await gateway.roundTrip();
      gateway.send('PUB fnmesh.call.ns.svc.fn _INBOX.gw.1 3', 'req');
      await c.waitFor('MSG fnmesh.call.ns.svc.fn 1 _INBOX.gw.1 3\r\nreq\r\n');
      c.send('PUB _INBOX.gw.1 3', 'one', 'PUB _INBOX.gw.1 3', 'two', 'PUB _INBOX.gw.other 3', 'odd');
      await c.roundTrip();
      await gateway.waitFor('MSG _INBOX.gw.1 9 3\r\none\r\n');
      await gateway.roundTrip();
      expect(gateway.text()).not.toContain('two');
      expect(gateway.text()).not.toContain('odd');
      expect(errors(c.text())).toEqual([
        'Permissions Violation for Publish to "_INBOX.gw.1"',
        'Permissions Violation for Publish to "_INBOX.gw.other"',
      ]);
    });

    it('does not deliver to a wildcard subscription what the deny list excludes', async () => {
      const watcher = await mintUser(t, 'watcher', { sub: { allow: ['app.>'], deny: ['app.secret.>'] } });
      const c = track(await accepted(broker, watcher));
      c.send('SUB app.> 1', 'SUB app.secret.x 2');
      await c.roundTrip();
      expect(errors(c.text())).toEqual(['Permissions Violation for Subscription to "app.secret.x"']);
      gateway.send('PUB app.secret.x 6', 'hidden', 'PUB app.open.x 4', 'seen');
      await c.waitFor('MSG app.open.x 1 4\r\nseen\r\n');
      expect(c.text()).not.toContain('hidden');
    });
  });
});

describe.each(BROKER_TARGETS)('protocol limits as nats-server has them (%s)', (target: BrokerTarget) => {
  let broker: RunningBroker;
  beforeAll(async () => {
    broker = await target.start();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('refuses subscriptions to subjects with empty tokens', async () => {
    const c = await rawConnect(broker.port);
    c.send('CONNECT {"verbose":false,"pedantic":false}', 'SUB a..b 1', 'SUB .a 2', 'SUB a. 3', 'SUB a.b 4');
    await c.roundTrip();
    expect(errors(c.text())).toEqual(['Invalid Subject', 'Invalid Subject', 'Invalid Subject']);
    c.close();
  });

  it('delivers nothing published to a subject with empty tokens, and says so to a pedantic client', async () => {
    const sub = await rawConnect(broker.port);
    sub.send('CONNECT {"verbose":false,"pedantic":false}', 'SUB > 1');
    await sub.roundTrip();
    const pub = await rawConnect(broker.port);
    pub.send('CONNECT {"verbose":false,"pedantic":false}', 'PUB a..b 1', 'x', 'PUB .a 1', 'y', 'PUB a. 1', 'z');
    await pub.roundTrip();
    const pedantic = await rawConnect(broker.port);
    pedantic.send('CONNECT {"verbose":false,"pedantic":true}', 'PUB a..b 1', 'p');
    await pedantic.roundTrip();
    expect(errors(pedantic.text())).toEqual(['Invalid Publish Subject']);
    pub.send('PUB a.b 2', 'ok');
    await sub.waitFor('MSG a.b 1 2\r\nok\r\n');
    expect(sub.text()).not.toMatch(/MSG (a\.\.b|\.a|a\.) /);
    for (const c of [sub, pub, pedantic]) c.close();
  });

  it('limits the CONNECT line like every control line: 4096 bytes of arguments', async () => {
    const fits = await rawConnect(broker.port);
    const name = (n: number): string => 'a'.repeat(n - '{"verbose":false,"name":""}'.length);
    fits.send(`CONNECT {"verbose":false,"name":"${name(4096)}"}`);
    await fits.roundTrip();
    fits.close();
    const over = await rawConnect(broker.port);
    over.send(`CONNECT {"verbose":false,"name":"${name(4097)}"}`);
    await over.waitClosed();
    expect(errors(over.text())).toEqual(['maximum control line exceeded']);
  });
});

describe.each(BROKER_TARGETS)('TLS with client certificates (%s)', (target: BrokerTarget) => {
  let pki: TestPki;
  let broker: RunningBroker;
  beforeAll(async () => {
    pki = makeTestPki();
    broker = await target.start({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caFile } });
  });
  afterAll(async () => {
    await broker?.stop();
    pki?.remove();
  });

  it('requires TLS in INFO and serves a client that trusts the CA and presents its certificate', async () => {
    const raw = await rawConnect(broker.port);
    expect(raw.info().tls_required).toBe(true);
    raw.close();
    const nc = await connect({
      servers: broker.url,
      reconnect: false,
      tls: { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey },
    });
    const sub = nc.subscribe('tls.check', { max: 1 });
    nc.publish('tls.check', 'over tls');
    for await (const m of sub) expect(m.string()).toBe('over tls');
    await nc.close();
  });

  it('refuses a client without a certificate, one that does not trust the CA, and plain text', async () => {
    await expect(
      connect({ servers: broker.url, reconnect: false, timeout: 5_000, tls: { caFile: pki.caFile } }),
    ).rejects.toThrow();
    await expect(
      connect({
        servers: broker.url,
        reconnect: false,
        timeout: 5_000,
        tls: { caFile: pki.otherCaFile, certFile: pki.clientCert, keyFile: pki.clientKey },
      }),
    ).rejects.toThrow();
    const plain = await rawConnect(broker.port);
    plain.send('CONNECT {"verbose":false}', 'PING');
    await plain.waitClosed();
    expect(plain.text()).not.toContain('PONG');
  });

  it('drops a client that never starts the TLS handshake', async () => {
    const idle = await rawConnect(broker.port);
    await idle.waitClosed();
  });
});
