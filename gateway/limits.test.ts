import { ConfigError } from '../common';
import {
  DEFAULT_MAX_BODY_BYTES,
  FIXED_HEADER_BYTES,
  effectiveBodyLimit,
  embeddedMaxPayload,
  headerBudget,
  paramsTooDeep,
  tokenTooLarge,
} from './limits';

const MiB = 1024 * 1024;

describe('limits', () => {
  it('budgets the headers of a call: the token, its claims, and the rest', () => {
    expect(headerBudget(8192)).toBe(FIXED_HEADER_BYTES + 3 * 8192);
  });

  it("sizes the embedded broker's max payload to carry the largest body with its headers", () => {
    expect(embeddedMaxPayload({ maxTokenBytes: 8192 })).toBe(DEFAULT_MAX_BODY_BYTES + headerBudget(8192));
    expect(embeddedMaxPayload({ maxBodyBytes: 5000, maxTokenBytes: 1000 })).toBe(5000 + headerBudget(1000));
    // the embedded broker always fits what the gateway accepts
    const limits = { maxBodyBytes: 5000, maxTokenBytes: 1000 };
    expect(effectiveBodyLimit(embeddedMaxPayload(limits), limits)).toBe(5000);
  });

  it('keeps a set body limit that fits, and stops the gateway naming both settings when it does not', () => {
    expect(effectiveBodyLimit(2 * MiB, { maxBodyBytes: MiB, maxTokenBytes: 8192 })).toBe(MiB);
    let error: unknown;
    try {
      effectiveBodyLimit(MiB, { maxBodyBytes: MiB, maxTokenBytes: 8192 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('FNMESH_MAX_BODY_BYTES=1048576');
    expect(message).toContain('max_payload of 1048576');
    expect(message).toContain('FNMESH_MAX_TOKEN_BYTES=8192');
    expect(message).toContain(`at most ${MiB - headerBudget(8192)}`);
    expect(message).toContain(`at least ${MiB + headerBudget(8192)}`);
  });

  it("lowers the default to fit a server's max payload (a stock nats-server has 1 MiB), never above 1 MiB", () => {
    expect(effectiveBodyLimit(MiB, { maxTokenBytes: 8192 })).toBe(MiB - headerBudget(8192));
    expect(effectiveBodyLimit(8 * MiB, { maxTokenBytes: 8192 })).toBe(DEFAULT_MAX_BODY_BYTES);
    expect(() => effectiveBodyLimit(4096, { maxTokenBytes: 8192 })).toThrow(/leaves no room for params/);
  });

  it('names the limit and its setting in the errors callers get', () => {
    expect(paramsTooDeep(64)).toMatchObject({ status: 400 });
    expect(paramsTooDeep(64).message).toMatch(/^params nest .* 64 levels .*FNMESH_MAX_PARAMS_DEPTH=64/);
    expect(paramsTooDeep(8, 'other').message).toMatch(/^the value of "other" nests/);
    expect(tokenTooLarge(9000, 8192)).toMatchObject({ status: 431, code: 'token_too_large' });
    expect(tokenTooLarge(9000, 8192).message).toMatch(/9000 bytes.*8192 bytes \(FNMESH_MAX_TOKEN_BYTES\)/);
  });
});
