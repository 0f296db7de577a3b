/**
 * How `fnmesh local` secures its NATS: which trust chain it mints from, what it refuses, and the gateway
 * settings that follow. The decision (`localNatsPlan`) is pure; `prepareLocalNats` carries it out.
 */
import type { Env } from '../common';
import { ConfigError } from '../common/errors';
import { NATS_CLIENT_ENV } from '../common/nats-client-settings';
import { createMeshTrust } from '../common/nats-identity';
import { GATEWAY_SETTINGS } from '../gateway/settings';
import { loadOrCreateTrustDir } from '../common/nats-identity/trust-dir';
import { createLocalNatsUsers, type LocalNatsUsers } from './nats-users';
import { LOCAL_SETTINGS } from './settings';

const TRUST_DIR = LOCAL_SETTINGS.natsTrustDir.env;

/** Settings `fnmesh local` sets itself: a user's value would be overridden, so it is refused instead. */
const OWNED = [
  NATS_CLIENT_ENV.creds,
  GATEWAY_SETTINGS.brokerOperator.env,
  GATEWAY_SETTINGS.brokerAccounts.env,
  GATEWAY_SETTINGS.natsToken.env,
] as const;

export interface LocalNatsPlan {
  /** The trust directory to use; undefined: a fresh trust chain for this run. */
  trustDir?: string;
  /** An external NATS (FNMESH_NATS_URL): the users are minted, the embedded broker does not run. */
  external: boolean;
}

/** What the environment asks for, or the error that names the fix. */
export function localNatsPlan(env: Env): LocalNatsPlan {
  for (const name of OWNED) {
    if (env[name] !== undefined && env[name]!.trim() !== '')
      throw new ConfigError(
        `${name} is set, but fnmesh local gives every part its own NATS user itself (a fresh trust chain per run, or the one in ${TRUST_DIR}): unset ${name}; to use a NATS server of yours, set FNMESH_NATS_URL and ${TRUST_DIR}`,
      );
  }
  const trustDir = LOCAL_SETTINGS.natsTrustDir.read(env);
  const external = LOCAL_SETTINGS.natsUrl.read(env) !== undefined;
  if (external && !trustDir)
    throw new ConfigError(
      `FNMESH_NATS_URL is set but ${TRUST_DIR} is not: fnmesh local mints every part's NATS user from a trust chain your NATS server must trust. Set ${TRUST_DIR}=<dir> (an empty directory gets fresh keys and a nats-server.conf to include in your server's configuration), or unset FNMESH_NATS_URL to use the embedded broker`,
    );
  return { external, ...(trustDir ? { trustDir } : {}) };
}

export interface LocalNats {
  users: LocalNatsUsers;
  /** The gateway's settings for its NATS user and (embedded) its broker's JWT trust. */
  gatewayEnv: Env;
}

export async function prepareLocalNats(env: Env, say: (message: string) => void): Promise<LocalNats> {
  const plan = localNatsPlan(env);
  let trust = createMeshTrust();
  if (plan.trustDir) {
    const loaded = await loadOrCreateTrustDir(plan.trustDir, TRUST_DIR);
    trust = loaded.trust;
    if (loaded.created)
      say(
        `created a NATS trust chain in ${plan.trustDir}${plan.external ? `: include ${loaded.serverConfigFile} in your NATS server's configuration and restart it; the mesh connects once it does` : ''}`,
      );
    else if (loaded.upgraded)
      say(
        `added a system account to the NATS trust chain in ${plan.trustDir} and wrote ${loaded.serverConfigFile} again${plan.external ? ': the mesh works without it; restart your NATS server with it to have JetStream under this trust chain' : ''}`,
      );
    else if (plan.external)
      say(`NATS users minted from the trust chain in ${plan.trustDir} (server config: ${loaded.serverConfigFile})`);
  }
  const users = await createLocalNatsUsers({ trust, gatewayMaxCallMs: LOCAL_SETTINGS.maxTimeoutMs.read(env) });
  const gatewayEnv: Env = { [NATS_CLIENT_ENV.creds]: users.gatewayCreds };
  if (!plan.external) {
    gatewayEnv[GATEWAY_SETTINGS.brokerOperator.env] = users.operatorFile;
    gatewayEnv[GATEWAY_SETTINGS.brokerAccounts.env] = users.accountFile;
  }
  return { users, gatewayEnv };
}
