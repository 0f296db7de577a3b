/**
 * The mesh's NATS identities for a test file: one trust chain, the broker's operator-mode configuration, and a
 * `.creds` file per identity (the gateway's, each service's), minted as `fnmesh local` and the operator mint
 * them, so that suites run with auth and permissions on, as every real mesh does.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credsAuthenticator } from '@nats-io/nats-core';
import {
  GATEWAY_IDENTITY,
  meshAccountJwts,
  createMeshTrust,
  inboxPrefix,
  mintUser,
  natsUserName,
  operatorJwt,
  replicaIdentity,
  type MeshIdentity,
} from '../../common/nats-identity';
import type { OperatorMode } from './nats-server';

const HOUR = 60 * 60_000;

export interface MeshAuth {
  /** For `target.start({ operator })`. */
  operator: OperatorMode;
  /** The gateway's .creds file (FNMESH_NATS_CREDS). */
  gatewayCreds: string;
  /** The .creds file of the replicas of ns/svc (minted once per service). */
  credsFor(namespace: string, service: string): Promise<string>;
  /** nats.js connect options of an identity, for a test that plays that part on the wire. */
  connectOptions(
    identity: MeshIdentity,
  ): Promise<{ authenticator: ReturnType<typeof credsAuthenticator>; inboxPrefix: string; name: string }>;
  cleanup(): void;
}

export async function createMeshAuth(): Promise<MeshAuth> {
  const trust = createMeshTrust();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-test-creds-'));
  const files = new Map<string, Promise<string>>();
  const credsText = new Map<string, Promise<string>>();
  const mintedText = (identity: MeshIdentity): Promise<string> => {
    const key = natsUserName(identity);
    let text = credsText.get(key);
    if (!text) credsText.set(key, (text = mintUser(trust, identity, { ttlMs: HOUR }).then((u) => u.creds)));
    return text;
  };
  const fileOf = (identity: MeshIdentity): Promise<string> => {
    const key = natsUserName(identity);
    let file = files.get(key);
    if (!file) {
      file = mintedText(identity).then((creds) => {
        const f = path.join(dir, `${key}.creds`);
        writeFileSync(f, creds, { mode: 0o600 });
        return f;
      });
      files.set(key, file);
    }
    return file;
  };
  return {
    operator: { operatorJwt: await operatorJwt(trust), accountJwts: Object.values(await meshAccountJwts(trust)) },
    gatewayCreds: await fileOf(GATEWAY_IDENTITY),
    credsFor: (namespace, service) => fileOf(replicaIdentity(namespace, service)),
    connectOptions: async (identity) => ({
      authenticator: credsAuthenticator(new TextEncoder().encode(await mintedText(identity))),
      inboxPrefix: inboxPrefix(identity),
      name: `test-as-${natsUserName(identity)}`,
    }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
