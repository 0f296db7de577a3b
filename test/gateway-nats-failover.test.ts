/**
 * The gateway when a NATS server of a cluster dies under it (real nats-servers, clustered with routes). The
 * replicas are plain NATS subscribers on a server that stays up: they record what they receive and answer as
 * a sidecar would, or hold a call until the test lets it go.
 *
 * - A call in flight when the gateway's server dies: an at-most-once one fails at once (502, may have run),
 *   not at its deadline; an idempotent one is retried on the reconnected connection and succeeds.
 * - Calls that arrive while the gateway is disconnected wait for the reconnect and succeed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Msg, NatsConnection } from '@nats-io/nats-core';
import {
  ATTEMPTS_HTTP_HEADER,
  NATS_HEADERS,
  connectNats,
  serviceCallWildcard,
  serviceQueueGroup,
  silentLogger,
} from '../common';
import { ManifestFileSource } from '../common/manifest-source';
import { loadGatewayConfig, startGateway, type Gateway } from '../gateway';
import { startNatsServer, type RunningNatsServer } from './helpers/nats-server';
import { freePort } from './helpers/ports';
import { waitFor } from './helpers/wait';

const MANIFESTS = `
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: held }
spec:
  functions:
    - { name: once, rule: { rule: allow } }
    - { name: safe, idempotent: true, rule: { rule: allow } }
`;

interface Node {
  server: RunningNatsServer;
  monitorPort: number;
}

/** Three clustered servers; `no_advertise` keeps clients on the servers they were given. */
async function startCluster(): Promise<Node[]> {
  const ports = await Promise.all(
    [0, 1, 2].map(async () => ({ client: await freePort(), cluster: await freePort(), monitor: await freePort() })),
  );
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.cluster}`).join(', ');
  return Promise.all(
    ports.map(async (p) => ({
      monitorPort: p.monitor,
      server: await startNatsServer({
        port: p.client,
        config: `http: 127.0.0.1:${p.monitor}\ncluster { name: failover, listen: 127.0.0.1:${p.cluster}, no_advertise: true, routes: [${routes}] }`,
      }),
    })),
  );
}

/** The names of the clients connected to a server (its monitoring /connz). */
async function clientNames(node: Node): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${node.monitorPort}/connz`);
  const body = (await res.json()) as { connections?: { name?: string }[] };
  return (body.connections ?? []).map((c) => c.name ?? '');
}

