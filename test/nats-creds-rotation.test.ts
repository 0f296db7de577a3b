/**
 * Rotated NATS credentials taken up by a running gateway and sidecar without a failed call, on nats-server
 * (operator mode) and on the embedded broker: under steady calls (each a nested call back through the
 * gateway, so every connection of both parts carries work), the gateway's and the sidecar's `.creds` are
 * replaced the way the kubelet updates a mounted Secret; both hand their connection over to the new user,
 * the old user's JWT expires (the server would cut a connection still using it), and no call fails. A
 * malformed new file is logged with its name and the fix, and the old connection is kept.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger, silentLogger, type Logger } from '../common';
import { ManifestFileSource } from '../common/manifest-source';
import {
  GATEWAY_IDENTITY,
  meshAccountJwts,
  createMeshTrust,
  mintUser,
  operatorJwt,
  replicaIdentity,
  type MeshIdentity,
  type MeshTrust,
  type MintedUser,
} from '../common/nats-identity';
import { loadGatewayConfig, startGateway, type Gateway } from '../gateway';
import type { Context } from '../sdk';
import { BROKER_TARGETS, type RunningBroker } from './helpers/brokers';
import { callGateway, startReplica, type Replica } from './helpers/mesh';
import { createSecretMount, type SecretMount } from './helpers/secret-mount';
import { waitFor } from './helpers/wait';

jest.setTimeout(150_000);

const NS = 'rotation';
const SVC = 'echo';
const CREDS = 'user.creds';
const HOUR = 3_600_000;
/** The short-lived users' lifetime: long enough for two handovers on a busy machine, short enough to see it end. */
const SHORT_TTL_MS = 30_000;
/** A handover is a new connection and a drain: seconds on a loaded machine (and jest runs the crypto slowly). */
const HANDOVER_WAIT = (what: string): { timeoutMs: number; what: string } => ({ timeoutMs: 30_000, what });
const MANIFESTS = `---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: ${SVC}, namespace: ${NS} }
spec:
  functions:
    - { name: outer, rule: { rule: allow } }
    - { name: inner, rule: { rule: match, type: string, eval: "==", f1: args.caller, f2: ${NS}/${SVC} } }
`;

interface LogLine {
  level: string;
  message: string;
  [key: string]: unknown;
}

function memoryLogger(lines: LogLine[]): Logger {
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogLine);
      done();
    },
  });
  return createLogger({ level: 'info', stream });
}

/** A minted user's expiry as its JWT holds it (whole seconds). */
const expSeconds = (user: MintedUser): number => Math.floor(user.expiresAt.getTime() / 1000);

