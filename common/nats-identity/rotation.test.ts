import { DEFAULT_ROTATION_POLICY, rotationDecision } from './rotation';

const H = 3_600_000;
const iat = new Date('2026-01-01T00:00:00Z');
const at = (ms: number): Date => new Date(iat.getTime() + ms);
const day = { issuedAt: iat, expiresAt: at(24 * H) };

test('a fresh JWT is kept, to be looked at again when two thirds of its lifetime have passed', () => {
  expect(rotationDecision(day, at(H))).toEqual({ rotate: false, checkAt: at(16 * H) });
});

test('renewed once two thirds of the lifetime have passed', () => {
  expect(rotationDecision(day, at(16 * H - 1))).toEqual({ rotate: false, checkAt: at(16 * H) });
  expect(rotationDecision(day, at(16 * H))).toMatchObject({ rotate: true, reason: expect.stringMatching(/due/) });
});

test('a short lifetime is renewed when the minimum margin is reached, before two thirds', () => {
  const short = { issuedAt: iat, expiresAt: at(15 * 60_000) };
  // two thirds would be at 10 min; the 10-minute margin says at 5 min
  expect(rotationDecision(short, at(0))).toEqual({ rotate: false, checkAt: at(5 * 60_000) });
  expect(rotationDecision(short, at(5 * 60_000)).rotate).toBe(true);
});

test('expired, never expiring, issued in the future or inverted: renewed at once', () => {
  expect(rotationDecision(day, at(25 * H))).toMatchObject({ rotate: true, reason: expect.stringMatching(/expired/) });
  expect(rotationDecision({ issuedAt: iat }, at(0))).toMatchObject({ rotate: true, reason: /never expires/ });
  expect(rotationDecision(day, at(-2 * H))).toMatchObject({ rotate: true, reason: /issued in the future/ });
  // within the skew tolerance it is not taken as a jump
  expect(rotationDecision(day, at(-30_000)).rotate).toBe(false);
  expect(rotationDecision({ issuedAt: at(2 * H), expiresAt: at(H) }, at(0))).toMatchObject({ rotate: true });
});

test('a policy outside (0, 1) is refused', () => {
  expect(() => rotationDecision(day, at(0), { ...DEFAULT_ROTATION_POLICY, renewAt: 1 })).toThrow(/between 0 and 1/);
});
