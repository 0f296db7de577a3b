/**
 * Who may read the gateway's listing (`GET /v1/services`) and metrics on the call port: nobody, unless
 * FNMESH_ADMIN_TOKEN is set and the request carries it as its bearer token (compared in constant time). The
 * ops listener serves them to whoever reaches it: keep it off the public network.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** The paths that only the ops listener and admins see. */
export const ADMIN_PATHS = ['/v1/services', '/metrics'] as const;

export function isAdminPath(path: string): boolean {
  return (ADMIN_PATHS as readonly string[]).includes(path);
}

export type AdminAccess = { ok: true } | { ok: false; status: 401 | 404; message: string };

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Whether a request for `path` on the call port, with this Authorization header, may be served. */
export function adminAccess(
  path: string,
  authorization: string | undefined,
  adminToken: string | undefined,
): AdminAccess {
  if (adminToken === undefined) {
    return {
      ok: false,
      status: 404,
      message: `${path} is not served on the call port: it is on the gateway's ops listener (FNMESH_OPS_LISTEN); to serve it here to admins, set FNMESH_ADMIN_TOKEN and send Authorization: Bearer <that token>`,
    };
  }
  const given = /^\s*Bearer +(\S+)\s*$/i.exec(authorization ?? '')?.[1] ?? '';
  // Hashes of equal length, so the comparison takes the same time whatever was sent.
  if (given !== '' && timingSafeEqual(digest(given), digest(adminToken))) return { ok: true };
  return {
    ok: false,
    status: 401,
    message: `${path} on the call port needs the admin token: send Authorization: Bearer <FNMESH_ADMIN_TOKEN>, or use the ops listener (FNMESH_OPS_LISTEN)`,
  };
}
