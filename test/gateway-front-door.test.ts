/**
 * The gateway's front door against slow and malformed clients, over raw sockets (node:net) to a real gateway
 * with the embedded broker: every answer Node would send empty (408, 431, 400, 417) carries the JSON error
 * naming the limit and its setting, and the connection is closed; connections over the cap are refused and
 * counted. And what the call port tells strangers: the listing and the metrics are on the ops port only.
 */
import net from 'node:net';
import { parseFunctionService, silentLogger } from '../common';
import { StaticRuleSource } from '../common/manifest-source';
import { loadGatewayConfig, startGateway, type Gateway } from '../gateway';
import { freePort } from './helpers/ports';
import { waitFor } from './helpers/wait';

const greeter = parseFunctionService(
  {
    apiVersion: 'fnmesh.io/v1alpha1',
    kind: 'FunctionService',
    metadata: { name: 'greeter' },
    spec: {
      functions: [
        { name: 'hello', rule: { rule: 'allow' } },
        { name: 'whoami', rule: { rule: 'authenticated' } },
        { name: 'nested', rule: { rule: 'or', clauses: [{ rule: 'authenticated' }, { rule: 'deny' }] } },
        { name: 'other' },
        { name: 'default', rule: { rule: 'deny' } },
      ],
    },
  },
  'test',
);
const policy = parseFunctionService(
  {
    apiVersion: 'fnmesh.io/v1alpha1',
    kind: 'FunctionService',
    metadata: { name: 'policy' },
    spec: { functions: [{ name: 'check' }] },
  },
  'test',
);

const CALL = '/v1/api/default/functions/greeter/hello';
const ADMIN_TOKEN = 'an-admin-token-of-at-least-32-characters!';

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The whole bytes received before the server closed the connection. */
  raw: string;
}

/**
 * Opens a raw connection, lets `drive` write to it, and resolves once the server closes it; rejects if it is
 * still open at `deadlineMs` (a generous bound: the gateways below are configured with limits of ~300 ms).
 */