/** Routes each server has to the others (its monitoring /routez). */
async function routeCount(node: Node): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${node.monitorPort}/routez`);
  return ((await res.json()) as { num_routes: number }).num_routes;
}

describe('the gateway when its NATS server dies', () => {
  let nodes: Node[];
  let dir: string;
  let gw: Gateway;
  let replicaNc: NatsConnection;
  /** Messages the replica holds, by request id, and how many attempts of each it received. */
  const held = new Map<string, Msg>();
  const attempts = new Map<string, number>();
  const enc = new TextEncoder();

  async function startGw(servers: RunningNatsServer[]): Promise<Gateway> {
    const config = loadGatewayConfig({
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_NATS_URL: servers.map((s) => s.url).join(','),
      FNMESH_SHUTDOWN_TIMEOUT_MS: '1000',
    });
    return startGateway(config, {
      logger: silentLogger,
      ruleSource: new ManifestFileSource([dir], { debounceMs: 20 }),
    });
  }

  function call(
    g: Gateway,
    fn: string,
    requestId: string,
    timeout = 5000,
  ): Promise<{ status: number; attempts: number; error?: string; ms: number }> {
    const t0 = performance.now();
    return fetch(`${g.url}/v1/api/default/functions/held/${fn}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ params: null, timeout }),
    }).then(async (res) => {
      const body = (await res.json()) as { error?: string };
      return {
        status: res.status,
        attempts: Number(res.headers.get(ATTEMPTS_HTTP_HEADER)),
        ...(body.error !== undefined ? { error: body.error } : {}),
        ms: performance.now() - t0,
      };
    });
  }

  /** The node the gateway `g` is connected to. */
  async function gatewayNode(): Promise<Node> {
    return waitFor(
      async () => {
        for (const n of nodes.slice(0, 2)) if ((await clientNames(n)).includes('fnmesh-gateway')) return n;
        return undefined;
      },
      { what: "the gateway's NATS server" },
    );
  }

  beforeAll(async () => {
    nodes = await startCluster();
    await waitFor(async () => (await Promise.all(nodes.map(routeCount))).every((n) => n >= 2), {
      what: 'the cluster routes',
    });
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-gw-failover-'));
    writeFileSync(path.join(dir, 'services.yaml'), MANIFESTS);
    // the replica lives on the third server, which stays up
    replicaNc = await connectNats({ servers: [nodes[2]!.server.url], name: 'test-replica', logger: silentLogger });
    replicaNc.subscribe(serviceCallWildcard('default', 'held'), {
      queue: serviceQueueGroup('default', 'held'),
      callback: (_err, msg) => {
        const id = msg.headers?.get(NATS_HEADERS.requestId) ?? '';
        const n = (attempts.get(id) ?? 0) + 1;
        attempts.set(id, n);
        // ids starting "hold" are held on their first attempt (the test kills the gateway's server meanwhile)
        if (id.startsWith('hold') && n === 1) held.set(id, msg);
        else msg.respond(enc.encode(JSON.stringify({ id, attempt: n })));
      },
    });
    await replicaNc.flush();
    gw = await startGw([nodes[0]!.server, nodes[1]!.server]);
    await waitFor(async () => (await call(gw, 'once', 'warmup')).status === 200, { what: 'a first call' });
  }, 30_000);

  afterAll(async () => {
    await gw?.stop();
    await replicaNc?.close();
    for (const n of nodes ?? []) await n.server.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Sends a held call, kills the gateway's server once the replica has it, brings the server back after. */
  async function killDuringHeldCall(
    fn: string,
    id: string,
  ): Promise<{ status: number; attempts: number; error?: string; ms: number }> {
    const node = await gatewayNode();
    const answer = call(gw, fn, id);
    await waitFor(() => held.has(id), { what: 'the replica to hold the call' });
    await node.server.kill();
    const a = await answer;
    await node.server.start();
    await waitFor(async () => (await routeCount(node)) >= 2, { what: 'the restarted server to rejoin' });
    return a;
  }

  it('fails an at-most-once call in flight at once with 502 (it may have run), never running it twice', async () => {
    const a = await killDuringHeldCall('once', 'hold-once');
    expect(a.status).toBe(502);
    expect(a.error).toMatch(
      /lost its NATS connection while the call to default\/held\.once was in flight: the function may or may not have run/,
    );
    expect(a.ms).toBeLessThan(2000); // its deadline is 5000 ms
    expect(attempts.get('hold-once')).toBe(1);
    // the gateway is on the other server: calls work
    expect((await call(gw, 'once', 'after-once')).status).toBe(200);
  }, 30_000);

  it('retries an idempotent call in flight on the reconnected connection', async () => {
    const a = await killDuringHeldCall('safe', 'hold-safe');
    expect(a).toMatchObject({ status: 200, attempts: 2 });
    expect(a.ms).toBeLessThan(2000);
    expect(attempts.get('hold-safe')).toBe(2);
  }, 30_000);

  it('lets calls that arrive while it is disconnected wait for the reconnect, and succeed', async () => {
    // a gateway that knows one server only: disconnected until that server is back
    const only = nodes[0]!;
    const solo = await startGw([only.server]);
    try {
      await only.server.kill();
      await waitFor(async () => (await fetch(`${solo.opsUrl}/readyz`)).status === 503, {
        what: 'the gateway to notice',
      });
      const calls = [0, 1, 2].map((i) => call(solo, 'once', `waiting-${i}`));
      await only.server.start();
      const answers = await Promise.all(calls);
      for (const a of answers) expect(a.status).toBe(200);
      for (const i of [0, 1, 2]) expect(attempts.get(`waiting-${i}`)).toBe(1);
    } finally {
      await solo.stop();
    }
  }, 30_000);
});
