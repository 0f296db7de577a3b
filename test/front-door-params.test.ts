/**
 * The front door under hostile input, for params: nothing lost (params reach the function as the bytes sent,
 * results come back as the bytes answered, also through a nested call), deep nesting refused with a 400 that
 * names the limit, and sizes consistent from the gateway to the transport (413/431 naming the limit, never a
 * 500). A real gateway, real sidecars and a raw HTTP function, on nats-server and on the embedded broker.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { silentLogger } from '../common';
import { ManifestFileSource } from '../common/manifest-source';
import { headerBudget, loadGatewayConfig, startGateway, type Gateway } from '../gateway';
import type { Sidecar } from '../sidecar';
import { BROKER_TARGETS, type RunningBroker } from './helpers/brokers';
import { startSidecarFor } from './helpers/mesh';

const SECRET = 'front-door-params-secret-0123456789abcdef';
const MANIFEST = `
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: raw }
spec:
  functions:
    - { name: echo, rule: { rule: allow } }
    - { name: mirror, rule: { rule: allow } }
    - { name: relay, rule: { rule: allow } }
    - { name: big, rule: { rule: allow } }
    - { name: policy, rule: { rule: deny } }
    - { name: guarded, rule: { rule: func, service: raw, func: policy } }
    - { name: owned, rule: { rule: match, type: string, eval: "==", f1: args.params.user, f2: alice } }
`;

/**
 * The function: `echo` answers {"raw": <the body it got, as a string>}; `mirror` and `guarded` answer the body
 * they got; `policy` (a func rule) acks a body holding 30-digit 123456789012345678901234567890 and 1e400 as written;
 * `big` answers {"s": "x…"} of params.size bytes; `relay` sends params.body (a string) as the body of a call
 * to raw/{params.to} through its sidecar's call API, or {"params": "x…"} of params.size bytes, and answers
 * what the call API answered, status included.
 */
function startRawFunction(callPort: () => number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const answer = (status: number, bytes: Buffer | string): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(bytes);
      };
      switch (req.url) {
        case '/echo':
          return answer(200, JSON.stringify({ raw: body.toString('utf8') }));
        case '/mirror':
        case '/guarded':
        case '/owned':
          return answer(200, body);
        case '/policy': {
          const raw = body.toString('utf8');
          return answer(
            200,
            JSON.stringify({ ack: raw.includes('123456789012345678901234567890,') && raw.includes('1e400') }),
          );
        }
        case '/big':
          return answer(200, JSON.stringify({ s: 'x'.repeat((JSON.parse(body.toString()) as { size: number }).size) }));
        case '/relay': {
          const p = JSON.parse(body.toString()) as { to: string; body?: string; size?: number };
          const sent = p.body ?? JSON.stringify({ params: 'x'.repeat(p.size ?? 0) });
          const call = http.request(
            { host: '127.0.0.1', port: callPort(), method: 'POST', path: `/v1/call/raw/${p.to}` },
            (r) => {
              const got: Buffer[] = [];
              r.on('data', (c: Buffer) => got.push(c));
              r.on('end', () => answer(r.statusCode ?? 500, Buffer.concat(got)));
            },
          );
          call.on('error', (e) => answer(500, JSON.stringify({ error: String(e) })));
          call.end(sent);
          return;
        }
        case '/healthz':
          return answer(200, '{}');
        default:
          return answer(404, '{"error":"no such function"}');
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) as { result?: unknown; error?: string } };
}

/** A valid HS256 token of about `bytes` bytes (a padding claim makes up the size). */
async function tokenOf(bytes: number): Promise<string> {
  const make = (pad: number): Promise<string> =>
    new SignJWT({ sub: 'u1', pad: 'p'.repeat(pad) })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
  const base = (await make(0)).length;
  return make(Math.max(0, Math.floor(((bytes - base) * 3) / 4)));
}

const nest = (depth: number, inner = ''): string => '['.repeat(depth) + inner + ']'.repeat(depth);

