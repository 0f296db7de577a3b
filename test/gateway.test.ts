/**
 * The gateway end to end over real HTTP and a real NATS (nats-server and the embedded broker). The function
 * side is played by plain NATS queue subscribers in this test; rules come from manifest files in a temp dir.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Msg, NatsConnection } from '@nats-io/nats-core';
import { SignJWT } from 'jose';
import {
  FnmeshError,
  NATS_HEADERS,
  connectNats,
  decodeReply,
  encodeCallHeaders,
  encodeErrorReply,
  serviceCallWildcard,
  serviceQueueGroup,
  silentLogger,
} from '../common';
import { ManifestFileSource } from '../common/manifest-source';
import { NOT_CONNECTED_MESSAGE, RECONNECT_WAIT_MS, loadGatewayConfig, startGateway, type Gateway } from '../gateway';
import { BROKER_TARGETS } from './helpers/brokers';
import { waitFor } from './helpers/wait';

const SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';
const ORIGIN = 'https://app.example.com';

const GREETER = `
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: greeter }
spec:
  functions:
    - name: hello
      rule: { rule: allow }
    - name: whoami
      rule: { rule: authenticated }
    - name: admin
      rule: { rule: match, type: string, eval: "==", f1: args.auth.role, f2: admin }
    - name: norule
    - name: slow
      timeoutMs: 400
      rule: { rule: allow }
    - name: fail
      rule: { rule: allow }
    - name: checked
      rule: { rule: func, service: policy, func: check }
---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: policy }
spec:
  functions: [{ name: check }]
---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: ghost }
spec:
  functions: [{ name: boo, rule: { rule: allow } }]
---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: frontend }
spec:
  functions:
    - name: relay
      rule: { rule: authenticated }
---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: backend }
spec:
  functions:
    - name: data
      rule: { rule: match, type: string, eval: "==", f1: args.caller, f2: default/frontend }
`;

const reloadManifest = (rule: string): string => `
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: reloadme }
spec:
  functions:
    - name: go
      rule: { rule: ${rule} }
`;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Plays the function side of a service: answers each call by function name. */
function serveService(
  nc: NatsConnection,
  service: string,
  handler: (fn: string, params: unknown, msg: Msg) => unknown,
): void {
  nc.subscribe(serviceCallWildcard('default', service), {
    queue: serviceQueueGroup('default', service),
    callback: (_err, msg) => {
      const fn = msg.subject.split('.').pop()!;
      const params: unknown = msg.data.length ? JSON.parse(dec.decode(msg.data)) : null;
      try {
        const result = handler(fn, params, msg);
        if (result === undefined) return; // never answer
        msg.respond(enc.encode(JSON.stringify(result)));
      } catch (err) {
        const reply = encodeErrorReply(
          err instanceof FnmeshError ? err : new FnmeshError('function_failed', String(err)),
        );
        msg.respond(reply.data, { headers: reply.headers });
      }
    },
  });
}

async function token(claims: Record<string, unknown>, expiresIn = '1h'): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(enc.encode(SECRET));
}

interface Answer {
  status: number;
  headers: Headers;
  body: { result?: unknown; error?: string };
  ms: number;
}

