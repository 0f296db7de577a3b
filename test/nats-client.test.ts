/**
 * The NATS client protocol, proven with the real client (@nats-io/transport-node) and raw sockets against
 * both the real nats-server and fnmesh's embedded broker, with the same expectations.
 */
import net from 'node:net';
import { connect } from '@nats-io/transport-node';
import { headers, RequestError, type NatsConnection, type Msg, type ConnectionOptions } from '@nats-io/nats-core';
import { BROKER_TARGETS, type BrokerStartOptions, type BrokerTarget, type RunningBroker } from './helpers/brokers';
import { waitFor } from './helpers/wait';

jest.setTimeout(30_000);

/** A raw TCP client that records everything the server sends. */
class RawClient {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  closed = false;
  readonly closedPromise: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect({ port, host: '127.0.0.1' });
    this.socket.setNoDelay(true);
    this.socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
    });
    this.socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  get text(): string {
    return this.received.toString('latin1');
  }

  /** The text after the INFO line. */
  get afterInfo(): string {
    const t = this.text;
    const i = t.indexOf('\r\n');
    return i < 0 ? '' : t.slice(i + 2);
  }

  write(s: string | Buffer): void {
    this.socket.write(s);
  }

  async waitFor(text: string, what = JSON.stringify(text)): Promise<void> {
    await waitFor(() => this.text.includes(text), { what: `${what}; got ${JSON.stringify(this.text.slice(-300))}` });
  }

  async waitClosed(): Promise<void> {
    await waitFor(() => this.closed, { what: 'the server to close the connection' });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

async function rawConnected(
  port: number,
  connectJson = '{"verbose":false,"headers":true,"no_responders":true}',
): Promise<RawClient> {
  const c = new RawClient(port);
  await c.waitFor('INFO ');
  c.write(`CONNECT ${connectJson}\r\nPING\r\n`);
  await c.waitFor('PONG\r\n');
  return c;
}

function dec(m: Msg): string {
  return m.string();
}

describe.each(BROKER_TARGETS)('NATS client protocol against the $name', (target: BrokerTarget) => {
  const conns: NatsConnection[] = [];
  const raws: RawClient[] = [];
  const servers: RunningBroker[] = [];

  async function server(options?: BrokerStartOptions): Promise<RunningBroker> {
    const s = await target.start(options);
    servers.push(s);
    return s;
  }
  async function client(s: RunningBroker, options: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
    const nc = await connect({ servers: s.url, reconnectTimeWait: 50, ...options });
    conns.push(nc);
    return nc;
  }
  async function raw(s: RunningBroker, connectJson?: string): Promise<RawClient> {
    const c = await rawConnected(s.port, connectJson);
    raws.push(c);
    return c;
  }

  let main: RunningBroker;
  beforeAll(async () => {
    main = await server();
  });
  afterAll(async () => {
    for (const r of raws) r.destroy();
    await Promise.all(conns.map((nc) => (nc.isClosed() ? undefined : nc.close().catch(() => undefined))));
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('connects, flushes and reports the server info', async () => {
    const nc = await client(main);
    await nc.flush();
    expect(nc.info?.proto).toBe(1);
    expect(nc.info?.headers).toBe(true);
    expect(nc.info?.max_payload).toBe(1024 * 1024);
    expect(typeof nc.info?.server_id).toBe('string');
    expect(nc.info?.client_id).toBeGreaterThan(0);
  });

  it('delivers published messages to a subscriber in order', async () => {
    const nc = await client(main);
    const got: string[] = [];
    const sub = nc.subscribe('pubsub.a', { callback: (_e, m) => void got.push(dec(m)) });
    await nc.flush();
    const pub = await client(main);
    for (let i = 0; i < 10; i++) pub.publish('pubsub.a', `m${i}`);
    await waitFor(() => got.length === 10, { what: '10 messages' });
    expect(got).toEqual([...Array(10).keys()].map((i) => `m${i}`));
    sub.unsubscribe();
  });

  it('matches * and > wildcards', async () => {
    const nc = await client(main);
    const star: string[] = [];
    const gt: string[] = [];
    nc.subscribe('wild.*.end', { callback: (_e, m) => void star.push(m.subject) });
    nc.subscribe('wild.>', { callback: (_e, m) => void gt.push(m.subject) });
    await nc.flush();
    for (const s of ['wild.a.end', 'wild.a.b.end', 'wild.x', 'wild', 'wildcard.a.end']) nc.publish(s, 'x');
    nc.publish('wild.done', 'x');
    await waitFor(() => gt.includes('wild.done'), { what: 'the last message' });
    expect(star).toEqual(['wild.a.end']);
    expect(gt).toEqual(['wild.a.end', 'wild.a.b.end', 'wild.x', 'wild.done']);
  });

  it('gives each message to exactly one member of a queue group, and to every plain subscriber', async () => {
    const N = 300;
    const members = await Promise.all([client(main), client(main), client(main)]);
    const perMember: number[][] = members.map(() => []);
    members.forEach((nc, i) =>
      nc.subscribe('work.items', { queue: 'workers', callback: (_e, m) => void perMember[i]!.push(Number(dec(m))) }),
    );
    const other: number[] = [];
    members[0]!.subscribe('work.items', { queue: 'auditors', callback: (_e, m) => void other.push(Number(dec(m))) });
    const plain: number[] = [];
    const watcher = await client(main);
    watcher.subscribe('work.items', { callback: (_e, m) => void plain.push(Number(dec(m))) });
    await Promise.all([...members, watcher].map((nc) => nc.flush()));
    const pub = await client(main);
    for (let i = 0; i < N; i++) pub.publish('work.items', String(i));
    await pub.flush();
    await waitFor(() => plain.length === N && other.length === N && perMember.flat().length >= N, {
      what: 'all deliveries',
    });
    await Promise.all(members.map((nc) => nc.flush()));
    const all = perMember.flat().sort((a, b) => a - b);
    expect(all).toEqual([...Array(N).keys()]);
    for (const got of perMember) expect(got.length).toBeGreaterThan(0);
    expect(plain).toEqual([...Array(N).keys()]);
    expect(other.sort((a, b) => a - b)).toEqual([...Array(N).keys()]);
  });

  it('answers requests', async () => {
    const nc = await client(main);
    nc.subscribe('svc.echo', { callback: (_e, m) => void m.respond(`echo:${dec(m)}`) });
    await nc.flush();
    const caller = await client(main);
    const replies = await Promise.all([1, 2, 3].map((i) => caller.request('svc.echo', `hi${i}`, { timeout: 5_000 })));
    expect(replies.map(dec)).toEqual(['echo:hi1', 'echo:hi2', 'echo:hi3']);
  });

  it('carries headers, including multi-valued ones, both ways', async () => {
    const nc = await client(main);
    nc.subscribe('svc.headers', {
      callback: (_e, m) => {
        const h = headers();
        h.set('Fnmesh-Request-Id', m.headers?.get('Fnmesh-Request-Id') ?? 'missing');
        for (const v of m.headers?.values('X-Multi') ?? []) h.append('X-Multi', `back-${v}`);
        m.respond(m.data, { headers: h });
      },
    });
    await nc.flush();
    const h = headers();
    h.set('Fnmesh-Request-Id', 'req-1');
    h.append('X-Multi', 'a');
    h.append('X-Multi', 'b');
    const reply = await (await client(main)).request('svc.headers', 'body', { headers: h, timeout: 5_000 });
    expect(reply.string()).toBe('body');
    expect(reply.headers?.get('Fnmesh-Request-Id')).toBe('req-1');
    expect(reply.headers?.values('X-Multi')).toEqual(['back-a', 'back-b']);
  });

  it('passes a header block through byte for byte (HPUB → HMSG) and strips it for clients without headers', async () => {
    const sub = await raw(main);
    const old = await raw(main, '{"verbose":false}');
    sub.write('SUB raw.hdr 9\r\nPING\r\n');
    old.write('SUB raw.hdr 4\r\nPING\r\n');
    await sub.waitFor('PONG\r\nPONG\r\n');
    await old.waitFor('PONG\r\nPONG\r\n');
    const block = 'NATS/1.0\r\nA: 1\r\nA: 2\r\nweird-Case:  x \r\n\r\n';
    const pub = await raw(main);
    pub.write(`HPUB raw.hdr rep.ly ${block.length} ${block.length + 4}\r\n${block}body\r\n`);
    await sub.waitFor(`HMSG raw.hdr 9 rep.ly ${block.length} ${block.length + 4}\r\n${block}body\r\n`);
    await old.waitFor('MSG raw.hdr 4 rep.ly 4\r\nbody\r\n');
  });

  it('rejects a request with no responders at once', async () => {
    const nc = await client(main);
    const started = Date.now();
    const err = await nc.request('nobody.home', 'x', { timeout: 10_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).isNoResponders()).toBe(true);
  });

  it('sends the exact no-responders status bytes', async () => {
    const c = await raw(main);
    c.write('SUB _INBOX.raw.* 7\r\nPUB nobody.raw _INBOX.raw.1 2\r\nhi\r\nPING\r\n');
    await c.waitFor('PONG\r\n', 'second PONG');
    await waitFor(() => c.afterInfo.split('PONG\r\n').length >= 3, { what: 'second PONG' });
    expect(c.afterInfo).toBe('PONG\r\nHMSG _INBOX.raw.1 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\nPONG\r\n');
  });

  it('stops delivering after unsubscribe and after max messages', async () => {
    const nc = await client(main);
    const limited: string[] = [];
    const sub = nc.subscribe('unsub.max', { max: 3, callback: (_e, m) => void limited.push(dec(m)) });
    const dropped: string[] = [];
    const gone = nc.subscribe('unsub.now', { callback: (_e, m) => void dropped.push(dec(m)) });
    const barrier: string[] = [];
    nc.subscribe('unsub.now', { callback: (_e, m) => void barrier.push(dec(m)) });
    await nc.flush();
    const pub = await client(main);
    for (let i = 0; i < 6; i++) pub.publish('unsub.max', String(i));
    pub.publish('unsub.now', 'first');
    await waitFor(() => barrier.length === 1 && limited.length === 3, { what: 'first deliveries' });
    await sub.closed;
    gone.unsubscribe();
    await nc.flush();
    pub.publish('unsub.now', 'second');
    pub.publish('unsub.max', 'late');
    await waitFor(() => barrier.length === 2, { what: 'the barrier message' });
    expect(limited).toEqual(['0', '1', '2']);
    expect(dropped).toEqual(['first']);
  });

  it('does not echo to a connection that asked for no echo', async () => {
    const quiet = await client(main, { noEcho: true });
    const own: string[] = [];
    quiet.subscribe('echo.test', { callback: (_e, m) => void own.push(dec(m)) });
    const other = await client(main);
    const seen: string[] = [];
    other.subscribe('echo.test', { callback: (_e, m) => void seen.push(dec(m)) });
    await Promise.all([quiet.flush(), other.flush()]);
    quiet.publish('echo.test', 'mine');
    other.publish('echo.test', 'theirs');
    await waitFor(() => own.includes('theirs') && seen.length === 2, { what: 'deliveries' });
    expect(own).toEqual(['theirs']);
  });

  it('parses frames split byte by byte and answers the client PING', async () => {
    const c = new RawClient(main.port);
    raws.push(c);
    await c.waitFor('INFO ');
    const info = JSON.parse(c.text.slice(5, c.text.indexOf('\r\n'))) as Record<string, unknown>;
    expect(c.text.slice(0, c.text.indexOf('\r\n') + 2)).toMatch(/^INFO \{.*\} \r\n$/);
    expect(info).toMatchObject({
      proto: 1,
      headers: true,
      max_payload: 1024 * 1024,
      host: '127.0.0.1',
      port: main.port,
    });
    expect(typeof info.server_id).toBe('string');
    expect(typeof info.client_id).toBe('number');
    const input = Buffer.from(
      'CONNECT {"verbose":true}\r\nsub split.x 1\r\nPUB split.x 5\r\nhello\r\nPUB split.x r 0\r\n\r\nPING\r\n',
    );
    for (let i = 0; i < input.length; i++) {
      await new Promise<void>((resolve) => c.socket.write(input.subarray(i, i + 1), () => resolve()));
    }
    await c.waitFor('PONG\r\n');
    expect(c.afterInfo).toBe(
      '+OK\r\n+OK\r\n+OK\r\nMSG split.x 1 5\r\nhello\r\n+OK\r\nMSG split.x 1 r 0\r\n\r\nPONG\r\n',
    );
  });

  it('answers protocol errors with the nats-server texts', async () => {
    const bad = new RawClient(main.port);
    raws.push(bad);
    await bad.waitFor('INFO ');
    bad.write('BOGUS\r\n');
    await bad.waitFor("-ERR 'Unknown Protocol Operation'\r\n");
    await bad.waitClosed();

    const sub = await raw(main);
    sub.write('SUB a..b 1\r\nSUB >.x 2\r\nPING\r\n');
    await sub.waitFor("-ERR 'Invalid Subject'\r\n-ERR 'Invalid Subject'\r\nPONG\r\n");
    expect(sub.closed).toBe(false);

    const ped = await raw(main, '{"verbose":false,"pedantic":true}');
    ped.write('PUB bad.* 1\r\nx\r\nPING\r\n');
    await ped.waitFor("-ERR 'Invalid Publish Subject'\r\nPONG\r\n");

    const nr = new RawClient(main.port);
    raws.push(nr);
    await nr.waitFor('INFO ');
    nr.write('CONNECT {"no_responders":true}\r\n');
    await nr.waitFor("-ERR 'no responders requires headers support'\r\n");
    await nr.waitClosed();

    const long = new RawClient(main.port);
    raws.push(long);
    await long.waitFor('INFO ');
    long.write(`PUB ${'x'.repeat(5000)} 1\r\n`);
    await long.waitFor("-ERR 'maximum control line exceeded'\r\n");
    await long.waitClosed();
  });

  describe('max payload', () => {
    let small: RunningBroker;
    beforeAll(async () => {
      small = await server({ maxPayload: 1024 });
    });

    it('announces max_payload, which the client enforces', async () => {
      const nc = await client(small);
      expect(nc.info?.max_payload).toBe(1024);
      expect(() => nc.publish('big', new Uint8Array(2048))).toThrow();
      nc.publish('ok', new Uint8Array(1024));
      await nc.flush();
    });

    it('answers an oversized PUB with -ERR and closes the connection', async () => {
      const c = await raw(small);
      c.write('PUB big 2048\r\n');
      await c.waitFor("-ERR 'Maximum Payload Violation'\r\n");
      await c.waitClosed();
    });
  });

  describe('token auth', () => {
    let secured: RunningBroker;
    beforeAll(async () => {
      secured = await server({ token: 's3cret' });
    });

    it('accepts the right token', async () => {
      const nc = await client(secured, { token: 's3cret' });
      expect(nc.info?.auth_required).toBe(true);
      await nc.flush();
    });

    it('refuses a wrong or missing token with an authorization error', async () => {
      await expect(connect({ servers: secured.url, token: 'wrong', maxReconnectAttempts: 0 })).rejects.toThrow(
        /authorization/i,
      );
      await expect(connect({ servers: secured.url, maxReconnectAttempts: 0 })).rejects.toThrow(/authorization/i);
      const c = new RawClient(secured.port);
      raws.push(c);
      await c.waitFor('INFO ');
      c.write('PING\r\n');
      await c.waitFor("-ERR 'Authorization Violation'\r\n");
      await c.waitClosed();
    });
  });

  describe('permissions', () => {
    let perm: RunningBroker;
    beforeAll(async () => {
      perm = await server({
        users: [
          { user: 'gateway', password: 'gw-pass' },
          {
            user: 'alpha',
            password: 'alpha-pass',
            permissions: { publish: ['fnmesh.gw.ns.alpha.>'], subscribe: ['fnmesh.call.ns.alpha.>', '_INBOX.>'] },
          },
        ],
      });
    });

    it('denies publishing to another service subject and keeps the connection', async () => {
      const gw = await client(perm, { user: 'gateway', pass: 'gw-pass' });
      const seen: string[] = [];
      gw.subscribe('fnmesh.gw.>', { callback: (_e, m) => void seen.push(m.subject) });
      gw.subscribe('fnmesh.call.ns.alpha.ping', { callback: (_e, m) => void m.respond('pong') });
      await gw.flush();
      const alpha = await client(perm, { user: 'alpha', pass: 'alpha-pass' });
      const errors: string[] = [];
      void (async () => {
        for await (const s of alpha.status()) if (s.type === 'error') errors.push(String(s.error.message));
      })();
      alpha.publish('fnmesh.gw.ns.beta.fn', 'forged');
      alpha.publish('fnmesh.gw.ns.alpha.fn', 'genuine');
      await waitFor(() => seen.includes('fnmesh.gw.ns.alpha.fn') && errors.length > 0, {
        what: 'allowed message and error',
      });
      expect(seen).toEqual(['fnmesh.gw.ns.alpha.fn']);
      expect(errors[0]).toMatch(/Permissions Violation for Publish to "fnmesh.gw.ns.beta.fn"/);
      // the connection is still usable, including requests (replies go to _INBOX)
      const r = await gw.request('fnmesh.call.ns.alpha.ping', '', { timeout: 5_000 }).catch((e: unknown) => e);
      expect(r).toBeDefined();
      alpha.subscribe('fnmesh.call.ns.alpha.echo', { callback: (_e, m) => void m.respond(m.data) });
      await alpha.flush();
      const echoed = await gw.request('fnmesh.call.ns.alpha.echo', 'yes', { timeout: 5_000 });
      expect(echoed.string()).toBe('yes');
      expect(alpha.isClosed()).toBe(false);
    });

    it('answers with the exact -ERR texts', async () => {
      const c = await raw(perm, '{"verbose":false,"user":"alpha","pass":"alpha-pass"}');
      c.write(
        'PUB fnmesh.gw.ns.beta.x 1\r\nx\r\nSUB fnmesh.call.ns.beta.> 1\r\nSUB fnmesh.call.ns.beta.> q 2\r\nPING\r\n',
      );
      await c.waitFor(
        `-ERR 'Permissions Violation for Publish to "fnmesh.gw.ns.beta.x"'\r\n` +
          `-ERR 'Permissions Violation for Subscription to "fnmesh.call.ns.beta.>"'\r\n` +
          `-ERR 'Permissions Violation for Subscription to "fnmesh.call.ns.beta.>" using queue "q"'\r\nPONG\r\n`,
      );
      const bad = new RawClient(perm.port);
      raws.push(bad);
      await bad.waitFor('INFO ');
      bad.write('CONNECT {"user":"alpha","pass":"nope"}\r\n');
      await bad.waitFor("-ERR 'Authorization Violation'\r\n");
      await bad.waitClosed();
    });
  });

  describe('slow consumers', () => {
    let slow: RunningBroker;
    beforeAll(async () => {
      slow = await server({ maxPendingBytes: 2 * 1024 * 1024 });
    });

    it('disconnects a client that does not read and keeps serving the others', async () => {
      const stuck = await raw(slow);
      stuck.write('SUB flood 1\r\nPING\r\n');
      await stuck.waitFor('PONG\r\nPONG\r\n');
      stuck.socket.pause();
      const healthy = await client(slow);
      let healthyCount = 0;
      healthy.subscribe('flood', { callback: () => void healthyCount++ });
      healthy.subscribe('still.there', { callback: (_e, m) => void m.respond('yes') });
      await healthy.flush();
      const pub = await client(slow);
      const chunk = new Uint8Array(512 * 1024);
      const COUNT = 64; // 32 MiB: far more than kernel buffers and the 2 MiB pending limit
      for (let i = 0; i < COUNT; i++) {
        pub.publish('flood', chunk);
        if (i % 2 === 1) await pub.flush();
      }
      await pub.flush();
      await waitFor(() => healthyCount === COUNT, {
        what: 'the healthy subscriber to get everything',
        timeoutMs: 20_000,
      });
      const answer = await pub.request('still.there', '', { timeout: 5_000 });
      expect(answer.string()).toBe('yes');
      stuck.socket.resume();
      await stuck.waitClosed();
      expect(stuck.received.length).toBeLessThan(COUNT * chunk.length);
    });
  });

  describe('reconnect', () => {
    let flaky: RunningBroker;
    beforeAll(async () => {
      flaky = await server();
    });

    it('reconnects by itself after the server restarts on the same port and keeps the subscription', async () => {
      const nc = await client(flaky, { maxReconnectAttempts: -1 });
      const pub = await client(flaky, { maxReconnectAttempts: -1 });
      const got: string[] = [];
      nc.subscribe('after.restart', { callback: (_e, m) => void got.push(dec(m)) });
      await nc.flush();
      pub.publish('after.restart', 'before');
      await waitFor(() => got.length === 1, { what: 'first message' });
      const reconnected = (async () => {
        for await (const s of nc.status()) if (s.type === 'reconnect') return true;
        return false;
      })();
      await flaky.kill();
      await flaky.start();
      expect(await reconnected).toBe(true);
      await waitFor(
        () => {
          pub.publish('after.restart', 'after');
          return got.includes('after');
        },
        { what: 'a message after the restart', intervalMs: 50, timeoutMs: 15_000 },
      );
    });
  });
});
