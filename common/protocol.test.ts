import { headers as natsHeaders } from '@nats-io/nats-core';
import { NATS_HEADERS, decodeReply } from './protocol';

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
