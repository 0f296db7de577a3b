/**
 * The chart's NATS configuration (templates/nats-config.yaml) on real nats-servers: three servers, each with
 * the rendered `nats.conf` and, for auth=jwt, the `resolver.conf` the operator publishes (operator/trust-store.ts
 * for a fresh trust chain). What the cluster's DNS and volumes would do is done here instead: each stable name
 * in the routes becomes that server's loopback port, and the paths become a folder per server. Everything else
 * (cluster name, the routes, the include, JetStream, max_payload, lame duck mode) is the rendered text.
 * Checks: every server's /routez shows the other two, the probes' /healthz answers ok, and with auth=jwt the
 * servers trust the operator, a replica's user on one server answers the gateway's user on another, and a
 * client without credentials is refused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { credsAuthenticator } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
  GATEWAY_IDENTITY,
  createMeshTrust,
  inboxPrefix,
  mintUser,
  replicaIdentity,
  type MeshIdentity,
  type MeshTrust,
} from '../common/nats-identity';
import { ACCOUNT_SECRET_KEYS, accountSecretData } from '../operator';
import { renderChart } from './helpers/helm';
import { natsServerBinary } from './helpers/nats-server';
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
    const p = spawn(natsServerBinary(), ['--config', path.join(dir, 'nats.conf')], {
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
  return connect({
    servers: `127.0.0.1:${port}`,
    authenticator: credsAuthenticator(new TextEncoder().encode(creds)),
    inboxPrefix: inboxPrefix(identity),
  });
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
