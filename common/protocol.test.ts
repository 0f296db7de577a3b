import { headers as natsHeaders } from '@nats-io/nats-core';
import { FnmeshError } from './errors';
import { NATS_HEADERS, decodeReply, encodeErrorReply } from './protocol';

const reply = (status: string, code: string): ReturnType<typeof decodeReply> => {
  const h = natsHeaders();
  h.set(NATS_HEADERS.status, status);
  if (code) h.set(NATS_HEADERS.errorCode, code);
  return decodeReply(new TextEncoder().encode('{"error":"boom"}'), h);
};

describe('decodeReply', () => {
  it("keeps a replica's error code, status and message", () => {
    expect(reply('418', 'bad_request')).toMatchObject({ ok: false, error: { code: 'bad_request', status: 418 } });
    expect(reply('503', 'unavailable')).toMatchObject({ ok: false, error: { code: 'unavailable', status: 503 } });
    expect(reply('502', '')).toMatchObject({ ok: false, error: { code: 'function_failed', message: 'boom' } });
  });

  it("answers a replica's internal error as the function failing (502), never as the gateway's 500", () => {
    expect(reply('500', 'internal')).toMatchObject({ ok: false, error: { code: 'function_failed', status: 502 } });
    expect(reply('500', '')).toMatchObject({ ok: false, error: { code: 'function_failed', status: 502 } });
  });
});

describe('reply facts', () => {
  it('carry not-executed, failure, the function status and the replica through an error reply', () => {
    const down = encodeErrorReply(new FnmeshError('unavailable', 'down'), {
      notExecuted: 'function-down',
      replica: 'r-1',
    });
    expect(decodeReply(down.data, down.headers)).toMatchObject({
      ok: false,
      notExecuted: 'function-down',
      replica: 'r-1',
    });
    const failed = encodeErrorReply(new FnmeshError('function_failed', 'boom'), {
      failure: 'status',
      functionStatus: 503,
    });
    const decoded = decodeReply(failed.data, failed.headers);
    expect(decoded).toMatchObject({ ok: false, failure: 'status', functionStatus: 503 });
    expect(decoded).not.toHaveProperty('notExecuted');
  });

  it('ignore values it does not know', () => {
    const r = encodeErrorReply(new FnmeshError('function_failed', 'x'));
    r.headers.set(NATS_HEADERS.notExecuted, 'perhaps');
    r.headers.set(NATS_HEADERS.failure, 'gremlins');
    r.headers.set(NATS_HEADERS.functionStatus, '200');
    const decoded = decodeReply(r.data, r.headers);
    expect(decoded).not.toHaveProperty('notExecuted');
    expect(decoded).not.toHaveProperty('failure');
    expect(decoded).not.toHaveProperty('functionStatus');
  });
});
