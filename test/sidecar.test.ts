/**
 * The sidecar against a real nats-server and the embedded broker, real HTTP and real functions served by the SDK (or raw node:http
 * where the test must see the exact request). A NATS client plays the gateway.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from '@nats-io/transport-node';
import { errors as natsErrors, headers as natsHeaders, type Msg, type NatsConnection } from '@nats-io/nats-core';
import {
  ATTEMPTS_HTTP_HEADER,
  NATS_HEADERS,
  callSubject,
  decodeClaimsHeader,
  decodeReply,
  encodeCallHeaders,
  encodeErrorReply,
  FnmeshError,
  silentLogger,
  type CallMeta,
} from '../common';
import { loadSidecarConfig, type SidecarConfig } from '../sidecar/config';
import { startSidecar, type Sidecar, microServiceName } from '../sidecar';
import { serve, FunctionError, CallError, type Functions, type ServeHandle } from '../sdk';
import { BROKER_TARGETS, type RunningBroker } from './helpers/brokers';
import { freePort } from './helpers/ports';
import { waitFor } from './helpers/wait';

const NS = 'test';
let nats: RunningBroker;
let nc: NatsConnection;
const cleanups: Array<() => Promise<unknown>> = [];
let svcCounter = 0;

afterEach(async () => {
  const list = cleanups.splice(0).reverse();
  for (const c of list) await c().catch(() => undefined);
});

function uniqueService(): string {
  svcCounter++;
  return `svc${svcCounter}`;
}

async function sidecarFor(
  service: string,
  functionPort: number,
  env: Record<string, string> = {},
): Promise<{ sidecar: Sidecar; config: SidecarConfig }> {
  const config = loadSidecarConfig({
    FNMESH_NAMESPACE: NS,
    FNMESH_SERVICE: service,
    FNMESH_NATS_URL: nats.url,
    FNMESH_FUNCTION_PORT: String(functionPort),
    FNMESH_OPS_LISTEN: '127.0.0.1:0',
    FNMESH_CALL_LISTEN: env.FNMESH_CALL_LISTEN ?? '127.0.0.1:0',
    FNMESH_DRAIN_TIMEOUT_MS: '5000',
    ...env,
  });
  const sidecar = await startSidecar(config, { logger: silentLogger });
  cleanups.push(() => sidecar.stop());
  return { sidecar, config };
}

/** A function served with the SDK plus its sidecar, ready. */
async function replica(
  service: string,
  functions: Functions,
  env: Record<string, string> = {},
): Promise<{ fn: ServeHandle; sidecar: Sidecar; config: SidecarConfig; callPort: number }> {
  const callPort = await freePort();
  const fn = await serve(functions, {
    port: 0,
    handleSignals: false,
    sidecarUrl: `http://127.0.0.1:${callPort}`,
    onError: () => undefined,
  });
  cleanups.push(() => fn.close());
  const { sidecar, config } = await sidecarFor(service, fn.port, {
    FNMESH_CALL_LISTEN: `127.0.0.1:${callPort}`,
    ...env,
  });
  await waitFor(() => sidecar.readiness().ready, { what: `sidecar of ${service} ready` });
  return { fn, sidecar, config, callPort };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

async function call(
  service: string,
  fn: string,
  params: unknown,
  meta: Partial<CallMeta> = {},
  natsTimeout = 5000,
): Promise<Msg> {
  const headers = encodeCallHeaders({
    requestId: meta.requestId ?? `req-${Math.random().toString(36).slice(2)}`,
    timeoutMs: meta.timeoutMs ?? 5000,
    ...meta,
  });
  return nc.request(callSubject(NS, service, fn), enc.encode(JSON.stringify(params)), {
    headers,
    timeout: natsTimeout,
  });
}

/**
 * A replica (drain timeout 200 ms) whose function `stuck` never answers, with one call to it in flight;
 * `pending` settles when that call ends (with the error it gets).
 */
async function stuckCall(): Promise<{
  sidecar: Awaited<ReturnType<typeof replica>>['sidecar'];
  pending: Promise<unknown>;
}> {
  const service = uniqueService();
  let started = false;
  const { sidecar } = await replica(
    service,
    {
      stuck: () => {
        started = true;
        return new Promise(() => undefined);
      },
    },
    { FNMESH_DRAIN_TIMEOUT_MS: '200' },
  );
  const pending = call(service, 'stuck', {}, { timeoutMs: 60_000 }, 1_000).catch((err: unknown) => err);
  await waitFor(() => started);
  return { sidecar, pending };
}

/** Eight callers calling `service.work` in a loop until `stop()`; counts answers by the replica that gave them. */
function callLoad(service: string): {
  readonly ok: number;
  failures: string[];
  byReplica: Record<string, number>;
  stop(): Promise<void>;
} {
  const state = { ok: 0, failures: [] as string[], byReplica: {} as Record<string, number>, running: true };
  const worker = async (): Promise<void> => {
    while (state.running) {
      try {
        const m = await call(service, 'work', {}, { timeoutMs: 5000 }, 5000);
        const r = decodeReply(m.data, m.headers);
        if (r.ok) {
          state.ok++;
          const who = JSON.parse(dec.decode(r.body)) as string;
          state.byReplica[who] = (state.byReplica[who] ?? 0) + 1;
        } else state.failures.push(`${r.error.status} ${r.error.message}`);
      } catch (err) {
        state.failures.push(String(err));
      }
    }
  };
  const workers = Array.from({ length: 8 }, () => worker());
  return {
    get ok() {
      return state.ok;
    },
    failures: state.failures,
    byReplica: state.byReplica,
    async stop() {
      state.running = false;
      await Promise.all(workers);
    },
  };
}

function json(msg: Msg): unknown {
  return JSON.parse(dec.decode(msg.data));
}

function errorOf(msg: Msg): { status: number; code: string; message: string } {
  const r = decodeReply(msg.data, msg.headers);
  if (r.ok) throw new Error(`expected an error reply, got ${dec.decode(msg.data)}`);
  return { status: r.error.status, code: r.error.code, message: r.error.message };
}

async function httpRequest(
  port: number,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }),
        );
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

