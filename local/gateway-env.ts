/**
 * The environment of the gateway `fnmesh local` runs in-process: the user's, with the local mesh's defaults
 * where they differ from the gateway's (local/settings.ts): loopback for both listeners, and pages on any
 * local port. Pure.
 */
import type { Env } from '../common';
import { withDevOrigins } from './dev-origins';
import { LOCAL_SETTINGS } from './settings';

export function localGatewayEnv(env: Env): Env {
  // Read through the local row: an unset or empty FNMESH_LISTEN is the local default (loopback), never the
  // gateway's own default (every interface).
  const listen = LOCAL_SETTINGS.listen.read(env);
  const ops = LOCAL_SETTINGS.opsListen.read(env);
  return withDevOrigins({
    ...env,
    [LOCAL_SETTINGS.listen.env]: `${listen.host}:${listen.port}`,
    [LOCAL_SETTINGS.opsListen.env]: `${ops.host}:${ops.port}`,
  });
}
