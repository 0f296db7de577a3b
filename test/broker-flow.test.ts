/**
 * Flow control under pressure, on nats-server and the embedded broker with the same expectations: a fast
 * publisher is slowed down to what a slow (but reading) subscriber takes, instead of the subscriber's
 * pending bytes reaching max_pending and the subscriber being cut as a slow consumer.
 */
import net from 'node:net';
import { connect } from '@nats-io/transport-node';
import { BROKER_TARGETS, type BrokerTarget, type RunningBroker } from './helpers/brokers';
import { waitFor } from './helpers/wait';

jest.setTimeout(60_000);

const MAX_PENDING = 256 * 1024;
const MESSAGE = 16 * 1024;
const COUNT = 1024; // 16 MiB in all: 64 times max_pending

/** A subscriber that reads one chunk, then leaves its socket alone for a few milliseconds. */
function slowSubscriber(
  port: number,
  subject: string,
): { bytes: () => number; text: () => string; closed: () => boolean; socket: net.Socket } {
  const socket = net.connect({ port, host: '127.0.0.1' });
  let bytes = 0;
  let head = '';
  let closed = false;
  socket.on('data', (d: Buffer) => {
    bytes += d.length;
    if (head.length < 4096) head += d.toString('latin1', 0, Math.min(d.length, 4096));
    socket.pause();
    setTimeout(() => socket.resume(), 3);
  });
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  socket.write(`CONNECT {"verbose":false,"pedantic":false}\r\nSUB ${subject} 1\r\nPING\r\n`);
  return { bytes: () => bytes, text: () => head, closed: () => closed, socket };
}

describe.each(BROKER_TARGETS)('a fast publisher and a slow subscriber (%s)', (target: BrokerTarget) => {
  let broker: RunningBroker;
  beforeAll(async () => {
    broker = await target.start({ maxPendingBytes: MAX_PENDING, maxPayload: 64 * 1024 });
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('slows the publisher down instead of cutting the subscriber', async () => {
    const sub = slowSubscriber(broker.port, 'flow');
    await waitFor(() => sub.text().includes('PONG'), { what: 'the subscription' });
    const pub = await connect({ servers: broker.url, reconnect: false });
    const body = new Uint8Array(MESSAGE).fill(120);
    for (let i = 0; i < COUNT; i++) pub.publish('flow', body);
    await pub.flush();
    const perMessage = `MSG flow 1 ${MESSAGE}\r\n`.length + MESSAGE + 2;
    const start = sub.text().indexOf('PONG\r\n') + 'PONG\r\n'.length;
    await waitFor(() => sub.bytes() - start >= COUNT * perMessage || sub.closed(), {
      what: 'every message at the slow subscriber',
      timeoutMs: 50_000,
    });
    expect(sub.text()).not.toContain('-ERR');
    expect(sub.closed()).toBe(false);
    expect(sub.bytes() - start).toBe(COUNT * perMessage);
    await pub.close();
    sub.socket.destroy();
  });
});
