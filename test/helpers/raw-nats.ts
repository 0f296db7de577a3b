/**
 * A raw NATS protocol client for tests that need the server's exact words (-ERR texts, INFO fields, when
 * the connection closes), which a real client library hides behind its own errors.
 */
import net from 'node:net';
import { waitFor } from './wait';

export interface RawNats {
  /** Everything the server sent so far (latin1). */
  text(): string;
  info(): Record<string, unknown>;
  send(...lines: string[]): void;
  /** Resolves once the server's output contains `needle`. */
  waitFor(needle: string | RegExp, what?: string): Promise<void>;
  /** Sends PING and waits for the PONG that follows everything sent before it. */
  roundTrip(): Promise<void>;
  closed(): boolean;
  waitClosed(): Promise<void>;
  socket: net.Socket;
  close(): void;
}

export async function rawConnect(port: number): Promise<RawNats> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  let text = '';
  let isClosed = false;
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => (isClosed = true));
  await waitFor(() => text.includes('\r\n'), { what: 'INFO from the server', timeoutMs: 5_000 });
  const first = text.slice(0, text.indexOf('\r\n'));
  const info = JSON.parse(first.slice('INFO '.length)) as Record<string, unknown>;
  const raw: RawNats = {
    socket,
    text: () => text,
    info: () => info,
    send: (...lines) => {
      if (!socket.destroyed) socket.write(lines.map((l) => l + '\r\n').join(''));
    },
    async waitFor(needle, what) {
      const hit = (): boolean => (typeof needle === 'string' ? text.includes(needle) : needle.test(text));
      await waitFor(() => hit() || isClosed, { what: what ?? String(needle), timeoutMs: 8_000 });
      if (!hit()) throw new Error(`connection closed before ${String(needle)}; got: ${text.slice(-300)}`);
    },
    async roundTrip() {
      const pongs = (): number => text.match(/PONG\r\n/g)?.length ?? 0;
      const want = pongs() + 1;
      raw.send('PING');
      await waitFor(() => pongs() >= want || isClosed, { what: 'PONG', timeoutMs: 8_000 });
      if (pongs() < want) throw new Error(`closed before PONG; got: ${text.slice(-300)}`);
    },
    closed: () => isClosed,
    async waitClosed() {
      await waitFor(() => isClosed, { what: 'the server to close the connection', timeoutMs: 8_000 });
    },
    close: () => socket.destroy(),
  };
  return raw;
}

/** The `-ERR` lines the server sent, in order. */
export function errors(text: string): string[] {
  return [...text.matchAll(/-ERR '([^']*)'\r\n/g)].map((m) => m[1]!);
}
