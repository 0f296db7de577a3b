/**
 * The sidecar when its function fails: a real nats-server, real function processes (test/helpers/
 * function-process.ts) that are SIGKILLed, hang, fail and come back on the same port. A NATS client plays the
 * gateway (no retries here: every answer is what the sidecar said); a plain subscriber in the same queue group
 * plays "another replica", so that leaving and rejoining the queue group shows in who answers.
 */
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  callSubject,
  decodeReply,
  encodeCallHeaders,
  serviceCallWildcard,
  serviceQueueGroup,
  silentLogger,
  type CallMeta,
  type DecodedReply,
} from '../common';
import { loadSidecarConfig } from '../sidecar/config';
import { startSidecar, type Sidecar } from '../sidecar';
import { startNatsServer, type RunningNatsServer } from './helpers/nats-server';
import { functionProcess, type FunctionProcess } from './helpers/function-process';
import { waitFor } from './helpers/wait';

const NS = 'fail';
let nats: RunningNatsServer;
let nc: NatsConnection;
const cleanups: Array<() => Promise<unknown>> = [];
let counter = 0;
const enc = new TextEncoder();
const dec = new TextDecoder();

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function sidecarFor(service: string, fp: FunctionProcess, env: Record<string, string> = {}): Promise<Sidecar> {
  const sidecar = await startSidecar(
    loadSidecarConfig({
      FNMESH_NAMESPACE: NS,
      FNMESH_SERVICE: service,
      FNMESH_NATS_URL: nats.url,
      FNMESH_FUNCTION_PORT: String(fp.port),
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_CALL_LISTEN: '127.0.0.1:0',
      FNMESH_DRAIN_TIMEOUT_MS: '2000',
      ...env,
    }),
    { logger: silentLogger },
  );
  cleanups.push(() => sidecar.stop());
  await waitFor(() => sidecar.readiness().ready, { what: `sidecar of ${service} ready` });
  return sidecar;
}

async function fn(): Promise<FunctionProcess> {
  const fp = await functionProcess();
  cleanups.push(() => fp.kill());
  return fp;
}

/** "Another replica": answers "other" in the service's queue group. */
function otherReplica(service: string): { answered: number; sub: Subscription } {
  const state = { answered: 0, sub: undefined as unknown as Subscription };
  state.sub = nc.subscribe(serviceCallWildcard(NS, service), {
    queue: serviceQueueGroup(NS, service),
    callback: (_err, m) => {
      state.answered++;
      m.respond(enc.encode('"other"'));
    },
  });
  cleanups.push(async () => state.sub.unsubscribe());
  return state;
}

async function call(service: string, f: string, meta: Partial<CallMeta> = {}, natsTimeout = 5_000): Promise<Msg> {
  counter++;
  const headers = encodeCallHeaders({ requestId: `r${counter}`, timeoutMs: 5_000, ...meta });
  return nc.request(callSubject(NS, service, f), enc.encode('{}'), { headers, timeout: natsTimeout });
}

const decoded = (m: Msg): DecodedReply => decodeReply(m.data, m.headers);

/**
 * Waits until the function answers a call through the replica again: readiness turns true when the sidecar
 * subscribes, a moment before the broker has its SUB (calls until then find no responders).
 */
async function servedAgain(service: string): Promise<void> {
  await waitFor(
    async () => {
      const m = await call(service, 'ok', {}, 1_000).catch(() => undefined);
      return m !== undefined && decoded(m).ok && (body(m) as { pid?: number }).pid !== undefined;
    },
    { what: `a call to ${service} answered by its function` },
  );
}

/**
 * Server-side connections to `port` holding bytes the process has not read (/proc/net/tcp: local port,
 * state 01 ESTABLISHED, rx_queue > 0): calls written to the function but not read by it.
 */
function unreadConnections(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(`:${hex}`) && f[3] === '01' && parseInt(f[4]!.split(':')[1]!, 16) > 0).length;
}
const body = (m: Msg): unknown => JSON.parse(dec.decode(m.data));

