/**
 * `fnmesh local`'s NATS users: every part of the local mesh its own NATS user, as in a cluster. At start the
 * mesh takes a trust chain (a fresh one for this run, or the one in FNMESH_LOCAL_NATS_TRUST_DIR), writes the
 * operator and account JWTs its embedded broker trusts, the gateway's and an observer's `.creds`, and one
 * `.creds` per service (minted when its first replica starts) into a private directory (0700, files 0600)
 * that is removed when the mesh stops.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writePrivateFile } from '../common/private-file';
import {
  DEFAULT_RESPONSE_TTL_MS,
  GATEWAY_IDENTITY,
  accountJwt,
  mintUser,
  operatorJwt,
  replicaIdentity,
  type MeshIdentity,
  type MeshTrust,
} from '../common/nats-identity';

/**
 * How long the users `fnmesh local` mints are valid. The local mesh does not rotate them, and a sidecar that
 * reconnects after its JWT expired would be refused, so the lifetime outlasts any development session; with
 * a fresh trust chain per run a leaked file is worthless once the run stops anyway.
 */
export const LOCAL_USER_TTL_MS = 30 * 24 * 60 * 60_000;

/** Slack on top of the longest call an identity answers, for the reply to travel back. */
const REPLY_SLACK_MS = 5_000;

/** How long a received request may be answered: the default window, or longer for a longer call timeout. */
export function responseTtlMs(longestCallMs: number): number {
  return Math.max(DEFAULT_RESPONSE_TTL_MS, longestCallMs + REPLY_SLACK_MS);
}

export interface LocalNatsUsers {
  /** The private directory (0700) holding every file below. */
  dir: string;
  /** The operator JWT and the account JWT, for the embedded broker (FNMESH_BROKER_OPERATOR/_ACCOUNTS). */
  operatorFile: string;
  accountFile: string;
  /** The gateway's `.creds` (FNMESH_NATS_CREDS). */
  gatewayCreds: string;
  /** A read-only observer's `.creds` (`nats --creds … micro ls`). */
  observerCreds: string;
  /** The `.creds` of service ns/svc, answering calls of up to `timeoutMs`; minted on first use. */
  serviceCreds(namespace: string, service: string, timeoutMs: number): Promise<string>;
  /** Removes the directory. */
  remove(): void;
}

export interface LocalNatsUsersOptions {
  trust: MeshTrust;
  /** The longest call the gateway answers (FNMESH_MAX_TIMEOUT_MS): its reply window for internal calls. */
  gatewayMaxCallMs: number;
  /** Where the private directory is made (default: the system's temp dir). */
  parent?: string;
}

export async function createLocalNatsUsers(options: LocalNatsUsersOptions): Promise<LocalNatsUsers> {
  const { trust } = options;
  const dir = mkdtempSync(path.join(options.parent ?? os.tmpdir(), 'fnmesh-local-nats-'));
  chmodSync(dir, 0o700);
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const mint = async (identity: MeshIdentity, file: string, longestCallMs: number): Promise<string> => {
      const user = await mintUser(trust, identity, {
        ttlMs: LOCAL_USER_TTL_MS,
        responseTtlMs: responseTtlMs(longestCallMs),
      });
      const target = path.join(dir, file);
      writePrivateFile(target, user.creds);
      return target;
    };
    const operatorFile = path.join(dir, 'operator.jwt');
    const accountFile = path.join(dir, 'account.jwt');
    writePrivateFile(operatorFile, `${await operatorJwt(trust)}\n`);
    writePrivateFile(accountFile, `${await accountJwt(trust)}\n`);
    const gatewayCreds = await mint(GATEWAY_IDENTITY, 'gateway.creds', options.gatewayMaxCallMs);
    const observerCreds = await mint({ kind: 'observer' }, 'observer.creds', 0);
    // one user per service and reply window: every replica of a service shares it, as pods share a Secret
    const minted = new Map<string, Promise<string>>();
    const serviceCreds = (namespace: string, service: string, timeoutMs: number): Promise<string> => {
      const ttl = responseTtlMs(timeoutMs);
      const key = `${namespace}/${service}`;
      const cacheKey = `${key} ${ttl}`;
      let file = minted.get(cacheKey);
      if (!file) {
        for (const k of minted.keys()) if (k.startsWith(`${key} `)) minted.delete(k);
        file = mint(replicaIdentity(namespace, service), `service.${namespace}.${service}.creds`, timeoutMs);
        minted.set(cacheKey, file);
        file.catch(() => minted.delete(cacheKey));
      }
      return file;
    };
    return { dir, operatorFile, accountFile, gatewayCreds, observerCreds, serviceCreds, remove };
  } catch (err) {
    remove();
    throw err;
  }
}
