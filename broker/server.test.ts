/** Broker behaviour the real client hides: server pings, stale connections, auth timeout, stats, close. */
import net from 'node:net';
import { startBroker, type Broker } from './index';

function rawClient(port: number): { socket: net.Socket; text: () => string; closed: Promise<void> } {
  const socket = net.connect({ port, host: '127.0.0.1' });
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { socket, text: () => text, closed };
}

async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('embedded broker', () => {
  let broker: Broker;
  afterEach(async () => {
    await broker?.close();
  });

  it('pings clients and closes a stale connection with -ERR Stale Connection', async () => {
    broker = await startBroker({ pingIntervalMs: 50, maxPingsOut: 2 });
    const quiet = rawClient(broker.port);
    const alive = rawClient(broker.port);
    alive.socket.on('data', (d: Buffer) => {
      if (d.toString().includes('PING\r\n')) alive.socket.write('PONG\r\n');
    });
    await quiet.closed;
    expect(quiet.text()).toMatch(/PING\r\nPING\r\n-ERR 'Stale Connection'\r\n$/);
    await until(() => alive.text().split('PING').length > 4, 'more pings to the live client');
    expect(alive.socket.destroyed).toBe(false);
    alive.socket.destroy();
  });

  it('closes a client that does not authenticate in time', async () => {
    broker = await startBroker({ token: 't', authTimeoutMs: 50 });
    const c = rawClient(broker.port);
    await c.closed;
    expect(c.text()).toContain('"auth_required":true');
    expect(c.text()).toMatch(/-ERR 'Authentication Timeout'\r\n$/);
  });

  it('counts connections, subscriptions and messages', async () => {
    broker = await startBroker();
    const c = rawClient(broker.port);
    c.socket.write(
      'CONNECT {"verbose":false}\r\nSUB a 1\r\nSUB b q 2\r\nPUB a 3\r\nabc\r\nPUB b 2\r\nxy\r\nPUB none 1\r\nz\r\nPING\r\n',
    );
    await until(() => c.text().includes('PONG'), 'PONG');
    expect(broker.stats()).toMatchObject({
      connections: 1,
      totalConnections: 1,
      subscriptions: 2,
      inMsgs: 3,
      inBytes: 6,
      outMsgs: 2,
      outBytes: 5,
      slowConsumers: 0,
    });
    c.socket.destroy();
    await until(() => broker.stats().connections === 0, 'disconnect');
    expect(broker.stats().subscriptions).toBe(0);
  });

  it('close() disconnects clients, stops listening and resolves', async () => {
    broker = await startBroker({ serverName: 'unit' });
    expect(broker.url).toBe(`nats://127.0.0.1:${broker.port}`);
    const c = rawClient(broker.port);
    await until(() => c.text().includes('"server_name":"unit"'), 'INFO');
    await broker.close();
    await c.closed;
    await expect(
      new Promise((resolve, reject) =>
        net.connect(broker.port, '127.0.0.1').on('connect', resolve).on('error', reject),
      ),
    ).rejects.toThrow(/ECONNREFUSED/);
  });

  it('refuses both token and users', async () => {
    await expect(startBroker({ token: 'a', users: [{ token: 'b' }] })).rejects.toThrow(/either token or users/);
    broker = await startBroker({ users: [{ token: 'tok-a', permissions: { publish: ['a.>'] } }] });
    const c = rawClient(broker.port);
    c.socket.write('CONNECT {"verbose":false,"auth_token":"tok-a"}\r\nPUB b 1\r\nx\r\nPUB a.x 1\r\nx\r\nPING\r\n');
    await until(() => c.text().includes('PONG'), 'PONG');
    expect(c.text()).toContain(`-ERR 'Permissions Violation for Publish to "b"'\r\nPONG\r\n`);
    c.socket.destroy();
  });
});
