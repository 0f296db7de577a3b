/**
 * The gateway's JWT checks over real HTTP (a real gateway, the embedded broker, a NATS subscriber playing the
 * function): tokens are crafted by python3 the way the outside "front door" check crafts them (issue 9), so
 * the minting is independent of the gateway's own code. Refusals are 401 with the JSON error body.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { connectNats, serviceCallWildcard, serviceQueueGroup, silentLogger } from '../common';
import { ManifestFileSource } from '../common/manifest-source';
import { loadGatewayConfig, startGateway, type Gateway } from '../gateway';
import { BROKER_TARGETS, type RunningBroker } from './helpers/brokers';

const SECRET = 'gateway-jwt-test-secret-0123456789abcdef';

const MANIFEST = `
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: who }
spec:
  functions:
    - { name: ami, rule: { rule: authenticated } }
`;

/** An HS256 token made by python3: iat offset from now (seconds), exp or none, and text appended to it. */
function pythonToken(iatOffset: number, withExp: boolean, append = ''): string {
  const script = `
import base64,hashlib,hmac,json,sys,time
s,iat_off,with_exp,pad=sys.argv[1],int(sys.argv[2]),sys.argv[3]=="1",sys.argv[4]
b=lambda d: base64.urlsafe_b64encode(json.dumps(d,separators=(",",":")).encode()).rstrip(b"=").decode()
now=int(time.time()); claims={"sub":"u1","iat":now+iat_off}
if with_exp: claims["exp"]=now+3600
h=b({"alg":"HS256","typ":"JWT"}); p=b(claims)
sig=base64.urlsafe_b64encode(hmac.new(s.encode(),f"{h}.{p}".encode(),hashlib.sha256).digest()).rstrip(b"=").decode()
print(f"{h}.{p}.{sig}{pad}")
`;
  return execFileSync('python3', ['-c', script, SECRET, String(iatOffset), withExp ? '1' : '0', append], {
    encoding: 'utf8',
  }).trim();
}

/** An HS256 token made by python3 over the exact header and payload texts given (signed, so only the JSON is at fault). */
function pythonRawToken(headerText: string, payloadText: string): string {
  const script = `
import base64,hashlib,hmac,sys
s,h,p=sys.argv[1],sys.argv[2],sys.argv[3]
b=lambda t: base64.urlsafe_b64encode(t.encode()).rstrip(b"=").decode()
h,p=b(h),b(p)
sig=base64.urlsafe_b64encode(hmac.new(s.encode(),f"{h}.{p}".encode(),hashlib.sha256).digest()).rstrip(b"=").decode()
print(f"{h}.{p}.{sig}")
`;
  return execFileSync('python3', ['-c', script, SECRET, headerText, payloadText], { encoding: 'utf8' }).trim();
}

const embedded = BROKER_TARGETS.find((t) => t.name === 'embedded broker')!;

