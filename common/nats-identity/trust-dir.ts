/**
 * A trust directory: the mesh's NATS trust chain kept as four seed files (the trust Secret's keys) and the
 * nats-server configuration fragment that trusts it, for a NATS server of your own. `fnmesh local` and
 * `fnmesh cluster` mint every part's user from it when they use your server (FNMESH_NATS_URL). A directory
 * of an older fnmesh (no system account seed) gets one, and its nats-server.conf is written again with it.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors';
import { writePrivateFile } from '../private-file';
import { TRUST_SECRET_KEYS } from './secret-layout';
import {
  createMeshTrust,
  createSystemAccountSeed,
  meshTrustFromSeeds,
  meshTrustSeeds,
  type MeshTrust,
} from './trust-chain';
import { meshOperatorModeConfig } from './server-config';

/** The file names in a trust directory (the trust Secret's keys) and the nats-server config written beside. */
export const TRUST_DIR_FILES = {
  operatorSeed: TRUST_SECRET_KEYS.operatorSeed,
  accountSeed: TRUST_SECRET_KEYS.accountSeed,
  signingKeySeed: TRUST_SECRET_KEYS.signingKeySeed,
  systemAccountSeed: TRUST_SECRET_KEYS.systemAccountSeed,
  serverConfig: 'nats-server.conf',
} as const;

export interface TrustDirResult {
  trust: MeshTrust;
  /** True when the directory had no trust chain and a fresh one was written. */
  created: boolean;
  /** True when the directory lacked the system account seed: one was added and nats-server.conf rewritten. */
  upgraded: boolean;
  /** The nats-server config fragment that trusts this chain (written when missing). */
  serverConfigFile: string;
}

/**
 * The trust chain of a trust directory (`setting`, the variable that names it, in errors): read from its three seed
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
  let upgraded = false;
  if (present.length === 0) {
    if (existsSync(dir) && readdirSync(dir).length > 0)
      throw new ConfigError(
        `${setting}=${dir} holds files but no trust chain (${seedFiles.join(', ')}): point it at an empty directory to create one, or at the directory that holds those seed files`,
      );
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    trust = createMeshTrust();
    const seeds = meshTrustSeeds(trust);
    writePrivateFile(path.join(dir, TRUST_DIR_FILES.operatorSeed), `${seeds.operator}\n`);
    writePrivateFile(path.join(dir, TRUST_DIR_FILES.accountSeed), `${seeds.account}\n`);
    writePrivateFile(path.join(dir, TRUST_DIR_FILES.signingKeySeed), `${seeds.signingKey}\n`);
    writePrivateFile(path.join(dir, TRUST_DIR_FILES.systemAccountSeed), `${seeds.systemAccount}\n`);
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
    // a directory of an older fnmesh has no system account: it gets one (level-based: once there, it stays),
    // written only once the other seeds are known good
    const systemFile = path.join(dir, TRUST_DIR_FILES.systemAccountSeed);
    upgraded = !existsSync(systemFile);
    const systemAccount = upgraded ? createSystemAccountSeed() : read(TRUST_DIR_FILES.systemAccountSeed);
    trust = meshTrustFromSeeds(
      {
        operator: read(TRUST_DIR_FILES.operatorSeed),
        account: read(TRUST_DIR_FILES.accountSeed),
        signingKey: read(TRUST_DIR_FILES.signingKeySeed),
        systemAccount,
      },
      `${setting} (${dir})`,
    );
    if (upgraded) writePrivateFile(systemFile, `${systemAccount}\n`);
  }
  const serverConfigFile = path.join(dir, TRUST_DIR_FILES.serverConfig);
  if (upgraded || !existsSync(serverConfigFile)) writePrivateFile(serverConfigFile, await serverConfigText(trust));
  return { trust, created, upgraded, serverConfigFile };
}

/** The nats-server configuration fragment (operator mode, the mesh and system accounts preloaded) for `trust`. */
export async function serverConfigText(trust: MeshTrust): Promise<string> {
  return (
    "# fnmesh: the mesh's NATS trust chain (include this file in your nats-server.conf; read at start only)\n" +
    (await meshOperatorModeConfig(trust))
  );
}
