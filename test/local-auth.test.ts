/**
 * Issue 11 against a fresh `fnmesh local` (the built CLI, the real examples, the embedded broker): every part
 * is its own NATS user. An attacker on the NATS port without credentials is refused; one holding a
 * service's own credentials (read from the mesh's private directory, as a function on this machine could)
 * can neither call another function directly, read anyone's traffic, join another queue group, nor forge
 * the caller or the end user's claims through the gateway; calls through the gateway work. Also: an
 * external NATS (nats-server) trusting the mesh's trust directory, and the start-up refusals.
 *
 * Needs `npm run build` first (`npm test` does it).
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { credsAuthenticator, errors as natsErrors, headers, type NatsConnection } from '@nats-io/nats-core';
import { createAccount } from '@nats-io/nkeys';
import { parse, stringify } from 'yaml';
import { internalCallSubject, NATS_HEADERS, serviceCallWildcard, serviceQueueGroup } from '../common/protocol';
import {
  createMeshTrust,
  inboxPrefix,
  meshTrustSeeds,
  replicaIdentity,
  type MeshIdentity,
} from '../common/nats-identity';
import { startLocalMesh } from '../local';
import { ROOT, startCli, type CliProcess } from './helpers/cli-process';
import { startNatsServer, type RunningNatsServer } from './helpers/nats-server';
import { freePort } from './helpers/ports';
import { waitFor } from './helpers/wait';

jest.setTimeout(120_000);

const enc = new TextEncoder();
const dec = new TextDecoder();
type ReplicaIdentity = MeshIdentity & { kind: 'replica' };
const GREETER = replicaIdentity('default', 'greeter') as ReplicaIdentity;
const AUTHZ = replicaIdentity('default', 'authz') as ReplicaIdentity;

function copyExamples(dir: string): void {
  for (const name of ['greeter.yaml', 'text.yaml', 'authz.yaml']) {
    const doc = parse(readFileSync(path.join(ROOT, 'examples', name), 'utf8')) as { spec: { local: { cwd?: string } } };
    doc.spec.local.cwd = path.resolve(ROOT, 'examples', doc.spec.local.cwd ?? '.');
    writeFileSync(path.join(dir, name), stringify(doc));
  }
}

interface LocalRun {
  cli: CliProcess;
  gateway: string;
  natsUrl: string;
  usersDir: string;
  token: string;
}

async function waitLine(cli: CliProcess, re: RegExp, what: string): Promise<RegExpExecArray> {
  return waitFor(
    () => {
      if (cli.child.exitCode !== null)
        throw new Error(`fnmesh local exited (${cli.child.exitCode}):\n${cli.lines.slice(-30).join('\n')}`);
      for (const line of cli.lines) {
        const m = re.exec(line);
        if (m) return m;
      }
      return undefined;
    },
    { timeoutMs: 60_000, intervalMs: 25, what },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- last output ---\n${cli.lines.slice(-30).join('\n')}`);
  });
}

async function startLocal(dir: string, extraEnv: Record<string, string> = {}): Promise<LocalRun> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FNMESH_LISTEN: `127.0.0.1:${port}`,
    FNMESH_OPS_LISTEN: '127.0.0.1:0',
    FNMESH_BROKER_PORT: String(await freePort()),
    NO_COLOR: '1',
  };
  delete env.FNMESH_NATS_URL;
  const cli = startCli(['local', dir], { ...env, ...extraEnv });
  await waitLine(cli, /^curl /, 'the banner');
  const natsUrl = (await waitLine(cli, /^\s+broker\s+(nats:\/\/\S+)/, 'the broker line'))[1]!;
  const usersDir = (await waitLine(cli, /^\s+nats users (\S+)/, 'the NATS users line'))[1]!;
  const token = (await waitLine(cli, /authorization: Bearer ([A-Za-z0-9_.-]+)/, 'the signed-in curl'))[1]!;
  return { cli, gateway: `http://127.0.0.1:${port}`, natsUrl, usersDir, token };
}

async function stopLocal(run: LocalRun | undefined): Promise<void> {
  if (!run || run.cli.child.exitCode !== null) return;
  run.cli.child.kill('SIGINT');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([run.cli.exit, new Promise((r) => (timer = setTimeout(r, 20_000)))]);
  clearTimeout(timer);
  if (run.cli.child.exitCode === null) run.cli.child.kill('SIGKILL');
}

async function call(
  gateway: string,
  route: string,
  params: unknown,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gateway}/v1/api/default/functions/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ params }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('fnmesh local: every part its own NATS user (embedded broker)', () => {
  let dir: string;
  let run: LocalRun;
  const conns: NatsConnection[] = [];
  const refusals = new WeakMap<NatsConnection, string[]>();

  /** A connection with the `.creds` the mesh minted for `identity`'s service, read from its private directory. */
  async function as(identity: ReplicaIdentity): Promise<NatsConnection> {
    const file = path.join(run.usersDir, `service.${identity.namespace}.${identity.service}.creds`);
    const nc = await connect({
      servers: run.natsUrl,
      authenticator: credsAuthenticator(new Uint8Array(readFileSync(file))),
      inboxPrefix: inboxPrefix(identity),
      reconnect: false,
    });
    const list: string[] = [];
    refusals.set(nc, list);
    void (async () => {
      for await (const s of nc.status())
        if (s.type === 'error' && s.error instanceof natsErrors.PermissionViolationError) list.push(String(s.error));
    })();
    conns.push(nc);
    return nc;
  }

  async function expectPublishRefused(nc: NatsConnection, subject: string): Promise<void> {
    nc.publish(subject, enc.encode('{"name":"Ada"}'), { reply: `${inboxPrefix(GREETER)}.attack` });
    await nc.flush();
    await new Promise((r) => setImmediate(r));
    expect(refusals.get(nc)).toContainEqual(
      expect.stringContaining(`Permissions Violation for Publish to "${subject}"`),
    );
  }

  async function expectSubscribeRefused(nc: NatsConnection, subject: string, queue?: string): Promise<void> {
    const sub = nc.subscribe(subject, queue ? { queue } : {});
    let closed: unknown = 'still open';
    void sub.closed.then((v) => (closed = v));
    await nc.flush();
    await new Promise((r) => setImmediate(r));
    expect(String(closed)).toContain(`Permissions Violation for Subscription to "${subject}"`);
  }

  /** An internal call as `caller` (its own fnmesh.gw subject), with whatever headers it likes; the raw reply. */
  async function internalCall(
    nc: NatsConnection,
    caller: ReplicaIdentity,
    target: { service: string; fn: string },
    params: unknown,
    forged: Record<string, string> = {},
  ): Promise<{ status: number; body: unknown }> {
    const h = headers();
    for (const [k, v] of Object.entries(forged)) h.set(k, v);
    const subject = internalCallSubject(
      { namespace: caller.namespace, service: caller.service },
      { namespace: 'default', service: target.service, function: target.fn },
    );
    const reply = await nc.request(subject, enc.encode(JSON.stringify(params)), { timeout: 10_000, headers: h });
    const status = reply.headers?.get(NATS_HEADERS.status);
    return { status: status ? Number(status) : 200, body: JSON.parse(dec.decode(reply.data)) as unknown };
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-local-auth-'));
    copyExamples(dir);
    run = await startLocal(dir);
  });

  afterEach(async () => {
    await Promise.all(conns.splice(0).map((nc) => nc.close().catch(() => undefined)));
  });

  afterAll(async () => {
    await stopLocal(run);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a plain NATS client without credentials is refused', async () => {
    await expect(connect({ servers: run.natsUrl, reconnect: false })).rejects.toThrow(/Authorization Violation/);
  });

  test('the private directory is 0700 and every file in it 0600', () => {
    expect(statSync(run.usersDir).mode & 0o777).toBe(0o700);
    for (const f of ['operator.jwt', 'account.jwt', 'gateway.creds', 'observer.creds', 'service.default.greeter.creds'])
      expect(statSync(path.join(run.usersDir, f)).mode & 0o777).toBe(0o600);
  });

  test('calls through the gateway work, nested ones too (greeter.shout → text.upper, welcome → authz.canGreet, admin with the token)', async () => {
    expect(await call(run.gateway, 'greeter/hello', { name: 'Ada' })).toEqual({
      status: 200,
      body: { result: { greeting: 'Hello, Ada!' } },
    });
    expect(await call(run.gateway, 'greeter/shout', { name: 'Ada' })).toEqual({
      status: 200,
      body: { result: { greeting: 'HELLO, ADA!', via: 'default/text.upper' } },
    });
    expect((await call(run.gateway, 'greeter/welcome', { name: 'Ada' })).status).toBe(200);
    expect((await call(run.gateway, 'greeter/welcome', { name: 'Mallory' })).status).toBe(403);
    expect(await call(run.gateway, 'greeter/admin', {}, run.token)).toMatchObject({
      status: 200,
      body: { result: { welcome: 'admin ada', role: 'admin' } },
    });
    expect((await call(run.gateway, 'greeter/admin', {})).status).toBe(401);
  });

  test("a service's credentials cannot call any function directly, not another service's nor its own", async () => {
    const greeter = await as(GREETER);
    await expectPublishRefused(greeter, 'fnmesh.call.default.authz.canGreet');
    await expectPublishRefused(greeter, 'fnmesh.call.default.greeter.admin');
  });

  test("a service's credentials cannot read the mesh's traffic: fnmesh.call.>, fnmesh.gw.>, _INBOX.>, another inbox", async () => {
    const greeter = await as(GREETER);
    await expectSubscribeRefused(greeter, 'fnmesh.call.>');
    await expectSubscribeRefused(greeter, 'fnmesh.gw.>');
    await expectSubscribeRefused(greeter, '_INBOX.>');
    await expectSubscribeRefused(greeter, `${inboxPrefix({ kind: 'gateway' })}.>`);
  });

  test("a service's credentials cannot join another service's queue group, nor take its calls outside one", async () => {
    const greeter = await as(GREETER);
    await expectSubscribeRefused(greeter, serviceCallWildcard('default', 'text'), serviceQueueGroup('default', 'text'));
    await expectSubscribeRefused(greeter, serviceCallWildcard('default', 'greeter'));
  });

  test('forged Fnmesh-Caller / Fnmesh-Claims / Fnmesh-Delegation on its own fnmesh.gw subject change nothing', async () => {
    // The control: greeter, on its own subject, is let into text.upper (its rule admits default/greeter).
    const greeter = await as(GREETER);
    expect(await internalCall(greeter, GREETER, { service: 'text', fn: 'upper' }, { text: 'abc' })).toMatchObject({
      status: 200,
      body: { text: 'ABC' },
    });
    // authz claims to be greeter, and to carry an admin's verified claims: the gateway takes the caller from
    // the subject and claims only from a delegation token it signed.
    const authz = await as(AUTHZ);
    const forged = {
      [NATS_HEADERS.caller]: 'default/greeter',
      [NATS_HEADERS.claims]: JSON.stringify({ sub: 'root', role: 'admin', adminUntil: '2999-01-01T00:00:00Z' }),
      [NATS_HEADERS.delegation]: 'forged.delegation.token',
    };
    expect((await internalCall(authz, AUTHZ, { service: 'text', fn: 'upper' }, { text: 'abc' }, forged)).status).toBe(
      401,
    );
    expect((await internalCall(authz, AUTHZ, { service: 'greeter', fn: 'whoami' }, {}, forged)).status).toBe(401);
    const { [NATS_HEADERS.delegation]: _d, ...withoutToken } = forged;
    expect((await internalCall(authz, AUTHZ, { service: 'greeter', fn: 'admin' }, {}, withoutToken)).status).toBe(401);
  });
});