describe.each(BROKER_TARGETS)('sidecar on %s', (target) => {
  beforeAll(async () => {
    nats = await target.start();
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  test('passes params and result through as bytes, sends metadata headers and never the delegation token', async () => {
    const service = uniqueService();
    const seen: Array<{ url?: string; headers: http.IncomingHttpHeaders; body: string }> = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'GET') {
          res.end('ok');
          return;
        }
        seen.push({ url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"total": 42,  "items":[1,2]}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const { sidecar } = await sidecarFor(service, (server.address() as AddressInfo).port);
    await waitFor(() => sidecar.readiness().ready);

    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const params = '{"sku":  "A-1", "n": 3}';
    const before = Date.now();
    const msg = await nc.request(callSubject(NS, service, 'checkout'), enc.encode(params), {
      timeout: 5000,
      headers: encodeCallHeaders({
        requestId: 'req-123',
        timeoutMs: 4000,
        traceparent,
        claims: { sub: 'user-1', roles: ['a'] },
        caller: 'test/other',
        delegation: 'v1.secret-delegation.sig',
      }),
    });
    expect(msg.headers?.get(NATS_HEADERS.status) ?? '').toBe('');
    expect(dec.decode(msg.data)).toBe('{"total": 42,  "items":[1,2]}');
    expect(seen).toHaveLength(1);
    const got = seen[0]!;
    expect(got.url).toBe('/checkout');
    expect(got.body).toBe(params);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-fnmesh-request-id']).toBe('req-123');
    expect(got.headers['x-fnmesh-timeout-ms']).toBe('4000');
    const deadline = Number(got.headers['x-fnmesh-deadline']);
    expect(deadline).toBeGreaterThanOrEqual(before + 4000 - 50);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 4000);
    expect(decodeClaimsHeader(String(got.headers['x-fnmesh-claims']))).toEqual({ sub: 'user-1', roles: ['a'] });
    expect(got.headers['x-fnmesh-caller']).toBe('test/other');
    expect(got.headers.traceparent).toBe(traceparent);
    const all = JSON.stringify(got.headers).toLowerCase();
    expect(all).not.toContain('secret-delegation');
    expect(Object.keys(got.headers).some((h) => h.includes('delegation') || h.includes('token'))).toBe(false);
  });

  test('the SDK context gets claims, request id, deadline, caller and traceparent', async () => {
    const service = uniqueService();
    await replica(service, {
      whoami: (params: { echo: string }, ctx) => ({
        echo: params.echo,
        claims: ctx.claims,
        requestId: ctx.requestId,
        deadline: ctx.deadline.getTime(),
        caller: ctx.caller,
        traceparent: ctx.traceparent,
        aborted: ctx.signal.aborted,
      }),
      nothing: () => undefined,
    });
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const before = Date.now();
    const msg = await call(
      service,
      'whoami',
      { echo: 'hi' },
      { requestId: 'r-9', timeoutMs: 3000, claims: { sub: 'u' }, caller: 'test/x', traceparent, delegation: 'd' },
    );
    const body = json(msg) as Record<string, unknown>;
    expect(body).toMatchObject({
      echo: 'hi',
      claims: { sub: 'u' },
      requestId: 'r-9',
      caller: 'test/x',
      traceparent,
      aborted: false,
    });
    expect(body.deadline as number).toBeGreaterThanOrEqual(before + 3000 - 50);
    expect(body.deadline as number).toBeLessThanOrEqual(Date.now() + 3000);
    expect(json(await call(service, 'nothing', null))).toBeNull();
  });

  test('a thrown error → 502 function_failed; FunctionError → its 4xx; unknown function → 404', async () => {
    const service = uniqueService();
    await replica(service, {
      boom: () => {
        throw new Error('database exploded');
      },
      picky: (p: { sku?: string }) => {
        if (!p.sku) throw new FunctionError(422, 'sku is required');
        return p.sku;
      },
    });
    const boom = errorOf(await call(service, 'boom', {}));
    expect(boom).toMatchObject({ status: 502, code: 'function_failed' });
    expect(boom.message).toContain('database exploded');
    expect(errorOf(await call(service, 'picky', {}))).toEqual({
      status: 422,
      code: 'bad_request',
      message: 'sku is required',
    });
    expect(json(await call(service, 'picky', { sku: 'x' }))).toBe('x');
    const missing = errorOf(await call(service, 'nope', {}));
    expect(missing).toMatchObject({ status: 404, code: 'not_found' });
    expect(missing.message).toBe(
      'no function "nope" in this service: serve it from this process (and declare it in the manifest\'s spec.functions) or call another name',
    );
    expect(missing.message).not.toContain('picky');
  });

  test('a function answering non-JSON → 502 saying the function must answer JSON; empty 2xx → null', async () => {
    const service = uniqueService();
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/text') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('hello');
        } else if (req.url === '/plain404') {
          res.writeHead(404);
          res.end('not here');
        } else {
          res.writeHead(204);
          res.end();
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const { sidecar } = await sidecarFor(service, (server.address() as AddressInfo).port);
    await waitFor(() => sidecar.readiness().ready);
    const text = errorOf(await call(service, 'text', {}));
    expect(text.status).toBe(502);
    expect(text.message).toMatch(/must answer JSON/);
    expect(json(await call(service, 'empty', {}))).toBeNull();
    expect(errorOf(await call(service, 'plain404', {}))).toEqual({
      status: 404,
      code: 'not_found',
      message: 'not here',
    });
  });

  test('a function hanging past the deadline → 504 near the deadline, and ctx.signal aborts', async () => {
    const service = uniqueService();
    let aborted = false;
    await replica(service, {
      hang: (_p, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            // answers well after the deadline (answering at the very instant of the abort would race the
            // sidecar's own deadline timer, since both fire at the same moment)
            setTimeout(() => resolve('late'), 300);
          });
        }),
    });
    const start = Date.now();
    const e = errorOf(await call(service, 'hang', {}, { timeoutMs: 300 }, 5000));
    const took = Date.now() - start;
    expect(e).toMatchObject({ status: 504, code: 'deadline_exceeded' });
    expect(took).toBeGreaterThanOrEqual(280);
    expect(took).toBeLessThan(2000);
    await waitFor(() => aborted, { what: 'ctx.signal aborted' });
  });

  test('the function process down → 503 "not executed" naming ECONNREFUSED and the replica; it leaves the queue group', async () => {
    const service = uniqueService();
    const { fn, config, sidecar } = await replica(service, { ok: () => 1 }, { FNMESH_REPLICA_ID: 'rep-down' });
    expect(json(await call(service, 'ok', {}))).toBe(1);
    await fn.close();
    const m = await call(service, 'ok', {});
    const r = decodeReply(m.data, m.headers);
    expect(r).toMatchObject({ ok: false, notExecuted: 'function-down', replica: 'rep-down' });
    expect(errorOf(m)).toMatchObject({ status: 503, code: 'unavailable' });
    expect(errorOf(m).message).toContain(
      `function process not reachable on 127.0.0.1:${config.functionPort}: connect ECONNREFUSED`,
    );
    expect(sidecar.readiness()).toMatchObject({ ready: false });
    // out of the queue group: nobody answers now
    await expect(call(service, 'ok', {}, {}, 500)).rejects.toThrow(natsErrors.RequestError);
  });

  test('over the concurrency limit with no queue → 503 "not executed" (overloaded) at once; the others finish', async () => {
    const service = uniqueService();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = 0;
    const { sidecar } = await replica(
      service,
      {
        slow: async () => {
          started++;
          await gate;
          return 'done';
        },
      },
      { FNMESH_CONCURRENCY: '2', FNMESH_QUEUE_LENGTH: '0' },
    );
    // sent in one batch, so that all five reach the replica before it leaves its queue group
    const pending = Array.from({ length: 5 }, () =>
      call(service, 'slow', {}, { timeoutMs: 10_000 }, 10_000)
        .then((m) => ({ m, at: Date.now() }))
        .catch((err: unknown) => ({ err, at: Date.now() })),
    );
    const t0 = Date.now();
    await waitFor(() => started === 2);
    // The three refused ones come back while the two admitted ones are still held.
    const settled: Array<{ m?: Msg; err?: unknown; at: number }> = [];
    pending.forEach((p) => void p.then((r) => settled.push(r)));
    await waitFor(() => settled.length === 3, { what: 'three overloaded replies' });
    for (const s of settled) {
      // refused by the replica, or (sent after its UNSUB reached the broker) by the broker: never run
      if (s.m) {
        expect(decodeReply(s.m.data, s.m.headers)).toMatchObject({ ok: false, notExecuted: 'overloaded' });
        expect(errorOf(s.m)).toMatchObject({ status: 503, code: 'unavailable' });
      } else expect(String(s.err)).toMatch(/no responders/i);
      expect(s.at - t0).toBeLessThan(2000);
    }
    expect(sidecar.readiness().ready).toBe(true); // momentary: still ready
    release();
    const all = await Promise.all(pending);
    expect(all.filter((r) => 'm' in r && r.m && dec.decode(r.m.data) === '"done"')).toHaveLength(2);
    // room again: it took its queue group back
    expect(json(await call(service, 'slow', {}))).toBe('done');
  });

  test('not ready (and not subscribed) until the function answers its health check', async () => {
    const service = uniqueService();
    const port = await freePort();
    const { sidecar } = await sidecarFor(service, port);
    const r = sidecar.readiness();
    expect(r.ready).toBe(false);
    expect(r.reason).toContain(`127.0.0.1:${port}`);
    const readyz = await httpRequest(sidecar.opsPort, 'GET', '/readyz');
    expect(readyz.status).toBe(503);
    expect((await httpRequest(sidecar.opsPort, 'GET', '/healthz')).status).toBe(200);
    await expect(call(service, 'f', {}, {}, 2000)).rejects.toThrow(natsErrors.RequestError);
    const fn = await serve({ f: () => 'up' }, { port, handleSignals: false });
    cleanups.push(() => fn.close());
    await waitFor(() => sidecar.readiness().ready, { what: 'ready after the function came up' });
    expect((await httpRequest(sidecar.opsPort, 'GET', '/readyz')).status).toBe(200);
    expect(json(await call(service, 'f', {}))).toBe('up');
  });

  test('a bad message never crashes the sidecar: no reply subject, bad timeout header', async () => {
    const service = uniqueService();
    await replica(service, { ok: () => 'ok' });
    nc.publish(callSubject(NS, service, 'ok'), enc.encode('{}'));
    const h = encodeCallHeaders({ requestId: 'x', timeoutMs: 1 });
    h.set(NATS_HEADERS.timeoutMs, 'soon');
    const bad = errorOf(
      await nc.request(callSubject(NS, service, 'ok'), enc.encode('{}'), { headers: h, timeout: 2000 }),
    );
    expect(bad.status).toBe(400);
    expect(bad.message).toContain('Fnmesh-Timeout-Ms');
    expect(json(await call(service, 'ok', {}))).toBe('ok');
  });

  test('calls spread across three replicas in one queue group', async () => {
    const service = uniqueService();
    for (const id of ['a', 'b', 'c']) await replica(service, { who: () => id });
    const counts: Record<string, number> = {};
    for (let i = 0; i < 60; i++) {
      const who = json(await call(service, 'who', {})) as string;
      counts[who] = (counts[who] ?? 0) + 1;
    }
    expect(Object.keys(counts).sort()).toEqual(['a', 'b', 'c']);
  });

  test('graceful stop under steady load: zero failed calls while another replica stays up', async () => {
    const service = uniqueService();
    const slow = (id: string) => async () => {
      await new Promise((r) => setTimeout(r, 5));
      return id;
    };
    const a = await replica(service, { work: slow('a') });
    await replica(service, { work: slow('b') });
    const load = callLoad(service);
    const { failures, byReplica } = load;
    await waitFor(() => load.ok >= 100, { what: '100 calls before the stop' });
    const stopping = a.sidecar.stop();
    expect(a.sidecar.readiness().ready).toBe(false);
    await stopping;
    const afterStop = load.ok;
    await waitFor(() => load.ok >= afterStop + 100, { what: '100 calls after the stop' });
    await load.stop();
    expect(failures).toEqual([]);
    expect(byReplica.a).toBeGreaterThan(0);
    expect(byReplica.b).toBeGreaterThan(0);
  });

  test('stop is bounded by FNMESH_DRAIN_TIMEOUT_MS when a call never finishes', async () => {
    const { sidecar, pending } = await stuckCall();
    const t0 = Date.now();
    await sidecar.stop();
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(sidecar.readiness().ready).toBe(false);
    await pending;
  });

  test('GET /drain under steady load: the replica stops taking calls, finishes its in-flight ones, stays alive until stop()', async () => {
    const service = uniqueService();
    const aCalls = { started: 0, running: 0 };
    const a = await replica(service, {
      work: async () => {
        aCalls.started++;
        aCalls.running++;
        await new Promise((r) => setTimeout(r, 20));
        aCalls.running--;
        return 'a';
      },
    });
    await replica(service, { work: async () => (await new Promise((r) => setTimeout(r, 20)), 'b') });
    const load = callLoad(service);
    const { failures, byReplica } = load;
    await waitFor(() => load.ok >= 100 && aCalls.running > 0, {
      what: '100 calls, and calls running on the replica to drain',
    });

    const drainStarted = Date.now();
    const drain = await httpRequest(a.sidecar.opsPort, 'GET', '/drain');
    const drainTook = Date.now() - drainStarted;
    // Answered only once the drain is complete: nothing of this replica's is still running.
    expect(drain.status).toBe(200);
    expect(JSON.parse(drain.body)).toEqual({ status: 'drained', inFlight: 0 });
    expect(aCalls.running).toBe(0);
    expect(drainTook).toBeLessThan(3_000);
    const aStartedAtDrain = aCalls.started;

    const readyz = await httpRequest(a.sidecar.opsPort, 'GET', '/readyz');
    expect(readyz.status).toBe(503);
    expect(JSON.parse(readyz.body)).toMatchObject({
      status: 'unavailable',
      reason: expect.stringContaining('draining'),
    });
    expect(a.sidecar.readiness().ready).toBe(false);

    // The other replica takes every call from now on; the drained one gets none.
    const afterDrain = load.ok;
    await waitFor(() => load.ok >= afterDrain + 100, { what: '100 calls after the drain' });
    expect(aCalls.started).toBe(aStartedAtDrain);

    // Still alive: liveness, the ops server and the call API answer; a second drain is the same, at once.
    expect((await httpRequest(a.sidecar.opsPort, 'GET', '/healthz')).status).toBe(200);
    expect((await httpRequest(a.callPort, 'GET', '/v1/call/t/f')).status).toBe(405);
    const again = await httpRequest(a.sidecar.opsPort, 'GET', '/drain');
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body)).toEqual({ status: 'drained', inFlight: 0 });

    await load.stop();
    expect(failures).toEqual([]);
    expect(byReplica.a).toBeGreaterThan(0);
    expect(byReplica.b).toBeGreaterThan(0);

    // The later SIGTERM only closes: no second drain.
    const t0 = Date.now();
    await a.sidecar.stop();
    expect(Date.now() - t0).toBeLessThan(1_000);
    // Closed (a kept-alive socket of the test's agent may see a hang-up instead of a refusal).
    await expect(httpRequest(a.sidecar.opsPort, 'GET', '/healthz')).rejects.toThrow(
      /ECONNREFUSED|socket hang up|ECONNRESET/,
    );
  });

  test('GET /drain is bounded by FNMESH_DRAIN_TIMEOUT_MS and answers with the calls left; stop() then closes at once', async () => {
    const { sidecar, pending } = await stuckCall();
    const t0 = Date.now();
    const drain = await httpRequest(sidecar.opsPort, 'GET', '/drain');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(drain.status).toBe(200);
    expect(JSON.parse(drain.body)).toEqual({ status: 'timeout', inFlight: 1 });
    expect((await httpRequest(sidecar.opsPort, 'POST', '/drain')).status).toBe(405);
    const t1 = Date.now();
    await sidecar.stop();
    expect(Date.now() - t1).toBeLessThan(1_500);
    await pending;
  });

  describe('call API', () => {
    interface Seen {
      subject: string;
      delegation?: string;
      parentId?: string;
      timeoutMs: number;
      traceparent?: string;
      requestId: string;
      body: string;
    }
    function playGateway(answer: (s: Seen) => { ok: unknown; attempts?: number } | FnmeshError): {
      seen: Seen[];
      stop: () => void;
    } {
      const seen: Seen[] = [];
      const sub = nc.subscribe('fnmesh.gw.>', {
        queue: 'fnmesh.gateway',
        callback: (_err, m) => {
          const s: Seen = {
            subject: m.subject,
            timeoutMs: Number(m.headers?.get(NATS_HEADERS.timeoutMs)),
            requestId: m.headers?.get(NATS_HEADERS.requestId) ?? '',
            body: dec.decode(m.data),
          };
          const delegation = m.headers?.get(NATS_HEADERS.delegation);
          if (delegation) s.delegation = delegation;
          const parentId = m.headers?.get(NATS_HEADERS.parentId);
          if (parentId) s.parentId = parentId;
          const tp = m.headers?.get(NATS_HEADERS.traceparent);
          if (tp) s.traceparent = tp;
          seen.push(s);
          const a = answer(s);
          if (a instanceof FnmeshError) {
            const r = encodeErrorReply(a);
            if (s.body.includes('retried')) r.headers.set(NATS_HEADERS.attempt, '3');
            m.respond(r.data, { headers: r.headers });
          } else if (a.attempts !== undefined) {
            const h = natsHeaders();
            h.set(NATS_HEADERS.attempt, String(a.attempts));
            m.respond(enc.encode(JSON.stringify(a.ok)), { headers: h });
          } else m.respond(enc.encode(JSON.stringify(a.ok)));
        },
      });
      const stop = (): void => sub.unsubscribe();
      cleanups.push(async () => stop());
      return { seen, stop };
    }

    test('ctx.call goes to the gateway subject with the inherited delegation token, parent id, traceparent and budget', async () => {
      const service = uniqueService();
      const gw = playGateway((s) =>
        s.subject.endsWith('.deny')
          ? new FnmeshError('forbidden', 'rule says no')
          : { ok: { reserved: JSON.parse(s.body) } },
      );
      await replica(service, {
        order: async (p: { sku: string }, ctx) => {
          const inner = await ctx.call('inventory', 'reserve', { sku: p.sku });
          const other = await ctx.call('billing', 'charge', null, { namespace: 'payments', timeoutMs: 1000 });
          let denied: unknown;
          try {
            await ctx.call('inventory', 'deny', {});
          } catch (err) {
            denied = err instanceof CallError ? { status: err.status, message: err.message } : String(err);
          }
          return { inner, other, denied };
        },
      });
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const msg = await call(
        service,
        'order',
        { sku: 'S1' },
        { requestId: 'in-1', timeoutMs: 4000, delegation: 'v1.grant.mac', traceparent },
      );
      expect(json(msg)).toEqual({
        inner: { reserved: { sku: 'S1' } },
        other: { reserved: null },
        denied: { status: 403, message: 'rule says no' },
      });
      expect(gw.seen.map((s) => s.subject)).toEqual([
        `fnmesh.gw.${NS}.${service}.${NS}.inventory.reserve`,
        `fnmesh.gw.${NS}.${service}.payments.billing.charge`,
        `fnmesh.gw.${NS}.${service}.${NS}.inventory.deny`,
      ]);
      for (const s of gw.seen) {
        expect(s.delegation).toBe('v1.grant.mac');
        expect(s.parentId).toBe('in-1');
        expect(s.traceparent).toBe(traceparent);
        expect(s.timeoutMs).toBeLessThanOrEqual(4000);
        expect(s.requestId).not.toBe('');
        expect(s.requestId).not.toBe('in-1');
      }
      // The remaining inbound budget, or the smaller timeout the function asked for.
      expect(gw.seen[0]!.timeoutMs).toBeGreaterThan(2000);
      expect(gw.seen[1]!.timeoutMs).toBe(1000);
      expect(gw.seen[2]!.timeoutMs).toBeGreaterThan(2000);
    });

    test('the attempts the gateway made for a call reach the function as fnmesh-attempts, on results and errors', async () => {
      const service = uniqueService();
      playGateway((s) =>
        s.body.includes('fails')
          ? new FnmeshError('unavailable', 'no replica could take it')
          : s.body.includes('retried')
            ? { ok: 'second time lucky', attempts: 2 }
            : { ok: 'first time' },
      );
      const { callPort } = await replica(service, { f: () => 1 });
      const once = await httpRequest(callPort, 'POST', '/v1/call/target/fn', '{"params": "once"}');
      expect(once.status).toBe(200);
      expect(once.headers[ATTEMPTS_HTTP_HEADER]).toBeUndefined();
      const twice = await httpRequest(callPort, 'POST', '/v1/call/target/fn', '{"params": "retried"}');
      expect(JSON.parse(twice.body)).toEqual({ result: 'second time lucky' });
      expect(twice.headers[ATTEMPTS_HTTP_HEADER]).toBe('2');
      const failed = await httpRequest(callPort, 'POST', '/v1/call/target/fn', '{"params": "retried, then fails"}');
      expect(failed.status).toBe(503);
      expect(failed.headers[ATTEMPTS_HTTP_HEADER]).toBe('3');
    });

    test('direct calls: no request id → no identity and the default budget; bad bodies → 400; other paths → 404/405; too large → 413', async () => {
      const service = uniqueService();
      const gw = playGateway(() => ({ ok: [1, 2] }));
      const { callPort } = await replica(service, { f: () => 1 }, { FNMESH_TIMEOUT_MS: '7000' });
      const ok = await httpRequest(callPort, 'POST', '/v1/call/target/fn', '{"params": {"a": 1}}');
      expect(ok).toMatchObject({ status: 200 });
      expect(JSON.parse(ok.body)).toEqual({ result: [1, 2] });
      expect(gw.seen[0]).toMatchObject({
        subject: `fnmesh.gw.${NS}.${service}.${NS}.target.fn`,
        timeoutMs: 7000,
        body: '{"a": 1}', // the params as the function wrote them, not re-serialized
      });
      expect(gw.seen[0]!.delegation).toBeUndefined();
      expect(gw.seen[0]!.parentId).toBeUndefined();
      const withTimeout = await httpRequest(callPort, 'POST', '/v1/call/other/target/fn', '{"timeout": 1234}', {
        'x-fnmesh-request-id': 'unknown',
      });
      expect(withTimeout.status).toBe(200);
      expect(gw.seen[1]).toMatchObject({
        subject: `fnmesh.gw.${NS}.${service}.other.target.fn`,
        timeoutMs: 1234,
        body: 'null',
      });

      const cases: Array<[string, string | undefined, number, RegExp]> = [
        ['/v1/call/t/f', 'not json', 400, /not valid JSON/],
        ['/v1/call/t/f', '[1]', 400, /JSON object/],
        ['/v1/call/t/f', '', 400, /empty/],
        ['/v1/call/t/f', '{"timeout": -1}', 400, /positive whole number/],
        ['/v1/call/t/f', '{"timeout": 1.5}', 400, /positive whole number/],
        ['/v1/call/t/f', '{"timeout": "5"}', 400, /positive whole number/],
        ['/v1/call/Bad_Svc/f', '{}', 400, /service "Bad_Svc" is not valid/],
        ['/v1/call/t/f.g', '{}', 400, /function "f.g" is not valid/],
        ['/v1/other', '{}', 404, /no such path/],
        ['/v1/call/a/b/c/d', '{}', 404, /no such path/],
      ];
      for (const [path, body, status, message] of cases) {
        const r = await httpRequest(callPort, 'POST', path, body);
        expect({ path, body, status: r.status }).toEqual({ path, body, status });
        expect((JSON.parse(r.body) as { error: string }).error).toMatch(message);
      }
      const get = await httpRequest(callPort, 'GET', '/v1/call/t/f');
      expect(get.status).toBe(405);
      expect(get.headers.allow).toBe('POST');
      const big = await httpRequest(
        callPort,
        'POST',
        '/v1/call/t/f',
        JSON.stringify({ params: 'x'.repeat(1024 * 1024) }),
      );
      expect(big.status).toBe(413);
      gw.stop();
      await nc.flush();
      const none = await httpRequest(callPort, 'POST', '/v1/call/t/f', '{}');
      expect(none.status).toBe(503);
      expect(JSON.parse(none.body)).toEqual({ error: 'no fnmesh gateway is answering internal calls on NATS' });
    });

    test.each(['stop()', 'GET /drain'])(
      'during a graceful %s the call API keeps working for the calls still running',
      async (how) => {
        const service = uniqueService();
        playGateway(() => ({ ok: 'inner' }));
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let started = false;
        const a = await replica(service, {
          order: async (_p, ctx) => {
            started = true;
            await gate;
            return ctx.call('inventory', 'reserve', {});
          },
        });
        const pending = call(service, 'order', {}, { timeoutMs: 5000 });
        await waitFor(() => started);
        let stopped = false;
        const stopping = (how === 'stop()' ? a.sidecar.stop() : httpRequest(a.sidecar.opsPort, 'GET', '/drain')).then(
          () => (stopped = true),
        );
        await waitFor(() => !a.sidecar.readiness().ready);
        expect(stopped).toBe(false);
        release();
        expect(json(await pending)).toBe('inner');
        await stopping;
        expect(stopped).toBe(true);
        if (how === 'GET /drain') await a.sidecar.stop();
      },
    );

    test('a gateway that does not answer in time → 504', async () => {
      const service = uniqueService();
      const sub = nc.subscribe('fnmesh.gw.>', { callback: () => undefined });
      cleanups.push(async () => sub.unsubscribe());
      const { callPort } = await replica(service, { f: () => 1 });
      const r = await httpRequest(callPort, 'POST', '/v1/call/t/f', '{"timeout": 200}');
      expect(r.status).toBe(504);
    });
  });

  test('NATS micro discovery: $SRV.PING / INFO / STATS', async () => {
    const service = uniqueService();
    await replica(
      service,
      {
        add: (p: { a: number; b: number }) => p.a + p.b,
        fail: () => {
          throw new Error('nope');
        },
      },
      { FNMESH_FUNCTIONS: 'add,fail', FNMESH_REPLICA_ID: 'rep-1' },
    );
    expect(json(await call(service, 'add', { a: 1, b: 2 }))).toBe(3);
    errorOf(await call(service, 'fail', {}));
    errorOf(await call(service, 'undeclared', {}));
    const name = microServiceName(NS, service);
    expect(name).toBe(`fnmesh-${NS}-${service}`);

    const collect = async (subject: string): Promise<Array<Record<string, unknown>>> => {
      const out: Array<Record<string, unknown>> = [];
      for await (const m of await nc.requestMany(subject, undefined, { strategy: 'stall', stall: 150, maxWait: 2000 }))
        out.push(JSON.parse(dec.decode(m.data)) as Record<string, unknown>);
      return out;
    };
    const identity = {
      name,
      id: 'rep-1',
      version: '0.1.0',
      metadata: { namespace: NS, service, replica: 'rep-1', 'fnmesh.state': 'serving' },
    };
    const pings = await collect('$SRV.PING');
    expect(pings).toContainEqual({ ...identity, type: 'io.nats.micro.v1.ping_response' });
    expect(await collect(`$SRV.PING.${name}`)).toEqual([{ ...identity, type: 'io.nats.micro.v1.ping_response' }]);
    expect(await collect(`$SRV.PING.${name}.rep-1`)).toHaveLength(1);
    await expect(collect(`$SRV.PING.${name}.other`)).rejects.toThrow(/no responders/);

    const [info] = await collect(`$SRV.INFO.${name}.rep-1`);
    expect(info).toEqual({
      ...identity,
      type: 'io.nats.micro.v1.info_response',
      description: expect.any(String),
      endpoints: ['add', 'fail'].map((fn) => ({
        name: fn,
        subject: callSubject(NS, service, fn),
        queue_group: `fnmesh.${NS}.${service}`,
        metadata: { namespace: NS, service, function: fn },
      })),
    });
    expect(await collect(`$SRV.INFO.${name}`)).toHaveLength(1);

    const [stats] = await collect(`$SRV.STATS.${name}`);
    expect(stats).toMatchObject({ ...identity, type: 'io.nats.micro.v1.stats_response' });
    expect(new Date(stats!.started as string).toISOString()).toBe(stats!.started);
    const endpoints = stats!.endpoints as Array<Record<string, unknown>>;
    expect(endpoints.map((e) => e.name)).toEqual(['add', 'fail', 'undeclared']);
    for (const e of endpoints) {
      expect(Object.keys(e).sort()).toEqual(
        [
          'average_processing_time',
          'last_error',
          'name',
          'num_errors',
          'num_requests',
          'processing_time',
          'queue_group',
          'subject',
        ].sort(),
      );
      expect(Number.isInteger(e.processing_time)).toBe(true);
      expect(Number.isInteger(e.average_processing_time)).toBe(true);
      expect(typeof e.last_error).toBe('string');
      expect(e.num_requests).toBe(1);
      expect(e.processing_time as number).toBeGreaterThan(0);
    }
    expect(endpoints[0]).toMatchObject({ num_errors: 0, last_error: '' });
    expect(endpoints[1]).toMatchObject({ num_errors: 1 });
    expect(endpoints[1]!.last_error).toMatch(/^502:.*nope/);
    expect(endpoints[2]).toMatchObject({ num_errors: 1, subject: callSubject(NS, service, 'undeclared') });
  });

  test('metrics: calls, in-flight, health and NATS gauges on /metrics', async () => {
    const service = uniqueService();
    const { sidecar } = await replica(service, { ok: () => 1 });
    await call(service, 'ok', {});
    const m = await httpRequest(sidecar.opsPort, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.body).toMatch(/fnmesh_sidecar_calls_total\{function="ok",outcome="ok",component="sidecar"\} 1/);
    expect(m.body).toContain('fnmesh_sidecar_call_duration_seconds_bucket');
    expect(m.body).toMatch(/fnmesh_sidecar_inflight_calls\{component="sidecar"\} 0/);
    expect(m.body).toMatch(/fnmesh_sidecar_function_healthy\{component="sidecar"\} 1/);
    expect(m.body).toMatch(/fnmesh_sidecar_nats_connected\{component="sidecar"\} 1/);
    expect(m.body).toContain('fnmesh_sidecar_overloaded_total');
  });
});