async function expirySeconds(metricsUrl: string): Promise<number | undefined> {
  const text = await (await fetch(metricsUrl)).text();
  const m = /^fnmesh_nats_credentials_expiry_timestamp_seconds(?:\{[^}]*\})? (\S+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Calls in `lanes` parallel loops until stopped; every answer that is not a 200 is kept. */
function steadyCalls(url: string, lanes: number): { stop(): Promise<void>; ok(): number; failures: unknown[] } {
  let running = true;
  let ok = 0;
  const failures: unknown[] = [];
  const loops = Array.from({ length: lanes }, async (_, lane) => {
    for (let i = 0; running; i++) {
      try {
        const a = await callGateway(url, `${NS}/functions/${SVC}/outer`, { params: { lane, i } });
        if (a.status === 200 && (a.body.result as { inner?: unknown } | undefined)?.inner !== undefined) ok++;
        else failures.push({ status: a.status, body: a.body });
      } catch (err) {
        failures.push({ error: String(err) });
      }
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
    ok: () => ok,
    failures,
  };
}

describe.each(BROKER_TARGETS)('rotated NATS credentials taken up without a failed call (%s)', (target) => {
  let trust: MeshTrust;
  let broker: RunningBroker;
  let dir: string;
  let gatewayMount: SecretMount;
  let sidecarMount: SecretMount;
  let gw: Gateway | undefined;
  let replica: Replica | undefined;
  let gatewayLog: LogLine[];
  let sidecarLog: LogLine[];

  const mint = (identity: MeshIdentity, ttlMs: number): Promise<MintedUser> => mintUser(trust, identity, { ttlMs });

  beforeAll(async () => {
    trust = createMeshTrust();
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-rotation-'));
    writeFileSync(path.join(dir, 'services.yaml'), MANIFESTS);
    broker = await target.start({
      operator: { operatorJwt: await operatorJwt(trust), accountJwts: Object.values(await meshAccountJwts(trust)) },
    });
  });

  afterAll(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    gatewayMount = createSecretMount('fnmesh-gateway-creds-');
    sidecarMount = createSecretMount('fnmesh-sidecar-creds-');
    gatewayLog = [];
    sidecarLog = [];
  });

  afterEach(async () => {
    await replica?.stop();
    replica = undefined;
    await gw?.stop();
    gw = undefined;
    gatewayMount.cleanup();
    sidecarMount.cleanup();
  });

  async function startMesh(ttlMs: number): Promise<{ gateway: MintedUser; sidecar: MintedUser }> {
    const gateway = await mint(GATEWAY_IDENTITY, ttlMs);
    const sidecar = await mint(replicaIdentity(NS, SVC), ttlMs);
    gatewayMount.write({ [CREDS]: gateway.creds });
    sidecarMount.write({ [CREDS]: sidecar.creds });
    const config = loadGatewayConfig({
      FNMESH_NATS_URL: broker.url,
      FNMESH_NATS_CREDS: gatewayMount.file(CREDS),
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_MANIFESTS: dir,
      FNMESH_SHUTDOWN_TIMEOUT_MS: '2000',
    });
    const g = await startGateway(config, {
      logger: memoryLogger(gatewayLog),
      ruleSource: new ManifestFileSource(config.manifests, { debounceMs: 20, logger: silentLogger }),
    });
    gw = g;
    await waitFor(() => g.readiness().ready, { what: 'gateway ready' });
    replica = await startReplica({
      natsUrl: broker.url,
      namespace: NS,
      service: SVC,
      functions: {
        outer: async (params: unknown, ctx: Context) => ({ inner: await ctx.call(SVC, 'inner', params) }),
        // a moment of work, so calls are in flight on the old connections while they hand over
        inner: (params: unknown) => new Promise((resolve) => setTimeout(() => resolve(params), 5)),
      },
      env: { FNMESH_NATS_CREDS: sidecarMount.file(CREDS), FNMESH_FUNCTIONS: 'outer,inner' },
      logger: memoryLogger(sidecarLog),
    });
    const first = await callGateway(g.url, `${NS}/functions/${SVC}/outer`, { params: 1 });
    expect(first.body).toEqual({ result: { inner: 1 } });
    return { gateway, sidecar };
  }

  const movedTo = (lines: LogLine[], user: string): boolean =>
    lines.some((l) => l.message === 'moved to a new NATS connection with the rotated credentials' && l.to === user);

  interface Users {
    gateway: MintedUser;
    sidecar: MintedUser;
  }
  /**
   * Minted before the load starts: jest runs the nkeys crypto many times slower than node, and a mint in the
   * test's event loop would stall the gateway and sidecar that share it.
   */
  const mintBoth = async (ttlMs: number): Promise<Users> => ({
    gateway: await mint(GATEWAY_IDENTITY, ttlMs),
    sidecar: await mint(replicaIdentity(NS, SVC), ttlMs),
  });

  /** The operator's new users reach the mounts as the kubelet syncs the Secrets; both parts hand over. */
  async function rotate(next: Users): Promise<Users> {
    gatewayMount.write({ [CREDS]: next.gateway.creds });
    sidecarMount.write({ [CREDS]: next.sidecar.creds });
    await waitFor(() => movedTo(gatewayLog, next.gateway.publicKey), HANDOVER_WAIT('the gateway to hand over'));
    await waitFor(() => movedTo(sidecarLog, next.sidecar.publicKey), HANDOVER_WAIT('the sidecar to hand over'));
    return next;
  }

  test('both parts hand over to the new users; the old JWTs expire; no call fails', async () => {
    const first = await startMesh(HOUR);
    const g = gw!;
    const r = replica!;
    const gatewayMetrics = `${g.opsUrl}/metrics`;
    const sidecarMetrics = `http://127.0.0.1:${r.sidecar.opsPort}/metrics`;
    expect(await expirySeconds(gatewayMetrics)).toBe(expSeconds(first.gateway));
    expect(await expirySeconds(sidecarMetrics)).toBe(expSeconds(first.sidecar));

    // users that expire soon (minted after the mesh started, so a slow start does not eat their lifetime) ...
    const shortLived = await mintBoth(SHORT_TTL_MS);
    const longLived = await mintBoth(HOUR);
    const load = steadyCalls(g.url, 2);
    try {
      await waitFor(() => load.ok() >= 20, { timeoutMs: 20_000, what: 'steady calls before the rotation' });
      const short = await rotate(shortLived);
      let okMark = load.ok();
      await waitFor(() => load.ok() >= okMark + 20, { timeoutMs: 20_000, what: 'calls on the short-lived users' });
      // ... replaced in time by the next rotation
      const next = await rotate(longLived);
      expect(await expirySeconds(gatewayMetrics)).toBe(expSeconds(next.gateway));
      expect(await expirySeconds(sidecarMetrics)).toBe(expSeconds(next.sidecar));
      // past the short-lived JWTs' expiry (the server disconnects a user whose JWT expired): calls go on
      const expired = Math.max(short.gateway.expiresAt.getTime(), short.sidecar.expiresAt.getTime()) + 1_000;
      await waitFor(() => Date.now() > expired, { timeoutMs: SHORT_TTL_MS + 5_000, what: 'the old JWTs to expire' });
      okMark = load.ok();
      await waitFor(() => load.ok() >= okMark + 40, { timeoutMs: 20_000, what: 'calls after the old JWTs expired' });
    } finally {
      await load.stop();
      if (process.env.DEBUG_ROTATION) console.error(JSON.stringify({ gatewayLog, sidecarLog }, null, 1));
    }
    expect(load.failures).toEqual([]);
    // nothing fell back to a reconnect: the connections in use are the handed-over ones
    for (const lines of [gatewayLog, sidecarLog])
      expect(lines.filter((l) => l.message === 'disconnected from NATS; reconnecting')).toEqual([]);
  });

  test('a malformed new file is logged with its name and the fix, and the old connection kept', async () => {
    const first = await startMesh(HOUR);
    const g = gw!;
    const sidecarMetrics = `http://127.0.0.1:${replica!.sidecar.opsPort}/metrics`;
    const next = await mint(replicaIdentity(NS, SVC), HOUR);
    const load = steadyCalls(g.url, 2);
    try {
      await waitFor(() => load.ok() >= 10, { timeoutMs: 20_000, what: 'steady calls' });
      // a JWT cut short: the armor is there, the token is not a JWT
      const broken = first.sidecar.creds.replace(first.sidecar.jwt, first.sidecar.jwt.slice(0, 40));
      sidecarMount.write({ [CREDS]: broken });
      const logged = await waitFor(
        () =>
          sidecarLog.find(
            (l) =>
              l.message === 'the NATS credentials file changed to something unusable; keeping the current connection',
          ),
        { timeoutMs: 20_000, what: 'the malformed file to be logged' },
      );
      expect(logged.level).toBe('error');
      expect(logged.file).toBe(sidecarMount.file(CREDS));
      expect(String(logged.error)).toContain(
        `the rotated NATS credentials file ${sidecarMount.file(CREDS)} (FNMESH_NATS_CREDS)`,
      );
      expect(String(logged.error)).toContain('holds a malformed user JWT');
      expect(String(logged.error)).toContain('write a valid .creds file');
      expect(String(logged.error)).toContain(`keeping the current connection (user ${first.sidecar.publicKey}`);
      const okAfter = load.ok();
      await waitFor(() => load.ok() >= okAfter + 10, { timeoutMs: 20_000, what: 'calls after the malformed file' });
      expect(await expirySeconds(sidecarMetrics)).toBe(expSeconds(first.sidecar));
      // the next good file is taken up
      sidecarMount.write({ [CREDS]: next.creds });
      await waitFor(() => movedTo(sidecarLog, next.publicKey), HANDOVER_WAIT('the sidecar to hand over'));
      const okMoved = load.ok();
      await waitFor(() => load.ok() >= okMoved + 10, { timeoutMs: 20_000, what: 'calls after the good file' });
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);
    // still connected (a health check of the function may time out on a loaded machine: wait for it)
    await waitFor(() => replica!.sidecar.readiness().ready, { timeoutMs: 20_000, what: 'the sidecar ready' });
  });
});
