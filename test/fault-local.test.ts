/**
 * Issue 10 on `fnmesh local` (the built CLI, its supervisor, real sidecar and function processes, the gateway's
 * HTTP port), on the embedded broker and on a real nats-server, with NATS auth on as every local mesh runs:
 * no call is lost to a dying replica. Two services of two replicas each run the fault fixture
 * (test/fixtures/faulty-function.ts), which logs every call it starts and answers, by request id, in files that
 * outlive it: `flaky` (at-most-once, the default) and `flaky-idem` (`idempotent: true`).
 *
 * - SIGKILL of one replica's function under steady load: no failed call among those it had not started; those
 *   it was running answered 502 (flaky) or retried elsewhere (flaky-idem); flaky never ran a call twice.
 * - A function that hangs (accepts connections, answers nothing): taken out, the other replica carries the load.
 * - A function that goes down and comes back: its sidecar leaves the queue group (no call is sent to it and
 *   retried elsewhere) and rejoins.
 * - Every replica down: 503 at once, then recovery when one returns.
 * - Retries stay within the one deadline: every attempt the function saw carries the same deadline and began
 *   before it, and the gateway's fnmesh-attempts is the number of attempts the function saw.
 *
 * Needs `npm run build` first (`npm test` does it).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { FAULTY_ENV } from './fixtures/execution-log';
import {
  FLAKY,
  IDEM,
  downAndBack,
  everyReplicaDown,
  hungFunction,
  neverRanTwice,
  retriesWithinDeadline,
  sigkillUnderLoad,
  warmUp,
  type FaultMesh,
} from './helpers/fault-scenarios';
import { LOCAL_BROKERS, startLocalMeshCli, type LocalMeshRun, type LocalReplicaSeen } from './helpers/local-mesh';
import { ROOT } from './helpers/cli-process';
import { waitFor } from './helpers/wait';

jest.setTimeout(90_000);

const FIXTURE = path.join(ROOT, 'dist', 'test', 'fixtures', 'faulty-function.js');

interface ServiceDirs {
  logDir: string;
  controlDir: string;
}

function manifest(name: string, dirs: ServiceDirs, idempotent: boolean): string {
  return stringify({
    apiVersion: 'fnmesh.io/v1alpha1',
    kind: 'FunctionService',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas: 2,
      timeoutMs: 10_000,
      local: {
        command: ['node', FIXTURE],
        env: { [FAULTY_ENV.logDir]: dirs.logDir, [FAULTY_ENV.controlDir]: dirs.controlDir, [FAULTY_ENV.delayMs]: '5' },
      },
      functions: [{ name: 'work', rule: { rule: 'allow' }, ...(idempotent ? { idempotent: true } : {}) }],
    },
  });
}

async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** The port a function process serves (its PORT, as the mesh started it). */
function portOf(pid: number): number {
  const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  return Number(env.find((kv) => kv.startsWith('PORT='))!.slice('PORT='.length));
}

describe.each(LOCAL_BROKERS)('no call lost to a dying replica: fnmesh local on the %s', (broker) => {
  let dir: string;
  let run: LocalMeshRun;
  const dirs: Record<string, ServiceDirs> = {};

  const replica = (id: string): LocalReplicaSeen => {
    const r = run.replica(id);
    if (!r) throw new Error(`no ready line for ${id}:\n${run.output()}`);
    return r;
  };
  const mesh: FaultMesh = {
    get gateway() {
      return run.gateway;
    },
    get gatewayOps() {
      return run.gatewayOps;
    },
    logDir: (service) => dirs[service]!.logDir,
    controlDir: (service) => dirs[service]!.controlDir,
    replicas: (service) => Promise.resolve([replica(`${service}-0`), replica(`${service}-1`)]),
    mark: () => run.cli.lines.length,
    sidecarOut: async (r) => {
      await waitFor(async () => (await httpStatus(`${replica(r.id).ops}/readyz`)) === 503, {
        timeoutMs: 20_000,
        what: `${r.id}'s sidecar to report its function out`,
      });
    },
    sidecarIn: async (r) => {
      await waitFor(async () => (await httpStatus(`${replica(r.id).ops}/readyz`)) === 200, {
        timeoutMs: 30_000,
        what: `${r.id}'s sidecar ready again`,
      });
    },
    successor: (r, mark) => run.waitReady(r.id, mark, 30_000),
    sidecarMetrics: async (r) => (await fetch(`${replica(r.id).ops}/metrics`)).text(),
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-fault-local-'));
    for (const [name, idempotent] of [
      [FLAKY, false],
      [IDEM, true],
    ] as const) {
      dirs[name] = { logDir: path.join(dir, `${name}-log`), controlDir: path.join(dir, `${name}-control`) };
      writeFileSync(path.join(dir, `${name}.yaml`), manifest(name, dirs[name]!, idempotent));
    }
    run = await startLocalMeshCli(dir, broker);
    for (const id of [`${FLAKY}-0`, `${FLAKY}-1`, `${IDEM}-0`, `${IDEM}-1`]) await run.waitReady(id);
    await warmUp(mesh, 20_000);
  }, 120_000);

  afterAll(async () => {
    await run?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('SIGKILL of one of two replicas under steady load: no failed call it had not started; those it ran → 502, or retried when idempotent', () =>
    sigkillUnderLoad(mesh));

  test('a function that hangs (accepts connections, answers nothing) is taken out; the other replica carries the load; it rejoins when it answers again', () =>
    hungFunction(mesh));

  // the function stops listening (connections refused), and so would any restart of it on this port
  test('a function that goes down and comes back: its sidecar leaves the queue group (no call sent to it and retried elsewhere) and rejoins', () =>
    downAndBack(mesh, (r) => ({ port: portOf(r.fnPid) })));

  test('every replica down: 503 at once (well before the deadline, nothing run), then recovery when one returns', () =>
    everyReplicaDown(mesh));

  test('retries never extend past the deadline: every attempt the function saw carries the one deadline and began by it', () =>
    retriesWithinDeadline(mesh));

  test('over every call of this file, the at-most-once function never ran one call twice', () => neverRanTwice(mesh));
});
