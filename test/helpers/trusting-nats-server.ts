/**
 * A NATS server of the user's own for `fnmesh local` and `fnmesh cluster` (FNMESH_NATS_URL): a trust directory
 * as a user keeps it (the three seed files) in `dir`, and a real nats-server in operator mode trusting its chain.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  createMeshTrust,
  meshAccountJwts,
  meshTrustSeeds,
  operatorJwt,
  trustSecretData,
} from '../../common/nats-identity';
import { startNatsServer, type RunningNatsServer } from './nats-server';

export interface TrustingNatsServer {
  server: RunningNatsServer;
  trustDir: string;
}

export async function startTrustingNatsServer(dir: string): Promise<TrustingNatsServer> {
  const trust = createMeshTrust();
  const trustDir = path.join(dir, '.nats-trust');
  mkdirSync(trustDir, { mode: 0o700 });
  for (const [file, seed] of Object.entries(trustSecretData(meshTrustSeeds(trust))))
    writeFileSync(path.join(trustDir, file), `${seed}\n`, { mode: 0o600 });
  const server = await startNatsServer({
    operator: { operatorJwt: await operatorJwt(trust), accountJwts: Object.values(await meshAccountJwts(trust)) },
  });
  return { server, trustDir };
}
