/**
 * The plain-JSON client's HTTP mechanics against a local HTTP server (what it sends, how it reads answers,
 * errors and watch streams). That the client works with a real API server is proven by the operator's
 * suites on the real control plane (test/operator*.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Credentials, KubeAccess } from './kube-access';
import { KubeApiError, KubeClient, lineSplitter, sameTls, withQuery } from './kube-client';
import { waitFor } from '../test/helpers/wait';

describe('withQuery', () => {
  test('adds the defined values, encoded', () => {
    expect(withQuery('/a', { limit: 500, continue: undefined, labelSelector: 'a=b,c', watch: true })).toBe(
      '/a?limit=500&labelSelector=a%3Db%2Cc&watch=true',
    );
    expect(withQuery('/a', {})).toBe('/a');
    expect(withQuery('/a?x=1', { y: 2 })).toBe('/a?x=1&y=2');
  });
});

describe('lineSplitter', () => {
  test('gives whole lines whatever the chunking, and skips empty ones', () => {
    const lines: string[] = [];
    const split = lineSplitter((l) => lines.push(l));
    for (const chunk of ['{"a"', ':1}\n{"b":2}\n\n{"c"', '', ':3}\n{"d":4']) split(chunk);
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
    split('}\n');
    expect(lines[3]).toBe('{"d":4}');
  });
});

describe('sameTls', () => {
  test('compares the bytes of certificates, and the flags', () => {
    expect(sameTls({ ca: Buffer.from('x') }, { ca: 'x' })).toBe(true);
    expect(sameTls({ ca: Buffer.from('x') }, { ca: Buffer.from('y') })).toBe(false);
    expect(sameTls({}, { rejectUnauthorized: false })).toBe(false);
  });
});

describe('KubeClient over HTTP', () => {
  let server: http.Server;
  let handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;
  let client: KubeClient;
  const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string; port?: number }> =
    [];
  let token = 't1';
  let refreshes = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body,
          port: req.socket.remotePort,
        });
        handler(req, res, body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const access: KubeAccess = {
      server: `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix`,
      async credentials(refresh?: boolean): Promise<Credentials> {
        if (refresh) refreshes++;
        return { tls: {}, headers: { authorization: `Bearer ${token}` } };
      },
    };
    const requests: string[] = [];
    client = new KubeClient(access, { connections: 2, onRequest: (m, p) => requests.push(`${m} ${p}`) });
  });

  afterAll(async () => {
    await client.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  beforeEach(() => {
    seen.length = 0;
  });

  test('sends JSON with the content type and credentials, under the server path, and parses the answer', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    };
    const out = await client.request('PATCH', '/apis/x', {
      query: { fieldManager: 'm' },
      body: { a: 1 },
      contentType: 'application/apply-patch+yaml',
    });
    expect(out).toEqual({ ok: true });
    expect(seen[0]).toEqual(
      expect.objectContaining({
        method: 'PATCH',
        url: '/prefix/apis/x?fieldManager=m',
        body: '{"a":1}',
        headers: expect.objectContaining({
          authorization: 'Bearer t1',
          'content-type': 'application/apply-patch+yaml',
        }),
      }),
    );
  });

  test('a status ≥ 400 throws KubeApiError with the status, the body and the headers', async () => {
    handler = (_req, res) => {
      res.writeHead(409, { 'retry-after': '3' });
      res.end('{"kind":"Status","reason":"Conflict"}');
    };
    const err = (await client.request('GET', '/x').catch((e: unknown) => e)) as KubeApiError;
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err.code).toBe(409);
    expect(err.statusCode).toBe(409);
    expect(err.body).toContain('Conflict');
    expect(err.headers['retry-after']).toBe('3');
  });

  test('a 401 re-reads the credentials and retries once', async () => {
    handler = (req, res) => {
      if (req.headers.authorization === 'Bearer t2') {
        res.writeHead(200);
        res.end('{}');
      } else {
        res.writeHead(401);
        res.end();
      }
    };
    const before = refreshes;
    token = 't2';
    await expect(client.request('GET', '/x')).resolves.toEqual({});
    token = 'bad';
    await expect(client.request('GET', '/x')).rejects.toMatchObject({ code: 401 });
    expect(refreshes - before).toBe(1);
    token = 't1';
  });

  test('reuses its connections (keep-alive)', async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      res.end('{}');
    };
    for (let i = 0; i < 5; i++) await client.request('GET', '/x');
    const ports = new Set(seen.map((s) => s.port));
    expect(seen).toHaveLength(5);
    expect(ports.size).toBe(1);
  });

  test('a watch streams events line by line; the server ending it calls onDone once, abort() does not', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n{"type":"MOD');
      setTimeout(() => {
        res.write('IFIED","object":{"metadata":{"name":"a","x":"é"}}}\n');
        res.end();
      }, 20);
    };
    const events: string[] = [];
    const done: unknown[] = [];
    await client.watch(
      '/w',
      { resourceVersion: '5' },
      (type, obj) => events.push(`${type} ${JSON.stringify(obj)}`),
      (err) => done.push(err ?? 'ended'),
    );
    await waitFor(() => done.length > 0, { what: 'the watch to end' });
    expect(seen[0]!.url).toBe('/prefix/w?resourceVersion=5&watch=true');
    expect(events).toEqual(['ADDED {"metadata":{"name":"a"}}', 'MODIFIED {"metadata":{"name":"a","x":"é"}}']);
    expect(done).toEqual(['ended']);

    handler = (_req, res) => {
      res.writeHead(200);
      res.write('{"type":"ADDED","object":{}}\n');
    };
    const done2: unknown[] = [];
    const got: string[] = [];
    const h = await client.watch(
      '/w',
      {},
      (type) => got.push(type),
      (err) => done2.push(err ?? 'ended'),
    );
    await waitFor(() => got.length > 0, { what: 'an event' });
    h.abort();
    await new Promise((r) => setTimeout(r, 50));
    expect(done2).toEqual([]);
  });

  test('a watch answered with an error status ends with a KubeApiError', async () => {
    handler = (_req, res) => {
      res.writeHead(410);
      res.end('{"kind":"Status","code":410}');
    };
    const done: unknown[] = [];
    await client.watch(
      '/w',
      {},
      () => undefined,
      (err) => done.push(err),
    );
    await waitFor(() => done.length > 0, { what: 'the watch to end' });
    expect(done[0]).toMatchObject({ code: 410, statusCode: 410 });
  });
});

describe('KubeClient through an http proxy (the kubeconfig proxy-url): a CONNECT tunnel to the https server', () => {
  let dir: string;
  let target: https.Server;
  let proxy: http.Server;
  const tunnels: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kube-client-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    target = https.createServer(
      { key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) },
      (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ path: req.url, auth: req.headers.authorization }));
      },
    );
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    proxy = http.createServer((_req, res) => res.writeHead(405).end());
    proxy.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
      tunnels.push(`${req.url} ${req.headers['proxy-authorization'] ?? ''}`);
      const port = Number(String(req.url).split(':')[1]);
      const upstream = net.connect(port, '127.0.0.1', () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  });

  afterAll(async () => {
    proxy.closeAllConnections();
    target.closeAllConnections();
    await new Promise((r) => proxy.close(r));
    await new Promise((r) => target.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test('requests go through the tunnel, verified against the CA, with the proxy credentials', async () => {
    const access: KubeAccess = {
      server: `https://localhost:${(target.address() as AddressInfo).port}`,
      proxyUrl: `http://user:pa%20ss@127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      credentials: async () => ({
        tls: { ca: readFileSync(path.join(dir, 'cert.pem')) },
        headers: { authorization: 'Bearer t' },
      }),
    };
    const c = new KubeClient(access);
    try {
      expect(await c.request('GET', '/api')).toEqual({ path: '/api', auth: 'Bearer t' });
      expect(tunnels).toEqual([
        `localhost:${(target.address() as AddressInfo).port} Basic ${Buffer.from('user:pa ss').toString('base64')}`,
      ]);
    } finally {
      await c.close();
    }
  });

  test('a proxy for a plain-http server, or a socks proxy, is refused with a clear error', () => {
    const creds = async (): Promise<Credentials> => ({ tls: {}, headers: {} });
    expect(() => new KubeClient({ server: 'http://k:8080', proxyUrl: 'http://p:3128', credentials: creds })).toThrow(
      /only an http:\/\/ or https:\/\/ proxy in front of an https API server/,
    );
    expect(() => new KubeClient({ server: 'https://k', proxyUrl: 'socks5://p:1080', credentials: creds })).toThrow(
      /socks5:\/\/p:1080 is not supported/,
    );
  });
});
