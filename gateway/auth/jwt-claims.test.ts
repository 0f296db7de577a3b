import { claimsProblem, MAX_NUMERIC_DATE, type ClaimsPolicy } from './jwt-claims';

const NOW_MS = Date.UTC(2026, 0, 1); // a fixed clock: the boundaries below are exact
const NOW = NOW_MS / 1000;
const base: ClaimsPolicy = { clockToleranceSec: 5, requireExp: true };

describe('claimsProblem', () => {
  const cases: [string, Record<string, unknown>, Partial<ClaimsPolicy>, RegExp | undefined][] = [
    ['exp in the future', { exp: NOW + 1 }, {}, undefined],
    ['exp just inside the tolerance', { exp: NOW - 4 }, {}, undefined],
    ['exp exactly at now - tolerance', { exp: NOW - 5 }, {}, /^the token expired at 2025-12-31T23:59:55\.000Z$/],
    ['exp with no tolerance, exactly now', { exp: NOW }, { clockToleranceSec: 0 }, /expired/],
    ['no exp, required', {}, {}, /^the token has no exp claim/],
    ['no exp, not required', {}, { requireExp: false }, undefined],
    ['a bad exp even when exp is not required', { exp: 'soon' }, { requireExp: false }, /exp claim must be a number/],
    ['nbf exactly at now + tolerance', { exp: NOW + 60, nbf: NOW + 5 }, {}, undefined],
    [
      'nbf a second later',
      { exp: NOW + 60, nbf: NOW + 6 },
      {},
      /^the token is not yet valid: it is valid from 2026-01-01T00:00:06\.000Z$/,
    ],
    ['iat exactly at now + tolerance', { exp: NOW + 60, iat: NOW + 5 }, {}, undefined],
    [
      'iat a second later',
      { exp: NOW + 60, iat: NOW + 6 },
      {},
      /^the token was issued in the future \(iat 2026-01-01T00:00:06\.000Z; this gateway's clock reads 2026-01-01T00:00:00\.000Z, with 5 s of tolerance\): check the issuer's clock$/,
    ],
    ['iat long ago', { exp: NOW + 60, iat: 0 }, {}, undefined],
    ['the largest NumericDate', { exp: MAX_NUMERIC_DATE }, {}, undefined],
    ['just beyond it', { exp: MAX_NUMERIC_DATE + 1 }, {}, /exp claim \(8640000000001\) is out of range/],
    ['exp NaN is out of range', { exp: NaN }, {}, /exp claim \(NaN\) is out of range/],
    [
      'iat an undefined-valued own property',
      { exp: NOW + 60, iat: undefined },
      {},
      /iat claim must be a number .*got an undefined$/,
    ],
    ['issuer not configured: any iss', { exp: NOW + 60, iss: 7 }, {}, undefined],
    ['audience not configured: any aud', { exp: NOW + 60, aud: 7 }, {}, undefined],
    ['the time claims are judged before the issuer', { exp: NOW - 60 }, { issuer: 'i' }, /expired/],
  ];
  it.each(cases)('%s', (_n, claims, policy, expected) => {
    const problem = claimsProblem(claims, { ...base, ...policy }, NOW_MS);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });
});
