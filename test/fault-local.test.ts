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
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_CIRCUIT_BREAKER, DEFAULT_RETRY } from '../common/resilience';
import {
  FAULTY_ENV,
  byRequestId,
  classifyFailures,
  readExecutions,
  setMode,
  unanswered,
  type Execution,
} from './fixtures/execution-log';
import { callWithId, killWhileRunning, nextRequestId, steadyLoad, type CallRecord } from './helpers/fault-load';
import { LOCAL_BROKERS, startLocalMeshCli, type LocalMeshRun, type LocalReplicaSeen } from './helpers/local-mesh';
import { ROOT } from './helpers/cli-process';
import { waitFor } from './helpers/wait';

jest.setTimeout(90_000);

const FIXTURE = path.join(ROOT, 'dist', 'test', 'fixtures', 'faulty-function.js');
const FLAKY: string = 'flaky';
const IDEM: string = 'flaky-idem';
const route = (service: string): string => `default/functions/${service}/work`;

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

/** What a test shows when a list it expects empty is not: enough to tell the failure apart. */
const seen = (c: CallRecord): string => `${c.requestId} ${c.status} attempts=${c.attempts} ${c.error ?? ''}`;

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

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(safeStatus(pid));
function safeStatus(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return '';
  }
}

/** The replicas' states in the gateway's listing (GET /v1/services on its ops listener), by replica id. */
async function listedReplicas(gatewayOps: string, service: string): Promise<Record<string, string>> {
  const body = (await (await fetch(`${gatewayOps}/v1/services`)).json()) as {
    services: { name: string; replicas: { id: string; state: string }[] }[];
  };
  const listed = body.services.find((s) => s.name === service);
  return Object.fromEntries((listed?.replicas ?? []).map((r) => [r.id, r.state]));
}

