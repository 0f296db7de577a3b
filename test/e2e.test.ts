/**
 * End to end, the whole call path as in production: HTTP → the real gateway (JWT, rules from manifest files,
 * NATS request) → a real broker (Debian's nats-server, and the embedded broker) → real sidecars → functions
 * served by the SDK, in this process or as separate OS processes (the built `bin/fnmesh.js sidecar` and a
 * Node function on the built SDK) where a real SIGTERM or a real crash matters.
 *
 * The process scenarios need `npm run build` first (`npm test` does it).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { SignJWT } from 'jose';
import { callSubject, silentLogger } from '../common';
import { GATEWAY_IDENTITY } from '../common/nats-identity';
import { ManifestFileSource } from '../common/manifest-source';
import { loadGatewayConfig, RECONNECT_WAIT_MS, startGateway, type Gateway } from '../gateway';
import { CallError, FunctionError, type Context } from '../sdk';
import { BROKER_TARGETS, type RunningBroker } from './helpers/brokers';
import {
  callGateway,
  requireBuilt,
  inFlightCalls,
  spawnFunctionProcess,
  spawnSidecarProcess,
  startReplica,
  startSidecarFor,
  type Answer,
  type Proc,
  type Replica,
} from './helpers/mesh';
import { createMeshAuth, type MeshAuth } from './helpers/mesh-auth';
import { waitFor } from './helpers/wait';

jest.setTimeout(60_000);

const NS = 'e2e';
const SECRET = 'e2e-secret-that-is-long-enough-for-hs256-0123456789';
const enc = new TextEncoder();

const svc = (name: string, functions: string): string => `---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: ${name}, namespace: ${NS} }
spec:
  timeoutMs: 10000
  functions:
${functions}`;

const ALLOW = '{ rule: allow }';
const callerIs = (who: string): string => `{ rule: match, type: string, eval: "==", f1: args.caller, f2: ${who} }`;

const MANIFESTS = [
  svc(
    'prof',
    `    - { name: hello, rule: ${ALLOW} }
    - { name: admin, rule: { rule: match, type: string, eval: "==", f1: args.auth.role, f2: admin } }
    - { name: norule }
`,
  ),
  svc(
    'fail',
    `    - { name: boom, rule: ${ALLOW} }
    - { name: reject, rule: ${ALLOW} }
    - { name: hang, rule: ${ALLOW} }
    - { name: die, rule: ${ALLOW} }
`,
  ),
  svc('ghost', `    - { name: boo, rule: ${ALLOW} }\n`),
  svc('spread', `    - { name: who, rule: ${ALLOW} }\n`),
  svc(
    'a',
    `    - { name: viaSecret, rule: ${ALLOW} }
    - { name: viaMine, rule: ${ALLOW} }
    - { name: viaHang, rule: ${ALLOW} }
`,
  ),
  svc(
    'b',
    `    - { name: secret, rule: ${callerIs(`${NS}/a`)} }
    - name: mine
      rule:
        rule: and
        clauses:
          - ${callerIs(`${NS}/a`)}
          - { rule: match, type: string, eval: "==", f1: args.auth.sub, f2: alice }
    - { name: hang, rule: ${callerIs(`${NS}/a`)} }
`,
  ),
  svc('c', `    - { name: tryit, rule: ${ALLOW} }\n`),
  svc('steady', `    - { name: who, rule: ${ALLOW} }\n`),
  svc('resil', `    - { name: ping, rule: ${ALLOW} }\n`),
  svc(
    'trace',
    `    - { name: meta, rule: ${ALLOW} }
    - { name: relay, rule: ${ALLOW} }
`,
  ),
].join('');

const hotManifest = (goRule: string, withFresh: boolean): string =>
  svc(
    'hot',
    `    - { name: go, rule: { rule: ${goRule} } }\n${withFresh ? `    - { name: fresh, rule: ${ALLOW} }\n` : ''}`,
  );

async function token(claims: Record<string, unknown>, expired = false): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' });
  if (expired) jwt.setIssuedAt(now - 120).setExpirationTime(now - 60);
  else jwt.setIssuedAt(now).setExpirationTime(now + 3600);
  return jwt.sign(enc.encode(SECRET));
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

/** Never resolves; rejects when ctx.signal aborts (a function that hangs until its deadline). */
function hangUntilAborted(ctx: Context): Promise<never> {
  return new Promise((_, reject) => {
    ctx.signal.addEventListener('abort', () => reject(new Error('aborted at the deadline')), { once: true });
  });
}