function exchange(port: number, drive: (s: net.Socket) => void, deadlineMs = 5_000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the gateway kept the connection open for more than ${deadlineMs} ms`));
    }, deadlineMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseAnswer(Buffer.concat(chunks).toString('latin1')));
    });
    socket.on('connect', () => drive(socket));
  });
}

function parseAnswer(raw: string): RawAnswer {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw : raw.slice(0, end);
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
  return { status, headers, body: end < 0 ? '' : raw.slice(end + 4), raw };
}

/** Writes `piece` every 50 ms until the socket closes. */
function trickle(s: net.Socket, piece: string): void {
  const timer = setInterval(() => {
    if (s.destroyed || !s.writable) clearInterval(timer);
    else s.write(piece);
  }, 50);
  s.on('close', () => clearInterval(timer));
}

function errorOf(a: RawAnswer): string {
  expect(a.headers['content-type']).toMatch(/^application\/json/);
  expect(Number(a.headers['content-length'])).toBe(Buffer.byteLength(a.body, 'latin1'));
  const parsed = JSON.parse(a.body) as { error?: unknown };
  expect(typeof parsed.error).toBe('string');
  return parsed.error as string;
}

async function metricsText(gw: Gateway): Promise<string> {
  return (await fetch(`${gw.opsUrl}/metrics`)).text();
}

function metricValue(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('the front door under slow and malformed clients', () => {
  let gw: Gateway;
  let port: number;

  beforeAll(async () => {
    const config = loadGatewayConfig({
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_BROKER_PORT: String(await freePort()),
      FNMESH_DEFAULT_RULE: '{"rule":"allow"}',
      FNMESH_HEADERS_TIMEOUT_MS: '300',
      FNMESH_RECEIVE_TIMEOUT_MS: '600',
      FNMESH_MAX_HEADER_BYTES: '4096',
    });
    gw = await startGateway(config, { logger: silentLogger, ruleSource: new StaticRuleSource([greeter]) });
    port = gw.port;
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('answers a trickled request head with 408 naming FNMESH_HEADERS_TIMEOUT_MS, and closes', async () => {
    const a = await exchange(port, (s) => {
      s.write(`POST ${CALL} HTTP/1.1\r\nHost: x\r\n`);
      trickle(s, 'X-Slow: 1\r\n');
    });
    expect(a.status).toBe(408);
    expect(a.headers['connection']).toBe('close');
    expect(errorOf(a)).toMatch(/within 300 ms.*FNMESH_HEADERS_TIMEOUT_MS/);
  });

  it('answers a connection that sends nothing with 408 and closes it', async () => {
    const a = await exchange(port, () => undefined);
    expect(a.status).toBe(408);
    expect(errorOf(a)).toMatch(/FNMESH_HEADERS_TIMEOUT_MS/);
  });

  it('answers a trickled body with 408 naming FNMESH_RECEIVE_TIMEOUT_MS, and closes', async () => {
    const a = await exchange(port, (s) => {
      s.write(`POST ${CALL} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n`);
      trickle(s, ' ');
    });
    expect(a.status).toBe(408);
    expect(errorOf(a)).toMatch(/within 600 ms.*FNMESH_RECEIVE_TIMEOUT_MS/);
  });

  it('answers a never-ending chunked body with 408, and closes', async () => {
    const a = await exchange(port, (s) => {
      s.write(
        `POST ${CALL} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
      );
      trickle(s, '1\r\n \r\n');
    });
    expect(a.status).toBe(408);
    expect(errorOf(a)).toMatch(/FNMESH_RECEIVE_TIMEOUT_MS/);
  });

  it('answers a 1 MB header with 431 naming FNMESH_MAX_HEADER_BYTES, and closes', async () => {
    const a = await exchange(port, (s) => {
      s.write(`POST ${CALL} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(1024 * 1024)}\r\n\r\n`);
    });
    expect(a.status).toBe(431);
    expect(errorOf(a)).toMatch(/4096 bytes.*FNMESH_MAX_HEADER_BYTES/);
  });

  it('answers malformed HTTP with 400 and a JSON error', async () => {
    const a = await exchange(port, (s) => s.write('HELLO\r\n\r\n'));
    expect(a.status).toBe(400);
    expect(errorOf(a)).toMatch(/not valid HTTP\/1\.1/);
  });

  it('answers an HTTP/1.1 request without Host with 400 and a JSON error', async () => {
    const a = await exchange(port, (s) => s.write(`POST ${CALL} HTTP/1.1\r\nContent-Length: 0\r\n\r\n`));
    expect(a.status).toBe(400);
    expect(errorOf(a)).toMatch(/Host header/);
  });

  it('answers an Expect other than 100-continue with 417 and a JSON error', async () => {
    const a = await exchange(port, (s) =>
      s.write(
        `POST ${CALL} HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      ),
    );
    expect(a.status).toBe(417);
    expect(errorOf(a)).toMatch(/"something-else".*100-continue/);
  });

  it('answers CONNECT with 405 and a JSON error instead of a silent close', async () => {
    const a = await exchange(port, (s) => s.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'));
    expect(a.status).toBe(405);
    expect(errorOf(a)).toMatch(/no proxy/);
  });

  it('still calls through Expect: 100-continue', async () => {
    const a = await exchange(port, (s) =>
      s.write(
        `POST ${CALL} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
      ),
    );
    // no replica: 503, but the call went through the call path
    expect(a.raw).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 503 /);
  });

  it('counts timeouts by phase and too-large heads in its metrics', async () => {
    const text = await metricsText(gw);
    expect(metricValue(text, 'fnmesh_gateway_request_timeouts_total', 'phase="headers"')).toBeGreaterThanOrEqual(2);
    expect(metricValue(text, 'fnmesh_gateway_request_timeouts_total', 'phase="body"')).toBeGreaterThanOrEqual(2);
    expect(metricValue(text, 'fnmesh_gateway_headers_too_large_total', 'listener="call"')).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'fnmesh_gateway_malformed_requests_total', 'listener="call"')).toBeGreaterThanOrEqual(1);
    // a call that timed out while its body arrived is answered 408 in the calls' own counter too
    expect(text).toMatch(/fnmesh_gateway_requests_total{[^}]*function="hello"[^}]*status="408"/);
  });
});

