/**
 * `fnmesh cluster`'s NATS trust, as locked down as `fnmesh local`: a fresh trust chain per run (or, with a NATS
 * server of yours, the chain of FNMESH_CLUSTER_NATS_TRUST_DIR that it trusts). Its seeds go
 * into the operator's trust Secret (created before the operator starts, so the operator mints every
 * FunctionService's user JWT from this chain into the Secret its pods mount), and the gateway on this
 * machine gets the operator and account JWTs its embedded broker trusts (none with your server) and its own `.creds`, in a private
 * folder (0700, files 0600) of the run.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Env } from '../common/config';
import { writePrivateFile } from '../common/private-file';
import { NATS_CLIENT_ENV } from '../common/nats-client-settings';
import {
  DEFAULT_RESPONSE_TTL_MS,
  GATEWAY_IDENTITY,
  TRUST_SECRET_NAME,
  accountJwt,
  createMeshTrust,
  meshTrustSeeds,
  mintUser,
  operatorJwt,
  trustSecretData,
  type MeshTrust,
} from '../common/nats-identity';
import { GATEWAY_SETTINGS } from '../gateway/settings';

/**
 * The gateway's user on this machine is not rotated (the operator rotates the pods' users): valid longer
 * than any session, and worthless once the run stops, since the next run has a new chain.
 */
export const CLUSTER_GATEWAY_USER_TTL_MS = 30 * 24 * 60 * 60_000;
/** Slack on top of the gateway's longest call, for its replies to internal calls to travel back. */
const REPLY_SLACK_MS = 5_000;

export interface ClusterNats {
  trust: MeshTrust;
  /** The trust Secret to create in the operator's namespace (data base64-encoded, as the API takes it). */
  trustSecret: Record<string, unknown>;
  /** The gateway's NATS user and its embedded broker's trust (FNMESH_NATS_CREDS, FNMESH_BROKER_OPERATOR/_ACCOUNTS), or the external server's URL. */
  gatewayEnv: Env;
  /** The operator's settings that point it at the trust Secret. */
  operatorEnv: Env;
}

/**
 * Mints the gateway's user from `trust` (a fresh chain when not given: the embedded broker's) into `dir`
 * (made 0700); `namespace` is the operator's. With `externalUrl` the gateway connects to that server (which
 * trusts the chain) instead of running its embedded broker.
 */
export async function prepareClusterNats(
  dir: string,
  namespace: string,
  gatewayMaxCallMs: number,
  external?: { url: string; trust: MeshTrust },
): Promise<ClusterNats> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const trust = external?.trust ?? createMeshTrust();
  const operatorFile = path.join(dir, 'operator.jwt');
  const accountFile = path.join(dir, 'account.jwt');
  const gatewayCreds = path.join(dir, 'gateway.creds');
  writePrivateFile(operatorFile, `${await operatorJwt(trust)}\n`);
  writePrivateFile(accountFile, `${await accountJwt(trust)}\n`);
  const gateway = await mintUser(trust, GATEWAY_IDENTITY, {
    ttlMs: CLUSTER_GATEWAY_USER_TTL_MS,
    responseTtlMs: Math.max(DEFAULT_RESPONSE_TTL_MS, gatewayMaxCallMs + REPLY_SLACK_MS),
  });
  writePrivateFile(gatewayCreds, gateway.creds);
  const data = Object.fromEntries(
    Object.entries(trustSecretData(meshTrustSeeds(trust))).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
  );
  return {
    trust,
    trustSecret: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: TRUST_SECRET_NAME, namespace },
      type: 'Opaque',
      data,
    },
    gatewayEnv: external
      ? { [NATS_CLIENT_ENV.creds]: gatewayCreds, [GATEWAY_SETTINGS.natsUrl.env]: external.url }
      : {
          [NATS_CLIENT_ENV.creds]: gatewayCreds,
          [GATEWAY_SETTINGS.brokerOperator.env]: operatorFile,
          [GATEWAY_SETTINGS.brokerAccounts.env]: accountFile,
        },
    operatorEnv: {
      FNMESH_NATS_AUTH: 'jwt',
      FNMESH_NATS_TRUST_SECRET: TRUST_SECRET_NAME,
      FNMESH_NATS_TRUST_NAMESPACE: namespace,
    },
  };
}
