/**
 * The browser origins `fnmesh local` allows by default: any port of localhost and 127.0.0.1, so a frontend
 * dev server (http://localhost:3000, :5173, …) can call the local mesh, signed in or not. `--cors-origins`
 * (FNMESH_CORS_ORIGINS) replaces the list; `--cors-origins ''` allows no origin.
 */
import type { Env } from '../common';

export const DEV_CORS_ORIGINS = 'http://localhost:*,http://127.0.0.1:*';

/** The env with the dev origins when FNMESH_CORS_ORIGINS is not set at all (an empty value turns CORS off). */
export function withDevOrigins(env: Env): Env {
  return env.FNMESH_CORS_ORIGINS === undefined ? { ...env, FNMESH_CORS_ORIGINS: DEV_CORS_ORIGINS } : env;
}

/** The summary's line on which pages may call the mesh. */
export function corsSummary(origins: readonly string[] | '*', credentials: boolean): string {
  if (origins !== '*' && origins.length === 0)
    return "  browsers  no origin allowed (CORS off; --cors-origins 'http://localhost:*' allows local pages)";
  const list = origins === '*' ? '* (any origin)' : origins.join(', ');
  return `  browsers  ${list}${credentials ? '   (with credentials)' : ''}; --cors-origins replaces the list, '' turns it off`;
}
