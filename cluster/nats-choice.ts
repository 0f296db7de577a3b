/**
 * Which NATS `fnmesh cluster` runs its mesh on: the gateway's embedded broker (the default), or a NATS server
 * of yours (FNMESH_NATS_URL) that trusts the chain in FNMESH_CLUSTER_NATS_TRUST_DIR. Either way every pod
 * reaches it as nats://127.0.0.1:4222 inside its own network namespace, relayed by the node agent, so the
 * server must be one plain `nats://host:port` this machine can reach. Pure: the decision, or the error that
 * names the fix.
 */
import { ConfigError } from '../common/errors';
import type { Env } from '../common/config';
import { CLUSTER_SETTINGS } from './settings';

export type ClusterNatsChoice =
  { kind: 'embedded' } | { kind: 'external'; url: string; host: string; port: number; trustDir: string };

const URL_VAR = CLUSTER_SETTINGS.natsUrl.env;
const TRUST_DIR_VAR = CLUSTER_SETTINGS.natsTrustDir.env;

export function clusterNatsChoice(env: Env): ClusterNatsChoice {
  const urls = CLUSTER_SETTINGS.natsUrl.read(env);
  const trustDir = CLUSTER_SETTINGS.natsTrustDir.read(env);
  if (!urls) {
    if (trustDir)
      throw new ConfigError(
        `${TRUST_DIR_VAR} is set but ${URL_VAR} is not: the trust directory is for a NATS server of yours. Set ${URL_VAR}=nats://127.0.0.1:4222 (your server, configured with the directory's nats-server.conf), or unset ${TRUST_DIR_VAR} to use the embedded broker`,
      );
    return { kind: 'embedded' };
  }
  if (urls.length !== 1)
    throw new ConfigError(
      `${URL_VAR} names ${urls.length} servers, but fnmesh cluster relays every pod's NATS to one address: give one nats://host:port (the other servers of your cluster are found by the client through it)`,
    );
  const raw = urls[0]!;
  const u = new URL(raw.includes('://') ? raw : `nats://${raw}`);
  if (u.protocol !== 'nats:')
    throw new ConfigError(
      `${URL_VAR}=${raw}: fnmesh cluster relays the pods' NATS through 127.0.0.1:4222 inside each pod, which a ${u.protocol.slice(0, -1)}:// server's certificate does not name; give a plain nats://host:port`,
    );
  if (u.username || u.password)
    throw new ConfigError(
      `${URL_VAR}=${raw} carries credentials, but every part of fnmesh cluster logs in with its own NATS user from ${TRUST_DIR_VAR}: remove the user and password from the URL`,
    );
  if (!trustDir)
    throw new ConfigError(
      `${URL_VAR} is set but ${TRUST_DIR_VAR} is not: fnmesh cluster mints every part's NATS user from a trust chain your NATS server must trust. Set ${TRUST_DIR_VAR}=<dir> (an empty directory gets fresh keys and a nats-server.conf to include in your server's configuration), or unset ${URL_VAR} to use the embedded broker`,
    );
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { kind: 'external', url: `nats://${u.host}`, host, port: u.port ? Number(u.port) : 4222, trustDir };
}
