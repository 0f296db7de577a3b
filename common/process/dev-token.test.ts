import { createHmac } from 'node:crypto';
import { devToken, randomSecret, signHs256 } from './dev-token';

describe('local dev token', () => {
  it('is an HS256 JWT signed with the secret', () => {
    const secret = randomSecret();
    expect(Buffer.byteLength(secret)).toBeGreaterThanOrEqual(32);
    const token = signHs256({ sub: 'a' }, secret);
    const [h, p, sig] = token.split('.');
    expect(JSON.parse(Buffer.from(h!, 'base64url').toString())).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(JSON.parse(Buffer.from(p!, 'base64url').toString())).toEqual({ sub: 'a' });
    expect(sig).toBe(createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url'));
  });

  it('carries the example claims with an expiry', () => {
    const now = Date.UTC(2026, 0, 1);
    const claims = JSON.parse(
      Buffer.from(devToken('s'.repeat(40), now).split('.')[1]!, 'base64url').toString(),
    ) as Record<string, unknown>;
    expect(claims).toMatchObject({
      sub: 'ada',
      role: 'admin',
      adminUntil: '2026-01-01T08:00:00.000Z',
      iat: now / 1000,
      exp: now / 1000 + 8 * 3600,
    });
  });
});