describe('JWT checks at the gateway (HTTP)', () => {
  let broker: RunningBroker;
  let nc: NatsConnection;
  let dir: string;
  const gateways: Gateway[] = [];

  async function gateway(env: Record<string, string> = {}): Promise<Gateway> {
    const config = loadGatewayConfig({
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_NATS_URL: broker.url,
      FNMESH_JWT_SECRET: SECRET,
      FNMESH_SHUTDOWN_TIMEOUT_MS: '1000',
      ...env,
    });
    const gw = await startGateway(config, { logger: silentLogger, ruleSource: new ManifestFileSource([dir]) });
    gateways.push(gw);
    return gw;
  }

  async function call(gw: Gateway, token: string): Promise<{ status: number; type: string | null; body: unknown }> {
    const res = await fetch(`${gw.url}/v1/api/default/functions/who/ami`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: '{}',
    });
    return { status: res.status, type: res.headers.get('content-type'), body: await res.json() };
  }

  beforeAll(async () => {
    broker = await embedded.start();
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-gw-jwt-'));
    writeFileSync(path.join(dir, 'who.yaml'), MANIFEST);
    nc = await connectNats({ servers: [broker.url], name: 'test-who', logger: silentLogger });
    nc.subscribe(serviceCallWildcard('default', 'who'), {
      queue: serviceQueueGroup('default', 'who'),
      callback: (_err, msg) => {
        msg.respond(new TextEncoder().encode('"it is you"'));
      },
    });
    await nc.flush();
  });

  // a stopping gateway gives its idle keep-alive connections a moment to finish (gateway/http-server.ts):
  // stopped together, not one after another
  afterAll(async () => {
    await Promise.all(gateways.map((gw) => gw.stop()));
    await nc?.close();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('answers a valid token (so the refusals below are about the token)', async () => {
    const gw = await gateway();
    expect(await call(gw, pythonToken(0, true))).toEqual({
      status: 200,
      type: 'application/json',
      body: { result: 'it is you' },
    });
  });

  it('refuses a token issued ten years in the future: 401 with the JSON error naming iat', async () => {
    const gw = await gateway();
    const a = await call(gw, pythonToken(10 * 365 * 24 * 3600, true));
    expect(a.status).toBe(401);
    expect(a.type).toBe('application/json');
    expect(a.body).toMatchObject({ error: expect.stringMatching(/^the token was issued in the future \(iat \d{4}-/) });
  });

  it('refuses a signature with base64url padding appended: 401 with the JSON error naming the signature', async () => {
    const gw = await gateway();
    for (const pad of ['=', '==']) {
      const a = await call(gw, pythonToken(0, true, pad));
      expect(a.status).toBe(401);
      expect(a.type).toBe('application/json');
      expect(a.body).toMatchObject({
        error:
          'the token is malformed: its signature is not canonical base64url: it ends with "=" padding, which JWTs leave out (RFC 7515 §2)',
      });
    }
  });

  it('refuses a correctly signed token whose payload or header gives a key twice: 401 naming the problem', async () => {
    const gw = await gateway();
    const now = Math.floor(Date.now() / 1000);
    const claims = (subs: string): string => `{${subs},"iat":${now},"exp":${now + 3600}}`;
    const header = '{"alg":"HS256","typ":"JWT"}';
    // the control: the same token with one sub is answered
    expect(await call(gw, pythonRawToken(header, claims('"sub":"alice"')))).toMatchObject({ status: 200 });
    for (const [segment, token] of [
      ['payload', pythonRawToken(header, claims('"sub":"alice","sub":"mallory"'))],
      ['header', pythonRawToken('{"alg":"HS256","typ":"JWT","typ":"JWT"}', claims('"sub":"alice"'))],
    ] as const) {
      const a = await call(gw, token);
      expect(a.status).toBe(401);
      expect(a.type).toBe('application/json');
      expect(a.body).toMatchObject({
        error: expect.stringMatching(
          new RegExp(
            `^the token is malformed: its ${segment} gives a key twice in one object: .*issue the token with each key once$`,
          ),
        ),
      });
    }
  });

  it('refuses a token without exp by default, and takes it with FNMESH_JWT_REQUIRE_EXP=false', async () => {
    const noExp = pythonToken(0, false);
    const strict = await call(await gateway(), noExp);
    expect(strict.status).toBe(401);
    expect(strict.body).toMatchObject({ error: expect.stringMatching(/^the token has no exp claim/) });
    const lax = await call(await gateway({ FNMESH_JWT_REQUIRE_EXP: 'false' }), noExp);
    expect(lax).toMatchObject({ status: 200, body: { result: 'it is you' } });
  });

  it('FNMESH_JWT_CLOCK_TOLERANCE_SEC widens the iat window', async () => {
    const token = pythonToken(60, true);
    expect((await call(await gateway(), token)).status).toBe(401);
    expect((await call(await gateway({ FNMESH_JWT_CLOCK_TOLERANCE_SEC: '120' }), token)).status).toBe(200);
  });
});
