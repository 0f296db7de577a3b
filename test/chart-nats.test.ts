/**
 * The chart's NATS configuration (templates/nats-config.yaml) on real nats-servers: three servers, each with
 * the rendered `nats.conf` and, for auth=jwt, the `resolver.conf` the operator publishes (operator/trust-store.ts
 * for a fresh trust chain). What the cluster's DNS and volumes would do is done here instead: each stable name
 * in the routes becomes that server's loopback port, and the paths become a folder per server. Everything else
 * (cluster name, the routes, the include, JetStream, max_payload, lame duck mode) is the rendered text.
 * The servers are the chart's nats-server version (scripts/nats-server-tool.sh builds it).
 * Checks: every server's /routez shows the other two, the probes' /healthz answers ok, and with auth=jwt the
 * servers trust the operator, a replica's user on one server answers the gateway's user on another, and a
 * client without credentials is refused; JetStream runs under the system account on all three (a meta leader,
 * a stream of 3 replicas made by a test user with JetStream rights), a system user minted from the trust
 * chain's system account seed reaches all three, and neither a function's user nor the gateway's may use the
 * JetStream API or any `$SYS` subject.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { encodeUser } from '@nats-io/jwt';
import { createUser } from '@nats-io/nkeys';
import { credsAuthenticator, errors as natsErrors, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
  GATEWAY_IDENTITY,
  createMeshTrust,
  formatCreds,
  inboxPrefix,
  mintUser,
  replicaIdentity,
  type MeshIdentity,
  type MeshTrust,
} from '../common/nats-identity';
import { natsServerBinary } from '../cluster/nats-server-tool';
import { NATS_SERVER_VERSION } from '../common/nats-server-version';
import { ACCOUNT_SECRET_KEYS, accountSecretData } from '../operator';
import { renderChart } from './helpers/helm';
import { freePort } from './helpers/ports';
import { waitFor } from './helpers/wait';

jest.setTimeout(60_000);

interface Server {
  client: number;
  monitor: number;
  cluster: number;
  process?: ChildProcess;
}

const dirs: string[] = [];
const running: ChildProcess[] = [];
let natsServer: string;

beforeAll(async () => {
  const bin = await natsServerBinary();
  if (!bin.built)
    throw new Error(
      `nats-server v${NATS_SERVER_VERSION} (the chart's) is not built: run bash scripts/nats-server-tool.sh`,
    );
  natsServer = bin.path;
});

afterAll(async () => {
  await Promise.all(
    running.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGKILL');
        }),
    ),
  );
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function renderedConf(auth: string): Promise<string> {
  const { objects } = await renderChart({
    set: [`nats.auth=${auth}`, ...(auth === 'token' ? ['nats.token.secretName=t'] : [])],
  });
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'fnmesh-nats-config');
  return (cm!.data as Record<string, string>)['nats.conf']!;
}

/** The rendered config with this machine's addresses and folders for server `i` (of `servers`). */
function localConf(conf: string, servers: Server[], i: number, dir: string): string {
  const s = servers[i]!;
  const routes = /nats:\/\/fnmesh-nats-(\d+)\.fnmesh-nats-headless\.fnmesh\.svc\.cluster\.local:6222/g;
  const out = conf
    .replace('listen: 0.0.0.0:4222', `listen: 127.0.0.1:${s.client}`)
    .replace('http_port: 8222', `http: 127.0.0.1:${s.monitor}`)
    .replace('listen: 0.0.0.0:6222', `listen: 127.0.0.1:${s.cluster}`)
    .replace('/var/run/nats/nats.pid', path.join(dir, 'nats.pid'))
    .replace('/data/jetstream', path.join(dir, 'jetstream'))
    .replace(routes, (_, n: string) => `nats://127.0.0.1:${servers[Number(n)]!.cluster}`);
  // every address and path of the rendered text was replaced (nothing left that points at the cluster)
  expect(out).not.toMatch(/0\.0\.0\.0|svc\.cluster\.local|\/var\/run|\/data\//);
  return out;
}

async function json(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

async function startCluster(conf: string, resolverConf?: string): Promise<Server[]> {
  const servers: Server[] = [];
  for (let i = 0; i < 3; i++)
    servers.push({ client: await freePort(), monitor: await freePort(), cluster: await freePort() });
  for (let i = 0; i < 3; i++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-chart-nats-'));
    dirs.push(dir);
    if (resolverConf) {
      mkdirSync(path.join(dir, 'auth'));
      writeFileSync(path.join(dir, 'auth', 'resolver.conf'), resolverConf);
    }
    writeFileSync(path.join(dir, 'nats.conf'), localConf(conf, servers, i, dir));
    const p = spawn(natsServer, ['--config', path.join(dir, 'nats.conf')], {
      env: { ...process.env, SERVER_NAME: `fnmesh-nats-${i}`, NATS_TOKEN: 'a-token-for-the-test' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    p.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    p.once('exit', (code) => {
      if (code !== null && code !== 0) process.stderr.write(`nats-server ${i} exited ${code}: ${log.slice(-2000)}\n`);
    });
    running.push(p);
    servers[i]!.process = p;
  }
  // each server's /routez names the other two by their server ids (remote_name is nats-server 2.10+ only)
  await waitFor(
    async () => {
      const ids = await Promise.all(
        servers.map((s) => json(`http://127.0.0.1:${s.monitor}/varz`).then((v) => v.server_id as string)),
      );
      for (const [i, s] of servers.entries()) {
        const routez = (await json(`http://127.0.0.1:${s.monitor}/routez`)) as { routes: { remote_id: string }[] };
        const peers = new Set(routez.routes.map((r) => r.remote_id));
        if (!ids.every((id, j) => j === i || peers.has(id))) return false;
      }
      return true;
    },
    { timeoutMs: 20_000, intervalMs: 100, what: "every server's /routez to show the other two" },
  );
  return servers;
}

/** The first line a NATS server sends and its answer to a CONNECT without credentials. */
function anonymousConnect(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    sock.on('data', (d) => {
      text += d.toString();
      if (text.startsWith('INFO') && !text.includes('CONNECT_SENT')) {
        text += 'CONNECT_SENT\n';
        sock.write('CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n');
      }
      if (/-ERR|PONG/.test(text)) {
        sock.destroy();
        resolve(text);
      }
    });
    sock.on('error', reject);
  });
}

/** A nats.js connection to `port` as `identity` of the mesh (a user JWT minted from `trust`). */
async function connectAs(trust: MeshTrust, identity: MeshIdentity, port: number) {
  const { creds } = await mintUser(trust, identity, { ttlMs: 3_600_000 });
  return watched(
    await connect({
      servers: `127.0.0.1:${port}`,
      authenticator: credsAuthenticator(new TextEncoder().encode(creds)),
      inboxPrefix: inboxPrefix(identity),
    }),
  );
}

/**
 * A user that no fnmesh part is, with the permissions given: of the mesh account, signed by its signing key
 * like every part's user (what an administrator would mint for a JetStream tool), or with `system` of the
 * system account, signed by its own key (an administrator's `nats server report`).
 */
async function connectTestUser(
  trust: MeshTrust,
  name: string,
  permissions: { publish: string[]; subscribe: string[] },
  port: number,
  system = false,
) {
  const user = createUser();
  const claims = {
    pub: { allow: permissions.publish },
    sub: { allow: permissions.subscribe },
    subs: -1,
    data: -1,
    payload: -1,
  };
  const jwt = system
    ? await encodeUser(name, user, trust.systemAccount, claims)
    : await encodeUser(name, user, trust.account.getPublicKey(), claims, { signer: trust.signingKey });
  const creds = formatCreds(jwt, new TextDecoder().decode(user.getSeed()));
  return watched(
    await connect({
      servers: `127.0.0.1:${port}`,
      authenticator: credsAuthenticator(new TextEncoder().encode(creds)),
      inboxPrefix: `_INBOX.${name}`,
    }),
  );
}

/** The permission refusals each connection got (nats.js reports them as status errors). */
const refusals = new WeakMap<NatsConnection, string[]>();

function watched(nc: NatsConnection): NatsConnection {
  const list: string[] = [];
  refusals.set(nc, list);
  void (async () => {
    for await (const s of nc.status())
      if (s.type === 'error' && s.error instanceof natsErrors.PermissionViolationError) list.push(String(s.error));
  })();
  return nc;
}

/** The server answers a refused PUB with -ERR before the PONG of the flush that follows. */
async function expectPublishRefused(nc: NatsConnection, subject: string): Promise<void> {
  nc.publish(subject, 'attack');
  await nc.flush();
  await waitFor(() => refusals.get(nc)!.some((e) => e.includes(`Permissions Violation for Publish to "${subject}"`)), {
    timeoutMs: 2000,
    what: `the server to refuse a publish to ${subject}`,
  });
}

async function expectSubscribeRefused(nc: NatsConnection, subject: string): Promise<void> {
  const sub = nc.subscribe(subject);
  let closed: { value: unknown } | undefined;
  void sub.closed.then((value) => (closed = { value }));
  await nc.flush();
  await waitFor(() => closed, { timeoutMs: 2000, what: `the server to refuse a subscription to ${subject}` });
  expect(closed!.value).toBeInstanceOf(natsErrors.PermissionViolationError);
  expect(String(closed!.value)).toContain(`Permissions Violation for Subscription to "${subject}"`);
}

interface Jsz {
  config?: { store_dir?: string; max_storage?: number };
  streams?: number;
  meta_cluster?: { name?: string; leader?: string; cluster_size?: number };
}

/** A JetStream API call as JSON (the API is JSON over NATS request-reply). */
async function jsApi(nc: NatsConnection, subject: string, body: unknown): Promise<Record<string, unknown>> {
  const m = await nc.request(`$JS.API.${subject}`, JSON.stringify(body), { timeout: 5000 });
  return m.json<Record<string, unknown>>();
}

test("auth=jwt (the default): clustered, healthy, the mesh's users call across servers, anonymous is refused", async () => {
  const trust = createMeshTrust();
  const account = await accountSecretData(trust);
  const servers = await startCluster(await renderedConf('jwt'), account[ACCOUNT_SECRET_KEYS.resolverConf]);
  for (const s of servers) {
    for (const probe of ['/healthz?js-enabled-only=true', '/healthz?js-server-only=true'])
      expect(await json(`http://127.0.0.1:${s.monitor}${probe}`)).toEqual({ status: 'ok' });
    const varz = (await json(`http://127.0.0.1:${s.monitor}/varz`)) as { trusted_operators_claim?: { sub: string }[] };
    expect(varz.trusted_operators_claim?.map((c) => c.sub)).toEqual([trust.operator.getPublicKey()]);
  }
  expect(await anonymousConnect(servers[0]!.client)).toContain("-ERR 'Authorization Violation'");
  // a replica on server 2 answers the gateway on server 0, through the routes, each as its own user
  const replica = await connectAs(trust, replicaIdentity('default', 'greeter'), servers[2]!.client);
  const gateway = await connectAs(trust, GATEWAY_IDENTITY, servers[0]!.client);
  try {
    const sub = replica.subscribe('fnmesh.call.default.greeter.*', { queue: 'fnmesh.default.greeter' });
    void (async () => {
      for await (const m of sub) m.respond(`hello from ${m.subject}`);
    })();
    await replica.flush();
    const answer = await waitFor(
      () => gateway.request('fnmesh.call.default.greeter.hello', '', { timeout: 1000 }).catch(() => undefined),
      { timeoutMs: 10_000, what: 'the interest to reach server 0' },
    );
    expect(answer.string()).toBe('hello from fnmesh.call.default.greeter.hello');
  } finally {
    await replica.close();
    await gateway.close();
  }
});

test('auth=jwt: JetStream under the system account on all three; only a user with JetStream rights uses it', async () => {
  const trust = createMeshTrust();
  const conf = await renderedConf('jwt');
  expect(conf).toContain('jetstream {');
  const account = await accountSecretData(trust);
  const servers = await startCluster(conf, account[ACCOUNT_SECRET_KEYS.resolverConf]);
  const jsz = (s: Server, q = '') => json(`http://127.0.0.1:${s.monitor}/jsz${q}`) as Promise<Jsz>;
  for (const s of servers) {
    const varz = (await json(`http://127.0.0.1:${s.monitor}/varz`)) as { system_account?: string };
    expect(varz.system_account).toBe(trust.systemAccount.getPublicKey());
    const z = await jsz(s);
    expect(z.config?.store_dir).toMatch(/jetstream$/);
    // max_file_store from the claim's size (10Gi), as rendered
    expect(z.config?.max_storage).toBe(Math.floor(0.9 * 10 * 2 ** 30));
  }
  // the system account takes its administrator's user (its JWT allows connections), and all three answer it
  const sysAdmin = await connectTestUser(
    trust,
    'system-admin',
    { publish: ['$SYS.REQ.>'], subscribe: ['_INBOX.system-admin.>'] },
    servers[2]!.client,
    true,
  );
  try {
    const answered = new Set<string>();
    sysAdmin.subscribe('_INBOX.system-admin.ping', {
      callback: (_, m) => {
        answered.add(m.json<{ server: { name: string } }>().server.name);
      },
    });
    sysAdmin.publish('$SYS.REQ.SERVER.PING', '', { reply: '_INBOX.system-admin.ping' });
    await waitFor(() => answered.size === 3, { what: "every server's answer to the system account's PING" });
  } finally {
    await sysAdmin.close();
  }
  // the three elect one meta leader (JetStream's cluster traffic runs in the system account)
  const leader = await waitFor(
    async () => {
      const metas = await Promise.all(servers.map(async (s) => (await jsz(s)).meta_cluster));
      const leaders = new Set(metas.map((m) => m?.leader));
      return leaders.size === 1 && metas.every((m) => m?.leader && m.cluster_size === 3) ? metas[0]!.leader : '';
    },
    { timeoutMs: 20_000, intervalMs: 100, what: 'one JetStream meta leader seen by all three servers' },
  );
  expect(['fnmesh-nats-0', 'fnmesh-nats-1', 'fnmesh-nats-2']).toContain(leader);

  // a user of the mesh account with JetStream rights (minted here: no fnmesh part has them) makes a stream of 3
  const admin = await connectTestUser(
    trust,
    'jetstream-admin',
    { publish: ['$JS.API.>', 'work.>'], subscribe: ['_INBOX.jetstream-admin.>'] },
    servers[1]!.client,
  );
  const replica = await connectAs(trust, replicaIdentity('default', 'greeter'), servers[0]!.client);
  const gateway = await connectAs(trust, GATEWAY_IDENTITY, servers[2]!.client);
  // every permission there is in the mesh account: it still reaches no system account service
  const broad = await connectTestUser(
    trust,
    'everything',
    { publish: ['>'], subscribe: ['_INBOX.everything.>'] },
    servers[0]!.client,
  );
  try {
    const created = await waitFor(
      async () => {
        const r = await jsApi(admin, 'STREAM.CREATE.WORK', {
          name: 'WORK',
          subjects: ['work.>'],
          storage: 'file',
          num_replicas: 3,
        });
        return r.error ? undefined : r;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'the stream of 3 replicas to be created' },
    );
    expect(created.config).toMatchObject({ name: 'WORK', num_replicas: 3, storage: 'file' });
    const ack = (await admin.request('work.job-1', 'a job', { timeout: 5000 })).json<{ stream: string; seq: number }>();
    expect(ack).toMatchObject({ stream: 'WORK', seq: 1 });
    // every server holds a replica
    await waitFor(async () => (await Promise.all(servers.map((s) => jsz(s)))).every((z) => z.streams === 1), {
      timeoutMs: 10_000,
      what: 'the stream on all three servers',
    });
    const info = await jsApi(admin, 'STREAM.INFO.WORK', {});
    expect((info.cluster as { replicas?: unknown[] }).replicas).toHaveLength(2);
    expect((info.state as { messages: number }).messages).toBe(1);
    // the mesh account has no memory storage (mem_storage 0 in its JWT)
    const memory = await jsApi(admin, 'STREAM.CREATE.HOT', { name: 'HOT', subjects: ['hot.>'], storage: 'memory' });
    expect(memory.error).toMatchObject({ err_code: 10028, description: 'insufficient memory resources available' });

    // a function's user and the gateway's: no JetStream API, no $SYS subject (publish or subscribe)
    for (const nc of [replica, gateway]) {
      for (const subject of [
        '$JS.API.INFO',
        '$JS.API.STREAM.CREATE.MINE',
        '$JS.API.STREAM.MSG.GET.WORK',
        '$JS.API.CONSUMER.CREATE.WORK',
        '$SYS.REQ.SERVER.PING',
        '$SYS.REQ.ACCOUNT.PING.CONNZ',
        '$SYS.REQ.USER.INFO',
      ])
        await expectPublishRefused(nc, subject);
      for (const subject of ['$SYS.>', '$JS.API.>', '$JS.EVENT.>', 'work.>']) await expectSubscribeRefused(nc, subject);
    }
    // the system account's own services (server-wide statistics, every account's connections) answer only
    // the system account's users: from the mesh account, even with every permission, nobody responds
    for (const subject of [
      '$SYS.REQ.SERVER.PING',
      '$SYS.REQ.SERVER.PING.VARZ',
      '$SYS.REQ.SERVER.PING.JSZ',
      '$SYS.REQ.SERVER.PING.ACCOUNTZ',
      `$SYS.REQ.ACCOUNT.${trust.systemAccount.getPublicKey()}.CONNZ`,
    ])
      await expect(broad.request(subject, '', { timeout: 2000 })).rejects.toThrow(/no responders/);
    // what nats-server imports into every account once there is a system account shows that account only
    // (why no fnmesh part may publish to $SYS: it would list the mesh's connections)
    const statz = (await broad.request('$SYS.REQ.ACCOUNT.PING.STATZ', '', { timeout: 2000 })).json<{
      data: { account_statz: { acc: string }[] };
    }>();
    expect(new Set(statz.data.account_statz.map((a) => a.acc))).toEqual(new Set([trust.account.getPublicKey()]));
    const me = (await broad.request('$SYS.REQ.USER.INFO', '', { timeout: 2000 })).json<{ data: { account: string } }>();
    expect(me.data.account).toBe(trust.account.getPublicKey());
  } finally {
    for (const nc of [admin, replica, gateway, broad]) await nc.close();
  }
});

test('auth=none: clustered with JetStream on (file store), healthy', async () => {
  const conf = await renderedConf('none');
  expect(conf).toContain('jetstream {');
  const servers = await startCluster(conf);
  for (const s of servers) {
    expect(await json(`http://127.0.0.1:${s.monitor}/healthz?js-enabled-only=true`)).toEqual({ status: 'ok' });
    const jsz = (await json(`http://127.0.0.1:${s.monitor}/jsz`)) as { config?: { store_dir?: string } };
    expect(jsz.config?.store_dir).toMatch(/jetstream$/);
  }
});
