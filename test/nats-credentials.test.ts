/**
 * The real gateway and real sidecars as NATS users of their own (FNMESH_NATS_CREDS), on a nats-server in
 * operator mode that enforces each identity's permissions (common/nats-identity): HTTP → gateway → sidecar
 * → function, a nested call back through the gateway, micro discovery, credentials rotated under a running
 * gateway, and the start-up errors for bad credentials files.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { credsAuthenticator } from '@nats-io/nats-core';
import { createAccount } from '@nats-io/nkeys';
import { silentLogger } from '../common';
import { ManifestFileSource } from '../common/manifest-source';
import { microServiceName } from '../common/micro-names';
import {
  GATEWAY_IDENTITY,
  createMeshTrust,
  inboxPrefix,
  mintUser,
  meshOperatorModeConfig,
  replicaIdentity,
  revokeUser,
  type MeshIdentity,
  type MeshTrust,
} from '../common/nats-identity';
import { loadGatewayConfig, startGateway, type Gateway } from '../gateway';
import type { Context } from '../sdk';
import { startNatsServer, type RunningNatsServer } from './helpers/nats-server';
import { callGateway, startReplica, type Replica } from './helpers/mesh';
import { waitFor } from './helpers/wait';

jest.setTimeout(60_000);

const NS = 'creds';
const HOUR = 3_600_000;
const MANIFESTS = `---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: greeter, namespace: ${NS} }
spec:
  functions:
    - { name: hello, rule: { rule: allow } }
---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: authz, namespace: ${NS} }
spec:
  functions:
    - { name: check, rule: { rule: match, type: string, eval: "==", f1: args.caller, f2: ${NS}/greeter } }
`;

describe('gateway and sidecars with their own NATS credentials (nats-server, operator mode)', () => {
  let trust: MeshTrust;
  let server: RunningNatsServer;
  let dir: string;
  let gw: Gateway | undefined;
  const replicas: Replica[] = [];
  const revocations: Record<string, number> = {};

  async function serverConfig(): Promise<string> {
    return meshOperatorModeConfig(trust, revocations);
  }

  async function credsFile(
    name: string,
    identity: MeshIdentity,
  ): Promise<{ file: string; publicKey: string; creds: string }> {
    const user = await mintUser(trust, identity, { ttlMs: HOUR });
    const file = path.join(dir, `${name}.creds`);
    writeFileSync(file, user.creds);
    return { file, publicKey: user.publicKey, creds: user.creds };
  }

  function gatewayConfig(creds: string): ReturnType<typeof loadGatewayConfig> {
    return loadGatewayConfig({
      FNMESH_NATS_URL: server.url,
      FNMESH_NATS_CREDS: creds,
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_MANIFESTS: path.join(dir, 'manifests'),
      FNMESH_LOG_LEVEL: 'silent',
      FNMESH_SHUTDOWN_TIMEOUT_MS: '2000',
    });
  }

  beforeAll(async () => {
    trust = createMeshTrust();
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-creds-'));
    mkdirSync(path.join(dir, 'manifests'));
    writeFileSync(path.join(dir, 'manifests', 'services.yaml'), MANIFESTS);
    server = await startNatsServer({ config: await serverConfig() });
  });

  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
    await Promise.all(replicas.splice(0).map((r) => r.stop()));
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startMesh(gatewayCreds: string): Promise<Gateway> {
    const config = gatewayConfig(gatewayCreds);
    const g = await startGateway(config, {
      logger: silentLogger,
      ruleSource: new ManifestFileSource(config.manifests, { debounceMs: 20, logger: silentLogger }),
    });
    gw = g;
    await waitFor(() => g.readiness().ready, { what: 'gateway ready' });
    const authz = await credsFile('authz', replicaIdentity(NS, 'authz'));
    const greeter = await credsFile('greeter', replicaIdentity(NS, 'greeter'));
    replicas.push(
      await startReplica({
        natsUrl: server.url,
        namespace: NS,
        service: 'authz',
        functions: { check: (_p: unknown, ctx: Context) => `checked for ${ctx.caller}` },
        env: { FNMESH_NATS_CREDS: authz.file },
      }),
      await startReplica({
        natsUrl: server.url,
        namespace: NS,
        service: 'greeter',
        functions: { hello: async (_p: unknown, ctx: Context) => `hello, ${await ctx.call('authz', 'check')}` },
        env: { FNMESH_NATS_CREDS: greeter.file, FNMESH_FUNCTIONS: 'hello' },
      }),
    );
    return g;
  }

  test('a call and a nested call through the gateway work with every part its own user', async () => {
    const gateway = await credsFile('gateway', GATEWAY_IDENTITY);
    const g = await startMesh(gateway.file);
    const answer = await callGateway(g.url, `${NS}/functions/greeter/hello`);
    expect(answer.body).toEqual({ result: `hello, checked for ${NS}/greeter` });
    expect(answer.status).toBe(200);
  });

  test("the real sidecar's micro discovery answers an observer", async () => {
    const gateway = await credsFile('gateway', GATEWAY_IDENTITY);
    await startMesh(gateway.file);
    const observer = await mintUser(trust, { kind: 'observer' }, { ttlMs: HOUR });
    const nc = await connect({
      servers: server.url,
      authenticator: credsAuthenticator(new TextEncoder().encode(observer.creds)),
      inboxPrefix: inboxPrefix({ kind: 'observer' }),
    });
    try {
      const reply = await nc.request(`$SRV.INFO.${microServiceName(NS, 'greeter')}`, undefined, { timeout: 5_000 });
      const info = JSON.parse(new TextDecoder().decode(reply.data)) as { name: string; endpoints: { name: string }[] };
      expect(info.name).toBe(microServiceName(NS, 'greeter'));
      expect(info.endpoints.map((e) => e.name)).toEqual(['hello']);
    } finally {
      await nc.close();
    }
  });

  test('rotated credentials are read on reconnect: the old user revoked, the gateway is back without a restart', async () => {
    const first = await credsFile('gateway-rotating', GATEWAY_IDENTITY);
    const g = await startMesh(first.file);
    expect((await callGateway(g.url, `${NS}/functions/greeter/hello`)).status).toBe(200);
    // the operator rotates: a new user in the same file, the old one revoked
    const second = await credsFile('gateway-rotating', GATEWAY_IDENTITY);
    expect(second.publicKey).not.toBe(first.publicKey);
    Object.assign(revocations, revokeUser({}, first.publicKey, new Date()));
    const port = server.port;
    await server.kill();
    server = await startNatsServer({ port, config: await serverConfig() });
    const answer = await waitFor(
      async () => {
        const a = await callGateway(g.url, `${NS}/functions/greeter/hello`);
        return a.status === 200 ? a : undefined;
      },
      { timeoutMs: 20_000, what: 'a call to succeed after the rotation' },
    );
    expect(answer.body).toEqual({ result: `hello, checked for ${NS}/greeter` });
    // and the old credentials really are refused now
    await expect(
      connect({
        servers: server.url,
        reconnect: false,
        authenticator: credsAuthenticator(new TextEncoder().encode(first.creds)),
      }),
    ).rejects.toThrow(/Authorization Violation/);
  });

  test('a missing credentials file stops the gateway at start, naming the file, the setting and the fix', async () => {
    const missing = path.join(dir, 'nope.creds');
    const config = gatewayConfig(missing);
    const ruleSource = new ManifestFileSource(config.manifests, { debounceMs: 20, logger: silentLogger });
    await expect(startGateway(config, { logger: silentLogger, ruleSource })).rejects.toThrow(
      `the NATS credentials file ${missing} (FNMESH_NATS_CREDS) does not exist: point FNMESH_NATS_CREDS at`,
    );
  });

  test('an account seed in place of the user seed stops the sidecar at start', async () => {
    const user = await mintUser(trust, replicaIdentity(NS, 'greeter'), { ttlMs: HOUR });
    const file = path.join(dir, 'wrong-kind.creds');
    writeFileSync(file, user.creds.replace(user.seed, new TextDecoder().decode(createAccount().getSeed())));
    await expect(
      startReplica({
        natsUrl: server.url,
        namespace: NS,
        service: 'greeter',
        functions: { hello: () => 'hi' },
        env: { FNMESH_NATS_CREDS: file },
      }),
    ).rejects.toThrow(
      `the NATS credentials file ${file} (FNMESH_NATS_CREDS) has a seed that is an account seed (SA…), where a user seed (SU…) belongs`,
    );
  });
});
