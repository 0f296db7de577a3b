/**
 * A JWT for trying signed-in calls against the local mesh: HS256 with the gateway's secret, which
 * `fnmesh local` generates at random for each run unless FNMESH_JWT_SECRET (or a JWKS) is configured.
 */
import { createHmac, randomBytes } from 'node:crypto';

export function randomSecret(): string {
  return randomBytes(48).toString('base64url');
}

export function signHs256(claims: Record<string, unknown>, secret: string): string {
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');
  const input = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}`;
  return `${input}.${createHmac('sha256', Buffer.from(secret, 'utf8')).update(input).digest('base64url')}`;
}

/** The example user of the README: Ada, an admin for the next `hours` hours. */
export function devToken(secret: string, nowMs = Date.now(), hours = 8): string {
  const now = Math.floor(nowMs / 1000);
  return signHs256(
    {
      sub: 'ada',
      name: 'Ada Lovelace',
      role: 'admin',
      adminUntil: new Date(nowMs + hours * 3600_000).toISOString(),
      iat: now,
      exp: now + hours * 3600,
    },
    secret,
  );
}
