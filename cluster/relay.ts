import type net from 'node:net';

/**
 * Pipes two sockets into each other; when either ends or fails, both are closed. Nagle's algorithm is off on
 * both (a no-op on a Unix socket): a relay must forward each small write at once, as the NATS and HTTP clients
 * on either end do, or request/reply traffic waits on delayed ACKs at every hop.
 */
export function relay(a: net.Socket, b: net.Socket): void {
  a.setNoDelay(true);
  b.setNoDelay(true);
  a.pipe(b);
  b.pipe(a);
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end);
  b.on('error', end);
  a.on('close', end);
  b.on('close', end);
}