describe('fnmesh local with your own NATS (nats-server trusting FNMESH_LOCAL_NATS_TRUST_DIR)', () => {
  let dir: string;
  let trustDir: string;
  let server: RunningNatsServer | undefined;
  let run: LocalRun | undefined;

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-local-byo-'));
    trustDir = path.join(dir, 'trust');
    copyExamples(dir);
  });

  afterAll(async () => {
    await stopLocal(run);
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a first run writes the trust chain and nats-server.conf; with that config, the mesh works and refuses anonymous clients', async () => {
    const port = await freePort();
    const natsUrl = `nats://127.0.0.1:${port}`;
    // first, with nothing listening yet: the trust directory is created, and the mesh waits for the server
    const first = startCli(['local', dir], {
      ...process.env,
      FNMESH_LISTEN: `127.0.0.1:${await freePort()}`,
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_NATS_URL: natsUrl,
      FNMESH_LOCAL_NATS_TRUST_DIR: trustDir,
      NO_COLOR: '1',
    });
    await waitLine(first, /created a NATS trust chain in .*include .*nats-server\.conf/, 'the trust chain message');
    first.child.kill('SIGKILL');
    await first.exit;
    for (const f of ['operator.nk', 'account.nk', 'signing-key.nk', 'nats-server.conf'])
      expect(statSync(path.join(trustDir, f)).mode & 0o777).toBe(0o600);
    server = await startNatsServer({ port, config: readFileSync(path.join(trustDir, 'nats-server.conf'), 'utf8') });
    run = await startLocal(dir, { FNMESH_NATS_URL: natsUrl, FNMESH_LOCAL_NATS_TRUST_DIR: trustDir });
    expect(run.cli.lines.some((l) => l.includes(`NATS users minted from the trust chain in ${trustDir}`))).toBe(true);
    expect(await call(run.gateway, 'greeter/shout', { name: 'Ada' })).toMatchObject({
      status: 200,
      body: { result: { greeting: 'HELLO, ADA!' } },
    });
    await expect(connect({ servers: natsUrl, reconnect: false })).rejects.toThrow(/Authorization Violation/);
  });
});

