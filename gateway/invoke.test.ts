import { InvalidArgumentError, headers, type NatsConnection } from '@nats-io/nats-core';
import { tooLargeForNats } from './invoke';

/** What tooLargeForNats reads of a connection: the server's announced max_payload. */
const announcing = (max: number): NatsConnection => ({ info: { max_payload: max } }) as unknown as NatsConnection;

describe('tooLargeForNats', () => {
  const h = headers();
  h.set('Fnmesh-Request-Id', 'r1');
  const headerBytes = (h as unknown as { encode(): Uint8Array }).encode().length;

  it('turns the refusal of a message over max_payload (params and headers together) into a 413 naming both', () => {
    const err = InvalidArgumentError.format('payload', 'max_payload size exceeded');
    const e = tooLargeForNats(err, announcing(100), new Uint8Array(100 - headerBytes + 1), h);
    expect(e).toMatchObject({ status: 413, code: 'payload_too_large' });
    expect(e?.message).toBe(
      `the call is too large for NATS: ${100 - headerBytes + 1} bytes of params and ${headerBytes} bytes of headers, more than the NATS server's max_payload of 100 bytes; send smaller params`,
    );
  });

  it('leaves other errors, and messages that fit, to the usual mapping', () => {
    const err = InvalidArgumentError.format('payload', 'max_payload size exceeded');
    expect(tooLargeForNats(err, announcing(100), new Uint8Array(100 - headerBytes), h)).toBeUndefined();
    expect(tooLargeForNats(new Error('other'), announcing(10), new Uint8Array(100), h)).toBeUndefined();
  });
});
