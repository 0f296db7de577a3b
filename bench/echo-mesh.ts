/**
 * The system under test that the benchmarks share: the SDK echo function, the gateway with its embedded
 * broker (rules from a one-function manifest), and one sidecar, each in its own process and awaited ready.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  GATEWAY_IDENTITY,
  accountJwt,
  createMeshTrust,
  mintUser,
  operatorJwt,
  replicaIdentity,
} from '../common/nats-identity';
import { ECHO_MANIFEST, echoSidecarEnv } from './echo-service';
import { freePort, startProc, waitHttpOk, waitPort, type Proc } from './procs';

export const root = path.resolve(__dirname, '..', '..');
export const cli = path.join(root, 'bin', 'fnmesh.js');
export const ECHO_CALL_PATH = '/v1/api/bench/functions/echo/echo';

export interface EchoMesh {
  fn: Proc;
  gateway: Proc;
  sidecar: Proc;
  fnPort: number;
  gatewayPort: number;
  natsUrl: string;
  /** Env of a sidecar for the echo service, with its own ops and call ports. */
  sidecarEnv(opsPort: number, callPort: number): Record<string, string>;
  /** Stops every process this started, clients before the broker, and removes the manifest folder. */
  stop(): Promise<void>;
}

/** The gateway's and the echo sidecar's NATS users and the embedded broker's trust, as `fnmesh local` sets them. */
async function natsAuthEnv(dir: string): Promise<{ gateway: Record<string, string>; sidecar: Record<string, string> }> {
  const trust = createMeshTrust();
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name);
    writeFileSync(f, text, { mode: 0o600 });
    return f;
  };
  const hour = 3_600_000;
  return {
    gateway: {
      FNMESH_BROKER_OPERATOR: file('operator.jwt', await operatorJwt(trust)),
      FNMESH_BROKER_ACCOUNTS: file('account.jwt', await accountJwt(trust)),
      FNMESH_NATS_CREDS: file('gateway.creds', (await mintUser(trust, GATEWAY_IDENTITY, { ttlMs: hour })).creds),
    },
    sidecar: {
      FNMESH_NATS_CREDS: file(
        'echo.creds',
        (await mintUser(trust, replicaIdentity('bench', 'echo'), { ttlMs: hour })).creds,
      ),
    },
  };
}

/** `auth`: every part its own NATS user and the embedded broker in JWT (operator) mode, as `fnmesh local` runs. */
export async function startEchoMesh(options: { nodeFlags?: string[]; auth?: boolean } = {}): Promise<EchoMesh> {
  const flags = options.nodeFlags ?? [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-bench-'));
  writeFileSync(path.join(dir, 'echo.yaml'), ECHO_MANIFEST);
  const procs: Proc[] = [];
  const stop = async (): Promise<void> => {
    for (const p of procs.reverse()) await p.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [fnPort, gatewayPort, gatewayOpsPort, brokerPort, opsPort, callPort] = await Promise.all(
      Array.from({ length: 6 }, () => freePort()),
    );
    const natsUrl = `nats://127.0.0.1:${brokerPort}`;
    const auth = options.auth ? await natsAuthEnv(dir) : { gateway: {}, sidecar: {} };
    const sidecarEnv = (ops: number, call: number): Record<string, string> => ({
      ...echoSidecarEnv({
        natsUrl,
        fnPort: fnPort!,
        opsPort: ops,
        callPort: call,
        concurrency: 4096,
        logLevel: 'error',
      }),
      ...auth.sidecar,
    });
    const fn = startProc('function', [path.join(root, 'dist', 'bench', 'echo-function.js')], { PORT: String(fnPort) });
    procs.push(fn);
    await waitPort(fnPort!, 20_000);
    const gateway = startProc('gateway', [...flags, cli, 'gateway'], {
      FNMESH_LISTEN: `127.0.0.1:${gatewayPort}`,
      FNMESH_OPS_LISTEN: `127.0.0.1:${gatewayOpsPort}`,
      FNMESH_BROKER_PORT: String(brokerPort),
      FNMESH_MANIFESTS: dir,
      FNMESH_LOG_LEVEL: 'error',
      ...auth.gateway,
    });
    procs.push(gateway);
    await waitHttpOk(`http://127.0.0.1:${gatewayPort}/readyz`);
    const sidecar = startProc('sidecar', [...flags, cli, 'sidecar'], sidecarEnv(opsPort!, callPort!));
    procs.push(sidecar);
    await waitHttpOk(`http://127.0.0.1:${opsPort}/readyz`);
    return { fn, gateway, sidecar, fnPort: fnPort!, gatewayPort: gatewayPort!, natsUrl, sidecarEnv, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