/** `p`, or a rejection after `ms` (the timer is cleared either way). */
async function withDeadline<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what())), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

interface LoadResult {
  status: number;
  replica?: string;
  error?: string;
  startedAt: number;
  endedAt: number;
}

/** `workers` loops calling `route` until stop() is called; every answer is recorded. */
function steadyLoad(
  gatewayUrl: string,
  route: string,
  workers: number,
  timeout: number,
  paceMs = 0,
): { results: LoadResult[]; stop(): Promise<void> } {
  const results: LoadResult[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const startedAt = Date.now();
      let r: LoadResult;
      try {
        const a = await callGateway(gatewayUrl, route, { params: null, timeout });
        r = { status: a.status, startedAt, endedAt: Date.now() };
        if (a.status === 200) r.replica = (a.body.result as { replica?: string }).replica;
        else r.error = a.body.error;
      } catch (err) {
        r = { status: 0, error: `HTTP request failed: ${String(err)}`, startedAt, endedAt: Date.now() };
      }
      results.push(r);
      if (paceMs > 0) await new Promise((res) => setTimeout(res, paceMs));
    }
  });
  return {
    results,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe.each(BROKER_TARGETS)('end to end on %s', (target) => {
  let broker: RunningBroker;
  let auth: MeshAuth;
  let gw: Gateway;
  let dir: string;
  let manifestDir: string;
  const cleanups: Array<() => Promise<unknown>> = [];

  const call = (
    route: string,
    body: unknown = { params: null },
    headers: Record<string, string> = {},
  ): Promise<Answer> => callGateway(gw.url, `${NS}/functions/${route}`, body, headers);

  async function replica(
    service: string,
    functions: Parameters<typeof startReplica>[0]['functions'],
  ): Promise<Replica> {
    const r = await startReplica({
      natsUrl: broker.url,
      namespace: NS,
      service,
      functions,
      env: { FNMESH_NATS_CREDS: await auth.credsFor(NS, service) },
    });
    cleanups.push(() => r.stop());
    return r;
  }

  /** Waits until NATS routes calls for `service` to at least one replica (its subscription reached the broker). */
  async function routable(service: string): Promise<void> {
    // The test plays the gateway here: only the gateway's identity may publish calls.
    const nc = await connect({ servers: broker.url, ...(await auth.connectOptions(GATEWAY_IDENTITY)) });
    try {
      await waitFor(
        async () => {
          try {
            await nc.request(callSubject(NS, service, 'probe'), enc.encode('null'), { timeout: 2000 });
            return true;
          } catch {
            return false;
          }
        },
        { what: `a replica of ${service} subscribed` },
      );
    } finally {
      await nc.close();
    }
  }

  beforeAll(async () => {
    // Auth and permissions on, as in every real mesh: each part its own NATS user.
    auth = await createMeshAuth();
    broker = await target.start({ operator: auth.operator });
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-e2e-'));
    manifestDir = path.join(dir, 'manifests');
    mkdirSync(manifestDir);
    writeFileSync(path.join(manifestDir, 'services.yaml'), MANIFESTS);
    writeFileSync(path.join(manifestDir, 'hot.yaml'), hotManifest('allow', false));
    const config = loadGatewayConfig({
      FNMESH_NATS_URL: broker.url,
      FNMESH_NATS_CREDS: auth.gatewayCreds,
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_MANIFESTS: manifestDir,
      FNMESH_JWT_SECRET: SECRET,
      FNMESH_LOG_LEVEL: 'silent',
      FNMESH_SHUTDOWN_TIMEOUT_MS: '2000',
    });
    gw = await startGateway(config, {
      logger: silentLogger,
      ruleSource: new ManifestFileSource(config.manifests, { debounceMs: 20, logger: silentLogger }),
    });
    await waitFor(() => gw.readiness().ready, { what: 'gateway ready' });
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  afterAll(async () => {
    await gw?.stop();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    auth?.cleanup();
  });

  test('this suite runs with NATS auth on: a client without credentials is refused', async () => {
    await expect(connect({ servers: broker.url, maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization Violation/i);
  });

  test('a call returns the result; JWT claims reach ctx.claims and the rule; expired token → 401, denied → 403, anonymous on an auth rule → 401, no rule → 403', async () => {
    await replica('prof', {
      hello: (params: { name: string }, ctx) => ({ greeting: `Hello, ${params.name}!`, claims: ctx.claims ?? null }),
      admin: (_p, ctx) => ({ claims: ctx.claims }),
      norule: () => ({ reached: true }),
    });
    await routable('prof');

    const hello = await call('prof/hello', { params: { name: 'Ada' } });
    expect(hello.status).toBe(200);
    expect(hello.body).toEqual({ result: { greeting: 'Hello, Ada!', claims: null } });

    const adminToken = await token({ sub: 'ada', role: 'admin' });
    const admin = await call('prof/admin', { params: null }, bearer(adminToken));
    expect(admin.status).toBe(200);
    expect(admin.body.result).toMatchObject({ claims: { sub: 'ada', role: 'admin' } });

    const asUser = await call('prof/admin', { params: null }, bearer(await token({ sub: 'bob', role: 'user' })));
    expect(asUser.status).toBe(403);
    expect(asUser.body.error).toEqual(expect.any(String));
    // documented: no token and a rule that reads args.auth → 401 (signing in may change the answer)
    const anonymous = await call('prof/admin');
    expect(anonymous.status).toBe(401);

    const expired = await call(
      'prof/admin',
      { params: null },
      bearer(await token({ sub: 'ada', role: 'admin' }, true)),
    );
    expect(expired.status).toBe(401);
    expect(expired.body.error).toEqual(expect.any(String));

    const norule = await call('prof/norule', { params: null }, bearer(adminToken));
    expect(norule.status).toBe(403);
    expect(norule.body).not.toHaveProperty('result');
  });

  test('failures through the whole path: throw → 502, FunctionError(422) → 422, hang → 504 at the deadline, no replica → 503 fast', async () => {
    await replica('fail', {
      boom: () => {
        throw new Error('kaboom: the function broke');
      },
      reject: () => Promise.reject(new FunctionError(422, 'quantity must be positive')),
      hang: (_p, ctx) => hangUntilAborted(ctx),
    });
    await routable('fail');

    const boom = await call('fail/boom');
    expect(boom.status).toBe(502);
    expect(boom.body.error).toContain('kaboom: the function broke');

    const reject = await call('fail/reject');
    expect(reject.status).toBe(422);
    expect(reject.body.error).toBe('quantity must be positive');

    const timeout = 800;
    const hang = await call('fail/hang', { params: null, timeout });
    expect(hang.status).toBe(504);
    // x-fnmesh-deadline has whole-millisecond resolution, so the function may give up up to 1 ms early
    expect(hang.ms).toBeGreaterThanOrEqual(timeout - 1);
    expect(hang.ms).toBeLessThan(timeout + 2000);

    const ghost = await call('ghost/boo', { params: null, timeout: 5000 });
    expect(ghost.status).toBe(503);
    expect(ghost.ms).toBeLessThan(1000);
  });

  test('a function process that crashes mid-call → 502 at once, not a hang', async () => {
    requireBuilt();
    const fnDir = mkdtempSync(path.join(dir, 'crash-'));
    const { proc, port } = await spawnFunctionProcess(fnDir, { REPLICA_NAME: 'crash-0' });
    cleanups.push(() => proc.stop('SIGKILL'));
    // a replica of "fail" that only has this crashing process behind it
    const sidecar = await startSidecarFor({
      natsUrl: broker.url,
      namespace: NS,
      service: 'fail',
      functionPort: port,
      env: { FNMESH_NATS_CREDS: await auth.credsFor(NS, 'fail') },
    });
    cleanups.push(() => sidecar.stop());
    await routable('fail');

    const a = await call('fail/die', { params: null, timeout: 8000 });
    expect(a.status).toBe(502);
    expect(a.body.error).toEqual(expect.any(String));
    expect(a.ms).toBeLessThan(2000);
    // the process really died in the middle of the call
    await expect(proc.exit).resolves.toEqual({ code: 1, signal: null });
  });

  test('calls spread fairly across 3 replicas (each ≥ 15% of 300)', async () => {
    const names = ['r0', 'r1', 'r2'];
    for (const name of names) await replica('spread', { who: () => ({ replica: name }) });
    await routable('spread');

    const counts: Record<string, number> = {};
    const failures: Answer[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < 300) {
          next++;
          const a = await call('spread/who');
          if (a.status !== 200) failures.push(a);
          else {
            const r = (a.body.result as { replica: string }).replica;
            counts[r] = (counts[r] ?? 0) + 1;
          }
        }
      }),
    );
    expect(failures).toEqual([]);
    expect(Object.keys(counts).sort()).toEqual(names);
    expect(Object.values(counts).reduce((s, n) => s + n, 0)).toBe(300);
    for (const name of names) expect(counts[name]).toBeGreaterThanOrEqual(45);
  });

  test('function-to-function: the target rule sees the caller and the end user; direct and foreign calls get 403; the inner call inherits the deadline', async () => {
    const seenByA: { status?: number; deadline?: number } = {};
    const seenByB: { deadline?: number } = {};
    await replica('a', {
      viaSecret: (_p, ctx) => ctx.call('b', 'secret', { from: 'a' }),
      viaMine: async (_p, ctx) => {
        try {
          return { ok: true, result: await ctx.call('b', 'mine') };
        } catch (err) {
          return { ok: false, isCallError: err instanceof CallError, status: (err as CallError).status };
        }
      },
      viaHang: async (_p, ctx) => {
        seenByA.deadline = ctx.deadline.getTime();
        try {
          return await ctx.call('b', 'hang');
        } catch (err) {
          seenByA.status = (err as CallError).status;
          throw err;
        }
      },
    });
    await replica('b', {
      secret: (params: unknown, ctx) => ({ secret: 42, caller: ctx.caller, params }),
      mine: (_p, ctx) => ({ sub: ctx.claims?.sub, caller: ctx.caller }),
      hang: (_p, ctx) => {
        seenByB.deadline = ctx.deadline.getTime();
        return hangUntilAborted(ctx);
      },
    });
    await replica('c', {
      tryit: async (_p, ctx) => {
        try {
          return { ok: true, result: await ctx.call('b', 'secret') };
        } catch (err) {
          return {
            ok: false,
            isCallError: err instanceof CallError,
            status: (err as CallError).status,
            message: (err as Error).message,
          };
        }
      },
    });
    for (const s of ['a', 'b', 'c']) await routable(s);

    const via = await call('a/viaSecret');
    expect(via.status).toBe(200);
    expect(via.body.result).toEqual({ secret: 42, caller: `${NS}/a`, params: { from: 'a' } });

    const direct = await call('b/secret');
    expect(direct.status).toBe(403);

    const fromC = await call('c/tryit');
    expect(fromC.status).toBe(200);
    expect(fromC.body.result).toMatchObject({ ok: false, isCallError: true, status: 403 });

    const alice = await call('a/viaMine', { params: null }, bearer(await token({ sub: 'alice' })));
    expect(alice.status).toBe(200);
    expect(alice.body.result).toEqual({ ok: true, result: { sub: 'alice', caller: `${NS}/a` } });
    const bob = await call('a/viaMine', { params: null }, bearer(await token({ sub: 'bob' })));
    expect(bob.status).toBe(200);
    expect(bob.body.result).toEqual({ ok: false, isCallError: true, status: 403 });
    // no end user at all: B's rule reads args.auth, so the documented answer is 401
    const nobody = await call('a/viaMine');
    expect(nobody.body.result).toEqual({ ok: false, isCallError: true, status: 401 });

    const timeout = 1000;
    const hang = await call('a/viaHang', { params: null, timeout });
    expect(hang.status).toBe(504);
    expect(hang.ms).toBeGreaterThanOrEqual(timeout - 1);
    expect(hang.ms).toBeLessThan(timeout + 2000);
    // B got A's remaining budget, not a fresh one
    expect(seenByA.deadline).toEqual(expect.any(Number));
    expect(seenByB.deadline).toEqual(expect.any(Number));
    expect(seenByB.deadline!).toBeLessThanOrEqual(seenByA.deadline! + 50);
    expect(seenByA.deadline! - seenByB.deadline!).toBeLessThan(300);
    await waitFor(() => seenByA.status !== undefined, { what: "A's ctx.call to settle" });
    expect(seenByA.status).toBe(504);
  });

  test('the request id and a valid traceparent travel to the function (and the trace into an internal call)', async () => {
    await replica('trace', {
      meta: (_p, ctx) => ({ requestId: ctx.requestId, traceparent: ctx.traceparent ?? null }),
      relay: async (_p, ctx) => ({
        outer: { requestId: ctx.requestId, traceparent: ctx.traceparent ?? null },
        inner: await ctx.call('trace', 'meta'),
      }),
    });
    await routable('trace');
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const tp = `00-${traceId}-00f067aa0ba902b7-01`;

    const a = await call('trace/meta', { params: null }, { 'x-request-id': 'e2e-req-1', traceparent: tp });
    expect(a.status).toBe(200);
    expect(a.headers.get('x-request-id')).toBe('e2e-req-1');
    const r = a.body.result as { requestId: string; traceparent: string };
    expect(r.requestId).toBe('e2e-req-1');
    expect(r.traceparent.split('-')[1]).toBe(traceId);

    const fresh = await call('trace/meta');
    const f = fresh.body.result as { requestId: string; traceparent: string };
    expect(f.requestId).toBe(fresh.headers.get('x-request-id'));
    expect(f.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
    expect(f.traceparent.split('-')[1]).not.toBe(traceId);

    const relay = await call('trace/relay', { params: null }, { 'x-request-id': 'e2e-req-2', traceparent: tp });
    expect(relay.status).toBe(200);
    const rr = relay.body.result as {
      outer: { requestId: string; traceparent: string };
      inner: { traceparent: string };
    };
    expect(rr.outer.requestId).toBe('e2e-req-2');
    expect(rr.inner.traceparent.split('-')[1]).toBe(traceId);
  });

  test('rules hot-reload: rewriting the manifest turns allow into deny and routes a new function', async () => {
    await replica('hot', { go: () => ({ went: true }), fresh: () => ({ fresh: true }) });
    await routable('hot');
    expect((await call('hot/go')).status).toBe(200);
    expect((await call('hot/fresh')).status).toBe(404);

    writeFileSync(path.join(manifestDir, 'hot.yaml'), hotManifest('deny', true));
    await waitFor(async () => (await call('hot/go')).status === 403, { what: 'hot/go denied after the rewrite' });
    await waitFor(async () => (await call('hot/fresh')).status === 200, { what: 'hot/fresh routed after the rewrite' });
    const fresh = await call('hot/fresh');
    expect(fresh.body).toEqual({ result: { fresh: true } });
  });

  test('SIGTERM to a replica process under steady load: zero failed calls, exit 0, the other replica takes over', async () => {
    requireBuilt();
    await replica('steady', {
      who: async () => {
        await new Promise((r) => setTimeout(r, 5));
        return { replica: 'inproc' };
      },
    });
    const fnDir = mkdtempSync(path.join(dir, 'steady-'));
    const fn = await spawnFunctionProcess(fnDir, { REPLICA_NAME: 'proc', DELAY_MS: '50', TRACE_IN_FLIGHT: '1' });
    cleanups.push(() => fn.proc.stop('SIGKILL'));
    const sc: { proc: Proc } = await spawnSidecarProcess({
      FNMESH_NAMESPACE: NS,
      FNMESH_SERVICE: 'steady',
      FNMESH_FUNCTIONS: 'who',
      FNMESH_NATS_URL: broker.url,
      FNMESH_NATS_CREDS: await auth.credsFor(NS, 'steady'),
      FNMESH_FUNCTION_PORT: String(fn.port),
      FNMESH_DRAIN_TIMEOUT_MS: '5000',
    });
    cleanups.push(() => sc.proc.stop('SIGKILL'));

    const loadStart = Date.now();
    const load = steadyLoad(gw.url, `${NS}/functions/steady/who`, 8, 5000);
    let exitedAt = 0;
    let signalledAt = 0;
    try {
      await waitFor(
        () =>
          load.results.filter((r) => r.replica === 'proc').length >= 30 &&
          load.results.some((r) => r.startedAt > loadStart + 1000),
        {
          what: 'the process replica to take calls for a second',
        },
      );
      // Signal while the function runs a call (each takes 50 ms), so that the drain has one to finish.
      await waitFor(() => inFlightCalls(fn.proc) > 0, { intervalMs: 1, what: 'a call running at the process replica' });
      signalledAt = Date.now();
      expect(sc.proc.child.kill('SIGTERM')).toBe(true);
      const exit = await withDeadline(
        sc.proc.exit,
        10_000,
        () => `the sidecar did not exit within 10 s after SIGTERM: ${sc.proc.output()}`,
      );
      exitedAt = Date.now();
      expect(exit).toEqual({ code: 0, signal: null });
      expect(exitedAt - signalledAt).toBeLessThan(8000);
      await waitFor(
        () =>
          load.results.filter((r) => r.startedAt > exitedAt).length >= 100 &&
          load.results.some((r) => r.startedAt > exitedAt + 1000),
        {
          what: 'a second of calls after the replica stopped',
        },
      );
    } finally {
      await load.stop();
    }
    const failed = load.results.filter((r) => r.status !== 200);
    expect(failed).toEqual([]);
    const after = load.results.filter((r) => r.startedAt > exitedAt);
    expect(after.length).toBeGreaterThanOrEqual(100);
    expect(after.every((r) => r.replica === 'inproc')).toBe(true);
    expect(load.results.filter((r) => r.replica === 'proc').length).toBeGreaterThanOrEqual(30);
    // calls that were in flight at the stopping replica when SIGTERM came were finished by it
    expect(
      load.results.filter((r) => r.replica === 'proc' && r.startedAt <= signalledAt && r.endedAt > signalledAt).length,
    ).toBeGreaterThan(0);
    // the function process is still there and stops on SIGTERM too
    await expect(fn.proc.stop('SIGTERM')).resolves.toEqual({ code: 0, signal: null });
  });

  // Last: it restarts the broker under everything else.
  test('the NATS server restarted under load: calls fail fast (503) during the outage and recover by themselves', async () => {
    await replica('resil', { ping: () => ({ replica: 'pong' }) });
    await routable('resil');
    const timeout = 3000;
    const load = steadyLoad(gw.url, `${NS}/functions/resil/ping`, 4, timeout, 10);
    let killedAt = 0;
    let startedAt = 0;
    let recoveredAt = 0;
    try {
      await waitFor(() => load.results.filter((r) => r.status === 200).length >= 20, {
        what: 'steady calls before the outage',
      });
      killedAt = Date.now();
      await broker.kill();
      // calls in the first RECONNECT_WAIT_MS after the disconnect wait for a reconnect (a server of a NATS
      // cluster died: the client moves on in milliseconds); from then on they fail at once
      const waitOver = killedAt + RECONNECT_WAIT_MS + 200;
      await waitFor(() => load.results.filter((r) => r.startedAt > waitOver).length >= 20, {
        what: 'calls during the outage, after the reconnect wait',
      });
      startedAt = Date.now();
      await broker.start();
      const firstOk = await waitFor(() => load.results.find((r) => r.startedAt > startedAt && r.status === 200), {
        timeoutMs: 20_000,
        what: 'a successful call after the broker came back',
      });
      recoveredAt = firstOk.endedAt;
      await waitFor(() => load.results.filter((r) => r.startedAt > recoveredAt).length >= 50, {
        what: 'calls after recovery',
      });
    } finally {
      await load.stop();
    }
    const before = load.results.filter((r) => r.endedAt < killedAt);
    expect(before.every((r) => r.status === 200)).toBe(true);
    const during = load.results.filter((r) => r.startedAt > killedAt && r.endedAt < startedAt);
    expect(during.length).toBeGreaterThanOrEqual(20);
    // fast failures, not hangs: each answered 503, none later than the reconnect wait allows (well under the
    // call's timeout), and once that wait is over each at once
    // (a call in flight when the connection died may have run: 502, at most one per load worker)
    const lostInFlight = (r: { status: number; error?: string }): boolean =>
      r.status === 502 && /lost its NATS connection while the call .* was in flight/.test(r.error ?? '');
    expect(during.filter((r) => r.status !== 503 && !lostInFlight(r))).toEqual([]);
    expect(during.filter(lostInFlight).length).toBeLessThanOrEqual(4);
    expect(Math.max(...during.map((r) => r.endedAt - r.startedAt))).toBeLessThan(RECONNECT_WAIT_MS + 500);
    const afterWait = during.filter((r) => r.startedAt > killedAt + RECONNECT_WAIT_MS + 200);
    expect(afterWait.length).toBeGreaterThanOrEqual(20);
    expect(Math.max(...afterWait.map((r) => r.endedAt - r.startedAt))).toBeLessThan(1000);
    // every call straddling the kill was answered well before its deadline as well
    const straddling = load.results.filter((r) => r.startedAt <= killedAt && r.endedAt >= killedAt);
    for (const r of straddling) expect(r.endedAt - r.startedAt).toBeLessThan(timeout);
    // after the first success, everything succeeds again with no manual reconnect
    const after = load.results.filter((r) => r.startedAt > recoveredAt);
    expect(after.length).toBeGreaterThanOrEqual(50);
    expect(after.filter((r) => r.status !== 200)).toEqual([]);
    expect(recoveredAt - startedAt).toBeLessThan(20_000);
  });
});
