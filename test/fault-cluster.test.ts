/**
 * Issue 10 on `fnmesh cluster`: the operator's real pods (the fault fixture as the function container, the
 * injected sidecar beside it, each pod in its own network namespace, restarted by the node agent as a kubelet
 * does), on the gateway's embedded broker and on a real nats-server (FNMESH_NATS_URL), one control plane per
 * broker. The scenarios are fault-local's (test/helpers/fault-scenarios.ts), under steady load through the
 * gateway's HTTP port:
 *
 * - SIGKILL of one of two replicas' function container (found by the pid in its pod status, restarted by the
 *   node agent): no failed call among those it had not started; those it was running answered 502 for the
 *   at-most-once function (never run twice) and retried elsewhere for the idempotent one.
 * - A function that hangs: its sidecar leaves (the gateway's listing shows it out, its pod goes not Ready), the
 *   other pod carries the load, and it rejoins when it answers again.
 * - A function that goes down (stops listening) and comes back: its sidecar leaves the queue group and rejoins.
 * - Every replica's function killed and refusing connections: 503 at once, then recovery when they return.
 * - Retries stay within the one deadline; the at-most-once function never ran a call twice.
 *
 * A pod's sidecar ops port is inside the pod's network namespace: what a sidecar says of itself is read from
 * the gateway's listing (GET /v1/services on its ops listener, from each replica's micro PING) and from the
 * pod's Ready condition (the node agent's readiness probe on the sidecar's /readyz).
 *
 * Needs `npm run build` first and the Kubernetes binaries (`bash scripts/k8s-tools.sh`; `npm test` does both).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { FAULTY_ENV } from './fixtures/execution-log';
import { ROOT } from './helpers/cli-process';
import { containerPid, isReady, startClusterCli, type ClusterRun, type Pod } from './helpers/cluster-cli';
import {
  FAULT_SERVICES,
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
  type FaultReplica,
} from './helpers/fault-scenarios';
import { LOCAL_BROKERS } from './helpers/local-mesh';
import { waitFor } from './helpers/wait';

jest.setTimeout(120_000);

let cluster: ClusterRun;
let dir: string;
const logDir = (service: string): string => path.join(dir, `${service}-log`);
const controlDir = (service: string): string => path.join(dir, `${service}-control`);

/** A FunctionService of two pods whose function container is the fixture, in the fnmesh image. */
function manifest(name: string, idempotent: boolean): string {
  return stringify({
    apiVersion: 'fnmesh.io/v1alpha1',
    kind: 'FunctionService',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas: 2,
      timeoutMs: 10_000,
      container: {
        image: 'ghcr.io/fnmesh/fnmesh:0.1.0',
        command: ['node', '/app/dist/test/fixtures/faulty-function.js'],
        env: [
          { name: FAULTY_ENV.logDir, value: logDir(name) },
          { name: FAULTY_ENV.controlDir, value: controlDir(name) },
        ],
      },
      functions: [{ name: 'work', rule: { rule: 'allow' }, ...(idempotent ? { idempotent: true } : {}) }],
    },
  });
}

async function readyPods(service: string): Promise<Pod[]> {
  return (await cluster.pods(service)).filter((p) => isReady(p) && containerPid(p, 'function') !== undefined);
}

/** The pod named `name` (a replica's id is its pod's name), wherever it is listed. */
async function podNamed(name: string): Promise<Pod | undefined> {
  for (const s of FAULT_SERVICES) {
    const p = (await cluster.pods(s)).find((x) => x.metadata.name === name);
    if (p) return p;
  }
  return undefined;
}

/** A replica's state in the gateway's listing (GET /v1/services), whichever service it belongs to. */
async function listedState(id: string): Promise<string | undefined> {
  const body = (await (await fetch(`${cluster.gatewayOps}/v1/services`)).json()) as {
    services: { replicas: { id: string; state: string }[] }[];
  };
  return body.services.flatMap((s) => s.replicas).find((r) => r.id === id)?.state;
}

