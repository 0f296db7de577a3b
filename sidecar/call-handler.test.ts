import { functionErrorText, mapFunctionResponse, truncate } from './call-handler';
import { describeConnectionError } from './function-client';

const b = (s: string): Buffer => Buffer.from(s);

describe('mapFunctionResponse', () => {
  test('2xx JSON passes through as the same bytes', () => {
    const body = b('{"a":  1}');
    const r = mapFunctionResponse('f', 200, body);
    expect(r).toEqual({ ok: true, data: body });
    if (r.ok) expect(r.data).toBe(body);
  });
  test('empty 2xx → null', () => {
    const r = mapFunctionResponse('f', 204, b(''));
    expect(r.ok && r.data.toString()).toBe('null');
  });
  test('2xx not JSON → 502 saying the function must answer JSON', () => {
    const r = mapFunctionResponse('f', 200, b('hello'));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.status).toBe(502);
      expect(r.error.code).toBe('function_failed');
      expect(r.error.message).toContain('must answer JSON');
    }
  });
  test('4xx keeps its status, code from the status, message from {"error"} or the text', () => {
    const a = mapFunctionResponse('f', 422, b('{"error":"sku is required"}'));
    expect(!a.ok && [a.error.status, a.error.code, a.error.message]).toEqual([422, 'bad_request', 'sku is required']);
    const c = mapFunctionResponse('f', 403, b('go away'));
    expect(!c.ok && [c.error.status, c.error.code, c.error.message]).toEqual([403, 'forbidden', 'go away']);
    const d = mapFunctionResponse('f', 400, b(''));
    expect(!d.ok && d.error.message).toBe('function "f" rejected the call with status 400');
  });
  test('5xx and other statuses → 502 function_failed', () => {
    const a = mapFunctionResponse('f', 500, b('{"error":"boom"}'));
    expect(!a.ok && [a.error.status, a.error.code, a.error.message]).toEqual([
      502,
      'function_failed',
      'function "f" failed with status 500: boom',
    ]);
    const c = mapFunctionResponse('f', 302, b(''));
    expect(!c.ok && c.error.status).toBe(502);
  });
});

test('functionErrorText truncates long text and reads {"error": {"message"}}', () => {
  expect(functionErrorText(b('x'.repeat(2000))).length).toBeLessThan(600);
  expect(functionErrorText(b('{"error":{"message":"m"}}'))).toBe('m');
  expect(truncate('abc', 5)).toBe('abc');
});

test('describeConnectionError names what happened', () => {
  expect(
    describeConnectionError(
      { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:8080' },
      '127.0.0.1:8080',
      'f',
    ),
  ).toBe('function process not reachable on 127.0.0.1:8080: connect ECONNREFUSED');
  expect(
    describeConnectionError({ code: 'UND_ERR_SOCKET', message: 'other side closed' }, '127.0.0.1:8080', 'f'),
  ).toMatch(/closed the connection.*other side closed/);
  expect(describeConnectionError(new Error('weird'), '127.0.0.1:1', 'f')).toBe(
    'calling function "f" on 127.0.0.1:1 failed: weird',
  );
});
