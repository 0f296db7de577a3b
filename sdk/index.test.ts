import http from 'node:http';
import { serve, FunctionError } from './index';

function request(
  port: number,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

describe('serve', () => {
  test('routes, errors and results', async () => {
    const h = await serve(
      {
        add: (p: { a: number; b: number }) => p.a + p.b,
        none: async () => undefined,
        bad: () => {
          throw new FunctionError(409, 'conflict here');
        },
        boom: () => {
          throw new Error('kaput');
        },
        circular: () => {
          const o: Record<string, unknown> = {};
          o.self = o;
          return o;
        },
        ctx: (_p, ctx) => ({ id: ctx.requestId, claims: ctx.claims ?? null, deadline: ctx.deadline.getTime() }),
      },
      { port: 0, handleSignals: false, onError: () => undefined },
    );
    try {
      expect(await request(h.port, 'GET', '/healthz')).toMatchObject({ status: 200 });
      expect(await request(h.port, 'POST', '/add', '{"a":1,"b":2}')).toMatchObject({ status: 200, body: '3' });
      expect(await request(h.port, 'POST', '/none', '')).toMatchObject({ status: 200, body: 'null' });
      expect(await request(h.port, 'POST', '/bad', '{}')).toMatchObject({
        status: 409,
        body: '{"error":"conflict here"}',
      });
      expect(await request(h.port, 'POST', '/boom', '{}')).toMatchObject({ status: 500, body: '{"error":"kaput"}' });
      expect((await request(h.port, 'POST', '/circular', '{}')).status).toBe(500);
      const nf = await request(h.port, 'POST', '/nope', '{}');
      expect(nf.status).toBe(404);
      expect(JSON.parse(nf.body)).toEqual({
        error:
          'no function "nope" in this service: serve it from this process (and declare it in the manifest\'s spec.functions) or call another name',
      });
      expect((await request(h.port, 'POST', '/toString', '{}')).status).toBe(404);
      const badJson = await request(h.port, 'POST', '/add', '{oops');
      expect(badJson.status).toBe(400);
      expect(JSON.parse(badJson.body).error).toMatch(/not valid JSON/);
      expect((await request(h.port, 'GET', '/add')).status).toBe(405);
      const claims = Buffer.from(JSON.stringify({ sub: 'u' })).toString('base64url');
      const c = await request(h.port, 'POST', '/ctx', '{}', {
        'x-fnmesh-request-id': 'r1',
        'x-fnmesh-deadline': '1234567890000',
        'x-fnmesh-claims': claims,
      });
      expect(JSON.parse(c.body)).toEqual({ id: 'r1', claims: { sub: 'u' }, deadline: 1234567890000 });
    } finally {
      await h.close();
    }
  });

  test('close lets an in-flight call finish', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = false;
    const h = await serve(
      {
        slow: async () => {
          started = true;
          await gate;
          return 'finished';
        },
      },
      { port: 0, handleSignals: false },
    );
    const pending = request(h.port, 'POST', '/slow', '{}');
    while (!started) await new Promise((r) => setImmediate(r));
    let closed = false;
    const closing = h.close().then(() => (closed = true));
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);
    release();
    expect(await pending).toMatchObject({ status: 200, body: '"finished"' });
    await closing;
    expect(closed).toBe(true);
  });
});
