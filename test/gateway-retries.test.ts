/**
 * The gateway's retries and circuit breaker over a real NATS. Replicas are plain NATS subscribers in the
 * service's queue group that answer as a sidecar would (not executed, may have run, or the result) and
 * record every message they receive: what each attempt was sent with is asserted, never how long it took.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  ATTEMPTS_HTTP_HEADER,
  FnmeshError,
  NATS_HEADERS,
  connectNats,
  decodeReply,
  encodeCallHeaders,
  encodeErrorReply,
  serviceCallWildcard,
  serviceQueueGroup,
  silentLogger,
  type ReplyFacts,
} from '../common';
import { ManifestFileSource } from '../common/manifest-source';
import { loadGatewayConfig, startGateway, type Gateway } from '../gateway';
import { BROKER_TARGETS } from './helpers/brokers';
import { waitFor } from './helpers/wait';

const MANIFESTS = `
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: hop }
spec:
  functions: [{ name: go, rule: { rule: allow } }]
---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: hopinternal }
spec:
  functions: [{ name: go, rule: { rule: allow } }]
---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: hoppolicy }
spec:
  functions: [{ name: check }]
---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: guarded }
spec:
  functions: [{ name: door, rule: { rule: func, service: hoppolicy, func: check } }]
---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: flaky }
spec:
  functions:
    - { name: once, rule: { rule: allow } }
    - { name: safe, idempotent: true, rule: { rule: allow } }
    - { name: status, retry: { retryOn: [503] }, rule: { rule: allow } }
    - { name: budget, retry: { attempts: 10, perTryTimeoutMs: 100, retryOn: [timeout] }, rule: { rule: allow } }
---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: gone }
spec:
  circuitBreaker: { consecutiveFailures: 2, openMs: 3000, maxOpenMs: 6000 }
  functions: [{ name: fn, rule: { rule: allow } }]
---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: busy }
spec:
  retry: { attempts: 3 }
  circuitBreaker: { consecutiveFailures: 2 }
  functions: [{ name: fn, rule: { rule: allow } }]
`;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** What a replica received: one message per attempt. */
interface Received {
  /** Receipt order across all replicas. */
  seq: number;
  replica: string;
  fn: string;
  requestId: string;
  /** The Fnmesh-Attempt header (absent on a first attempt). */
  attempt: string | undefined;
  timeoutMs: number;
}

type Answer = { result: unknown } | { error: FnmeshError; facts: ReplyFacts } | 'silence';

interface Replica {
  received: Received[];
  /** Leaves the queue group (as a sidecar whose function went down does). */
  leave(): void;
}

let seq = 0;
/** Every replica made, to leave at the end of each test. */
const replicas: Replica[] = [];

/** A replica of `service`: answers each message as `answer` says, after recording it. */
function replica(
  nc: NatsConnection,
  service: string,
  name: string,
  answer: (fn: string, msg: Msg, self: Replica) => Answer,
): Replica {
  const received: Received[] = [];
  // eslint-disable-next-line prefer-const -- assigned right after the object that leave() closes over
  let sub: Subscription;
  const self: Replica = { received, leave: () => sub.isClosed() || sub.unsubscribe() };
  replicas.push(self);
  sub = nc.subscribe(serviceCallWildcard('default', service), {
    queue: serviceQueueGroup('default', service),
    callback: (_err, msg) => {
      const fn = msg.subject.split('.').pop()!;
      received.push({
        seq: seq++,
        replica: name,
        fn,
        requestId: msg.headers?.get(NATS_HEADERS.requestId) ?? '',
        attempt: msg.headers?.get(NATS_HEADERS.attempt) || undefined,
        timeoutMs: Number(msg.headers?.get(NATS_HEADERS.timeoutMs)),
      });
      const a = answer(fn, msg, self);
      if (a === 'silence') return;
      if ('result' in a) {
        msg.respond(enc.encode(JSON.stringify(a.result)));
        return;
      }
      const reply = encodeErrorReply(a.error, { ...a.facts, replica: name });
      msg.respond(reply.data, { headers: reply.headers });
    },
  });
  return self;
}

/** A sidecar's answer for a call its function never got: it also leaves its queue group, as a sidecar does. */
const functionDown = (self: Replica): Answer => {
  self.leave();
  return {
    error: new FnmeshError('unavailable', 'the function process is not reachable'),
    facts: { notExecuted: 'function-down' },
  };
};

