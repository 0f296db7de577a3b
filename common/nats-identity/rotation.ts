/**
 * When a minted user JWT must be minted again: a pure decision from its issued-at and expiry and the time,
 * for the operator's reconciler (it rotates the Secret; the sidecar picks the new file up on reconnect).
 *
 * A JWT is renewed once `renewAt` of its lifetime has passed (two thirds by default: a third of the lifetime
 * is left for the new Secret to reach the pod, the kubelet syncs mounted Secrets within about a minute), and
 * at the latest when less than `minRemainingMs` is left. A JWT without expiry, or issued in the future (a
 * clock that jumped), is renewed at once.
 */

/**
 * How long a minted user JWT is valid by default. The operator revokes by short expiry (a deleted
 * FunctionService's Secret goes with it and its JWT lapses at its exp), so this is the revocation window.
 */
export const DEFAULT_USER_TTL_MS = 60 * 60_000;

export interface RotationPolicy {
  /** The fraction of the lifetime after which the JWT is renewed, in (0, 1). */
  renewAt: number;
  /** Renew at the latest when this little time is left. */
  minRemainingMs: number;
  /** How far in the future an issued-at may be before the clock is taken to have jumped. */
  clockSkewMs: number;
}

export const DEFAULT_ROTATION_POLICY: RotationPolicy = {
  renewAt: 2 / 3,
  minRemainingMs: 10 * 60_000,
  clockSkewMs: 60_000,
};

export interface UserJwtDates {
  issuedAt: Date;
  /** Undefined: the JWT never expires. */
  expiresAt?: Date;
}

export type RotationDecision =
  { rotate: true; reason: string } | { rotate: false; /** When to decide again. */ checkAt: Date };

export function rotationDecision(
  jwt: UserJwtDates,
  now: Date,
  policy: RotationPolicy = DEFAULT_ROTATION_POLICY,
): RotationDecision {
  if (!(policy.renewAt > 0 && policy.renewAt < 1))
    throw new Error(`renewAt must be between 0 and 1 (exclusive), got ${policy.renewAt}`);
  if (!jwt.expiresAt) return { rotate: true, reason: 'the JWT never expires (fnmesh mints every user with an expiry)' };
  const iat = jwt.issuedAt.getTime();
  const exp = jwt.expiresAt.getTime();
  const t = now.getTime();
  if (exp <= t) return { rotate: true, reason: `the JWT expired at ${jwt.expiresAt.toISOString()}` };
  if (iat > t + policy.clockSkewMs)
    return {
      rotate: true,
      reason: `the JWT was issued in the future (${jwt.issuedAt.toISOString()}): the clock jumped`,
    };
  if (exp <= iat) return { rotate: true, reason: 'the JWT expires before it was issued' };
  const renewAt = Math.min(iat + (exp - iat) * policy.renewAt, exp - policy.minRemainingMs);
  if (t >= renewAt) {
    return { rotate: true, reason: `the JWT expires at ${jwt.expiresAt.toISOString()}, its renewal was due` };
  }
  return { rotate: false, checkAt: new Date(renewAt) };
}

/**
 * The default policy for JWTs of lifetime `ttlMs`: renewed at two thirds, and at the latest with ten minutes
 * (or a third of a shorter lifetime) left, so a short lifetime is not renewed on every check.
 */
export function rotationPolicyFor(ttlMs: number): RotationPolicy {
  return { ...DEFAULT_ROTATION_POLICY, minRemainingMs: Math.min(DEFAULT_ROTATION_POLICY.minRemainingMs, ttlMs / 3) };
}
