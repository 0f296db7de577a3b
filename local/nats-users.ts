/**
 * `fnmesh local`'s NATS users: every part of the local mesh its own NATS user, as in a cluster. At start the
 * mesh takes a trust chain (a fresh one for this run, or the one in FNMESH_LOCAL_NATS_TRUST_DIR), writes the
 * operator and account JWTs its embedded broker trusts, the gateway's and an observer's `.creds`, and one
 * `.creds` per service (minted when its first replica starts) into a private directory (0700, files 0600)
 * that is removed when the mesh stops.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../common/errors';
import {
  DEFAULT_RESPONSE_TTL_MS,
  GATEWAY_IDENTITY,
  TRUST_SECRET_KEYS,
  accountJwt,
  createMeshTrust,
  meshTrustFromSeeds,
  meshTrustSeeds,
  mintUser,
  operatorJwt,
  operatorModeConfig,
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

/** The file names in a trust directory (the trust Secret's keys) and the nats-server config written beside. */
export const TRUST_DIR_FILES = {
  operatorSeed: TRUST_SECRET_KEYS.operatorSeed,
  accountSeed: TRUST_SECRET_KEYS.accountSeed,
  signingKeySeed: TRUST_SECRET_KEYS.signingKeySeed,
  serverConfig: 'nats-server.conf',
} as const;

export interface TrustDirResult {
  trust: MeshTrust;
  /** True when the directory had no trust chain and a fresh one was written. */
  created: boolean;
  /** The nats-server config fragment that trusts this chain (written when missing). */
  serverConfigFile: string;
}

function writePrivate(file: string, text: string): void {
  // written beside and renamed: a reader (a sidecar reconnecting) never sees half a file
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/**
 * The trust chain of FNMESH_LOCAL_NATS_TRUST_DIR (`setting` names it in errors): read from its three seed
 * files, or created there with fresh keys when the directory is missing or empty. The nats-server config
 * that trusts it is written as `nats-server.conf` when missing.
 */
export async function loadOrCreateTrustDir(dir: string, setting: string): Promise<TrustDirResult> {
  const seedFiles = [TRUST_DIR_FILES.operatorSeed, TRUST_DIR_FILES.accountSeed, TRUST_DIR_FILES.signingKeySeed];
  if (existsSync(dir) && !statSync(dir).isDirectory())
    throw new ConfigError(
      `${setting}=${dir} is not a directory: point it at a directory (an empty one gets a new trust chain)`,
    );
  const present = existsSync(dir) ? seedFiles.filter((f) => existsSync(path.join(dir, f))) : [];
  let trust: MeshTrust;
  let created = false;
  if (present.length === 0) {
    if (existsSync(dir) && readdirSync(dir).length > 0)
      throw new ConfigError(
        `${setting}=${dir} holds files but no trust chain (${seedFiles.join(', ')}): point it at an empty directory to create one, or at the directory that holds those seed files`,
      );
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    trust = createMeshTrust();
    const seeds = meshTrustSeeds(trust);
    writePrivate(path.join(dir, TRUST_DIR_FILES.operatorSeed), `${seeds.operator}\n`);
    writePrivate(path.join(dir, TRUST_DIR_FILES.accountSeed), `${seeds.account}\n`);
    writePrivate(path.join(dir, TRUST_DIR_FILES.signingKeySeed), `${seeds.signingKey}\n`);
    created = true;
  } else {
    const missing = seedFiles.filter((f) => !present.includes(f));
    if (missing.length > 0)
      throw new ConfigError(
        `${setting}=${dir} lacks ${missing.join(', ')}: a trust chain needs ${seedFiles.join(', ')}; restore the missing seed, or point ${setting} at an empty directory for a new trust chain (and reconfigure your NATS server with its nats-server.conf)`,
      );
    const read = (name: string): string => {
      const file = path.join(dir, name);
      try {
        return readFileSync(file, 'utf8').trim();
      } catch (err) {
        throw new ConfigError(
          `${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}): make it readable by this user`,
        );
      }
    };
    trust = meshTrustFromSeeds(
      {
        operator: read(TRUST_DIR_FILES.operatorSeed),
        account: read(TRUST_DIR_FILES.accountSeed),
        signingKey: read(TRUST_DIR_FILES.signingKeySeed),
      },
      `${setting} (${dir})`,
    );
  }
  const serverConfigFile = path.join(dir, TRUST_DIR_FILES.serverConfig);
  if (!existsSync(serverConfigFile)) writePrivate(serverConfigFile, await serverConfigText(trust));
  return { trust, created, serverConfigFile };
}

/** The nats-server configuration fragment (operator mode, the mesh account preloaded) for `trust`. */
export async function serverConfigText(trust: MeshTrust): Promise<string> {
  return (
    '# fnmesh: the trust chain of fnmesh local (include this file in your nats-server.conf)\n' +
    operatorModeConfig({
      operatorJwt: await operatorJwt(trust),
      accounts: { [trust.account.getPublicKey()]: await accountJwt(trust) },
    })
  );
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
      writePrivate(target, user.creds);
      return target;
    };
    const operatorFile = path.join(dir, 'operator.jwt');
    const accountFile = path.join(dir, 'account.jwt');
    writePrivate(operatorFile, `${await operatorJwt(trust)}\n`);
    writePrivate(accountFile, `${await accountJwt(trust)}\n`);
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
