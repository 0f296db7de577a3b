/**
 * A small real mesh for the front-door fuzz suites: a real nats-server, the built gateway as its own process
 * (`bin/fnmesh.js gateway`, so its /metrics measures the gateway alone) with a separate ops listener, and one
 * replica (an SDK function + a real sidecar, in the test's process) of `fuzz/probe`, whose functions echo
 * their params under the rules allow, deny and authenticated.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { startCli, type CliProcess } from './cli-process';
import { requireBuilt, startReplica, type Replica } from './mesh';
import { startNatsServer, type RunningNatsServer } from './nats-server';
import { freePort } from './ports';
import { waitFor } from './wait';

export const FUZZ_NAMESPACE = 'fuzz';
export const FUZZ_SERVICE = 'probe';
/** Function name → its rule. */
export const FUZZ_FUNCTIONS = { open: 'allow', closed: 'deny', members: 'authenticated' } as const;
export const FUZZ_SECRET = 'front-door-fuzz-secret-long-enough-for-hs256-0123456789';

const MANIFEST = `apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: ${FUZZ_SERVICE}, namespace: ${FUZZ_NAMESPACE} }
spec:
  timeoutMs: 5000
  functions:
${Object.entries(FUZZ_FUNCTIONS)
  .map(([name, rule]) => `    - { name: ${name}, rule: { rule: ${rule} } }`)
  .join('\n')}
`;

export interface FrontDoor {
  /** http://127.0.0.1:port of the call listener. */
  url: string;
  /** http://127.0.0.1:port of the ops listener. */
  opsUrl: string;
  gateway: CliProcess;
  /** A valid token for `members`. */
  token(claims?: Record<string, unknown>): Promise<string>;
  /** The gateway's memory from its /metrics: V8 heap used + external memory (bytes). */
  memoryBytes(): Promise<number>;
  stop(): Promise<void>;
}

/** One metric's value from Prometheus text: summed over its label sets, or of the one `labels` (`{a="b"}`). */
export function metricValue(text: string, name: string, labels?: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name && (labels === undefined || m[2] === labels)) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

export async function startFrontDoor(env: Record<string, string> = {}): Promise<FrontDoor> {
  requireBuilt();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-front-door-'));
  writeFileSync(path.join(dir, 'probe.yaml'), MANIFEST);
  let nats: RunningNatsServer | undefined;
  let gateway: CliProcess | undefined;
  let replica: Replica | undefined;
  let url = '';
  let opsUrl = '';
  const stop = async (): Promise<void> => {
    await replica?.stop().catch(() => undefined);
    if (gateway && gateway.child.exitCode === null && gateway.child.signalCode === null) {
      gateway.child.kill('SIGTERM');
      await gateway.exit;
    }
    await nats?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    nats = await startNatsServer();
    const [port, opsPort] = [await freePort(), await freePort()];
    gateway = startCli(['gateway'], {
      ...process.env,
      FNMESH_LISTEN: `127.0.0.1:${port}`,
      FNMESH_OPS_LISTEN: `127.0.0.1:${opsPort}`,
      FNMESH_NATS_URL: nats.url,
      FNMESH_MANIFESTS: dir,
      FNMESH_JWT_SECRET: FUZZ_SECRET,
      FNMESH_LOG_LEVEL: 'error',
      ...env,
    });
    url = `http://127.0.0.1:${port}`;
    opsUrl = `http://127.0.0.1:${opsPort}`;
    const g = gateway;
    await waitFor(
      async () => {
        if (g.child.exitCode !== null) throw new Error(`the gateway exited: ${g.lines.join('\n')}`);
        const res = await fetch(`${opsUrl}/readyz`);
        await res.arrayBuffer();
        return res.status === 200;
      },
      { timeoutMs: 20_000, what: 'the gateway to be ready' },
    );
    replica = await startReplica({
      natsUrl: nats.url,
      namespace: FUZZ_NAMESPACE,
      service: FUZZ_SERVICE,
      functions: Object.fromEntries(Object.keys(FUZZ_FUNCTIONS).map((name) => [name, (params: unknown) => params])),
    });
    // routed once a call reaches the replica
    await waitFor(
      async () => {
        const res = await fetch(`${url}/v1/api/${FUZZ_NAMESPACE}/functions/${FUZZ_SERVICE}/open`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"params":1}',
        });
        await res.arrayBuffer();
        return res.status === 200;
      },
      { timeoutMs: 20_000, what: 'calls to reach the probe replica' },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const enc = new TextEncoder();
  return {
    url,
    opsUrl,
    gateway: gateway!,
    token: (claims = { sub: 'fuzzer' }) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(enc.encode(FUZZ_SECRET)),
    async memoryBytes() {
      const res = await fetch(`${opsUrl}/metrics`);
      const text = await res.text();
      const heap = metricValue(text, 'nodejs_heap_size_used_bytes');
      const external = metricValue(text, 'nodejs_external_memory_bytes');
      if (heap === undefined || external === undefined)
        throw new Error("the gateway's /metrics has no nodejs_heap_size_used_bytes or nodejs_external_memory_bytes");
      return heap + external;
    },
    stop,
  };
}