async function metric(sidecar: Sidecar, line: RegExp): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${sidecar.opsPort}/metrics`);
  const m = line.exec(await res.text());
  return m ? Number(m[1]) : NaN;
}

test('SIGKILL of the function: the first call finding it down is "not executed" and the replica leaves at once; it rejoins when the function is back', async () => {
  const service = 'down';
  const fp = await fn();
  const sidecar = await sidecarFor(service, fp, { FNMESH_REPLICA_ID: 'rep-a' });
  expect(body(await call(service, 'ok'))).toMatchObject({ pid: expect.any(Number) });
  const other = otherReplica(service);
  await fp.kill();
  const executedBefore = fp.executions.ok ?? 0;

  // Calls one after another: each either goes to the other replica or is refused unrun by this one. Once
  // this one has refused a call, every next call goes to the other replica: its UNSUB went out before its reply.
  const answers: string[] = [];
  for (let i = 0; i < 40; i++) {
    const r = decoded(await call(service, 'ok'));
    if (r.ok) answers.push(JSON.parse(dec.decode(r.body)) as string);
    else {
      expect(r).toMatchObject({ notExecuted: 'function-down', replica: 'rep-a' });
      expect(r.error).toMatchObject({ status: 503, code: 'unavailable' });
      answers.push('not executed');
    }
  }
  const refused = answers.indexOf('not executed');
  expect(answers.slice(refused + 1).every((a) => a === 'other')).toBe(true);
  expect(answers.filter((a) => a === 'not executed').length).toBeLessThanOrEqual(1);
  await waitFor(() => !sidecar.readiness().ready, { what: 'not ready while the function is down' });
  expect(await metric(sidecar, /fnmesh_sidecar_taking_calls\{[^}]*\} (\d+)/)).toBe(0);
  expect(await metric(sidecar, /fnmesh_sidecar_queue_group_leaves_total\{reason="function-down"[^}]*\} (\d+)/)).toBe(1);

  // back on the same port: the replica rejoins (health checked every 50 ms) and takes calls again
  await fp.start();
  other.sub.unsubscribe();
  await waitFor(() => sidecar.readiness().ready, { what: 'ready again' });
  await servedAgain(service);
  expect(fp.executions.ok).toBe(executedBefore + 1);
  expect(await metric(sidecar, /fnmesh_sidecar_taking_calls\{[^}]*\} (\d+)/)).toBe(1);
});

test('a function killed with calls unread → those are "not executed" (never run); the one it was running → 502 may have run (socket hang up)', async () => {
  const service = 'freeze';
  const fp = await fn();
  await sidecarFor(service, fp, { FNMESH_REPLICA_ID: 'rep-f' });
  expect(body(await call(service, 'ok'))).toMatchObject({ pid: expect.any(Number) }); // a kept-alive connection
  const running = call(service, 'freeze', { timeoutMs: 20_000 }, 20_000);
  await waitFor(() => fp.executions.freeze === 1, { what: 'the freezing call read' });
  // these reach the process's port but it never reads them: its event loop is blocked
  const unread = Array.from({ length: 3 }, () => call(service, 'ok', { timeoutMs: 20_000 }, 20_000));
  await waitFor(() => unreadConnections(fp.port) === 3, { what: 'three calls written, unread' });
  const okBefore = fp.executions.ok ?? 0;
  await fp.kill();
  const ran = decoded(await running);
  expect(ran).toMatchObject({ ok: false, failure: 'reset', replica: 'rep-f' });
  expect(ran.ok || ran.notExecuted).toBeFalsy();
  expect(!ran.ok && ran.error).toMatchObject({ status: 502, code: 'function_failed' });
  for (const m of await Promise.all(unread))
    expect(decoded(m)).toMatchObject({ ok: false, notExecuted: 'function-down', replica: 'rep-f' });
  expect(fp.executions.ok ?? 0).toBe(okBefore);
});

test("a function that dies after reading a call on a reused connection → 502 'reset', never sent again", async () => {
  const service = 'die';
  const fp = await fn();
  await sidecarFor(service, fp);
  expect(body(await call(service, 'ok'))).toMatchObject({ pid: expect.any(Number) }); // a kept-alive connection
  const r = decoded(await call(service, 'die'));
  expect(r).toMatchObject({ ok: false, failure: 'reset' });
  expect(!r.ok && r.notExecuted).toBeUndefined();
  expect(!r.ok && r.error.message).toMatch(/closed the connection/);
  await fp.start();
  // the call was not carried to the restarted process either
  expect(fp.executions.die).toBe(1);
});

test('a function that hangs (accepts, never answers): the call in flight → 504 may have run; the replica leaves on the failed health check and rejoins when it answers', async () => {
  const service = 'hang';
  const fp = await fn();
  const sidecar = await sidecarFor(service, fp);
  fp.send('hang');
  const r = decoded(await call(service, 'ok', { timeoutMs: 300 }));
  expect(r).toMatchObject({ ok: false, failure: 'timeout' });
  expect(!r.ok && r.error).toMatchObject({ status: 504, code: 'deadline_exceeded' });
  await waitFor(() => !sidecar.readiness().ready, { what: 'not ready: the health check failed' });
  expect(sidecar.readiness()).toMatchObject({ reason: expect.stringContaining('/healthz') });
  const other = otherReplica(service);
  expect(body(await call(service, 'ok'))).toBe('other');
  fp.send('serve');
  await waitFor(() => sidecar.readiness().ready, { what: 'ready again' });
  other.sub.unsubscribe();
  await servedAgain(service);
});

test('calls over the concurrency limit wait in the queue (FIFO); a full queue leaves the group (still ready) until it is empty; a waiting call past its deadline never runs', async () => {
  const service = 'queue';
  const fp = await fn();
  const sidecar = await sidecarFor(service, fp, { FNMESH_CONCURRENCY: '1', FNMESH_QUEUE_LENGTH: '2' });
  const held = call(service, 'hold', { timeoutMs: 10_000 }, 10_000);
  await waitFor(() => fp.executions.hold === 1);
  // waits, and its deadline passes first: 504, never sent to the function
  const expired = decoded(await call(service, 'ok', { timeoutMs: 200 }));
  expect(expired).toMatchObject({ ok: false });
  expect(!expired.ok && expired.error).toMatchObject({ status: 504, code: 'deadline_exceeded' });
  expect(fp.executions.ok).toBeUndefined();

  const q1 = call(service, 'ok', { timeoutMs: 10_000 }, 10_000);
  const q2 = call(service, 'ok', { timeoutMs: 10_000 }, 10_000);
  await waitFor(async () => (await metric(sidecar, /fnmesh_sidecar_queued_calls\{[^}]*\} (\d+)/)) === 2, {
    what: 'two calls waiting',
  });
  // full: out of the queue group, ready all the same
  await waitFor(async () => (await metric(sidecar, /fnmesh_sidecar_taking_calls\{[^}]*\} (\d+)/)) === 0);
  expect(sidecar.readiness().ready).toBe(true);
  const other = otherReplica(service);
  expect(body(await call(service, 'ok'))).toBe('other');
  expect(fp.executions.ok).toBeUndefined();

  fp.send('release');
  expect(body(await held)).toBe('released');
  expect(body(await q1)).toMatchObject({ pid: expect.any(Number) });
  expect(body(await q2)).toMatchObject({ pid: expect.any(Number) });
  await waitFor(async () => (await metric(sidecar, /fnmesh_sidecar_taking_calls\{[^}]*\} (\d+)/)) === 1);
  other.sub.unsubscribe();
  await servedAgain(service);
  expect(await metric(sidecar, /fnmesh_sidecar_queue_group_leaves_total\{reason="overloaded"[^}]*\} (\d+)/)).toBe(1);
});

test('the attempt number reaches the function as x-fnmesh-attempt (absent on the first)', async () => {
  const service = 'attempt';
  const fp = await fn();
  await sidecarFor(service, fp);
  await call(service, 'ok');
  await call(service, 'ok', { attempt: 3 });
  expect(fp.attempts).toEqual(['1', '3']);
});

describe('outlier detection', () => {
  const policy = (p: Record<string, number>): string =>
    JSON.stringify({ consecutiveFailures: 3, failureRatio: 0, ...p });

  test('consecutive 5xx eject the replica (not ready, out of the group) for baseEjectionMs; it rejoins after a passing health check', async () => {
    const service = 'eject';
    const fp = await fn();
    const sidecar = await sidecarFor(service, fp, {
      FNMESH_OUTLIER_DETECTION: policy({ baseEjectionMs: 300, maxEjectionPercent: 100 }),
    });
    for (let i = 0; i < 3; i++) {
      const r = decoded(await call(service, 'fail'));
      expect(r).toMatchObject({ ok: false, failure: 'status', functionStatus: 500 });
      expect(!r.ok && r.error).toMatchObject({ status: 502, code: 'function_failed' });
    }
    await waitFor(() => !sidecar.readiness().ready, { what: 'ejected' });
    expect(sidecar.readiness()).toMatchObject({ reason: expect.stringContaining('outlier detection') });
    expect(await metric(sidecar, /fnmesh_sidecar_ejections_total\{[^}]*\} (\d+)/)).toBe(1);
    await waitFor(() => sidecar.readiness().ready, { what: 'back after the ejection' });
    await servedAgain(service);
  });

  test('maxEjectionPercent 50 with two failing replicas: one is ejected, the other keeps serving (the state shows in micro PING)', async () => {
    const service = 'cap';
    const env = (id: string): Record<string, string> => ({
      FNMESH_REPLICA_ID: id,
      FNMESH_OUTLIER_DETECTION: policy({ baseEjectionMs: 60_000, maxEjectionPercent: 50 }),
    });
    const a = await sidecarFor(service, await fn(), env('cap-a'));
    const b = await sidecarFor(service, await fn(), env('cap-b'));
    const ready = (): boolean[] => [a.readiness().ready, b.readiness().ready];
    // every call fails; go on until one replica is out and the other has refused to go many times over
    await waitFor(
      async () => {
        for (let i = 0; i < 10; i++) await call(service, 'fail').catch(() => undefined);
        return ready().filter((r) => !r).length === 1;
      },
      { what: 'one replica ejected' },
    );
    for (let i = 0; i < 30; i++) {
      const r = decoded(await call(service, 'fail'));
      expect(r).toMatchObject({ ok: false, failure: 'status' });
    }
    expect(ready().filter((r) => r)).toHaveLength(1);
    const states: Record<string, string> = {};
    const [, subject] = ['$SRV.PING', `$SRV.PING.fnmesh-${NS}-${service}`];
    for await (const m of await nc.requestMany(subject!, undefined, {
      strategy: 'stall',
      stall: 150,
      maxWait: 2_000,
    })) {
      const a = JSON.parse(dec.decode(m.data)) as { id: string; metadata: Record<string, string> };
      states[a.id] = a.metadata['fnmesh.state']!;
    }
    expect(Object.values(states).sort()).toEqual(['ejected', 'serving']);
  });
});
