/**
 * The claims of a JWT whose signature has verified, judged against the gateway's policy (pure: the claims,
 * the policy and the clock in, one sentence naming the claim at fault out, or undefined when they pass).
 *
 * Why not jose's claim checks: they take `exp: 1e400` (JSON's Infinity) as a token that never expires,
 * accept an `iat` in the future unless a maximum token age is set (which also makes `iat` mandatory), and
 * report a string `iat` with the same reason as a failed time check. Here every time claim must be a finite
 * NumericDate within the range a date can have, and each failure names its claim.
 *
 * - `exp`: required unless `requireExp` is false; expired when `exp <= now - tolerance`.
 * - `nbf`: not yet valid when `nbf > now + tolerance`.
 * - `iat`: refused when later than `now + tolerance` (a clock that far off, or a forged token).
 * - `iss` / `aud`: checked when configured (exact issuer; the audience, one string or a list, includes ours).
 */
import { kindOf } from './jwt-format';

export interface ClaimsPolicy {
  /** Seconds of clock skew allowed for exp, nbf and iat. */
  clockToleranceSec: number;
  /** Refuse tokens without `exp`. */
  requireExp: boolean;
  issuer?: string;
  audience?: string;
}

/** The largest NumericDate that is still a date: JavaScript's dates end at ±8.64e15 ms. */
export const MAX_NUMERIC_DATE = 8.64e12;

const TIME_CLAIMS = ['exp', 'nbf', 'iat'] as const;
type TimeClaim = (typeof TIME_CLAIMS)[number];

export const isoSeconds = (sec: number): string => new Date(sec * 1000).toISOString();

const shown = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
};

function numericDateProblem(claim: TimeClaim, value: unknown): string | undefined {
  if (typeof value !== 'number') {
    const what = typeof value === 'string' || typeof value === 'boolean' ? ` ${shown(value)}` : '';
    return `the token's ${claim} claim must be a number of seconds since 1970 (a NumericDate, RFC 7519 §2), got ${kindOf(value)}${what}`;
  }
  if (!Number.isFinite(value) || Math.abs(value) > MAX_NUMERIC_DATE) {
    return `the token's ${claim} claim (${String(value)}) is out of range: a NumericDate is seconds since 1970, at most ${MAX_NUMERIC_DATE}`;
  }
  return undefined;
}

function audienceProblem(aud: unknown, audience: string): string | undefined {
  if (aud === undefined)
    return 'the token has no aud claim; this gateway accepts only tokens whose audience includes its own';
  const list = typeof aud === 'string' ? [aud] : aud;
  if (!Array.isArray(list) || list.some((a) => typeof a !== 'string')) {
    return `the token's aud claim must be a string or an array of strings, got ${kindOf(aud)}`;
  }
  if (!list.includes(audience)) {
    return `the token's audience ${JSON.stringify(aud)} does not include the one this gateway accepts`;
  }
  return undefined;
}

export function claimsProblem(
  claims: Record<string, unknown>,
  policy: ClaimsPolicy,
  nowMs: number,
): string | undefined {
  const times: Partial<Record<TimeClaim, number>> = {};
  for (const claim of TIME_CLAIMS) {
    if (!Object.hasOwn(claims, claim)) continue;
    const problem = numericDateProblem(claim, claims[claim]);
    if (problem) return problem;
    times[claim] = claims[claim] as number;
  }
  const { exp, nbf, iat } = times;
  const now = nowMs / 1000;
  const tol = policy.clockToleranceSec;
  if (exp === undefined && policy.requireExp) {
    return 'the token has no exp claim, and this gateway accepts only tokens that expire (FNMESH_JWT_REQUIRE_EXP): issue it with an exp';
  }
  if (exp !== undefined && exp <= now - tol) return `the token expired at ${isoSeconds(exp)}`;
  if (nbf !== undefined && nbf > now + tol) return `the token is not yet valid: it is valid from ${isoSeconds(nbf)}`;
  if (iat !== undefined && iat > now + tol) {
    return `the token was issued in the future (iat ${isoSeconds(iat)}; this gateway's clock reads ${isoSeconds(now)}, with ${tol} s of tolerance): check the issuer's clock`;
  }
  if (policy.issuer !== undefined) {
    const iss = claims.iss;
    if (iss === undefined)
      return 'the token has no iss claim; this gateway accepts only tokens of its configured issuer';
    if (typeof iss !== 'string') return `the token's iss claim must be a string, got ${kindOf(iss)}`;
    if (iss !== policy.issuer) return `the token's issuer ${JSON.stringify(iss)} is not the one this gateway accepts`;
  }
  if (policy.audience !== undefined) return audienceProblem(claims.aud, policy.audience);
  return undefined;
}
