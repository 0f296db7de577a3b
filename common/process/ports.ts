import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * The ports the kernel hands out for `bind(0)` and for outgoing connections' local ends
 * (`net.ipv4.ip_local_port_range`; Linux's default when it cannot be read).
 */
export function ephemeralPortRange(
  read: () => string = () => readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'),
): [number, number] {
  try {
    const [low = NaN, high = NaN] = read().trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low > 0 && high >= low) return [low, high];
  } catch {
    // not Linux, or /proc not mounted: the default below
  }
  return [32768, 60999];
}

/** Lowest port freePort hands out: above the well-known and most registered service ports people run locally. */
const LOWEST_PICKED_PORT = 10_000;
/** Kubernetes' default NodePort range starts here (`--service-node-port-range` 30000-32767); stay below it. */
const NODE_PORT_RANGE_START = 30_000;

/**
 * The window freePort picks from: below the ephemeral range (and Kubernetes' NodePort range), so that no outgoing connection (thousands a second
 * under a load test) can take a port between freePort releasing it and the process it was picked for binding it.
 * Undefined when the ephemeral range leaves too little room below it (then the kernel picks).
 */
export function pickWindow([ephemeralLow]: [number, number]): [number, number] | undefined {
  const high = Math.min(ephemeralLow, NODE_PORT_RANGE_START) - 1;
  return high - LOWEST_PICKED_PORT >= 1000 ? [LOWEST_PICKED_PORT, high] : undefined;
}

let cursor: number | undefined;

/**
 * A free TCP port on `host` for a server that is started next (by this process or a child). It walks the pick
 * window from a random start, so one process never hands out a port twice until it has gone round the window
 * and two processes rarely meet, and returns the first port that can be bound exclusively.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const window = pickWindow(ephemeralPortRange());
  if (!window) return kernelPickedPort(host);
  const [low, high] = window;
  const size = high - low + 1;
  cursor ??= Math.floor(Math.random() * size);
  for (let tries = 0; tries < 200; tries++) {
    const port = low + (cursor++ % size);
    if ((await portProblem(host, port)) === undefined) return port;
  }
  return kernelPickedPort(host);
}

/** A port the kernel picks (bound, read, released): in the ephemeral range, so racing outgoing connections. */
async function kernelPickedPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves to undefined when host:port can be bound, or to the error code (EADDRINUSE, EACCES...) when not. */
export async function portProblem(host: string, port: number): Promise<string | undefined> {
  if (port === 0) return undefined;
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    srv.listen({ host, port, exclusive: true }, () => {
      srv.close(() => resolve(undefined));
    });
  });
}

/** Resolves when something accepts TCP connections on host:port, or rejects at the deadline. */
export async function waitForPort(port: number, timeoutMs = 10_000, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