const mesh: FaultMesh = {
  get gateway() {
    return cluster.gateway;
  },
  get gatewayOps() {
    return cluster.gatewayOps;
  },
  logDir,
  controlDir,
  replicas: async (service) => {
    const pods = await waitFor(
      async () => {
        const ready = await readyPods(service);
        return ready.length === 2 ? ready : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `two ready pods of ${service}` },
    );
    const [a, b] = pods
      .map((p): FaultReplica => ({ id: p.metadata.name, fnPid: containerPid(p, 'function')! }))
      .sort((x, y) => x.id.localeCompare(y.id));
    return [a!, b!];
  },
  mark: () => 0,
  sidecarOut: async (r) => {
    // the sidecar says so at once in its PING (the gateway's listing) ...
    await waitFor(async () => ![undefined, 'serving'].includes(await listedState(r.id)), {
      timeoutMs: 20_000,
      what: `the gateway's listing to show ${r.id} out of rotation`,
    });
    // ... and the node agent's readiness probe of its /readyz takes the pod out
    await waitFor(async () => !isReady((await podNamed(r.id))!), {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: `pod ${r.id} not Ready`,
    });
  },
  sidecarIn: async (r) => {
    await waitFor(async () => (await listedState(r.id)) === 'serving', {
      timeoutMs: 30_000,
      what: `the gateway's listing to show ${r.id} serving`,
    });
    await waitFor(async () => isReady((await podNamed(r.id))!), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: `pod ${r.id} Ready again`,
    });
  },
  // the node agent restarts the container (its status says so) with a new process, and the pod is Ready again
  successor: (r) =>
    waitFor(
      async () => {
        const p = await podNamed(r.id);
        const st = p?.status?.containerStatuses?.find((c) => c.name === 'function');
        const pid = p && containerPid(p, 'function');
        return p && isReady(p) && st && st.restartCount >= 1 && pid !== undefined && pid !== r.fnPid
          ? { id: r.id, fnPid: pid }
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `the function container of ${r.id} restarted, its pod Ready` },
    ),
};

describe.each(LOCAL_BROKERS)('no call lost to a dying replica: fnmesh cluster with real pods on the %s', (broker) => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-fault-cluster-'));
    cluster = await startClusterCli(broker, dir);
    const applied = await cluster.kubectl(
      ['apply', '-f', path.join(ROOT, 'crds'), '-f', '-'],
      `${manifest(FLAKY, false)}---\n${manifest(IDEM, true)}`,
    );
    if (applied.code !== 0) throw new Error(`kubectl apply: ${applied.stderr}`);
    for (const s of FAULT_SERVICES)
      await waitFor(async () => (await readyPods(s)).length === 2, {
        timeoutMs: 90_000,
        intervalMs: 250,
        what: `two ready pods of ${s}`,
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n${cluster.output()}`);
      });
    await warmUp(mesh, 30_000);
  }, 300_000);

  afterAll(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  test('the mesh runs on the broker this block names', () => {
    expect(cluster.cli.lines.join('\n')).toContain(
      broker === 'nats-server' ? 'your NATS at nats://' : 'embedded broker on',
    );
  });

  test('SIGKILL of one of two replicas’ function container under steady load: no failed call it had not started; those it ran → 502, or retried when idempotent', () =>
    sigkillUnderLoad(mesh));

  test('a function container that hangs (accepts connections, answers nothing) is taken out; the other pod carries the load; it rejoins when it answers again', () =>
    hungFunction(mesh));

  // the function process stops listening (connections refused) and stays up: no restart
  test('a function that goes down and comes back: its sidecar leaves the queue group (no call sent to it and retried elsewhere) and rejoins', () =>
    downAndBack(mesh, (r) => ({ pid: r.fnPid })));

  test('every pod’s function down: 503 at once (well before the deadline, nothing run), then recovery when they return', () =>
    everyReplicaDown(mesh));

  test('retries never extend past the deadline: every attempt the function saw carries the one deadline and began by it', () =>
    retriesWithinDeadline(mesh));

  test('over every call of this file, the at-most-once function never ran one call twice', () => neverRanTwice(mesh));
});