/** Params that a parse and re-serialization would change, each written as a caller may write it. */
const EDGE_PARAMS = [
  '123456789012345678901234567890',
  '1e400',
  '-0',
  '"\\u00e9 \\ud83d\\ude00 é😀 \\" \\\\ \\/ \\b\\f\\n\\r\\t"',
  '{"a":1,"a":2,"b":{"a":[],"a":{}}}',
  ' {\t"n" :\r\n 1.50E+2 ,  "m":\n[ -0.0 , 1E-400 ]\n } ',
  nest(64, '1e400'),
  `{"deep":${nest(63)}}`,
  '{"big":123456789012345678901234567890,"e":1e400,"z":-0,"u":"\\u00e9"}',
];

describe.each(BROKER_TARGETS)('params at the front door on $name', (target) => {
  const MAX_PAYLOAD = 64 * 1024;
  const MAX_TOKEN = 2048;
  let broker: RunningBroker;
  let gw: Gateway;
  let fnServer: http.Server;
  let sidecar: Sidecar;
  let dir: string;
  let url: (fn: string) => string;
  /** The body limit the gateway fitted to this broker (the default lowered to max_payload − header budget). */
  const bodyLimit = MAX_PAYLOAD - headerBudget(MAX_TOKEN);

  beforeAll(async () => {
    broker = await target.start({ maxPayload: MAX_PAYLOAD });
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-params-'));
    writeFileSync(path.join(dir, 'raw.yaml'), MANIFEST);
    gw = await startGateway(
      loadGatewayConfig({
        FNMESH_LISTEN: '127.0.0.1:0',
        FNMESH_OPS_LISTEN: '127.0.0.1:0',
        FNMESH_NATS_URL: broker.url,
        FNMESH_JWT_SECRET: SECRET,
        FNMESH_MAX_TOKEN_BYTES: String(MAX_TOKEN),
        FNMESH_SHUTDOWN_TIMEOUT_MS: '2000',
      }),
      { logger: silentLogger, ruleSource: new ManifestFileSource([dir]) },
    );
    url = (fn) => `${gw.url}/v1/api/default/functions/raw/${fn}`;
    fnServer = await startRawFunction(() => sidecar.callPort);
    sidecar = await startSidecarFor({
      natsUrl: broker.url,
      namespace: 'default',
      service: 'raw',
      functionPort: (fnServer.address() as AddressInfo).port,
    });
  });

  afterAll(async () => {
    await sidecar?.stop();
    await gw?.stop();
    await new Promise((r) => fnServer?.close(r));
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('nothing lost', () => {
    it.each(EDGE_PARAMS)('gives the function the bytes of params as sent: %s', async (params) => {
      const res = await post(url('echo'), `{"timeout":5000, "params": ${params}\n}`);
      expect(res.status).toBe(200);
      expect((res.json().result as { raw: string }).raw).toBe(params.trim());
    });

    it('gives the function null for an absent params or an empty body, as before', async () => {
      for (const body of ['{}', '', '{"timeout":5000}']) {
        const res = await post(url('echo'), body);
        expect(res.status).toBe(200);
        expect(res.json().result).toEqual({ raw: 'null' });
      }
    });

    it("brings the function's answer back as the bytes it answered", async () => {
      for (const params of EDGE_PARAMS) {
        const res = await post(url('mirror'), `{"params":${params}}`);
        expect(res.status).toBe(200);
        expect(res.text).toBe(`{"result":${params.trim()}}`);
      }
    });

    it("gives a func rule's function the bytes of params as sent", async () => {
      const params = '{"n":123456789012345678901234567890,"e":1e400}';
      const res = await post(url('guarded'), `{"params":${params}}`);
      expect(res.status).toBe(200);
      expect(res.text).toBe(`{"result":${params}}`);
      const denied = await post(url('guarded'), '{"params":{"n":1}}');
      expect(denied.status).toBe(403);
    });

    it('refuses params with a repeated key when the rule reads params (the rule and the function could disagree)', async () => {
      // JSON.parse keeps the last "user", so the rule would allow; a first-wins parser in the function reads "mallory".
      const sneaky = '{"user":"mallory","user":"alice"}';
      const res = await post(url('owned'), `{"params":${sneaky}}`);
      expect(res.status).toBe(400);
      expect(res.json().error).toBe(
        'params give a key twice in one object, and the rule of default/raw.owned reads params: the rule and the function could read different values; send each key once',
      );
      const nested = await post(url('owned'), '{"params":{"user":"alice","x":[{"k":1,"k":2}]}}');
      expect(nested.status).toBe(400);
      const viaCallApi = await post(
        url('relay'),
        JSON.stringify({ params: { to: 'owned', body: `{"params":${sneaky}}` } }),
      );
      expect(viaCallApi.status).toBe(400);
      expect(viaCallApi.json().error).toMatch(/reads params/);
      // A key written with escapes is the same key.
      expect((await post(url('owned'), '{"params":{"user":"alice","\\u0075ser":"mallory"}}')).status).toBe(400);
      // Keys that only look alike, or sit in different objects, are not repeats.
      const fine = '{"user":"alice","x":{"user":1},"y":[{"k":1},{"k":2}],"s":"a:b","users":2}';
      const ok = await post(url('owned'), `{"params":${fine}}`);
      expect(ok.status).toBe(200);
      expect(ok.text).toBe(`{"result":${fine}}`);
    });

    it('keeps params and results byte-exact through a nested call (function → call API → gateway → function)', async () => {
      for (const params of EDGE_PARAMS) {
        const body = `{ "params" :\t${params} }`;
        const echoed = await post(url('relay'), JSON.stringify({ params: { to: 'echo', body } }));
        expect(echoed.status).toBe(200);
        expect(((echoed.json().result as { result: unknown }).result as { raw: string }).raw).toBe(params.trim());
        const mirrored = await post(url('relay'), JSON.stringify({ params: { to: 'mirror', body } }));
        expect(mirrored.status).toBe(200);
        expect(mirrored.text).toBe(`{"result":{"result":${params.trim()}}}`);
      }
    });
  });

  describe('nesting depth', () => {
    it.each([65, 5000, 20_000])('answers 400 naming the limit for params %d levels deep', async (depth) => {
      const res = await post(url('echo'), `{"params":${nest(depth)}}`);
      expect(res.status).toBe(400);
      expect(res.json().error).toMatch(/more than 64 levels deep.*FNMESH_MAX_PARAMS_DEPTH=64/);
    });

    it('answers 400 naming the limit for deep params of a nested call', async () => {
      const res = await post(url('relay'), JSON.stringify({ params: { to: 'echo', body: `{"params":${nest(65)}}` } }));
      expect(res.status).toBe(400);
      expect(res.json().error).toMatch(/FNMESH_MAX_PARAMS_DEPTH=64/);
    });

    it('refuses a repeated "params" in the envelope', async () => {
      const res = await post(url('echo'), '{"params":{"admin":false},"params":{"admin":true}}');
      expect(res.status).toBe(400);
      expect(res.json().error).toMatch(/"params" more than once/);
    });
  });

  describe('sizes', () => {
    const bodyOf = (size: number): string => {
      const open = '{"params":{"p":"';
      const close = '"}}';
      return open + 'x'.repeat(size - open.length - close.length) + close;
    };

    it('carries a body at the limit with a token at its limit, and answers 413 naming the limit just above', async () => {
      const token = await tokenOf(MAX_TOKEN - 10);
      expect(token.length).toBeLessThanOrEqual(MAX_TOKEN);
      const auth = { authorization: `Bearer ${token}` };
      const atLimit = await post(url('mirror'), bodyOf(bodyLimit), auth);
      expect(atLimit.status).toBe(200);
      expect(atLimit.text.length).toBe(bodyLimit - '{"params":}'.length + '{"result":}'.length);
      const above = await post(url('mirror'), bodyOf(bodyLimit + 1), auth);
      expect(above.status).toBe(413);
      expect(above.json().error).toMatch(new RegExp(`limit of ${bodyLimit} bytes \\(FNMESH_MAX_BODY_BYTES\\)`));
    });

    it('answers 413, not 500, for a body under the 1 MiB default that this NATS server cannot carry', async () => {
      const res = await post(url('mirror'), bodyOf(MAX_PAYLOAD));
      expect(res.status).toBe(413);
      expect(res.json().error).toMatch(/FNMESH_MAX_BODY_BYTES/);
    });

    it('answers 431 naming FNMESH_MAX_TOKEN_BYTES for a larger token', async () => {
      const token = await tokenOf(MAX_TOKEN + 500);
      const res = await post(url('echo'), '{"params":1}', { authorization: `Bearer ${token}` });
      expect(res.status).toBe(431);
      expect(res.json().error).toMatch(
        /bearer token is \d+ bytes, more than the limit of 2048 bytes \(FNMESH_MAX_TOKEN_BYTES\)/,
      );
    });

    it('answers 502 "too large" for a result larger than the max payload, at once', async () => {
      const res = await post(url('big'), JSON.stringify({ params: { size: MAX_PAYLOAD } }));
      expect(res.status).toBe(502);
      expect(res.json().error).toMatch(new RegExp(`answered more than ${MAX_PAYLOAD} bytes`));
    });

    it('answers 413 for nested-call params that NATS cannot carry or the gateway does not accept', async () => {
      // a body within the call API's limit (max_payload) whose params and headers are not
      const size = MAX_PAYLOAD - '{"params":""}'.length - 10;
      const tooBigForNats = await post(url('relay'), JSON.stringify({ params: { to: 'echo', size } }));
      expect(tooBigForNats.status).toBe(413);
      expect(tooBigForNats.json().error).toMatch(new RegExp(`too large for NATS.*max_payload of ${MAX_PAYLOAD} bytes`));
      const overLimit = await post(url('relay'), JSON.stringify({ params: { to: 'echo', size: bodyLimit + 100 } }));
      expect(overLimit.status).toBe(413);
      expect(overLimit.json().error).toMatch(/FNMESH_MAX_BODY_BYTES/);
    });

    it('refuses to start with a body limit the NATS server cannot carry, naming both settings', async () => {
      const config = loadGatewayConfig({
        FNMESH_LISTEN: '127.0.0.1:0',
        FNMESH_OPS_LISTEN: '127.0.0.1:0',
        FNMESH_NATS_URL: broker.url,
        FNMESH_MAX_BODY_BYTES: String(MAX_PAYLOAD),
      });
      await expect(
        startGateway(config, { logger: silentLogger, ruleSource: new ManifestFileSource([dir]) }),
      ).rejects.toThrow(
        /FNMESH_MAX_BODY_BYTES=65536 does not fit the NATS server's max_payload of 65536 bytes.*FNMESH_MAX_TOKEN_BYTES/,
      );
    });
  });
});

describe('the embedded broker carries what the gateway accepts', () => {
  let gw: Gateway;
  let fnServer: http.Server;
  let sidecar: Sidecar;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-params-'));
    writeFileSync(path.join(dir, 'raw.yaml'), MANIFEST);
    gw = await startGateway(
      loadGatewayConfig({
        FNMESH_LISTEN: '127.0.0.1:0',
        FNMESH_OPS_LISTEN: '127.0.0.1:0',
        FNMESH_BROKER_PORT: '0',
        FNMESH_JWT_SECRET: SECRET,
        FNMESH_SHUTDOWN_TIMEOUT_MS: '2000',
      }),
      { logger: silentLogger, ruleSource: new ManifestFileSource([dir]) },
    );
    fnServer = await startRawFunction(() => sidecar.callPort);
    sidecar = await startSidecarFor({
      natsUrl: gw.natsUrl,
      namespace: 'default',
      service: 'raw',
      functionPort: (fnServer.address() as AddressInfo).port,
    });
  });

  afterAll(async () => {
    await sidecar?.stop();
    await gw?.stop();
    await new Promise((r) => fnServer?.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers a body of exactly FNMESH_MAX_BODY_BYTES (default 1 MiB) with a large token: 200, byte-exact', async () => {
    const limit = 1024 * 1024;
    const params = `"${'y'.repeat(limit - '{"params":""}'.length)}"`;
    const token = await tokenOf(8000);
    const res = await post(`${gw.url}/v1/api/default/functions/raw/mirror`, `{"params":${params}}`, {
      authorization: `Bearer ${token}`,
    });
    expect(res.status).toBe(200);
    expect(res.text).toBe(`{"result":${params}}`);
  });
});
