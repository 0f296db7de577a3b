import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRegistry, silentLogger, type Readiness } from './common';
import { createOpsHandler, type DrainResult } from './ops';

interface Harness {
  port: number;
  drains: number;
  finish: (r: DrainResult) => void;
  ready: Readiness;
}

let server: http.Server | undefined;
afterEach(async () => {
  if (server) await new Promise((r) => server!.close(r));
  server = undefined;
});

async function start(): Promise<Harness> {
  let finish!: (r: DrainResult) => void;
  const done = new Promise<DrainResult>((r) => (finish = r));
  let drained: Promise<DrainResult> | undefined;
  const h: Harness = { port: 0, drains: 0, finish: (r) => finish(r), ready: { ready: true } };
  const drain = (): Promise<DrainResult> => {
    h.drains++;
    drained ??= done;
    return drained;
  };
  server = http.createServer(
    createOpsHandler({
      registry: createRegistry('sidecar-ops-test'),
      readiness: () => h.ready,
      drain,
      logger: silentLogger,
    }),
  );
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  h.port = (server.address() as AddressInfo).port;
  return h;
}

function request(
  port: number,
  method: string,
  path: string,
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('sidecar ops server', () => {
  test.each(['POST', 'PUT', 'DELETE', 'HEAD'])(
    '%s /drain → 405 with Allow: GET, and no drain starts',
    async (method) => {
      const h = await start();
      const r = await request(h.port, method, '/drain');
      expect(r.status).toBe(405);
      expect(r.headers.allow).toBe('GET');
      if (method !== 'HEAD') expect(JSON.parse(r.body)).toEqual({ error: expect.stringContaining('use GET') });
      expect(h.drains).toBe(0);
    },
  );

  test('GET /drain answers when the drain completes; a second GET waits for the same drain', async () => {
    const h = await start();
    let answered = 0;
    const first = request(h.port, 'GET', '/drain').then((r) => (answered++, r));
    const second = request(h.port, 'GET', '/drain?again=1').then((r) => (answered++, r));
    while (h.drains < 2) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    expect(answered).toBe(0);
    h.finish({ status: 'drained', inFlight: 0 });
    for (const r of await Promise.all([first, second])) {
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/json');
      expect(JSON.parse(r.body)).toEqual({ status: 'drained', inFlight: 0 });
    }
  });

  test('a drain that hit its bound answers 200 with what was left', async () => {
    const h = await start();
    h.finish({ status: 'timeout', inFlight: 3 });
    const r = await request(h.port, 'GET', '/drain');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ status: 'timeout', inFlight: 3 });
  });

  test('the common ops paths still answer, and an unknown path is 404 naming /drain', async () => {
    const h = await start();
    expect((await request(h.port, 'GET', '/healthz')).status).toBe(200);
    expect((await request(h.port, 'GET', '/readyz')).status).toBe(200);
    h.ready = { ready: false, reason: 'draining' };
    const readyz = await request(h.port, 'GET', '/readyz');
    expect(readyz.status).toBe(503);
    expect(JSON.parse(readyz.body)).toEqual({ status: 'unavailable', reason: 'draining' });
    expect((await request(h.port, 'GET', '/metrics')).status).toBe(200);
    const other = await request(h.port, 'GET', '/nope');
    expect(other.status).toBe(404);
    expect(other.body).toContain('/drain');
    expect(h.drains).toBe(0);
  });
});
