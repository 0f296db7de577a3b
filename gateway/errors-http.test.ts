import { errors as natsErrors } from '@nats-io/nats-core';
import { FnmeshError } from '../common';
import { toHttpError } from './errors-http';
import { NOT_CONNECTED_MESSAGE, mapRequestError } from './invoke';

describe('toHttpError', () => {
  it('maps FnmeshError codes and custom 4xx statuses', () => {
    expect(toHttpError(new FnmeshError('forbidden', 'no'))).toMatchObject({
      status: 403,
      body: '{"error":"no"}',
      unexpected: false,
    });
    expect(toHttpError(new FnmeshError('bad_request', 'teapot', 418))).toMatchObject({
      status: 418,
      code: 'bad_request',
    });
    expect(toHttpError(new FnmeshError('function_failed'))).toMatchObject({ status: 502 });
  });
  it('answers a 5xx that no code has (a reply may carry any status) as 502, never as sent', () => {
    expect(toHttpError(new FnmeshError('function_failed', 'odd', 599)).status).toBe(502);
    expect(toHttpError(new FnmeshError('function_failed', 'odd', 501)).status).toBe(502);
    expect(toHttpError(new FnmeshError('unavailable', 'odd', 507)).status).toBe(503);
    expect(toHttpError(new FnmeshError('forbidden', 'odd', 200)).status).toBe(502);
    expect(toHttpError(new FnmeshError('deadline_exceeded')).status).toBe(504);
  });
  it('hides unexpected errors', () => {
    const h = toHttpError(new Error('secret stack detail'));
    expect(h).toMatchObject({ status: 500, body: '{"error":"internal error"}', unexpected: true });
  });
});

describe('mapRequestError', () => {
  const target = { namespace: 'default', service: 'greeter', function: 'hello' };
  it('maps no responders to a 503 naming the service', () => {
    const e = mapRequestError(
      new natsErrors.RequestError('503', { cause: new natsErrors.NoRespondersError('s') }),
      target,
      100,
    );
    expect(e.status).toBe(503);
    expect(e.message).toBe('no ready replica of default/greeter is subscribed');
  });
  it('maps a timeout to a 504', () => {
    const e = mapRequestError(new natsErrors.TimeoutError(), target, 250);
    expect(e.status).toBe(504);
    expect(e.message).toContain('250 ms');
  });
  it('maps a closed connection to 503 not connected', () => {
    const e = mapRequestError(new natsErrors.ClosedConnectionError(), target, 1);
    expect(e).toMatchObject({ status: 503, message: NOT_CONNECTED_MESSAGE });
  });
  it('maps anything else to 500', () => {
    expect(mapRequestError(new Error('x'), target, 1).status).toBe(500);
  });
});