describe.each(BROKER_TARGETS)('gateway retries and circuit breaker on $name', (target) => {
  let broker: Awaited<ReturnType<(typeof BROKER_TARGETS)[number]['start']>>;
  let gw: Gateway;
  let nc: NatsConnection;
  let dir: string;

  async function call(
    fnPath: string,
    body: unknown = { params: null },
  ): Promise<{ status: number; headers: Headers; body: { result?: unknown; error?: string } }> {
    const res = await fetch(`${gw.url}/v1/api/default/functions/${fnPath}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
  }

  /** What these replicas received, in the order they received it. */
  const all = (...of: Replica[]): Received[] => of.flatMap((r) => r.received).sort((x, y) => x.seq - y.seq);

  afterEach(async () => {
    for (const r of replicas.splice(0)) r.leave();
    await nc.flush();
  });

  beforeAll(async () => {
    broker = await target.start();
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-gw-retries-'));
    writeFileSync(path.join(dir, 'services.yaml'), MANIFESTS);
    const config = loadGatewayConfig({
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_NATS_URL: broker.url,
      FNMESH_SHUTDOWN_TIMEOUT_MS: '2000',
    });
    gw = await startGateway(config, {
      logger: silentLogger,
      ruleSource: new ManifestFileSource([dir], { debounceMs: 20 }),
    });
    nc = await connectNats({ servers: [broker.url], name: 'test-replicas', logger: silentLogger });
  });

  afterAll(async () => {
    await gw?.stop();
    await nc?.close();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sends a call the first replica did not run to another one: 200, fnmesh-attempts 2, same request id', async () => {
    const a = replica(nc, 'hop', 'a', (_fn, _msg, self) => functionDown(self));
    const b = replica(nc, 'hop', 'b', () => ({ result: { by: 'b' } }));
    await nc.flush();
    // NATS picks a queue member at random: call until one call went to a first (then it has left).
    const answers: Awaited<ReturnType<typeof call>>[] = [];
    await waitFor(
      async () => {
        answers.push(await call('hop/go'));
        return a.received.length > 0;
      },
      { what: 'a call that reached replica a' },
    );
    for (const ans of answers) expect(ans.status).toBe(200);
    const hopped = answers.at(-1)!;
    expect(hopped.body.result).toEqual({ by: 'b' });
    expect(hopped.headers.get(ATTEMPTS_HTTP_HEADER)).toBe('2');
    for (const ans of answers.slice(0, -1)) expect(ans.headers.get(ATTEMPTS_HTTP_HEADER)).toBeNull();
    const id = a.received[0]!.requestId;
    expect(hopped.headers.get('x-request-id')).toBe(id);
    expect(a.received).toEqual([expect.objectContaining({ requestId: id, attempt: undefined })]);
    expect(b.received.filter((r) => r.requestId === id)).toEqual([expect.objectContaining({ attempt: '2' })]);
  });

  it('answers a call that may have run 502 and sends it once, when the function did not opt in to retries', async () => {
    const answer = (): Answer => ({
      error: new FnmeshError('function_failed', 'the connection to the function broke mid-answer'),
      facts: { failure: 'reset' },
    });
    const a = replica(nc, 'flaky', 'a', answer);
    const b = replica(nc, 'flaky', 'b', answer);
    await nc.flush();
    const ans = await call('flaky/once');
    expect(ans.status).toBe(502);
    expect(ans.body.error).toBe('the connection to the function broke mid-answer');
    expect(ans.headers.get(ATTEMPTS_HTTP_HEADER)).toBeNull();
    expect(all(a, b)).toHaveLength(1);
    a.leave();
    b.leave();
  });

  it('retries a call that may have run when the function is idempotent, or retries that status', async () => {
    const seen = new Set<string>();
    const failFirst = (fn: string, msg: Msg): Answer => {
      const id = msg.headers!.get(NATS_HEADERS.requestId);
      if (seen.has(id)) return { result: { fn } };
      seen.add(id);
      return fn === 'status'
        ? {
            error: new FnmeshError('function_failed', 'the function answered 503'),
            facts: { failure: 'status', functionStatus: 503 },
          }
        : { error: new FnmeshError('function_failed', 'the connection broke'), facts: { failure: 'reset' } };
    };
    const a = replica(nc, 'flaky', 'a', failFirst);
    const b = replica(nc, 'flaky', 'b', failFirst);
    await nc.flush();
    for (const fn of ['safe', 'status']) {
      const ans = await call(`flaky/${fn}`);
      expect(ans.status).toBe(200);
      expect(ans.body.result).toEqual({ fn });
      expect(ans.headers.get(ATTEMPTS_HTTP_HEADER)).toBe('2');
      const sent = all(a, b).filter((r) => r.fn === fn);
      expect(sent.map((r) => r.attempt)).toEqual([undefined, '2']);
      expect(new Set(sent.map((r) => r.requestId)).size).toBe(1);
    }
    a.leave();
    b.leave();
  });

  it('stops retrying at the deadline: no attempt is sent with more time than the call has left', async () => {
    const a = replica(nc, 'flaky', 'a', () => 'silence');
    const b = replica(nc, 'flaky', 'b', () => 'silence');
    await nc.flush();
    const timeoutMs = 350;
    const ans = await call('flaky/budget', { params: null, timeout: timeoutMs });
    expect(ans.status).toBe(504);
    const sent = all(a, b).filter((r) => r.fn === 'budget');
    // each attempt ran out its own 100 ms before the next was sent: at most ~4 fit in 350 ms, never the 10 allowed
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(sent.length).toBeLessThanOrEqual(4);
    let spent = 0;
    sent.forEach((r, i) => {
      expect(r.timeoutMs).toBeLessThanOrEqual(100);
      // what was left when it was sent: the deadline less the attempts before it (each lasted its whole budget)
      expect(r.timeoutMs).toBeLessThanOrEqual(timeoutMs - spent + i);
      spent += r.timeoutMs;
    });
    a.leave();
    b.leave();
  });

  it('answers 503 when no replica can take a call, then opens the circuit, then lets a probe through and recovers', async () => {
    const listing = async (): Promise<{ state: string; failuresInARow: number; openUntil?: string }> => {
      const body = (await (await fetch(`${gw.opsUrl}/v1/services`)).json()) as {
        services: { name: string; functions: { name: string; circuitBreaker: never }[] }[];
      };
      return body.services.find((s) => s.name === 'gone')!.functions[0]!.circuitBreaker;
    };
    // Every replica answers "not executed" (and stays): the attempts of the policy, then 503.
    const down = (): Answer => ({
      error: new FnmeshError('unavailable', 'the function is down'),
      facts: { notExecuted: 'function-down' },
    });
    const a = replica(nc, 'gone', 'a', down);
    const b = replica(nc, 'gone', 'b', down);
    await nc.flush();
    const first = await call('gone/fn');
    expect(first.status).toBe(503);
    expect(first.headers.get(ATTEMPTS_HTTP_HEADER)).toBe('4');
    expect(first.body.error).toMatch(
      /^no replica of default\/gone could take the call to default\/gone\.fn \(4 attempts;/,
    );
    expect(all(a, b)).toHaveLength(4);
    expect(await listing()).toMatchObject({ state: 'closed', failuresInARow: 1 });

    // Then nobody is subscribed at all: the second call in a row no replica could take opens the circuit.
    a.leave();
    b.leave();
    await nc.flush();
    const second = await call('gone/fn');
    expect(second.status).toBe(503);
    expect(second.body.error).toMatch(/no replica of the service is subscribed/);
    const open = await listing();
    expect(open).toMatchObject({ state: 'open', failuresInARow: 2 });
    expect(Date.parse(open.openUntil!)).toBeGreaterThan(0);

    // A replica is back, but the circuit is open: answered at once, nothing reaches the replica.
    const back = replica(nc, 'gone', 'back', () => ({ result: { ok: true } }));
    await nc.flush();
    const refused = await call('gone/fn');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^[1-3]$/);
    expect(refused.headers.get(ATTEMPTS_HTTP_HEADER)).toBeNull();
    expect(refused.body.error).toMatch(
      /^the circuit breaker of default\/gone\.fn is open: 2 calls in a row found no replica of default\/gone that could take them; the gateway lets a trial call through in \d+ ms; retry after [1-3] s/,
    );
    expect(back.received).toHaveLength(0);

    // Once openMs passed, the next call is the probe: it reaches the replica, and the circuit closes.
    await waitFor(async () => (await call('gone/fn')).status === 200, { what: 'the probe to succeed' });
    expect(back.received).toHaveLength(1);
    expect(await listing()).toEqual(expect.objectContaining({ state: 'closed', failuresInARow: 0 }));
    expect((await call('gone/fn')).status).toBe(200);
    expect(back.received).toHaveLength(2);

    const metrics = await (await fetch(`${gw.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /fnmesh_gateway_circuit_openings_total\{namespace="default",service="gone",function="fn",component="gateway"\} 1/,
    );
    expect(metrics).toMatch(
      /fnmesh_gateway_circuit_refusals_total\{namespace="default",service="gone",function="fn",component="gateway"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /fnmesh_gateway_circuit_state\{namespace="default",service="gone",function="fn",component="gateway"\} 0/,
    );
    expect(metrics).toMatch(
      /fnmesh_gateway_retries_total\{namespace="default",service="gone",function="fn",reason="function-down",component="gateway"\} 3/,
    );
    back.leave();
  });

  it('answers 429 when every replica that got the call was full; answers a replica gave never open the circuit', async () => {
    const full = (_fn: string, msg: Msg): Answer =>
      msg.headers?.get(NATS_HEADERS.requestId)?.startsWith('bad-')
        ? { error: new FnmeshError('bad_request', 'name is required', 422), facts: {} }
        : { error: new FnmeshError('overloaded', 'the queue is full'), facts: { notExecuted: 'overloaded' } };
    const a = replica(nc, 'busy', 'a', full);
    await nc.flush();
    const ans = await call('busy/fn');
    expect(ans.status).toBe(429);
    expect(ans.headers.get(ATTEMPTS_HTTP_HEADER)).toBe('3');
    expect(ans.body.error).toBe(
      'every replica of default/busy that got the call to default/busy.fn was at its concurrency limit (3 attempts); retry later, or give the service more replicas or concurrency',
    );
    // A replica's own answers (here a 422) are calls a replica took: they start the count again.
    for (let i = 0; i < 3; i++) {
      const bad = await fetch(`${gw.url}/v1/api/default/functions/busy/fn`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': `bad-${i}` },
        body: '{}',
      });
      expect(bad.status).toBe(422);
      expect((await call('busy/fn')).status).toBe(429);
    }
    expect(a.received).toHaveLength(3 + 3 * 4);
  });

  it('retries internal calls the same way, and tells the calling sidecar the attempts', async () => {
    const a = replica(nc, 'hopinternal', 'a', (_fn, _msg, self) => functionDown(self));
    const b = replica(nc, 'hopinternal', 'b', () => ({ result: { by: 'b' } }));
    await nc.flush();
    const subject = 'fnmesh.gw.default.caller.default.hopinternal.go';
    let last: Msg | undefined;
    let n = 0;
    await waitFor(
      async () => {
        last = await nc.request(subject, enc.encode('null'), {
          timeout: 5000,
          headers: encodeCallHeaders({ requestId: `internal-${++n}`, timeoutMs: 5000 }),
        });
        return a.received.length > 0;
      },
      { what: 'an internal call that reached replica a' },
    );
    const reply = decodeReply(last!.data, last!.headers);
    expect(reply.ok && JSON.parse(dec.decode(reply.body))).toEqual({ by: 'b' });
    expect(last!.headers?.get(NATS_HEADERS.attempt)).toBe('2');
    const id = a.received[0]!.requestId;
    expect(id).toBe(`internal-${n}`);
    expect(b.received.filter((r) => r.requestId === id)).toEqual([expect.objectContaining({ attempt: '2' })]);
    b.leave();
  });

  it("retries a func rule's call to its function the same way", async () => {
    const a = replica(nc, 'hoppolicy', 'a', (_fn, _msg, self) => functionDown(self));
    const b = replica(nc, 'hoppolicy', 'b', () => ({ result: { ack: true } }));
    const door = replica(nc, 'guarded', 'door', () => ({ result: { opened: true } }));
    await nc.flush();
    const answers: Awaited<ReturnType<typeof call>>[] = [];
    await waitFor(
      async () => {
        answers.push(await call('guarded/door'));
        return a.received.length > 0;
      },
      { what: 'a rule call that reached replica a' },
    );
    for (const ans of answers) expect(ans).toMatchObject({ status: 200, body: { result: { opened: true } } });
    // the rule's attempts are the rule's: the call itself took one
    expect(answers.at(-1)!.headers.get(ATTEMPTS_HTTP_HEADER)).toBeNull();
    const id = a.received[0]!.requestId;
    expect(b.received.filter((r) => r.requestId === id)).toEqual([expect.objectContaining({ attempt: '2' })]);
    expect(door.received.filter((r) => r.requestId === id)).toHaveLength(1);
    b.leave();
    door.leave();
  });
});
