/**
 * Issue 10 on `fnmesh cluster`: the operator's real pods (the fault fixture as the function container, the
 * injected sidecar beside it, each pod in its own network namespace, restarted by the node agent as a kubelet
 * does), on the gateway's embedded broker and on a real nats-server (FNMESH_NATS_URL), one control plane per
 * broker.
 * Under steady load through the gateway's HTTP port, SIGKILL of one of two replicas' function container: no
 * failed call among those it had not started, the calls it was running answered 502 for the at-most-once
 * function (never run twice) and retried elsewhere for the idempotent one.
 *
 * Needs `npm run build` first and the Kubernetes binaries (`bash scripts/k8s-tools.sh`; `npm test` does both).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import {
  FAULTY_ENV,
  byRequestId,
  classifyFailures,
  readExecutions,
  unanswered,
  type Execution,
} from './fixtures/execution-log';
import { ROOT } from './helpers/cli-process';
import { containerPid, isReady, startClusterCli, type ClusterRun, type Pod } from './helpers/cluster-cli';
import { LOCAL_BROKERS } from './helpers/local-mesh';
import {
  callWithId,
  killWhileRunning,
  nextRequestId,
  steadyLoad,
  type CallRecord,
  type SteadyLoad,
} from './helpers/fault-load';
import { waitFor } from './helpers/wait';

const FLAKY: string = 'flaky';
const IDEM: string = 'flaky-idem';
const SERVICES = [FLAKY, IDEM];
const route = (service: string): string => `default/functions/${service}/work`;
const seen = (c: CallRecord): string => `${c.requestId} ${c.status} attempts=${c.attempts} ${c.error ?? ''}`;

let cluster: ClusterRun;
let dir: string;
const logDir = (service: string): string => path.join(dir, `${service}-log`);

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
          { name: FAULTY_ENV.controlDir, value: path.join(dir, `${name}-control`) },
        ],
      },
      functions: [{ name: 'work', rule: { rule: 'allow' }, ...(idempotent ? { idempotent: true } : {}) }],
    },
  });
}

async function readyPods(service: string): Promise<Pod[]> {
  return (await cluster.pods(service)).filter((p) => isReady(p) && containerPid(p, 'function') !== undefined);
}

describe.each(LOCAL_BROKERS)('no call lost to a dying replica: fnmesh cluster with real pods on the %s', (broker) => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-fault-cluster-'));
    cluster = await startClusterCli(broker, dir);
    const applied = await cluster.kubectl(
      ['apply', '-f', path.join(ROOT, 'crds'), '-f', '-'],
      `${manifest(FLAKY, false)}---\n${manifest(IDEM, true)}`,
    );
    if (applied.code !== 0) throw new Error(`kubectl apply: ${applied.stderr}`);
    for (const s of SERVICES) {
      await waitFor(async () => (await readyPods(s)).length === 2, {
        timeoutMs: 90_000,
        intervalMs: 250,
        what: `two ready pods of ${s}`,
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n${cluster.output()}`);
      });
      await waitFor(
        async () => (await callWithId(cluster.gateway, route(s), {}, nextRequestId('warm'))).status === 200,
        {
          timeoutMs: 30_000,
          intervalMs: 100,
          what: `${s} to answer through the gateway`,
        },
      );
    }
  }, 300_000);

  afterAll(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  test('SIGKILL of one of two replicas’ function container under steady load: no failed call it had not started; those it ran → 502, or retried when idempotent', async () => {
    // the mesh really runs on the broker this block names
    expect(cluster.cli.lines.join('\n')).toContain(
      broker === 'nats-server' ? 'your NATS at nats://' : 'embedded broker on',
    );
    const loads: Record<string, SteadyLoad> = {};
    for (const s of SERVICES)
      loads[s] = steadyLoad({
        gatewayUrl: cluster.gateway,
        route: route(s),
        workers: 8,
        timeoutMs: 8_000,
        params: { delayMs: 40 },
        idPrefix: `kill-${s}`,
      });
    const victims: Record<string, { pod: Pod; pid: number }> = {};
    const others: Record<string, number> = {};
    const cut: Record<string, Execution[]> = {};
    const successors: Record<string, number> = {};
    const killedAt: Record<string, number> = {};
    try {
      for (const s of SERVICES) {
        const [a, b] = await readyPods(s);
        victims[s] = { pod: a!, pid: containerPid(a!, 'function')! };
        others[s] = containerPid(b!, 'function')!;
      }
      await waitFor(
        () =>
          SERVICES.every((s) => loads[s]!.answeredBy(victims[s]!.pid) >= 30 && loads[s]!.answeredBy(others[s]!) >= 30),
        { timeoutMs: 30_000, what: 'both pods of both services answering the load' },
      );
      // kill while each victim runs calls, so that some are cut mid-run
      for (const s of SERVICES) killedAt[s] = await killWhileRunning(logDir(s), victims[s]!.pid);
      for (const s of SERVICES) {
        // the node agent restarts the container (its status says so) with a new process
        const restarted = await waitFor(
          async () => {
            const p = (await cluster.pods(s)).find((x) => x.metadata.uid === victims[s]!.pod.metadata.uid);
            const st = p?.status?.containerStatuses?.find((c) => c.name === 'function');
            const pid = p && containerPid(p, 'function');
            return st && st.restartCount >= 1 && pid !== undefined && pid !== victims[s]!.pid ? pid : undefined;
          },
          { timeoutMs: 60_000, intervalMs: 100, what: `the ${s} function container restarted` },
        );
        successors[s] = restarted;
        cut[s] = unanswered(readExecutions(logDir(s)), victims[s]!.pid);
      }
      await waitFor(() => SERVICES.every((s) => loads[s]!.answeredBy(successors[s]!) >= 30), {
        timeoutMs: 60_000,
        what: 'the restarted function containers to answer calls',
      });
    } finally {
      await Promise.all(SERVICES.map((s) => loads[s]!.stop()));
    }

    // flaky (at-most-once): nothing lost that had not started, nothing run twice, the cut calls told 502
    const flaky = byRequestId(readExecutions(logDir(FLAKY)));
    const flakyCalls = new Map(loads[FLAKY]!.results.map((c) => [c.requestId, c]));
    expect([...flaky].filter(([, list]) => list.length > 1).map(([id]) => id)).toEqual([]);
    const failed = classifyFailures(loads[FLAKY]!.results, flaky, [killedAt[FLAKY]!]);
    expect(failed.notExecuted.map(seen)).toEqual([]);
    expect(cut[FLAKY]!.length).toBeGreaterThan(0);
    expect(cut[FLAKY]!.map((e) => `${e.requestId} ${flakyCalls.get(e.requestId)?.status}`)).toEqual(
      cut[FLAKY]!.map((e) => `${e.requestId} 502`),
    );
    expect(failed.ambiguous.map((c) => c.requestId).sort()).toEqual(cut[FLAKY]!.map((e) => e.requestId).sort());
    expect(failed.unreadAtKill.filter((c) => c.status !== 502).map(seen)).toEqual([]);
    expect(failed.unreadAtKill.length).toBeLessThanOrEqual(8);

    // flaky-idem (idempotent): not one failed call; the cut ones ran again in the other pod
    const idem = byRequestId(readExecutions(logDir(IDEM)));
    const idemCalls = new Map(loads[IDEM]!.results.map((c) => [c.requestId, c]));
    expect(loads[IDEM]!.results.filter((c) => c.status !== 200).map(seen)).toEqual([]);
    expect(cut[IDEM]!.length).toBeGreaterThan(0);
    for (const e of cut[IDEM]!) {
      expect(idemCalls.get(e.requestId)!.attempts).toBeGreaterThanOrEqual(2);
      expect(idem.get(e.requestId)!.some((x) => x.pid !== victims[IDEM]!.pid && x.status === 200)).toBe(true);
    }
    for (const c of loads[IDEM]!.results)
      expect((idem.get(c.requestId) ?? []).filter((x) => x.status === 200)).toHaveLength(1);
  }, 180_000);
});