describe('the connection cap', () => {
  let gw: Gateway;
  const open: net.Socket[] = [];

  beforeAll(async () => {
    const config = loadGatewayConfig({
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_BROKER_PORT: String(await freePort()),
      FNMESH_MAX_CONNECTIONS: '2',
    });
    gw = await startGateway(config, { logger: silentLogger, ruleSource: new StaticRuleSource([greeter]) });
  });
  afterAll(async () => {
    for (const s of open) s.destroy();
    await gw?.stop();
  });

  it('closes connections over FNMESH_MAX_CONNECTIONS at once, counts them, and takes new ones once below', async () => {
    for (let i = 0; i < 2; i++) {
      const s = net.connect(gw.port, '127.0.0.1');
      s.on('error', () => undefined);
      open.push(s);
    }
    await waitFor(
      async () => metricValue(await metricsText(gw), 'fnmesh_gateway_open_connections', 'listener="call"') === 2,
      { what: 'two open connections' },
    );
    const refused = await exchange(gw.port, (s) => s.write(`GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`));
    expect(refused.raw).toBe('');
    expect(
      metricValue(await metricsText(gw), 'fnmesh_gateway_connections_refused_total', 'listener="call"'),
    ).toBeGreaterThanOrEqual(1);
    open.pop()!.destroy();
    await waitFor(
      async () => metricValue(await metricsText(gw), 'fnmesh_gateway_open_connections', 'listener="call"') === 1,
      { what: 'one open connection' },
    );
    const ok = await exchange(gw.port, (s) => s.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    expect(ok.status).toBe(200);
  });
});

describe('what the call port tells strangers', () => {
  let gw: Gateway;
  let admin: Gateway;

  beforeAll(async () => {
    const base = {
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_DEFAULT_RULE: '{"rule":"authenticated"}',
    };
    gw = await startGateway(loadGatewayConfig({ ...base, FNMESH_BROKER_PORT: String(await freePort()) }), {
      logger: silentLogger,
      ruleSource: new StaticRuleSource([greeter, policy]),
    });
    admin = await startGateway(
      loadGatewayConfig({ ...base, FNMESH_NATS_URL: gw.natsUrl, FNMESH_ADMIN_TOKEN: ADMIN_TOKEN }),
      { logger: silentLogger, ruleSource: new StaticRuleSource([greeter, policy]) },
    );
  });
  afterAll(async () => {
    await admin?.stop();
    await gw?.stop();
  });

  it('does not serve the listing or the metrics on the call port', async () => {
    expect(gw.opsUrl).not.toBe(gw.url);
    for (const p of ['/v1/services', '/metrics']) {
      const res = await fetch(`${gw.url}${p}`);
      expect(res.status).toBe(404);
      const body = (await res.json()) as { error: string };
      expect(body.error).toMatch(/ops listener \(FNMESH_OPS_LISTEN\)/);
      expect(JSON.stringify(body)).not.toMatch(/greeter|fnmesh_gateway/);
    }
    // nor under another spelling of their paths, with or without the admin token
    for (const p of ['/Metrics', '/metrics/', '/METRICS', '/v1/services/', '/V1/Services', '/v1//services']) {
      const res = await fetch(`${gw.url}${p}`);
      expect(res.status).toBe(404);
      expect(await res.text()).not.toMatch(/greeter|fnmesh_gateway/);
      const adm = await fetch(`${admin.url}${p}`, { headers: { authorization: 'Bearer nope' } });
      expect(adm.status).toBe(404);
      expect(await adm.text()).not.toMatch(/greeter|fnmesh_gateway/);
    }
    // the probes stay on both ports
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
  });

  it('serves the listing on the ops port with each rule by type, origin and definition', async () => {
    const res = await fetch(`${gw.opsUrl}/v1/services`);
    expect(res.status).toBe(200);
    const { services } = (await res.json()) as { services: { name: string; functions: unknown[] }[] };
    const g = services.find((s) => s.name === 'greeter')!;
    expect(g.functions).toMatchObject([
      { name: 'hello', timeoutMs: 10000, rule: { type: 'allow', from: 'function', definition: { rule: 'allow' } } },
      {
        name: 'whoami',
        timeoutMs: 10000,
        rule: { type: 'authenticated', from: 'function', definition: { rule: 'authenticated' } },
      },
      {
        name: 'nested',
        timeoutMs: 10000,
        rule: {
          type: 'or',
          from: 'function',
          definition: { rule: 'or', clauses: [{ rule: 'authenticated' }, { rule: 'deny' }] },
        },
      },
      {
        name: 'other',
        timeoutMs: 10000,
        rule: { type: 'deny', from: 'service-default', definition: { rule: 'deny' } },
      },
    ]);
    const p = services.find((s) => s.name === 'policy')!;
    expect(p.functions).toEqual([
      {
        name: 'check',
        timeoutMs: 10000,
        rule: { type: 'authenticated', from: 'gateway-default', definition: { rule: 'authenticated' } },
        retry: { attempts: 4, backoff: { initialMs: 10, maxMs: 250 }, retryOn: [] },
        circuitBreaker: { consecutiveFailures: 5, openMs: 500, maxOpenMs: 5000, state: 'closed', failuresInARow: 0 },
      },
    ]);
    expect((await fetch(`${gw.opsUrl}/metrics`)).status).toBe(200);
  });

  it('serves the listing and the metrics on the call port to FNMESH_ADMIN_TOKEN only', async () => {
    for (const p of ['/v1/services', '/metrics']) {
      const none = await fetch(`${admin.url}${p}`);
      expect(none.status).toBe(401);
      expect(((await none.json()) as { error: string }).error).toMatch(/FNMESH_ADMIN_TOKEN/);
      const wrong = await fetch(`${admin.url}${p}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } });
      expect(wrong.status).toBe(401);
      const right = await fetch(`${admin.url}${p}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(right.status).toBe(200);
    }
    const listed = (await (
      await fetch(`${admin.url}/v1/services`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).json()) as { services: { name: string; functions: { rule: { definition?: unknown } }[] }[] };
    expect(listed.services.find((s) => s.name === 'greeter')!.functions[0]!.rule.definition).toEqual({
      rule: 'allow',
    });
  });
});