describe.each(LOCAL_BROKERS)('no call lost to a dying replica: fnmesh local on the %s', (broker) => {
  let dir: string;
  let run: LocalMeshRun;
  const dirs: Record<string, ServiceDirs> = {};

  const executions = (service: string): Execution[] => readExecutions(dirs[service]!.logDir);
  const byId = (service: string): Map<string, Execution[]> => byRequestId(executions(service));
  const replica = (id: string): LocalReplicaSeen => {
    const r = run.replica(id);
    if (!r) throw new Error(`no ready line for ${id}:\n${run.output()}`);
    return r;
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
    for (const service of [FLAKY, IDEM])
      await waitFor(
        async () => (await callWithId(run.gateway, route(service), {}, nextRequestId('warm'))).status === 200,
        { timeoutMs: 20_000, what: `${service} to answer` },
      );
  }, 120_000);

  afterAll(async () => {
    await run?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('SIGKILL of one of two replicas under steady load: no failed call it had not started; those it ran → 502, or retried when idempotent', async () => {
    const loads: Record<string, ReturnType<typeof steadyLoad>> = {
      [FLAKY]: steadyLoad({
        gatewayUrl: run.gateway,
        route: route(FLAKY),
        workers: 8,
        timeoutMs: 8_000,
        params: { delayMs: 40 },
        idPrefix: 'kill',
      }),
      [IDEM]: steadyLoad({
        gatewayUrl: run.gateway,
        route: route(IDEM),
        workers: 8,
        timeoutMs: 8_000,
        params: { delayMs: 40 },
        idPrefix: 'kill-idem',
      }),
    };
    const victims: Record<string, LocalReplicaSeen> = { [FLAKY]: replica(`${FLAKY}-0`), [IDEM]: replica(`${IDEM}-0`) };
    const others: Record<string, LocalReplicaSeen> = { [FLAKY]: replica(`${FLAKY}-1`), [IDEM]: replica(`${IDEM}-1`) };
    const cut: Record<string, Execution[]> = {};
    const successors: Record<string, LocalReplicaSeen> = {};
    const killedAt: Record<string, number> = {};
    try {
      await waitFor(
        () =>
          [FLAKY, IDEM].every(
            (s) => loads[s]!.answeredBy(victims[s]!.fnPid) >= 30 && loads[s]!.answeredBy(others[s]!.fnPid) >= 30,
          ),
        { timeoutMs: 30_000, what: 'both replicas of both services answering the load' },
      );
      // kill while each victim runs calls, so that some are cut mid-run
      const mark = run.cli.lines.length;
      for (const s of [FLAKY, IDEM]) killedAt[s] = await killWhileRunning(dirs[s]!.logDir, victims[s]!.fnPid);
      for (const s of [FLAKY, IDEM]) {
        await waitFor(() => !alive(victims[s]!.fnPid), { what: `${victims[s]!.id}'s function to be gone` });
        cut[s] = unanswered(executions(s), victims[s]!.fnPid);
        successors[s] = await run.waitReady(victims[s]!.id, mark, 30_000);
      }
      // the restarted functions take calls again, and the load ran on through all of it
      await waitFor(() => [FLAKY, IDEM].every((s) => loads[s]!.answeredBy(successors[s]!.fnPid) >= 30), {
        timeoutMs: 30_000,
        what: 'the restarted functions to answer calls',
      });
    } finally {
      await Promise.all([loads[FLAKY]!.stop(), loads[IDEM]!.stop()]);
    }

    // flaky (at-most-once): nothing lost that had not started, nothing run twice, the cut calls told 502
    const flaky = byId(FLAKY);
    const flakyCalls = new Map(loads[FLAKY]!.results.map((c) => [c.requestId, c]));
    expect([...flaky].filter(([, list]) => list.length > 1).map(([id]) => id)).toEqual([]);
    const flakyFailed = classifyFailures(loads[FLAKY]!.results, flaky, [killedAt[FLAKY]!]);
    expect(flakyFailed.notExecuted.map(seen)).toEqual([]);
    expect(cut[FLAKY]!.length).toBeGreaterThan(0);
    expect(cut[FLAKY]!.map((e) => `${e.requestId} ${flakyCalls.get(e.requestId)?.status}`)).toEqual(
      cut[FLAKY]!.map((e) => `${e.requestId} 502`),
    );
    // the only calls that failed were those the killed function was running, or had been handed and not read
    // yet when it died (no one can tell those from a call it read): each told 502, it may have run
    expect(flakyFailed.ambiguous.map((c) => c.requestId).sort()).toEqual(cut[FLAKY]!.map((e) => e.requestId).sort());
    expect(flakyFailed.unreadAtKill.filter((c) => c.status !== 502).map(seen)).toEqual([]);
    // only around the moment of death: a handful, not a second's worth of calls (8 callers)
    expect(flakyFailed.unreadAtKill.length).toBeLessThanOrEqual(8);

    // flaky-idem (idempotent): not one failed call; the cut ones ran again on another replica
    const idem = byId(IDEM);
    const idemCalls = new Map(loads[IDEM]!.results.map((c) => [c.requestId, c]));
    expect(loads[IDEM]!.results.filter((c) => c.status !== 200).map(seen)).toEqual([]);
    expect(cut[IDEM]!.length).toBeGreaterThan(0);
    for (const e of cut[IDEM]!) {
      expect(idemCalls.get(e.requestId)).toMatchObject({ status: 200, attempts: expect.any(Number) });
      expect(idemCalls.get(e.requestId)!.attempts).toBeGreaterThanOrEqual(2);
      expect(idem.get(e.requestId)!.some((x) => x.pid !== victims[IDEM]!.fnPid && x.status === 200)).toBe(true);
    }
    // a call retried because it was not executed was answered by a replica that ran it once
    for (const c of loads[IDEM]!.results)
      expect((idem.get(c.requestId) ?? []).filter((x) => x.status === 200)).toHaveLength(1);
  });

  test('a function that hangs (accepts connections, answers nothing) is taken out; the other replica carries the load; it rejoins when it answers again', async () => {
    const hung = replica(`${FLAKY}-1`);
    const other = replica(`${FLAKY}-0`);
    const load = steadyLoad({
      gatewayUrl: run.gateway,
      route: route(FLAKY),
      workers: 6,
      timeoutMs: 3_000,
      params: { delayMs: 10 },
      idPrefix: 'hang',
    });
    let startsWhenOut = 0;
    let answeredBeforeRejoin = 0;
    try {
      await waitFor(() => load.answeredBy(hung.fnPid) >= 20 && load.answeredBy(other.fnPid) >= 20, {
        timeoutMs: 20_000,
        what: 'both replicas answering',
      });
      setMode(dirs[FLAKY]!.controlDir, { pid: hung.fnPid }, 'hang');
      // its sidecar sees the health check go unanswered: not ready, out of the queue group
      await waitFor(async () => (await httpStatus(`${hung.ops}/readyz`)) === 503, {
        timeoutMs: 20_000,
        what: `${hung.id}'s sidecar to report its hung function`,
      });
      expect(await (await fetch(`${hung.ops}/metrics`)).text()).toMatch(/^fnmesh_sidecar_taking_calls(\{[^}]*\})? 0$/m);
      const mark = load.results.length;
      await waitFor(() => load.results.slice(mark).filter((r) => r.status === 200).length >= 20, {
        timeoutMs: 20_000,
        what: 'calls answered after the hung replica was taken out',
      });
      startsWhenOut = executions(FLAKY).filter((e) => e.pid === hung.fnPid).length;
      const mark2 = load.results.length;
      await waitFor(() => load.results.slice(mark2).filter((r) => r.status === 200).length >= 100, {
        timeoutMs: 30_000,
        what: '100 more calls answered',
      });
      // not one more call was sent to the hung function, and everything after it was taken out succeeded
      expect(executions(FLAKY).filter((e) => e.pid === hung.fnPid).length).toBe(startsWhenOut);
      expect(
        load.results
          .slice(mark2)
          .filter((r) => r.status !== 200 || r.pid !== other.fnPid)
          .map(seen),
      ).toEqual([]);
      answeredBeforeRejoin = load.answeredBy(hung.fnPid);
      setMode(dirs[FLAKY]!.controlDir, { pid: hung.fnPid }, 'ok');
      await waitFor(async () => (await httpStatus(`${hung.ops}/readyz`)) === 200, {
        timeoutMs: 30_000,
        what: `${hung.id}'s sidecar ready again`,
      });
      await waitFor(() => load.answeredBy(hung.fnPid) >= answeredBeforeRejoin + 20, {
        timeoutMs: 30_000,
        what: 'the recovered replica to take calls again',
      });
    } finally {
      setMode(dirs[FLAKY]!.controlDir, { pid: hung.fnPid }, 'ok');
      await load.stop();
    }
    // the calls that failed were those the hung function had started (they ran out of time there)
    const ex = byId(FLAKY);
    const failed = classifyFailures(load.results, ex);
    expect(failed.notExecuted.map(seen)).toEqual([]);
    for (const c of failed.ambiguous) {
      expect(`${c.requestId} ${c.status}`).toBe(`${c.requestId} 504`);
      expect(ex.get(c.requestId)!.map((e) => `${e.pid} ${e.status}`)).toEqual([`${hung.fnPid} undefined`]);
    }
  });

  test('a function that goes down and comes back: its sidecar leaves the queue group (no call sent to it and retried elsewhere) and rejoins', async () => {
    const down = replica(`${IDEM}-0`);
    const other = replica(`${IDEM}-1`);
    const port = portOf(down.fnPid);
    const load = steadyLoad({
      gatewayUrl: run.gateway,
      route: route(IDEM),
      workers: 6,
      timeoutMs: 5_000,
      params: { delayMs: 5 },
      idPrefix: 'downup',
    });
    let whileDown: CallRecord[] = [];
    try {
      await waitFor(() => load.answeredBy(down.fnPid) >= 20 && load.answeredBy(other.fnPid) >= 20, {
        timeoutMs: 20_000,
        what: 'both replicas answering',
      });
      // the function stops listening (connections refused), and so would any restart of it on this port
      setMode(dirs[IDEM]!.controlDir, { port }, 'refuse');
      await waitFor(async () => (await httpStatus(`${down.ops}/readyz`)) === 503, {
        timeoutMs: 20_000,
        what: `${down.id}'s sidecar to report its function down`,
      });
      // the gateway's listing shows the replica out, and why, beside the one that serves
      await waitFor(
        async () => {
          const states = await listedReplicas(run.gatewayOps, IDEM);
          return states[down.id] !== undefined && states[down.id] !== 'serving' && states[other.id] === 'serving';
        },
        { timeoutMs: 20_000, what: `the gateway's listing to show ${down.id} out of rotation` },
      );
      expect(['function-down', 'unhealthy']).toContain((await listedReplicas(run.gatewayOps, IDEM))[down.id]);
      const metrics = await (await fetch(`${down.ops}/metrics`)).text();
      expect(metrics).toMatch(/^fnmesh_sidecar_function_healthy(\{[^}]*\})? 0$/m);
      expect(metrics).toMatch(/^fnmesh_sidecar_taking_calls(\{[^}]*\})? 0$/m);
      expect(metrics).toMatch(
        /^fnmesh_sidecar_queue_group_leaves_total\{[^}]*reason="(?:function-down|unhealthy)"[^}]*\} [1-9]/m,
      );
      // a few calls for the sidecar's leaving to reach the broker, then the calls that count
      const noticedAt = performance.now();
      await waitFor(() => load.results.filter((r) => r.sentAt > noticedAt).length >= 20, {
        timeoutMs: 20_000,
        what: 'calls after the sidecar noticed',
      });
      const outAt = performance.now();
      await waitFor(() => load.results.filter((r) => r.sentAt > outAt).length >= 150, {
        timeoutMs: 30_000,
        what: '150 calls while the function is down',
      });
      whileDown = load.results.filter((r) => r.sentAt > outAt);
      setMode(dirs[IDEM]!.controlDir, { port }, 'ok');
      await waitFor(async () => (await httpStatus(`${down.ops}/readyz`)) === 200, {
        timeoutMs: 30_000,
        what: `${down.id}'s sidecar ready again`,
      });
      const back = load.answeredBy(down.fnPid);
      await waitFor(() => load.answeredBy(down.fnPid) >= back + 20, {
        timeoutMs: 30_000,
        what: 'the replica back in the queue group, taking calls',
      });
      await waitFor(async () => (await listedReplicas(run.gatewayOps, IDEM))[down.id] === 'serving', {
        timeoutMs: 20_000,
        what: `the gateway's listing to show ${down.id} serving again`,
      });
      const metricsBack = await (await fetch(`${down.ops}/metrics`)).text();
      expect(metricsBack).toMatch(/^fnmesh_sidecar_function_healthy(\{[^}]*\})? 1$/m);
      expect(metricsBack).toMatch(/^fnmesh_sidecar_taking_calls(\{[^}]*\})? 1$/m);
    } finally {
      setMode(dirs[IDEM]!.controlDir, { port }, 'ok');
      await load.stop();
    }
    // while it was down, every call went straight to the other replica: had the down sidecar stayed in the
    // queue group, about half of them would have reached it and come back "not executed" for a second attempt
    expect(whileDown.filter((r) => r.status !== 200 || r.pid !== other.fnPid || r.attempts !== 1).map(seen)).toEqual(
      [],
    );
    expect(load.results.filter((r) => r.status !== 200).map(seen)).toEqual([]);
  });

  test('every replica down: 503 at once (well before the deadline, nothing run), then recovery when one returns', async () => {
    const pids = [replica(`${FLAKY}-0`), replica(`${FLAKY}-1`)];
    const control = dirs[FLAKY]!.controlDir;
    const mark = run.cli.lines.length;
    setMode(control, 'all', 'refuse'); // their restarts wait, not listening
    try {
      for (const r of pids) process.kill(r.fnPid, 'SIGKILL');
      for (const r of pids)
        await waitFor(async () => (await httpStatus(`${r.ops}/readyz`)) === 503, {
          timeoutMs: 20_000,
          what: `${r.id}'s sidecar to report its function down`,
        });
      const timeout = 8_000;
      const calls: CallRecord[] = [];
      for (let i = 0; i < 3 * DEFAULT_CIRCUIT_BREAKER.consecutiveFailures; i++)
        calls.push(await callWithId(run.gateway, route(FLAKY), { timeout }, nextRequestId('alldown')));
      expect(calls.filter((c) => c.status !== 503).map(seen)).toEqual([]);
      for (const c of calls) expect(c.answeredAt - c.sentAt).toBeLessThan(timeout / 4);
      // the function's circuit opened: the gateway says when to come back
      expect(calls.filter((c) => c.retryAfter !== undefined).length).toBeGreaterThan(0);
      const ex = byId(FLAKY);
      expect(calls.filter((c) => ex.has(c.requestId)).map(seen)).toEqual([]);
    } finally {
      setMode(control, 'all', 'ok');
    }
    for (const r of pids) await run.waitReady(r.id, mark, 30_000);
    const first = await waitFor(
      async () => {
        const c = await callWithId(run.gateway, route(FLAKY), { timeout: 2_000 }, nextRequestId('recover'));
        return c.status === 200 ? c : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: 'a call answered after the functions came back' },
    );
    expect(first.status).toBe(200);
    const after: CallRecord[] = [];
    for (let i = 0; i < 20; i++)
      after.push(await callWithId(run.gateway, route(FLAKY), { timeout: 5_000 }, nextRequestId('recovered')));
    expect(after.filter((c) => c.status !== 200).map(seen)).toEqual([]);
  });

  test('retries never extend past the deadline: every attempt the function saw carries the one deadline and began by it', async () => {
    const idemControl = dirs[IDEM]!.controlDir;
    const flakyControl = dirs[FLAKY]!.controlDir;
    setMode(idemControl, 'all', 'fail');
    setMode(flakyControl, 'all', 'fail');
    try {
      // idempotent: a 500 is retried, as long as the deadline leaves time (each attempt takes 150 ms)
      const id = nextRequestId('deadline-idem');
      const r = await callWithId(run.gateway, route(IDEM), { params: { delayMs: 150 }, timeout: 400 }, id);
      const attempts = byId(IDEM).get(id) ?? [];
      expect([502, 504]).toContain(r.status);
      expect(attempts.length).toBeGreaterThanOrEqual(2);
      expect(attempts.length).toBeLessThanOrEqual(DEFAULT_RETRY.attempts);
      expect(r.attempts).toBe(attempts.length);
      expect(attempts.map((e) => e.attempt).sort()).toEqual(attempts.map((_, i) => i + 1));
      // one deadline: each sidecar turns the remaining budget into x-fnmesh-deadline (whole epoch ms, so the
      // attempts' values differ by rounding and transit), where a fresh budget would add ≥ 150 ms per attempt
      const deadlines = attempts.map((e) => e.deadline);
      expect(Math.max(...deadlines) - Math.min(...deadlines)).toBeLessThan(25);
      for (const e of attempts) expect(e.startedAt).toBeLessThanOrEqual(e.deadline);

      // at-most-once: the same failure is not retried
      const id2 = nextRequestId('deadline-flaky');
      const r2 = await callWithId(run.gateway, route(FLAKY), { params: { delayMs: 150 }, timeout: 400 }, id2);
      expect(r2.status).toBe(502);
      expect(r2.attempts).toBe(1);
      expect(byId(FLAKY).get(id2)).toHaveLength(1);
    } finally {
      setMode(idemControl, 'all', 'ok');
      setMode(flakyControl, 'all', 'ok');
    }
  });

  test('over every call of this file, the at-most-once function never ran one call twice', () => {
    const twice = [...byId(FLAKY)].filter(([, list]) => list.length > 1);
    expect(twice.map(([id, list]) => `${id}: ${list.map((e) => e.pid).join(',')}`)).toEqual([]);
    expect(byId(FLAKY).size).toBeGreaterThan(200);
  });
});