describe.each(BROKER_TARGETS)('gateway on $name', (target) => {
  let broker: Awaited<ReturnType<(typeof BROKER_TARGETS)[number]['start']>>;
  let gw: Gateway;
  let nc: NatsConnection;
  let dir: string;

  async function call(
    fnPath: string,
    body: unknown = { params: null },
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const started = Date.now();
    const res = await fetch(`${gw.url}/v1/api/default/functions/${fnPath}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: text ? (JSON.parse(text) as Answer['body']) : {},
      ms: Date.now() - started,
    };
  }

  beforeAll(async () => {
    broker = await target.start();
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-gw-'));
    writeFileSync(path.join(dir, 'greeter.yaml'), GREETER);
    writeFileSync(path.join(dir, 'reload.yaml'), reloadManifest('deny'));
    const config = loadGatewayConfig({
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_NATS_URL: broker.url,
      FNMESH_JWT_SECRET: SECRET,
      FNMESH_CORS_ORIGINS: ORIGIN,
      FNMESH_MAX_BODY_BYTES: '10000',
      FNMESH_SHUTDOWN_TIMEOUT_MS: '2000',
    });
    gw = await startGateway(config, {
      logger: silentLogger,
      ruleSource: new ManifestFileSource([dir], { debounceMs: 20 }),
    });
    nc = await connectNats({ servers: [broker.url], name: 'test-functions', logger: silentLogger });
    serveService(nc, 'greeter', (fn, params, msg) => {
      switch (fn) {
        case 'slow':
          return undefined;
        case 'fail':
          if ((params as { kind?: string })?.kind === 'client')
            throw new FnmeshError('bad_request', 'name is required', 422);
          throw new FnmeshError('function_failed', 'the function crashed');
        default:
          return {
            fn,
            params,
            claims: msg.headers?.get(NATS_HEADERS.claims) ? JSON.parse(msg.headers.get(NATS_HEADERS.claims)) : null,
            requestId: msg.headers?.get(NATS_HEADERS.requestId),
            timeoutMs: Number(msg.headers?.get(NATS_HEADERS.timeoutMs)),
            traceparent: msg.headers?.get(NATS_HEADERS.traceparent),
            delegation: msg.headers?.get(NATS_HEADERS.delegation) ?? null,
          };
      }
    });
    serveService(nc, 'policy', (_fn, params) => ({ ack: (params as { ok?: boolean } | null)?.ok === true }));
    serveService(nc, 'backend', (_fn, params, msg) => ({ caller: msg.headers?.get(NATS_HEADERS.caller), params }));
    serveService(nc, 'reloadme', () => ({ ok: true }));
    // What the frontend's sidecar received with a call: every header, to check what it is (and is not) given.
    serveService(nc, 'frontend', (_fn, _params, msg) => {
      const headers: Record<string, string> = {};
      for (const k of msg.headers?.keys() ?? []) headers[k] = msg.headers!.get(k);
      return { headers };
    });
    await nc.flush();
  });

  afterAll(async () => {
    await gw?.stop();
    await nc?.close();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('calls a function and wraps its result', async () => {
    const a = await call('greeter/hello', { params: { name: 'Ada' }, timeout: 2000, extra: 'ignored' });
    expect(a.status).toBe(200);
    expect(a.body.result).toMatchObject({ fn: 'hello', params: { name: 'Ada' }, claims: null });
    const r = a.body.result as { timeoutMs: number; traceparent: string };
    expect(r.timeoutMs).toBeGreaterThan(1000);
    expect(r.timeoutMs).toBeLessThanOrEqual(2000);
    expect(r.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it('echoes a sane request id, replaces an insane one, and forwards a valid traceparent', async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const a = await call('greeter/hello', { params: 1 }, { 'x-request-id': 'req-123.abc', traceparent: tp });
    expect(a.headers.get('x-request-id')).toBe('req-123.abc');
    expect(a.body.result).toMatchObject({ requestId: 'req-123.abc', traceparent: tp });
    const b = await call('greeter/hello', { params: 1 }, { 'x-request-id': 'bad id with spaces' });
    expect(b.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('takes an empty body as params null', async () => {
    const res = await fetch(`${gw.url}/v1/api/default/functions/greeter/hello`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { result: { params: unknown } }).result.params).toBeNull();
  });

  describe('JWT', () => {
    it('gives verified claims to the rule and to the function', async () => {
      const t = await token({ sub: 'u1', role: 'admin' });
      const a = await call('greeter/admin', { params: {} }, { authorization: `Bearer ${t}` });
      expect(a.status).toBe(200);
      expect(a.body.result).toMatchObject({ claims: { sub: 'u1', role: 'admin' } });
      const u = await call(
        'greeter/admin',
        { params: {} },
        { authorization: `Bearer ${await token({ sub: 'u2', role: 'user' })}` },
      );
      expect(u.status).toBe(403);
      expect(u.body.error).toBe('the rule of default/greeter.admin denies this call');
      expect((await call('greeter/whoami', { params: {} }, { authorization: `Bearer ${t}` })).status).toBe(200);
      // anonymous and the rule reads the identity: 401, since signing in may change the answer
      const anon = await call('greeter/whoami');
      expect(anon.status).toBe(401);
      expect(anon.body.error).toBe(
        'the rule of default/greeter.whoami needs a signed-in caller: send Authorization: Bearer <JWT>',
      );
    });

    it('answers 401 for expired, garbage and alg-none tokens, even on an allow rule', async () => {
      const expired = await new SignJWT({ sub: 'u' })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
        .sign(enc.encode(SECRET));
      const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"admin","role":"admin"}').toString('base64url')}.`;
      const wrongKey = await new SignJWT({ sub: 'u' })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(enc.encode('another-secret-another-secret-another-secret'));
      for (const t of [expired, 'garbage', none, wrongKey]) {
        const a = await call('greeter/hello', { params: {} }, { authorization: `Bearer ${t}` });
        expect(a.status).toBe(401);
        expect(a.body.error).toEqual(expect.any(String));
      }
      expect((await call('greeter/hello', { params: {} }, { authorization: 'Basic abc' })).status).toBe(401);
    });
  });

  describe('rules', () => {
    it('denies a function with no rule (gateway default)', async () => {
      const a = await call('greeter/norule');
      expect(a.status).toBe(403);
      expect(a.body.error).toBe('the rule of default/greeter.norule denies this call');
    });

    it('round-trips a func rule through NATS', async () => {
      const ok = await call('greeter/checked', { params: { ok: true } });
      expect(ok.status).toBe(200);
      const no = await call('greeter/checked', { params: { ok: false } });
      expect(no.status).toBe(403);
    });

    it('hot-reloads rules from the manifest files and keeps the last good file', async () => {
      expect((await call('reloadme/go')).status).toBe(403);
      writeFileSync(path.join(dir, 'reload.yaml'), reloadManifest('allow'));
      await waitFor(async () => (await call('reloadme/go')).status === 200, { what: 'the allow rule to load' });
      writeFileSync(
        path.join(dir, 'reload.yaml'),
        'apiVersion: fnmesh.io/v1alpha1\nkind: FunctionService\nmetadata: {name: reloadme}\nspec: {functions: [{name: go, rule: {rule: maybe}}]}\n',
      );
      writeFileSync(path.join(dir, 'marker.yaml'), reloadManifest('deny').replace('reloadme', 'marker'));
      await waitFor(async () => (await call('marker/go')).status === 403, { what: 'the marker service to load' });
      expect((await call('reloadme/go')).status).toBe(200);
      rmSync(path.join(dir, 'marker.yaml'));
      await waitFor(async () => (await call('marker/go')).status === 404, {
        what: 'the deleted file to drop its service',
      });
    });
  });

  describe('routing and bad input', () => {
    it('404s unknown services and functions with clear messages', async () => {
      const s = await call('nope/hello');
      expect(s.status).toBe(404);
      expect(s.body.error).toBe('service "nope" is not in namespace "default"');
      const f = await call('greeter/nope');
      expect(f.status).toBe(404);
      expect(f.body.error).toBe(
        'service default/greeter has no function "nope": check the function name, or declare "nope" (or a "default" function) in the service\'s manifest under spec.functions',
      );
      expect(f.body.error).not.toContain('hello');
      const other = await fetch(`${gw.url}/v2/whatever`);
      expect(other.status).toBe(404);
      expect(((await other.json()) as { error: string }).error).toContain('/v1/api/{namespace}/functions');
    });

    it('400s a bad path segment, malformed JSON and wrong shapes', async () => {
      const seg = await call('Greeter/hello');
      expect(seg.status).toBe(400);
      expect(seg.body.error).toMatch(/^service "Greeter"/);
      const bad = await call('greeter/hello', '{"params": ');
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatch(/^request body is not valid JSON: /);
      const shape = await call('greeter/hello', { params: 1, timeout: '5s' });
      expect(shape.status).toBe(400);
      expect(shape.body.error).toMatch(/"timeout"/);
      const arr = await call('greeter/hello', [1, 2]);
      expect(arr.status).toBe(400);
    });

    it('405s other methods with allow: POST and 415s non-JSON bodies', async () => {
      const g = await fetch(`${gw.url}/v1/api/default/functions/greeter/hello`);
      expect(g.status).toBe(405);
      expect(g.headers.get('allow')).toBe('POST');
      const t = await call('greeter/hello', 'params=1', { 'content-type': 'text/plain' });
      expect(t.status).toBe(415);
    });

    it('413s a body over the limit, declared or streamed', async () => {
      const big = await call('greeter/hello', { params: 'x'.repeat(20_000) });
      expect(big.status).toBe(413);
      const url = new URL(`${gw.url}/v1/api/default/functions/greeter/hello`);
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'POST',
            headers: { 'content-type': 'application/json' },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.write('{"params":"');
        const chunk = 'y'.repeat(4096);
        let sent = 0;
        const pump = (): void => {
          if (sent > 50_000 || req.destroyed) return;
          sent += chunk.length;
          req.write(chunk, () => setImmediate(pump));
        };
        pump();
      });
      expect(status).toBe(413);
      // the gateway still works afterwards
      expect((await call('greeter/hello')).status).toBe(200);
    });
  });

  describe('replies and deadlines', () => {
    it('answers 503 at once when no replica is subscribed', async () => {
      const a = await call('ghost/boo', { params: {}, timeout: 5000 });
      expect(a.status).toBe(503);
      expect(a.body.error).toBe(
        "no replica of default/ghost could take the call to default/ghost.boo (4 attempts; no replica of the service is subscribed); check that the service's replicas are running and their functions healthy",
      );
      expect(a.headers.get('fnmesh-attempts')).toBe('4');
      expect(a.ms).toBeLessThan(2500);
    });

    it('answers 504 near the deadline when the function never answers', async () => {
      const a = await call('greeter/slow', { params: {}, timeout: 60_000 }); // capped to the function's 400 ms
      expect(a.status).toBe(504);
      expect(a.ms).toBeGreaterThanOrEqual(350);
      expect(a.ms).toBeLessThan(3000);
      const b = await call('greeter/slow', { params: {}, timeout: 150 });
      expect(b.status).toBe(504);
      expect(b.ms).toBeLessThan(390);
    });

    it('passes function errors through: 4xx kept, failures 502', async () => {
      const c = await call('greeter/fail', { params: { kind: 'client' } });
      expect(c.status).toBe(422);
      expect(c.body.error).toBe('name is required');
      const s = await call('greeter/fail', { params: {} });
      expect(s.status).toBe(502);
      expect(s.body.error).toBe('the function crashed');
    });
  });

  describe('CORS and ops', () => {
    it('answers preflight for allowed origins and tags answers', async () => {
      const pre = await fetch(`${gw.url}/v1/api/default/functions/greeter/hello`, {
        method: 'OPTIONS',
        headers: {
          origin: ORIGIN,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      expect(pre.headers.get('access-control-allow-methods')).toBe('POST');
      expect(pre.headers.get('access-control-allow-headers')).toContain('authorization');
      expect(pre.headers.get('access-control-max-age')).toBeTruthy();
      expect(pre.headers.get('access-control-allow-credentials')).toBe('true');
      expect(pre.headers.get('vary')).toContain('Origin');
      const a = await call('greeter/hello', { params: 1 }, { origin: ORIGIN });
      expect(a.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      expect(a.headers.get('access-control-allow-credentials')).toBe('true');
      expect(a.headers.get('vary')).toBe('Origin');
      const other = await call('greeter/hello', { params: 1 }, { origin: 'https://evil.example.com' });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      expect(other.headers.get('vary')).toBe('Origin');
      const evilPre = await fetch(`${gw.url}/v1/api/default/functions/greeter/hello`, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' },
      });
      expect([...evilPre.headers.keys()].filter((h) => h.startsWith('access-control-'))).toEqual([]);
    });

    it('serves healthz and readyz on both ports, metrics and the service listing on the ops port', async () => {
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
      expect((await fetch(`${gw.opsUrl}/healthz`)).status).toBe(200);
      expect((await fetch(`${gw.opsUrl}/readyz`)).status).toBe(200);
      expect((await fetch(`${gw.url}/metrics`)).status).toBe(404);
      expect((await fetch(`${gw.url}/v1/services`)).status).toBe(404);
      const m = await (await fetch(`${gw.opsUrl}/metrics`)).text();
      expect(m).toMatch(/fnmesh_gateway_requests_total{[^}]*function="hello"[^}]*status="200"/);
      expect(m).toContain('fnmesh_gateway_rule_denials_total');
      const list = (await (await fetch(`${gw.opsUrl}/v1/services`)).json()) as { services: { name: string }[] };
      expect(list.services.map((s) => s.name)).toEqual(expect.arrayContaining(['greeter', 'policy', 'backend']));
    });
  });

  describe('internal calls', () => {
    async function internal(
      caller: string,
      fnPath: string,
      params: unknown,
      extra: { delegation?: string; parentId?: string; header?: [string, string] } = {},
    ): Promise<{ status: number; body: unknown }> {
      const { header, ...meta } = extra;
      const headers = encodeCallHeaders({ requestId: 'int-1', timeoutMs: 2000, ...meta });
      if (header) headers.set(header[0], header[1]);
      const msg = await nc.request(
        `fnmesh.gw.default.${caller}.default.${fnPath.replace('/', '.')}`,
        enc.encode(JSON.stringify(params)),
        { timeout: 3000, headers },
      );
      const reply = decodeReply(msg.data, msg.headers);
      return reply.ok
        ? { status: 200, body: JSON.parse(dec.decode(reply.body)) as unknown }
        : { status: reply.error.status, body: reply.error.message };
    }

    it('applies the target rule with args.caller and forwards Fnmesh-Caller', async () => {
      const ok = await internal('frontend', 'backend/data', { q: 1 });
      expect(ok).toEqual({ status: 200, body: { caller: 'default/frontend', params: { q: 1 } } });
      const no = await internal('intruder', 'backend/data', { q: 1 });
      expect(no.status).toBe(403);
      expect(no.body).toBe('the rule of default/backend.data denies this call');
    });

    /** An HTTP call to frontend.relay with a user's JWT: the headers the frontend's sidecar got. */
    async function relayHeaders(timeout?: number): Promise<Record<string, string>> {
      const jwt = await token({ sub: 'u9' });
      const a = await call(
        'frontend/relay',
        { params: null, ...(timeout ? { timeout } : {}) },
        { authorization: `Bearer ${jwt}` },
      );
      expect(a.status).toBe(200);
      const headers = (a.body.result as { headers: Record<string, string> }).headers;
      // The function's side never gets the user's JWT, in any header.
      expect(JSON.stringify(headers)).not.toContain(jwt.split('.')[2]!);
      expect(headers[NATS_HEADERS.delegation]).toMatch(/^v1\./);
      return headers;
    }

    it('accepts a delegation token the gateway issued to the caller, within its call, and issues the next hop its own', async () => {
      const got = await relayHeaders();
      const delegation = got[NATS_HEADERS.delegation]!;
      const parentId = got[NATS_HEADERS.requestId]!;
      const good = await internal('frontend', 'greeter/whoami', {}, { delegation, parentId });
      expect(good.status).toBe(200);
      const body = good.body as { claims: unknown; delegation: string };
      expect(body.claims).toMatchObject({ sub: 'u9' });
      // The target gets a token of its own (issued to default/greeter), not the frontend's.
      expect(body.delegation).toMatch(/^v1\./);
      expect(body.delegation).not.toBe(delegation);
      // ...which the frontend cannot use as its own.
      const stolen = await internal('frontend', 'greeter/whoami', {}, { delegation: body.delegation, parentId });
      expect(stolen).toEqual({
        status: 401,
        body: 'the delegation token of this internal call was issued to default/greeter, not to the calling service default/frontend',
      });
    });

    it('refuses a delegation token used by another service, for another call, altered, or after its deadline', async () => {
      const got = await relayHeaders();
      const delegation = got[NATS_HEADERS.delegation]!;
      const parentId = got[NATS_HEADERS.requestId]!;
      const byIntruder = await internal('intruder', 'greeter/whoami', {}, { delegation, parentId });
      expect(byIntruder.status).toBe(401);
      expect(byIntruder.body).toContain('was issued to default/frontend, not to the calling service default/intruder');
      const otherCall = await internal('frontend', 'greeter/whoami', {}, { delegation, parentId: 'another-call' });
      expect(otherCall.status).toBe(401);
      expect(otherCall.body).toContain(`belongs to call ${parentId}, not to call another-call`);
      const noParent = await internal('frontend', 'greeter/whoami', {}, { delegation });
      expect(noParent.status).toBe(401);
      const [v, payload, mac] = delegation.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
      const forged = Buffer.from(JSON.stringify({ ...claims, auth: { sub: 'admin' } })).toString('base64url');
      const altered = await internal(
        'frontend',
        'greeter/whoami',
        {},
        { delegation: `${v}.${forged}.${mac}`, parentId },
      );
      expect(altered).toEqual({
        status: 401,
        body: 'the delegation token of this internal call was not issued by this mesh (its signature does not verify)',
      });
      expect((await internal('frontend', 'greeter/whoami', {}, { delegation: 'garbage', parentId })).status).toBe(401);

      const short = await relayHeaders(100);
      const deadline = (
        JSON.parse(Buffer.from(short[NATS_HEADERS.delegation]!.split('.')[1]!, 'base64url').toString()) as {
          dl: number;
        }
      ).dl;
      await waitFor(() => Date.now() > deadline + 5);
      const late = await internal(
        'frontend',
        'greeter/whoami',
        {},
        { delegation: short[NATS_HEADERS.delegation]!, parentId: short[NATS_HEADERS.requestId]! },
      );
      expect(late.status).toBe(401);
      expect(late.body).toContain('expired with the deadline of call');
    });

    it("ignores a user's raw JWT and forged claims sent by a sidecar", async () => {
      const jwt = await token({ sub: 'u9' });
      const raw = await internal('frontend', 'greeter/whoami', {}, { header: ['Fnmesh-Token', jwt] });
      expect(raw.status).toBe(401);
      const forged = await internal(
        'frontend',
        'greeter/whoami',
        {},
        { header: [NATS_HEADERS.claims, '{"sub":"u9"}'] },
      );
      expect(forged.status).toBe(401);
      // an internal call on behalf of nobody, to a function whose rule needs a user: 401
      expect((await internal('frontend', 'greeter/whoami', {})).status).toBe(401);
      expect((await internal('frontend', 'nope/x', {})).status).toBe(404);
    });
  });

  it('answers at once while NATS is down for good (503 once the reconnect wait is over), is not ready, and recovers when it is back', async () => {
    await broker.kill();
    // A call sent before the client noticed the dead socket may have reached NATS: 502 or 503, at once, not at its deadline.
    const first = await call('greeter/hello', { params: 1, timeout: 5000 });
    expect([502, 503]).toContain(first.status);
    expect(first.ms).toBeLessThan(RECONNECT_WAIT_MS + 1000);
    const down = await waitFor(
      async () => {
        const a = await call('greeter/hello', { params: 1, timeout: 5000 });
        // the calls of the first RECONNECT_WAIT_MS wait for a reconnect; later ones fail at once
        return a.status === 503 && a.ms < 1000 ? a : undefined;
      },
      { what: 'a fast 503 while NATS is down' },
    );
    expect(down.body.error).toBe(NOT_CONNECTED_MESSAGE);
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(503);
    await broker.start();
    await waitFor(async () => (await call('greeter/hello', { params: 1 })).status === 200, {
      timeoutMs: 20_000,
      what: 'calls to work again',
    });
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
  }, 30_000);

  it('recovers by itself when NATS restarts under load', async () => {
    const statuses: number[] = [];
    let running = true;
    const load = (async () => {
      while (running) {
        const results = await Promise.all(
          Array.from({ length: 5 }, () =>
            call('greeter/hello', { params: 1, timeout: 1000 }).then(
              (a) => a.status,
              () => 0,
            ),
          ),
        );
        statuses.push(...results);
      }
    })();
    await waitFor(() => statuses.filter((s) => s === 200).length > 20, { what: 'load before the restart' });
    await broker.restart();
    const before = statuses.length;
    await waitFor(() => statuses.slice(before).filter((s) => s === 200).length > 20, {
      timeoutMs: 20_000,
      what: 'calls to succeed again after the restart',
    });
    running = false;
    await load;
    expect(statuses.filter((s) => ![200, 502, 503, 504].includes(s))).toEqual([]);
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, { what: 'ready again' });
  }, 30_000);
});