describe('fnmesh local refuses NATS settings it cannot honour, at start, naming the fix', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-local-refuse-'));
    copyExamples(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function start(env: Record<string, string>): Promise<unknown> {
    return startLocalMesh({
      paths: [dir],
      env: {
        FNMESH_LISTEN: `127.0.0.1:${await freePort()}`,
        FNMESH_OPS_LISTEN: '127.0.0.1:0',
        FNMESH_BROKER_PORT: String(await freePort()),
        FNMESH_LOG_LEVEL: 'silent',
        ...env,
      },
      write: () => undefined,
    });
  }

  test('an external NATS without a trust directory', async () => {
    await expect(start({ FNMESH_NATS_URL: 'nats://127.0.0.1:1' })).rejects.toThrow(
      /FNMESH_NATS_URL is set but FNMESH_LOCAL_NATS_TRUST_DIR is not: .*Set FNMESH_LOCAL_NATS_TRUST_DIR=<dir>/,
    );
  });

  test.each(['FNMESH_NATS_CREDS', 'FNMESH_BROKER_OPERATOR', 'FNMESH_NATS_TOKEN'])(
    '%s, which fnmesh local sets itself',
    async (name) => {
      await expect(start({ [name]: '/some/file' })).rejects.toThrow(
        `${name} is set, but fnmesh local gives every part its own NATS user itself`,
      );
    },
  );

  test('a trust directory whose operator seed is an account seed', async () => {
    const trust = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-local-trust-'));
    try {
      const seeds = meshTrustSeeds(createMeshTrust());
      writeFileSync(path.join(trust, 'operator.nk'), new TextDecoder().decode(createAccount().getSeed()));
      writeFileSync(path.join(trust, 'account.nk'), seeds.account);
      writeFileSync(path.join(trust, 'signing-key.nk'), seeds.signingKey);
      await expect(start({ FNMESH_LOCAL_NATS_TRUST_DIR: trust })).rejects.toThrow(
        `the operator seed in FNMESH_LOCAL_NATS_TRUST_DIR (${trust}) is an account seed (SA…), where an operator seed (SO…) belongs`,
      );
      // nothing written into a directory that is refused (not even the system account seed it lacks)
      expect(existsSync(path.join(trust, 'system-account.nk'))).toBe(false);
    } finally {
      rmSync(trust, { recursive: true, force: true });
    }
  });

  test('a trust directory missing one seed', async () => {
    const trust = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-local-trust-'));
    try {
      writeFileSync(path.join(trust, 'operator.nk'), 'x');
      await expect(start({ FNMESH_LOCAL_NATS_TRUST_DIR: trust })).rejects.toThrow(
        `FNMESH_LOCAL_NATS_TRUST_DIR=${trust} lacks account.nk, signing-key.nk`,
      );
      expect(existsSync(path.join(trust, 'nats-server.conf'))).toBe(false);
    } finally {
      rmSync(trust, { recursive: true, force: true });
    }
  });
});
